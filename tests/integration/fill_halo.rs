//! `tensorc-fill-halo` (`passes/tensorc-passes/src/fill_halo.rs`) and
//! `tensorc-parallel-copies` (`passes/tensorc-passes/src/parallel_copies.rs`):
//! a padded temporary filled only outside its copied interior, and large
//! copies outside parallel loops split into parallel loops of slice copies.
//!
//! - each pass before and after on buffer-level IR: a temporary padded on
//!   both sides of two dimensions gets four slab fills (no whole fill),
//!   one padded on one side one slab; left alone when the temporary is
//!   read between the fill and the copy, and when the copy's view is
//!   strided (interior padding); a 512 KiB copy becomes an `scf.forall` of
//!   slice copies; left alone when small, inside a parallel loop, or when
//!   its slices would be single elements; by snapshot and by counts;
//! - W9's buffer-level IR: the padded input's fill covers the halo only,
//!   and its copy is a parallel loop;
//! - pads (both sides, one side, cropped, interior, several dtypes) and
//!   `:same` convolutions, small and above the copy threshold, against
//!   the interpreter on one and two threads.

use crate::harness::{EdgeSet, before_and_after, differential_all, function_text};
use tensorc::Stage;

/// A 4×4×2 operand copied into the interior of a 6×6×2 temporary (one
/// row and column of padding on each side), then read; `{between}` goes
/// between the fill and the copy, `{view}` is the copy's target view.
fn padded(name: &str, between: &str, view: &str) -> String {
    format!(
        r#"  func.func @{name}(%a: memref<4x4x2xf32>, %out: memref<6x6x2xf32>) {{
    %zero = arith.constant 0.0 : f32
    %t = memref.alloc() {{alignment = 64 : i64}} : memref<6x6x2xf32>
    linalg.map outs(%t : memref<6x6x2xf32>)
      (%init: f32) {{
        linalg.yield %zero : f32
      }}
{between}{view}    memref.copy %t, %out : memref<6x6x2xf32> to memref<6x6x2xf32>
    memref.dealloc %t : memref<6x6x2xf32>
    return
  }}
"#
    )
}

const INTERIOR: &str = "    %v = memref.subview %t[1, 1, 0] [4, 4, 2] [1, 1, 1] : memref<6x6x2xf32> to memref<4x4x2xf32, strided<[12, 2, 1], offset: 14>>\n    memref.copy %a, %v : memref<4x4x2xf32> to memref<4x4x2xf32, strided<[12, 2, 1], offset: 14>>\n";

/// High padding only, in one dimension, with a `linalg.fill`.
const ONE_SIDE: &str = r#"  func.func @one_side(%a: memref<4x6xf32>, %out: memref<7x6xf32>) {
    %nine = arith.constant 9.0 : f32
    %t = memref.alloc() {alignment = 64 : i64} : memref<7x6xf32>
    linalg.fill ins(%nine : f32) outs(%t : memref<7x6xf32>)
    %v = memref.subview %t[0, 0] [4, 6] [1, 1] : memref<7x6xf32> to memref<4x6xf32, strided<[6, 1]>>
    memref.copy %a, %v : memref<4x6xf32> to memref<4x6xf32, strided<[6, 1]>>
    memref.copy %t, %out : memref<7x6xf32> to memref<7x6xf32>
    memref.dealloc %t : memref<7x6xf32>
    return
  }
"#;

#[test]
fn fill_halo_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::fill_halo;
    tensorc_mlir::register_external_pass(fill_halo::NAME, fill_halo::create);
    let read_between = "    %r = memref.load %t[%c, %c, %c] : memref<6x6x2xf32>\n    memref.store %r, %out[%c, %c, %c] : memref<6x6x2xf32>\n";
    let strided = "    %v = memref.subview %t[1, 1, 0] [3, 3, 2] [2, 2, 1] : memref<6x6x2xf32> to memref<3x3x2xf32, strided<[24, 4, 1], offset: 14>>\n    %a2 = memref.subview %a[0, 0, 0] [3, 3, 2] [1, 1, 1] : memref<4x4x2xf32> to memref<3x3x2xf32, strided<[8, 2, 1]>>\n    memref.copy %a2, %v : memref<3x3x2xf32, strided<[8, 2, 1]>> to memref<3x3x2xf32, strided<[24, 4, 1], offset: 14>>\n";
    let module = format!(
        "module {{\n{}{}{}{}}}\n",
        padded("both_sides", "", INTERIOR),
        ONE_SIDE,
        padded("read_between", &format!("    %c = arith.constant 0 : index\n{read_between}"), INTERIOR),
        padded("strided_view", "", strided),
    );
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, &module, fill_halo::NAME);
    let both = function_text(&after, "both_sides");
    // Rows 0 and 5 whole, then columns 0 and 5 of rows 1..5.
    for slab in [
        "%alloc[0, 0, 0] [1, 6, 2] [1, 1, 1]",
        "%alloc[5, 0, 0] [1, 6, 2] [1, 1, 1]",
        "%alloc[1, 0, 0] [4, 1, 2] [1, 1, 1]",
        "%alloc[1, 5, 0] [4, 1, 2] [1, 1, 1]",
    ] {
        assert!(both.contains(slab), "no slab {slab} in\n{both}");
    }
    assert_eq!(both.matches("linalg.map").count(), 4, "{both}");
    assert!(!both.contains("outs(%alloc : memref<6x6x2xf32>)"), "the whole fill is left:\n{both}");
    let one = function_text(&after, "one_side");
    assert_eq!(one.matches("linalg.fill").count(), 1, "{one}");
    assert!(one.contains("[4, 0] [3, 6] [1, 1]"), "{one}");
    for left in ["read_between", "strided_view"] {
        assert_eq!(function_text(&after, left), function_text(&before, left), "{left} changed");
    }
    insta::assert_snapshot!("fill_halo_pass", format!("// before\n{before}\n// after\n{after}"));
}

/// A 1×64×64×32 f32 operand (512 KiB) copied into a padded temporary.
fn large_copy(name: &str, wrap: bool) -> String {
    let copy = "memref.copy %a, %v : memref<1x64x64x32xf32> to memref<1x64x64x32xf32, strided<[139392, 2112, 32, 1], offset: 2144>>";
    let copy = if wrap {
        format!("scf.forall (%i) in (2) {{\n      {copy}\n    }}")
    } else {
        copy.to_owned()
    };
    format!(
        r#"  func.func @{name}(%a: memref<1x64x64x32xf32>, %t: memref<1x66x66x32xf32>) {{
    %v = memref.subview %t[0, 1, 1, 0] [1, 64, 64, 32] [1, 1, 1, 1] : memref<1x66x66x32xf32> to memref<1x64x64x32xf32, strided<[139392, 2112, 32, 1], offset: 2144>>
    {copy}
    return
  }}
"#
    )
}

const SMALL_COPY: &str = r#"  func.func @small(%a: memref<16x64xf32>, %b: memref<16x64xf32>) {
    memref.copy %a, %b : memref<16x64xf32> to memref<16x64xf32>
    return
  }
"#;

const FLAT_COPY: &str = r#"  func.func @flat(%a: memref<131072xf32>, %b: memref<131072xf32>) {
    memref.copy %a, %b : memref<131072xf32> to memref<131072xf32>
    return
  }
"#;

#[test]
fn parallel_copies_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::parallel_copies;
    tensorc_mlir::register_external_pass(parallel_copies::NAME, parallel_copies::create);
    let module = format!(
        "module {{\n{}{}{}{}}}\n",
        large_copy("large", false),
        large_copy("in_parallel_loop", true),
        SMALL_COPY,
        FLAT_COPY
    );
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, &module, parallel_copies::NAME);
    let large = function_text(&after, "large");
    // Dimension 1 (the first longer than 1): 64 slices of 64×32 floats.
    assert!(large.contains("scf.forall (%arg2) in (64)"), "{large}");
    assert!(large.contains("%arg0[0, %arg2, 0, 0] [1, 1, 64, 32] [1, 1, 1, 1]"), "{large}");
    assert!(large.contains("%subview[0, %arg2, 0, 0] [1, 1, 64, 32] [1, 1, 1, 1]"), "{large}");
    assert_eq!(large.matches("memref.copy").count(), 1, "{large}");
    for left in ["in_parallel_loop", "small", "flat"] {
        assert_eq!(function_text(&after, left), function_text(&before, left), "{left} changed");
    }
    insta::assert_snapshot!("parallel_copies_pass", format!("// before\n{before}\n// after\n{after}"));
}

/// W9 on buffers right after both passes: the padded input's fill writes
/// four slabs (no fill of the whole 1×58×58×64 temporary) and its copy is a
/// parallel loop of 56 row copies.
#[test]
fn w9_fills_the_halo_and_copies_in_parallel() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/w09_conv2d.nxir");
    let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let opt = tensorc::emit("w9.nxir", &source, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
    let ir = crate::harness::cpu_ir_upto("w9.nxir", &source, &opt, tensorc_passes::parallel_copies::NAME);
    assert!(!ir.contains("outs(%alloc : memref<1x58x58x64xf32>)"), "{ir}");
    assert_eq!(ir.matches("[1, 1, 58, 64] [1, 1, 1, 1]").count(), 2, "{ir}");
    assert_eq!(ir.matches("[1, 56, 1, 64] [1, 1, 1, 1]").count(), 2, "{ir}");
    assert!(ir.contains("scf.forall (%arg3) in (56)"), "{ir}");
}

/// Pads and `:same` convolutions against the interpreter, one and two
/// threads; the large ones pass the copy threshold (256 KiB).
#[test]
fn padded_programs_agree_with_the_interpreter() {
    let pad = |name: &str, ty: &str, shape: &str, out: &str, value: &str, spec: &str| {
        (
            name.to_owned(),
            format!("def main(x: {ty}{shape}) -> {ty}{out} {{\n  p = pad x, {value}, [{spec}]\n  return p\n}}\n"),
        )
    };
    let conv = |n: usize, c: usize| {
        format!(
            "def main(x: f32[1][{n}][{n}][{c}], k: f32[3][3][{c}][{c}]) -> f32[1][{n}][{n}][{c}] {{\n  y = conv x, k, strides: [1, 1], padding: :same, input_permutation: [0, 3, 1, 2], kernel_permutation: [3, 2, 0, 1], output_permutation: [0, 3, 1, 2]\n  return y\n}}\n"
        )
    };
    let programs = [
        pad("both_sides", "f32", "[3][5][4]", "[3][7][8]", "1.5", "{0, 0, 0}, {1, 1, 0}, {2, 2, 0}"),
        pad("low_only", "s32", "[6][7]", "[9][7]", "-3", "{3, 0, 0}, {0, 0, 0}"),
        pad("high_only", "f64", "[6][7]", "[6][10]", "2.5", "{0, 0, 0}, {0, 3, 0}"),
        pad("cropped", "u8", "[6][7]", "[7][5]", "7", "{2, -1, 0}, {-1, -1, 0}"),
        pad("interior", "f32", "[5][6]", "[9][8]", "0.0", "{0, 0, 1}, {1, 1, 0}"),
        pad("large", "f32", "[1][70][70][32]", "[1][72][74][32]", "0.0", "{0, 0, 0}, {1, 1, 0}, {2, 2, 0}, {0, 0, 0}"),
        pad("large_s16", "s16", "[200][2100]", "[203][2104]", "5", "{1, 2, 0}, {4, 0, 0}"),
        ("conv_small".to_owned(), conv(9, 8)),
        ("conv_large".to_owned(), conv(48, 64)),
    ];
    let programs: Vec<(&str, String, f64)> =
        programs.iter().map(|(n, s)| (n.as_str(), s.clone(), if n.starts_with("conv") { 2e-4 } else { 0.0 })).collect();
    let failures = crate::threads::on_threads(&[1, 2], || differential_all(&programs, EdgeSet::Mild, 5));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
