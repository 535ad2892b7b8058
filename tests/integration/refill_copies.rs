//! `tensorc-refill-copies` (`passes/tensorc-passes/src/refill_copies.rs`):
//! a copy of a buffer that holds only a fill becomes that fill of the
//! copy's target.
//!
//! - before/after on hand-written buffers: a copy per loop step out of a
//!   filled buffer becomes a fill in the step and the source goes; a source
//!   that something else also writes, a copy before the fill, and a copy
//!   into a function argument stay as they are (snapshot);
//! - in the pipeline, the steps of several rows of a softmax over short rows
//!   (`row_fuse_schedule::SHORT_ROWS_STEP`) copy nothing, and
//!   `tensorc-outline-parallel` allocates their temporaries once per call.

use crate::harness::{before_and_after, cpu_ir_upto};
use tensorc::Stage;
use tensorc_passes::refill_copies;

const COPIES: &str = r#"
module {
  func.func @per_step(%x: memref<64x4xf32>, %y: memref<64xf32>) {
    %c0 = arith.constant 0 : index
    %c16 = arith.constant 16 : index
    %c64 = arith.constant 64 : index
    %ninf = arith.constant 0xFF800000 : f32
    %init = memref.alloc() : memref<16xf32>
    linalg.fill ins(%ninf : f32) outs(%init : memref<16xf32>)
    scf.for %i = %c0 to %c64 step %c16 {
      %acc = memref.alloc() : memref<16xf32>
      memref.copy %init, %acc : memref<16xf32> to memref<16xf32>
      %rows = memref.subview %x[%i, 0] [16, 4] [1, 1] : memref<64x4xf32> to memref<16x4xf32, strided<[4, 1], offset: ?>>
      linalg.reduce ins(%rows : memref<16x4xf32, strided<[4, 1], offset: ?>>) outs(%acc : memref<16xf32>) dimensions = [1]
        (%a: f32, %b: f32) {
          %m = arith.maximumf %a, %b : f32
          linalg.yield %m : f32
        }
      %out = memref.subview %y[%i] [16] [1] : memref<64xf32> to memref<16xf32, strided<[1], offset: ?>>
      memref.copy %acc, %out : memref<16xf32> to memref<16xf32, strided<[1], offset: ?>>
      memref.dealloc %acc : memref<16xf32>
    }
    memref.dealloc %init : memref<16xf32>
    return
  }
  func.func @written_twice(%x: memref<16xf32>, %y: memref<16xf32>) {
    %one = arith.constant 1.0 : f32
    %src = memref.alloc() : memref<16xf32>
    linalg.fill ins(%one : f32) outs(%src : memref<16xf32>)
    memref.copy %x, %src : memref<16xf32> to memref<16xf32>
    %dst = memref.alloc() : memref<16xf32>
    memref.copy %src, %dst : memref<16xf32> to memref<16xf32>
    memref.copy %dst, %y : memref<16xf32> to memref<16xf32>
    memref.dealloc %dst : memref<16xf32>
    memref.dealloc %src : memref<16xf32>
    return
  }
  func.func @copied_before_filled(%y: memref<16xf32>) {
    %one = arith.constant 1.0 : f32
    %src = memref.alloc() : memref<16xf32>
    %dst = memref.alloc() : memref<16xf32>
    memref.copy %src, %dst : memref<16xf32> to memref<16xf32>
    linalg.fill ins(%one : f32) outs(%src : memref<16xf32>)
    memref.copy %dst, %y : memref<16xf32> to memref<16xf32>
    memref.dealloc %dst : memref<16xf32>
    memref.dealloc %src : memref<16xf32>
    return
  }
}
"#;

fn function_text<'a>(module: &'a str, name: &str) -> &'a str {
    let start = module.find(&format!("@{name}(")).expect("the function is printed");
    let end = module[start..].find("\n  func.func").map_or(module.len(), |e| start + e);
    &module[start..end]
}

#[test]
fn refill_copies_before_and_after() {
    tensorc_mlir::register_external_pass(refill_copies::NAME, refill_copies::create);
    let mlir = tensorc_mlir::Mlir::new();
    let (_, before, after) = before_and_after(&mlir, COPIES, refill_copies::NAME);
    let per_step = function_text(&after, "per_step");
    // The step fills its own buffer; the filled source is gone.
    assert_eq!(per_step.matches("linalg.fill").count(), 1, "{per_step}");
    assert_eq!(per_step.matches("memref.alloc").count(), 1, "{per_step}");
    assert_eq!(per_step.matches("memref.copy").count(), 1, "{per_step}");
    let fill = per_step.find("linalg.fill").unwrap();
    assert!(per_step.find("scf.for").unwrap() < fill, "{per_step}");
    // The others keep their copies.
    assert_eq!(function_text(&after, "written_twice"), function_text(&before, "written_twice"));
    assert_eq!(function_text(&after, "copied_before_filled"), function_text(&before, "copied_before_filled"));
    insta::assert_snapshot!("refill_copies_pass", format!("// before\n{before}\n// after\n{after}"));
}

#[test]
fn short_row_softmax_steps_copy_and_allocate_nothing() {
    let source = crate::rowfuse::softmax("f32", 4096, 10);
    let opt = tensorc::emit("sm.nxir", &source, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
    let ir = cpu_ir_upto("sm.nxir", &source, &opt, tensorc_passes::pipeline::OUTLINE_PARALLEL);
    // Steps of 16 rows, their reductions left to the scalar lowering.
    assert!(ir.contains("memref<16x10xf32>"), "{ir}");
    assert!(ir.contains("tensorc.reds03"), "{ir}");
    assert!(!ir.contains("memref.copy"), "{ir}");
    // Every static allocation of the outlined body comes before its loop.
    let body = function_text(&ir, "__tensorc_par_0");
    let lp = body.find("scf.parallel").expect("an outlined loop");
    assert!(body.contains("memref.alloc()"), "{body}");
    assert!(!body[lp..].contains("memref.alloc()"), "{body}");
}
