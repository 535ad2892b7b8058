//! `tensorc-running-max` (`passes/tensorc-passes/src/running_max.rs`): a
//! loop's running maximum or minimum as a compare-select, with a NaN
//! tracker carried beside it and applied after the loop.
//!
//! - the pass before and after: an f32 vector maximum and a scalar f64
//!   minimum in one loop get one tracker each — the f32 one the greatest
//!   magnitude bits seen (`maxui` of `bits & 0x7fffffff`, from the initial
//!   value's), the f64 one a mask (initially `uno(init, init)`) — the
//!   compare-select in the loop and `select(NaN seen, NaN, acc)` after it
//!   (for f32: magnitude bits above infinity's); left alone: an
//!   accumulator used twice in the body, an integer maximum, a maximum
//!   whose result is used beside the yield; by snapshot and counts;
//! - W5 (softmax) in the LLVM dialect: its row maximum loop carries a
//!   `vector<64xi32>` of magnitude bits;
//! - row maxima and minima of every float type and several lengths, and
//!   softmax, against the interpreter with NaN and infinity inputs, one and
//!   two threads.

use crate::harness::{EdgeSet, before_and_after, differential_all, function_text};

const LOOPS: &str = r#"module {
  func.func @both(%m: memref<64x16xf32>, %v: memref<64xf64>, %out: memref<16xf32>, %o2: memref<f64>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    %ninf = arith.constant dense<0xFF800000> : vector<16xf32>
    %pinf = arith.constant 0x7FF0000000000000 : f64
    %p = ub.poison : f32
    %r:2 = scf.for %i = %c0 to %c64 step %c1 iter_args(%acc = %ninf, %lo = %pinf) -> (vector<16xf32>, f64) {
      %x = vector.transfer_read %m[%i, %c0], %p {in_bounds = [true]} : memref<64x16xf32>, vector<16xf32>
      %y = memref.load %v[%i] : memref<64xf64>
      %a = arith.maximumf %acc, %x : vector<16xf32>
      %b = arith.minimumf %y, %lo : f64
      scf.yield %a, %b : vector<16xf32>, f64
    }
    vector.transfer_write %r#0, %out[%c0] {in_bounds = [true]} : vector<16xf32>, memref<16xf32>
    memref.store %r#1, %o2[] : memref<f64>
    return
  }
  func.func @used_twice(%m: memref<64x16xf32>, %out: memref<16xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    %ninf = arith.constant dense<0xFF800000> : vector<16xf32>
    %p = ub.poison : f32
    %r = scf.for %i = %c0 to %c64 step %c1 iter_args(%acc = %ninf) -> (vector<16xf32>) {
      %x = vector.transfer_read %m[%i, %c0], %p {in_bounds = [true]} : memref<64x16xf32>, vector<16xf32>
      %a = arith.maximumf %acc, %x : vector<16xf32>
      %s = arith.addf %a, %acc : vector<16xf32>
      scf.yield %s : vector<16xf32>
    }
    vector.transfer_write %r, %out[%c0] {in_bounds = [true]} : vector<16xf32>, memref<16xf32>
    return
  }
  func.func @integer(%v: memref<64xi32>, %o: memref<i32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    %min = arith.constant -2147483648 : i32
    %r = scf.for %i = %c0 to %c64 step %c1 iter_args(%acc = %min) -> (i32) {
      %x = memref.load %v[%i] : memref<64xi32>
      %a = arith.maxsi %acc, %x : i32
      scf.yield %a : i32
    }
    memref.store %r, %o[] : memref<i32>
    return
  }
  func.func @result_used(%v: memref<64xf32>, %o: memref<64xf32>, %s: memref<f32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    %ninf = arith.constant 0xFF800000 : f32
    %r = scf.for %i = %c0 to %c64 step %c1 iter_args(%acc = %ninf) -> (f32) {
      %x = memref.load %v[%i] : memref<64xf32>
      %a = arith.maximumf %acc, %x : f32
      memref.store %a, %o[%i] : memref<64xf32>
      scf.yield %a : f32
    }
    memref.store %r, %s[] : memref<f32>
    return
  }
}
"#;

#[test]
fn running_max_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::running_max;
    tensorc_mlir::register_external_pass(running_max::NAME, running_max::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, LOOPS, running_max::NAME);
    let both = function_text(&after, "both");
    assert!(!both.contains("arith.maximumf") && !both.contains("arith.minimumf"), "{both}");
    // Two trackers carried: the f32 vector's magnitude bits (vector<16xi32>,
    // from the initial value's) and the f64's mask (i1, uno(init, init)).
    assert!(both.contains("-> (vector<16xf32>, f64, vector<16xi32>, i1)"), "{both}");
    assert_eq!(both.matches("arith.cmpf uno").count(), 2, "{both}");
    assert_eq!(both.matches("arith.bitcast").count(), 2, "{both}");
    assert_eq!(both.matches("arith.andi").count(), 2, "{both}");
    assert!(both.contains("dense<2147483647> : vector<16xi32>"), "{both}");
    assert_eq!(both.matches("arith.maxui").count(), 1, "{both}");
    assert_eq!(both.matches("arith.cmpf ogt").count(), 1, "{both}");
    assert_eq!(both.matches("arith.cmpf olt").count(), 1, "{both}");
    assert_eq!(both.matches("arith.ori").count(), 1, "{both}");
    // After the loop: the f32 lanes whose magnitude bits pass infinity's.
    assert_eq!(both.matches("arith.cmpi ugt").count(), 1, "{both}");
    assert!(both.contains("dense<2139095040> : vector<16xi32>"), "{both}");
    // After the loop: NaN where a NaN was seen, used by the two writes.
    assert!(both.contains("0x7FC00000") && both.contains("0x7FF8000000000000"), "{both}");
    assert_eq!(both.matches("arith.select").count(), 4, "{both}");
    for left in ["used_twice", "integer", "result_used"] {
        assert_eq!(function_text(&after, left), function_text(&before, left), "{left} changed");
    }
    insta::assert_snapshot!("running_max_pass", format!("// before\n{before}\n// after\n{after}"));
}

/// W5's row maximum in the LLVM dialect carries 64 lanes of magnitude bits
/// (its loop reduces 64 lanes a step).
#[test]
fn softmax_row_maximum_carries_a_nan_tracker() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/w05_softmax.nxir");
    let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let llvm = tensorc::emit("w5.nxir", &source, tensorc::Stage::LlvmDialect).unwrap_or_else(|e| panic!("{}", e.render()));
    // `arith-expand` writes the `maxui` as a compare and select (x86 makes
    // them one `vpmaxud`).
    let tracked = llvm.lines().filter(|l| l.contains("llvm.icmp \"ugt\"") && l.contains("vector<64xi32>")).count();
    assert!(tracked >= 1 && llvm.contains("dense<2147483647> : vector<64xi32>"), "{llvm}");
    let left = llvm.lines().filter(|l| l.contains("llvm.fcmp \"ugt\"") && l.contains("vector<64xf32>")).count();
    assert_eq!(left, 0, "a NaN-checking 64-lane maximum is left:\n{llvm}");
}

/// Row maxima and minima (every float type, rows of 1, 17, 64, 1000 and
/// 1024) and softmax against the interpreter, with NaN and infinities
/// among the edge inputs, on one and two threads.
#[test]
fn running_maxima_agree_with_the_interpreter() {
    let mut programs = Vec::new();
    for ty in ["f32", "f64", "f16", "bf16"] {
        for n in [1, 17, 64, 1000, 1024] {
            for op in ["reduce_max", "reduce_min"] {
                programs.push((
                    format!("{op}_{ty}_{n}"),
                    format!("def main(x: {ty}[9][{n}]) -> {ty}[9] {{\n  m = {op} x, axes: [1]\n  return m\n}}\n"),
                    0.0,
                ));
            }
        }
    }
    programs.push((
        "softmax".to_owned(),
        "def main(x: f32[33][1024]) -> f32[33][1024] {\n  m = reduce_max x, axes: [1], keep_axes: true\n  d = subtract x, m\n  e = exp d\n  s = sum e, axes: [1], keep_axes: true\n  y = divide e, s\n  return y\n}\n".to_owned(),
        1e-6,
    ));
    let programs: Vec<(&str, String, f64)> = programs.iter().map(|(n, s, t)| (n.as_str(), s.clone(), *t)).collect();
    let failures = crate::threads::on_threads(&[1, 2], || {
        let mut f = differential_all(&programs, EdgeSet::Edge, 3);
        f.extend(differential_all(&programs, EdgeSet::None, 4));
        f
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
