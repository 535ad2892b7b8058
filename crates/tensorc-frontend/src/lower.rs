//! Walks the typed graph and lowers each node to tensor-level MLIR.
//!
//! Functions become public `func.func`s with the out-param ABI; calls are
//! inlined by lowering the callee's body again with the caller's values bound
//! to its parameters (no recursion exists, so this terminates). Tuples never
//! reach MLIR: a value is a list of tensors, and `elem` picks a sub-list.

use tensorc_ir::graph::{Function, Module, Node, Op, RegionId, ValueId};
use tensorc_ir::types::{DType, TensorType, Type};

use crate::LowerError;
use crate::emit::{Emitter, GenericOperand, elem, identity_map, literal_attr, memref_ty, tensor_ty};

/// A lowered tensor value: its SSA name and type.
#[derive(Clone, Debug)]
pub(crate) struct Val {
    pub name: String,
    pub ty: TensorType,
}

impl Val {
    /// This value as a generic operand with the given map results.
    pub fn operand(&self, map: String) -> GenericOperand {
        GenericOperand { value: self.name.clone(), ty: self.ty.clone(), map }
    }
}

/// The indexing map results reading `input` broadcast (numpy-style, aligned
/// at the trailing axis) to an output of shape `out`.
fn broadcast_map(input: &[usize], out: &[usize]) -> String {
    let lead = out.len() - input.len();
    (0..input.len())
        .map(|i| if input[i] == 1 && out[lead + i] != 1 { "0".to_string() } else { format!("d{}", lead + i) })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn list(xs: impl IntoIterator<Item = impl ToString>) -> String {
    xs.into_iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
}

pub(crate) struct Lowerer<'a> {
    pub e: Emitter<'a>,
    module: &'a Module,
    /// The target's vector registers (see `VectorRegisters`).
    pub regs: crate::VectorRegisters,
}

impl<'a> Lowerer<'a> {
    pub fn new(e: Emitter<'a>, module: &'a Module, regs: crate::VectorRegisters) -> Self {
        Lowerer { e, module, regs }
    }

    /// Emit one public entry point.
    pub fn function(&mut self, f: &Function) -> Result<(), LowerError> {
        self.e.set_loc(f.span);
        let args: Vec<Val> = f
            .params
            .iter()
            .enumerate()
            .map(|(i, (_, ty))| Val { name: format!("%arg{i}"), ty: ty.clone() })
            .collect();
        let results = f.flat_results();
        let mut sig: Vec<String> = args.iter().map(|a| format!("{}: {}", a.name, tensor_ty(&a.ty))).collect();
        sig.extend(results.iter().enumerate().map(|(k, t)| format!("%out{k}: {}", memref_ty(t))));
        self.e.line(&format!("func.func @{}({}) attributes {{llvm.emit_c_interface}} {{", f.name, sig.join(", ")));
        self.e.indent(2);
        let vals = self.body(f, args)?;
        if vals.len() != results.len() {
            return Err(LowerError::Internal(format!(
                "function '{}' produced {} results, its type has {}",
                f.name,
                vals.len(),
                results.len()
            )));
        }
        self.e.set_loc(f.span);
        // Results are written in the order their values were defined, not
        // in result order. `eliminate-empty-tensors` may compute a value in
        // the out-parameter of a later value built from it in place (`v =
        // dot …; w = indexed_add v, …; return {w, v}`: `v` in `%out0`,
        // updated there into `w`); one-shot bufferization does not see the
        // write of `w` into `%out0` as a write of `v`, so writing `w` first
        // let `v`'s result read the updated buffer (generated seed 63303).
        // Written first, `v` is read before anything overwrites it.
        let mut order: Vec<(usize, &Val)> = vals.iter().enumerate().collect();
        order.sort_by_key(|(_, v)| definition_rank(&v.name));
        for (k, v) in order {
            self.e.stmt(&format!(
                "bufferization.materialize_in_destination {} in restrict writable %out{k} : ({}, {}) -> ()",
                v.name,
                tensor_ty(&v.ty),
                memref_ty(&v.ty)
            ));
        }
        self.e.stmt("return");
        self.e.indent(-2);
        self.e.set_loc(f.span);
        self.e.stmt("}");
        Ok(())
    }

    /// Lower `f`'s body with `args` bound to its parameters; returns the
    /// flattened results.
    fn body(&mut self, f: &Function, args: Vec<Val>) -> Result<Vec<Val>, LowerError> {
        let mut vals: Vec<Vec<Val>> = vec![Vec::new(); f.nodes.len()];
        self.region(f, RegionId(0), &args, &mut vals)
    }

    /// Lower region `rid` of `f` with `args` bound to its parameters; values
    /// of the enclosing regions (captures) are read from `vals`, indexed by
    /// node id, where this region's values are recorded too. Returns the
    /// flattened results.
    pub(crate) fn region(
        &mut self,
        f: &Function,
        rid: RegionId,
        args: &[Val],
        vals: &mut Vec<Vec<Val>>,
    ) -> Result<Vec<Val>, LowerError> {
        for &id in &f.region(rid).nodes {
            let node = f.node(id);
            self.e.set_loc(node.span);
            let operands: Vec<Val> = node.operands.iter().flat_map(|o| vals[o.index()].clone()).collect();
            let v = match &node.op {
                Op::Param(i) => vec![args.get(*i).cloned().ok_or_else(|| {
                    LowerError::Internal(format!("parameter {i} of '{}' is out of range", f.name))
                })?],
                Op::Call { function } => {
                    let callee = self.module.functions.get(*function).ok_or_else(|| {
                        LowerError::Internal(format!("call of function #{function}, which does not exist"))
                    })?;
                    self.body(callee, operands)?
                }
                Op::TopK { k } => self.top_k(Self::operand(&operands, 0)?, *k)?,
                // F1 (issue 3): ops with fn regions.
                Op::ReduceFn { .. } | Op::While { .. } | Op::Cond { .. } => self.control(f, node, &operands, vals)?,
                // F2 (issue 3): window_reduce inlines its fn region.
                Op::WindowReduce { .. } => self.window_reduce(f, node, &operands, vals)?,
                Op::Elem { index } => {
                    let Some(Type::Tuple(parts)) = node.operands.first().map(|o| &f.node(*o).ty) else {
                        return Err(LowerError::Internal("elem of a non-tuple value".into()));
                    };
                    let start: usize = parts[..*index].iter().map(|p| p.flatten().len()).sum();
                    let len = parts.get(*index).map_or(0, |p| p.flatten().len());
                    operands.get(start..start + len).map(<[Val]>::to_vec).ok_or_else(|| {
                        LowerError::Internal("elem index out of range".into())
                    })?
                }
                _ => {
                    let ty = node
                        .ty
                        .as_tensor()
                        .ok_or_else(|| LowerError::Internal(format!("'{}' has a tuple type", node.name)))?
                        .clone();
                    let name = if ty.checked_num_elements() == Some(0) {
                        // Nothing to compute: any zero-element tensor will do.
                        self.e.empty(&ty)
                    } else {
                        let operands = self.gather_source(f, node, vals, operands);
                        self.node(node, &operands, &ty)?
                    };
                    vec![Val { name, ty }]
                }
            };
            vals[id.index()] = v;
        }
        Ok(f.region(rid).results.iter().flat_map(|r| vals[r.index()].clone()).collect())
    }

    /// A strided slice (non-empty) as a copy generic reading `stride·d` of
    /// the window the slice spans. Bufferized, an `extract_slice` with
    /// strides is a `memref.copy` through the runtime, a strided element at
    /// a time (stride-2 slice of 2048² f32 0.31 ms); as a loop LLVM
    /// vectorizes it takes 0.12 (XLA 0.13). The window is cut out first (a
    /// subview once bufferized) so that every stride-1 axis reads `d` over
    /// its exact extent: linalg infers a loop's bound from a plain `d` in an
    /// input map and rejects an input longer than the result.
    fn strided_slice(&mut self, x: &Val, starts: &[usize], strides: &[usize], ty: &TensorType) -> String {
        let span: Vec<usize> = (0..ty.rank()).map(|i| (ty.shape[i] - 1) * strides[i] + 1).collect();
        let window = if span == x.ty.shape {
            x.clone()
        } else {
            let wty = TensorType::new(x.ty.dtype, span.clone());
            let name = self.e.op(&format!(
                "tensor.extract_slice {}[{}] [{}] [{}] : {} to {}",
                x.name,
                list(starts),
                list(&span),
                list(&vec![1; span.len()]),
                tensor_ty(&x.ty),
                tensor_ty(&wty)
            ));
            Val { name, ty: wty }
        };
        let map = (0..ty.rank())
            .map(|i| if strides[i] == 1 { format!("d{i}") } else { format!("d{i} * {}", strides[i]) })
            .collect::<Vec<_>>()
            .join(", ");
        let init = self.e.empty(ty);
        let outs = [GenericOperand { value: init, ty: ty.clone(), map: identity_map(ty.rank()) }];
        self.e.generic(ty.rank(), &[], &[window.operand(map)], &outs, |_, a| vec![a[0].clone()]).remove(0)
    }

    fn operand(ops: &[Val], i: usize) -> Result<&Val, LowerError> {
        ops.get(i).ok_or_else(|| LowerError::Internal(format!("missing operand {i}")))
    }

    /// An element-wise `linalg.generic` producing `out` from `ins`, each
    /// broadcast to `out`'s shape. `body` maps the input scalars to the result.
    pub fn elementwise(
        &mut self,
        ins: &[&Val],
        out: &TensorType,
        body: impl FnOnce(&mut Emitter, &[String]) -> String,
    ) -> String {
        let operands: Vec<GenericOperand> =
            ins.iter().map(|v| v.operand(broadcast_map(&v.ty.shape, &out.shape))).collect();
        let init = self.e.empty(out);
        let outs = [GenericOperand { value: init, ty: out.clone(), map: identity_map(out.rank()) }];
        let n = ins.len();
        self.e.generic(out.rank(), &[], &operands, &outs, |e, args| vec![body(e, &args[..n])]).remove(0)
    }

    /// `v` converted element-wise to dtype `d` (no-op when it already is).
    pub fn convert_tensor(&mut self, v: &Val, d: DType) -> Val {
        if v.ty.dtype == d {
            return v.clone();
        }
        let ty = v.ty.with_dtype(d);
        let from = v.ty.dtype;
        let name = self.elementwise(&[v], &ty, |e, a| e.convert(&a[0], from, d));
        Val { name, ty }
    }

    /// The source of a gather-like op (`take`, `take_along_axis`, `gather`),
    /// copied into a buffer of its own when it may bufferize to a view with
    /// non-unit strides, from which the vectorized gather (`vector.gather`)
    /// does not lower to LLVM (it left an `unrealized_conversion_cast` and
    /// failed the JIT): a strided slice (progen KNOWN_BUGS
    /// `take:strided_source`), or a value that is also placed into a larger
    /// tensor by `stack`, `concatenate`, `put_slice` or `pad`, because
    /// `eliminate-empty-tensors` then computes it straight into its place
    /// there — a column of the stacked result, say (generated seed 7231,
    /// `gen_7231.nxir`). Other sources are read where they are.
    fn gather_source(&mut self, f: &Function, node: &Node, vals: &[Vec<Val>], mut operands: Vec<Val>) -> Vec<Val> {
        // Called for every node: only gathers look further (the `placed`
        // scan below visits the whole function).
        if !matches!(node.op, Op::Take { .. } | Op::TakeAlongAxis { .. } | Op::Gather { .. }) {
            return operands;
        }
        // A slice of a strided slice is a strided view too, and so is a
        // reshape of one, or any op the frontend lowered to its operand
        // itself (a bitcast within one MLIR element type, a reverse of
        // unit axes, an identity slice, ...; generated seed 28136,
        // `gen_int28136.nxir`): walk the chain. A reshape that bufferizes
        // to a copy only costs an extra copy.
        let passed_through = |id: ValueId, operand: ValueId| {
            let name = |i: ValueId| vals.get(i.index()).and_then(|v| v.first()).map(|v| &v.name);
            name(id).is_some() && name(id) == name(operand)
        };
        let mut strided = false;
        let mut chain = Vec::new();
        let mut source = node.operands.first().copied();
        while let Some(id) = source {
            chain.push(id);
            let n = f.node(id);
            let first = n.operands.first().copied();
            source = match &n.op {
                Op::Slice { strides, .. } | Op::DynamicSlice { strides, .. } => {
                    strided |= strides.iter().any(|&s| s > 1);
                    first
                }
                Op::Reshape | Op::Squeeze { .. } => first,
                // A call's results are the callee's values, lowered inline,
                // which may be strided slices of its parameters: the walk
                // cannot see into it, so such a source is copied (generated
                // seed 35033, `gen_35033.nxir`: a `take` of a tuple element
                // returned by a call, a strided slice in the callee). Any
                // tuple element is copied alike — a `while`'s or `cond`'s
                // too, whose values the walk cannot see into either: a copy
                // more than needed at worst, never a wrong read.
                Op::Call { .. } | Op::Elem { .. } => {
                    strided = true;
                    None
                }
                _ if first.is_some_and(|o| passed_through(id, o)) => first,
                _ => None,
            };
        }
        let placed = f.nodes.iter().any(|n| {
            matches!(n.op, Op::Stack { .. } | Op::Concatenate { .. } | Op::PutSlice { .. } | Op::Pad { .. })
                && n.operands.iter().any(|o| chain.contains(o))
        });
        if (strided || placed) && let Some(x) = operands.first_mut() {
            *x = self.private_copy(x);
        }
        operands
    }

    /// A scalar SSA value holding the element of a rank-0 tensor.
    fn extract_scalar(&mut self, v: &Val) -> String {
        self.e.op(&format!("tensor.extract {}[] : {}", v.name, tensor_ty(&v.ty)))
    }

    /// `len` elements of `x` from `start` along `axis`, all of the other
    /// axes (a view: `tensor.extract_slice` with unit strides).
    pub(crate) fn axis_slice(&mut self, x: &Val, axis: usize, start: usize, len: usize) -> Val {
        let rank = x.ty.rank();
        let mut shape = x.ty.shape.clone();
        shape[axis] = len;
        let ty = TensorType::new(x.ty.dtype, shape);
        let offsets: Vec<usize> = (0..rank).map(|a| if a == axis { start } else { 0 }).collect();
        let name = self.e.op(&format!(
            "tensor.extract_slice {}[{}] [{}] [{}] : {} to {}",
            x.name,
            list(&offsets),
            list(&ty.shape),
            list(vec![1; rank]),
            tensor_ty(&x.ty),
            tensor_ty(&ty)
        ));
        Val { name, ty }
    }

    /// Row-major reshape (same element count) by collapsing to one dimension
    /// and expanding again; rank 0 goes through the reassociation `[]`.
    pub fn reshape(&mut self, v: &Val, to: &TensorType) -> String {
        if v.ty.shape == to.shape {
            return v.name.clone();
        }
        let (from_t, to_t) = (tensor_ty(&v.ty), tensor_ty(to));
        if v.ty.rank() == 0 {
            return self.e.op(&format!(
                "tensor.expand_shape {} [] output_shape [{}] : {from_t} into {to_t}",
                v.name,
                list(&to.shape)
            ));
        }
        if to.rank() == 0 {
            return self.e.op(&format!("tensor.collapse_shape {} [] : {from_t} into {to_t}", v.name));
        }
        // One collapse or expand when one shape merely groups the other's
        // dimensions (squeeze, keep_axes, adding unit axes): reshape
        // propagation during fusion handles those best.
        let groups = |g: Vec<Vec<usize>>| {
            g.iter().map(|grp| format!("[{}]", list(grp))).collect::<Vec<_>>().join(", ")
        };
        let collapse = if v.ty.rank() > to.rank() { reassociation(&v.ty.shape, &to.shape) } else { None };
        if let Some(g) = collapse {
            return self.e.op(&format!("tensor.collapse_shape {} [{}] : {from_t} into {to_t}", v.name, groups(g)));
        }
        let expand = if v.ty.rank() < to.rank() { reassociation(&to.shape, &v.ty.shape) } else { None };
        if let Some(g) = expand {
            return self.e.op(&format!(
                "tensor.expand_shape {} [{}] output_shape [{}] : {from_t} into {to_t}",
                v.name,
                groups(g),
                list(&to.shape)
            ));
        }
        let flat_ty = TensorType::new(v.ty.dtype, vec![v.ty.num_elements()]);
        let flat = if v.ty.rank() == 1 {
            v.name.clone()
        } else {
            self.e.op(&format!(
                "tensor.collapse_shape {} [[{}]] : {from_t} into {}",
                v.name,
                list(0..v.ty.rank()),
                tensor_ty(&flat_ty)
            ))
        };
        if to.rank() == 1 {
            return flat;
        }
        self.e.op(&format!(
            "tensor.expand_shape {flat} [[{}]] output_shape [{}] : {} into {to_t}",
            list(0..to.rank()),
            list(&to.shape),
            tensor_ty(&flat_ty)
        ))
    }

    /// Lower one tensor-valued node whose result has at least one element.
    fn node(&mut self, node: &Node, ops: &[Val], ty: &TensorType) -> Result<String, LowerError> {
        let d = ty.dtype;
        Ok(match &node.op {
            Op::Param(_) | Op::Call { .. } | Op::Elem { .. } => {
                return Err(LowerError::Internal("structural op reached the tensor lowering".into()));
            }
            // A splat of more than one element is a fill of a scalar constant:
            // a `dense` splat attribute would be materialized element by element
            // once bufferized (gigabytes of global data for a large type).
            Op::Constant(lit) if ty.rank() > 0 => {
                let c = self.e.op(&format!("arith.constant {} : {}", literal_attr(d, *lit), elem(d)));
                self.e.fill(&c, ty)
            }
            Op::Constant(lit) => {
                self.e.op(&format!("arith.constant dense<{}> : {}", literal_attr(d, *lit), tensor_ty(ty)))
            }
            Op::Tensor(lits) => {
                if lits.len() != ty.num_elements() {
                    return Err(LowerError::Internal("tensor literal size differs from its type".into()));
                }
                let data = nested(&ty.shape, &mut lits.iter().map(|l| literal_attr(d, *l)));
                self.e.op(&format!("arith.constant dense<{data}> : {}", tensor_ty(ty)))
            }
            Op::Iota(axis) => {
                let (axis, shape) = (*axis, ty.shape.clone());
                let strides = ty.strides();
                self.elementwise(&[], ty, |e, _| {
                    let idx = match axis {
                        Some(k) => e.op(&format!("linalg.index {k} : index")),
                        None => e.flat_index(&shape, &strides),
                    };
                    e.index_to(&idx, d)
                })
            }
            Op::Eye => {
                let r = ty.rank();
                if r < 2 {
                    return Err(LowerError::Internal("eye of rank below 2".into()));
                }
                self.elementwise(&[], ty, |e, _| {
                    let i = e.op(&format!("linalg.index {} : index", r - 2));
                    let j = e.op(&format!("linalg.index {} : index", r - 1));
                    let eq = e.op(&format!("arith.cmpi eq, {i}, {j} : index"));
                    let one = e.num_const(d, 1.0);
                    let zero = e.num_const(d, 0.0);
                    e.select(&eq, &one, &zero, elem(d))
                })
            }
            // The scalar semantics live in one place, shared with the `fn`
            // bodies that reductions inline (`control::scalar_node`).
            Op::Unary(_) | Op::Binary { .. } | Op::Select { .. } | Op::Clip { .. } | Op::AsType => {
                let n = match node.op {
                    Op::Unary(_) | Op::AsType => 1,
                    Op::Binary { .. } => 2,
                    _ => 3,
                };
                let ins: Vec<&Val> = (0..n).map(|i| Self::operand(ops, i)).collect::<Result<_, _>>()?;
                let dtypes: Vec<DType> = ins.iter().map(|v| v.ty.dtype).collect();
                let mut failure = None;
                let r = self.elementwise(&ins, ty, |e, a| {
                    let args: Vec<(String, DType)> = a.iter().cloned().zip(dtypes).collect();
                    crate::control::scalar_node(e, &node.op, &args, d).unwrap_or_else(|err| {
                        failure = Some(err);
                        a[0].clone()
                    })
                });
                if let Some(err) = failure {
                    return Err(err);
                }
                r
            }
            Op::Bitcast => {
                let x = Self::operand(ops, 0)?;
                let (fe, te) = (elem(x.ty.dtype), elem(d));
                if fe == te {
                    x.name.clone()
                } else {
                    self.elementwise(&[x], ty, |e, a| e.cast("arith.bitcast", &a[0], fe, te))
                }
            }
            Op::Reshape | Op::Squeeze { .. } => {
                let x = Self::operand(ops, 0)?.clone();
                self.reshape(&x, ty)
            }
            Op::Broadcast { axes } => {
                let x = Self::operand(ops, 0)?;
                let map = axes
                    .iter()
                    .enumerate()
                    .map(|(i, &a)| {
                        if x.ty.shape[i] == 1 && ty.shape[a] != 1 { "0".to_string() } else { format!("d{a}") }
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let init = self.e.empty(ty);
                let outs = [GenericOperand { value: init, ty: ty.clone(), map: identity_map(ty.rank()) }];
                self.e.generic(ty.rank(), &[], &[x.operand(map)], &outs, |_, a| vec![a[0].clone()]).remove(0)
            }
            Op::Transpose { perm } => {
                let x = Self::operand(ops, 0)?;
                self.permuted(x, perm).name
            }
            Op::Slice { starts, lengths: _, strides } => {
                let x = Self::operand(ops, 0)?;
                if x.ty.shape == ty.shape && strides.iter().all(|&s| s == 1) {
                    x.name.clone()
                } else if strides.iter().any(|&s| s != 1) && ty.checked_num_elements() != Some(0) {
                    let x = x.clone();
                    self.strided_slice(&x, starts, strides, ty)
                } else {
                    // extract_slice sizes count result elements, i.e. the result shape.
                    self.e.op(&format!(
                        "tensor.extract_slice {}[{}] [{}] [{}] : {} to {}",
                        x.name,
                        list(starts),
                        list(&ty.shape),
                        list(strides),
                        tensor_ty(&x.ty),
                        tensor_ty(ty)
                    ))
                }
            }
            Op::Pad { config } => {
                let (x, pv) = (Self::operand(ops, 0)?.clone(), Self::operand(ops, 1)?.clone());
                self.pad(&x, &pv, config, ty)?
            }
            Op::Reverse { axes } => {
                let x = Self::operand(ops, 0)?;
                let axes: Vec<usize> = axes.iter().copied().filter(|&a| x.ty.shape[a] > 1).collect();
                if axes.is_empty() {
                    x.name.clone()
                } else {
                    let map = (0..ty.rank())
                        .map(|i| if axes.contains(&i) { format!("{} - d{i}", ty.shape[i] - 1) } else { format!("d{i}") })
                        .collect::<Vec<_>>()
                        .join(", ");
                    let init = self.e.empty(ty);
                    let outs = [GenericOperand { value: init, ty: ty.clone(), map: identity_map(ty.rank()) }];
                    self.e.generic(ty.rank(), &[], &[x.operand(map)], &outs, |_, a| vec![a[0].clone()]).remove(0)
                }
            }
            Op::Concatenate { axis } => {
                let mut acc = self.e.empty(ty);
                let mut offset = 0;
                for v in ops {
                    let v = self.convert_tensor(v, d);
                    let n = v.ty.shape[*axis];
                    if v.ty.checked_num_elements() != Some(0) {
                        let offs: Vec<usize> = (0..ty.rank()).map(|i| if i == *axis { offset } else { 0 }).collect();
                        acc = self.e.op(&format!(
                            "tensor.insert_slice {} into {acc}[{}] [{}] [{}] : {} into {}",
                            v.name,
                            list(&offs),
                            list(&v.ty.shape),
                            list(vec![1; ty.rank()]),
                            tensor_ty(&v.ty),
                            tensor_ty(ty)
                        ));
                    }
                    offset += n;
                }
                acc
            }
            Op::Stack { axis } => {
                let mut acc = self.e.empty(ty);
                for (k, v) in ops.iter().enumerate() {
                    let v = self.convert_tensor(v, d);
                    let offs: Vec<usize> = (0..ty.rank()).map(|i| if i == *axis { k } else { 0 }).collect();
                    let sizes: Vec<usize> =
                        (0..ty.rank()).map(|i| if i == *axis { 1 } else { ty.shape[i] }).collect();
                    acc = self.e.op(&format!(
                        "tensor.insert_slice {} into {acc}[{}] [{}] [{}] : {} into {}",
                        v.name,
                        list(&offs),
                        list(&sizes),
                        list(vec![1; ty.rank()]),
                        tensor_ty(&v.ty),
                        tensor_ty(ty)
                    ));
                }
                acc
            }
            Op::Dot { contract_a, batch_a, contract_b, batch_b } => {
                let (a, b) = (Self::operand(ops, 0)?, Self::operand(ops, 1)?);
                self.dot(a, b, contract_a, batch_a, contract_b, batch_b, ty)?
            }
            Op::Reduce { kind, axes, keep_axes: _ } => {
                let x = Self::operand(ops, 0)?.clone();
                self.reduce(&x, *kind, axes, ty)
            }
            Op::ArgReduce { max, axis, tie_break_high, keep_axis: _ } => {
                let x = Self::operand(ops, 0)?.clone();
                self.arg_reduce(&x, *max, *axis, *tie_break_high, ty)
            }
            // F2 (issue 3): convolution and window reductions.
            Op::Conv(spec) => {
                let (x, k) = (Self::operand(ops, 0)?.clone(), Self::operand(ops, 1)?.clone());
                self.conv(&x, &k, spec, ty)?
            }
            Op::Window { kind, window, strides, padding, dilations } => {
                let x = Self::operand(ops, 0)?.clone();
                self.window(&x, *kind, window, strides, padding, dilations, ty)?
            }
            // F4 (issue 3): linear algebra.
            Op::TriangularSolve { left_side, lower, transpose_a } => {
                let (a, b) = (Self::operand(ops, 0)?.clone(), Self::operand(ops, 1)?.clone());
                self.triangular_solve(&a, &b, *left_side, *lower, *transpose_a, ty)?
            }
            // F3 (issue 3): scans, sorting, indexing.
            Op::WindowScatter { max, window, strides, padding } => {
                let (x, src, init) = (Self::operand(ops, 0)?.clone(), Self::operand(ops, 1)?.clone(), Self::operand(ops, 2)?.clone());
                self.window_scatter(&x, &src, &init, *max, window, strides, padding, ty)?
            }
            Op::Indexed { add, axes } => {
                let (x, i, u) = (Self::operand(ops, 0)?.clone(), Self::operand(ops, 1)?.clone(), Self::operand(ops, 2)?.clone());
                self.indexed(&x, &i, &u, axes, *add, ty)?
            }
            Op::Cumulative { kind, axis, reverse } => {
                let x = Self::operand(ops, 0)?.clone();
                self.cumulative(&x, *kind, *axis, *reverse, ty)?
            }
            Op::Sort { axis, descending } | Op::Argsort { axis, descending } => {
                let x = Self::operand(ops, 0)?.clone();
                self.sort(&x, *axis, *descending, matches!(node.op, Op::Argsort { .. }), ty)
            }
            Op::Take { axis } => {
                let (x, idx) = (Self::operand(ops, 0)?.clone(), Self::operand(ops, 1)?.clone());
                self.take(&x, &idx, *axis, ty)
            }
            Op::TakeAlongAxis { axis } => {
                let (x, idx) = (Self::operand(ops, 0)?.clone(), Self::operand(ops, 1)?.clone());
                self.take_along_axis(&x, &idx, *axis, ty)
            }
            Op::Gather { axes } => {
                let (x, idx) = (Self::operand(ops, 0)?.clone(), Self::operand(ops, 1)?.clone());
                self.gather(&x, &idx, axes, ty)
            }
            Op::DynamicSlice { starts, lengths, strides } => {
                let x = Self::operand(ops, 0)?.clone();
                self.dynamic_slice(&x, &ops[1..], starts, lengths, strides, ty)?
            }
            Op::PutSlice { starts } => {
                let (x, y) = (Self::operand(ops, 0)?.clone(), Self::operand(ops, 1)?.clone());
                self.put_slice(&x, &y, &ops[2..], starts, ty)?
            }
            // Ops added to the shared graph after this lowering was written
            // become a clean error instead of a build break for everyone.
            #[allow(unreachable_patterns, reason = "future graph::Op variants")]
            other => return Err(LowerError::Unsupported(format!("{other:?}"))),
        })
    }

    /// Nx `pad`: fill with the pad value, then insert the source elements that
    /// land inside the result (negative low/high crop them) with stride
    /// `interior + 1`.
    pub(crate) fn pad(&mut self, x: &Val, pv: &Val, config: &[(i64, i64, i64)], ty: &TensorType) -> Result<String, LowerError> {
        if config.len() != x.ty.rank() {
            return Err(LowerError::Internal("pad config rank differs from the operand".into()));
        }
        let pv = self.convert_tensor(pv, ty.dtype);
        let s = self.extract_scalar(&pv);
        let filled = self.e.fill(&s, ty);
        let (mut first, mut count, mut dest, mut step) = (vec![], vec![], vec![], vec![]);
        for (i, &(lo, _hi, interior)) in config.iter().enumerate() {
            let n = x.ty.shape[i] as i64;
            let st = interior + 1;
            let out = ty.shape[i] as i64;
            // Source index j lands at lo + j*st; keep those in [0, out).
            let j0 = if lo >= 0 { 0 } else { (-lo + st - 1) / st };
            let j1 = if out - 1 - lo < 0 { -1 } else { ((out - 1 - lo) / st).min(n - 1) };
            let c = (j1 - j0 + 1).max(0);
            first.push(j0);
            count.push(c);
            dest.push(lo + j0 * st);
            step.push(st);
        }
        if count.contains(&0) {
            return Ok(filled);
        }
        let part_ty = TensorType::new(x.ty.dtype, count.iter().map(|&c| c as usize).collect::<Vec<_>>());
        let part = if part_ty.shape == x.ty.shape {
            x.name.clone()
        } else {
            self.e.op(&format!(
                "tensor.extract_slice {}[{}] [{}] [{}] : {} to {}",
                x.name,
                list(&first),
                list(&count),
                list(vec![1; x.ty.rank()]),
                tensor_ty(&x.ty),
                tensor_ty(&part_ty)
            ))
        };
        Ok(self.e.op(&format!(
            "tensor.insert_slice {part} into {filled}[{}] [{}] [{}] : {} into {}",
            list(&dest),
            list(&count),
            list(&step),
            tensor_ty(&part_ty),
            tensor_ty(ty)
        )))
    }
}

/// Contiguous groups of `long`'s axes whose sizes multiply to each of
/// `short`'s dimensions (trailing unit axes join the last group); `None`
/// when `short` is not such a grouping. Both ranks are at least 1.
fn reassociation(long: &[usize], short: &[usize]) -> Option<Vec<Vec<usize>>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut i = 0;
    for &t in short {
        let mut group = Vec::new();
        let mut prod = 1usize;
        loop {
            let &d = long.get(i)?;
            group.push(i);
            prod = prod.checked_mul(d)?;
            i += 1;
            if prod == t {
                break;
            }
            if prod > t {
                return None;
            }
        }
        groups.push(group);
    }
    while i < long.len() {
        if long[i] != 1 {
            return None;
        }
        groups.last_mut()?.push(i);
        i += 1;
    }
    Some(groups)
}

/// `[[a, b], [c, d]]` from row-major elements; rank 0 is the bare element.
fn nested(shape: &[usize], it: &mut impl Iterator<Item = String>) -> String {
    match shape.split_first() {
        None => it.next().unwrap_or_default(),
        Some((&n, rest)) => format!("[{}]", (0..n).map(|_| nested(rest, it)).collect::<Vec<_>>().join(", ")),
    }
}

impl Emitter<'_> {
    /// Row-major flat index of the current loop point, as an `index`.
    pub fn flat_index(&mut self, shape: &[usize], strides: &[usize]) -> String {
        let mut acc: Option<String> = None;
        for (k, &st) in strides.iter().enumerate().take(shape.len()) {
            let i = self.op(&format!("linalg.index {k} : index"));
            let term = if st == 1 {
                i
            } else {
                let c = self.op(&format!("arith.constant {st} : index"));
                self.op(&format!("arith.muli {i}, {c} : index"))
            };
            acc = Some(match acc {
                None => term,
                Some(a) => self.op(&format!("arith.addi {a}, {term} : index")),
            });
        }
        acc.unwrap_or_else(|| self.op("arith.constant 0 : index"))
    }

    /// An `index` value converted to dtype `d` (ints wrap, floats round).
    pub fn index_to(&mut self, idx: &str, d: DType) -> String {
        if d.is_float() {
            let i = self.cast("arith.index_cast", idx, "index", "i64");
            self.cast("arith.sitofp", &i, "i64", elem(d))
        } else {
            self.cast("arith.index_cast", idx, "index", elem(d))
        }
    }
}

/// Where the SSA value `name` was defined among a function's values:
/// parameters (`%argN`) first, then the emitter's numbered values (`%N`) in
/// number order, which is the order the emitter wrote them; any other name
/// after them (the sort is stable, so those keep their order).
fn definition_rank(name: &str) -> (u8, u64) {
    if let Some(n) = name.strip_prefix("%arg").and_then(|n| n.parse().ok()) {
        (0, n)
    } else if let Some(n) = name.strip_prefix('%').and_then(|n| n.parse().ok()) {
        (1, n)
    } else {
        (2, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::reassociation;

    #[test]
    fn reassociation_groups_contiguous_axes() {
        assert_eq!(reassociation(&[2, 1, 3, 1], &[2, 3]), Some(vec![vec![0], vec![1, 2, 3]]));
        assert_eq!(reassociation(&[1, 2, 3], &[2, 3]), Some(vec![vec![0, 1], vec![2]]));
        assert_eq!(reassociation(&[2, 3, 4], &[6, 4]), Some(vec![vec![0, 1], vec![2]]));
        assert_eq!(reassociation(&[1, 1], &[1]), Some(vec![vec![0, 1]]));
        assert_eq!(reassociation(&[2, 1], &[2, 1]), Some(vec![vec![0], vec![1]]));
        // 2x3 -> 3x2 regroups elements across axes: not a grouping.
        assert_eq!(reassociation(&[2, 3], &[3, 2]), None);
        assert_eq!(reassociation(&[4, 3], &[2, 6]), None);
    }
}

