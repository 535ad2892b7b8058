//! bf16 on the Vulkan target, emulated (`tensorc_passes::vulkan_bf16`):
//! stored as its 16 bits, computed in f32, rounded back by integer round to
//! nearest even. The op cases (`vulkan.rs`) run the bf16 functions on mild
//! inputs; here the edges the emulation must get right bit for bit are
//! chosen by hand: NaN, ±inf, ±0, bf16 subnormals (the smallest, the
//! largest), f32 values exactly halfway between two bf16s (ties to even),
//! values that round up to infinity, in conversions both ways, arithmetic,
//! comparisons, math and a reduction, against the interpreter. Also: the
//! same through a `.tvk` artifact, and the pass itself (snapshot, and its
//! error on an op it cannot store as i16).

use crate::harness::{compare, compile_for};
use crate::vulkan::have_driver;
use tensorc::{DType, Scalar, Target, Tensor, TensorType};
use tensorc_mlir::{Mlir, PrintOptions};
use tensorc_passes::vulkan_bf16;

/// Exact in bf16 (and so in f32 and f64): the edge set for bf16 inputs.
fn bf16_edges() -> Vec<f64> {
    let min_sub = 2f64.powi(-133);
    let max_sub = 2f64.powi(-126) - min_sub;
    vec![
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        min_sub,
        -min_sub,
        max_sub,
        2f64.powi(-126),
        -3.0 * 2f64.powi(-130),
        1.0,
        -1.5,
        3.0,
        1.0 + 2f64.powi(-7),
        // The largest finite bf16: doubling it overflows to inf.
        (2.0 - 2f64.powi(-7)) * 2f64.powi(127),
        -0.5,
    ]
}

/// f32 inputs whose conversion to bf16 exercises the rounding: ties to
/// even (down and up), just above a tie, overflow to inf, f32 subnormals
/// that round to bf16 subnormals or to zero, NaN, infinities, zeros.
fn f32_edges() -> Vec<f64> {
    let t = |x: f64| x as f32 as f64;
    vec![
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        t(1.0 + 2f64.powi(-8)),       // tie: rounds down to 1 (even)
        t(1.0 + 3.0 * 2f64.powi(-8)), // tie: rounds up to 1 + 2^-6 (even)
        t(1.0 + 2f64.powi(-8) + 2f64.powi(-20)), // above the tie: up
        t(-(1.0 + 2f64.powi(-8))),
        f32::MAX as f64, // rounds up to inf
        t(3.3895e38),
        f32::from_bits(1) as f64,      // smallest f32 subnormal: rounds to 0
        f32::from_bits(0x8000) as f64, // tie between 0 and the smallest bf16 subnormal: 0 (even)
        f32::from_bits(0x18000) as f64, // tie between two bf16 subnormals: up to even
        f32::from_bits(0x7F_FFFF) as f64, // largest f32 subnormal: up to 2^-126
        t(0.1),
    ]
}

const PROGRAM: &str = "\
def arith(x: bf16[16], y: bf16[16]) -> {bf16[16], bf16[16], bf16[16], bf16[16], bf16[16], u8[16]} {
  a = add x, y
  s = subtract x, y
  m = multiply x, y
  d = divide x, y
  mx = max x, y
  c = less x, y
  return {a, s, m, d, mx, c}
}

def from_f32(x: f32[16]) -> bf16[16] {
  b = as_type x  bf16[16]
  return b
}

def from_f64(x: f64[16]) -> bf16[16] {
  b = as_type x  bf16[16]
  return b
}

def widen(x: bf16[16]) -> {f32[16], f64[16], s32[16]} {
  a = as_type x  f32[16]
  b = as_type x  f64[16]
  c = as_type x  s32[16]
  return {a, b, c}
}

def math(x: bf16[16]) -> {bf16[16], bf16[16], bf16[16], bf16[16]} {
  e = exp x
  q = sqrt x
  n = negate x
  k = multiply x, 0.1
  return {e, q, n, k}
}

def total(x: bf16[4][4]) -> {bf16[4], bf16[4]} {
  s = sum x, axes: [1]
  m = reduce_max x, axes: [0]
  return {s, m}
}
";

fn tensor(dtype: DType, shape: Vec<usize>, vals: &[f64]) -> Tensor {
    let data: Vec<Scalar> = vals.iter().map(|&v| Scalar::F(v)).collect();
    Tensor::from_scalars(TensorType::new(dtype, shape), &data).expect("edge tensor")
}

/// The inputs of each function: every edge, and for `arith` every edge
/// against a rotation of the edges, so each meets several partners.
fn inputs() -> Vec<(&'static str, Vec<Tensor>)> {
    let e = bf16_edges();
    let mut sets = Vec::new();
    for shift in [0usize, 1, 5, 11] {
        let y: Vec<f64> = (0..e.len()).map(|i| e[(i + shift) % e.len()]).collect();
        sets.push((
            "arith",
            vec![
                tensor(DType::BF16, vec![16], &e),
                tensor(DType::BF16, vec![16], &y),
            ],
        ));
    }
    let f = f32_edges();
    sets.push(("from_f32", vec![tensor(DType::F32, vec![16], &f)]));
    sets.push(("from_f64", vec![tensor(DType::F64, vec![16], &f)]));
    sets.push(("widen", vec![tensor(DType::BF16, vec![16], &e)]));
    sets.push(("math", vec![tensor(DType::BF16, vec![16], &e)]));
    sets.push(("total", vec![tensor(DType::BF16, vec![4, 4], &e)]));
    sets
}

fn compile(target: Target) -> tensorc::Program {
    compile_for("bf16.nxir", PROGRAM, target)
}

/// Runs every input set on `vk` and the interpreter; the differences.
fn disagreements(vk: &tensorc::Program) -> Vec<String> {
    let interp = compile(Target::Interp);
    let mut failures = Vec::new();
    for (name, ins) in inputs() {
        let want = interp
            .entry(Some(name))
            .and_then(|f| f.call(&ins))
            .unwrap_or_else(|e| panic!("{}", e.render()));
        let got = vk
            .entry(Some(name))
            .and_then(|f| f.call(&ins))
            .unwrap_or_else(|e| panic!("{name}: {}", e.render()));
        assert_eq!(got.len(), want.len(), "{name}");
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            // Exact: one f32 operation, one rounding, on both sides.
            if let Err(m) = compare(g, w, 0.0) {
                failures.push(format!("{name} result {k}: {m}"));
            } else if w.ty().dtype == DType::BF16 && (name, k) != ("arith", 4) {
                // `compare` takes -0.0 for 0.0; the bits must match too
                // (NaNs only in being NaN: their payloads may differ). Not
                // for `max` (result 4 of `arith`): the spec leaves the sign
                // of max(0.0, -0.0) open, and Vulkan's (the compare and
                // select of `arith-expand`, as for f32) is -0.0 where the
                // interpreter's is 0.0.
                let bits = |t: &Tensor| -> Vec<u16> {
                    t.bytes()
                        .chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]))
                        .collect()
                };
                let is_nan = |b: u16| b & 0x7FFF > 0x7F80;
                for (i, (gb, wb)) in bits(g).into_iter().zip(bits(w)).enumerate() {
                    if gb != wb && !(is_nan(gb) && is_nan(wb)) {
                        failures.push(format!(
                            "{name} result {k}[{i}]: bits {gb:#06x}, interpreter {wb:#06x}"
                        ));
                    }
                }
            }
        }
    }
    failures
}

#[test]
fn bf16_edges_agree_with_the_interpreter_on_vulkan() {
    if !have_driver() {
        return;
    }
    let failures = disagreements(&compile(Target::Vulkan));
    let validation = tensorc::vulkan_validation_messages();
    assert!(
        validation.is_empty(),
        "validation layer:\n{}",
        validation.join("\n")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A `.tvk` artifact with bf16 compiles with no device and runs.
#[test]
fn bf16_runs_from_a_vulkan_artifact() {
    let dir = crate::cli::scratch("tvk-bf16");
    let path = dir.join("bf16.tvk");
    tensorc::compile_vulkan_artifact("bf16.nxir", PROGRAM, &path)
        .unwrap_or_else(|e| panic!("{}", e.render()));
    if !have_driver() {
        return;
    }
    let vk = tensorc::load_vulkan_artifact(&path).unwrap_or_else(|e| panic!("{}", e.render()));
    let failures = disagreements(&vk);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What `arith-emulate-unsupported-floats` and `arith-expand` leave of bf16,
/// by hand: signatures, loads and stores, the bitcasts of the expansion,
/// constants (scalar, vector, a global's initial value), a loop-carried
/// value, a select, and an `extf` to f64.
const PASS_INPUT: &str = r#"
module {
  memref.global "private" constant @table : memref<2xbf16> = dense<[1.0, -2.0]>
  func.func @f(%a: memref<4xbf16>, %b: memref<4xvector<4xbf16>>, %o: memref<4xf64>, %c: i1) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %one = arith.constant 1.0 : bf16
    %nan = arith.constant 0x7FC1 : bf16
    %splat = arith.constant dense<-0.0> : vector<4xbf16>
    %g = memref.get_global @table : memref<2xbf16>
    %t = memref.load %g[%c0] : memref<2xbf16>
    %r = scf.for %i = %c0 to %c4 step %c1 iter_args(%acc = %one) -> (bf16) {
      %x = memref.load %a[%i] : memref<4xbf16>
      %bits = arith.bitcast %x : bf16 to i16
      %back = arith.bitcast %bits : i16 to bf16
      %s = arith.select %c, %back, %acc : bf16
      scf.yield %s : bf16
    }
    %w = arith.extf %r : bf16 to f64
    memref.store %w, %o[%c0] : memref<4xf64>
    memref.store %nan, %a[%c1] : memref<4xbf16>
    memref.store %t, %a[%c0] : memref<4xbf16>
    memref.store %splat, %b[%c0] : memref<4xvector<4xbf16>>
    return
  }
}
"#;

fn run_pass(input: &str) -> Result<String, String> {
    tensorc_mlir::register_external_pass(vulkan_bf16::NAME, vulkan_bf16::create);
    let mlir = Mlir::new();
    let mut m = mlir.parse(input, "test").unwrap_or_else(|e| panic!("{e}"));
    mlir.run_pipeline(&mut m, vulkan_bf16::NAME, "test")
        .map_err(|e| e.to_string())?;
    Ok(mlir.print(&m, PrintOptions::default()))
}

#[test]
fn vulkan_bf16_pass_stores_bf16_as_i16() {
    let after = run_pass(PASS_INPUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(!after.contains("bf16"), "{after}");
    // The NaN's payload and the sign of -0.0 survive as bits.
    assert!(after.contains("32705 : i16"), "{after}"); // 0x7FC1
    assert!(after.contains("dense<-32768> : vector<4xi16>"), "{after}"); // 0x8000
    // 1.0 and -2.0 in bf16 are 0x3F80 and 0xC000.
    assert!(
        after.contains("memref<2xi16> = dense<[16256, -16384]>"),
        "{after}"
    );
    insta::assert_snapshot!("vulkan_bf16_pass", after);
}

#[test]
fn vulkan_bf16_pass_rejects_arithmetic_left_on_bf16() {
    let input = r#"
module {
  func.func @f(%a: memref<4xbf16>) {
    %c0 = arith.constant 0 : index
    %x = memref.load %a[%c0] : memref<4xbf16>
    %y = arith.addf %x, %x : bf16
    memref.store %y, %a[%c0] : memref<4xbf16>
    return
  }
}
"#;
    let err = run_pass(input).expect_err("addf on bf16 cannot become i16");
    assert!(
        err.contains("'arith.addf' still computes on bf16 after its emulation in f32"),
        "{err}"
    );
}
