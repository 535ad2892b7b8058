//! `tensorc-outline-parallel`: turns each outermost one-dimensional
//! `scf.parallel` loop into a call of tensorc's thread pool.
//!
//! Why a pass of our own: upstream MLIR outlines parallel loops only for its
//! own runtimes (OpenMP's `__kmpc_*` ABI, the async runtime that drags
//! `libLLVM.so` into AOT artifacts, GPU kernels). tensorc wants its generated
//! code to call one small C function it ships itself,
//! `tensorc_parallel_for(body, ctx, n)` (`crates/tensorc-cpu/runtime/tensorc_pool.c`),
//! so the loop body has to become a function of its own plus a context
//! struct holding everything it reads from outside
//! (`../shared/notes/rust-passes-and-threads.md` §B.4). Written with melior's
//! external-pass API and plain `mlir-sys` calls, since the MLIR C API has
//! no outlining utility.
//!
//! It runs after bufferization and `scf-forall-to-parallel`, before the
//! lowering to the LLVM dialect. For every `scf.parallel` that is not nested
//! in another one, has one induction variable and no reductions:
//! - values the loop uses but does not define are *captures*; constants
//!   (`arith.constant`, `ub.poison`) are cloned into the new function instead;
//! - captures are stored in an `!llvm.struct` on the caller's stack (memrefs as
//!   their descriptor struct, `index` as `i64`, through casts that
//!   `reconcile-unrealized-casts` removes once everything is LLVM);
//! - the loop moves into `func.func private @__tensorc_par_K(ctx, begin, end)`,
//!   which reloads the captures and runs iterations `[begin, end)` of the
//!   original loop sequentially (`lb + i*step`, exact, no clamping);
//! - in its place: `call @tensorc_parallel_for(@__tensorc_par_K, ctx, n)` with
//!   `n` the trip count.
//! - buffers an iteration allocates and frees for itself (static shape,
//!   freed in the same block) are allocated once per call instead
//!   (`hoist_scratch`).
//!
//! Vectors defined outside the loop (a loop-invariant read the clean-up
//! hoisted out of it) travel in their LLVM form, like memrefs.
//!
//! Loops it cannot handle (several dimensions, reductions, a capture of a type
//! it does not know how to pass) are left alone: they stay correct sequential
//! loops. Nested parallel loops stay inside their outlined parent and run
//! sequentially there.

use crate::external_pass::{PassId, module_pass};
use crate::pipeline::PARALLEL_FOR;
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;
use std::collections::HashSet;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = crate::pipeline::OUTLINE_PARALLEL;

/// The runtime function the generated code calls.
pub const RUNTIME_FUNCTION: &str = "tensorc_parallel_for";

/// Prefix of the outlined loop bodies' symbols.
const BODY_PREFIX: &str = "__tensorc_par_";

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`: it adds functions).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Outline 1-D scf.parallel loops into calls of tensorc_parallel_for",
        &[
            DialectHandle::llvm(),
            DialectHandle::func(),
            DialectHandle::arith(),
        ],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { outline_module(module) }.is_ok()
        },
    )
}

/// Outlines every eligible loop of `module`; returns how many were outlined.
///
/// # Safety
/// `module` must be a live `builtin.module` operation.
unsafe fn outline_module(module: MlirOperation) -> Result<usize, ()> {
    unsafe {
        let block = mlirRegionGetFirstBlock(mlirOperationGetRegion(module, 0));
        if block.ptr.is_null() {
            return Ok(0);
        }
        // Top-level symbols: outlined bodies get fresh names, and the runtime
        // function is declared once (or not at all if a user function took
        // its name, in which case nothing is outlined).
        let mut symbols = HashSet::new();
        let mut runtime_declared = false;
        let mut op = mlirBlockGetFirstOperation(block);
        while !op.ptr.is_null() {
            if let Some(sym) = string_attr(op, "sym_name") {
                if sym == RUNTIME_FUNCTION {
                    let is_declaration = mlirRegionGetFirstBlock(mlirOperationGetRegion(op, 0))
                        .ptr
                        .is_null();
                    if !is_declaration {
                        return Ok(0);
                    }
                    runtime_declared = true;
                }
                symbols.insert(sym);
            }
            op = mlirOperationGetNextInBlock(op);
        }

        let loops = outermost_parallel_loops(module);

        let mut outlined = 0;
        for lp in loops {
            let mut k = 0;
            let name = loop {
                let candidate = format!("{BODY_PREFIX}{k}");
                if !symbols.contains(&candidate) {
                    break candidate;
                }
                k += 1;
            };
            if outline_loop(module, block, lp, &name) {
                symbols.insert(name);
                outlined += 1;
            }
        }
        if outlined > 0 && !runtime_declared {
            declare_runtime(block, mlirOperationGetLocation(module));
        }
        Ok(outlined)
    }
}

/// How one capture travels through the context struct.
enum Passing {
    /// A ranked memref (as its descriptor struct) or a vector (as its LLVM
    /// form: an `!llvm.array` nest of 1-D vectors), through an
    /// `unrealized_conversion_cast` each way that the LLVM conversions'
    /// own casts cancel.
    Converted,
    /// An `index`, as `i64`.
    Index,
    /// An integer or float scalar, as itself.
    Scalar,
}

/// The LLVM-dialect form of a fixed-size vector type, as the vector
/// conversion makes it: 1-D (and 0-D, as one element) vectors stay vectors,
/// the outer dimensions of an n-D one become nested `!llvm.array`s; `index`
/// elements are `i64`. None for scalable vectors and other element types.
unsafe fn llvm_vector_type(t: MlirType) -> Option<String> {
    unsafe {
        if mlirVectorTypeIsScalable(t) {
            return None;
        }
        let elem = mlirShapedTypeGetElementType(t);
        let elem = if mlirTypeIsAIndex(elem) {
            "i64".to_owned()
        } else if mlirTypeIsAInteger(elem) || mlirTypeIsAFloat(elem) {
            print_type(elem)
        } else {
            return None;
        };
        let rank = mlirShapedTypeGetRank(t);
        let dims: Vec<i64> = (0..rank).map(|d| mlirShapedTypeGetDimSize(t, d as isize)).collect();
        let inner = format!("vector<{}x{elem}>", dims.last().copied().unwrap_or(1));
        Some(dims.iter().rev().skip(1).fold(inner, |acc, d| format!("!llvm.array<{d} x {acc}>")))
    }
}

/// Outlines `lp` into a function named `name`; false (and nothing changed)
/// when the loop is not eligible.
unsafe fn outline_loop(
    module: MlirOperation,
    module_block: MlirBlock,
    lp: MlirOperation,
    name: &str,
) -> bool {
    unsafe {
        // One induction variable (lb, ub, step) and no reduction results.
        if mlirOperationGetNumResults(lp) != 0 || mlirOperationGetNumOperands(lp) != 3 {
            return false;
        }
        let Some(func) = enclosing_func(lp) else {
            return false;
        };
        let entry = mlirRegionGetFirstBlock(mlirOperationGetRegion(func, 0));
        if entry.ptr.is_null() {
            return false;
        }
        let ctx = mlirOperationGetContext(module);
        let loc = mlirOperationGetLocation(lp);

        // Values used inside but defined outside. The loop's upper bound is
        // not needed inside (it is replaced by the chunk's end).
        let mut used: Vec<MlirValue> = Vec::new();
        walk(lp, |op| {
            for i in 0..mlirOperationGetNumOperands(op) {
                if mlirOperationEqual(op, lp) && i == 1 {
                    continue;
                }
                let v = mlirOperationGetOperand(op, i);
                if !defined_inside(v, lp) && !used.iter().any(|u| mlirValueEqual(*u, v)) {
                    used.push(v);
                }
            }
            MlirWalkResult_MlirWalkResultAdvance
        });
        let mut constants: Vec<MlirValue> = Vec::new();
        let mut captures: Vec<(MlirValue, Passing, String)> = Vec::new();
        for v in used {
            if mlirValueIsAOpResult(v) {
                let def = mlirOpResultGetOwner(v);
                let n = op_name(def);
                if (n == "arith.constant" || n == "ub.poison")
                    && mlirOperationGetNumOperands(def) == 0
                    && mlirOperationGetNumResults(def) == 1
                {
                    constants.push(v);
                    continue;
                }
            }
            let t = mlirValueGetType(v);
            let passing = if mlirTypeIsAMemRef(t) {
                if !mlirMemRefTypeGetMemorySpace(t).ptr.is_null() {
                    return false;
                }
                let rank = mlirShapedTypeGetRank(t);
                let field = if rank == 0 {
                    "!llvm.struct<(ptr, ptr, i64)>".to_owned()
                } else {
                    format!(
                        "!llvm.struct<(ptr, ptr, i64, array<{rank} x i64>, array<{rank} x i64>)>"
                    )
                };
                (Passing::Converted, field)
            } else if mlirTypeIsAVector(t) {
                // A loop-invariant vector the clean-up hoisted out of the
                // loop (a read of B's last row in a peeled tile, say):
                // refusing it left the whole loop on one thread.
                let Some(field) = llvm_vector_type(t) else {
                    return false;
                };
                (Passing::Converted, field)
            } else if mlirTypeIsAIndex(t) {
                (Passing::Index, "i64".to_owned())
            } else if mlirTypeIsAInteger(t) || mlirTypeIsAFloat(t) {
                (Passing::Scalar, print_type(t))
            } else {
                return false;
            };
            captures.push((v, passing.0, passing.1));
        }
        let fields: Vec<&str> = captures.iter().map(|c| c.2.as_str()).collect();
        let Some(st) = parse_type(ctx, &format!("!llvm.struct<({})>", fields.join(", "))) else {
            return false;
        };
        let Some(field_types) = captures
            .iter()
            .map(|c| parse_type(ctx, &c.2))
            .collect::<Option<Vec<_>>>()
        else {
            return false;
        };
        let Some(ptr) = parse_type(ctx, "!llvm.ptr") else {
            return false;
        };
        let i64t = mlirIntegerTypeGet(ctx, 64);
        let index = mlirIndexTypeGet(ctx);
        let body_type =
            mlirFunctionTypeGet(ctx, 3, [ptr, i64t, i64t].as_ptr(), 0, std::ptr::null());

        // --- call site ---------------------------------------------------
        // The slot lives in the function's entry block, so a loop inside a
        // `while` does not grow the stack each trip.
        let one = build(
            ctx,
            "llvm.mlir.constant",
            loc,
            &[],
            &[i64t],
            &[("value", attr(ctx, "1 : i64"))],
        );
        mlirBlockInsertOwnedOperation(entry, 0, one);
        let slot = build(
            ctx,
            "llvm.alloca",
            loc,
            &[result(one)],
            &[ptr],
            &[("elem_type", mlirTypeAttrGet(st))],
        );
        mlirBlockInsertOwnedOperationAfter(entry, one, slot);
        let parent = mlirOperationGetBlock(lp);
        let before = |op: MlirOperation| {
            mlirBlockInsertOwnedOperationBefore(parent, lp, op);
            op
        };
        let mut agg = result(before(build(ctx, "llvm.mlir.undef", loc, &[], &[st], &[])));
        for (k, ((v, passing, _), ft)) in captures.iter().zip(&field_types).enumerate() {
            let field = match passing {
                Passing::Converted => result(before(build(
                    ctx,
                    "builtin.unrealized_conversion_cast",
                    loc,
                    &[*v],
                    &[*ft],
                    &[],
                ))),
                Passing::Index => result(before(build(
                    ctx,
                    "arith.index_cast",
                    loc,
                    &[*v],
                    &[i64t],
                    &[],
                ))),
                Passing::Scalar => *v,
            };
            let pos = attr(ctx, &format!("array<i64: {k}>"));
            agg = result(before(build(
                ctx,
                "llvm.insertvalue",
                loc,
                &[agg, field],
                &[st],
                &[("position", pos)],
            )));
        }
        before(build(
            ctx,
            "llvm.store",
            loc,
            &[agg, result(slot)],
            &[],
            &[],
        ));
        let (lb, ub, step) = (
            mlirOperationGetOperand(lp, 0),
            mlirOperationGetOperand(lp, 1),
            mlirOperationGetOperand(lp, 2),
        );
        let span = result(before(build(
            ctx,
            "arith.subi",
            loc,
            &[ub, lb],
            &[index],
            &[],
        )));
        let trips = result(before(build(
            ctx,
            "arith.ceildivsi",
            loc,
            &[span, step],
            &[index],
            &[],
        )));
        let trips = result(before(build(
            ctx,
            "arith.index_cast",
            loc,
            &[trips],
            &[i64t],
            &[],
        )));
        let sym = mlirFlatSymbolRefAttrGet(ctx, string_ref(name));
        let fconst = result(before(build(
            ctx,
            "func.constant",
            loc,
            &[],
            &[body_type],
            &[("value", sym)],
        )));
        let fptr = result(before(build(
            ctx,
            "builtin.unrealized_conversion_cast",
            loc,
            &[fconst],
            &[ptr],
            &[],
        )));
        let callee = mlirFlatSymbolRefAttrGet(ctx, string_ref(RUNTIME_FUNCTION));
        before(build(
            ctx,
            "func.call",
            loc,
            &[fptr, result(slot), trips],
            &[],
            &[("callee", callee)],
        ));

        // --- outlined body -----------------------------------------------
        let region = mlirRegionCreate();
        let arg_locs = [loc, loc, loc];
        let body = mlirBlockCreate(3, [ptr, i64t, i64t].as_ptr(), arg_locs.as_ptr());
        mlirRegionAppendOwnedBlock(region, body);
        let f = build_with_region(
            ctx,
            "func.func",
            loc,
            &[
                ("sym_name", mlirStringAttrGet(ctx, string_ref(name))),
                ("function_type", mlirTypeAttrGet(body_type)),
                (
                    "sym_visibility",
                    mlirStringAttrGet(ctx, string_ref("private")),
                ),
            ],
            region,
        );
        mlirBlockAppendOwnedOperation(module_block, f);
        let append = |op: MlirOperation| {
            mlirBlockAppendOwnedOperation(body, op);
            op
        };
        let mut map: Vec<(MlirValue, MlirValue)> = Vec::new();
        let loaded = result(append(build(
            ctx,
            "llvm.load",
            loc,
            &[mlirBlockGetArgument(body, 0)],
            &[st],
            &[],
        )));
        for (k, ((v, passing, _), ft)) in captures.iter().zip(&field_types).enumerate() {
            let pos = attr(ctx, &format!("array<i64: {k}>"));
            let e = result(append(build(
                ctx,
                "llvm.extractvalue",
                loc,
                &[loaded],
                &[*ft],
                &[("position", pos)],
            )));
            let back = match passing {
                Passing::Converted => result(append(build(
                    ctx,
                    "builtin.unrealized_conversion_cast",
                    loc,
                    &[e],
                    &[mlirValueGetType(*v)],
                    &[],
                ))),
                Passing::Index => result(append(build(
                    ctx,
                    "arith.index_cast",
                    loc,
                    &[e],
                    &[index],
                    &[],
                ))),
                Passing::Scalar => e,
            };
            map.push((*v, back));
        }
        for c in constants {
            let clone = append(mlirOperationClone(mlirOpResultGetOwner(c)));
            map.push((c, result(clone)));
        }
        let remap = |v: MlirValue| {
            map.iter()
                .find(|(o, _)| mlirValueEqual(*o, v))
                .map_or(v, |(_, n)| *n)
        };
        let (lb_in, step_in) = (remap(lb), remap(step));
        let begin = result(append(build(
            ctx,
            "arith.index_cast",
            loc,
            &[mlirBlockGetArgument(body, 1)],
            &[index],
            &[],
        )));
        let end = result(append(build(
            ctx,
            "arith.index_cast",
            loc,
            &[mlirBlockGetArgument(body, 2)],
            &[index],
            &[],
        )));
        let b = result(append(build(
            ctx,
            "arith.muli",
            loc,
            &[begin, step_in],
            &[index],
            &[],
        )));
        let new_lb = result(append(build(
            ctx,
            "arith.addi",
            loc,
            &[lb_in, b],
            &[index],
            &[],
        )));
        let e = result(append(build(
            ctx,
            "arith.muli",
            loc,
            &[end, step_in],
            &[index],
            &[],
        )));
        let new_ub = result(append(build(
            ctx,
            "arith.addi",
            loc,
            &[lb_in, e],
            &[index],
            &[],
        )));
        let ret = append(build(ctx, "func.return", loc, &[], &[], &[]));
        mlirOperationMoveBefore(lp, ret);
        hoist_scratch(lp, ret);
        walk(lp, |op| {
            for (old, new) in &map {
                mlirOperationReplaceUsesOfWith(op, *old, *new);
            }
            MlirWalkResult_MlirWalkResultAdvance
        });
        mlirOperationSetOperand(lp, 0, new_lb);
        mlirOperationSetOperand(lp, 1, new_ub);
        true
    }
}

/// The largest buffer `hoist_scratch` moves: the small per-row buffers it
/// is for. The packed matmul's 256 KiB blocks of B, allocated per N block,
/// made W6 1–2 % slower when allocated once per call (alternated runs of
/// the AOT library, one and two threads).
const MAX_HOISTED_BYTES: u64 = 16 * 1024;

/// Moves each buffer an iteration of the outlined loop `lp` allocates and
/// frees for itself out of the loop: a `memref.alloc` of a static shape
/// of at most `MAX_HOISTED_BYTES`
/// directly in the loop's body, or in the body of an `scf.for` nested in
/// it through `scf.for`s, whose `memref.dealloc` is in the same block
/// is allocated once before the loop and freed once after it (before
/// `ret`). The iterations of one call of the outlined function, and those
/// of the loops in them, run one after the other on one thread, and each
/// used the buffer only between its allocation and its release, so they
/// can share it: an allocation's contents are undefined either way. Why:
/// argmax 1000×1000 ran 63 chunks of 16 rows, each allocating and freeing
/// its five lane and key buffers, 6.5 % of its time in the allocator; the
/// row-fusion step's steps of several rows (`SHORT_ROWS_STEP`) allocate
/// their row temporaries per step.
unsafe fn hoist_scratch(lp: MlirOperation, ret: MlirOperation) {
    unsafe {
        let mut blocks = vec![mlirRegionGetFirstBlock(mlirOperationGetRegion(lp, 0))];
        let mut at = 0;
        while let Some(&block) = blocks.get(at) {
            for op in block_ops(block) {
                if op_name(op) == "scf.for" {
                    blocks.push(mlirRegionGetFirstBlock(mlirOperationGetRegion(op, 0)));
                }
            }
            at += 1;
        }
        for block in blocks {
            hoist_scratch_of(block, lp, ret);
        }
    }
}

/// `hoist_scratch` for the allocations directly in `block`.
unsafe fn hoist_scratch_of(block: MlirBlock, lp: MlirOperation, ret: MlirOperation) {
    unsafe {
        for alloc in block_ops(block) {
            if op_name(alloc) != "memref.alloc" || mlirOperationGetNumOperands(alloc) != 0 {
                continue;
            }
            let buffer = result(alloc);
            let Some(shape) = crate::parallel_mark::static_shape(buffer) else {
                continue;
            };
            let elements = shape.iter().fold(1u64, |n, &d| n.saturating_mul(d));
            let bits = element_bits(mlirValueGetType(buffer)).map_or(u64::MAX, u64::from);
            if elements.saturating_mul(bits) / 8 > MAX_HOISTED_BYTES {
                continue;
            }
            let frees: Vec<MlirOperation> = uses(buffer)
                .into_iter()
                .map(|(u, _)| u)
                .filter(|&u| op_name(u) == "memref.dealloc")
                .collect();
            let [free] = frees.as_slice() else {
                continue;
            };
            if mlirOperationGetBlock(*free).ptr != block.ptr {
                continue;
            }
            mlirOperationMoveBefore(alloc, lp);
            mlirOperationMoveBefore(*free, ret);
        }
    }
}

/// The `scf.parallel` loops and `PARALLEL_FOR` `scf.for` loops of `root`
/// not nested in another of either kind.
unsafe fn outermost_parallel_loops(root: MlirOperation) -> Vec<MlirOperation> {
    unsafe {
        outermost_ops_where(root, |op| {
            let name = op_name(op);
            name == "scf.parallel"
                || (name == "scf.for"
                    && !mlirOperationGetAttributeByName(op, string_ref(PARALLEL_FOR))
                        .ptr
                        .is_null())
        })
    }
}

/// Declares `func.func private @tensorc_parallel_for(!llvm.ptr, !llvm.ptr, i64)`.
unsafe fn declare_runtime(module_block: MlirBlock, loc: MlirLocation) {
    unsafe {
        let ctx = mlirLocationGetContext(loc);
        let Some(ptr) = parse_type(ctx, "!llvm.ptr") else {
            return;
        };
        let i64t = mlirIntegerTypeGet(ctx, 64);
        let ty = mlirFunctionTypeGet(ctx, 3, [ptr, ptr, i64t].as_ptr(), 0, std::ptr::null());
        let f = build_with_region(
            ctx,
            "func.func",
            loc,
            &[
                (
                    "sym_name",
                    mlirStringAttrGet(ctx, string_ref(RUNTIME_FUNCTION)),
                ),
                ("function_type", mlirTypeAttrGet(ty)),
                (
                    "sym_visibility",
                    mlirStringAttrGet(ctx, string_ref("private")),
                ),
            ],
            mlirRegionCreate(),
        );
        mlirBlockAppendOwnedOperation(module_block, f);
    }
}

/// Whether `v` is defined by `lp` itself or by something nested in it.
unsafe fn defined_inside(v: MlirValue, lp: MlirOperation) -> bool {
    unsafe {
        let mut o = if mlirValueIsAOpResult(v) {
            mlirOpResultGetOwner(v)
        } else {
            mlirBlockGetParentOperation(mlirBlockArgumentGetOwner(v))
        };
        while !o.ptr.is_null() {
            if mlirOperationEqual(o, lp) {
                return true;
            }
            o = mlirOperationGetParentOperation(o);
        }
        false
    }
}
