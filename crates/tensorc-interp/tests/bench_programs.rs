//! Timing of the interpreter on the shared benchmark programs (ignored by
//! default: run with `cargo test -p tensorc-interp --test bench_programs -- --ignored --nocapture`).
//!
//! The interpreter is the oracle for benchmark-sized programs too, so it must
//! finish them in seconds to a minute; this prints how long each one takes.

use std::time::Instant;

use tensorc_ir::SourceFile;
use tensorc_ir::check::compile;
use tensorc_ir::random::random_tensor;

#[test]
#[ignore = "slow; prints timings"]
fn bench_programs_finish() {
    let dir = std::env::var("BENCH_DIR").unwrap_or_else(|_| "/work/shared/bench".into());
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths.iter().filter(|p| p.to_string_lossy().contains(&only)) {
        let file = SourceFile::new(p.display().to_string(), std::fs::read_to_string(p).unwrap());
        let Ok(module) = compile(&file) else {
            println!("{}: does not compile", p.display());
            continue;
        };
        let f = &module.functions[0];
        let inputs: Vec<_> = f.params.iter().enumerate().map(|(i, (_, t))| random_tensor(t, 1, i as u64)).collect();
        let t = Instant::now();
        let r = tensorc_interp::run(&module, &f.name, &inputs);
        println!("{}: {:?} in {:.2?}", p.display(), r.as_ref().map(|v| v.len()).map_err(|e| e.to_string()), t.elapsed());
    }
}
