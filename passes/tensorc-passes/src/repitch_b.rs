//! `tensorc-repitch-b`: an unpacked matrix product whose B rows sit a
//! multiple of 2 KiB apart, give or take less than a cache line, reads B
//! through a copy whose rows are an odd number of cache lines apart.
//!
//! Why: the unpacked 8×32 register tile (`matmul_schedule.rs`) reads two
//! lines of B per step of k, one row of B after the other. L1 has 64 sets
//! of 64-byte lines; row `r` of B starts in set `(r · pitch / 64) mod 64`.
//! When the pitch is within a line of a multiple of 2 KiB (1027 f32
//! columns: 4108 bytes), consecutive rows fall into the same one or two
//! sets for several rows running, and those lines, with the hardware
//! prefetcher's, evict each other and the tile's rows of A. 1023×1025·
//! 1025×N, one thread, `tensorc bench`, same minutes (GFLOPS): N = 1027
//! 236–244, 1028 247–253, 1031 249–251, 1036 252–256, 1040 259–261; the
//! same 1027 columns read as a view of a 1025×1040 input (4160 bytes
//! apart) 8.44–8.52 ms against 9.21–9.28 (`docs/passes.md`, "Repitched
//! B"). With an odd number of lines per row the rows walk through all 64
//! sets before one repeats.
//!
//! The copy: `bufferization.alloc_tensor` of K × N′ (N′ the smallest
//! column count ≥ N whose rows are an odd number of lines), its leading
//! K × N `tensor.extract_slice`, and `bufferization.materialize_in_destination`
//! of B into that slice; the product reads the result. After bufferization
//! that is a `memref.copy` of B's rows into a strided view of the new
//! buffer (`tensorc-parallel-copies` splits it among the threads), and
//! every tile reads the view. (Not `tensor.empty`: `fold_tensor_empty`,
//! which the packing step applies to whole functions, folds a slice of an
//! empty tensor into an empty tensor of the slice's shape.)
//!
//! Which products: `linalg.matmul`s the packing step leaves alone (no
//! `tensorc.pack`; it runs right after `tensorc-pack-mark`), with static
//! shapes, the default maps, 32- or 64-bit elements, and the shape
//! `matmul_schedule::repitched_columns` takes: cut into N blocks, M of at
//! least 256 (the copy, one pass over B, is paid back over M rows of A).
//! `PackedMatmul::packs` leaves rows within 8 bytes of a page apart to
//! this pass when it takes them (unpacked on the copy was faster than
//! packed).

use crate::external_pass::{PassId, module_pass};
use crate::matmul_schedule::repitched_columns;
use crate::packed_matmul::PACK;
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = crate::pipeline::REPITCH_B;

static PASS_ID: PassId = PassId::new();

/// Dialects the pass creates ops of. (melior has no handle for the
/// bufferization dialect; tensorc's context loads every dialect it uses.)
fn dialects() -> [DialectHandle; 2] {
    [DialectHandle::tensor(), DialectHandle::linalg()]
}

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(&PASS_ID, NAME, "Copy a product's B to rows that do not share cache sets", &dialects(), |module| {
        // SAFETY: `module_pass` passes the live module the pass runs on.
        unsafe { repitch_all(module) };
        true
    })
}

/// Repitches the B of every eligible product of `module`; returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn repitch_all(module: MlirOperation) -> usize {
    unsafe {
        let mut done = 0;
        for op in ops_named(module, "linalg.matmul") {
            if has_attr(op, PACK) {
                continue;
            }
            let Some(([_, m, n, k], bits)) = crate::pack_mark::product_shape(op, 2) else { continue };
            let Some(cols) = repitched_columns(m as u64, n as u64, k as u64, u64::from(bits / 8)) else { continue };
            if repitch(op, k, n, cols as i64) {
                done += 1;
            }
        }
        done
    }
}

/// Makes `op` read its B (`k` × `n`) through a copy with `cols` columns;
/// false when the helper does not parse (not expected: the types come from
/// a verified op).
unsafe fn repitch(op: MlirOperation, k: i64, n: i64, cols: i64) -> bool {
    unsafe {
        let ctx = mlirOperationGetContext(op);
        let b = mlirOperationGetOperand(op, 1);
        let elem = print_type(mlirShapedTypeGetElementType(mlirValueGetType(b)));
        let (tb, wide) = (format!("tensor<{k}x{n}x{elem}>"), format!("tensor<{k}x{cols}x{elem}>"));
        let text = format!(
            "func.func @tensorc_repitch(%b: {tb}) -> {tb} {{\n\
             \x20 %w = bufferization.alloc_tensor() : {wide}\n\
             \x20 %s = tensor.extract_slice %w[0, 0] [{k}, {n}] [1, 1] : {wide} to {tb}\n\
             \x20 %c = bufferization.materialize_in_destination %b in %s : ({tb}, {tb}) -> {tb}\n\
             \x20 return %c : {tb}\n\
             }}"
        );
        let helper = mlirOperationCreateParse(ctx, string_ref(&text), string_ref(NAME));
        if helper.ptr.is_null() {
            return false;
        }
        let body = mlirRegionGetFirstBlock(mlirOperationGetRegion(helper, 0));
        mlirValueReplaceAllUsesOfWith(mlirBlockGetArgument(body, 0), b);
        let ops = block_ops(body);
        if let Some((ret, moved)) = ops.split_last() {
            for &o in moved {
                mlirOperationMoveBefore(o, op);
            }
            mlirOperationSetOperand(op, 1, mlirOperationGetOperand(*ret, 0));
        }
        mlirOperationDestroy(helper);
        true
    }
}
