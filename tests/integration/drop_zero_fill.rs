//! `tensorc-drop-zero-fill` (`passes/tensorc-passes/src/drop_zero_fill.rs`):
//! an unpacked product whose C starts as zeros loses its fill, and its tiles
//! write their sums instead of adding them to C.
//!
//! - the pass before and after on buffer-level tiles (the late-accumulate
//!   form `Σ + C`, and a k loop that starts from C), and on functions it
//!   must leave alone (a product left as a `linalg.matmul`, a scalar read
//!   of C, a tile without its read), by snapshot and by counts;
//! - `tensorc-pack-mark` marks the fill and the product, and only when the
//!   fill has no other use;
//! - interpreter-vs-CPU runs, on one and two threads, of products that
//!   lose their fill (odd sizes, a batch, i32, the bias + relu epilogue) and
//!   of one whose zeros are also returned (kept);
//! - convolutions lose theirs (not depthwise ones, nor tiles that read C
//!   through a copy), and agree likewise.

use crate::harness::{EdgeSet, before_and_after, differential_all, function_text};

/// One function per case; the product's ops carry the location
/// `tensorc.zero_init.<n>` and its fill the attribute.
const TILES: &str = r#"
#ua = affine_map<(d0, d1, d2) -> (d0, d2)>
#ub = affine_map<(d0, d1, d2) -> (d2, d1)>
#uc = affine_map<(d0, d1, d2) -> (d0, d1)>
module {
  // The late-accumulate form: C read after the k loop and added.
  func.func @added(%c: memref<16x32xf32>, %a: memref<16x64xf32>, %b: memref<64x32xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c8 = arith.constant 8 : index
    %c16 = arith.constant 16 : index
    %c64 = arith.constant 64 : index
    %z = arith.constant 0.0 : f32
    %zv = arith.constant dense<0.0> : vector<8x32xf32>
    linalg.fill {tensorc.zero_init = 0 : i64} ins(%z : f32) outs(%c : memref<16x32xf32>)
    scf.for %i = %c0 to %c16 step %c8 {
      %l = scf.for %k = %c0 to %c64 step %c1 iter_args(%acc = %zv) -> (vector<8x32xf32>) {
        %x = vector.transfer_read %a[%i, %k], %z {in_bounds = [true, true]} : memref<16x64xf32>, vector<8x1xf32> loc("tensorc.zero_init.0"("t.nxir":1:1))
        %y = vector.transfer_read %b[%k, %c0], %z {in_bounds = [true]} : memref<64x32xf32>, vector<32xf32> loc("tensorc.zero_init.0"("t.nxir":1:1))
        %yb = vector.broadcast %y : vector<32xf32> to vector<1x32xf32>
        %s = vector.contract {indexing_maps = [#ua, #ub, #uc], iterator_types = ["parallel", "parallel", "reduction"], kind = #vector.kind<add>} %x, %yb, %acc : vector<8x1xf32>, vector<1x32xf32> into vector<8x32xf32>
        scf.yield %s : vector<8x32xf32>
      } loc("tensorc.zero_init.0"("t.nxir":1:1))
      %r = vector.transfer_read %c[%i, %c0], %z {in_bounds = [true, true]} : memref<16x32xf32>, vector<8x32xf32> loc("tensorc.zero_init.0"("t.nxir":1:1))
      %sum = arith.addf %l, %r : vector<8x32xf32>
      vector.transfer_write %sum, %c[%i, %c0] {in_bounds = [true, true]} : vector<8x32xf32>, memref<16x32xf32> loc("tensorc.zero_init.0"("t.nxir":1:1))
    }
    return
  }
  // A short k loop that starts from C (left so by late-accumulate), i32,
  // C a view of a larger buffer filled through another view.
  func.func @initial(%cc: memref<8x64xi32>, %a: memref<8x4xi32>, %b: memref<4x32xi32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %z = arith.constant 0 : i32
    %c = memref.subview %cc[0, 32] [8, 32] [1, 1] : memref<8x64xi32> to memref<8x32xi32, strided<[64, 1], offset: 32>>
    %f = memref.subview %cc[0, 32] [8, 32] [1, 1] : memref<8x64xi32> to memref<8x32xi32, strided<[64, 1], offset: 32>>
    linalg.fill {tensorc.zero_init = 1 : i64} ins(%z : i32) outs(%f : memref<8x32xi32, strided<[64, 1], offset: 32>>)
    %r = vector.transfer_read %c[%c0, %c0], %z {in_bounds = [true, true]} : memref<8x32xi32, strided<[64, 1], offset: 32>>, vector<8x32xi32> loc("tensorc.zero_init.1"("t.nxir":2:1))
    %l = scf.for %k = %c0 to %c4 step %c1 iter_args(%acc = %r) -> (vector<8x32xi32>) {
      %x = vector.transfer_read %a[%c0, %k], %z {in_bounds = [true, true]} : memref<8x4xi32>, vector<8x1xi32> loc("tensorc.zero_init.1"("t.nxir":2:1))
      %y = vector.transfer_read %b[%k, %c0], %z {in_bounds = [true]} : memref<4x32xi32>, vector<32xi32> loc("tensorc.zero_init.1"("t.nxir":2:1))
      %yb = vector.broadcast %y : vector<32xi32> to vector<1x32xi32>
      %s = vector.contract {indexing_maps = [#ua, #ub, #uc], iterator_types = ["parallel", "parallel", "reduction"], kind = #vector.kind<add>} %x, %yb, %acc : vector<8x1xi32>, vector<1x32xi32> into vector<8x32xi32>
      scf.yield %s : vector<8x32xi32>
    }
    vector.transfer_write %l, %c[%c0, %c0] {in_bounds = [true, true]} : vector<8x32xi32>, memref<8x32xi32, strided<[64, 1], offset: 32>> loc("tensorc.zero_init.1"("t.nxir":2:1))
    return
  }
  // Left alone: the product is still a linalg op (the schedules left it).
  func.func @unscheduled(%c: memref<4x4xf32>, %a: memref<4x0xf32>, %b: memref<0x4xf32>) {
    %z = arith.constant 0.0 : f32
    linalg.fill {tensorc.zero_init = 2 : i64} ins(%z : f32) outs(%c : memref<4x4xf32>)
    linalg.matmul ins(%a, %b : memref<4x0xf32>, memref<0x4xf32>) outs(%c : memref<4x4xf32>) loc("tensorc.zero_init.2"("t.nxir":3:1))
    return
  }
  // Left alone: a scalar read of C besides the tile.
  func.func @scalar_read(%c: memref<8x32xf32>, %v: vector<8x32xf32>) -> f32 {
    %c0 = arith.constant 0 : index
    %z = arith.constant 0.0 : f32
    linalg.fill {tensorc.zero_init = 3 : i64} ins(%z : f32) outs(%c : memref<8x32xf32>)
    %e = memref.load %c[%c0, %c0] : memref<8x32xf32> loc("tensorc.zero_init.3"("t.nxir":4:1))
    %r = vector.transfer_read %c[%c0, %c0], %z {in_bounds = [true, true]} : memref<8x32xf32>, vector<8x32xf32> loc("tensorc.zero_init.3"("t.nxir":4:1))
    %sum = arith.addf %v, %r : vector<8x32xf32>
    vector.transfer_write %sum, %c[%c0, %c0] {in_bounds = [true, true]} : vector<8x32xf32>, memref<8x32xf32> loc("tensorc.zero_init.3"("t.nxir":4:1))
    return %e : f32
  }
  // Left alone: two tiles write C, one of them without a read of it.
  func.func @write_without_read(%c: memref<16x32xf32>, %v: vector<8x32xf32>) {
    %c0 = arith.constant 0 : index
    %c8 = arith.constant 8 : index
    %z = arith.constant 0.0 : f32
    linalg.fill {tensorc.zero_init = 4 : i64} ins(%z : f32) outs(%c : memref<16x32xf32>)
    vector.transfer_write %v, %c[%c8, %c0] {in_bounds = [true, true]} : vector<8x32xf32>, memref<16x32xf32> loc("tensorc.zero_init.4"("t.nxir":5:1))
    %l = scf.for %k = %c0 to %c8 step %c8 iter_args(%acc = %v) -> (vector<8x32xf32>) {
      scf.yield %acc : vector<8x32xf32>
    }
    %r = vector.transfer_read %c[%c0, %c0], %z {in_bounds = [true, true]} : memref<16x32xf32>, vector<8x32xf32> loc("tensorc.zero_init.4"("t.nxir":5:1))
    %sum = arith.addf %l, %r : vector<8x32xf32>
    vector.transfer_write %sum, %c[%c0, %c0] {in_bounds = [true, true]} : vector<8x32xf32>, memref<16x32xf32> loc("tensorc.zero_init.4"("t.nxir":5:1))
    return
  }
}
"#;

#[test]
fn drop_zero_fill_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::drop_zero_fill;
    tensorc_mlir::register_external_pass(drop_zero_fill::NAME, drop_zero_fill::create);
    let mlir = Mlir::new();
    let (m, before, after) = before_and_after(&mlir, TILES, drop_zero_fill::NAME);
    // Rewritten: no fill, no read of C, the loop's sum (or a zero start)
    // written as it is.
    let added = function_text(&after, "added");
    assert!(!added.contains("linalg.fill"), "{added}");
    assert!(!added.contains("arith.addf"), "{added}");
    assert_eq!(added.matches("vector.transfer_read").count(), 2, "{added}");
    assert!(added.contains("vector.transfer_write %0, %arg0"), "{added}");
    let initial = function_text(&after, "initial");
    assert!(!initial.contains("linalg.fill"), "{initial}");
    assert!(initial.contains("dense<0> : vector<8x32xi32>"), "{initial}");
    assert_eq!(initial.matches("vector.transfer_read").count(), 2, "{initial}");
    // Left alone.
    for name in ["unscheduled", "scalar_read", "write_without_read"] {
        assert_eq!(
            function_text(&before, name),
            function_text(&after, name),
            "@{name} changed"
        );
    }
    insta::assert_snapshot!(
        "drop_zero_fill_pass",
        format!("// before\n{before}\n// after\n{after}")
    );
    mlir.verify(&m, "test").unwrap_or_else(|e| panic!("{e}\n{after}"));
}

/// `tensorc-pack-mark` marks an unpacked product's fill and location; a
/// packed product, a fill with another use and a matrix-vector product
/// keep theirs unmarked.
#[test]
fn pack_mark_marks_zero_initialized_products() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::pack_mark;
    tensorc_mlir::register_external_pass(pack_mark::NAME, pack_mark::create);
    let product = |name: &str, m: usize, k: usize, n: usize, extra: bool| {
        let ret = if extra { format!(", tensor<{m}x{n}xf32>") } else { String::new() };
        let extra_val = if extra { ", %f" } else { "" };
        format!(
            "  func.func @{name}(%a: tensor<{m}x{k}xf32>, %b: tensor<{k}x{n}xf32>) -> (tensor<{m}x{n}xf32>{ret}) {{\n\
             \x20   %z = arith.constant 0.0 : f32\n\
             \x20   %e = tensor.empty() : tensor<{m}x{n}xf32>\n\
             \x20   %f = linalg.fill ins(%z : f32) outs(%e : tensor<{m}x{n}xf32>) -> tensor<{m}x{n}xf32>\n\
             \x20   %c = linalg.matmul ins(%a, %b : tensor<{m}x{k}xf32>, tensor<{k}x{n}xf32>) outs(%f : tensor<{m}x{n}xf32>) -> tensor<{m}x{n}xf32>\n\
             \x20   return %c{extra_val} : tensor<{m}x{n}xf32>{ret}\n\
             \x20 }}\n"
        )
    };
    let module = format!(
        "module {{\n{}{}{}{}}}\n",
        product("unpacked", 200, 300, 200, false),
        product("packed", 1024, 1024, 1024, false),
        product("fill_returned", 200, 300, 200, true),
        product("matvec", 1, 300, 200, false),
    );
    let mlir = Mlir::new();
    let (_, _, after) = before_and_after(&mlir, &module, pack_mark::NAME);
    let unpacked = function_text(&after, "unpacked");
    assert!(unpacked.contains("linalg.fill {tensorc.zero_init = 0 : i64}"), "{unpacked}");
    for name in ["packed", "fill_returned", "matvec"] {
        let f = function_text(&after, name);
        assert!(!f.contains("tensorc.zero_init"), "{f}");
    }
}

fn dot(dtype: &str, m: usize, k: usize, n: usize) -> String {
    format!(
        "def main(a: {dtype}[{m}][{k}], b: {dtype}[{k}][{n}]) -> {dtype}[{m}][{n}] {{\n  c = dot a, [1], [], b, [0], []\n  return c\n}}\n"
    )
}

#[test]
fn products_without_their_fill_agree_with_the_interpreter() {
    let programs = [
        ("odd", dot("f32", 203, 301, 197), 1e-4),
        ("long_k", dot("f32", 64, 1000, 100), 1e-4),
        ("s32", dot("s32", 100, 70, 90), 0.0),
        (
            "batch",
            "def main(a: f32[5][70][90], b: f32[5][90][66]) -> f32[5][70][66] {\n  c = dot a, [2], [0], b, [1], [0]\n  return c\n}\n"
                .to_owned(),
            1e-4,
        ),
        (
            "bias_relu",
            "def main(x: f32[250][600], w: f32[600][300], b: f32[300]) -> f32[250][300] {\n  h = dot x, [1], [], w, [0], []\n  z = add h, b\n  y = max z, 0.0\n  return y\n}\n"
                .to_owned(),
            1e-4,
        ),
        (
            // Two products into results of their own, one of them also
            // summed with the other: each starts from its own zeros.
            "two_products",
            "def main(a: f32[100][200], b: f32[200][100], c: f32[100][200]) -> {f32[100][100], f32[100][100]} {\n  p = dot a, [1], [], b, [0], []\n  q = dot c, [1], [], b, [0], []\n  s = add p, q\n  return {p, s}\n}\n"
                .to_owned(),
            1e-4,
        ),
    ];
    let failures =
        crate::threads::on_threads(&[1, 2], || differential_all(&programs, EdgeSet::Mild, 5));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Convolutions the conv schedule tiles lose their zero fill too (their
/// tiles start the tap loops from zeros), whatever the remainders: the fill
/// is gone after the pass (some keep it: see below), and the results
/// agree on one and two threads.
#[test]
fn convolutions_without_their_fill_agree_with_the_interpreter() {
    let nhwc = |n: usize, h: usize, w: usize, c: usize, o: usize, stride: usize| {
        format!(
            "def main(x: f32[{n}][{h}][{w}][{c}], k: f32[3][3][{c}][{o}]) -> f32[{n}][{oh}][{ow}][{o}] {{\n  y = conv x, k, strides: [{stride}, {stride}], padding: :same, input_permutation: [0, 3, 1, 2], kernel_permutation: [3, 2, 0, 1], output_permutation: [0, 3, 1, 2]\n  return y\n}}\n",
            oh = h.div_ceil(stride),
            ow = w.div_ceil(stride)
        )
    };
    let programs = [
        // W9's form with remainders of columns (13 = 8 + 5) and channels (37 = 32 + 5).
        ("nhwc", nhwc(2, 7, 13, 9, 37, 1), 1e-5),
        // Computed as 32 channels and sliced; stride 2.
        ("padded_channels", nhwc(1, 9, 11, 6, 20, 2), 1e-5),
        (
            "depthwise",
            "def main(x: f32[1][24][9][11], k: f32[24][1][3][3]) -> f32[1][24][9][11] {\n  y = conv x, k, padding: :same, feature_group_size: 24\n  return y\n}\n".to_owned(),
            1e-5,
        ),
        (
            "nwc_1d",
            "def main(x: f32[2][21][6], k: f32[3][6][19]) -> f32[2][19][19] {\n  y = conv x, k, input_permutation: [0, 2, 1], kernel_permutation: [2, 1, 0], output_permutation: [0, 2, 1]\n  return y\n}\n".to_owned(),
            1e-5,
        ),
    ];
    for (name, source, _) in &programs {
        let opt = tensorc::emit("c.nxir", source, tensorc::Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
        let ir = crate::harness::cpu_ir_upto(name, source, &opt, tensorc_passes::pipeline::DROP_ZERO_FILL);
        // Kept: depthwise tiles read and write C once per filter row (their
        // taps stay in the 1-D tile), so their fills are not marked; this
        // 1-D convolution's tiles read C through a `memref.copy` into a
        // temporary (bufferization's), which the pass refuses (it is how
        // f64 convolution tiles read garbage once their fill had gone).
        // (The zero-padded filter of the 20-channel convolution, computed
        // as 32, is a fill of its own: of its 12 padding channels, a
        // 3×3×6×12 view of a 3×3×6×32 temporary, since `tensorc-fill-halo`.)
        let kept = ["depthwise", "nwc_1d"].contains(name);
        let result_fill = ir
            .lines()
            .any(|l| l.contains("linalg.fill") && !l.contains("memref<3x3x6x12xf32, strided<[576, 192, 32, 1], offset: 20>>"));
        assert_eq!(result_fill, kept, "{name}: the fill\n{ir}");
    }
    let failures =
        crate::threads::on_threads(&[1, 2], || differential_all(&programs, EdgeSet::Mild, 5));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
