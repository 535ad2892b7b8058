//! `tensorc-scalar-transfers` (`passes/tensorc-passes/src/scalar_transfers.rs`):
//! 0-d vector transfers as scalar loads and stores.
//!
//! - the pass before and after: a 0-d read of a strided view and a 0-d write
//!   become `memref.load` + `vector.broadcast` and `vector.extract` +
//!   `memref.store`; 1-D transfers are left alone (snapshot and counts);
//! - the generated program that failed LLVM translation (a strided `slice`
//!   of u64 broadcast, seed 5293) is replayed from
//!   `tests/cases/regressions/gen_special5293.nxir` by the generated tests,
//!   and runs here against the interpreter.

use crate::harness::{EdgeSet, before_and_after, differential_all, function_text};

const TRANSFERS: &str = r#"
module {
  func.func @zero_d(%m: memref<1x2x2xi64, strided<[45, 10, 2], offset: 2>>, %o: memref<4xi64>, %i: index) {
    %c0 = arith.constant 0 : index
    %p = arith.constant 0 : i64
    %v = vector.transfer_read %m[%c0, %i, %c0], %p : memref<1x2x2xi64, strided<[45, 10, 2], offset: 2>>, vector<i64>
    vector.transfer_write %v, %o[%i] : vector<i64>, memref<4xi64>
    return
  }
  func.func @one_d(%m: memref<4x16xf32>, %i: index) {
    %c0 = arith.constant 0 : index
    %p = arith.constant 0.0 : f32
    %v = vector.transfer_read %m[%i, %c0], %p {in_bounds = [true]} : memref<4x16xf32>, vector<16xf32>
    vector.transfer_write %v, %m[%c0, %c0] {in_bounds = [true]} : vector<16xf32>, memref<4x16xf32>
    return
  }
}
"#;

#[test]
fn scalar_transfers_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::scalar_transfers;
    tensorc_mlir::register_external_pass(scalar_transfers::NAME, scalar_transfers::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, TRANSFERS, scalar_transfers::NAME);
    let zero_d = function_text(&after, "zero_d");
    assert!(!zero_d.contains("vector.transfer"), "{zero_d}");
    assert!(
        zero_d.contains("memref.load %arg0[%c0, %arg2, %c0]"),
        "{zero_d}"
    );
    assert!(zero_d.contains("memref.store"), "{zero_d}");
    assert_eq!(
        function_text(&before, "one_d"),
        function_text(&after, "one_d")
    );
    insta::assert_snapshot!(
        "scalar_transfers_pass",
        format!("// before\n{before}\n// after\n{after}")
    );
}

#[test]
fn strided_single_element_reads_agree_with_the_interpreter() {
    let programs = [
        (
            "strided_slice_broadcast_u64",
            "def main(p0: u64[2][3][5]) -> u64[1][2][2][1] {\n  v1 = slice p0, [2, 0, 2], [2, 3, 3], [3, 2, 2]\n  v2 = broadcast v1, {1, 2, 2, 1}, [0, 1, 2]\n  return v2\n}\n".to_owned(),
            0.0,
        ),
        (
            "strided_slice_broadcast_f32",
            "def main(p0: f32[4][6][7]) -> f32[3][1][1][2] {\n  v1 = slice p0, [1, 0, 1], [2, 2, 3], [2, 3, 2]\n  v2 = broadcast v1, {3, 1, 1, 2}, [1, 2, 3]\n  return v2\n}\n".to_owned(),
            0.0,
        ),
    ];
    let failures = differential_all(&programs, EdgeSet::Edge, 2);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
