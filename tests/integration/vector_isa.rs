//! The register tiles of each vector ISA (`tensorc_passes::pipeline::VectorIsa`,
//! picked per target by `tensorc_cpu::Pipelines::for_target`) and
//! `tensorc-lane-loads` (`passes/tensorc-passes/src/lane_loads.rs`).
//!
//! - the pass before and after on LLVM-dialect functions: a 6-lane load
//!   read only lane by lane becomes one scalar load per lane read (a lane
//!   read twice loaded once); a power-of-two load, a load with another use
//!   and a volatile load are left alone;
//! - the schedules: the AVX2 ones tile matmuls 6×16 (12 accumulators), pack
//!   A into 4-row panels and B into 8-wide ones with 4×24 register tiles
//!   (and pack every product past the size thresholds, through
//!   `tensorc-pack-mark-avx2`), and tile convolutions 6 columns × 16
//!   channels and channel-major ones by 8 columns; the AVX-512 ones keep
//!   8×32, 8-row panels, 8 × 32 and 32 columns;
//! - which pipeline a target gets: `for_target` keeps the AVX-512 lowering
//!   (with its extra steps) for AVX-512F CPUs and takes the narrow one for
//!   AVX2 CPUs;
//! - both pipelines, run on the host whatever its ISA (LLVM legalizes
//!   either's vectors), against the interpreter on every tile kind: a packed
//!   product (M, K and N not multiples of the tiles; AVX2's tile loops
//!   ending in 2- and 1-panel tiles; one packed on AVX2 only), unpacked, narrow and
//!   f64 products, a batch, an MLP layer's epilogue, a channels-last and a
//!   channel-major convolution.

use crate::harness::{before_and_after, compare, compile_for, function_text, seeded_inputs};
use tensorc::{Stage, Target, Tensor, TensorType};
use tensorc_mlir::CodegenTarget;
use tensorc_passes::conv_schedule::ConvTiles;
use tensorc_passes::matmul_schedule::MatmulTiles;
use tensorc_passes::packed_matmul::PackedMatmul;
use tensorc_passes::pipeline::{EXPAND_MATH_F64, FLATTEN_REDUCTIONS, PACK_MARK, PACK_MARK_AVX2, VectorIsa, cpu_lowering_pipeline, cpu_lowering_pipeline_for};

#[test]
fn lane_loads_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::lane_loads;
    tensorc_mlir::register_external_pass(lane_loads::NAME, lane_loads::create);
    let load = |name: &str, n: usize, extra: &str, volatile: bool| {
        let flag = if volatile { " volatile" } else { "" };
        format!(
            r#"
  llvm.func @{name}(%p: !llvm.ptr, %q: !llvm.ptr) -> f32 {{
    %v = llvm.load{flag} %p {{alignment = 4 : i64}} : !llvm.ptr -> vector<{n}xf32>
    %c0 = llvm.mlir.constant(0 : i64) : i64
    %c4 = llvm.mlir.constant(4 : i64) : i64
    %a = llvm.extractelement %v[%c0 : i64] : vector<{n}xf32>
    %b = llvm.extractelement %v[%c4 : i64] : vector<{n}xf32>
    %d = llvm.extractelement %v[%c4 : i64] : vector<{n}xf32>{extra}
    %s = llvm.fadd %a, %b : f32
    %t = llvm.fadd %s, %d : f32
    llvm.return %t : f32
  }}"#
        )
    };
    let module = format!(
        "module {{{}{}{}{}\n}}\n",
        load("six", 6, "", false),
        load("eight", 8, "", false),
        load("stored", 6, &format!("\n    llvm.store %v, %q : vector<6xf32>, !llvm.ptr"), false),
        load("volatile", 6, "", true),
    );
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, &module, lane_loads::NAME);
    let six = function_text(&after, "six");
    assert!(!six.contains("vector<6xf32>"), "{six}");
    assert!(!six.contains("extractelement"), "{six}");
    // Lanes 0 and 4, each loaded once, at the vector's place.
    assert_eq!(six.matches("llvm.load").count(), 2, "{six}");
    assert!(six.contains("llvm.getelementptr %arg0[4] : (!llvm.ptr) -> !llvm.ptr, f32"), "{six}");
    assert!(six.contains("llvm.load %arg0 {alignment = 4 : i64} : !llvm.ptr -> f32"), "{six}");
    for untouched in ["eight", "stored", "volatile"] {
        assert_eq!(function_text(&after, untouched), function_text(&before, untouched), "{untouched}");
    }
}

#[test]
fn the_tiles_of_each_isa() {
    assert_eq!(MatmulTiles::for_isa(VectorIsa::Avx512), MatmulTiles::default());
    assert_eq!(PackedMatmul::for_isa(VectorIsa::Avx512), PackedMatmul::default());
    assert_eq!(ConvTiles::for_isa(VectorIsa::Avx512), ConvTiles::default());
    assert_eq!(cpu_lowering_pipeline_for(VectorIsa::Avx512), cpu_lowering_pipeline());
    // AVX2: at most 12 accumulators of 8 f32 lanes, with room for the
    // operands in the 16 ymm registers.
    let m = MatmulTiles::for_isa(VectorIsa::Avx2);
    assert_eq!((m.m, m.n, m.lanes), (6, 16, 8));
    assert!(m.m * m.n / m.lanes <= 12);
    let p = PackedMatmul::for_isa(VectorIsa::Avx2);
    assert_eq!((p.tile, p.tile_m, p.reg_m, p.reg_n), (8, 4, 4, 3));
    assert!(p.reg_m * p.reg_n * p.tile / m.lanes <= 12);
    // AVX2 packs every product past the size thresholds; AVX-512 the ones
    // whose B rows conflict in the caches or whose B is large.
    assert!(p.packs(1000, 1000, 1000) && !PackedMatmul::default().packs(1000, 1000, 1000));
    assert!(p.packs(1024, 1024, 1024) && PackedMatmul::default().packs(1024, 1024, 1024));
    assert!(!p.packs(256, 256, 256) && !p.packs(63, 1000, 1000));
    let c = ConvTiles::for_isa(VectorIsa::Avx2);
    assert!(c.ow * c.f / c.lanes <= 12 && 12 * c.cm_columns / c.lanes <= 12, "{c:?}");
    // The schedules' text says so: the matmul tiles and the A panels.
    let narrow = cpu_lowering_pipeline_for(VectorIsa::Avx2);
    // Every step's library is preloaded as one, first; the packing step
    // runs first from it.
    let library = |pipeline: &str| -> String {
        let path = pipeline.split("transform-library-paths=").nth(1).unwrap().split('}').next().unwrap().to_owned();
        std::fs::read_to_string(path).unwrap()
    };
    let (narrow_lib, wide_lib) = (library(&narrow), library(&cpu_lowering_pipeline()));
    assert!(narrow_lib.contains("packed_sizes = [4, 8, 0]"), "4-row A panels, 8-wide B panels");
    assert!(!narrow_lib.contains("packed_sizes = [8, 16, 0]"));
    // (After the f64 math expansion and the flattened reductions, which
    // come before every schedule.)
    let after_expansion = |p: &str| p.split_once("},").unwrap().1.strip_prefix(&format!("{EXPAND_MATH_F64},{FLATTEN_REDUCTIONS},")).unwrap_or("").to_owned();
    assert!(after_expansion(&narrow).starts_with(&format!("{PACK_MARK_AVX2},")), "{narrow}");
    assert!(after_expansion(&cpu_lowering_pipeline()).starts_with(&format!("{PACK_MARK},")));
    assert!(wide_lib.contains("packed_sizes = [8, 16, 0]"), "8-row panels");
    assert!(narrow_lib.contains("tile_sizes [6, 16, 0]"), "6×16 register tiles");
    assert!(!narrow_lib.contains("tile_sizes [8, 32, 0]"));
    assert!(wide_lib.contains("tile_sizes [8, 32, 0]"), "8×32 register tiles");
}

#[test]
fn targets_get_the_lowering_of_their_isa() {
    let p = tensorc_cpu::Pipelines {
        opt: String::new(),
        lowering: "canonicalize".into(),
        avx512: tensorc_passes::pipeline::AVX512_LOWERING.into(),
        narrow: "cse".into(),
    };
    let v4 = p.for_target(&CodegenTarget { triple: None, cpu: Some("x86-64-v4") });
    let v3 = p.for_target(&CodegenTarget { triple: None, cpu: Some("znver3") });
    if cfg!(target_arch = "x86_64") {
        assert_eq!(v4.lowering, "canonicalize,tensorc-ldexp-scale");
    }
    assert_eq!(v3.lowering, "cse");
    assert!(v4.narrow.is_empty() && v3.narrow.is_empty() && v3.avx512.is_empty());
}

/// `src` compiled with the pipeline of each ISA and run on the host, against
/// the interpreter.
fn agrees_on_both_isas(src: &str) {
    let interp = compile_for("f.nxir", src, Target::Interp);
    let fi = interp.entry(None).unwrap();
    let types: Vec<TensorType> = fi.params().iter().map(|(_, t)| t.clone()).collect();
    let inputs: Vec<Tensor> = seeded_inputs(&types, &[7]).remove(0).1;
    let want = fi.call(&inputs).unwrap();
    for isa in [VectorIsa::Avx512, VectorIsa::Avx2] {
        let (module, text) = crate::harness::checked_and_lowered_for("f.nxir", src, isa);
        let p = crate::harness::isa_pipelines(isa);
        let m = tensorc_cpu::CpuModule::compile(&module, &text, &p).unwrap_or_else(|e| panic!("{isa:?}: {e}"));
        let f = &m.functions()[0];
        let mut out: Vec<Tensor> = f.results().iter().map(|t| Tensor::zeros(t.clone()).unwrap()).collect();
        let refs: Vec<&Tensor> = inputs.iter().collect();
        f.call(&refs, &mut out).unwrap();
        for (g, w) in out.iter().zip(&want) {
            compare(g, w, 1e-4).unwrap_or_else(|e| panic!("{isa:?}: {e}\n{src}"));
        }
    }
}

#[test]
fn packed_products_agree_on_both_isas() {
    // Packed: B's rows 4 KiB apart and over 1 MiB; 70 rows (not a multiple
    // of 6 or 8) and K = 300 (two K blocks and a rest).
    agrees_on_both_isas("def f(a: f32[70][300], b: f32[300][1024]) -> f32[70][1024] {\n  y = dot a, [1], [], b, [0], []\n  return y\n}\n");
    // The MLP layer's fused epilogue.
    agrees_on_both_isas(&crate::harness::bias_relu("f32", 70, 300, 1024));
    // AVX2's 4×24 tiles: M a multiple of 4 (C written in place, no fill),
    // N chunks ending in a 2-panel tile (1024 columns) and a 1-panel one
    // (896), the last K block peeled (300 rows).
    agrees_on_both_isas(&crate::harness::bias_relu("f32", 64, 300, 1024));
    agrees_on_both_isas(&crate::harness::bias_relu("f32", 64, 256, 896));
    // Packed on AVX2 only (B's rows conflict in no cache, B is small).
    agrees_on_both_isas("def f(a: f32[100][200], b: f32[200][600]) -> f32[100][600] {\n  y = dot a, [1], [], b, [0], []\n  return y\n}\n");
}

/// 64-bit products, packed on AVX2 (4×8 register tiles of one panel),
/// unpacked on AVX-512: whole panels (1024 columns), a remainder panel and
/// rows (261 columns, 67 rows), K blocks and their rest (300 rows), the
/// fused epilogue, a batch, a·bᵀ.
#[test]
fn packed_64_bit_products_agree_on_both_isas() {
    agrees_on_both_isas("def f(a: f64[70][300], b: f64[300][1024]) -> f64[70][1024] {\n  y = dot a, [1], [], b, [0], []\n  return y\n}\n");
    agrees_on_both_isas("def f(a: f64[67][257], b: f64[257][517]) -> f64[67][517] {\n  y = dot a, [1], [], b, [0], []\n  return y\n}\n");
    agrees_on_both_isas(&crate::harness::bias_relu("f64", 64, 300, 1024));
    agrees_on_both_isas("def f(a: f64[2][64][200], b: f64[2][200][600]) -> f64[2][64][600] {\n  y = dot a, [2], [0], b, [1], [0]\n  return y\n}\n");
    agrees_on_both_isas("def f(a: f64[100][300], b: f64[520][300]) -> f64[100][520] {\n  y = dot a, [1], [], b, [1], []\n  return y\n}\n");
}

/// On AVX2 a 64-bit product past the packing sizes is packed and tiled 4×8
/// (one 8-wide panel: four `vector<8xf64>` FMAs per k, no other tile, as
/// one panel divides every block); a 32-bit one keeps 4×24 (12 FMAs of
/// `vector<8xf32>` per k, and a 2-panel tile at the end of each 32-panel
/// block); AVX-512 keeps 64-bit products unpacked (8×16 tiles).
#[test]
fn avx2_packs_64_bit_products_on_one_panel_tiles() {
    let fmas = |ty: &str, cpu: &str| {
        let src = format!("def f(a: {ty}[128][256], b: {ty}[256][512]) -> {ty}[128][512] {{\n  y = dot a, [1], [], b, [0], []\n  return y\n}}\n");
        let llvm = tensorc::emit_for("f.nxir", &src, Stage::LlvmDialect, Target::Cpu, Some(cpu))
            .unwrap_or_else(|e| panic!("{}", e.render()));
        let mut kinds: Vec<String> = llvm
            .lines()
            .filter(|l| l.contains("llvm.intr.fmuladd"))
            .map(|l| l.rsplit("-> ").next().unwrap_or_default().to_owned())
            .collect();
        kinds.sort();
        kinds
    };
    assert_eq!(fmas("f64", "x86-64-v3"), vec!["vector<8xf64>"; 4]);
    assert_eq!(fmas("f32", "x86-64-v3"), vec!["vector<8xf32>"; 12 + 8]);
    assert_eq!(fmas("f64", "x86-64-v4"), vec!["vector<16xf64>"; 8]);
}

#[test]
fn unpacked_products_agree_on_both_isas() {
    agrees_on_both_isas("def f(a: f32[37][53], b: f32[53][45]) -> f32[37][45] {\n  y = dot a, [1], [], b, [0], []\n  return y\n}\n");
    // Narrow (N ≤ one register on either ISA) and f64.
    agrees_on_both_isas("def f(a: f32[50][40], b: f32[40][7]) -> f32[50][7] {\n  y = dot a, [1], [], b, [0], []\n  return y\n}\n");
    agrees_on_both_isas("def f(a: f64[13][29], b: f64[29][21]) -> f64[13][21] {\n  y = dot a, [1], [], b, [0], []\n  return y\n}\n");
    agrees_on_both_isas("def f(a: f32[3][20][30], b: f32[3][30][27]) -> f32[3][20][27] {\n  y = dot a, [2], [0], b, [1], [0]\n  return y\n}\n");
}

/// The argmax lane scan as the frontend sizes it for each ISA's registers
/// (AVX-512: 64 lanes, 128 past 1024 elements, from 128 elements; AVX2: 32
/// lanes from 65 elements).
#[test]
fn lane_scans_agree_on_both_isas() {
    let argmax = |shape: &str, rows: usize, args: &str| {
        format!("def f(x: f32{shape}) -> s32[{rows}] {{\n  i = argmax x, axis: 1{args}\n  return i\n}}\n")
    };
    // AVX2 scans, AVX-512 does not: two chunks plus one element, 100.
    agrees_on_both_isas(&argmax("[50][65]", 50, ""));
    agrees_on_both_isas(&argmax("[40][100]", 40, ", tie_break: :high"));
    // Both scan; the lanes do not divide the lines (1000, 1100: long lines).
    agrees_on_both_isas(&argmax("[9][1000]", 9, ""));
    agrees_on_both_isas(&argmax("[9][1100]", 9, ", tie_break: :high"));
    agrees_on_both_isas("def f(x: f32[30][383]) -> s32[30] {\n  t = multiply x, 4.0\n  r = floor t\n  i = argmin r, axis: 1\n  return i\n}\n");
}

#[test]
fn convolutions_agree_on_both_isas() {
    // Channels-last (34 output channels: two full tiles' worth and a rest).
    agrees_on_both_isas("def f(x: f32[1][4][13][15], k: f32[34][4][3][2]) -> f32[1][34][11][14] {\n  y = conv x, k\n  return y\n}\n");
    // Channel-major (5 output channels, 38 columns: full tiles and a rest).
    agrees_on_both_isas("def f(x: f32[2][6][9][40], k: f32[5][6][3][3]) -> f32[2][5][7][38] {\n  y = conv x, k\n  return y\n}\n");
}
