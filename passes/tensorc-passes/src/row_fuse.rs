//! `tensorc-row-fuse-mark`: finds the row-wise chains that the row-fusion
//! step (`row_fuse_schedule.rs`) fuses into one loop over rows, and tags the
//! broadcasting element-wise generics the element-wise schedule vectorizes.
//!
//! Why in Rust: both decisions read indexing maps and follow use chains.
//! The transform dialect's match ops cannot tell a broadcast result (`0` in
//! `(d0, d1) -> (d0, 0)`, from `keep_axes` reductions) from a reversal
//! (`-d0 + 4`, which MLIR 22's tiling mishandles): both fail
//! `projected_permutation`. Nor can they check that every user of a
//! producer lies in the same chain.
//!
//! A *row-local* op reads and writes only the rows of its leading loops: a
//! `linalg.fill`, or a `linalg.generic` with static non-empty loops whose
//! loop `d0` is parallel and whose every indexing map is either empty (a
//! scalar) or starts with `d0`, does not use `d0` again, and otherwise holds
//! only loop indices and `0`. Its *row loops* are the longest such prefix
//! `d0, ..., dk` (a `[B][S][D]` softmax: `B` and `S`). Tiling such an op by
//! rows needs only the same rows of its operands, so a chain of them can run
//! one row at a time. Reshapes that keep the row dimensions
//! (`tensor.expand_shape`/`collapse_shape` whose first groups are each a row
//! dimension plus unit dimensions, the frontend's keep-axes form) are
//! looked through.
//!
//! Chains, per function body, from its last op backwards: a row-local
//! generic not yet in a chain is a candidate *root*; the chain is tiled
//! along its first `k` row loops (`chain_row_loops`: at most
//! `MAX_ROW_LOOPS`, the last with two rows or more, so a `[1][S][D]` input
//! is tiled along `S`; none for a single row). A row-local producer of the
//! chain (with the same first `k` row extents) joins it as a *member* once all
//! users of all its results are in the chain (through reshapes), so fusing
//! it into the root's loop leaves nothing to compute outside. The chain is
//! tagged only if some member is a reduction (softmax, layernorm: without
//! one, `linalg-fuse-elementwise-ops` already made it one op). Members get
//! `row_fuse_schedule::MEMBER`; the root gets `root_tag(k, loop, chunk)`:
//! the row loop and rows per thread chunk decided by `parallel_mark::decide`
//! for the root's loops with the whole chain's work (chunk 0 when it stays
//! on one thread or `decide` picks a loop that is not a row loop).
//!
//! Broadcasting element-wise generics (all loops parallel, static and
//! non-empty, every map result a distinct loop index or `0`, some `0`)
//! get the element-wise schedule's own tag (`elementwise_schedule::tag`),
//! which its matchers cannot give them. So do `argmax`/`argmin`'s index
//! reductions (tagged `ARG_KEY` by the frontend: they read the row's best
//! value broadcast) over short rows, when their body reads no
//! `linalg.index` (the split does not offset it): the reduction schedule's
//! tag for their length (`reduction_schedule::short_row_reduction_tag`).
//! As scalar loops (LLVM vectorizes no loop of a few iterations) their
//! compares and selects became branches that random data mispredicted:
//! argmax of 100000×10 f32 took 3.4 ms with only the max reduction
//! vectorized, 0.97 ms with both (NumPy 2.2 ms). Long rows keep LLVM's
//! vectorization of the loop, 9 % faster there than the split.

use std::collections::HashSet;

use crate::elementwise_schedule::{MAX_RANK, tag as ew_tag};
use crate::external_pass::{PassId, module_pass};
use crate::parallel_mark::{analyze, decide, static_shape};
use crate::reduction_schedule::{ARG_KEY, NARROW_KEY, SCALAR_ROW_MAX, broadcast_row_reduction_tag, narrow_product_tag, short_row_reduction_tag};
use crate::raw::*;
use crate::row_fuse_schedule::{MAX_ROW_LOOPS, MEMBER, SHORT_ROWS_STEP, root_tag};
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = crate::pipeline::ROW_FUSE_MARK;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Tag row-wise chains for row fusion and broadcasting element-wise generics",
        &[],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { mark_module(module) };
            true
        },
    )
}

/// One result of an indexing map, as far as this pass accepts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Index {
    /// Loop index `d<n>`.
    Dim(usize),
    /// The constant 0 (a broadcast unit dimension).
    Zero,
}

/// The indexing maps of a generic as loop indices and zeros (`None` if any
/// result is anything else), and which loops are parallel.
pub struct Maps {
    /// Per operand, its map's results.
    pub operands: Vec<Vec<Index>>,
    /// Per loop, whether it is parallel.
    pub parallel: Vec<bool>,
}

/// How many leading loops of a generic with `maps` are row loops: loop `k`
/// is one if it is parallel and every non-empty map has `d0, ..., dk` as
/// its first results and `dk` nowhere else (0 when some loop is empty).
pub fn row_loops(maps: &Maps, extents: &[u64]) -> usize {
    if extents.contains(&0) {
        return 0;
    }
    let mut k = 0;
    while maps.parallel.get(k) == Some(&true)
        && maps.operands.iter().all(|m| {
            m.is_empty()
                || (m.get(k) == Some(&Index::Dim(k)) && !m[k + 1..].contains(&Index::Dim(k)))
        })
    {
        k += 1;
    }
    k
}

/// Whether a generic with `maps` is row-local (see the module comment),
/// given its loop extents.
pub fn row_local(maps: &Maps, extents: &[u64]) -> bool {
    row_loops(maps, extents) >= 1
}

/// The row loops a chain whose root has row-loop extents `rows` is tiled
/// along: the longest prefix of at most `MAX_ROW_LOOPS` loops whose last
/// loop has two rows or more (a `[1][S][D]` softmax: both, one row at a
/// time along `S`); 0 when there is none (one row: nothing to tile).
pub fn chain_row_loops(rows: &[u64]) -> usize {
    (1..=rows.len().min(MAX_ROW_LOOPS))
        .rev()
        .find(|&k| rows[k - 1] >= 2)
        .unwrap_or(0)
}

/// Whether the loop indices a map's results read are all different (`0`
/// results aside).
fn distinct_dims(map: &[Index]) -> bool {
    let dims: Vec<usize> = map.iter().filter_map(|i| if let Index::Dim(d) = i { Some(*d) } else { None }).collect();
    dims.iter().collect::<HashSet<_>>().len() == dims.len()
}

/// Whether a generic with `maps` is element-wise with a broadcast the
/// element-wise matchers miss: all loops parallel, every map's loop
/// indices distinct, some `0` result.
pub fn broadcast_elementwise(maps: &Maps) -> bool {
    maps.parallel.iter().all(|&p| p)
        && (1..=MAX_RANK).contains(&maps.parallel.len())
        && maps.operands.iter().all(|m| distinct_dims(m))
        && maps.operands.iter().flatten().any(|i| *i == Index::Zero)
}

/// Whether a generic with `maps` (inputs first, one init last) is a row
/// reduction with a broadcast input the reduction matchers miss: every
/// loop but the last parallel, the last a reduction, every map's loop
/// indices distinct, some input with a `0` result (`logsumexp`'s
/// `exp(x − max)` fused into its sum reads the row maximum as
/// `(d0, d1) -> (d0, 0)`).
pub fn broadcast_row_reduction(maps: &Maps) -> bool {
    let Some((&last, rows)) = maps.parallel.split_last() else { return false };
    let inputs = &maps.operands[..maps.operands.len().saturating_sub(1)];
    !last
        && rows.iter().all(|&p| p)
        && (1..=MAX_RANK).contains(&maps.parallel.len())
        && maps.operands.iter().all(|m| distinct_dims(m))
        && inputs.iter().flatten().any(|i| *i == Index::Zero)
}

/// Whether a generic with `maps` is a narrow product's form (the
/// frontend's `NARROW_KEY` generics): loops `[M][N][K]` (or `[B][M][N][K]`),
/// the last the only reduction, reading A `(m, k)` and Bᵀ `(n, k)` into
/// `(m, n)`.
pub fn narrow_product(maps: &Maps) -> bool {
    let d = Index::Dim;
    match maps.parallel[..] {
        [true, true, false] => maps.operands == [vec![d(0), d(2)], vec![d(1), d(2)], vec![d(0), d(1)]],
        [true, true, true, false] => {
            maps.operands == [vec![d(0), d(1), d(3)], vec![d(0), d(2), d(3)], vec![d(0), d(1), d(2)]]
        }
        _ => false,
    }
}

/// Whether `op` (one init) yields a single combiner of its init's value:
/// the yielded value is made by one of the combiners the reduction
/// schedule splits, from the init's block argument, which nothing else
/// reads (what the matchers' `reduction_position = 0` checks).
unsafe fn one_combiner(op: MlirOperation) -> bool {
    unsafe {
        if mlirOperationGetNumResults(op) != 1 {
            return false;
        }
        let block = mlirRegionGetFirstBlock(mlirOperationGetRegion(op, 0));
        let n = mlirBlockGetNumArguments(block);
        let out = mlirBlockGetArgument(block, n - 1);
        let Some(yield_op) = block_ops(block).last().copied() else { return false };
        if op_name(yield_op) != "linalg.yield" || mlirOperationGetNumOperands(yield_op) != 1 {
            return false;
        }
        let v = mlirOperationGetOperand(yield_op, 0);
        if !mlirValueIsAOpResult(v) {
            return false;
        }
        let combiner = mlirOpResultGetOwner(v);
        let combines = matches!(
            op_name(combiner).as_str(),
            "arith.addf" | "arith.mulf" | "arith.maximumf" | "arith.minimumf" | "arith.maxnumf" | "arith.minnumf"
                | "arith.addi" | "arith.muli" | "arith.maxsi" | "arith.minsi" | "arith.maxui" | "arith.minui"
                | "arith.andi" | "arith.ori" | "arith.xori"
        );
        combines
            && mlirOperationGetNumOperands(combiner) == 2
            && (0..2).any(|i| mlirValueEqual(mlirOperationGetOperand(combiner, i), out))
            && uses(out).len() == 1
    }
}

/// Tags everything in `module`.
///
/// # Safety
/// `module` must be a live `builtin.module`.
unsafe fn mark_module(module: MlirOperation) {
    unsafe {
        let ctx = mlirOperationGetContext(module);
        let mut funcs = Vec::new();
        let mut generics = Vec::new();
        walk(module, |op| {
            let name = op_name(op);
            if name == "func.func" {
                funcs.push(op);
            } else if name == "linalg.generic" {
                generics.push(op);
                return MlirWalkResult_MlirWalkResultSkip;
            }
            MlirWalkResult_MlirWalkResultAdvance
        });
        for &op in &generics {
            if has_attr(op, ARG_KEY)
                && !uses_index(op)
                && let Some(l) = analyze(op)
                && let Some(t) = short_row_reduction_tag(&l.extents)
            {
                mlirOperationSetAttributeByName(op, string_ref(&t), mlirUnitAttrGet(ctx));
            }
        }
        for &op in &generics {
            // By the maps, not only the frontend's tag: fusing a producer
            // into the product (`relu(h)·w`) makes a new op without it, which
            // stayed scalar loops (4096×1024·10 with a relu in: 39 ms).
            if (has_attr(op, NARROW_KEY) || maps(op).is_some_and(|m| narrow_product(&m)))
                && one_combiner(op)
                && let Some(l) = analyze(op)
                && let [.., n, _] = l.extents[..]
                && let Some(t) = narrow_product_tag(l.extents.len(), n)
            {
                mlirOperationSetAttributeByName(op, string_ref(&t), mlirUnitAttrGet(ctx));
            }
        }
        for &op in &generics {
            if !has_attr(op, ARG_KEY)
                && let Some(maps) = maps(op)
                && broadcast_row_reduction(&maps)
                && !uses_index(op)
                && one_combiner(op)
                && let Some(l) = analyze(op)
                && let Some(t) = broadcast_row_reduction_tag(&l.extents)
            {
                mlirOperationSetAttributeByName(op, string_ref(&t), mlirUnitAttrGet(ctx));
            }
        }
        for op in generics {
            if let Some(maps) = maps(op)
                && broadcast_elementwise(&maps)
                && analyze(op).is_some_and(|l| !l.extents.contains(&0))
                && !broadcasts_strided_slice(op, &maps)
            {
                let t = ew_tag(maps.parallel.len());
                mlirOperationSetAttributeByName(op, string_ref(&t), mlirUnitAttrGet(ctx));
            }
        }
        for f in funcs {
            let body = mlirRegionGetFirstBlock(mlirOperationGetRegion(f, 0));
            if !body.ptr.is_null() {
                mark_chains(ctx, body);
            }
        }
    }
}

/// Whether `op`'s body reads a loop index (`linalg.index`). Here: MLIR 22's
/// split of a reduction into partials does not offset it by the tile's
/// start, so such an op must not get a reduction schedule's tag (and
/// `flatten_reductions` must not renumber its loops).
pub(crate) unsafe fn uses_index(op: MlirOperation) -> bool {
    let mut found = false;
    unsafe {
        walk(op, |inner| {
            if op_name(inner) == "linalg.index" {
                found = true;
            }
            MlirWalkResult_MlirWalkResultAdvance
        });
    }
    found
}

/// Whether `op` broadcasts (reads with a `0` in its map) a slice with a
/// stride other than 1: MLIR 22 lowers such a vectorized broadcast read of a
/// strided buffer into code with an unconverted `index` cast (found by the
/// generated tests: `tests/cases/regressions/gen_60.nxir`, `gen_int41`,
/// `gen_int92`), so those stay scalar loops.
unsafe fn broadcasts_strided_slice(op: MlirOperation, maps: &Maps) -> bool {
    unsafe {
        maps.operands.iter().enumerate().any(|(k, m)| {
            if !m.contains(&Index::Zero) {
                return false;
            }
            let v = mlirOperationGetOperand(op, k as isize);
            let Some(def) = defined_by(v, "tensor.extract_slice") else {
                return false;
            };
            let strides = mlirOperationGetAttributeByName(def, string_ref("static_strides"));
            strides.ptr.is_null()
                || !mlirAttributeIsADenseI64Array(strides)
                || (0..mlirDenseArrayGetNumElements(strides))
                    .any(|i| mlirDenseI64ArrayGetElement(strides, i) != 1)
        })
    }
}

/// The maps of a `linalg.generic` (see `Maps`).
unsafe fn maps(op: MlirOperation) -> Option<Maps> {
    unsafe {
        let (maps, parallel) = generic_maps_and_kinds(op)?;
        let mut operands = Vec::new();
        for k in 0..mlirArrayAttrGetNumElements(maps) {
            let map = mlirAffineMapAttrGetValue(mlirArrayAttrGetElement(maps, k));
            let mut results = Vec::new();
            for j in 0..mlirAffineMapGetNumResults(map) {
                let e = mlirAffineMapGetResult(map, j);
                if mlirAffineExprIsADim(e) {
                    results.push(Index::Dim(mlirAffineDimExprGetPosition(e) as usize));
                } else if mlirAffineExprIsAConstant(e) && mlirAffineConstantExprGetValue(e) == 0 {
                    results.push(Index::Zero);
                } else {
                    return None;
                }
            }
            operands.push(results);
        }
        Some(Maps { operands, parallel })
    }
}

fn key(op: MlirOperation) -> usize {
    op.ptr as usize
}

/// The extents of the row loops of a row-local op, or `None` if it is not
/// one (a fill: every dimension of its result).
unsafe fn row_local_rows(op: MlirOperation) -> Option<Vec<u64>> {
    unsafe {
        match op_name(op).as_str() {
            "linalg.fill" => {
                if mlirOperationGetNumResults(op) != 1 {
                    return None;
                }
                static_shape(result(op)).filter(|s| !s.is_empty() && !s.contains(&0))
            }
            "linalg.generic" => {
                if mlirOperationGetNumResults(op) == 0 {
                    return None;
                }
                let loops = analyze(op)?;
                let m = maps(op)?;
                let k = row_loops(&m, &loops.extents);
                (m.operands.len() as isize == mlirOperationGetNumOperands(op) && k >= 1)
                    .then(|| loops.extents[..k].to_vec())
            }
            _ => None,
        }
    }
}

/// For a reshape that keeps the first `k` dimensions as the row dimensions
/// (its groups `j < k` are dimension `j` followed by unit dimensions), its
/// source; else `None`.
unsafe fn row_reshape_source(op: MlirOperation, k: usize) -> Option<MlirValue> {
    unsafe {
        let name = op_name(op);
        let expanded = match name.as_str() {
            "tensor.expand_shape" => result(op),
            "tensor.collapse_shape" => mlirOperationGetOperand(op, 0),
            _ => return None,
        };
        let groups = mlirOperationGetAttributeByName(op, string_ref("reassociation"));
        if groups.ptr.is_null() || (mlirArrayAttrGetNumElements(groups) as usize) < k {
            return None;
        }
        let shape = static_shape(expanded)?;
        for j in 0..k {
            let group = mlirArrayAttrGetElement(groups, j as isize);
            for i in 0..mlirArrayAttrGetNumElements(group) {
                let d = mlirIntegerAttrGetValueInt(mlirArrayAttrGetElement(group, i));
                let unit = shape.get(d as usize) == Some(&1);
                if (i == 0) != (d == j as i64) || (i > 0 && !unit) {
                    return None;
                }
            }
        }
        Some(mlirOperationGetOperand(op, 0))
    }
}

/// The op computing `v`, looking through reshapes that keep `k` row
/// dimensions.
unsafe fn producer(v: MlirValue, k: usize) -> Option<MlirOperation> {
    unsafe {
        if !mlirValueIsAOpResult(v) {
            return None;
        }
        let op = mlirOpResultGetOwner(v);
        match row_reshape_source(op, k) {
            Some(src) => producer(src, k),
            None => Some(op),
        }
    }
}

/// Whether every use of `v` is in `chain` (looking through reshapes that
/// keep `k` row dimensions).
unsafe fn used_only_in(v: MlirValue, chain: &HashSet<usize>, k: usize) -> bool {
    unsafe {
        let mut u = mlirValueGetFirstUse(v);
        while !mlirOpOperandIsNull(u) {
            let owner = mlirOpOperandGetOwner(u);
            let inside = chain.contains(&key(owner))
                || (row_reshape_source(owner, k).is_some()
                    && used_only_in(result(owner), chain, k));
            if !inside {
                return false;
            }
            u = mlirOpOperandGetNextUse(u);
        }
        true
    }
}

/// Whether `op` has a reduction loop.
unsafe fn reduces(op: MlirOperation) -> bool {
    unsafe { maps(op).is_some_and(|m| m.parallel.iter().any(|p| !p)) }
}

/// The members of the chain of `root` tiled along `k` row loops of extents
/// `rows`: its row-local producers in `in_body` and not `taken`, added
/// while all users of all their results are in the chain (a producer used
/// twice joins after its second user did).
unsafe fn chain_members(
    root: MlirOperation,
    rows: &[u64],
    k: usize,
    in_body: &HashSet<usize>,
    taken: &HashSet<usize>,
) -> Vec<MlirOperation> {
    unsafe {
        let mut chain: HashSet<usize> = HashSet::from([key(root)]);
        let mut members: Vec<MlirOperation> = Vec::new();
        let mut pending: Vec<MlirOperation> = Vec::new();
        let candidates = |op: MlirOperation, pending: &mut Vec<MlirOperation>| {
            for i in 0..mlirOperationGetNumOperands(op) {
                if let Some(p) = producer(mlirOperationGetOperand(op, i), k)
                    && in_body.contains(&key(p))
                    && !taken.contains(&key(p))
                    && !pending.iter().any(|&q| key(q) == key(p))
                    && row_local_rows(p).is_some_and(|r| r.starts_with(rows))
                {
                    pending.push(p);
                }
            }
        };
        candidates(root, &mut pending);
        loop {
            let ready = pending.iter().position(|&p| {
                !chain.contains(&key(p))
                    && (0..mlirOperationGetNumResults(p))
                        .all(|i| used_only_in(mlirOperationGetResult(p, i), &chain, k))
            });
            let Some(i) = ready else { break };
            let p = pending.swap_remove(i);
            chain.insert(key(p));
            members.push(p);
            candidates(p, &mut pending);
            pending.retain(|&q| !chain.contains(&key(q)));
        }
        members
    }
}

/// Whether a chain with `members`, tiled along row loops of extents
/// `rows` (`split` cut into chunks of `chunk` rows, 0: none), takes
/// `SHORT_ROWS_STEP` rows per step of its innermost row loop: every
/// reduction in it reduces rows of at most `SCALAR_ROW_MAX` elements, and
/// the innermost row loop (or its chunk) has more rows than a step (a
/// single step makes no loop to fuse into, an error the library cannot
/// suppress).
unsafe fn short_rows(members: &[MlirOperation], rows: &[u64], split: usize, chunk: u64) -> bool {
    unsafe {
        let Some(&inner) = rows.last() else {
            return false;
        };
        let inner = if chunk > 0 && split == rows.len() - 1 { chunk } else { inner };
        let mut reductions = members.iter().filter(|&&m| reduces(m)).peekable();
        inner > SHORT_ROWS_STEP
            && reductions.peek().is_some()
            && reductions.all(|&m| {
                analyze(m).is_some_and(|l| l.extents.last().is_some_and(|&n| n <= SCALAR_ROW_MAX))
            })
    }
}

/// Finds and tags the chains among the ops of `body` (see the module comment).
unsafe fn mark_chains(ctx: MlirContext, body: MlirBlock) {
    unsafe {
        let mut ops = Vec::new();
        let mut op = mlirBlockGetFirstOperation(body);
        while !op.ptr.is_null() {
            ops.push(op);
            op = mlirOperationGetNextInBlock(op);
        }
        let in_body: HashSet<usize> = ops.iter().map(|&o| key(o)).collect();
        let mut taken: HashSet<usize> = HashSet::new();
        for &root in ops.iter().rev() {
            if taken.contains(&key(root)) || op_name(root) != "linalg.generic" {
                continue;
            }
            // One row is already one row at a time (and tiling it by one
            // makes no loop to fuse into).
            let Some(root_rows) = row_local_rows(root) else {
                continue;
            };
            // The most row loops that still give a chain with a reduction
            // (an element-wise root's row loops include its columns, which
            // the reductions it reads do not have).
            let Some((k, members)) = (1..=chain_row_loops(&root_rows))
                .rev()
                .filter(|&k| root_rows[k - 1] >= 2)
                .find_map(|k| {
                    let members = chain_members(root, &root_rows[..k], k, &in_body, &taken);
                    members.iter().any(|&m| reduces(m)).then_some((k, members))
                })
            else {
                continue;
            };
            let work: u64 = [root]
                .iter()
                .chain(&members)
                .filter_map(|&o| analyze(o).map(|l| l.work))
                .fold(0u64, u64::saturating_add);
            // Threads split the row loop `decide` picks for the root, if it
            // is one of the chain's row loops.
            let (split, chunk) = analyze(root)
                .and_then(|mut loops| {
                    loops.work = work;
                    decide(&loops)
                })
                .filter(|d| d.dim < k)
                .map_or((0, 0), |d| (d.dim, d.chunk));
            let step = if short_rows(&members, &root_rows[..k], split, chunk) { SHORT_ROWS_STEP } else { 1 };
            let unit = mlirUnitAttrGet(ctx);
            mlirOperationSetAttributeByName(root, string_ref(&root_tag(k, split, chunk, step)), unit);
            taken.insert(key(root));
            for m in members {
                mlirOperationSetAttributeByName(m, string_ref(MEMBER), unit);
                taken.insert(key(m));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Index::{Dim, Zero};

    fn m(operands: &[&[Index]], parallel: &[bool]) -> Maps {
        Maps {
            operands: operands.iter().map(|o| o.to_vec()).collect(),
            parallel: parallel.to_vec(),
        }
    }

    #[test]
    fn broadcast_row_reductions() {
        // logsumexp's sum of exp(x - max): x, the row maximum broadcast,
        // the init.
        let lse = m(&[&[Dim(0), Dim(1)], &[Dim(0), Zero], &[Dim(0)]], &[true, false]);
        assert!(broadcast_row_reduction(&lse));
        assert!(!broadcast_elementwise(&lse));
        // A plain row reduction (the matchers take it), a broadcast only in
        // the init, a column reduction, an element-wise op: no.
        assert!(!broadcast_row_reduction(&m(&[&[Dim(0), Dim(1)], &[Dim(0)]], &[true, false])));
        assert!(!broadcast_row_reduction(&m(&[&[Dim(0), Dim(1)], &[Dim(0), Zero]], &[true, false])));
        assert!(!broadcast_row_reduction(&m(&[&[Dim(0), Dim(1)], &[Zero, Dim(1)], &[Dim(1)]], &[false, true])));
        assert!(!broadcast_row_reduction(&m(&[&[Dim(0), Dim(1)], &[Dim(0), Zero], &[Dim(0), Dim(1)]], &[true, true])));
        // A map reading one loop twice.
        assert!(!broadcast_row_reduction(&m(&[&[Dim(1), Dim(1)], &[Dim(0), Zero], &[Dim(0)]], &[true, false])));
    }

    #[test]
    fn rows_must_lead_every_map() {
        // softmax's subtract: x, the row maximum broadcast, the result.
        let sub = m(
            &[&[Dim(0), Dim(1)], &[Dim(0), Zero], &[Dim(0), Dim(1)]],
            &[true, true],
        );
        assert!(row_local(&sub, &[4, 5]));
        assert!(broadcast_elementwise(&sub));
        // A last-axis reduction (keep-axes form) and a scalar operand.
        let red = m(
            &[&[Dim(0), Dim(1), Dim(2)], &[], &[Dim(0), Dim(1)]],
            &[true, true, false],
        );
        assert!(row_local(&red, &[4, 1, 5]));
        assert!(!broadcast_elementwise(&red));
        // A column reduction, a transpose, a row-broadcast vector: no.
        let col = m(&[&[Dim(0), Dim(1)], &[Dim(1)]], &[false, true]);
        assert!(!row_local(&col, &[4, 5]));
        let tr = m(&[&[Dim(1), Dim(0)], &[Dim(0), Dim(1)]], &[true, true]);
        assert!(!row_local(&tr, &[4, 5]));
        let vec = m(&[&[Dim(1)], &[Dim(0), Dim(1)]], &[true, true]);
        assert!(!row_local(&vec, &[4, 5]));
        // A diagonal read uses d0 twice.
        let diag = m(&[&[Dim(0), Dim(0)], &[Dim(0)]], &[true]);
        assert!(!row_local(&diag, &[4]));
        assert!(!row_local(&sub, &[0, 5]));
        // Row loops: softmax's subtract has one (d1 is broadcast in one
        // operand), a rank-3 one two, the keep-axes reduction of a rank-3
        // input two (d2 is its unit dimension, read by the init: three).
        assert_eq!(row_loops(&sub, &[4, 5]), 1);
        let sub3 = m(
            &[
                &[Dim(0), Dim(1), Dim(2)],
                &[Dim(0), Dim(1), Zero],
                &[Dim(0), Dim(1), Dim(2)],
            ],
            &[true; 3],
        );
        assert_eq!(row_loops(&sub3, &[2, 4, 5]), 2);
        let red3 = m(
            &[&[Dim(0), Dim(1), Dim(2), Dim(3)], &[Dim(0), Dim(1), Dim(2)]],
            &[true, true, true, false],
        );
        assert_eq!(row_loops(&red3, &[2, 4, 1, 5]), 3);
        assert_eq!(row_loops(&tr, &[4, 5]), 0);
    }

    #[test]
    fn chains_are_tiled_along_the_row_loops_up_to_the_last_long_one() {
        assert_eq!(chain_row_loops(&[4096]), 1);
        assert_eq!(chain_row_loops(&[1]), 0);
        // [1][S][D]: along S; [B][S][D]: along B and S; [B][1]: along B.
        assert_eq!(chain_row_loops(&[1, 64]), 2);
        assert_eq!(chain_row_loops(&[3, 5]), 2);
        assert_eq!(chain_row_loops(&[3, 1]), 1);
        assert_eq!(chain_row_loops(&[1, 1]), 0);
        // At most MAX_ROW_LOOPS.
        assert_eq!(chain_row_loops(&[2, 3, 4, 5]), MAX_ROW_LOOPS);
    }

    #[test]
    fn only_real_broadcasts_get_the_elementwise_tag() {
        // Plain projections are the matchers' job; repeated indices are not
        // element-wise.
        let proj = m(&[&[Dim(1)], &[Dim(0), Dim(1)]], &[true, true]);
        assert!(!broadcast_elementwise(&proj));
        let rep = m(&[&[Dim(0), Dim(0)], &[Dim(0), Zero]], &[true, true]);
        assert!(!broadcast_elementwise(&rep));
        let row = m(&[&[Zero, Dim(1)], &[Dim(0), Dim(1)]], &[true, true]);
        assert!(broadcast_elementwise(&row));
    }
}
