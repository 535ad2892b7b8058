//! `tensorc-bf16-stores` (`passes/tensorc-passes/src/bf16_stores.rs`): a
//! store of an integer vector bitcast to bf16 stores the integer vector.
//!
//! - the pass before and after on LLVM-dialect IR: a plain and a masked
//!   store of `vector<9xi16>` bitcast to `vector<9xbf16>` store the i16
//!   vector and the bitcasts go; a bitcast with another use stays for it;
//!   stores of bitcasts to f16 and of bf16 values not made by a bitcast are
//!   left alone;
//! - the generated program that aborted LLVM (seed 44080, shrunk:
//!   `tests/cases/regressions/abort_bf16_bitcast_9.nxir`) compiles to
//!   assembly in a subprocess (before the pass: exit 1 with LLVM's "soft
//!   promote" error, which aborts an in-process caller);
//! - `bitcast` from u16 and s16 to bf16 of every length from 1 to 40,
//!   returned and also used by an `add`, against the interpreter on the
//!   CPU, on random and edge inputs.

use crate::harness::{before_and_after, every_length_agrees, function_text};

const STORES: &str = r#"
module {
  llvm.func @rewritten(%x: vector<9xi16>, %y: vector<9xi16>, %p: !llvm.ptr, %m: vector<9xi1>) {
    %0 = llvm.bitcast %x : vector<9xi16> to vector<9xbf16>
    llvm.store %0, %p {alignment = 2 : i64} : vector<9xbf16>, !llvm.ptr
    %1 = llvm.bitcast %y : vector<9xi16> to vector<9xbf16>
    llvm.intr.masked.store %1, %p, %m {alignment = 2 : i32} : vector<9xbf16>, vector<9xi1> into !llvm.ptr
    llvm.return
  }
  llvm.func @shared(%x: vector<9xi16>, %p: !llvm.ptr) -> vector<9xbf16> {
    %0 = llvm.bitcast %x : vector<9xi16> to vector<9xbf16>
    llvm.store %0, %p {alignment = 2 : i64} : vector<9xbf16>, !llvm.ptr
    llvm.return %0 : vector<9xbf16>
  }
  llvm.func @left_alone(%x: vector<9xi16>, %b: vector<9xbf16>, %p: !llvm.ptr) {
    %0 = llvm.bitcast %x : vector<9xi16> to vector<9xf16>
    llvm.store %0, %p {alignment = 2 : i64} : vector<9xf16>, !llvm.ptr
    llvm.store %b, %p {alignment = 2 : i64} : vector<9xbf16>, !llvm.ptr
    llvm.return
  }
}
"#;

#[test]
fn bf16_stores_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::bf16_stores;
    tensorc_mlir::register_external_pass(bf16_stores::NAME, bf16_stores::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, STORES, bf16_stores::NAME);
    let rewritten = function_text(&after, "rewritten");
    assert!(!rewritten.contains("llvm.bitcast"), "{rewritten}");
    assert!(rewritten.contains("llvm.store %arg0, %arg2 {alignment = 2 : i64} : vector<9xi16>, !llvm.ptr"), "{rewritten}");
    assert!(rewritten.contains("llvm.intr.masked.store %arg1, %arg2, %arg3"), "{rewritten}");
    assert!(rewritten.contains("vector<9xi16>, vector<9xi1> into !llvm.ptr"), "{rewritten}");
    let shared = function_text(&after, "shared");
    assert!(shared.contains("llvm.store %arg0, %arg1"), "{shared}");
    assert!(shared.contains("llvm.bitcast %arg0 : vector<9xi16> to vector<9xbf16>"), "{shared}");
    assert_eq!(function_text(&before, "left_alone"), function_text(&after, "left_alone"));
    insta::assert_snapshot!("bf16_stores_pass", format!("// before\n{before}\n// after\n{after}"));
}

#[test]
fn the_aborting_program_compiles_in_a_subprocess() {
    crate::harness::compiles_to_asm_in_a_subprocess("regressions/abort_bf16_bitcast_9.nxir");
}

#[test]
fn bitcasts_to_bf16_of_every_length_agree_with_the_interpreter() {
    for from in ["u16", "s16"] {
        let failures = every_length_agrees(&format!("bitcast_{from}_bf16"), 1..=40, |n| {
            format!(
                "def main(p: {from}[{n}]) -> {{bf16[{n}], bf16[{n}]}} {{\n  a = bitcast p  bf16[{n}]\n  b = add a, a\n  return {{a, b}}\n}}\n"
            )
        });
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
