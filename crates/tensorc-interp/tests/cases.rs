//! Every `.nxir` case of the shared test corpus (`tests/cases/ops`) that
//! type-checks must run in the interpreter without an internal error.
//!
//! The corpus is what the back ends are compared against the interpreter on,
//! so an oracle that fails on any of it would silently shrink that comparison.
//! `Unsupported` is allowed (an op the interpreter does not know yet); an
//! internal error is an interpreter or checker bug.

use tensorc_interp::{InterpError, run};
use tensorc_ir::SourceFile;
use tensorc_ir::check::compile;
use tensorc_ir::random::random_tensor;

#[test]
fn every_checked_case_runs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/cases/ops");
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.retain(|p| p.extension().is_some_and(|x| x == "nxir"));
    paths.sort();
    let mut failures = Vec::new();
    let mut ran = 0;
    for p in &paths {
        let file = SourceFile::new(p.display().to_string(), std::fs::read_to_string(p).unwrap());
        let Ok(module) = compile(&file) else { continue };
        for f in &module.functions {
            let inputs: Vec<_> = f.params.iter().enumerate().map(|(i, (_, t))| random_tensor(t, 7, i as u64)).collect();
            match run(&module, &f.name, &inputs) {
                Ok(outs) => {
                    ran += 1;
                    let want = f.flat_results();
                    let got: Vec<_> = outs.iter().map(|t| t.ty().clone()).collect();
                    if got != want {
                        failures.push(format!("{}:{}: results {got:?}, signature {want:?}", p.display(), f.name));
                    }
                }
                Err(InterpError::Unsupported(_)) => {}
                Err(e) => failures.push(format!("{}:{}: {e}", p.display(), f.name)),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{ran} functions ran");
}
