//! Data-dependent indexing: `take`, `take_along_axis`, `gather`,
//! `put_slice`, and `slice`/`put_slice` with run-time start indices.
//!
//! The gathers are one `linalg.generic` over the result whose body reads
//! the source with `tensor.extract` at indices clamped into range (spec:
//! out-of-range indices are clamped), so no access can leave the buffer
//! whatever the index values are. Slices with run-time starts are
//! `tensor.extract_slice`/`insert_slice` with SSA offsets clamped the same
//! way the checker clamps static ones.

use tensorc_ir::types::{DType, TensorType};

use crate::LowerError;
use crate::emit::{Emitter, GenericOperand, elem, identity_map, tensor_ty};
use crate::lower::{Lowerer, Val};

/// `v` (an integer of dtype `d`) clamped into `[0, n - 1]`, as an `index`.
/// `n` is at least 1.
pub(crate) fn clamp_index(e: &mut Emitter, v: &str, d: DType, n: usize) -> String {
    let t = elem(d);
    let (_, hi) = d.int_range().unwrap_or((0, i128::MAX));
    let top = (n - 1) as i128;
    let mut v = v.to_string();
    if d.is_signed_int() {
        let zero = e.int_const(d, 0);
        v = e.bin("arith.maxsi", &v, &zero, t);
        if top < hi {
            let c = e.int_const(d, top);
            v = e.bin("arith.minsi", &v, &c, t);
        }
        e.cast("arith.index_cast", &v, t, "index")
    } else {
        if top < hi {
            let c = e.int_const(d, top);
            v = e.bin("arith.minui", &v, &c, t);
        }
        e.cast("arith.index_castui", &v, t, "index")
    }
}

fn join(xs: &[String]) -> String {
    xs.join(", ")
}

impl Lowerer<'_> {
    /// An element of `x` at `indices` (index values), from inside a generic body.
    fn extract(e: &mut Emitter, x: &Val, indices: &[String]) -> String {
        e.op(&format!(
            "tensor.extract {}[{}] : {}",
            x.name,
            join(indices),
            tensor_ty(&x.ty)
        ))
    }

    /// A generic over `out` with `ins`; `body` gets the input block
    /// arguments and returns the element to store.
    pub(crate) fn gather_generic(
        &mut self,
        ins: &[GenericOperand],
        out: &TensorType,
        body: impl FnOnce(&mut Emitter, &[String]) -> String,
    ) -> String {
        let init = self.e.empty(out);
        let outs = [GenericOperand {
            value: init,
            ty: out.clone(),
            map: identity_map(out.rank()),
        }];
        let n = ins.len();
        self.e
            .generic(out.rank(), &[], ins, &outs, |e, a| vec![body(e, &a[..n])])
            .remove(0)
    }

    /// `take x, idx, axis:`.
    pub(crate) fn take(&mut self, x: &Val, idx: &Val, axis: usize, ty: &TensorType) -> String {
        let ri = idx.ty.rank();
        let map = (axis..axis + ri)
            .map(|k| format!("d{k}"))
            .collect::<Vec<_>>()
            .join(", ");
        let (di, n) = (idx.ty.dtype, x.ty.shape[axis]);
        let x = x.clone();
        // With axes of x after the taken one (rows taken whole), the index
        // is read inside the body, `tensor.extract %idx[loops]`: MLIR's
        // vectorizer takes any value from an input block argument to vary
        // along the vector (it does not look at its map) and made every row
        // a vector gather; an index extracted at loop indices that are unit
        // in the vectorized tile is uniform, and the row's read a
        // contiguous load. `take` of 4096 rows of 256 f32 from 10000: 0.216
        // → 0.040 ms (XLA 0.108), one thread.
        let rows = axis + 1 < x.ty.rank();
        let idx_in = idx.clone();
        let ins = if rows { vec![] } else { vec![idx.operand(map)] };
        self.gather_generic(&ins, ty, |e, a| {
            let i = if rows {
                let at: Vec<String> = (axis..axis + ri).map(|k| e.op(&format!("linalg.index {k} : index"))).collect();
                Self::extract(e, &idx_in, &at)
            } else {
                a[0].clone()
            };
            let c = clamp_index(e, &i, di, n);
            let mut at = Vec::new();
            for k in 0..x.ty.rank() {
                at.push(match k {
                    _ if k == axis => c.clone(),
                    _ if k < axis => e.op(&format!("linalg.index {k} : index")),
                    _ => e.op(&format!("linalg.index {} : index", k + ri - 1)),
                });
            }
            Self::extract(e, &x, &at)
        })
    }

    /// `take_along_axis x, idx, axis:` (idx has the result's shape).
    pub(crate) fn take_along_axis(
        &mut self,
        x: &Val,
        idx: &Val,
        axis: usize,
        ty: &TensorType,
    ) -> String {
        let (di, n) = (idx.ty.dtype, x.ty.shape[axis]);
        let x = x.clone();
        self.gather_generic(&[idx.operand(identity_map(ty.rank()))], ty, |e, a| {
            let c = clamp_index(e, &a[0], di, n);
            let at: Vec<String> = (0..x.ty.rank())
                .map(|k| {
                    if k == axis {
                        c.clone()
                    } else {
                        e.op(&format!("linalg.index {k} : index"))
                    }
                })
                .collect();
            Self::extract(e, &x, &at)
        })
    }

    /// `gather x, idx, axes:`: the k index components of each output point
    /// are read from idx's last axis.
    pub(crate) fn gather(&mut self, x: &Val, idx: &Val, axes: &[usize], ty: &TensorType) -> String {
        let nb = idx.ty.rank() - 1;
        let (x, idx, axes) = (x.clone(), idx.clone(), axes.to_vec());
        self.gather_generic(&[], ty, |e, _| {
            let batch: Vec<String> = (0..nb)
                .map(|k| e.op(&format!("linalg.index {k} : index")))
                .collect();
            let mut at = vec![String::new(); x.ty.rank()];
            for (j, &ax) in axes.iter().enumerate() {
                let mut pos = batch.clone();
                pos.push(e.op(&format!("arith.constant {j} : index")));
                let v = Self::extract(e, &idx, &pos);
                at[ax] = clamp_index(e, &v, idx.ty.dtype, x.ty.shape[ax]);
            }
            let mut loop_k = nb;
            for (ax, slot) in at.iter_mut().enumerate() {
                if !axes.contains(&ax) {
                    *slot = e.op(&format!("linalg.index {loop_k} : index"));
                    loop_k += 1;
                }
            }
            Self::extract(e, &x, &at)
        })
    }

    /// Offsets for a slice of sizes `lens` in `dims`: static ones as
    /// numbers, dynamic ones read from their scalar tensors and clamped
    /// into `[0, dims[i] - lens[i]]`.
    fn offsets(
        &mut self,
        starts: &[Option<usize>],
        dynamic: &[Val],
        dims: &[usize],
        lens: &[usize],
    ) -> Result<Vec<String>, LowerError> {
        let mut it = dynamic.iter();
        let mut out = Vec::new();
        for (i, s) in starts.iter().enumerate() {
            out.push(match s {
                Some(v) => v.to_string(),
                None => {
                    let t = it
                        .next()
                        .ok_or_else(|| LowerError::Internal("missing start operand".into()))?;
                    let v = self.e.op(&format!(
                        "tensor.extract {}[] : {}",
                        t.name,
                        tensor_ty(&t.ty)
                    ));
                    clamp_index(&mut self.e, &v, t.ty.dtype, dims[i] - lens[i] + 1)
                }
            });
        }
        Ok(out)
    }

    /// `slice` with run-time starts.
    pub(crate) fn dynamic_slice(
        &mut self,
        x: &Val,
        dynamic: &[Val],
        starts: &[Option<usize>],
        lengths: &[usize],
        strides: &[usize],
        ty: &TensorType,
    ) -> Result<String, LowerError> {
        let offs = self.offsets(starts, dynamic, &x.ty.shape, lengths)?;
        let sizes: Vec<String> = ty.shape.iter().map(usize::to_string).collect();
        let steps: Vec<String> = strides.iter().map(usize::to_string).collect();
        Ok(self.e.op(&format!(
            "tensor.extract_slice {}[{}] [{}] [{}] : {} to {}",
            x.name,
            join(&offs),
            join(&sizes),
            join(&steps),
            tensor_ty(&x.ty),
            tensor_ty(ty)
        )))
    }

    /// `put_slice x, starts, y` (both converted to the result dtype).
    pub(crate) fn put_slice(
        &mut self,
        x: &Val,
        y: &Val,
        dynamic: &[Val],
        starts: &[Option<usize>],
        ty: &TensorType,
    ) -> Result<String, LowerError> {
        let xc = self.convert_tensor(x, ty.dtype);
        let yc = self.convert_tensor(y, ty.dtype);
        if y.ty.checked_num_elements() == Some(0) {
            return Ok(xc.name);
        }
        if ty.rank() == 0 {
            return Ok(yc.name);
        }
        let offs = self.offsets(starts, dynamic, &x.ty.shape, &y.ty.shape)?;
        let sizes: Vec<String> = y.ty.shape.iter().map(usize::to_string).collect();
        let ones = vec!["1".to_string(); ty.rank()];
        // `insert_slice` updates its destination in place: a private copy
        // keeps a target that is also used elsewhere (a result) intact, as
        // for the scatter ops (see `private_copy`; regression gen_1268.nxir).
        let xc = if xc.name == x.name { self.private_copy(&xc) } else { xc };
        Ok(self.e.op(&format!(
            "tensor.insert_slice {} into {}[{}] [{}] [{}] : {} into {}",
            yc.name,
            xc.name,
            join(&offs),
            join(&sizes),
            join(&ones),
            tensor_ty(&yc.ty),
            tensor_ty(ty)
        )))
    }
}
