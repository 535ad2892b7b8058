//! `tensorc-repitch-b` (`passes/tensorc-passes/src/repitch_b.rs`, rule
//! `repitched_columns` in `matmul_schedule.rs`): an unpacked product whose
//! B rows are within a cache line of a multiple of 2 KiB apart reads B
//! through a copy whose rows are an odd number of lines apart.
//!
//! - the pass before and after on tensor-level matmuls: 256×300·300×1027
//!   f32 (4108-byte rows) and 256×300·300×515 f64 (4120) read copies of
//!   300×1040 and 300×520; left alone: a product tagged `tensorc.pack`,
//!   rows a line past 4 KiB (1040 columns), 255 rows, K over 1440 (no N
//!   blocks); by snapshot and by counts;
//! - after bufferization, the product's tiles read a strided view of the
//!   copy (`strided<[1040, 1]>`), and the copy is a parallel loop;
//! - small repitched products (f32, f64, s32, bias + relu, B transposed,
//!   remainders in every dimension) against the interpreter on one, two
//!   and three threads, each checked repitched first, and a batch of two
//!   (unbatched into a loop of matmuls, each copying its own B);
//! - products too large for the interpreter that were packed before for
//!   their near-page rows (1023³, a·bᵀ 511×1025·1025×1023, 1000×1000·
//!   1000×1025 s32) or not (1023×1025·1025×1027, with bias + relu),
//!   checked unpacked and repitched, against values known in closed form
//!   (`pack_mark.rs`'s `Case`) on one and two threads.

use crate::harness::{EdgeSet, before_and_after, bias_relu, cpu_ir_upto, differential_all, function_text};
use crate::pack_mark::{Case, case, matmul};
use crate::prefetch_panels::dot;
use tensorc::{DType, Stage};

#[test]
fn repitch_b_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::repitch_b;
    tensorc_mlir::register_external_pass(repitch_b::NAME, repitch_b::create);
    let module = format!(
        "module {{\n{}{}{}{}{}{}}}\n",
        matmul("near_page", 256, 300, 1027, "f32", ""),
        matmul("near_page_f64", 256, 300, 515, "f64", ""),
        matmul("packed", 256, 300, 1027, "f32", " {tensorc.pack}"),
        matmul("a_line_past", 256, 300, 1040, "f32", ""),
        matmul("few_rows", 255, 300, 1027, "f32", ""),
        matmul("long_k", 256, 1500, 1027, "f32", ""),
    );
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, &module, repitch_b::NAME);
    for (name, t, wide) in [
        ("near_page", "tensor<300x1027xf32>", "tensor<300x1040xf32>"),
        ("near_page_f64", "tensor<300x515xf64>", "tensor<300x520xf64>"),
    ] {
        let f = function_text(&after, name);
        assert!(f.contains(&format!("bufferization.alloc_tensor() : {wide}")), "{f}");
        assert!(f.contains(&format!(": {wide} to {t}")), "{f}");
        assert!(f.contains(&format!("bufferization.materialize_in_destination %arg1 in %extracted_slice : ({t}, {t}) -> {t}")), "{f}");
        // The product reads the copy, not the argument.
        assert!(f.contains("linalg.matmul ins(%arg0, %1 :"), "{f}");
    }
    for name in ["packed", "a_line_past", "few_rows", "long_k"] {
        assert_eq!(function_text(&after, name), function_text(&before, name), "{name} changed");
    }
    insta::assert_snapshot!("repitch_b_pass", format!("// before\n{before}\n// after\n{after}"));
}

/// Whether `source`'s product is repitched and whether it is packed, from
/// the IR after `tensorc-repitch-b` (the packed ones carry `tensorc.pack`).
fn repitched_and_packed(name: &str, source: &str) -> (bool, bool) {
    let opt = tensorc::emit(name, source, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
    let ir = cpu_ir_upto(name, source, &opt, "tensorc-repitch-b,");
    (ir.contains("bufferization.alloc_tensor()"), ir.contains("tensorc.pack"))
}

#[test]
fn repitched_products_read_a_strided_view_of_a_parallel_copy() {
    let source = dot(256, 300, 1027);
    let opt = tensorc::emit("r.nxir", &source, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
    let ir = cpu_ir_upto("r.nxir", &source, &opt, "tensorc-parallel-copies,");
    // B's copy: rows 1040 floats apart, written by a parallel loop of row
    // copies.
    assert!(ir.contains("memref.alloc() {alignment = 64 : i64} : memref<300x1040xf32>"), "{ir}");
    assert!(ir.contains("memref<300x1027xf32, strided<[1040, 1]>>"), "{ir}");
    let copy = ir.find("memref.copy").unwrap_or_else(|| panic!("no copy: {ir}"));
    let forall = ir.find("scf.forall").unwrap_or_else(|| panic!("no parallel loop: {ir}"));
    assert!(forall < copy, "the copy is not in a parallel loop: {ir}");
    // The register tiles read B through that view.
    assert!(ir.contains("vector.transfer_read") && ir.contains("strided<[1040, 1], offset: ?>"), "{ir}");
}

#[test]
fn repitched_products_agree_with_the_interpreter() {
    let programs = [
        // 256 = 32 × 8 rows, 1027 = 3 blocks of 320 + 67 (2 × 32 + 3).
        ("f32_1027", dot(256, 300, 1027), 1e-4),
        // Remainders everywhere: 261 rows, K 301, N 1021 (4 bytes short).
        ("f32_odd", dot(261, 301, 1021), 1e-4),
        ("bias_relu_1030", bias_relu("f32", 300, 260, 1030), 1e-4),
        ("f64_515", dot(256, 300, 515).replace("f32", "f64"), 1e-9),
        ("s32_1025", dot(270, 290, 1025).replace("f32", "s32"), 0.0),
        // A batch of products with B over 4 MiB: a loop of matmuls
        // (`tensorc-pack-mark`), each copying its B inside the loop.
        (
            "batch_1027",
            "def main(a: f32[2][256][1025], b: f32[2][1025][1027]) -> f32[2][256][1027] {\n  c = dot a, [2], [0], b, [1], [0]\n  return c\n}\n".to_owned(),
            1e-4,
        ),
        // B transposed: the frontend's transpose is what gets copied.
        (
            "bt_513",
            "def main(a: f32[300][600], b: f32[513][600]) -> f32[300][513] {\n  c = dot a, [1], [], b, [1], []\n  return c\n}\n".to_owned(),
            1e-4,
        ),
    ];
    for (name, source, _) in &programs {
        assert_eq!(repitched_and_packed(&format!("{name}.nxir"), source), (true, false), "{name}");
    }
    let failures = crate::threads::on_threads(&[1, 2, 3], || differential_all(&programs, EdgeSet::Mild, 3));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Products the interpreter would take minutes over, against closed-form
/// values: rows 4 bytes off 4 KiB (packed until repitching: 1023³, 1000×
/// 1000·1000×1025, a·bᵀ with 1023 columns) and 12 bytes off (1027).
#[test]
fn large_repitched_products_match_known_values() {
    let cases: [Case; 5] = [
        case("rp_1023", DType::F32, 1023, 1023, 1023, false, false),
        case("rp_1027", DType::F32, 1023, 1025, 1027, false, false),
        case("rp_1023_bias_relu", DType::F32, 1023, 1023, 1023, false, true),
        case("rp_bt_1023", DType::F32, 511, 1025, 1023, true, false),
        case("rp_1025_s32", DType::S32, 1000, 1000, 1025, false, false),
    ];
    for c in &cases {
        assert_eq!(repitched_and_packed(&format!("{}.nxir", c.name), &c.source()), (true, false), "{}", c.name);
    }
    let failures = crate::threads::on_threads(&[1, 2], || cases.iter().filter_map(|c| c.check().err()).collect());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
