//! `tensorc-stream-stores` (`passes/tensorc-passes/src/stream_stores.rs`):
//! the vector stores of large results become non-temporal stores when the
//! result's buffer is aligned.
//!
//! - the pass before and after on a hand-written function (snapshot and
//!   counts): stores of 8-lane rows into a 12 MiB out-parameter, in a
//!   parallel chunk, become `scf.if` of a non-temporal `vector.store` and
//!   the original store, with one alignment test at the function's start,
//!   one fence after the chunk's loop and the write prefetch moved to the
//!   unaligned case; left alone: a 4 MiB result, an 8 MiB result whose
//!   function's buffers take 16 MiB in all (`STREAM_TOTAL`), a store at a
//!   column that is not a multiple of 8, a store of a 4-lane vector, a
//!   result the function reads back, and a result with streamable stores
//!   beside one that is not (all or none: mixed, the lines left the caches
//!   half written);
//! - W5 (softmax) through the CPU pipeline gets them for its division's
//!   stores, a 1024×1024 softmax (4 MiB) does not, nor an NCHW per-channel
//!   scale whose rows only partly qualify.
//! - Results in aligned and unaligned buffers, from C: `aot.rs`,
//!   `streamed_results_are_right_in_aligned_and_unaligned_buffers`.

use crate::harness::{before_and_after, function_text};
use crate::rowfuse::softmax;

/// Rows of `cols` columns of a `rows`-row result written 8 lanes at a
/// time from column `first` (every 8), in one `scf.forall` chunk loop,
/// with a write prefetch of the row ahead.
fn rows(name: &str, rows: usize, cols: usize, first: usize, lanes: usize) -> String {
    rows_from(name, rows, cols, first, lanes, "%x")
}

/// `rows`, each vector read from `src` (`%y`: the result is read back).
fn rows_from(name: &str, rows: usize, cols: usize, first: usize, lanes: usize, src: &str) -> String {
    format!(
        r#"  func.func @{name}(%x: memref<{rows}x{cols}xf32>, %y: memref<{rows}x{cols}xf32>) {{
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c8 = arith.constant 8 : index
    %cf = arith.constant {first} : index
    %cn = arith.constant {cols} : index
    %p = ub.poison : f32
    scf.forall (%r) = (0) to ({rows}) step (2) {{
      scf.for %i = %c0 to %c1 step %c1 {{
        %row = arith.addi %r, %i : index
        scf.for %j = %cf to %cn step %c8 {{
          memref.prefetch %y[%row, %j], write, locality<3>, data : memref<{rows}x{cols}xf32>
          %v = vector.transfer_read {src}[%row, %j], %p {{in_bounds = [true]}} : memref<{rows}x{cols}xf32>, vector<{lanes}xf32>
          %w = arith.addf %v, %v : vector<{lanes}xf32>
          vector.transfer_write %w, %y[%row, %j] {{in_bounds = [true]}} : vector<{lanes}xf32>, memref<{rows}x{cols}xf32>
        }}
      }}
    }}
    return
  }}
"#
    )
}

/// Rows of a 12 MiB result written 8 lanes at a time from column 0 (each
/// store streamable) and one more 8-lane store per row at column 4 (not):
/// streamed stores beside ordinary ones into the same lines.
const MIXED: &str = r#"  func.func @mixed(%x: memref<3072x1024xf32>, %y: memref<3072x1024xf32>) {
    %c0 = arith.constant 0 : index
    %c4 = arith.constant 4 : index
    %c8 = arith.constant 8 : index
    %cn = arith.constant 1024 : index
    %p = ub.poison : f32
    scf.forall (%r) = (0) to (3072) step (1) {
      scf.for %j = %c0 to %cn step %c8 {
        %v = vector.transfer_read %x[%r, %j], %p {in_bounds = [true]} : memref<3072x1024xf32>, vector<8xf32>
        vector.transfer_write %v, %y[%r, %j] {in_bounds = [true]} : vector<8xf32>, memref<3072x1024xf32>
      }
      %v = vector.transfer_read %x[%r, %c4], %p {in_bounds = [true]} : memref<3072x1024xf32>, vector<8xf32>
      vector.transfer_write %v, %y[%r, %c4] {in_bounds = [true]} : vector<8xf32>, memref<3072x1024xf32>
    }
    return
  }
"#;

#[test]
fn stream_stores_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::stream_stores;
    tensorc_mlir::register_external_pass(stream_stores::NAME, stream_stores::create);
    let module = format!(
        "module {{\n{}{}{}{}{}{}{MIXED}}}\n",
        rows("large", 3072, 1024, 0, 8),
        rows("small", 1024, 1024, 0, 8),
        rows("fits_l3", 2048, 1024, 0, 8),
        rows("odd_column", 3072, 1024, 4, 8),
        rows("narrow", 3072, 1024, 0, 4),
        rows_from("read_back", 3072, 1024, 0, 8, "%y"),
    );
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, &module, stream_stores::NAME);
    let l = function_text(&after, "large").to_owned();
    assert_eq!(l.matches("memref.extract_aligned_pointer_as_index %arg1").count(), 1, "{l}");
    assert!(l.contains("arith.remui"), "{l}");
    assert_eq!(
        l.matches("vector.store %5, %arg1[%3, %arg4] {alignment = 32 : i64, nontemporal = true}").count(),
        1,
        "{l}"
    );
    assert_eq!(l.matches("vector.transfer_write").count(), 1, "{l}");
    assert_eq!(l.matches("scf.if").count(), 2, "{l}");
    assert_eq!(l.matches("llvm.fence seq_cst").count(), 1, "{l}");
    // The prefetch now sits in the else branch of an `scf.if`.
    let prefetch = l.find("memref.prefetch").expect("the prefetch stays");
    let else_at = l[..prefetch].rfind("} else {").expect("in an else branch");
    assert!(l[else_at..prefetch].lines().count() <= 2, "{l}");
    for name in ["small", "fits_l3", "odd_column", "narrow", "read_back", "mixed"] {
        assert_eq!(function_text(&before, name), function_text(&after, name), "@{name} changed");
    }
    insta::assert_snapshot!("stream_stores_pass", format!("// before\n{before}\n// after\n{after}"));
}

#[test]
fn softmax_results_of_8_mib_are_streamed() {
    let upto = |source: &str| {
        let opt = tensorc::emit("s.nxir", source, tensorc::Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
        crate::harness::cpu_ir_upto("s.nxir", source, &opt, tensorc_passes::pipeline::STREAM_STORES)
    };
    let large = upto(&softmax("f32", 4096, 1024));
    assert!(large.contains("nontemporal = true"), "{large}");
    assert!(large.contains("llvm.fence seq_cst"), "{large}");
    let small = upto(&softmax("f32", 1024, 1024));
    assert!(!small.contains("nontemporal"), "{small}");
    assert!(!small.contains("llvm.fence"), "{small}");
    // NCHW rows of 56 f32 times a per-channel scale (25.7 MB in all): only
    // each row's 8-lane last step sits at a provable multiple of its size,
    // so none is streamed (mixed, 16×64×56×56 took 4.3 ms, not 0.34).
    let bn = upto("def main(x: f32[16][64][56][56], g: f32[1][64][1][1]) -> f32[16][64][56][56] {\n  y = multiply x, g\n  return y\n}\n");
    assert!(!bn.contains("nontemporal"), "{bn}");
}
