//! `tensorc-pack-mark` (`passes/tensorc-passes/src/pack_mark.rs`): which
//! matrix products are packed, and batches of them as loops of matmuls.
//!
//! - the pass before and after on tensor-level products: a 1024³ matmul
//!   and one whose B (2000×1990 f32) exceeds 12 MiB are tagged
//!   `tensorc.pack` (with `tensorc.pack_n32`, and with `tensorc.pack_m`
//!   for the same B and 1024 rows); 1000³ (B rows 4000 bytes apart, 4 MB), W1's 256³, an
//!   f64 1024³ and a transposed-map matmul are not (1000³ is tagged for
//!   N blocks of the unpacked schedule instead); a batch of four 1024³
//!   products becomes a loop over the batch of tagged matmuls on slices,
//!   a batch of 1000³ products stays a batch matmul; by snapshot and by
//!   counts;
//! - products that take the packed schedule with every remainder (M, N and
//!   K no block divides, so A and B are padded and the last N block is
//!   partial) are too large for the interpreter; they are checked against
//!   values known in closed form instead: with B = u·vᵀ (small integers),
//!   C = (A·u)·vᵀ, every partial sum an integer below 2²⁴, so f32 results
//!   are exact whatever the summation order; plain, bias + relu, b
//!   transposed, s32, on one and two threads;
//! - a batch of 1024³ products agrees with the interpreter (unbatched and
//!   packed), on one and two threads.

use crate::harness::{EdgeSet, before_and_after, differential_all, function_text};
use tensorc::{CompileOptions, DType, Scalar, Tensor, TensorType};

/// A function of one tensor-level `linalg.matmul`; `attrs` follows the op
/// name (its `indexing_maps` or tags, with a leading space; may be empty).
pub(crate) fn matmul(name: &str, m: u64, k: u64, n: u64, elem: &str, attrs: &str) -> String {
    format!(
        r#"  func.func @{name}(%a: tensor<{m}x{k}x{elem}>, %b: tensor<{k}x{n}x{elem}>, %c: tensor<{m}x{n}x{elem}>) -> tensor<{m}x{n}x{elem}> {{
    %r = linalg.matmul{attrs} ins(%a, %b : tensor<{m}x{k}x{elem}>, tensor<{k}x{n}x{elem}>) outs(%c : tensor<{m}x{n}x{elem}>) -> tensor<{m}x{n}x{elem}>
    return %r : tensor<{m}x{n}x{elem}>
  }}
"#
    )
}

fn batch(name: &str, b: u64, s: u64) -> String {
    batch_with(name, b, s, false)
}

/// A batch matmul; with `filled`, its C is a zero fill, as the frontend
/// writes `dot`, instead of an argument.
fn batch_with(name: &str, b: u64, s: u64, filled: bool) -> String {
    let t = format!("tensor<{b}x{s}x{s}xf32>");
    let (c_arg, c_def) = if filled {
        (
            String::new(),
            format!(
                "    %z = arith.constant 0.0 : f32\n    %e = tensor.empty() : {t}\n    %c = linalg.fill ins(%z : f32) outs(%e : {t}) -> {t}\n"
            ),
        )
    } else {
        (format!(", %c: {t}"), String::new())
    };
    format!(
        "  func.func @{name}(%a: {t}, %b: {t}{c_arg}) -> {t} {{\n{c_def}    %r = linalg.batch_matmul ins(%a, %b : {t}, {t}) outs(%c : {t}) -> {t}\n    return %r : {t}\n  }}\n"
    )
}

#[test]
fn pack_mark_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::pack_mark;
    tensorc_mlir::register_external_pass(pack_mark::NAME, pack_mark::create);
    let transposed = " indexing_maps = [affine_map<(d0, d1, d2) -> (d2, d0)>, affine_map<(d0, d1, d2) -> (d2, d1)>, affine_map<(d0, d1, d2) -> (d0, d1)>]";
    let module = format!(
        "module {{\n{}{}{}{}{}{}{}{}{}{}{}{}}}\n",
        matmul("conflicting_rows", 1024, 1024, 1024, "f32", ""),
        matmul("large_b", 1000, 2000, 1990, "f32", ""),
        matmul("large_b_split_m", 1024, 1600, 2000, "f32", ""),
        matmul("large_b_split_m_odd", 1032, 2000, 1990, "f32", ""),
        matmul("fits_unpacked", 1000, 1000, 1000, "f32", ""),
        matmul("small", 256, 256, 256, "f32", ""),
        matmul("f64", 1024, 1024, 1024, "f64", ""),
        matmul("transposed_a", 1024, 1024, 1024, "f32", transposed),
        batch("batch_conflicting", 4, 1024),
        batch("batch_fits_unpacked", 2, 1000),
        batch("batch_large_unpacked", 2, 1500),
        batch_with("batch_filled", 3, 1024, true),
    );
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, &module, pack_mark::NAME);
    // 1024 columns: the threads split N in two chunks of 32 panels
    // (`PackedMatmul::n_chunk`); 2000 columns (125 panels) cannot be split
    // evenly, so its threads split A panels (no chunk tag).
    let f = function_text(&after, "conflicting_rows");
    assert!(
        f.contains("linalg.matmul {tensorc.pack, tensorc.pack_n32}"),
        "{f}"
    );
    // ... and 1000 rows (125 panels) cannot be halved; 1024 rows (128) can,
    // so there the threads split M (`PackedMatmul::splits_m`).
    let f = function_text(&after, "large_b");
    assert!(f.contains("linalg.matmul {tensorc.pack}"), "{f}");
    let f = function_text(&after, "large_b_split_m");
    assert!(f.contains("linalg.matmul {tensorc.pack, tensorc.pack_m}"), "{f}");
    // 129 panels: chunks of 65 and 64.
    let f = function_text(&after, "large_b_split_m_odd");
    assert!(f.contains("linalg.matmul {tensorc.pack, tensorc.pack_m}"), "{f}");
    // 1000³ stays unpacked, cut into N blocks of 128 columns (B, 4 MB,
    // exceeds L2; `n_block`).
    let f = function_text(&after, "fits_unpacked");
    assert!(f.contains("linalg.matmul {tensorc.nblock128}"), "{f}");
    // f64 1024³: K over 720, so 512-column N blocks cut into K blocks of
    // 128 rows (`k_block`), and no zero-init mark (its C is read back by
    // every K block but the first).
    let f = function_text(&after, "f64");
    assert!(f.contains("linalg.matmul {tensorc.kblock128, tensorc.nblock512}"), "{f}");
    assert!(!f.contains("tensorc.zero_init"), "{f}");
    for name in [
        "small",
        "transposed_a",
        "batch_fits_unpacked",
    ] {
        assert_eq!(
            function_text(&before, name),
            function_text(&after, name),
            "@{name} changed"
        );
    }
    // 1500³ products are not packed, but their B (9 MB) is too large for
    // the batch schedule: a loop of plain matmuls (no N blocks: K > 1440).
    let b = function_text(&after, "batch_large_unpacked");
    assert!(!b.contains("linalg.batch_matmul"), "{b}");
    assert!(b.contains("linalg.matmul ins("), "{b}");
    let b = function_text(&after, "batch_conflicting");
    assert!(!b.contains("linalg.batch_matmul"), "{b}");
    assert!(
        b.contains("scf.for %arg3 = %c0 to %c4 step %c1 iter_args(%arg4 = %arg2)"),
        "{b}"
    );
    assert_eq!(b.matches("tensor.extract_slice").count(), 3, "{b}");
    assert!(
        b.contains("linalg.matmul {tensorc.pack, tensorc.pack_n32} ins(%extracted_slice, %extracted_slice_0 : tensor<1024x1024xf32>, tensor<1024x1024xf32>)"),
        "{b}"
    );
    assert!(b.contains("tensor.insert_slice"), "{b}");
    // A zero C: the loop starts from the fill's destination and each
    // product fills its own slice (the whole fill is gone).
    let f = function_text(&after, "batch_filled");
    assert!(
        f.contains("iter_args(%arg3 = %0) -> (tensor<3x1024x1024xf32>)"),
        "{f}"
    );
    assert_eq!(f.matches("linalg.fill").count(), 1, "{f}");
    assert!(
        f.contains("outs(%extracted_slice_1 : tensor<1024x1024xf32>) -> tensor<1024x1024xf32>\n      %3 = linalg.matmul {tensorc.pack, tensorc.pack_n32}"),
        "{f}"
    );
    insta::assert_snapshot!(
        "pack_mark_pass",
        format!("// before\n{before}\n// after\n{after}")
    );
}

/// Whether the LLVM dialect of a product allocates the packed temporaries
/// (A's panels and B's block, at least).
fn packed(llvm: &str) -> bool {
    llvm.matches("llvm.call @_mlir_memref_to_llvm_aligned_alloc")
        .count()
        >= 2
}

/// Small integers in -2..=2 from a seed (a simple LCG: the values only need
/// to differ from each other and from the layouts' regularities).
fn small_ints(n: usize, seed: u64) -> Vec<i64> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) % 5) as i64 - 2
        })
        .collect()
}

fn tensor(dtype: DType, shape: &[usize], values: &[i64]) -> Tensor {
    let scalars: Vec<Scalar> = values
        .iter()
        .map(|&v| match dtype {
            DType::F32 => Scalar::F(v as f64),
            _ => Scalar::I(v),
        })
        .collect();
    Tensor::from_scalars(TensorType::new(dtype, shape.to_vec()), &scalars).unwrap()
}

fn as_i64(s: Scalar) -> i64 {
    match s {
        Scalar::F(f) => {
            assert_eq!(f.fract(), 0.0, "not an integer: {f}");
            f as i64
        }
        Scalar::I(i) => i,
        other => panic!("unexpected scalar {other:?}"),
    }
}

/// One known-value case: A (M×K), u (K), v (N), optional bias (N); the
/// program's operands are built from them by `operands`.
pub(crate) struct Case {
    pub(crate) name: &'static str,
    dtype: DType,
    m: usize,
    k: usize,
    n: usize,
    /// `b` stored N×K and contracted over its axis 1.
    b_transposed: bool,
    bias_relu: bool,
}

impl Case {
    pub(crate) fn source(&self) -> String {
        let t = if self.dtype == DType::F32 {
            "f32"
        } else {
            "s32"
        };
        let (m, k, n) = (self.m, self.k, self.n);
        let (bt, bc) = if self.b_transposed {
            (format!("{t}[{n}][{k}]"), 1)
        } else {
            (format!("{t}[{k}][{n}]"), 0)
        };
        if self.bias_relu {
            format!(
                "def main(a: {t}[{m}][{k}], b: {bt}, bias: {t}[{n}]) -> {t}[{m}][{n}] {{\n  h = dot a, [1], [], b, [{bc}], []\n  z = add h, bias\n  y = max z, 0\n  return y\n}}\n"
            )
        } else {
            format!(
                "def main(a: {t}[{m}][{k}], b: {bt}) -> {t}[{m}][{n}] {{\n  c = dot a, [1], [], b, [{bc}], []\n  return c\n}}\n"
            )
        }
    }

    /// Compiles and runs the case on the current thread count.
    pub(crate) fn check(&self) -> Result<(), String> {
        let (m, k, n) = (self.m, self.k, self.n);
        let a = small_ints(m * k, 1);
        let u = small_ints(k, 2);
        let v = small_ints(n, 3);
        let bias = small_ints(n, 4);
        let b: Vec<i64> = if self.b_transposed {
            (0..n * k).map(|i| v[i / k] * u[i % k]).collect()
        } else {
            (0..k * n).map(|i| u[i / n] * v[i % n]).collect()
        };
        let b_shape = if self.b_transposed { [n, k] } else { [k, n] };
        let mut inputs = vec![
            tensor(self.dtype, &[m, k], &a),
            tensor(self.dtype, &b_shape, &b),
        ];
        if self.bias_relu {
            inputs.push(tensor(self.dtype, &[n], &bias));
        }
        let au: Vec<i64> = (0..m)
            .map(|i| (0..k).map(|j| a[i * k + j] * u[j]).sum())
            .collect();
        let program = tensorc::compile_str(
            &format!("{}.nxir", self.name),
            &self.source(),
            &CompileOptions::default(),
        )
        .map_err(|e| e.render())?;
        let got = program
            .entry(None)
            .and_then(|f| f.call(&inputs))
            .map_err(|e| e.render())?;
        for i in 0..m {
            for j in 0..n {
                let mut want = au[i] * v[j];
                if self.bias_relu {
                    want = (want + bias[j]).max(0);
                }
                let have = as_i64(got[0].get(i * n + j));
                if have != want {
                    return Err(format!("{}: [{i}][{j}] is {have}, want {want}", self.name));
                }
            }
        }
        Ok(())
    }
}

/// A known-value case (see `Case`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn case(name: &'static str, dtype: DType, m: usize, k: usize, n: usize, b_transposed: bool, bias_relu: bool) -> Case {
    Case { name, dtype, m, k, n, b_transposed, bias_relu }
}

/// Whether `c` is packed by the AVX-512 pipeline, whose rule these cases
/// pin whatever the host (AVX2's packs all of them,
/// `vector_isa::the_tiles_of_each_isa`): A's panels and B's blocks are
/// temporaries (the unpacked schedule reads the operands where they are).
fn is_packed(c: &Case) -> bool {
    packed(&crate::harness::avx512_llvm_dialect("c.nxir", &c.source()))
}

/// Asserts that every case of `packs` is packed and none of `stays`, then
/// checks all of them against their known values on `threads`.
fn check_packing(packs: &[Case], stays: &[Case], threads: &[usize]) {
    for c in packs {
        assert!(is_packed(c), "{}: not packed", c.name);
    }
    for c in stays {
        assert!(!is_packed(c), "{}: packed", c.name);
    }
    let failures = crate::threads::on_threads(threads, || {
        packs.iter().chain(stays).filter_map(|c| c.check().err()).collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Packed products with every remainder: B holds more than 12 MiB, so it is
/// packed although its rows are not a multiple of 2 KiB apart; M = 130 pads A's last
/// panel, N = 1990 = 3·512 + 454 leaves a partial last N block whose last
/// panel is padded, K = 2000 = 15·128 + 80 a partial K block.
#[test]
fn odd_packed_products_match_known_values() {
    let cases = [
        case("odd_f32", DType::F32, 130, 2000, 1990, false, false),
        case("odd_bias_relu", DType::F32, 70, 2000, 1990, false, true),
        case("odd_b_transposed", DType::F32, 77, 2000, 1990, true, false),
        case("odd_s32", DType::S32, 66, 1999, 2001, false, false),
    ];
    check_packing(&cases, &[], &[1, 2]);
}

/// A packed product whose C is padded (130×1990 computed as 136×2000) keeps
/// its unpack; the loop over the unpack's rows of 8-row tiles runs on the
/// thread pool (`tensorc.parallel_for`), each iteration reading packed C
/// tiles and writing its own rows of the result, with no temporary.
/// (`odd_packed_products_match_known_values` runs such products on one and
/// two threads.)
#[test]
fn padded_unpacks_run_on_the_pool() {
    let source = case("unpack", DType::F32, 130, 2000, 1990, false, false).source();
    let opt = tensorc::emit("unpack.nxir", &source, tensorc::Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
    let ir = crate::harness::cpu_ir_upto("unpack.nxir", &source, &opt, "tensorc-merge-chunks,");
    let start = ir.find("scf.for %arg3 = %c0 to %c128 step %c8 {").unwrap_or_else(|| panic!("no unpack loop: {ir}"));
    let end = start + ir[start..].find("\n    }").unwrap_or_else(|| panic!("{ir}"));
    let unpack = &ir[start..end];
    assert!(ir[end..].starts_with("\n    } {tensorc.parallel_for}"), "not parallel: {ir}");
    assert!(unpack.contains(": memref<17x125x8x16xf32>, vector<8x16xf32>"), "{unpack}");
    assert!(unpack.contains("memref<130x1990xf32>"), "{unpack}");
    assert!(!unpack.contains("memref.alloc"), "{unpack}");
}

/// B's rows a few bytes off a multiple of 4 KiB fall into a few cache sets
/// like rows exactly 4 KiB apart (1000×1000·1000×1023: 202 GFLOPS
/// unpacked, 244 packed): packed, with a padded last panel; 1028 columns
/// (16 bytes off) are not. These have fewer than 256 rows: with more, and
/// N blocks, the unpacked schedule reads B through a repitched copy
/// instead (`repitch_b.rs`).
#[test]
fn rows_near_4_kib_apart_are_packed() {
    let near = [
        case("near_1023", DType::F32, 70, 300, 1023, false, false),
        case("near_1025_bt", DType::F32, 77, 300, 1025, true, false),
        case("near_2047_bias_relu", DType::F32, 66, 260, 2047, false, true),
        case("near_1022_s32", DType::S32, 65, 333, 1022, false, false),
    ];
    check_packing(&near, &[case("far_1028", DType::F32, 70, 300, 1028, false, false)], &[1, 2]);
}

/// At least 2000 columns and a B over 7 MiB: packed (3000×1000·1000×3000
/// ran 20 % faster packed); 1999 columns with the same B stay unpacked.
#[test]
fn wide_products_with_a_large_b_are_packed() {
    let wide = [
        case("wide_2100", DType::F32, 66, 900, 2100, false, false),
        case("wide_2003_bias_relu", DType::F32, 70, 940, 2003, false, true),
    ];
    check_packing(&wide, &[case("narrow_1999", DType::F32, 66, 945, 1999, false, false)], &[1, 2]);
}

/// An odd number of A panels splits M in two chunks one panel apart: 129
/// and 131 panels (N = 1025 is no multiple of 16, so N does not split; its rows,
/// 4100 bytes apart, are packed: K over 1440 gives the unpacked schedule no
/// N blocks, so B is not repitched instead), with an epilogue, transposed
/// B, s32.
#[test]
fn odd_a_panels_split_m_in_chunks_one_panel_apart() {
    let cases = [
        case("odd_m_1032", DType::F32, 1032, 1500, 1025, false, false),
        case("odd_m_1047_bias_relu", DType::F32, 1047, 1480, 1025, false, true),
        case("odd_m_1041_bt_s32", DType::S32, 1041, 1457, 1025, true, false),
    ];
    check_packing(&cases, &[], &[1, 2, 3]);
}

#[test]
fn batches_of_large_products_agree_with_the_interpreter() {
    let programs = [
        (
            "batch_1024",
            "def main(a: f32[2][70][1024], b: f32[2][1024][1024]) -> f32[2][70][1024] {\n  c = dot a, [2], [0], b, [1], [0]\n  return c\n}\n"
                .to_owned(),
            5e-5,
        ),
        // No padding: each product computes in its slice of the result
        // (`tensorc-unpack-in-place`), filled per product.
        (
            "batch_in_place",
            "def main(a: f32[3][128][512], b: f32[3][512][1024]) -> f32[3][128][1024] {\n  c = dot a, [2], [0], b, [1], [0]\n  return c\n}\n"
                .to_owned(),
            5e-5,
        ),
        // Unpacked, B over 4 MiB: unbatched into N-blocked matmuls (f32),
        // K-blocked ones (f64, K over 720).
        (
            "batch_unpacked_f32",
            "def main(a: f32[2][20][1100], b: f32[2][1100][1000]) -> f32[2][20][1000] {\n  c = dot a, [2], [0], b, [1], [0]\n  return c\n}\n"
                .to_owned(),
            5e-5,
        ),
        (
            "batch_unpacked_f64",
            "def main(a: f64[2][17][800], b: f64[2][800][700]) -> f64[2][17][700] {\n  c = dot a, [2], [0], b, [1], [0]\n  return c\n}\n"
                .to_owned(),
            1e-12,
        ),
    ];
    let llvm = tensorc::emit("b.nxir", &programs[0].1, tensorc::Stage::LlvmDialect)
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(packed(&llvm), "not packed:\n{llvm}");
    let failures =
        crate::threads::on_threads(&[1, 2], || differential_all(&programs, EdgeSet::Mild, 6));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
