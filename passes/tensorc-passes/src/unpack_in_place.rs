//! `tensorc-unpack-in-place`: a packed matmul whose packed result is only
//! copied out to the result computes in the result itself, seen through a
//! view in the packed layout.
//!
//! Why: the packed schedule (`packed_matmul.rs`) accumulates C in a
//! `[M/tm][N/tn][tm][tn]` temporary, zero-filled first, and an unpack copies
//! it to the `M×N` result at the end: for W3 (2048³) 16 MiB filled, then 16
//! MiB read and 16 MiB written once more, and a second 16 MiB buffer in the
//! cache. When M and N are multiples of the tile (no padding), the
//! temporary's element `[a][b][c][d]` is the result's `[a·tm + c][b·tn + d]`,
//! so a strided view of the result (`expand_shape` to `[M/tm][tm][N/tn][tn]`,
//! `transpose` to `[M/tm][N/tn][tm][tn]`) can stand for the temporary and
//! the unpack becomes a copy of each element onto itself, which is dropped.
//! The register tiles then read and write rows of the result `4·N` bytes
//! apart instead of one contiguous block; `tensorc-late-accumulate`
//! prefetches them the same way.
//!
//! Which buffers: a `memref.alloc` of a static rank-4 identity-layout
//! memref `[P][Q][tm][tn]` whose uses are only `memref.dealloc`, vector
//! transfers, unit-stride rank-preserving `memref.subview`s (and their
//! transfers and subviews), and exactly one read by the unpack: a loop nest
//! `for i in 0..P·tm step tm { for j in 0..Q·tn step tn {
//! out[i, j] = read(alloc[i floordiv tm, j floordiv tn, 0, 0]) } }` holding
//! nothing else, writing a `vector<tm×tn>` to a static `P·tm × Q·tn`
//! memref `out` with rows one after the other (row stride `Q·tn`, unit
//! column stride, any offset) that nothing else uses and that is defined
//! before the buffer, or (a batch element's slice of a batched result,
//! made inside the loop over the batch, while the buffer was hoisted out
//! of it) before every use of the buffer but its deallocations. A padded product (M or N not a multiple of the tile)
//! or a fused epilogue (W6's bias + relu reads the packed result) keeps its
//! temporary. It runs right after bufferization, before
//! `tensorc-late-accumulate` and the outlining of parallel loops (their
//! bodies take the view's type).

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-unpack-in-place";

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Compute packed matmul results in a strided view of the result instead of a packed temporary",
        &[DialectHandle::memref()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { unpack_in_place(module) };
            true
        },
    )
}

/// Rewrites every eligible packed temporary of `module`; returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn unpack_in_place(module: MlirOperation) -> usize {
    unsafe { rewrite_all(module, "memref.alloc", |a| candidate(a), |c| rewrite(c)) }
}

/// A packed temporary to replace, its unpack nest and the result.
struct Candidate {
    alloc: MlirOperation,
    /// Where the view of the result goes (before this op).
    at: MlirOperation,
    /// The outer loop of the unpack nest and the write in it.
    unpack: MlirOperation,
    out: MlirValue,
    /// `[P, Q, tm, tn]`.
    shape: [i64; 4],
    deallocs: Vec<MlirOperation>,
}

/// Whether every use of the memref `v` (a subview of the temporary) is a
/// vector transfer of it or a unit-stride rank-preserving subview whose
/// uses are such too.
unsafe fn only_transfers_and_views(v: MlirValue) -> bool {
    unsafe {
        uses(v)
            .into_iter()
            .all(|(op, at)| match op_name(op).as_str() {
                "vector.transfer_read" => at == 0,
                "vector.transfer_write" => at == 1,
                "memref.subview" => {
                    at == 0 && plain_view(op) && only_transfers_and_views(result(op))
                }
                _ => false,
            })
    }
}

/// A subview with unit strides that keeps the rank.
unsafe fn plain_view(view: MlirOperation) -> bool {
    unsafe {
        let strides = mlirOperationGetAttributeByName(view, string_ref("static_strides"));
        let (st, rt) = (
            mlirValueGetType(mlirOperationGetOperand(view, 0)),
            mlirValueGetType(result(view)),
        );
        !strides.ptr.is_null()
            && (0..mlirDenseArrayGetNumElements(strides))
                .all(|d| mlirDenseI64ArrayGetElement(strides, d) == 1)
            && mlirShapedTypeGetRank(st) == mlirShapedTypeGetRank(rt)
            && mlirShapedTypeHasStaticShape(rt)
    }
}

unsafe fn candidate(alloc: MlirOperation) -> Option<Candidate> {
    unsafe {
        let a = result(alloc);
        let t = mlirValueGetType(a);
        if mlirOperationGetNumOperands(alloc) != 0
            || !mlirShapedTypeHasStaticShape(t)
            || mlirShapedTypeGetRank(t) != 4
            || !mlirAffineMapIsIdentity(mlirMemRefTypeGetAffineMap(t))
        {
            return None;
        }
        let shape = [0, 1, 2, 3].map(|d| mlirShapedTypeGetDimSize(t, d));
        let mut deallocs = Vec::new();
        let mut unpack = None;
        for (op, at) in uses(a) {
            match op_name(op).as_str() {
                "memref.dealloc" => deallocs.push(op),
                "vector.transfer_write" if at == 1 => {}
                "memref.subview"
                    if at == 0 && plain_view(op) && only_transfers_and_views(result(op)) => {}
                "vector.transfer_read" if at == 0 => {
                    if unpack.is_some() {
                        return None;
                    }
                    unpack = Some(unpack_nest(op, shape)?);
                }
                _ => return None,
            }
        }
        let (unpack, out) = unpack?;
        // The result must exist where the temporary did, or (a batch
        // element's slice of the result, made in the loop over the batch
        // while the temporary was hoisted out of it) before every use of
        // the temporary but its deallocations, which go.
        let at = if mlirValueIsAOpResult(out) {
            let def = mlirOpResultGetOwner(out);
            if mlirOperationGetBlock(def).ptr == mlirOperationGetBlock(alloc).ptr
                && mlirOperationIsBeforeInBlock(def, alloc)
            {
                alloc
            } else if uses(a)
                .into_iter()
                .filter(|(op, _)| op_name(*op) != "memref.dealloc")
                .all(|(op, _)| after_in_block(op, def))
            {
                mlirOperationGetNextInBlock(def)
            } else {
                return None;
            }
        } else if mlirBlockGetParentOperation(mlirBlockArgumentGetOwner(out)).ptr
            == mlirBlockGetParentOperation(mlirOperationGetBlock(alloc)).ptr
        {
            alloc
        } else {
            return None;
        };
        Some(Candidate {
            alloc,
            at,
            unpack,
            out,
            shape,
            deallocs,
        })
    }
}

/// Whether `op`, or the ancestor of `op` in `def`'s block, comes after
/// `def` in that block.
unsafe fn after_in_block(op: MlirOperation, def: MlirOperation) -> bool {
    unsafe {
        let block = mlirOperationGetBlock(def);
        let mut o = op;
        while !o.ptr.is_null() && mlirOperationGetBlock(o).ptr != block.ptr {
            o = mlirOperationGetParentOperation(o);
        }
        !o.ptr.is_null() && o.ptr != def.ptr && mlirOperationIsBeforeInBlock(def, o)
    }
}

/// The unpack nest around `read` (a read of the temporary) and the memref it
/// writes to, if it is exactly the unpack described in the module comment.
unsafe fn unpack_nest(read: MlirOperation, shape: [i64; 4]) -> Option<(MlirOperation, MlirValue)> {
    unsafe {
        let [p, q, tm, tn] = shape;
        // read(alloc[i floordiv tm, j floordiv tn, 0, 0]) : vector<tm x tn>.
        let vt = mlirValueGetType(result(read));
        if mlirOperationGetNumOperands(read) != 6
            || mlirShapedTypeGetRank(vt) != 2
            || mlirShapedTypeGetDimSize(vt, 0) != tm
            || mlirShapedTypeGetDimSize(vt, 1) != tn
            || constant_int(mlirOperationGetOperand(read, 3)) != Some(0)
            || constant_int(mlirOperationGetOperand(read, 4)) != Some(0)
            || !default_map(read, 4, 2)
        {
            return None;
        }
        let (write, _) = sole_use(result(read))?;
        if op_name(write) != "vector.transfer_write" || mlirOperationGetNumOperands(write) != 4 {
            return None;
        }
        let out = mlirOperationGetOperand(write, 1);
        let ot = mlirValueGetType(out);
        if op_name(write) != "vector.transfer_write"
            || mlirOperationGetNumOperands(write) != 4
            || !default_map(write, 2, 2)
            || !mlirTypeIsAMemRef(ot)
            || !mlirShapedTypeHasStaticShape(ot)
            || mlirShapedTypeGetRank(ot) != 2
            || !row_major(ot)
            || mlirShapedTypeGetDimSize(ot, 0) != p * tm
            || mlirShapedTypeGetDimSize(ot, 1) != q * tn
            || uses(out).len() != 1
        {
            return None;
        }
        // The j loop around the write, the i loop around it.
        let inner = mlirOperationGetParentOperation(write);
        let outer = mlirOperationGetParentOperation(inner);
        if op_name(inner) != "scf.for" || op_name(outer) != "scf.for" {
            return None;
        }
        let (i, j) = (loop_iv(outer), loop_iv(inner));
        let divided = |v: MlirValue, iv: MlirValue, tile: i64| {
            defined_by(v, "affine.apply").is_some_and(|ap| {
                mlirOperationGetNumOperands(ap) == 1
                    && mlirValueEqual(mlirOperationGetOperand(ap, 0), iv)
                    && print_attr(mlirOperationGetAttributeByName(ap, string_ref("map")))
                        == format!("affine_map<(d0) -> (d0 floordiv {tile})>")
            })
        };
        let ok = mlirValueEqual(mlirOperationGetOperand(write, 2), i)
            && mlirValueEqual(mlirOperationGetOperand(write, 3), j)
            && divided(mlirOperationGetOperand(read, 1), i, tm)
            && divided(mlirOperationGetOperand(read, 2), j, tn)
            && mlirOperationGetNumResults(outer) == 0
            && constant_bounds(outer) == Some((0, p * tm, tm))
            && mlirOperationGetNumResults(inner) == 0
            && constant_bounds(inner) == Some((0, q * tn, tn))
            && body_is(outer, &["affine.apply", "scf.for", "scf.yield"])
            && body_is(
                inner,
                &[
                    "affine.apply",
                    "vector.transfer_read",
                    "vector.transfer_write",
                    "scf.yield",
                ],
            );
        ok.then_some((outer, out))
    }
}

/// Whether the rank-2 memref type `t` has rows one after the other (row
/// stride = row length, unit column stride) at any offset: the identity
/// layout, or a slice of one batch element of a batched result.
unsafe fn row_major(t: MlirType) -> bool {
    unsafe { strides_and_offset(t).is_some_and(|(s, _)| s == [mlirShapedTypeGetDimSize(t, 1), 1]) }
}

/// The strides and the offset (`None` when dynamic) of the rank-2 memref
/// type `t`, if its layout is strided.
unsafe fn strides_and_offset(t: MlirType) -> Option<([i64; 2], Option<i64>)> {
    unsafe {
        let mut strides = [0i64; 2];
        let mut offset = 0i64;
        (mlirMemRefTypeGetStridesAndOffset(t, strides.as_mut_ptr(), &mut offset).value != 0).then(
            || (strides, (!mlirShapedTypeIsDynamicStrideOrOffset(offset)).then_some(offset)),
        )
    }
}

/// Whether a transfer of a `vrank` vector on a `rank` memref has the
/// default (minor identity) map.
unsafe fn default_map(op: MlirOperation, rank: usize, vrank: usize) -> bool {
    unsafe {
        let map = mlirOperationGetAttributeByName(op, string_ref("permutation_map"));
        map.ptr.is_null() || is_minor_identity(map, rank, vrank)
    }
}

unsafe fn loop_iv(lp: MlirOperation) -> MlirValue {
    unsafe { mlirBlockGetArgument(mlirRegionGetFirstBlock(mlirOperationGetRegion(lp, 0)), 0) }
}

/// Whether the loop's body holds exactly the ops named, in order.
unsafe fn body_is(lp: MlirOperation, names: &[&str]) -> bool {
    unsafe {
        let mut op =
            mlirBlockGetFirstOperation(mlirRegionGetFirstBlock(mlirOperationGetRegion(lp, 0)));
        for name in names {
            if op.ptr.is_null() || op_name(op) != *name {
                return false;
            }
            op = mlirOperationGetNextInBlock(op);
        }
        op.ptr.is_null()
    }
}

/// The strides of the packed view of an `M×N` result: `[tm·N, tn, N, 1]`.
fn view_strides(shape: [i64; 4]) -> [i64; 4] {
    let [_, q, tm, tn] = shape;
    let n = q * tn;
    [tm * n, tn, n, 1]
}

unsafe fn rewrite(c: &Candidate) {
    unsafe {
        let ctx = mlirOperationGetContext(c.alloc);
        let loc = mlirOperationGetLocation(c.alloc);
        let [p, q, tm, tn] = c.shape;
        let elem = print_type(mlirShapedTypeGetElementType(mlirValueGetType(result(
            c.alloc,
        ))));
        let strides = view_strides(c.shape);
        let strided = |shape: &[i64], offset: &str| {
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            let s: Vec<String> = strides.iter().map(|d| d.to_string()).collect();
            parse_type(
                ctx,
                &format!(
                    "memref<{}x{elem}, strided<[{}]{offset}>>",
                    dims.join("x"),
                    s.join(", ")
                ),
            )
            .expect("a strided memref type tensorc spells itself")
        };
        // The result's offset: 0, another constant, or dynamic (`None`: a
        // batch element's slice; `candidate` checked the layout is strided).
        let offset = strides_and_offset(mlirValueGetType(c.out)).and_then(|(_, o)| o);
        let spelled = match offset {
            Some(o) => format!(", offset: {o}"),
            None => ", offset: ?".to_owned(),
        };
        // `[P][tm][Q][tn]`: the view's strides before the transpose.
        let [sp, sq, sm, sn] = strides;
        let expanded = build(
            ctx,
            "memref.expand_shape",
            loc,
            &[c.out],
            &[parse_type(
                ctx,
                &if mlirAffineMapIsIdentity(mlirMemRefTypeGetAffineMap(mlirValueGetType(c.out))) {
                    format!("memref<{p}x{tm}x{q}x{tn}x{elem}>")
                } else {
                    format!("memref<{p}x{tm}x{q}x{tn}x{elem}, strided<[{sp}, {sm}, {sq}, {sn}]{spelled}>>")
                },
            )
            .expect("memref type")],
            &[
                ("reassociation", attr(ctx, "[[0, 1], [2, 3]]")),
                (
                    "static_output_shape",
                    attr(ctx, &format!("array<i64: {p}, {tm}, {q}, {tn}>")),
                ),
            ],
        );
        let expanded = insert_before(c.at, expanded);
        let view = build(
            ctx,
            "memref.transpose",
            loc,
            &[expanded],
            &[strided(&[p, q, tm, tn], &spelled)],
            &[(
                "permutation",
                attr(ctx, "affine_map<(d0, d1, d2, d3) -> (d0, d2, d1, d3)>"),
            )],
        );
        let view = insert_before(c.at, view);
        // The unpack is a copy onto itself now; the view is no buffer.
        mlirOperationDestroy(c.unpack);
        for &d in &c.deallocs {
            mlirOperationDestroy(d);
        }
        mlirValueReplaceAllUsesOfWith(result(c.alloc), view);
        mlirOperationDestroy(c.alloc);
        retype_views(view, offset, &strided, strides);
    }
}

/// Gives every subview of `v` (transitively) the strides of the view and
/// its offset: static when `v`'s offset (`offset`) and the subview's
/// offsets are, dynamic otherwise (the verifier wants the static one when
/// it can be computed).
unsafe fn retype_views(
    v: MlirValue,
    offset: Option<i64>,
    strided: &dyn Fn(&[i64], &str) -> MlirType,
    strides: [i64; 4],
) {
    unsafe {
        for (op, _) in uses(v) {
            if op_name(op) != "memref.subview" {
                continue;
            }
            let offsets = mlirOperationGetAttributeByName(op, string_ref("static_offsets"));
            let mut own = offset;
            for d in 0..4 {
                let o = mlirDenseI64ArrayGetElement(offsets, d as isize);
                own = match own {
                    Some(base) if !mlirShapedTypeIsDynamicSize(o) => Some(base + o * strides[d]),
                    _ => None,
                };
            }
            let r = result(op);
            let t = mlirValueGetType(r);
            let shape: Vec<i64> = (0..mlirShapedTypeGetRank(t))
                .map(|d| mlirShapedTypeGetDimSize(t, d as isize))
                .collect();
            let spelled = match own {
                Some(o) => format!(", offset: {o}"),
                None => ", offset: ?".to_owned(),
            };
            mlirValueSetType(r, strided(&shape, &spelled));
            retype_views(r, own, strided, strides);
        }
    }
}
