//! `tensorc-stream-stores`: the vector stores of a large result go around
//! the caches (non-temporal stores), when the result's buffer is aligned.
//!
//! Why: a store to a line that is not in the cache first reads the line
//! from memory (the store buffer waits for it to arrive owned), so writing
//! a result of 16 MiB moves 32 MiB. A result that large does not stay in
//! the caches for whoever reads it next anyway. Non-temporal stores
//! (`vmovntps`) write whole lines without reading them: W5 (softmax,
//! 4096×1024) took 0.79× and W4 (a fused element-wise chain over 64 MiB
//! results and operands) 0.88× the time, one thread, alternated in one
//! process (the AOT libraries' stores patched by hand, session 25).
//!
//! Which stores: in a `func.func` (before `tensorc-outline-parallel`, so
//! the parallel chunks are still inside it) that only writes the buffer
//! (`writes_only`: a result read back, as a matmul's C between K blocks,
//! must stay in the caches), every `vector.transfer_write`
//! of a 1-D vector of 32 or 64 bytes, in bounds, with the default map, to
//! an argument of the function (bufferized results are out-parameters) or
//! to unit-stride views of one, where the argument is a static,
//! identity-layout memref of at least `STREAM_FROM` bytes (and the
//! function's buffers together at least `STREAM_TOTAL`) and the store's
//! offset from the buffer's start is provably a multiple of the vector's
//! size (each index a multiple of what its stride needs: constants, loop
//! induction variables with such bounds and steps, sums and products, as
//! `multiple_of` tells). Such a store becomes `scf.if %aligned` of a
//! `vector.store` with `nontemporal` and the vector's alignment, else the
//! original store: `%aligned` is computed once at the function's start
//! (the buffer's address a multiple of `ALIGN`; `vmovntps` faults on an
//! unaligned address, and the C ABI does not promise more than the
//! element's alignment, while tensorc's own tensors are aligned to 64
//! bytes or more). Write prefetches of such a buffer
//! (`tensorc-prefetch-rows`) would fetch the lines the stores now skip:
//! they run only when the buffer is not aligned.
//!
//! Ordering: non-temporal stores are weakly ordered, so a fence
//! (`llvm.fence seq_cst`: a locked instruction on x86, which drains the
//! write-combining buffers; `dmb` on AArch64) follows the outermost op
//! holding them in each parallel chunk's body and in the function's body,
//! before the thread pool's join or the return publish the result.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = crate::pipeline::STREAM_STORES;

/// The smallest result (bytes) whose stores are streamed: half the L3 of
/// the benchmark machine, so the results that could stay in the caches for
/// their next reader keep ordinary stores.
pub const STREAM_FROM: i64 = 8 << 20;

/// The fewest bytes a function's buffers (its arguments: inputs and
/// results) must take together for its stores to be streamed: three
/// quarters of the benchmark machine's 32 MiB L3. When everything the call
/// touches fits there, ordinary stores leave the result cached for its
/// next reader, and a streamed store only waits for memory: a 2048² outer
/// product (16 MiB written, 16 KiB read) took 0.39 ms streamed, 0.16
/// ordinary (XLA 0.16), one thread. Larger working sets keep streaming (the
/// same minutes, streamed against ordinary: W8 1.06 against 1.54 ms, W4
/// 5.3 against 7.1, a 4096×1024 GELU chain 1.68 against 2.19; W5 0.75
/// against 0.71).
pub const STREAM_TOTAL: i64 = 24 << 20;

/// The buffer alignment (bytes) the streamed stores need: a cache line, so
/// a 64-byte vector's store is aligned too.
pub const ALIGN: i64 = 64;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Store large results with non-temporal stores when their buffers are aligned",
        &[
            DialectHandle::arith(),
            DialectHandle::memref(),
            DialectHandle::scf(),
            DialectHandle::llvm(),
        ],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { stream_stores(module) };
            true
        },
    )
}

/// Rewrites the eligible stores of every function of `module`; returns
/// how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn stream_stores(module: MlirOperation) -> usize {
    unsafe {
        let mut n = 0;
        for f in ops_named(module, "func.func") {
            n += stream_function(f);
        }
        n
    }
}

/// A store to stream: the write and its vector's size in bytes.
struct Store {
    write: MlirOperation,
    bytes: i64,
}

unsafe fn stream_function(f: MlirOperation) -> usize {
    unsafe {
        let entry = mlirRegionGetFirstBlock(mlirOperationGetRegion(f, 0));
        if entry.ptr.is_null() {
            return 0;
        }
        let total: i64 = (0..mlirBlockGetNumArguments(entry)).filter_map(|i| buffer_bytes(mlirValueGetType(mlirBlockGetArgument(entry, i)))).sum();
        if total < STREAM_TOTAL {
            return 0;
        }
        let mut count = 0;
        for i in 0..mlirBlockGetNumArguments(entry) {
            let arg = mlirBlockGetArgument(entry, i);
            let Some(strides) = large_buffer(arg) else { continue };
            let Some(writes) = writes_only(arg) else { continue };
            let mut stores = Vec::new();
            let mut prefetches = Vec::new();
            for w in ops_named(f, "vector.transfer_write") {
                if let Some(s) = streamable(w, arg, &strides) {
                    stores.push(s);
                }
            }
            // Every write into the buffer streamed, or none: streamed
            // remainders beside ordinary stores into the same lines (rows
            // of 56 f32 broadcast-multiplied in 16-lane steps, whose 8-lane
            // last step alone sat at a multiple of its size) made each line
            // leave the caches half written and come back: 0.36 → 4.3 ms
            // for 16×64×56×56 f32, against 0.28 ms with no streaming.
            if writes != stores.len() {
                continue;
            }
            for p in ops_named(f, "memref.prefetch") {
                let write = mlirOperationGetAttributeByName(p, string_ref("isWrite"));
                if !write.ptr.is_null() && mlirBoolAttrGetValue(write) && root_of(mlirOperationGetOperand(p, 0)).is_some_and(|(r, _)| mlirValueEqual(r, arg)) {
                    prefetches.push(p);
                }
            }
            if stores.is_empty() {
                continue;
            }
            let aligned = aligned_flag(entry, arg);
            let mut fenced: Vec<MlirOperation> = Vec::new();
            for s in &stores {
                fence_after_holder(s.write, f, &mut fenced);
                stream(s, aligned);
            }
            // Write prefetches only where the stores stay ordinary.
            for p in prefetches {
                into_else(p, aligned);
            }
            count += stores.len();
        }
        count
    }
}

/// The size in bytes of a static memref type, `None` for other types.
unsafe fn buffer_bytes(t: MlirType) -> Option<i64> {
    unsafe {
        if !mlirTypeIsAMemRef(t) || !mlirShapedTypeHasStaticShape(t) {
            return None;
        }
        let bytes = i64::from(element_bits(t)?.div_ceil(8));
        shape(t).iter().try_fold(bytes, |a, &d| a.checked_mul(d))
    }
}

/// The row-major strides of `arg` when it is a static identity-layout
/// memref of at least `STREAM_FROM` bytes.
unsafe fn large_buffer(arg: MlirValue) -> Option<Vec<i64>> {
    unsafe {
        let t = mlirValueGetType(arg);
        if !mlirTypeIsAMemRef(t)
            || !mlirShapedTypeHasStaticShape(t)
            || !mlirAffineMapIsIdentity(mlirMemRefTypeGetAffineMap(t))
        {
            return None;
        }
        let bytes = i64::from(element_bits(t)? / 8);
        let dims = shape(t);
        let elements = dims.iter().try_fold(1i64, |a, &d| a.checked_mul(d))?;
        if elements.checked_mul(bytes)? < STREAM_FROM {
            return None;
        }
        let mut strides = vec![1i64; dims.len()];
        for d in (0..dims.len().saturating_sub(1)).rev() {
            strides[d] = strides[d + 1] * dims[d + 1];
        }
        Some(strides)
    }
}

/// How many ops write into `arg` when the function only writes it: its
/// uses and its views' uses are views, vector stores, fills and prefetches
/// (`None` otherwise). A result that is read back (a matmul's C,
/// accumulated over K blocks) must stay in the caches, where a
/// non-temporal store would evict it.
unsafe fn writes_only(arg: MlirValue) -> Option<usize> {
    unsafe {
        uses(arg)
            .into_iter()
            .map(|(op, at)| match op_name(op).as_str() {
                "memref.subview" if at == 0 => writes_only(result(op)),
                "vector.transfer_write" | "vector.store" | "memref.store" | "linalg.fill" if at == 1 => Some(1),
                "memref.prefetch" => Some(0),
                _ => None,
            })
            .sum()
    }
}

/// The root memref of `v` through unit-stride `memref.subview`s and the
/// offsets they add per dimension (rank-preserving views only).
unsafe fn root_of(v: MlirValue) -> Option<(MlirValue, Vec<Vec<Offset>>)> {
    unsafe {
        let rank = mlirShapedTypeGetRank(mlirValueGetType(v)) as usize;
        let mut offsets: Vec<Vec<Offset>> = vec![Vec::new(); rank];
        let mut m = v;
        while mlirValueIsAOpResult(m) {
            let view = mlirOpResultGetOwner(m);
            let (o, _) = subview_offsets(view)?;
            let source = mlirOperationGetOperand(view, 0);
            if o.len() != rank || mlirShapedTypeGetRank(mlirValueGetType(source)) as usize != rank {
                return None;
            }
            for (d, off) in o.into_iter().enumerate() {
                offsets[d].push(off);
            }
            m = source;
        }
        Some((m, offsets))
    }
}

/// The store `w` when it writes a 1-D vector of 32 or 64 bytes in bounds
/// to `arg` (through views), at an offset that is a multiple of the
/// vector's size.
unsafe fn streamable(w: MlirOperation, arg: MlirValue, strides: &[i64]) -> Option<Store> {
    unsafe {
        if !simple_transfer(w, 1) {
            return None;
        }
        let (mem, idx, _) = place(w, 1);
        let vt = mlirValueGetType(mlirOperationGetOperand(w, 0));
        let t = mlirValueGetType(mem);
        if mlirShapedTypeGetRank(vt) != 1 || !unit_last_stride(t) {
            return None;
        }
        let elem = i64::from(element_bits(vt)? / 8);
        let lanes = mlirShapedTypeGetDimSize(vt, 0);
        let bytes = lanes * elem;
        if bytes != 32 && bytes != 64 {
            return None;
        }
        let (root, offsets) = root_of(mem)?;
        if !mlirValueEqual(root, arg) || idx.len() != strides.len() {
            return None;
        }
        // Every dimension's index (the store's plus the views' offsets)
        // times its stride must be a multiple of the vector's lanes.
        for (d, &stride) in strides.iter().enumerate() {
            let need = lanes / gcd(lanes, stride);
            if need == 1 {
                continue;
            }
            let terms = std::iter::once(Offset::Dynamic(idx[d])).chain(offsets[d].iter().copied());
            for term in terms {
                let m = match term {
                    Offset::Static(c) => divisor_of(c),
                    Offset::Dynamic(v) => multiple_of(v, 16),
                };
                if m % need != 0 {
                    return None;
                }
            }
        }
        Some(Store { write: w, bytes })
    }
}

/// Whether the memref type `t` has a unit stride in its last dimension.
unsafe fn unit_last_stride(t: MlirType) -> bool {
    unsafe { memref_strides(t).and_then(|s| s.last().copied()) == Some(1) }
}

fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a.abs(), b.abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A divisor of the constant `c` for `multiple_of` (0 is a multiple of
/// everything: a large power of two).
fn divisor_of(c: i64) -> i64 {
    if c == 0 { 1 << 20 } else { c.abs() }
}

/// A number `v` is known to be a multiple of (1 when nothing is known),
/// looking through at most `depth` ops.
unsafe fn multiple_of(v: MlirValue, depth: u32) -> i64 {
    unsafe {
        if let Some(c) = constant_int(v) {
            return divisor_of(c);
        }
        if depth == 0 {
            return 1;
        }
        if mlirValueIsABlockArgument(v) {
            let block = mlirBlockArgumentGetOwner(v);
            let owner = mlirBlockGetParentOperation(block);
            return match op_name(owner).as_str() {
                "scf.for" if mlirBlockArgumentGetArgNumber(v) == 0 => {
                    let lo = multiple_of(mlirOperationGetOperand(owner, 0), depth - 1);
                    let step = multiple_of(mlirOperationGetOperand(owner, 2), depth - 1);
                    gcd(lo, step)
                }
                "scf.forall" => forall_multiple(owner, mlirBlockArgumentGetArgNumber(v) as usize),
                _ => 1,
            };
        }
        let def = mlirOpResultGetOwner(v);
        let operand = |i| mlirOperationGetOperand(def, i);
        match op_name(def).as_str() {
            "arith.addi" | "arith.subi" => gcd(multiple_of(operand(0), depth - 1), multiple_of(operand(1), depth - 1)),
            "arith.muli" => multiple_of(operand(0), depth - 1).saturating_mul(multiple_of(operand(1), depth - 1)),
            "affine.apply" => {
                let m = mlirAffineMapAttrGetValue(mlirOperationGetAttributeByName(def, string_ref("map")));
                if mlirAffineMapGetNumResults(m) != 1 {
                    return 1;
                }
                let dims = mlirAffineMapGetNumDims(m) as usize;
                let args: Vec<i64> = (0..mlirOperationGetNumOperands(def)).map(|i| multiple_of(operand(i), depth - 1)).collect();
                expr_multiple(mlirAffineMapGetResult(m, 0), dims, &args)
            }
            _ => 1,
        }
    }
}

/// `multiple_of` for induction variable `n` of an `scf.forall` with static
/// lower bounds and steps.
unsafe fn forall_multiple(op: MlirOperation, n: usize) -> i64 {
    unsafe {
        let (Some(lo), Some(step)) = (i64_array(op, "staticLowerBound"), i64_array(op, "staticStep")) else {
            return 1;
        };
        match (lo.get(n), step.get(n)) {
            (Some(&l), Some(&s)) if l != i64::MIN && s != i64::MIN => gcd(divisor_of(l), divisor_of(s)),
            _ => 1,
        }
    }
}

/// `multiple_of` for an affine expression whose dimensions and symbols
/// are multiples of `args`.
unsafe fn expr_multiple(e: MlirAffineExpr, dims: usize, args: &[i64]) -> i64 {
    unsafe {
        if mlirAffineExprIsAConstant(e) {
            return divisor_of(mlirAffineConstantExprGetValue(e));
        }
        if mlirAffineExprIsADim(e) {
            return args.get(mlirAffineDimExprGetPosition(e) as usize).copied().unwrap_or(1);
        }
        if mlirAffineExprIsASymbol(e) {
            return args.get(dims + mlirAffineSymbolExprGetPosition(e) as usize).copied().unwrap_or(1);
        }
        let l = expr_multiple(mlirAffineBinaryOpExprGetLHS(e), dims, args);
        let r = expr_multiple(mlirAffineBinaryOpExprGetRHS(e), dims, args);
        if mlirAffineExprIsAAdd(e) {
            gcd(l, r)
        } else if mlirAffineExprIsAMul(e) {
            l.saturating_mul(r)
        } else {
            1
        }
    }
}

/// Inserts at the start of `entry` whether `arg`'s address is a multiple
/// of `ALIGN`; returns the `i1`.
unsafe fn aligned_flag(entry: MlirBlock, arg: MlirValue) -> MlirValue {
    unsafe {
        let first = mlirBlockGetFirstOperation(entry);
        let ctx = mlirOperationGetContext(first);
        let loc = mlirOperationGetLocation(first);
        let index = mlirIndexTypeGet(ctx);
        let ptr = insert_before(first, build(ctx, "memref.extract_aligned_pointer_as_index", loc, &[arg], &[index], &[]));
        let align = index_constant(first, ALIGN);
        let rem = insert_before(first, build(ctx, "arith.remui", loc, &[ptr, align], &[index], &[]));
        let zero = index_constant(first, 0);
        let i1 = mlirIntegerTypeGet(ctx, 1);
        insert_before(
            first,
            build(ctx, "arith.cmpi", loc, &[rem, zero], &[i1], &[("predicate", attr(ctx, "0 : i64"))]),
        )
    }
}

/// Replaces the store by `scf.if %aligned` of its non-temporal
/// `vector.store`, else the store itself.
unsafe fn stream(s: &Store, aligned: MlirValue) {
    unsafe {
        let w = s.write;
        let ctx = mlirOperationGetContext(w);
        let operands: Vec<MlirValue> = (0..mlirOperationGetNumOperands(w)).map(|i| mlirOperationGetOperand(w, i)).collect();
        let nt = build(
            ctx,
            "vector.store",
            mlirOperationGetLocation(w),
            &operands,
            &[],
            &[
                ("nontemporal", attr(ctx, "true")),
                ("alignment", attr(ctx, &format!("{} : i64", s.bytes))),
            ],
        );
        let then = branch(into_else(w, aligned), 0);
        mlirBlockInsertOwnedOperationBefore(then, mlirBlockGetFirstOperation(then), nt);
    }
}

/// Moves `op` into the else branch of a new `scf.if %cond` in its place
/// (the then branch only yields); returns the `scf.if`.
unsafe fn into_else(op: MlirOperation, cond: MlirValue) -> MlirOperation {
    unsafe {
        let branches = build_if(op, cond, &[]);
        mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(op), op, branches);
        append_yield(op, branch(branches, 0), &[]);
        let other = branch(branches, 1);
        mlirOperationRemoveFromParent(op);
        mlirBlockAppendOwnedOperation(other, op);
        append_yield(branches, other, &[]);
        branches
    }
}

/// Inserts a fence after the op that holds `op` in the body of its
/// nearest `scf.forall` (a parallel chunk) or else of `f`, once per such
/// op (`fenced` lists those done).
unsafe fn fence_after_holder(op: MlirOperation, f: MlirOperation, fenced: &mut Vec<MlirOperation>) {
    unsafe {
        let mut scope = mlirOperationGetParentOperation(op);
        while !scope.ptr.is_null() && scope.ptr != f.ptr && op_name(scope) != "scf.forall" {
            scope = mlirOperationGetParentOperation(scope);
        }
        if scope.ptr.is_null() {
            return;
        }
        let block = mlirRegionGetFirstBlock(mlirOperationGetRegion(scope, 0));
        let Some(holder) = holder_in(op, block) else { return };
        if fenced.iter().any(|h| h.ptr == holder.ptr) {
            return;
        }
        fenced.push(holder);
        let ctx = mlirOperationGetContext(holder);
        // A sequentially consistent fence (a locked instruction on x86,
        // which orders non-temporal stores; `sfence` would need an
        // x86-only intrinsic, and the pipeline also targets AArch64).
        let fence = build(
            ctx,
            "llvm.fence",
            mlirOperationGetLocation(holder),
            &[],
            &[],
            &[("ordering", attr(ctx, "7 : i64"))],
        );
        mlirBlockInsertOwnedOperationAfter(block, holder, fence);
    }
}
