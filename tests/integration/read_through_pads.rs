//! `tensorc-read-through-pads` (`passes/tensorc-passes/src/read_through_pads.rs`):
//! padded copies replaced by masked reads of the operand.
//!
//! - the pass before and after on buffer-level packs: an A-like operand
//!   (rows padded, read through an expansion into 16-row panels) and a
//!   B-like column block (a strided view of an argument, columns padded,
//!   read as `16x1x16` through a split of the columns) lose their
//!   temporary, fill and copy; the reads that may leave the operand are
//!   masked (`in_bounds = false` on that dimension only), the others stay
//!   in bounds; left alone when the source is written in the function,
//!   when the temporary is written after the copy, and when a read of the
//!   expanded view is not one run of the temporary, and when a read runs
//!   again in a loop it does not depend on; by snapshot and by counts;
//! - a convolution's zero-padded filter (24 output channels computed as
//!   32) stays one filled and copied temporary, read unmasked;
//! - interpreter-vs-CPU runs of packed matmuls with padded rows of A (f32
//!   and s32, one and two threads), and a 1001×2000·2000×1990 product
//!   (both operands padded) fills and copies no padded temporary.

use crate::harness::{EdgeSet, before_and_after, differential_all, function_text};
use tensorc::Stage;

/// A-like: a 20×40 operand padded to 32 rows, read as 16×16 and 16×8
/// tiles of two 16-row panels. `{extra}` goes after the copy.
fn rows(name: &str, extra: &str) -> String {
    format!(
        r#"  func.func @{name}(%a: memref<20x40xf32>, %out: memref<2x40x16xf32>) {{
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c16 = arith.constant 16 : index
    %c32 = arith.constant 32 : index
    %zero = arith.constant 0.0 : f32
    %p = ub.poison : f32
    %t = memref.alloc() {{alignment = 64 : i64}} : memref<32x40xf32>
    linalg.map outs(%t : memref<32x40xf32>)
      (%init: f32) {{
        linalg.yield %zero : f32
      }}
    %v = memref.subview %t[0, 0] [20, 40] [1, 1] : memref<32x40xf32> to memref<20x40xf32, strided<[40, 1]>>
    memref.copy %a, %v : memref<20x40xf32> to memref<20x40xf32, strided<[40, 1]>>
{extra}    %e = memref.expand_shape %t [[0, 1], [2]] output_shape [2, 16, 40] : memref<32x40xf32> into memref<2x16x40xf32>
    scf.for %i = %c0 to %c2 step %c1 {{
      scf.for %k = %c0 to %c32 step %c16 {{
        %x = vector.transfer_read %e[%i, %c0, %k], %p {{in_bounds = [true, true]}} : memref<2x16x40xf32>, vector<16x16xf32>
        %y = vector.transpose %x, [1, 0] : vector<16x16xf32> to vector<16x16xf32>
        vector.transfer_write %y, %out[%i, %k, %c0] {{in_bounds = [true, true]}} : vector<16x16xf32>, memref<2x40x16xf32>
      }}
      %x = vector.transfer_read %e[%i, %c0, %c32], %p {{in_bounds = [true, true]}} : memref<2x16x40xf32>, vector<16x8xf32>
      %y = vector.transpose %x, [1, 0] : vector<16x8xf32> to vector<8x16xf32>
      vector.transfer_write %y, %out[%i, %c32, %c0] {{in_bounds = [true, true]}} : vector<8x16xf32>, memref<2x40x16xf32>
    }}
    memref.dealloc %t : memref<32x40xf32>
    return
  }}
"#
    )
}

/// B-like: columns 8..48 of a 16×64 argument padded to 48 columns, read
/// as three 16-wide panels (`{read}` is the read of panel `%n`).
fn columns(name: &str, read: &str) -> String {
    column_block(name, read, None)
}

/// B-like with a width known at run time only (`%w` ≤ 48 columns from
/// column 8, as the last block of a product whose N is no multiple of 16);
/// with `other_width`, the copy's source is `%w2` columns wide instead.
fn dynamic_columns(name: &str, other_width: bool) -> String {
    column_block(name, PANEL_READ, Some(if other_width { "%w2" } else { "%w" }))
}

/// `columns`, or with `src_width` the run-time width `%w` of the copied
/// view and `src_width` of its source.
fn column_block(name: &str, read: &str, src_width: Option<&str>) -> String {
    let (args, src_w, view_w, w) = match src_width {
        None => ("", "40", "40", "40"),
        Some(s) => (", %w: index, %w2: index", s, "%w", "?"),
    };
    format!(
        r#"  func.func @{name}(%b: memref<16x64xf32>, %out: memref<3x16x16xf32>{args}) {{
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c3 = arith.constant 3 : index
    %zero = arith.constant 0.0 : f32
    %p = ub.poison : f32
    %s = memref.subview %b[0, 8] [16, {src_w}] [1, 1] : memref<16x64xf32> to memref<16x{w}xf32, strided<[64, 1], offset: 8>>
    %t = memref.alloc() {{alignment = 64 : i64}} : memref<16x48xf32>
    linalg.fill ins(%zero : f32) outs(%t : memref<16x48xf32>)
    %v = memref.subview %t[0, 0] [16, {view_w}] [1, 1] : memref<16x48xf32> to memref<16x{w}xf32, strided<[48, 1]>>
    memref.copy %s, %v : memref<16x{w}xf32, strided<[64, 1], offset: 8>> to memref<16x{w}xf32, strided<[48, 1]>>
    %e = memref.expand_shape %t [[0], [1, 2]] output_shape [16, 3, 16] : memref<16x48xf32> into memref<16x3x16xf32>
    scf.for %n = %c0 to %c3 step %c1 {{
{read}
      %y = vector.transpose %x, [1, 0, 2] : vector<16x1x16xf32> to vector<1x16x16xf32>
      %z = vector.extract %y[0] : vector<16x16xf32> from vector<1x16x16xf32>
      vector.transfer_write %z, %out[%n, %c0, %c0] {{in_bounds = [true, true]}} : vector<16x16xf32>, memref<3x16x16xf32>
    }}
    return
  }}
"#
    )
}

/// `columns` with each panel read again for every `%j` (an index the read
/// does not use), as a convolution reads its padded filter for every tile
/// of output columns.
fn repeated(name: &str) -> String {
    columns(
        name,
        "      %x = scf.for %j = %c0 to %c3 step %c1 iter_args(%acc = %zeros) -> (vector<16x1x16xf32>) {\n        %r = vector.transfer_read %e[%c0, %n, %c0], %p {in_bounds = [true, true, true]} : memref<16x3x16xf32>, vector<16x1x16xf32>\n        %sum = arith.addf %acc, %r : vector<16x1x16xf32>\n        scf.yield %sum : vector<16x1x16xf32>\n      }",
    )
    .replace(
        "    %p = ub.poison : f32\n",
        "    %p = ub.poison : f32\n    %zeros = arith.constant dense<0.0> : vector<16x1x16xf32>\n",
    )
}

const PANEL_READ: &str = "      %x = vector.transfer_read %e[%c0, %n, %c0], %p {in_bounds = [true, true, true]} : memref<16x3x16xf32>, vector<16x1x16xf32>";

#[test]
fn read_through_pads_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::read_through_pads;
    tensorc_mlir::register_external_pass(read_through_pads::NAME, read_through_pads::create);
    // Not one run of the temporary: two 8-wide pieces of two panels
    // (elements 16 apart in a row of the temporary, read as if adjacent).
    let strided = "      %r = vector.transfer_read %e[%c0, %c0, %c0], %p {in_bounds = [true, true, true]} : memref<16x3x16xf32>, vector<16x2x8xf32>\n      %x = vector.shape_cast %r : vector<16x2x8xf32> to vector<16x1x16xf32>";
    let module = format!(
        "module {{\n{}{}{}{}{}{}{}{}}}\n",
        rows("rows", ""),
        columns("columns", PANEL_READ),
        dynamic_columns("dynamic_columns", false),
        dynamic_columns("other_width", true),
        rows(
            "source_written",
            "    %w = arith.constant dense<1.0> : vector<16xf32>\n    vector.transfer_write %w, %a[%c0, %c0] {in_bounds = [true]} : vector<16xf32>, memref<20x40xf32>\n"
        ),
        rows(
            "pad_written",
            "    %w = arith.constant dense<1.0> : vector<16xf32>\n    vector.transfer_write %w, %t[%c16, %c0] {in_bounds = [true]} : vector<16xf32>, memref<32x40xf32>\n"
        ),
        columns("not_one_run", strided),
        repeated("repeated"),
    );
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, &module, read_through_pads::NAME);
    let r = function_text(&after, "rows").to_owned();
    for gone in [
        "memref.alloc",
        "memref.copy",
        "linalg.map",
        "expand_shape",
        "dealloc",
    ] {
        assert!(!r.contains(gone), "{gone} left in\n{r}");
    }
    // Panel rows 16·i .. 16·i + 16 of the operand; rows past 20 are
    // padding (masked), columns 0..32 by 16 and 32..40 stay inside.
    assert!(r.contains("arith.muli %arg2, %c16"), "{r}");
    assert_eq!(
        r.matches("{in_bounds = [false, true]} : memref<20x40xf32>")
            .count(),
        2,
        "{r}"
    );
    let c = function_text(&after, "columns").to_owned();
    for gone in ["memref.alloc", "memref.copy", "linalg.fill", "expand_shape"] {
        assert!(!c.contains(gone), "{gone} left in\n{c}");
    }
    // Columns 16·n .. 16·n + 16 of the 40-column view: the last panel
    // leaves it (masked columns), every row is inside; reshaped back.
    assert!(
        c.contains("{in_bounds = [true, false]} : memref<16x40xf32, strided<[64, 1], offset: 8>>, vector<16x16xf32>"),
        "{c}"
    );
    assert!(
        c.contains("vector.shape_cast") && c.contains("to vector<16x1x16xf32>"),
        "{c}"
    );
    // A width known at run time: the source's own size masks the reads.
    let d = function_text(&after, "dynamic_columns").to_owned();
    for gone in ["memref.alloc", "memref.copy", "linalg.fill", "expand_shape"] {
        assert!(!d.contains(gone), "{gone} left in\n{d}");
    }
    assert!(
        d.contains("{in_bounds = [true, false]} : memref<16x?xf32, strided<[64, 1], offset: 8>>, vector<16x16xf32>"),
        "{d}"
    );
    for name in ["source_written", "pad_written", "not_one_run", "other_width", "repeated"] {
        assert_eq!(
            function_text(&before, name),
            function_text(&after, name),
            "@{name} changed"
        );
    }
    insta::assert_snapshot!(
        "read_through_pads_pass",
        format!("// before\n{before}\n// after\n{after}")
    );
}

fn dot(at: &str, bt: &str, ot: &str) -> String {
    format!(
        "def main(a: {at}, b: {bt}) -> {ot} {{\n  c = dot a, [1], [], b, [0], []\n  return c\n}}\n"
    )
}

#[test]
fn padded_packs_agree_with_the_interpreter() {
    let programs = [
        // M pads A's last panel (N is packed only when B's rows are 4 KiB
        // apart, a multiple of 1024, or B is larger than tensorc-pack-mark's
        // 12 MiB: the padded columns of B are tested with known values in
        // pack_mark.rs).
        (
            "pad_m_f32",
            dot("f32[100][300]", "f32[300][1024]", "f32[100][1024]"),
            5e-5,
        ),
        // K not a multiple of 16 either (the pack's K tail).
        (
            "pad_m_k_s32",
            dot("s32[71][523]", "s32[523][1024]", "s32[71][1024]"),
            0.0,
        ),
        // A packed from its transpose (aᵀ·b), rows padded.
        (
            "pad_m_transposed_a",
            "def main(a: f32[600][90], b: f32[600][1024]) -> f32[90][1024] {\n  c = dot a, [0], [], b, [0], []\n  return c\n}\n".to_owned(),
            5e-5,
        ),
    ];
    let failures =
        crate::threads::on_threads(&[1, 2], || differential_all(&programs, EdgeSet::Mild, 4));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A 1001×2000·2000×1990 product (packed: B has more than 12 MiB; M pads
/// A's last panel, N the last block of B's columns) fills and copies
/// nothing before packing: the buffer-level IR right after the pass has no
/// fill of a padded temporary and no copy into one.
#[test]
fn odd_product_packs_without_padded_copies() {
    let source = dot("f32[1001][2000]", "f32[2000][1990]", "f32[1001][1990]");
    let opt =
        tensorc::emit("odd.nxir", &source, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
    let buffers = crate::harness::cpu_ir_upto(
        "odd.nxir",
        &source,
        &opt,
        tensorc_passes::read_through_pads::NAME,
    );
    // Before the pass: A padded to 1008 rows and each K block of B's last
    // column block to 464 columns, each filled (`linalg.map`) and copied.
    assert!(!buffers.contains("linalg.map"), "{buffers}");
    assert!(!buffers.contains("memref<1008x2000xf32>"), "{buffers}");
    assert!(!buffers.contains("x464xf32>"), "{buffers}");
    // The operands are read directly, masked at their edges.
    assert!(
        buffers.contains("{in_bounds = [false, true]} : memref<1001x2000xf32>"),
        "{buffers}"
    );
}

/// 1032×1500·1500×1023 splits M in two chunks (`tensorc.pack_m`), each
/// running both N blocks of 32 panels; the second is 511 columns wide,
/// its last panel padded, a width the pack reads as a run-time size: its
/// blocks of B are read directly too, masked by that size (no 128×512
/// temporary filled and copied per K block). (K over 1440: with a shorter
/// K these rows, 4092 bytes apart, are repitched instead of packed.)
#[test]
fn blocks_of_run_time_width_pack_without_padded_copies() {
    let source = dot("f32[1032][1500]", "f32[1500][1023]", "f32[1032][1023]");
    let (before, after) = crate::harness::cpu_ir_between(
        "dyn.nxir",
        &source,
        "convert-bufferization-to-memref",
        tensorc_passes::read_through_pads::NAME,
    );
    assert!(before.contains("memref.copy") && before.contains("x?xf32, strided<[512, 1]>>"), "{before}");
    assert!(!after.contains("linalg.map"), "{after}");
    assert!(!after.contains("x?xf32, strided<[512, 1]>>"), "{after}");
    assert!(after.contains("{in_bounds = [true, false]} : memref<128x?xf32, strided<[1023, 1], offset: ?>>"), "{after}");
}

/// A convolution with 24 output channels is computed with 32
/// (`padded_channels` in the frontend's `conv.rs`): its filter, zero-padded
/// to 32 channels and read for every tile of output columns, stays on both
/// vector ISAs one filled and copied temporary whose reads are whole
/// vectors. Two ways to lose that, both tested here: tiling folded the
/// padding into each tile's reads of the filter (the frontend now copies
/// the padded filter), and this pass read through the temporary, masked
/// (it now leaves reads repeated in a loop alone). Either way every
/// filter read of the last channel tile was a masked load in the
/// innermost loop: 2×57×57×63 → 24 took 6.2 ms against 3.6 on AVX2.
#[test]
fn padded_conv_filter_stays_a_temporary() {
    use tensorc_passes::pipeline::VectorIsa;
    let source = "def main(x: f32[1][30][30][63], k: f32[3][3][63][24]) -> f32[1][30][30][24] {\n  y = conv x, k, padding: :same, input_permutation: [0, 3, 1, 2], kernel_permutation: [3, 2, 0, 1], output_permutation: [0, 3, 1, 2]\n  return y\n}\n";
    let opt = tensorc::emit("pconv.nxir", source, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(opt.contains("tensor<3x3x63x32xf32>"), "the filter is no longer padded:\n{opt}");
    for isa in [VectorIsa::Avx512, VectorIsa::Avx2] {
        let buffers = crate::harness::cpu_ir_upto_for(isa, "pconv.nxir", source, &opt, tensorc_passes::read_through_pads::NAME);
        assert!(buffers.contains("memref.alloc() {alignment = 64 : i64} : memref<3x3x63x32xf32>"), "{isa:?}:\n{buffers}");
        assert!(!buffers.contains("false"), "{isa:?}: a masked read\n{buffers}");
        assert!(!buffers.contains("memref<3x3x63x24xf32>, vector"), "{isa:?}: a read of the unpadded filter\n{buffers}");
    }
}
