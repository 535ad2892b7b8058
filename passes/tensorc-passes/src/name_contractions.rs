//! `tensorc-name-contractions`: a contraction generic whose operands hold
//! their axes in matrix order, in groups, becomes a `linalg.matmul` or
//! `linalg.batch_matmul` on collapsed views of them.
//!
//! Why: the CPU schedules (packing, register tiles, K and N blocks,
//! threads) take the named matrix products only. The frontend names a
//! `dot` when each operand is a matrix (with at most one batch axis); a dot
//! with several free, batch or contracted axes in an operand (a dense layer
//! over `[batch][seq][features]`, attention's `[b][heads][seq][d]`
//! products) was a generic contraction, which stays scalar loops:
//! `[8][128][512]·[512][1024]` plus bias and relu took 1026 ms on one
//! thread, XLA 4.5 ms; `[2][6][197][64]·[2][6][64][197]` 8.9 ms, XLA
//! 0.33. The frontend puts such operands' axes in the order
//! `[batch…][free…][contracted…]` and `[batch…][contracted…][free…]`
//! (transposing them when they are not), so each group of axes collapses
//! into one: a free view of the operand (`tensor.collapse_shape`), and the
//! result a free view of the product (`tensor.expand_shape`).
//!
//! Why a pass and not the frontend: upstream's
//! `linalg-fuse-elementwise-ops` folds reshapes into the linalg ops around
//! them (by expanding those ops' loops), which turned a named product on
//! collapsed operands back into the generic contraction. This pass runs
//! after it, in the `opt` stage, and nothing after it folds reshapes.
//!
//! Which ops: function-level `linalg.generic`s with two inputs and one
//! init, static shapes with no empty axis, a body that is exactly
//! `init + x0 · x1` (`arith.mulf`/`addf` or `muli`/`addi`) where each `xi`
//! is input `i` or a conversion of it to the init's element type,
//! projected-permutation maps, and loops that group as `groups` says. A
//! conversion (the frontend converts an operand of another type first,
//! and upstream's fusion moves that into the body) is moved back out into
//! an element-wise generic of its own (`split_casts`): a named op would
//! convert by its own rules. bf16·f32 `[8][128][512]·[512][1024]`: 961 →
//! 4.19 ms. Each element is the same sum of the same products in the
//! same order (the contracted loops, collapsed, run in the same order), so
//! results are unchanged bit for bit before the schedules reorder sums.
//! A batch of one element is folded into the free axes of the first
//! operand and the contracted axes of the second: a plain matmul, which
//! the packed schedule takes.

use crate::external_pass::{PassId, module_pass};
use crate::matvec::{extents, permutation_maps};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = crate::pipeline::NAME_CONTRACTIONS;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Rewrite grouped contraction generics as named matrix products on collapsed operands",
        &[DialectHandle::linalg(), DialectHandle::tensor()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { name_contractions(module) };
            true
        },
    )
}

/// The loops of a contraction by role, each group in the order its axes
/// have in the operands: batch loops (read by all three operands), the
/// first input's free loops (`m`), the second's (`n`), the contracted
/// loops (`k`, read by both inputs, not the init).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Groups {
    pub batch: Vec<usize>,
    pub m: Vec<usize>,
    pub n: Vec<usize>,
    pub k: Vec<usize>,
}

/// The groups of a contraction whose operands read loops `operands` (per
/// operand: inputs a and b, then the init, the loop of each axis in order)
/// with loop kinds `parallel` (pure, so it is unit-tested). `None` unless
/// the init reads exactly the parallel loops, every loop has one of the
/// four roles, some loop is contracted, and the operands' axes are
/// `a = [batch, m, k]`, `b = [batch, k, n]`, `init = [batch, m, n]`, the
/// same order of each group everywhere. Without `m` or `n` loops the
/// product is not a matrix product (`named`), but its groups may still
/// collapse (`collapses`).
pub fn groups(operands: &[Vec<usize>; 3], parallel: &[bool]) -> Option<Groups> {
    #[derive(PartialEq, Clone, Copy)]
    enum Role {
        Batch,
        M,
        N,
        K,
    }
    let [a, b, out] = operands;
    let role = |l: usize| match (a.contains(&l), b.contains(&l), out.contains(&l), parallel[l]) {
        (true, true, true, true) => Some(Role::Batch),
        (true, false, true, true) => Some(Role::M),
        (false, true, true, true) => Some(Role::N),
        (true, true, false, false) => Some(Role::K),
        _ => None,
    };
    let roles: Vec<Role> = (0..parallel.len()).map(role).collect::<Option<_>>()?;
    let of = |axes: &[usize], r: Role| -> Vec<usize> {
        axes.iter().copied().filter(|&l| roles[l] == r).collect()
    };
    let g = Groups { batch: of(out, Role::Batch), m: of(out, Role::M), n: of(out, Role::N), k: of(a, Role::K) };
    if g.k.is_empty() {
        return None;
    }
    let cat = |parts: [&[usize]; 3]| parts.concat();
    let grouped = *a == cat([&g.batch, &g.m, &g.k])
        && *b == cat([&g.batch, &g.k, &g.n])
        && *out == cat([&g.batch, &g.m, &g.n]);
    grouped.then_some(g)
}

impl Groups {
    /// Whether both inputs have free loops: a matrix product, named.
    pub fn named(&self) -> bool {
        !self.m.is_empty() && !self.n.is_empty()
    }

    /// Whether some group has several loops (which `collapse_loops` makes
    /// one).
    pub fn collapses(&self) -> bool {
        [&self.batch, &self.m, &self.n, &self.k].iter().any(|g| g.len() > 1)
    }

    /// Per operand (a, b, init), how many of its axes each collapsed axis
    /// takes, empty groups left out.
    pub fn axis_groups(&self) -> [Vec<usize>; 3] {
        let sizes = |parts: [&Vec<usize>; 3]| -> Vec<usize> {
            parts.iter().map(|g| g.len()).filter(|&n| n > 0).collect()
        };
        [
            sizes([&self.batch, &self.m, &self.k]),
            sizes([&self.batch, &self.k, &self.n]),
            sizes([&self.batch, &self.m, &self.n]),
        ]
    }
}

/// The named product of `g` over loops of `extents`: per operand (a, b,
/// init), how many of its axes each collapsed axis takes, and whether it is
/// a `batch_matmul`. A batch of one element joins a's and the init's free
/// group and b's contracted group.
pub fn collapse(g: &Groups, extents: &[u64]) -> ([Vec<usize>; 3], bool) {
    let (nb, nm, nn, nk) = (g.batch.len(), g.m.len(), g.n.len(), g.k.len());
    let batched = nb > 0 && g.batch.iter().map(|&l| extents[l]).product::<u64>() > 1;
    if batched {
        (g.axis_groups(), true)
    } else {
        ([vec![nb + nm, nk], vec![nb + nk, nn], vec![nb + nm, nn]], false)
    }
}

/// The reassociation attribute text of groups of `sizes` axes.
fn reassociation(sizes: &[usize]) -> String {
    let mut next = 0;
    let groups: Vec<String> = sizes
        .iter()
        .map(|&s| {
            let g: Vec<String> = (next..next + s).map(|i| i.to_string()).collect();
            next += s;
            format!("[{}]", g.join(", "))
        })
        .collect();
    format!("[{}]", groups.join(", "))
}

/// Rewrites every grouped contraction generic of `module` (see the module
/// comment); returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn name_contractions(module: MlirOperation) -> usize {
    unsafe {
        let mut count = 0;
        // Consumers collapsed below are destroyed while the walk's list
        // still holds them: skipped by address before they are read.
        let mut destroyed: Vec<MlirOperation> = Vec::new();
        for op in ops_named(module, "linalg.generic") {
            if destroyed.iter().any(|d| d.ptr == op.ptr) {
                continue;
            }
            let parent = mlirOperationGetParentOperation(op);
            if parent.ptr.is_null() || op_name(parent) != "func.func" {
                continue;
            }
            if let Some((g, extents, casts)) = grouped_contraction(op) {
                if !g.named() {
                    if g.collapses() {
                        collapse_loops(op, &g);
                        count += 1;
                    }
                    continue;
                }
                split_casts(op, casts);
                into_destination(op);
                let Some(new) = rewrite(op, &g, &extents) else { continue };
                count += 1;
                // Its consumers, when the product's result was expanded.
                if defined_by(new, "tensor.expand_shape").is_some() {
                    // One rewrite per consumer (it destroys the op), at
                    // its first operand reading the product.
                    let mut users: Vec<(MlirOperation, isize)> = Vec::new();
                    for (user, at) in uses(new) {
                        if !users.iter().any(|(u, _)| mlirOperationEqual(*u, user)) {
                            users.push((user, at));
                        }
                    }
                    for (user, at) in users {
                        if collapse_consumer(user, at) {
                            destroyed.push(user);
                        }
                    }
                }
            }
        }
        count
    }
}

/// The conversions a contraction's body may apply to an input before the
/// multiply (upstream's fusion puts the frontend's conversion of an
/// operand there); the pass moves them back out (`split_casts`).
const CASTS: [&str; 9] = [
    "arith.extf",
    "arith.truncf",
    "arith.sitofp",
    "arith.uitofp",
    "arith.extsi",
    "arith.extui",
    "arith.trunci",
    "arith.fptosi",
    "arith.fptoui",
];

/// `op`'s groups, loop extents and input conversions when it is a
/// contraction this pass names.
unsafe fn grouped_contraction(op: MlirOperation) -> Option<(Groups, Vec<u64>, [Option<MlirOperation>; 2])> {
    unsafe {
        if mlirOperationGetNumOperands(op) != 3 || mlirOperationGetNumResults(op) != 1 {
            return None;
        }
        for i in 0..3 {
            let t = mlirValueGetType(mlirOperationGetOperand(op, i));
            if !mlirTypeIsARankedTensor(t) || !mlirShapedTypeHasStaticShape(t) {
                return None;
            }
        }
        let casts = multiply_add_body(op)?;
        let (maps, parallel) = generic_maps_and_kinds(op)?;
        let (operands, loops) = permutation_maps(op, maps)?;
        let extents = extents(op, &operands, loops)?;
        if extents.contains(&0) || parallel.len() != loops {
            return None;
        }
        let operands: [Vec<usize>; 3] = operands.try_into().ok()?;
        Some((groups(&operands, &parallel)?, extents, casts))
    }
}

/// When `op`'s body is `yield(add(init, mul(x0, x1)))` (either operand
/// order of each), in floats or in integers, where each `xi` is input `i`
/// of the init's element type or a conversion (`CASTS`) of it to that type
/// used by nothing else: those conversions.
unsafe fn multiply_add_body(op: MlirOperation) -> Option<[Option<MlirOperation>; 2]> {
    unsafe {
        let block = mlirRegionGetFirstBlock(mlirOperationGetRegion(op, 0));
        let ops = block_ops(block);
        let (casts, tail) = ops.split_last_chunk::<3>()?;
        let [mul, add, ret] = *tail;
        let arg = |i| mlirBlockGetArgument(block, i);
        let element = mlirValueGetType(arg(2));
        let mut found = [None, None];
        for &c in casts {
            if !CASTS.contains(&op_name(c).as_str()) || mlirOperationGetNumOperands(c) != 1 {
                return None;
            }
            let from = mlirOperationGetOperand(c, 0);
            let i = (0..2).find(|&i| mlirValueEqual(from, arg(i)))?;
            if found[i as usize].is_some()
                || sole_use(arg(i)).is_none()
                || !mlirTypeEqual(mlirValueGetType(result(c)), element)
            {
                return None;
            }
            found[i as usize] = Some(c);
        }
        let x = |i: isize| found[i as usize].map_or(arg(i), |c| result(c));
        for i in 0..2 {
            if !mlirTypeEqual(mlirValueGetType(x(i)), element) {
                return None;
            }
        }
        let is_pair = |o: MlirOperation, p: MlirValue, q: MlirValue| {
            let (a, b) = (mlirOperationGetOperand(o, 0), mlirOperationGetOperand(o, 1));
            (mlirValueEqual(a, p) && mlirValueEqual(b, q)) || (mlirValueEqual(a, q) && mlirValueEqual(b, p))
        };
        let names = (op_name(mul), op_name(add));
        let ok = matches!(
            (names.0.as_str(), names.1.as_str()),
            ("arith.mulf", "arith.addf") | ("arith.muli", "arith.addi")
        ) && op_name(ret) == "linalg.yield"
            && mlirOperationGetNumOperands(mul) == 2
            && mlirOperationGetNumOperands(add) == 2
            && mlirOperationGetNumOperands(ret) == 1
            && is_pair(mul, x(0), x(1))
            && is_pair(add, arg(2), result(mul))
            && mlirValueEqual(mlirOperationGetOperand(ret, 0), result(add));
        ok.then_some(found)
    }
}

/// Moves each conversion in `casts` (of input `i` in `op`'s body) out into
/// an element-wise generic of its own converting input `i`, which `op`
/// then reads instead, its block argument retyped. The values are the
/// same: each element is converted once either way.
unsafe fn split_casts(op: MlirOperation, casts: [Option<MlirOperation>; 2]) {
    unsafe {
        let ctx = mlirOperationGetContext(op);
        let loc = mlirOperationGetLocation(op);
        let body = mlirRegionGetFirstBlock(mlirOperationGetRegion(op, 0));
        for (i, cast) in casts.iter().enumerate() {
            let Some(cast) = *cast else { continue };
            let input = mlirOperationGetOperand(op, i as isize);
            let t = mlirValueGetType(input);
            let to = mlirValueGetType(result(cast));
            let arg = mlirBlockGetArgument(body, i as isize);
            // The body reads the converted value straight from its argument.
            mlirValueReplaceAllUsesOfWith(result(cast), arg);
            mlirBlockArgumentSetType(arg, to);
            let converted_type = shaped_like(t, to);
            let empty = build(ctx, "tensor.empty", loc, &[], &[converted_type], &[]);
            mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(op), op, empty);
            let from = mlirShapedTypeGetElementType(t);
            let block = mlirBlockCreate(2, [from, to].as_ptr(), [loc, loc].as_ptr());
            mlirOperationRemoveFromParent(cast);
            mlirBlockAppendOwnedOperation(block, cast);
            mlirOperationSetOperand(cast, 0, mlirBlockGetArgument(block, 0));
            let yield_op = build(ctx, "linalg.yield", loc, &[result(cast)], &[], &[]);
            mlirBlockAppendOwnedOperation(block, yield_op);
            let region = mlirRegionCreate();
            mlirRegionAppendOwnedBlock(region, block);
            let rank = mlirShapedTypeGetRank(t) as usize;
            let dims: Vec<String> = (0..rank).map(|d| format!("d{d}")).collect();
            let map = format!("affine_map<({0}) -> ({0})>", dims.join(", "));
            let operands = [input, result(empty)];
            let generic = generic_before(op, &operands, 1, &[converted_type], &[map.clone(), map], &vec![true; rank], region);
            mlirOperationSetOperand(op, i as isize, result(generic));
        }
    }
}

/// When `op`'s (only) result only goes into a function's out-parameter
/// (`bufferization.materialize_in_destination`) and its init is a fresh
/// `tensor.empty`, or a fill of one, that init is the out-parameter
/// instead. Why: `eliminate-empty-tensors`, later in the stage, does this
/// for ops whose result reaches the out-parameter directly, but not through
/// the `tensor.expand_shape` the rewrites put after them; without it the
/// product went to a temporary copied out after (1.9 MB of attention
/// scores: a third of the product's time).
unsafe fn into_destination(op: MlirOperation) {
    unsafe {
        if mlirOperationGetNumResults(op) != 1 {
            return;
        }
        let Some((sink, 0)) = sole_use(result(op)) else { return };
        if op_name(sink) != "bufferization.materialize_in_destination" {
            return;
        }
        let dest = mlirOperationGetOperand(sink, 1);
        if !mlirTypeIsAMemRef(mlirValueGetType(dest))
            || !mlirValueIsABlockArgument(dest)
        {
            return;
        }
        let init = mlirOperationGetOperand(op, mlirOperationGetNumOperands(op) - 1);
        let init = match defined_by(init, "linalg.fill") {
            Some(fill) if sole_use(result(fill)).is_some() => mlirOperationGetOperand(fill, 1),
            Some(_) => return,
            None => init,
        };
        let Some(empty) = defined_by(init, "tensor.empty") else { return };
        if sole_use(result(empty)).is_none() {
            return;
        }
        let ctx = mlirOperationGetContext(op);
        let unit = mlirUnitAttrGet(ctx);
        let to_tensor = build(
            ctx,
            "bufferization.to_tensor",
            mlirOperationGetLocation(empty),
            &[dest],
            &[mlirValueGetType(result(empty))],
            &[("restrict", unit), ("writable", unit)],
        );
        // At the top of the function (it views an argument): the views
        // of it made below then come before the product too, where
        // `tensorc-k-block-ends` needs the epilogue's destination.
        mlirBlockInsertOwnedOperation(mlirOperationGetBlock(empty), 0, to_tensor);
        mlirValueReplaceAllUsesOfWith(result(empty), result(to_tensor));
        mlirOperationDestroy(empty);
    }
}

/// Replaces `op` by collapses of its operands, the named product and an
/// expansion of its result, built by parsing a helper function of the
/// same types (its ops are moved in front of `op`). Returns the value that
/// replaced `op`'s result; `None` when the helper does not parse (not
/// expected: the types come from a verified op; `op` is then unchanged).
unsafe fn rewrite(op: MlirOperation, g: &Groups, extents: &[u64]) -> Option<MlirValue> {
    unsafe {
        let ctx = mlirOperationGetContext(op);
        let types: Vec<MlirType> = (0..3).map(|i| mlirValueGetType(mlirOperationGetOperand(op, i))).collect();
        let (sizes, batched) = collapse(g, extents);
        let mut text = String::new();
        let mut names = Vec::new();
        let mut collapsed_types = Vec::new();
        for (i, (t, sizes)) in types.iter().zip(&sizes).enumerate() {
            let ct = print_type(collapsed_type(*t, sizes));
            let name = if sizes.len() == shape(*t).len() {
                format!("%x{i}")
            } else {
                text += &format!(
                    "  %c{i} = tensor.collapse_shape %x{i} {} : {} into {ct}\n",
                    reassociation(sizes),
                    print_type(*t)
                );
                format!("%c{i}")
            };
            names.push(name);
            collapsed_types.push(ct);
        }
        let named = if batched { "linalg.batch_matmul" } else { "linalg.matmul" };
        text += &format!(
            "  %p = {named} ins({}, {} : {}, {}) outs({} : {}) -> {}\n",
            names[0], names[1], collapsed_types[0], collapsed_types[1], names[2], collapsed_types[2], collapsed_types[2]
        );
        let out = print_type(types[2]);
        let out_shape = shape(types[2]);
        let result_name = if sizes[2].len() == out_shape.len() {
            "%p".to_string()
        } else {
            let dims: Vec<String> = out_shape.iter().map(|d| d.to_string()).collect();
            text += &format!(
                "  %r = tensor.expand_shape %p {} output_shape [{}] : {} into {out}\n",
                reassociation(&sizes[2]),
                dims.join(", "),
                collapsed_types[2]
            );
            "%r".to_string()
        };
        let helper_text = format!(
            "func.func @tensorc_name_contraction(%x0: {}, %x1: {}, %x2: {out}) -> {out} {{\n{text}  return {result_name} : {out}\n}}",
            print_type(types[0]),
            print_type(types[1]),
        );
        let helper = mlirOperationCreateParse(ctx, string_ref(&helper_text), string_ref(NAME));
        if helper.ptr.is_null() {
            return None;
        }
        let body = mlirRegionGetFirstBlock(mlirOperationGetRegion(helper, 0));
        for i in 0..3 {
            mlirValueReplaceAllUsesOfWith(mlirBlockGetArgument(body, i), mlirOperationGetOperand(op, i));
        }
        let ops = block_ops(body);
        let Some((ret, moved)) = ops.split_last() else {
            mlirOperationDestroy(helper);
            return None;
        };
        for &o in moved {
            mlirOperationMoveBefore(o, op);
        }
        let new = mlirOperationGetOperand(*ret, 0);
        mlirValueReplaceAllUsesOfWith(result(op), new);
        mlirOperationDestroy(op);
        mlirOperationDestroy(helper);
        Some(new)
    }
}

/// Rewrites `op` (a contraction whose groups `g` are not a matrix product:
/// matrix·vector, vector·vector, batched, several contracted axes) as the
/// same generic over one loop per group, on collapsed views of its
/// operands (its result expanded back when collapsed). Why: the reduction
/// and matrix-vector schedules (`tensorc-matvec`) take one contracted
/// loop; the sum of `a·b` over both axes of two 1000×1000 matrices (two
/// reduction loops) stayed scalar loops at 0.29× XLA, `[4096][8][64]`
/// contracted with `[8][64]` at 0.10×. The body moves over unchanged
/// (conversions included); each result sums the same products in the same
/// order.
unsafe fn collapse_loops(op: MlirOperation, g: &Groups) {
    unsafe {
        let sizes = g.axis_groups();
        // The new loops: one per non-empty group, in the order batch, m, n, k.
        let parts = [&g.batch, &g.m, &g.n, &g.k];
        let mut index = [None; 4];
        let mut loops = 0;
        for (i, p) in parts.iter().enumerate() {
            if !p.is_empty() {
                index[i] = Some(loops);
                loops += 1;
            }
        }
        let dims = |roles: [usize; 3]| -> String {
            let d: Vec<String> = roles.iter().filter_map(|&r| index[r]).map(|l| format!("d{l}")).collect();
            d.join(", ")
        };
        let all: Vec<String> = (0..loops).map(|l| format!("d{l}")).collect();
        let maps: Vec<String> = [dims([0, 1, 3]), dims([0, 3, 2]), dims([0, 1, 2])]
            .iter()
            .map(|r| format!("affine_map<({}) -> ({r})>", all.join(", ")))
            .collect();
        let parallel: Vec<bool> = (0..4).filter(|&i| index[i].is_some()).map(|i| i != 3).collect();
        let mut values = Vec::new();
        for (i, sizes) in sizes.iter().enumerate() {
            let v = mlirOperationGetOperand(op, i as isize);
            let t = mlirValueGetType(v);
            if sizes.len() == shape(t).len() {
                values.push(v);
                continue;
            }
            values.push(reshape_before(op, v, collapsed_type(t, sizes), &reassociation(sizes), false));
        }
        let region = mlirRegionCreate();
        mlirRegionTakeBody(region, mlirOperationGetRegion(op, 0));
        let out_type = mlirValueGetType(values[2]);
        let generic = generic_before(op, &values, 2, &[out_type], &maps, &parallel, region);
        let old = result(op);
        let t = mlirValueGetType(old);
        let new = if sizes[2].len() == shape(t).len() {
            result(generic)
        } else {
            reshape_before(op, result(generic), t, &reassociation(&sizes[2]), true)
        };
        mlirValueReplaceAllUsesOfWith(old, new);
        mlirOperationDestroy(op);
    }
}

/// Lets an element-wise consumer of the expanded product (`user` reading it
/// as operand `at`) run on the collapsed loops instead: its operands are
/// collapsed likewise (the product itself read directly) and its results
/// expanded. Why: the matmul schedules fuse an element-wise consumer of the
/// product (W6's bias and relu) into its register tiles, which they do not
/// see through the expansion: `[8][128][512]·[512][1024]` plus bias and
/// relu ran 5 % slower than the same 1024-row product. Only when every
/// loop is parallel, the product is read with the identity map, the body
/// has no `linalg.index` (whose loop numbers would change) and each
/// operand reads each group of loops whole, in order, or not at all.
/// True when `user` was rewritten (and destroyed).
unsafe fn collapse_consumer(user: MlirOperation, at: isize) -> bool {
    unsafe {
        let parent = mlirOperationGetParentOperation(user);
        if op_name(user) != "linalg.generic" || parent.ptr.is_null() || op_name(parent) != "func.func" {
            return false;
        }
        let Some((maps, parallel)) = generic_maps_and_kinds(user) else { return false };
        let Some((operands, loops)) = permutation_maps(user, maps) else { return false };
        let inputs = mlirOperationGetNumOperands(user) - mlirOperationGetNumResults(user);
        let identity: Vec<usize> = (0..loops).collect();
        if parallel.contains(&false) || at >= inputs || operands[at as usize] != identity {
            return false;
        }
        let block = mlirRegionGetFirstBlock(mlirOperationGetRegion(user, 0));
        if block_ops(block).iter().any(|&o| op_name(o) == "linalg.index") {
            return false;
        }
        into_destination(user);
        let expanded = mlirOperationGetOperand(user, at);
        let expand = mlirOpResultGetOwner(expanded);
        let product = mlirOperationGetOperand(expand, 0);
        let Some(loop_groups) = reassociation_groups(expand) else { return false };
        let Some(plan) = consumer_plan(&operands, &loop_groups) else { return false };
        let ctx = mlirOperationGetContext(user);
        let loc = mlirOperationGetLocation(user);
        let mut values = Vec::new();
        let mut new_maps = Vec::new();
        let mut result_types = Vec::new();
        let mut result_groups = Vec::new();
        for (i, (axes, groups)) in plan.iter().enumerate() {
            let v = mlirOperationGetOperand(user, i as isize);
            let t = mlirValueGetType(v);
            let collapsed = if i == at as usize {
                product
            } else if groups.iter().all(|g| g.len() == 1) {
                v
            } else {
                let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
                let c = build(
                    ctx,
                    "tensor.collapse_shape",
                    loc,
                    &[v],
                    &[collapsed_type(t, &sizes)],
                    &[("reassociation", attr(ctx, &reassociation(&sizes)))],
                );
                // Right after `v` (a view: free wherever it is; there the
                // epilogue's destination is defined before the product,
                // which `tensorc-k-block-ends` needs).
                if mlirValueIsABlockArgument(v) {
                    mlirBlockInsertOwnedOperation(mlirBlockArgumentGetOwner(v), 0, c);
                } else {
                    let def = mlirOpResultGetOwner(v);
                    mlirBlockInsertOwnedOperationAfter(mlirOperationGetBlock(def), def, c);
                }
                result(c)
            };
            if i as isize >= inputs {
                result_types.push(mlirValueGetType(collapsed));
                result_groups.push((groups.iter().map(Vec::len).collect::<Vec<_>>(), t));
            }
            values.push(collapsed);
            let dims: Vec<String> = (0..loop_groups.len()).map(|d| format!("d{d}")).collect();
            let results: Vec<String> = axes.iter().map(|d| format!("d{d}")).collect();
            new_maps.push(format!("affine_map<({}) -> ({})>", dims.join(", "), results.join(", ")));
        }
        let region = mlirRegionCreate();
        mlirRegionTakeBody(region, mlirOperationGetRegion(user, 0));
        let parallel = vec![true; loop_groups.len()];
        let generic = generic_before(user, &values, inputs as usize, &result_types, &new_maps, &parallel, region);
        for (r, (sizes, t)) in result_groups.iter().enumerate() {
            let old = mlirOperationGetResult(user, r as isize);
            let new = mlirOperationGetResult(generic, r as isize);
            let new = if sizes.iter().all(|&s| s == 1) {
                new
            } else {
                reshape_before(user, new, *t, &reassociation(sizes), true)
            };
            mlirValueReplaceAllUsesOfWith(old, new);
        }
        mlirOperationDestroy(user);
        if uses(expanded).is_empty() {
            mlirOperationDestroy(expand);
        }
        true
    }
}

/// The groups of axes of a `tensor.expand_shape` (or collapse) as its
/// `reassociation` attribute lists them.
unsafe fn reassociation_groups(op: MlirOperation) -> Option<Vec<Vec<usize>>> {
    unsafe {
        let a = mlirOperationGetAttributeByName(op, string_ref("reassociation"));
        if a.ptr.is_null() || !mlirAttributeIsAArray(a) {
            return None;
        }
        (0..mlirArrayAttrGetNumElements(a))
            .map(|i| {
                let g = mlirArrayAttrGetElement(a, i);
                mlirAttributeIsAArray(g).then(|| {
                    (0..mlirArrayAttrGetNumElements(g))
                        .map(|j| mlirIntegerAttrGetValueInt(mlirArrayAttrGetElement(g, j)) as usize)
                        .collect()
                })
            })
            .collect()
    }
}

/// One operand of a collapsed consumer: the new loop of each of its axes,
/// and the old axes each new axis takes.
pub type OperandPlan = (Vec<usize>, Vec<Vec<usize>>);

/// Per operand of a consumer whose operands read `operands` (the loop of
/// each axis), its axes after collapsing the loops in `loop_groups` (the
/// new loop of each) and the old axes each takes (pure, unit-tested).
/// `None` unless every operand reads each group whole, contiguous and in
/// order, or none of it.
pub fn consumer_plan(operands: &[Vec<usize>], loop_groups: &[Vec<usize>]) -> Option<Vec<OperandPlan>> {
    let group_of = |l: usize| loop_groups.iter().position(|g| g.contains(&l));
    operands
        .iter()
        .map(|axes| {
            let mut new_axes = Vec::new();
            let mut taken = Vec::new();
            let mut at = 0;
            while at < axes.len() {
                let g = group_of(axes[at])?;
                let group = &loop_groups[g];
                if axes.get(at..at + group.len())? != group.as_slice() {
                    return None;
                }
                new_axes.push(g);
                taken.push((at..at + group.len()).collect());
                at += group.len();
            }
            Some((new_axes, taken))
        })
        .collect()
}

/// `t` with consecutive axes merged, `sizes[i]` of them into axis `i`.
unsafe fn collapsed_type(t: MlirType, sizes: &[usize]) -> MlirType {
    unsafe {
        let dims = shape(t);
        let mut at = 0;
        let merged: Vec<i64> = sizes
            .iter()
            .map(|&s| {
                at += s;
                dims[at - s..at].iter().product()
            })
            .collect();
        mlirRankedTensorTypeGet(
            merged.len() as isize,
            merged.as_ptr(),
            mlirShapedTypeGetElementType(t),
            mlirAttributeGetNull(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(a: &[usize], b: &[usize], out: &[usize]) -> [Vec<usize>; 3] {
        [a.to_vec(), b.to_vec(), out.to_vec()]
    }

    #[test]
    fn a_dense_layer_over_two_free_axes_groups() {
        // x[8][128][512] · w[512][1024]: loops d0 d1 (x's free), d2 (w's), d3 (k).
        let g = groups(&ops(&[0, 1, 3], &[3, 2], &[0, 1, 2]), &[true, true, true, false]).unwrap();
        assert_eq!(g, Groups { batch: vec![], m: vec![0, 1], n: vec![2], k: vec![3] });
        assert_eq!(collapse(&g, &[8, 128, 1024, 512]), ([vec![2, 1], vec![1, 1], vec![2, 1]], false));
    }

    #[test]
    fn two_batch_axes_and_two_contracted_axes_group() {
        // a[2][6][197][4][16] · b[2][6][4][16][197]
        let p = [true, true, true, true, false, false];
        let g = groups(&ops(&[0, 1, 2, 4, 5], &[0, 1, 4, 5, 3], &[0, 1, 2, 3]), &p).unwrap();
        assert_eq!(g, Groups { batch: vec![0, 1], m: vec![2], n: vec![3], k: vec![4, 5] });
        let extents = [2, 6, 197, 197, 4, 16];
        assert_eq!(collapse(&g, &extents), ([vec![2, 1, 2], vec![2, 2, 1], vec![2, 1, 1]], true));
        // A batch of one is a plain product.
        let one = [1, 1, 197, 197, 4, 16];
        assert_eq!(collapse(&g, &one), ([vec![3, 2], vec![4, 1], vec![3, 1]], false));
    }

    #[test]
    fn operands_out_of_matrix_order_are_left_alone() {
        let p = [true, true, false];
        // b transposed ([n][k]), a transposed ([k][m]), the result [n][m].
        assert_eq!(groups(&ops(&[0, 2], &[1, 2], &[0, 1]), &p), None);
        assert_eq!(groups(&ops(&[2, 0], &[2, 1], &[0, 1]), &p), None);
        assert_eq!(groups(&ops(&[1, 2], &[2, 0], &[0, 1]), &p), None);
        // Contracted axes in different orders in a and b.
        let p = [true, true, false, false];
        assert_eq!(groups(&ops(&[0, 2, 3], &[3, 2, 1], &[0, 1]), &p), None);
        // A batch axis after a free one.
        let p = [true, true, true, false];
        assert_eq!(groups(&ops(&[1, 0, 3], &[0, 3, 2], &[0, 1, 2]), &p), None);
    }

    #[test]
    fn products_without_a_free_axis_collapse_but_are_not_named() {
        // vector · matrix (no m), matrix · vector (no n): one loop per
        // group already, left as they are.
        let vm = groups(&ops(&[1], &[1, 0], &[0]), &[true, false]).unwrap();
        assert!(!vm.named() && !vm.collapses());
        let mv = groups(&ops(&[0, 1], &[1], &[0]), &[true, false]).unwrap();
        assert!(!mv.named() && !mv.collapses());
        // a[m][i][j] · b[i][j]: the two contracted loops become one.
        let mv2 = groups(&ops(&[0, 1, 2], &[1, 2], &[0]), &[true, false, false]).unwrap();
        assert!(!mv2.named() && mv2.collapses());
        assert_eq!(mv2.axis_groups(), [vec![1, 2], vec![2], vec![1]]);
        // Both axes of two matrices: a dot of two vectors.
        let frob = groups(&ops(&[0, 1], &[0, 1], &[]), &[false, false]).unwrap();
        assert_eq!(frob.axis_groups(), [vec![2], vec![2], vec![]]);
    }

    #[test]
    fn products_without_a_contracted_axis_are_left_alone() {
        // An outer product.
        assert_eq!(groups(&ops(&[0], &[1], &[0, 1]), &[true, true]), None);
        // A loop only one input reduces, or one no operand reads.
        assert_eq!(groups(&ops(&[0, 2, 3], &[2, 1], &[0, 1]), &[true, true, false, false]), None);
    }

    #[test]
    fn consumers_collapse_when_every_operand_reads_groups_whole() {
        // relu(h + b) over [8][128][1024], h = expand(1024×1024): loops
        // {0, 1} become loop 0; b reads only loop 2.
        let groups = vec![vec![0, 1], vec![2]];
        let plan = consumer_plan(&[vec![0, 1, 2], vec![2], vec![0, 1, 2]], &groups).unwrap();
        assert_eq!(plan[0], (vec![0, 1], vec![vec![0, 1], vec![2]]));
        assert_eq!(plan[1], (vec![1], vec![vec![0]]));
        // An operand reading one loop of the group, or the group out of
        // order, or split: no collapse.
        assert_eq!(consumer_plan(&[vec![0, 1, 2], vec![1, 2]], &groups), None);
        assert_eq!(consumer_plan(&[vec![0, 1, 2], vec![1, 0, 2]], &groups), None);
        assert_eq!(consumer_plan(&[vec![0, 1, 2], vec![0, 2, 1]], &groups), None);
    }

    #[test]
    fn reassociations_number_axes_in_order() {
        assert_eq!(reassociation(&[2, 1]), "[[0, 1], [2]]");
        assert_eq!(reassociation(&[1, 3, 1]), "[[0], [1, 2, 3], [4]]");
    }
}
