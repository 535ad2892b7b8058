//! `tensorc-row-skew` (`passes/tensorc-passes/src/row_skew.rs`): a row
//! loop's last pass (the division of softmax's `exp`s by their sum) runs
//! one row late, fused into the next row's pass that fills its scratch row.
//!
//! - the pass before and after on a softmax-like row loop: a second
//!   scratch buffer, the parity select, the sum carried as an iter_arg, the
//!   fused producer under `scf.if` (not in the first row), the last row's
//!   division after the loop; left alone when the row body reads the
//!   scratch row before the pass that fills it, when the last pass also
//!   reads the input, when the row body reads the buffer the last pass
//!   writes, and when the loop has one row; by snapshot and counts;
//! - W5's buffers after the pass: its row loop is skewed;
//! - softmax and row normalizations of several shapes (odd and even row
//!   counts per thread's chunk) and float types against the interpreter,
//!   with NaN and infinity inputs, on one and two threads.

use crate::harness::{EdgeSet, before_and_after, differential_all, function_text};

/// A softmax-like loop over `rows` rows of 32: `exp` into the scratch row,
/// its sum, the scratch row divided by the sum into the result. `{extra}`
/// goes into the last pass, `{body}` at the start of the row body.
fn rows_loop(name: &str, rows: usize, body: &str, extra: &str) -> String {
    format!(
        r#"  func.func @{name}(%x: memref<4x32xf32>, %y: memref<4x32xf32>) {{
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %rows = arith.constant {rows} : index
    %c16 = arith.constant 16 : index
    %c32 = arith.constant 32 : index
    %p = ub.poison : f32
    %zero = arith.constant dense<0.0> : vector<16xf32>
    %s = memref.alloc() {{alignment = 64 : i64}} : memref<32xf32>
    scf.for %i = %c0 to %rows step %c1 {{
{body}      scf.for %j = %c0 to %c32 step %c16 {{
        %v = vector.transfer_read %x[%i, %j], %p {{in_bounds = [true]}} : memref<4x32xf32>, vector<16xf32>
        %e = math.exp %v : vector<16xf32>
        vector.transfer_write %e, %s[%j] {{in_bounds = [true]}} : vector<16xf32>, memref<32xf32>
      }}
      %sum = scf.for %j = %c0 to %c32 step %c16 iter_args(%acc = %zero) -> (vector<16xf32>) {{
        %v = vector.transfer_read %s[%j], %p {{in_bounds = [true]}} : memref<32xf32>, vector<16xf32>
        %a = arith.addf %acc, %v : vector<16xf32>
        scf.yield %a : vector<16xf32>
      }}
      %t = vector.reduction <add>, %sum : vector<16xf32> into f32
      %b = vector.broadcast %t : f32 to vector<16xf32>
      %row = memref.subview %y[%i, 0] [1, 32] [1, 1] : memref<4x32xf32> to memref<1x32xf32, strided<[32, 1], offset: ?>>
      scf.for %j = %c0 to %c32 step %c16 {{
        %v = vector.transfer_read %s[%j], %p {{in_bounds = [true]}} : memref<32xf32>, vector<16xf32>
{extra}        %q = arith.divf %v, %b : vector<16xf32>
        vector.transfer_write %q, %row[%c0, %j] {{in_bounds = [true]}} : vector<16xf32>, memref<1x32xf32, strided<[32, 1], offset: ?>>
      }}
    }}
    memref.dealloc %s : memref<32xf32>
    return
  }}
"#
    )
}

#[test]
fn row_skew_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::row_skew;
    tensorc_mlir::register_external_pass(row_skew::NAME, row_skew::create);
    let module = format!(
        "module {{\n{}{}{}{}{}}}\n",
        rows_loop("softmax", 4, "", ""),
        rows_loop("read_before", 4, "      %o = memref.load %s[%c0] : memref<32xf32>\n      memref.store %o, %x[%i, %c0] : memref<4x32xf32>\n", ""),
        rows_loop("reads_input", 4, "", "        %w = vector.transfer_read %x[%i, %j], %p {in_bounds = [true]} : memref<4x32xf32>, vector<16xf32>\n"),
        rows_loop("output_read", 4, "      %o = memref.load %y[%i, %c0] : memref<4x32xf32>\n      memref.store %o, %x[%i, %c0] : memref<4x32xf32>\n", ""),
        rows_loop("one_row", 1, "", ""),
    );
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, &module, row_skew::NAME);
    let f = function_text(&after, "softmax");
    // Two scratch rows, both released; the row loop carries the sum.
    assert_eq!(f.matches("memref.alloc()").count(), 2, "{f}");
    assert_eq!(f.matches("memref.dealloc").count(), 2, "{f}");
    assert!(f.contains("iter_args(%arg3 = %cst_0) -> (vector<16xf32>)") || f.contains("-> (vector<16xf32>) {\n"), "{f}");
    assert!(f.contains("tensorc.skewed"), "{f}");
    // The division: once fused under `scf.if` in the loop, once after it
    // for the last row (row 3, reading the second buffer).
    assert_eq!(f.matches("arith.divf").count(), 2, "{f}");
    assert_eq!(f.matches("scf.if").count(), 1, "{f}");
    assert_eq!(f.matches("math.exp").count(), 2, "{f}");
    for left in ["read_before", "reads_input", "output_read", "one_row"] {
        assert_eq!(function_text(&after, left), function_text(&before, left), "{left} changed");
    }
    insta::assert_snapshot!("row_skew_pass", format!("// before\n{before}\n// after\n{after}"));
}

/// W5's row loop is skewed: the buffer-level IR right after the pass has
/// the marker and the division both in the row loop and after it.
#[test]
fn w5_divides_one_row_late() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/w05_softmax.nxir");
    let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let opt = tensorc::emit("w5.nxir", &source, tensorc::Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
    let ir = crate::harness::cpu_ir_upto("w5.nxir", &source, &opt, tensorc_passes::row_skew::NAME);
    assert_eq!(ir.matches("tensorc.skewed").count(), 1, "{ir}");
    assert_eq!(ir.matches("arith.divf").count(), 2, "{ir}");
    assert_eq!(ir.matches("memref<1x1024xf32>").count() >= 2, true, "{ir}");
}

/// Softmax and row normalizations against the interpreter: row counts
/// that split into odd and even chunks per thread, every float type, NaN
/// and infinities among the edge inputs, one and two threads.
#[test]
fn skewed_rows_agree_with_the_interpreter() {
    let softmax = |ty: &str, rows: usize, n: usize| {
        format!(
            "def main(x: {ty}[{rows}][{n}]) -> {ty}[{rows}][{n}] {{\n  m = reduce_max x, axes: [1], keep_axes: true\n  d = subtract x, m\n  e = exp d\n  s = sum e, axes: [1], keep_axes: true\n  y = divide e, s\n  return y\n}}\n"
        )
    };
    let normalize = |rows: usize, n: usize| {
        format!(
            "def main(x: f32[{rows}][{n}]) -> f32[{rows}][{n}] {{\n  a = abs x\n  e = add a, 1.0\n  s = sum e, axes: [1], keep_axes: true\n  y = divide e, s\n  return y\n}}\n"
        )
    };
    let mut programs = Vec::new();
    for (rows, n) in [(2, 1024), (3, 1024), (65, 1024), (130, 512), (7, 1000), (33, 64), (5, 17)] {
        programs.push((format!("softmax_f32_{rows}x{n}"), softmax("f32", rows, n), 1e-6));
        programs.push((format!("normalize_{rows}x{n}"), normalize(rows, n), 1e-6));
    }
    for ty in ["f64", "f16", "bf16"] {
        programs.push((format!("softmax_{ty}"), softmax(ty, 66, 1024), 1e-2));
    }
    let programs: Vec<(&str, String, f64)> = programs.iter().map(|(n, s, t)| (n.as_str(), s.clone(), *t)).collect();
    let failures = crate::threads::on_threads(&[1, 2], || {
        let mut f = differential_all(&programs, EdgeSet::Edge, 3);
        f.extend(differential_all(&programs, EdgeSet::None, 4));
        f
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
