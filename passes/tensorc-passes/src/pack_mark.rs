//! `tensorc-pack-mark`: decides which matrix products the packed schedule
//! (`packed_matmul.rs`) takes, tags them, and turns a batch of such
//! products into a loop over the batch of `linalg.matmul`s.
//!
//! Why the decision is here: packing (copying A and B into panels, K and N
//! cache blocks, `docs/passes.md`) pays for itself when B's rows map to the
//! same cache sets (their stride, `4·N` bytes, a multiple of 2 KiB and at
//! least 4 KiB: W2 and W3 ran at 0.52× and 0.34× NumPy unpacked, 1536³ at
//! 0.80× on two threads; or within 8 bytes of a multiple of 4 KiB: 1023
//! columns ran at 202 GFLOPS unpacked, 244 packed — unless the unpacked
//! schedule reads B through a repitched copy, `tensorc-repitch-b`, which was
//! faster still) or when B is too large to
//! stream from L3 once per 8-row tile of A (2000³, 16 MiB: 0.70×
//! unpacked, 0.93× packed). Otherwise the unpacked 8×32 schedule
//! (`matmul_schedule.rs`) was faster, with no packs, fill or unpack
//! (`docs/benchmarks.md`, same minutes, one thread: 1000³ 1.02× NumPy
//! unpacked against 0.96× packed, 1500³ 1.02× against 0.92×, 1536³
//! 1.03× against 0.94×, a·bᵀ 1000×777×1100 1.00× against 0.89×). The
//! stride test needs a modulo, which transform-dialect matchers do not
//! have, so the packing library packs exactly the ops this pass tags
//! `tensorc.pack` (`PackedMatmul::packs` has the rule). Those figures are
//! AVX-512's; on AVX2 targets the lowering runs `tensorc-pack-mark-avx2`,
//! which decides with `PackedMatmul::for_isa(Avx2)`: every product that
//! passes the size thresholds is packed (the unpacked 6×16 tiles stayed
//! far behind OpenBLAS there: passes.md, "Register tiles per vector ISA")
//! and N chunks count 8-wide panels.
//!
//! Why batches become loops: the packed schedule matches `linalg.matmul`
//! only, and a `linalg.batch_matmul` keeps the unpacked batch schedule,
//! right for W10's small matrices but not for large ones (four 1024³
//! products in one batch ran at 0.53–0.64× NumPy while one 1024³ `dot`
//! runs at parity). One `linalg.matmul` per batch element, on slices of
//! the operands and the result (views after bufferization), is packed, and
//! threads split each product as they split one `dot`.
//!
//! Which ops: `linalg.matmul`s anywhere and `linalg.batch_matmul`s at
//! function level (batch > 1), with static shapes, 32-bit operands, the
//! default `indexing_maps` (no broadcast or transposed operand) and a
//! product (per batch element) that `PackedMatmul::packs` takes; 64-bit
//! ones too where the packed schedule has tiles for them
//! (`PackedMatmul::packs_bits`: AVX2). It runs on
//! tensors, right before the packing step.
//!
//! How threads will split each tagged product is decided here too, for the
//! same reason (divisibility): N chunks (`tensorc.pack_n<panels>`,
//! `PackedMatmul::n_chunk`), else two M chunks (`tensorc.pack_m`,
//! `PackedMatmul::splits_m`), else (no extra tag) each block's A panels.
//!
//! The unpacked `linalg.matmul`s (32- or 64-bit elements) with the default
//! maps and a large B get their N block width for the unpacked schedule
//! (`tensorc.nblock<width>`, `matmul_schedule::n_block`): it depends on K,
//! a division the matchers lack too. A batch matmul whose products have a
//! B over 4 MiB (`blocked`) becomes a loop of `linalg.matmul`s like a batch
//! of packed products, and each is tagged like a `dot` (the batch schedule
//! has no N blocks and streamed such a B once per 8-row tile: 2×1500³ ran
//! at 0.5× NumPy).

use crate::external_pass::{PassId, module_pass};
use crate::matmul_schedule::{k_block, k_block_tag, n_block, n_block_tag};
use crate::packed_matmul::{PACK_M, PackedMatmul, n_chunk_tag};
use crate::pipeline::VectorIsa;
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = crate::pipeline::PACK_MARK;

/// The AVX2 lowering's pass: the same marks for AVX2's packed schedule.
pub const NAME_AVX2: &str = crate::pipeline::PACK_MARK_AVX2;

static PASS_ID: PassId = PassId::new();
static PASS_ID_AVX2: PassId = PassId::new();

const DESCRIPTION: &str = "Tag the matrix products to pack and turn batches of them into loops of matmuls";

fn dialects() -> [DialectHandle; 4] {
    [DialectHandle::scf(), DialectHandle::tensor(), DialectHandle::linalg(), DialectHandle::arith()]
}

/// Creates the pass (anchored on `builtin.module`) for AVX-512's packed
/// schedule (`PackedMatmul::default()`).
pub fn create() -> Pass {
    module_pass(&PASS_ID, NAME, DESCRIPTION, &dialects(), |module| {
        // SAFETY: `module_pass` passes the live module the pass runs on.
        unsafe { mark_all(module, VectorIsa::Avx512) };
        true
    })
}

/// Creates the pass for AVX2's packed schedule (`PackedMatmul::for_isa`).
pub fn create_avx2() -> Pass {
    module_pass(&PASS_ID_AVX2, NAME_AVX2, DESCRIPTION, &dialects(), |module| {
        // SAFETY: `module_pass` passes the live module the pass runs on.
        unsafe { mark_all(module, VectorIsa::Avx2) };
        true
    })
}

/// The pass's work on `module` for `isa`'s packed schedule.
///
/// # Safety
/// `module` must be a live operation.
unsafe fn mark_all(module: MlirOperation, isa: VectorIsa) {
    unsafe {
        mark(module, PackedMatmul::for_isa(isa));
        // The unpacked products whose zero fill may go (after the packed
        // ones are tagged, which keep theirs).
        crate::drop_zero_fill::mark(module);
    }
}

/// The attribute of the `linalg.matmul`s the packing library packs
/// (defined beside the library, which the LLVM-free build has too).
pub use crate::packed_matmul::PACK;

/// Tags every matmul to pack and unbatches every batch of them; returns
/// how many ops were tagged (a batch counts once per element).
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn mark(module: MlirOperation, p: PackedMatmul) -> usize {
    unsafe {
        let batches: Vec<(MlirOperation, [i64; 4])> = ops_named(module, "linalg.batch_matmul")
            .into_iter()
            .filter(|&op| {
                let parent = mlirOperationGetParentOperation(op);
                !parent.ptr.is_null() && op_name(parent) == "func.func"
            })
            .filter_map(|op| eligible(op, p, 3).or_else(|| blocked(op)).map(|s| (op, s)))
            .filter(|(_, s)| s[0] > 1)
            .collect();
        for (op, shape) in &batches {
            rewrite(*op, *shape);
        }
        let mut tagged = 0;
        for op in ops_named(module, "linalg.matmul") {
            let Some((shape @ [_, m, n, k], bits)) = product_shape(op, 2) else { continue };
            if !packs(p, shape, bits) {
                // Unpacked: N blocks when B is large (the schedule's rule).
                tag_n_block(op, m, n, k, bits);
                continue;
            }
            let ctx = mlirOperationGetContext(op);
            let tag = |name: &str| mlirOperationSetAttributeByName(op, string_ref(name), mlirUnitAttrGet(ctx));
            tag(PACK);
            if let Some(c) = p.n_chunk(n as u64) {
                tag(&n_chunk_tag(c));
            } else if p.splits_m(m as u64, n as u64) {
                tag(PACK_M);
            }
            tagged += 1;
        }
        tagged
    }
}

/// Tags an unpacked product of `M×K·K×N` with elements of `bits` with its
/// N block width (`matmul_schedule::n_block`), or, for the 64-bit ones
/// with longer rows, its N block width and K block rows
/// (`matmul_schedule::k_block`), if it gets them.
unsafe fn tag_n_block(op: MlirOperation, m: i64, n: i64, k: i64, bits: u32) {
    let (m, n, k, bytes) = (m as u64, n as u64, k as u64, u64::from(bits / 8));
    let tags = match (n_block(m, n, k, bytes), k_block(m, n, k, bytes)) {
        (Some(width), _) => vec![n_block_tag(width)],
        (None, Some((width, rows))) => vec![n_block_tag(width), k_block_tag(rows)],
        (None, None) => vec![],
    };
    for tag in tags {
        unsafe {
            let ctx = mlirOperationGetContext(op);
            mlirOperationSetAttributeByName(op, string_ref(&tag), mlirUnitAttrGet(ctx));
        }
    }
}

/// `[batch, M, N, K]` (batch 1 for a matmul) of a product to pack, for a
/// matmul (`rank` 2) or batch matmul (`rank` 3).
unsafe fn eligible(op: MlirOperation, p: PackedMatmul, rank: isize) -> Option<[i64; 4]> {
    unsafe {
        product_shape(op, rank)
            .filter(|&(s, bits)| packs(p, s, bits))
            .map(|(s, _)| s)
    }
}

/// `[batch, M, N, K]` of a batch matmul whose products are large (each
/// B over `LARGE_B` bytes, M of two 8-row tiles or more): unbatched, each
/// product runs as one `dot` of its shape does (M chunks for threads from
/// the parallel step, N or K blocks when `tag_n_block` gives them).
unsafe fn blocked(op: MlirOperation) -> Option<[i64; 4]> {
    unsafe {
        let ([b, m, n, k], bits) = product_shape(op, 3)?;
        let b_bytes = u64::from(bits / 8) * n as u64 * k as u64;
        (b_bytes > LARGE_B && m >= 16).then_some([b, m, n, k])
    }
}

/// See `blocked`. The batch schedule streams each product's B from L3 or
/// memory once per 8-row tile, with no N blocks. Session 15, same minutes,
/// batch → unbatched, one and two threads (ms): 2×1500³ (9 MB per B)
/// 96–113 → 56.5–62.8 and 38.3 → 29.0; 2×1200³ (5.8 MB) 30.3 → 27.6 and
/// 16.4 → 14.9; 3×(600×1500·1500×1400) 74.7 → 32.7 and 31.3 → 18.1. With
/// smaller Bs the batch was as fast or faster (its threads split the
/// batch): 2×1000³ (4 MB) 16.0 → 16.0–16.3 and 8.1–8.2 → 8.4; 4×(700×900·
/// 900×800) (2.9 MB) 17.0–18.3 → 16.3–16.5 but 8.9–9.1 → 9.6–9.7.
const LARGE_B: u64 = 4 << 20;

/// Whether the packing library takes a product of shape `[batch, M, N, K]`
/// of `bits`-wide elements.
fn packs(p: PackedMatmul, [_, m, n, k]: [i64; 4], bits: u32) -> bool {
    p.packs_bits(m as u64, n as u64, k as u64, bits)
}

/// `[batch, M, N, K]` (batch 1 for a matmul) of a plain product of static
/// operands whose elements are all 32 or all 64 bits wide, for a matmul
/// (`rank` 2) or batch matmul (`rank` 3), and that width.
pub(crate) unsafe fn product_shape(op: MlirOperation, rank: isize) -> Option<([i64; 4], u32)> {
    unsafe {
        if mlirOperationGetNumOperands(op) != 3
            || mlirOperationGetNumResults(op) != 1
            || !default_maps(op, rank)
        {
            return None;
        }
        let ty = |i| mlirValueGetType(mlirOperationGetOperand(op, i));
        let (a, b, c) = (ty(0), ty(1), ty(2));
        for t in [a, b, c] {
            if !mlirTypeIsARankedTensor(t)
                || mlirShapedTypeGetRank(t) != rank as i64
                || !mlirShapedTypeHasStaticShape(t)
            {
                return None;
            }
        }
        let dim = |t, d: isize| mlirShapedTypeGetDimSize(t, d + rank - 2);
        let batch = if rank == 3 {
            mlirShapedTypeGetDimSize(a, 0)
        } else {
            1
        };
        let (m, k, n) = (dim(a, 0), dim(a, 1), dim(b, 1));
        let bits = |t| {
            let e = mlirShapedTypeGetElementType(t);
            if mlirTypeIsAFloat(e) {
                mlirFloatTypeGetWidth(e)
            } else if mlirTypeIsAInteger(e) {
                mlirIntegerTypeGetWidth(e)
            } else {
                0
            }
        };
        let batches_agree = rank == 2
            || (mlirShapedTypeGetDimSize(b, 0) == batch && mlirShapedTypeGetDimSize(c, 0) == batch);
        let shapes_agree = batches_agree && dim(b, 0) == k && [dim(c, 0), dim(c, 1)] == [m, n];
        let width = bits(a);
        let same = [b, c].iter().all(|&t| bits(t) == width) && (width == 32 || width == 64);
        (shapes_agree && same).then_some(([batch, m, n, k], width))
    }
}

/// Whether the op's `indexing_maps` (which MLIR 22 always attaches) are
/// the plain product's (`rank` 2: matmul, 3: batch matmul): no broadcast
/// or transposed operand.
unsafe fn default_maps(op: MlirOperation, rank: isize) -> bool {
    unsafe {
        let maps = mlirOperationGetAttributeByName(op, string_ref("indexing_maps"));
        let want = if rank == 2 {
            "[affine_map<(d0, d1, d2) -> (d0, d2)>, \
             affine_map<(d0, d1, d2) -> (d2, d1)>, \
             affine_map<(d0, d1, d2) -> (d0, d1)>]"
        } else {
            "[affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>, \
             affine_map<(d0, d1, d2, d3) -> (d0, d3, d2)>, \
             affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>]"
        };
        maps.ptr.is_null() || print_attr(maps) == want
    }
}

/// Replaces `op` by the loop over its batch, parsed from text in a helper
/// function whose arguments stand for the operands, then moved in.
///
/// When C is a `linalg.fill` (the frontend's zeros for `dot`), each batch
/// element fills its own slice inside the loop, which starts from the
/// fill's destination instead: the packing step then sees each product's C
/// start as a fill, as for one `dot`, and fills its packed C (which
/// `tensorc-unpack-in-place` makes the result's slice). Sliced from one
/// filled tensor, each product's C was packed (copied) from the result,
/// after a fill of the whole result (4×1024³: 48 MiB more memory traffic
/// per call than four single products).
unsafe fn rewrite(op: MlirOperation, [batch, m, n, k]: [i64; 4]) {
    unsafe {
        let ctx = mlirOperationGetContext(op);
        let ty = |i| print_type(mlirValueGetType(mlirOperationGetOperand(op, i)));
        let elem = print_type(mlirShapedTypeGetElementType(mlirValueGetType(result(op))));
        let (ta, tb, tc) = (ty(0), ty(1), ty(2));
        let slice = |rows: i64, cols: i64| format!("tensor<{rows}x{cols}x{elem}>");
        let (sa, sb, sc) = (slice(m, k), slice(k, n), slice(m, n));
        // A fill of a scalar into C: its value and destination.
        let fill = defined_by(mlirOperationGetOperand(op, 2), "linalg.fill").filter(|&f| {
            mlirOperationGetNumOperands(f) == 2
                && uses(result(f)).len() == 1
                && mlirValueGetType(mlirOperationGetOperand(f, 0)).ptr
                    == mlirShapedTypeGetElementType(mlirValueGetType(result(op))).ptr
        });
        let (fill_arg, fill_slice) = match fill {
            Some(_) => (
                format!(", %z: {elem}"),
                format!(
                    "\x20   %ci = linalg.fill ins(%z : {elem}) outs(%ci0 : {sc}) -> {sc}\n"
                ),
            ),
            None => (String::new(), String::new()),
        };
        let c_slice = if fill.is_some() { "%ci0" } else { "%ci" };
        let text = format!(
            "func.func @tensorc_unbatch(%a: {ta}, %b: {tb}, %c: {tc}{fill_arg}) -> {tc} {{\n\
             \x20 %lo = arith.constant 0 : index\n\
             \x20 %hi = arith.constant {batch} : index\n\
             \x20 %step = arith.constant 1 : index\n\
             \x20 %r = scf.for %i = %lo to %hi step %step iter_args(%acc = %c) -> ({tc}) {{\n\
             \x20   %ai = tensor.extract_slice %a[%i, 0, 0] [1, {m}, {k}] [1, 1, 1] : {ta} to {sa}\n\
             \x20   %bi = tensor.extract_slice %b[%i, 0, 0] [1, {k}, {n}] [1, 1, 1] : {tb} to {sb}\n\
             \x20   {c_slice} = tensor.extract_slice %acc[%i, 0, 0] [1, {m}, {n}] [1, 1, 1] : {tc} to {sc}\n\
             {fill_slice}\
             \x20   %p = linalg.matmul ins(%ai, %bi : {sa}, {sb}) outs(%ci : {sc}) -> {sc}\n\
             \x20   %u = tensor.insert_slice %p into %acc[%i, 0, 0] [1, {m}, {n}] [1, 1, 1] : {sc} into {tc}\n\
             \x20   scf.yield %u : {tc}\n\
             \x20 }}\n\
             \x20 return %r : {tc}\n\
             }}"
        );
        let helper = mlirOperationCreateParse(ctx, string_ref(&text), string_ref(NAME));
        if helper.ptr.is_null() {
            // Not expected (the types come from a verified op); the batch
            // schedule still handles the op.
            return;
        }
        let body = mlirRegionGetFirstBlock(mlirOperationGetRegion(helper, 0));
        for i in 0..2 {
            mlirValueReplaceAllUsesOfWith(
                mlirBlockGetArgument(body, i),
                mlirOperationGetOperand(op, i),
            );
        }
        // C, or the fill's value and destination.
        match fill {
            Some(f) => {
                mlirValueReplaceAllUsesOfWith(mlirBlockGetArgument(body, 2), mlirOperationGetOperand(f, 1));
                mlirValueReplaceAllUsesOfWith(mlirBlockGetArgument(body, 3), mlirOperationGetOperand(f, 0));
            }
            None => mlirValueReplaceAllUsesOfWith(mlirBlockGetArgument(body, 2), mlirOperationGetOperand(op, 2)),
        }
        // Move everything but the `return` (the block's last op, as in the
        // text above) in front of the batch matmul; its operand is the loop.
        let ops = block_ops(body);
        if let Some((ret, moved)) = ops.split_last() {
            for &o in moved {
                mlirOperationMoveBefore(o, op);
            }
            mlirValueReplaceAllUsesOfWith(result(op), mlirOperationGetOperand(*ret, 0));
            mlirOperationDestroy(op);
            // The whole fill has no use left (the loop fills each slice).
            if let Some(f) = fill {
                mlirOperationDestroy(f);
            }
        }
        mlirOperationDestroy(helper);
    }
}
