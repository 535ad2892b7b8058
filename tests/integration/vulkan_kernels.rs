//! The shape of the kernels the Vulkan target emits, and its kernel passes
//! on hand-written loops: `tensorc-vulkan-accumulate`
//! (`tensorc_passes::vulkan_accumulate`: reduction loops carry their output
//! in registers, and loops where hoisting would change the result are kept),
//! element-wise fusion (a chain is one kernel), `tensorc-vulkan-vec4`
//! (`tensorc_passes::vulkan_vec4`) and `tensorc-vulkan-parallel-copy`
//! (`tensorc_passes::vulkan_copy`). The values the kernels compute are
//! checked by the Vulkan differential test (`vulkan.rs`), which runs every
//! op case through these passes; here the IR is checked.

use crate::harness::before_and_after;
use tensorc_mlir::Mlir;
use tensorc_passes::{vulkan_accumulate, vulkan_copy, vulkan_vec4};

/// Loops the pass rewrites: a matmul, a 2-level (convolution-like) nest and
/// an argmax-like loop with two outputs.
const CARRIED: &str = r#"
module {
  func.func @matmul(%a: memref<4x8xf32>, %b: memref<8x4xf32>, %c: memref<4x4xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %c8 = arith.constant 8 : index
    scf.parallel (%i, %j) = (%c0, %c0) to (%c4, %c4) step (%c1, %c1) {
      scf.for %k = %c0 to %c8 step %c1 {
        %x = memref.load %a[%i, %k] : memref<4x8xf32>
        %y = memref.load %b[%k, %j] : memref<8x4xf32>
        %acc = memref.load %c[%i, %j] : memref<4x4xf32>
        %p = arith.mulf %x, %y : f32
        %s = arith.addf %acc, %p : f32
        memref.store %s, %c[%i, %j] : memref<4x4xf32>
      }
      scf.reduce
    }
    return
  }
  func.func @nest(%in: memref<6x6xf32>, %w: memref<3x3xf32>, %out: memref<4x4xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c3 = arith.constant 3 : index
    %c4 = arith.constant 4 : index
    %t = memref.alloc() : memref<4x4xf32>
    scf.parallel (%i, %j) = (%c0, %c0) to (%c4, %c4) step (%c1, %c1) {
      scf.for %kh = %c0 to %c3 step %c1 {
        scf.for %kw = %c0 to %c3 step %c1 {
          %r = arith.addi %i, %kh : index
          %q = arith.addi %j, %kw : index
          %x = memref.load %in[%r, %q] : memref<6x6xf32>
          %y = memref.load %w[%kh, %kw] : memref<3x3xf32>
          %acc = memref.load %t[%i, %j] : memref<4x4xf32>
          %p = arith.mulf %x, %y : f32
          %s = arith.addf %acc, %p : f32
          memref.store %s, %t[%i, %j] : memref<4x4xf32>
        }
      }
      scf.reduce
    }
    memref.copy %t, %out : memref<4x4xf32> to memref<4x4xf32>
    return
  }
  func.func @argmax(%in: memref<4x8xf32>, %v: memref<4xf32>, %ix: memref<4xi32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %c8 = arith.constant 8 : index
    scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
      scf.for %k = %c0 to %c8 step %c1 {
        %x = memref.load %in[%i, %k] : memref<4x8xf32>
        %best = memref.load %v[%i] : memref<4xf32>
        %at = memref.load %ix[%i] : memref<4xi32>
        %gt = arith.cmpf ogt, %x, %best : f32
        %kk = arith.index_cast %k : index to i32
        %nv = arith.select %gt, %x, %best : f32
        %ni = arith.select %gt, %kk, %at : i32
        memref.store %nv, %v[%i] : memref<4xf32>
        memref.store %ni, %ix[%i] : memref<4xi32>
      }
      scf.reduce
    }
    return
  }
}
"#;

/// Loops the pass must leave alone.
const KEPT: &str = r#"
module {
  // The loop also reads the output through a view: hoisting would read stale values.
  func.func @reads_a_view(%a: memref<4x4xf32>, %c: memref<4x4xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %view = memref.subview %c[0, 0] [4, 4] [1, 1] : memref<4x4xf32> to memref<4x4xf32, strided<[4, 1]>>
    scf.for %k = %c0 to %c4 step %c1 {
      %x = memref.load %view[%k, %k] : memref<4x4xf32, strided<[4, 1]>>
      %acc = memref.load %c[%c0, %c0] : memref<4x4xf32>
      %s = arith.addf %acc, %x : f32
      memref.store %s, %c[%c0, %c0] : memref<4x4xf32>
    }
    return
  }
  // A scan: the element depends on the iteration.
  func.func @scan(%c: memref<8xf32>) {
    %c1 = arith.constant 1 : index
    %c8 = arith.constant 8 : index
    scf.for %k = %c1 to %c8 step %c1 {
      %km = arith.subi %k, %c1 : index
      %prev = memref.load %c[%km] : memref<8xf32>
      %cur = memref.load %c[%k] : memref<8xf32>
      %s = arith.addf %prev, %cur : f32
      memref.store %s, %c[%k] : memref<8xf32>
    }
    return
  }
  // Zero iterations: the original loop never touches the element.
  func.func @empty(%a: memref<4xf32>, %c: memref<f32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    scf.for %k = %c0 to %c0 step %c1 {
      %x = memref.load %a[%k] : memref<4xf32>
      %acc = memref.load %c[] : memref<f32>
      %s = arith.addf %acc, %x : f32
      memref.store %s, %c[] : memref<f32>
    }
    return
  }
  // An op whose memory effects the pass does not know.
  func.func @copies(%a: memref<4xf32>, %c: memref<f32>, %d: memref<4xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    scf.for %k = %c0 to %c4 step %c1 {
      %x = memref.load %a[%k] : memref<4xf32>
      %acc = memref.load %c[] : memref<f32>
      %s = arith.addf %acc, %x : f32
      memref.store %s, %c[] : memref<f32>
      memref.copy %a, %d : memref<4xf32> to memref<4xf32>
    }
    return
  }
  // Stored before it is loaded: the load reads this iteration's store.
  func.func @store_first(%a: memref<4xf32>, %c: memref<f32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    scf.for %k = %c0 to %c4 step %c1 {
      %x = memref.load %a[%k] : memref<4xf32>
      memref.store %x, %c[] : memref<f32>
      %acc = memref.load %c[] : memref<f32>
      %s = arith.addf %acc, %x : f32
      memref.store %s, %a[%k] : memref<4xf32>
    }
    return
  }
}
"#;

fn run_pass(input: &str) -> (String, String) {
    tensorc_mlir::register_external_pass(vulkan_accumulate::NAME, vulkan_accumulate::create);
    run_registered(input, vulkan_accumulate::NAME)
}

/// Runs the registered pass `name` on `input`: the IR before and after.
fn run_registered(input: &str, name: &str) -> (String, String) {
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, input, name);
    (before, after)
}

/// The text of each op whose line contains `marker` (from that line to its
/// closing brace, by indentation) in printed IR.
fn blocks(ir: &str, marker: &str) -> Vec<String> {
    let lines: Vec<&str> = ir.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if !l.contains(marker) {
            continue;
        }
        let indent = l.len() - l.trim_start().len();
        let end = lines[i + 1..]
            .iter()
            .position(|m| {
                m.len() - m.trim_start().len() == indent && m.trim_start().starts_with('}')
            })
            .map_or(lines.len(), |p| i + 1 + p);
        out.push(lines[i..=end.min(lines.len() - 1)].join("\n"));
    }
    out
}

#[test]
fn reduction_loops_carry_their_output_in_registers() {
    let (before, after) = run_pass(CARRIED);
    let loops = blocks(&after, "scf.for ");
    // matmul's k loop, the nest's kh and kw loops, argmax's k loop.
    assert_eq!(loops.len(), 4, "{after}");
    for l in &loops {
        assert!(l.contains("iter_args("), "not carried:\n{l}");
        assert!(
            !l.contains("memref.store"),
            "a store stayed in the loop:\n{l}"
        );
    }
    // argmax carries both outputs; the nest carries one value through two loops.
    assert_eq!(after.matches("memref.store").count(), 4, "{after}");
    assert!(after.contains("-> (f32, i32)"), "{after}");
    insta::assert_snapshot!(
        "vulkan_accumulate_carried",
        format!("// before\n{before}\n// after\n{after}")
    );
}

#[test]
fn loops_where_hoisting_would_change_the_result_are_kept() {
    let (before, after) = run_pass(KEPT);
    assert_eq!(before, after, "the pass changed a loop it must keep");
    assert!(!after.contains("iter_args"), "{after}");
}

/// The matmul kernel the Vulkan target emits (`emit --stage spirv`) loads
/// and stores its output element once, outside the reduction loop: the loop
/// reads only the two inputs from storage buffers.
#[test]
fn vulkan_matmul_kernel_has_no_store_in_its_k_loop() {
    let src = "def main(a: f32[16][32], b: f32[32][8]) -> f32[16][8] {\n  c = dot a, [1], [], b, [0], []\n  return c\n}\n";
    let spirv =
        tensorc::emit("mm.nxir", src, tensorc::Stage::Spirv).unwrap_or_else(|e| panic!("{e}"));
    let loops = blocks(&spirv, "spirv.mlir.loop {");
    assert_eq!(loops.len(), 1, "{spirv}");
    let k = &loops[0];
    assert!(!k.contains("spirv.Store \"StorageBuffer\""), "{k}");
    assert_eq!(k.matches("spirv.Load \"StorageBuffer\"").count(), 2, "{k}");
    assert_eq!(
        spirv.matches("spirv.Store \"StorageBuffer\"").count(),
        2,
        "fill and matmul: {spirv}"
    );
}

/// The number of kernels (`spirv.module`s) the Vulkan target emits.
fn kernels(src: &str) -> String {
    tensorc::emit("k.nxir", src, tensorc::Stage::Spirv).unwrap_or_else(|e| panic!("{e}"))
}

/// W4's element-wise chain (multiply, add, tanh, multiply, add) is fused
/// into one kernel, as on the CPU.
#[test]
fn vulkan_elementwise_chain_is_one_kernel() {
    let src = "def main(a: f32[4096], b: f32[4096], c: f32[4096]) -> f32[4096] {\n  m = multiply a, b\n  s = add m, c\n  t = tanh s\n  h = multiply t, 0.5\n  y = add h, a\n  return y\n}\n";
    let spirv = kernels(src);
    assert_eq!(spirv.matches("spirv.module").count(), 1, "{spirv}");
}

/// Loops `tensorc-vulkan-vec4` rewrites: a 1-D chain with constants (W4's
/// shape); a 2-D loop (the innermost variable first, as `wrap.rs` orders
/// them) with a row-broadcast load, a column load that is the same in all
/// four lanes, a comparison and a uniform stored value; and a matmul in the
/// form `tensorc-vulkan-accumulate` leaves (four columns of C per
/// invocation, the accumulator a vector, A's element broadcast).
const VEC4_CARRIED: &str = r#"
module {
  func.func @matmul(%a: memref<4x8xf32>, %b: memref<8x4xf32>, %c: memref<4x4xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %c8 = arith.constant 8 : index
    scf.parallel (%j, %i) = (%c0, %c0) to (%c4, %c4) step (%c1, %c1) {
      %init = memref.load %c[%i, %j] : memref<4x4xf32>
      %sum = scf.for %k = %c0 to %c8 step %c1 iter_args(%acc = %init) -> (f32) {
        %x = memref.load %a[%i, %k] : memref<4x8xf32>
        %y = memref.load %b[%k, %j] : memref<8x4xf32>
        %p = arith.mulf %x, %y : f32
        %s = arith.addf %acc, %p : f32
        scf.yield %s : f32
      }
      memref.store %sum, %c[%i, %j] : memref<4x4xf32>
      scf.reduce
    }
    return
  }
  func.func @chain(%a: memref<16xf32>, %b: memref<16xf32>, %c: memref<16xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c16 = arith.constant 16 : index
    %half = arith.constant 5.000000e-01 : f32
    scf.parallel (%i) = (%c0) to (%c16) step (%c1) {
      %x = memref.load %a[%i] : memref<16xf32>
      %y = memref.load %b[%i] : memref<16xf32>
      %m = arith.mulf %x, %y : f32
      %t = math.tanh %m : f32
      %h = arith.mulf %t, %half : f32
      memref.store %h, %c[%i] : memref<16xf32>
      scf.reduce
    }
    return
  }
  func.func @rows(%a: memref<3x8xf32>, %bias: memref<8xf32>, %col: memref<3xf32>, %c: memref<3x8xf32>, %flag: memref<3x8xi32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c3 = arith.constant 3 : index
    %c8 = arith.constant 8 : index
    %seven = arith.constant 7 : i32
    scf.parallel (%j, %i) = (%c0, %c0) to (%c8, %c3) step (%c1, %c1) {
      %x = memref.load %a[%i, %j] : memref<3x8xf32>
      %b = memref.load %bias[%j] : memref<8xf32>
      %k = memref.load %col[%i] : memref<3xf32>
      %s = arith.addf %x, %b : f32
      %p = arith.mulf %s, %k : f32
      %gt = arith.cmpf ogt, %p, %k : f32
      %r = arith.select %gt, %p, %k : f32
      memref.store %r, %c[%i, %j] : memref<3x8xf32>
      memref.store %seven, %flag[%i, %j] : memref<3x8xi32>
      scf.reduce
    }
    return
  }
}
"#;

/// Loops `tensorc-vulkan-vec4` must leave scalar.
const VEC4_KEPT: &str = r#"
module {
  // 6 is not a multiple of 4.
  func.func @odd(%a: memref<6xf32>, %c: memref<6xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c6 = arith.constant 6 : index
    scf.parallel (%i) = (%c0) to (%c6) step (%c1) {
      %x = memref.load %a[%i] : memref<6xf32>
      memref.store %x, %c[%i] : memref<6xf32>
      scf.reduce
    }
    return
  }
  // A transpose: the variable indexes a non-innermost dimension.
  func.func @transpose(%a: memref<4x4xf32>, %c: memref<4x4xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    scf.parallel (%j, %i) = (%c0, %c0) to (%c4, %c4) step (%c1, %c1) {
      %x = memref.load %a[%j, %i] : memref<4x4xf32>
      memref.store %x, %c[%i, %j] : memref<4x4xf32>
      scf.reduce
    }
    return
  }
  // iota: the variable is data.
  func.func @iota(%c: memref<8xi32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c8 = arith.constant 8 : index
    scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
      %x = arith.index_cast %i : index to i32
      memref.store %x, %c[%i] : memref<8xi32>
      scf.reduce
    }
    return
  }
  // A remainder, which the math expansion rewrites on scalars only.
  func.func @rem(%a: memref<8xf32>, %c: memref<8xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c8 = arith.constant 8 : index
    %three = arith.constant 3.000000e+00 : f32
    scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
      %x = memref.load %a[%i] : memref<8xf32>
      %r = arith.remf %x, %three : f32
      memref.store %r, %c[%i] : memref<8xf32>
      scf.reduce
    }
    return
  }
  // 8-bit and 64-bit elements.
  func.func @narrow_wide(%a: memref<8xi8>, %c: memref<8xf64>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c8 = arith.constant 8 : index
    scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
      %x = memref.load %a[%i] : memref<8xi8>
      %f = arith.sitofp %x : i8 to f64
      memref.store %f, %c[%i] : memref<8xf64>
      scf.reduce
    }
    return
  }
  // A reduction loop inside.
  func.func @nested(%a: memref<8x4xf32>, %c: memref<8xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %c8 = arith.constant 8 : index
    scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
      scf.for %k = %c0 to %c4 step %c1 {
        %x = memref.load %a[%i, %k] : memref<8x4xf32>
        %acc = memref.load %c[%i] : memref<8xf32>
        %s = arith.addf %acc, %x : f32
        memref.store %s, %c[%i] : memref<8xf32>
      }
      scf.reduce
    }
    return
  }
  // A strided view.
  func.func @strided(%a: memref<8x8xf32>, %c: memref<8xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c8 = arith.constant 8 : index
    %col = memref.subview %a[0, 1] [8, 1] [1, 1] : memref<8x8xf32> to memref<8xf32, strided<[8], offset: 1>>
    scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
      %x = memref.load %col[%i] : memref<8xf32, strided<[8], offset: 1>>
      memref.store %x, %c[%i] : memref<8xf32>
      scf.reduce
    }
    return
  }
}
"#;

#[test]
fn vec4_rewrites_elementwise_loops() {
    tensorc_mlir::register_external_pass(vulkan_vec4::NAME, vulkan_vec4::create);
    let (before, after) = run_registered(VEC4_CARRIED, vulkan_vec4::NAME);
    // Bounds divided by 4; every access through the variable is a vector.
    assert!(after.contains("to (%c1_0, %c4)"), "{after}");
    assert!(after.contains("to (%c4)"), "{after}");
    assert!(after.contains("to (%c2, %c3)"), "{after}");
    assert!(
        after.contains("-> (vector<4xf32>)"),
        "the matmul carries a vector: {after}"
    );
    let stores: Vec<&str> = after
        .lines()
        .filter(|l| l.contains("memref.store"))
        .collect();
    assert_eq!(stores.len(), 4, "{after}");
    assert!(stores.iter().all(|l| l.contains("xvector<4x")), "{after}");
    assert_eq!(
        after.matches("builtin.unrealized_conversion_cast").count(),
        9,
        "{after}"
    );
    assert!(
        after.contains("vector.broadcast"),
        "the column value is broadcast: {after}"
    );
    insta::assert_snapshot!(
        "vulkan_vec4_carried",
        format!("// before\n{before}\n// after\n{after}")
    );
}

#[test]
fn vec4_keeps_loops_it_cannot_prove() {
    tensorc_mlir::register_external_pass(vulkan_vec4::NAME, vulkan_vec4::create);
    let (before, after) = run_registered(VEC4_KEPT, vulkan_vec4::NAME);
    assert_eq!(before, after, "the pass changed a loop it must keep");
}

/// W4's chain reads and writes 16-byte vectors in SPIR-V: an array of
/// `vector<4xf32>` per buffer, which `spirv-val` accepts (the differential
/// test runs `spirv-val` on every kernel).
#[test]
fn vulkan_elementwise_kernel_uses_vec4() {
    let src = "def main(a: f32[4096], b: f32[4096]) -> f32[4096] {\n  m = multiply a, b\n  y = add m, a\n  return y\n}\n";
    let spirv = kernels(src);
    assert_eq!(
        spirv
            .matches("!spirv.array<1024 x vector<4xf32>, stride=16>")
            .count(),
        3 * 3,
        "three buffers, each declared, addressed and indexed: {spirv}"
    );
    assert_eq!(
        spirv.matches("spirv.Load \"StorageBuffer\"").count(),
        2,
        "{spirv}"
    );
    assert!(
        spirv
            .lines()
            .filter(|l| l.contains("spirv.Load \"StorageBuffer\""))
            .all(|l| l.ends_with(": vector<4xf32>")),
        "{spirv}"
    );
}

/// `tensorc-vulkan-parallel-copy`: a copy into a strided view (a padded
/// buffer's interior) becomes a parallel loop; a copy between contiguous
/// buffers and one between two views of the same buffer stay copies.
#[test]
fn copies_into_strided_views_become_parallel_loops() {
    let input = r#"
module {
  func.func @pad(%a: memref<4x6xf32>, %b: memref<6x8xf32>, %c: memref<4x6xf32>) {
    %inner = memref.subview %b[1, 1] [4, 6] [1, 1] : memref<6x8xf32> to memref<4x6xf32, strided<[8, 1], offset: 9>>
    memref.copy %a, %inner : memref<4x6xf32> to memref<4x6xf32, strided<[8, 1], offset: 9>>
    memref.copy %a, %c : memref<4x6xf32> to memref<4x6xf32>
    %top = memref.subview %b[0, 0] [4, 6] [1, 1] : memref<6x8xf32> to memref<4x6xf32, strided<[8, 1]>>
    memref.copy %inner, %top : memref<4x6xf32, strided<[8, 1], offset: 9>> to memref<4x6xf32, strided<[8, 1]>>
    return
  }
}
"#;
    tensorc_mlir::register_external_pass(vulkan_copy::NAME, vulkan_copy::create);
    let (before, after) = run_registered(input, vulkan_copy::NAME);
    assert_eq!(before.matches("memref.copy").count(), 3, "{before}");
    assert_eq!(after.matches("memref.copy").count(), 2, "{after}");
    assert!(after.contains("memref.copy %arg0, %arg2"), "{after}");
    assert!(
        after.contains("scf.parallel (%arg3, %arg4) = (%c0, %c0) to (%c4, %c6) step (%c1, %c1)"),
        "{after}"
    );
    assert!(
        after.contains("memref.load %arg0[%arg3, %arg4] : memref<4x6xf32>"),
        "{after}"
    );
    assert!(
        after.contains(
            "memref.store %0, %subview[%arg3, %arg4] : memref<4x6xf32, strided<[8, 1], offset: 9>>"
        ),
        "{after}"
    );
}
