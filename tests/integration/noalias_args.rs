//! `tensorc-noalias-args` (`passes/tensorc-passes/src/noalias_args.rs`):
//! the aligned buffer pointers of entry points are `noalias` in LLVM.
//!
//! - the pass before and after on LLVM-dialect IR: an entry point's two
//!   descriptors get `llvm.noalias` on their aligned pointers (merged into
//!   an argument's existing attributes), the `_mlir_ciface_` wrapper and a
//!   function without `llvm.emit_c_interface` are left alone;
//! - a compiled program with two inputs and two results: exactly its four
//!   aligned pointers are `noalias` in the LLVM IR;
//! - `reverse` (whose copy loops LLVM now vectorizes without an overlap
//!   check) over every set of axes of several shapes and element types,
//!   fused with element-wise ops, against the interpreter on one and two
//!   threads.

use crate::harness::{EdgeSet, Settings, before_and_after, differential, emit_ok, function_text};
use tensorc::Stage;

const ENTRY: &str = r#"
module {
  llvm.func @main(%a0: !llvm.ptr, %a1: !llvm.ptr, %ao: i64, %as: i64, %at: i64, %b0: !llvm.ptr, %b1: !llvm.ptr {llvm.align = 16 : i64}, %bo: i64) attributes {llvm.emit_c_interface} {
    llvm.return
  }
  llvm.func @_mlir_ciface_main(%d: !llvm.ptr, %e: !llvm.ptr) attributes {llvm.emit_c_interface} {
    llvm.return
  }
  llvm.func @helper(%p: !llvm.ptr, %q: !llvm.ptr, %o: i64) {
    llvm.return
  }
}
"#;

#[test]
fn noalias_args_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::noalias_args;
    tensorc_mlir::register_external_pass(noalias_args::NAME, noalias_args::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, ENTRY, noalias_args::NAME);
    let main = function_text(&after, "main");
    assert!(main.contains("%arg1: !llvm.ptr {llvm.noalias}"), "{main}");
    assert!(main.contains("%arg6: !llvm.ptr {llvm.align = 16 : i64, llvm.noalias}"), "{main}");
    assert_eq!(main.matches("llvm.noalias").count(), 2, "{main}");
    for f in ["_mlir_ciface_main", "helper"] {
        assert_eq!(function_text(&before, f), function_text(&after, f));
    }
    insta::assert_snapshot!("noalias_args_pass", format!("// before\n{before}\n// after\n{after}"));
}

#[test]
fn entry_points_have_noalias_buffers_in_llvm_ir() {
    let source = "def main(x: f32[4][8], y: s32[3]) -> {f32[4][8], s32[3]} {\n  a = reverse x, [0]\n  b = negate y\n  return {a, b}\n}\n";
    let ir = emit_ok("noalias.nxir", source, Stage::LlvmIr);
    let define = ir.lines().find(|l| l.starts_with("define void @main(")).unwrap_or_else(|| panic!("{ir}"));
    assert_eq!(define.matches("ptr noalias").count(), 4, "{define}");
}

/// `reverse x, axes` of type `ty` (`f32[2][3]`).
fn reverse(ty: &str, axes: &[usize]) -> String {
    let axes: Vec<String> = axes.iter().map(|a| a.to_string()).collect();
    format!("def main(x: {ty}) -> {ty} {{\n  y = reverse x, [{}]\n  return y\n}}\n", axes.join(", "))
}

#[test]
fn reverse_over_every_set_of_axes_agrees_with_the_interpreter() {
    let mut cases = Vec::new();
    for (ty, rank) in [("f32[37][5][40]", 3), ("s8[3][130][17]", 3), ("bf16[64][33]", 2), ("f64[2][3][4][5]", 4)] {
        for set in 1..1usize << rank {
            let axes: Vec<usize> = (0..rank).filter(|a| set & 1 << a != 0).collect();
            let name = format!("reverse_{}_{set}", ty.replace(['[', ']'], "_"));
            cases.push((name, reverse(ty, &axes)));
        }
    }
    // Fused with element-wise ops and a broadcast operand.
    cases.push((
        "reverse_fused".into(),
        "def main(x: f32[37][5][40], b: f32[40], c: f32[37][1][40]) -> f32[37][5][40] {\n  r = reverse x, [0, 1]\n  e = exp r\n  y = add e, b\n  z = multiply y, c\n  return z\n}\n".into(),
    ));
    let settings = Settings { tolerance: 1e-6, inputs: EdgeSet::Edge, seeds: vec![5] };
    let failures = crate::threads::on_threads(&[1, 2], || {
        cases.iter().flat_map(|(name, source)| differential(&format!("{name}.nxir"), source, &settings)).collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
