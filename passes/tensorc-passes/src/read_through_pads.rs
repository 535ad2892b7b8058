//! `tensorc-read-through-pads`: a padded copy that is only read becomes
//! reads of the original, masked where they leave it.
//!
//! Why: `structured.pack` pads an operand whose size is not a multiple of
//! the packing tile (`packed_matmul.rs`), and bufferization makes each pad a
//! temporary of the padded size, filled with the padding value and then
//! overwritten with a copy of the operand, which the packing transposes
//! read. For a 1000³ matmul that is 4 MiB filled and 4 MiB copied for A
//! before its pack, and the same per K block for the last, partial block of
//! B's columns: about 5 % of the product's time, two passes over memory
//! the pack itself already makes. Every read of the temporary is a read of
//! the operand at the same indices where those lie inside it, and the
//! padding value elsewhere, which is what a `vector.transfer_read` of the
//! operand with that padding value and `in_bounds = false` on the
//! dimensions that can leave it says. Reads that provably stay inside keep
//! `in_bounds = true` (an interval bound of their indices, through
//! `scf.for` induction variables, `affine.apply`, `affine.min` and index
//! arithmetic), so only the edge reads are masked.
//!
//! Which buffers: a `memref.alloc` of a static identity-layout memref `P`
//! whose uses are exactly one fill (`linalg.fill`, or a `linalg.map` with
//! no inputs yielding an `arith.constant`), one zero-offset unit-stride
//! rank-preserving `memref.subview` that is only the target of one
//! `memref.copy` from `src` (of the subview's shape: a size known at run
//! time only must be the same value in both, a size of the subview `src`
//! is — the last block of B's columns of a product whose N is no multiple
//! of 16 when its N blocks are not peeled, as in the M chunks of
//! `tensorc.pack_m`; the reads of `src` are then masked by that size:
//! 1023³ on two threads 4.58–4.75 → 4.36–4.52 ms, AOT, alternated, the
//! `memset`/`memmove` of each block, 5 % of its samples, gone), `memref.dealloc`s,
//! and reads: unmasked `vector.transfer_read`s with the default map and
//! every dimension in bounds, of `P` or of a `memref.expand_shape` of `P`
//! whose result is only read that way. A read of the expanded view must
//! cover, in each group of the expansion, one run of whole trailing
//! dimensions (then it is one read of `P`, reshaped by a
//! `vector.shape_cast`). The fill comes before the copy, and the copy
//! before every read, in the alloc's block; `src` is a view of a function
//! argument that nothing in the function writes (so the copy's snapshot
//! is the operand itself). It runs right after bufferization, before the
//! other buffer passes.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-read-through-pads";

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Read padded copies' operands directly, masked at their edges",
        &[DialectHandle::memref()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { read_through_pads(module) };
            true
        },
    )
}

/// Rewrites every eligible padded temporary of `module`; returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn read_through_pads(module: MlirOperation) -> usize {
    unsafe { rewrite_all(module, "memref.alloc", |a| candidate(a), |c| rewrite(c)) }
}

/// A padded temporary and everything that goes with it.
struct Candidate {
    alloc: MlirOperation,
    fill: MlirOperation,
    /// The padding value (an `arith.constant`'s `value`).
    pad: MlirAttribute,
    view: MlirOperation,
    copy: MlirOperation,
    src: MlirValue,
    /// Each read and, for a read of an expanded view, the view's groups of
    /// dimensions (one group per dimension of the temporary).
    reads: Vec<(MlirOperation, Vec<Vec<usize>>)>,
    expands: Vec<MlirOperation>,
    deallocs: Vec<MlirOperation>,
}

unsafe fn candidate(alloc: MlirOperation) -> Option<Candidate> {
    unsafe {
        let p = static_identity_alloc(alloc)?;
        let t = mlirValueGetType(p);
        let rank = mlirShapedTypeGetRank(t) as usize;
        let identity: Vec<Vec<usize>> = (0..rank).map(|d| vec![d]).collect();
        let (mut fill, mut copy) = (None, None);
        let mut reads = Vec::new();
        let mut expands = Vec::new();
        let mut deallocs = Vec::new();
        for (op, at) in uses(p) {
            match op_name(op).as_str() {
                "memref.dealloc" => deallocs.push(op),
                "linalg.fill" | "linalg.map" if fill.is_none() => {
                    fill = Some((op, fill_value(op, at)?));
                }
                "memref.subview" if copy.is_none() && at == 0 => {
                    copy = Some((op, copy_into(op)?));
                }
                "vector.transfer_read" if at == 0 => reads.push((op, identity.clone())),
                "memref.expand_shape" if at == 0 => {
                    let groups = reassociation(op)?;
                    for (r, at) in uses(result(op)) {
                        if op_name(r) != "vector.transfer_read" || at != 0 {
                            return None;
                        }
                        reads.push((r, groups.clone()));
                    }
                    expands.push(op);
                }
                _ => return None,
            }
        }
        let ((fill, pad), (view, (copy, src))) = (fill?, copy?);
        let block = mlirOperationGetBlock(alloc);
        let in_order = |a: MlirOperation, b: MlirOperation| {
            mlirOperationGetBlock(a).ptr == block.ptr
                && mlirOperationGetBlock(b).ptr == block.ptr
                && mlirOperationIsBeforeInBlock(a, b)
        };
        if !in_order(fill, copy) || !read_only_argument_view(src) {
            return None;
        }
        for (read, groups) in &reads {
            let at = mlirBlockGetParentOperation(block);
            let ancestor = ancestor_in(*read, block, at)?;
            if !in_order(copy, ancestor) || repeated(*read, block) || plan(*read, groups, src).is_none() {
                return None;
            }
        }
        Some(Candidate {
            alloc,
            fill,
            pad,
            view,
            copy,
            src,
            reads,
            expands,
            deallocs,
        })
    }
}

/// The constant a fill of the temporary (operand `at` of `op`) writes: a
/// `linalg.fill` of an `arith.constant` (the temporary its init), or a
/// `linalg.map` with no inputs whose body yields one.
pub(crate) unsafe fn fill_value(op: MlirOperation, at: isize) -> Option<MlirAttribute> {
    unsafe {
        let v = if op_name(op) == "linalg.fill" {
            if mlirOperationGetNumOperands(op) != 2 || at != 1 {
                return None;
            }
            mlirOperationGetOperand(op, 0)
        } else {
            // linalg.map outs(%p) { ^bb0(%init): linalg.yield %c }
            if mlirOperationGetNumOperands(op) != 1 || at != 0 {
                return None;
            }
            let body = mlirRegionGetFirstBlock(mlirOperationGetRegion(op, 0));
            let y = mlirBlockGetFirstOperation(body);
            if y.ptr.is_null()
                || op_name(y) != "linalg.yield"
                || mlirOperationGetNumOperands(y) != 1
            {
                return None;
            }
            mlirOperationGetOperand(y, 0)
        };
        let c = defined_by(v, "arith.constant")?;
        let value = mlirOperationGetAttributeByName(c, string_ref("value"));
        (!value.ptr.is_null()).then_some(value)
    }
}

/// For a zero-offset, unit-stride, rank-preserving subview of the
/// temporary whose only use is as the target of a `memref.copy`: the copy
/// and its source (which has the subview's shape).
unsafe fn copy_into(view: MlirOperation) -> Option<(MlirOperation, MlirValue)> {
    unsafe {
        let all = |name: &str, want: i64| {
            let a = mlirOperationGetAttributeByName(view, string_ref(name));
            !a.ptr.is_null()
                && (0..mlirDenseArrayGetNumElements(a))
                    .all(|d| mlirDenseI64ArrayGetElement(a, d) == want)
        };
        let (pt, vt) = (
            mlirValueGetType(mlirOperationGetOperand(view, 0)),
            mlirValueGetType(result(view)),
        );
        if !all("static_offsets", 0)
            || !all("static_strides", 1)
            || mlirShapedTypeGetRank(pt) != mlirShapedTypeGetRank(vt)
        {
            return None;
        }
        let (_, sizes) = subview_parts(view)?;
        let (copy, at) = sole_use(result(view))?;
        if op_name(copy) != "memref.copy" || at != 1 {
            return None;
        }
        let src = mlirOperationGetOperand(copy, 0);
        let st = mlirValueGetType(src);
        let rank = mlirShapedTypeGetRank(vt);
        if !mlirTypeIsAMemRef(st) || mlirShapedTypeGetRank(st) != rank {
            return None;
        }
        // The source has the view's shape: the same static sizes, and a
        // size known at run time only (the last, partial block of B's
        // columns) the same value in both, a size of the subview `src` is.
        let src_sizes = defined_by(src, "memref.subview")
            .and_then(|s| subview_parts(s))
            .map(|(_, sizes)| sizes)
            .filter(|sizes| sizes.len() == rank as usize);
        for (d, size) in sizes.iter().enumerate() {
            let same = match size {
                Offset::Static(n) => mlirShapedTypeGetDimSize(st, d as isize) == *n,
                Offset::Dynamic(v) => matches!(
                    src_sizes.as_ref().map(|s| s[d]),
                    Some(Offset::Dynamic(w)) if w.ptr == v.ptr
                ),
            };
            if !same {
                return None;
            }
        }
        Some((copy, src))
    }
}

/// The groups of an `expand_shape`'s `reassociation`.
unsafe fn reassociation(op: MlirOperation) -> Option<Vec<Vec<usize>>> {
    unsafe {
        let r = mlirOperationGetAttributeByName(op, string_ref("reassociation"));
        if r.ptr.is_null() || !mlirAttributeIsAArray(r) {
            return None;
        }
        let groups = (0..mlirArrayAttrGetNumElements(r))
            .map(|g| {
                let g = mlirArrayAttrGetElement(r, g);
                (0..mlirArrayAttrGetNumElements(g))
                    .map(|d| mlirIntegerAttrGetValueInt(mlirArrayAttrGetElement(g, d)) as usize)
                    .collect()
            })
            .collect();
        mlirShapedTypeHasStaticShape(mlirValueGetType(result(op))).then_some(groups)
    }
}

/// The ancestor of `op` (or `op`) in `block`; `stop` is the block's parent.
unsafe fn ancestor_in(
    op: MlirOperation,
    block: MlirBlock,
    stop: MlirOperation,
) -> Option<MlirOperation> {
    unsafe {
        let mut o = op;
        while mlirOperationGetBlock(o).ptr != block.ptr {
            o = mlirOperationGetParentOperation(o);
            if o.ptr.is_null() || o.ptr == stop.ptr {
                return None;
            }
        }
        Some(o)
    }
}

/// Whether `read` (below `block`) runs again with the same indices: some
/// `scf.for` between it and `block` whose induction variable its indices
/// do not depend on. Such a temporary is read many times over (a
/// convolution's zero-padded filter, read for every tile of output
/// columns): masking every read cost more than filling and copying it
/// once (2×57×57×63 → 24 channels, AVX2, one thread: 6.2 → 3.6 ms; the
/// masks and a spilled accumulator sat in the tile's inner loop). The
/// packs' reads, which visit each element once, stay read through.
unsafe fn repeated(read: MlirOperation, block: MlirBlock) -> bool {
    unsafe {
        let indices: Vec<MlirValue> = (1..mlirOperationGetNumOperands(read))
            .map(|i| mlirOperationGetOperand(read, i))
            .collect();
        let mut o = mlirOperationGetParentOperation(read);
        while !o.ptr.is_null() && mlirOperationGetBlock(o).ptr != block.ptr {
            if op_name(o) == "scf.for" && !indices.iter().any(|&v| depends(v, iv(o), o)) {
                return true;
            }
            o = mlirOperationGetParentOperation(o);
        }
        false
    }
}

/// Whether `v` is a function argument, or a view of one, that nothing
/// writes: every use of the argument and of its views only reads.
unsafe fn read_only_argument_view(v: MlirValue) -> bool {
    unsafe {
        let mut root = v;
        while mlirValueIsAOpResult(root) {
            let def = mlirOpResultGetOwner(root);
            if !is_view(def) {
                return false;
            }
            root = mlirOperationGetOperand(def, 0);
        }
        let block = mlirBlockArgumentGetOwner(root);
        op_name(mlirBlockGetParentOperation(block)) == "func.func" && only_read(root)
    }
}

unsafe fn is_view(op: MlirOperation) -> bool {
    unsafe {
        matches!(
            op_name(op).as_str(),
            "memref.subview" | "memref.expand_shape" | "memref.collapse_shape"
        )
    }
}

/// Whether every use of the memref `v` reads it (transfers, loads,
/// prefetches, copies from it) or is a view whose uses only read.
unsafe fn only_read(v: MlirValue) -> bool {
    unsafe {
        uses(v)
            .into_iter()
            .all(|(op, at)| match op_name(op).as_str() {
                "vector.transfer_read"
                | "vector.load"
                | "memref.load"
                | "memref.prefetch"
                | "memref.copy" => at == 0,
                _ => at == 0 && is_view(op) && only_read(result(op)),
            })
    }
}

/// How a read of the temporary (through `groups`) becomes a read of `src`:
/// its indices per dimension of the temporary (as products and sums of the
/// read's indices), the vector shape and which dimensions stay in bounds.
struct Plan {
    /// Per dimension of the temporary: (read index position, multiplier).
    terms: Vec<Vec<(usize, i64)>>,
    shape: Vec<i64>,
    in_bounds: Vec<bool>,
}

unsafe fn plan(read: MlirOperation, groups: &[Vec<usize>], src: MlirValue) -> Option<Plan> {
    unsafe {
        let mem = mlirOperationGetOperand(read, 0);
        let mt = mlirValueGetType(mem);
        let vt = mlirValueGetType(result(read));
        let rank = mlirShapedTypeGetRank(mt) as usize;
        let vrank = mlirShapedTypeGetRank(vt) as usize;
        let map = mlirOperationGetAttributeByName(read, string_ref("permutation_map"));
        let bounds = mlirOperationGetAttributeByName(read, string_ref("in_bounds"));
        // memref, indices, padding: no mask.
        if mlirOperationGetNumOperands(read) != rank as isize + 2
            || vrank == 0
            || vrank > rank
            || !(map.ptr.is_null() || is_minor_identity(map, rank, vrank))
            || bounds.ptr.is_null()
            || print_attr(bounds) != format!("[{}]", vec!["true"; vrank].join(", "))
        {
            return None;
        }
        let size = |d: usize| mlirShapedTypeGetDimSize(mt, d as isize);
        let vsize = |d: usize| {
            if d + vrank < rank {
                1
            } else {
                mlirShapedTypeGetDimSize(vt, (d + vrank - rank) as isize)
            }
        };
        let index = |d: usize| mlirOperationGetOperand(read, 1 + d as isize);
        let st = mlirValueGetType(src);
        let mut plan = Plan {
            terms: Vec::new(),
            shape: Vec::new(),
            in_bounds: Vec::new(),
        };
        let first_vector_dim = rank - vrank;
        for group in groups {
            // Within a group the read covers one run: dimensions of size 1
            // in the vector, then at most one partial one, then whole
            // dimensions read from index 0.
            let mut seen_partial = false;
            let mut terms = Vec::new();
            let mut mult = 1;
            let mut span = 1;
            for &d in group.iter().rev() {
                if seen_partial && vsize(d) != 1 {
                    return None;
                }
                if vsize(d) != size(d) || constant_int(index(d)) != Some(0) {
                    seen_partial = true;
                }
                terms.push((d, mult));
                span *= vsize(d);
                mult *= size(d);
            }
            terms.reverse();
            let g = plan.terms.len() as isize;
            let hi = terms.iter().try_fold(0i64, |acc, &(d, m)| {
                acc.checked_add(interval(index(d))?.1.checked_mul(m)?)
            });
            let inside = matches!(hi, Some(h) if h + span <= mlirShapedTypeGetDimSize(st, g));
            if group.iter().any(|&d| d >= first_vector_dim) {
                plan.shape.push(span);
                plan.in_bounds.push(inside);
            } else if !plan.shape.is_empty() || !inside {
                // A dimension outside the vector after one inside it (not a
                // minor-identity read of `src`), or an index outside the
                // vector that may leave `src` (a transfer's indices outside
                // the vector must stay in bounds).
                return None;
            }
            plan.terms.push(terms);
        }
        (plan.terms.len() == mlirShapedTypeGetRank(st) as usize).then_some(plan)
    }
}

/// Lower and upper bounds of the index value `v`, when tensorc can tell.
unsafe fn interval(v: MlirValue) -> Option<(i64, i64)> {
    unsafe {
        if let Some(c) = constant_int(v) {
            return Some((c, c));
        }
        if mlirValueIsABlockArgument(v) {
            let block = mlirBlockArgumentGetOwner(v);
            let lp = mlirBlockGetParentOperation(block);
            if op_name(lp) != "scf.for" || mlirBlockArgumentGetArgNumber(v) != 0 {
                return None;
            }
            let (lo, lo_hi) = interval(mlirOperationGetOperand(lp, 0))?;
            let (_, hi) = interval(mlirOperationGetOperand(lp, 1))?;
            if lo >= hi {
                return None;
            }
            // With a constant start and step the last value is the last
            // multiple of the step below the bound (976 for 0 to 992 by
            // 16), not the bound less one.
            let last = match constant_int(mlirOperationGetOperand(lp, 2)) {
                Some(step) if step > 0 && lo == lo_hi => lo + (hi - 1 - lo) / step * step,
                _ => hi - 1,
            };
            return Some((lo, last));
        }
        let def = mlirOpResultGetOwner(v);
        let operands: Vec<MlirValue> = (0..mlirOperationGetNumOperands(def))
            .map(|i| mlirOperationGetOperand(def, i))
            .collect();
        match op_name(def).as_str() {
            "arith.addi" | "arith.muli" => {
                let (a, b) = (interval(operands[0])?, interval(operands[1])?);
                combine(op_name(def) == "arith.addi", a, b)
            }
            "affine.apply" | "affine.min" => {
                let m = mlirAffineMapAttrGetValue(mlirOperationGetAttributeByName(
                    def,
                    string_ref("map"),
                ));
                let dims = mlirAffineMapGetNumDims(m) as usize;
                let args: Vec<Option<(i64, i64)>> = operands.iter().map(|&o| interval(o)).collect();
                let results: Vec<Option<(i64, i64)>> = (0..mlirAffineMapGetNumResults(m))
                    .map(|r| expr_interval(mlirAffineMapGetResult(m, r), dims, &args))
                    .collect();
                if op_name(def) == "affine.apply" {
                    return *results.first()?;
                }
                // min(...) is at most each result's upper bound and at least
                // the smallest lower bound.
                let lo = results
                    .iter()
                    .map(|r| r.map(|r| r.0))
                    .collect::<Option<Vec<_>>>()?;
                let hi = results.iter().filter_map(|r| r.map(|r| r.1)).min()?;
                Some((lo.into_iter().min()?, hi))
            }
            _ => None,
        }
    }
}

/// The interval of a sum (`add`) or product of two intervals.
fn combine(add: bool, a: (i64, i64), b: (i64, i64)) -> Option<(i64, i64)> {
    if add {
        return Some((a.0.checked_add(b.0)?, a.1.checked_add(b.1)?));
    }
    let c = [
        a.0.checked_mul(b.0)?,
        a.0.checked_mul(b.1)?,
        a.1.checked_mul(b.0)?,
        a.1.checked_mul(b.1)?,
    ];
    Some((*c.iter().min()?, *c.iter().max()?))
}

unsafe fn expr_interval(
    e: MlirAffineExpr,
    dims: usize,
    args: &[Option<(i64, i64)>],
) -> Option<(i64, i64)> {
    unsafe {
        if mlirAffineExprIsAConstant(e) {
            let c = mlirAffineConstantExprGetValue(e);
            return Some((c, c));
        }
        if mlirAffineExprIsADim(e) {
            return *args.get(mlirAffineDimExprGetPosition(e) as usize)?;
        }
        if mlirAffineExprIsASymbol(e) {
            return *args.get(dims + mlirAffineSymbolExprGetPosition(e) as usize)?;
        }
        let lhs = expr_interval(mlirAffineBinaryOpExprGetLHS(e), dims, args);
        let rhs = expr_interval(mlirAffineBinaryOpExprGetRHS(e), dims, args);
        if mlirAffineExprIsAAdd(e) {
            return combine(true, lhs?, rhs?);
        }
        if mlirAffineExprIsAMul(e) {
            return combine(false, lhs?, rhs?);
        }
        // Division and modulo by a positive constant.
        let (c, _) = rhs.filter(|r| r.0 == r.1 && r.0 > 0)?;
        if mlirAffineExprIsAMod(e) {
            return Some((0, c - 1));
        }
        let (lo, hi) = lhs?;
        if mlirAffineExprIsAFloorDiv(e) {
            return Some((lo.div_euclid(c), hi.div_euclid(c)));
        }
        if mlirAffineExprIsACeilDiv(e) {
            return Some((-(-lo).div_euclid(c), -(-hi).div_euclid(c)));
        }
        None
    }
}

unsafe fn rewrite(c: &Candidate) {
    unsafe {
        for (read, groups) in &c.reads {
            let plan = plan(*read, groups, c.src).expect("checked by `candidate`");
            read_src(*read, &plan, c);
        }
        for op in c
            .expands
            .iter()
            .chain(&[c.copy, c.view, c.fill])
            .chain(&c.deallocs)
            .chain(&[c.alloc])
        {
            mlirOperationDestroy(*op);
        }
    }
}

/// Replaces `read` by a read of `src` following `plan`.
unsafe fn read_src(read: MlirOperation, plan: &Plan, c: &Candidate) {
    unsafe {
        let ctx = mlirOperationGetContext(read);
        let loc = mlirOperationGetLocation(read);
        let index_t = mlirIndexTypeGet(ctx);
        let mut operands = vec![c.src];
        for terms in &plan.terms {
            let mut sum: Option<MlirValue> = None;
            for &(d, m) in terms {
                let mut v = mlirOperationGetOperand(read, 1 + d as isize);
                if constant_int(v) == Some(0) {
                    continue;
                }
                if m != 1 {
                    let k = index_constant(read, m);
                    v = insert_before(
                        read,
                        build(ctx, "arith.muli", loc, &[v, k], &[index_t], &[]),
                    );
                }
                sum = Some(match sum {
                    None => v,
                    Some(s) => insert_before(
                        read,
                        build(ctx, "arith.addi", loc, &[s, v], &[index_t], &[]),
                    ),
                });
            }
            operands.push(sum.unwrap_or_else(|| index_constant(read, 0)));
        }
        let vt = mlirValueGetType(result(read));
        let elem = mlirShapedTypeGetElementType(vt);
        let pad = insert_before(
            read,
            build(
                ctx,
                "arith.constant",
                loc,
                &[],
                &[elem],
                &[("value", c.pad)],
            ),
        );
        operands.push(pad);
        let rank = plan.terms.len();
        let vrank = plan.shape.len();
        let new_vt = mlirVectorTypeGet(vrank as isize, plan.shape.as_ptr(), elem);
        let dims: Vec<String> = (0..rank).map(|d| format!("d{d}")).collect();
        let flags: Vec<&str> = plan
            .in_bounds
            .iter()
            .map(|&b| if b { "true" } else { "false" })
            .collect();
        let new = insert_before(
            read,
            build(
                ctx,
                "vector.transfer_read",
                loc,
                &operands,
                &[new_vt],
                &[
                    (
                        "permutation_map",
                        attr(
                            ctx,
                            &format!(
                                "affine_map<({}) -> ({})>",
                                dims.join(", "),
                                dims[rank - vrank..].join(", ")
                            ),
                        ),
                    ),
                    ("in_bounds", attr(ctx, &format!("[{}]", flags.join(", ")))),
                    (
                        "operandSegmentSizes",
                        attr(ctx, &format!("array<i32: 1, {rank}, 1, 0>")),
                    ),
                ],
            ),
        );
        let value = if mlirTypeEqual(new_vt, vt) {
            new
        } else {
            insert_before(
                read,
                build(ctx, "vector.shape_cast", loc, &[new], &[vt], &[]),
            )
        };
        mlirValueReplaceAllUsesOfWith(result(read), value);
        mlirOperationDestroy(read);
    }
}
