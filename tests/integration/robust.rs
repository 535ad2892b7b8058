//! Robustness: the front end must answer every input with a result or a
//! diagnostic, never a panic (spec §6 "never panics or aborts on any input").
//! Every prefix of every case file is a realistic half-typed program.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::harness::cases_dir;

/// All case files, as (relative path, text), sorted.
fn all_cases() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for dir in ["ops", "errors"] {
        let Ok(rd) = std::fs::read_dir(cases_dir().join(dir)) else {
            continue;
        };
        for entry in rd.flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "nxir") {
                let text = std::fs::read_to_string(&p).expect("case is UTF-8");
                out.push((
                    format!("{dir}/{}", p.file_name().unwrap().to_string_lossy()),
                    text,
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_prefix_gives_a_result_or_a_diagnostic() {
    // Panics are caught below; keep the default hook from printing thousands of them.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut panics = Vec::new();
    let mut tried = 0usize;
    for (rel, text) in all_cases() {
        for cut in (0..=text.len()).filter(|&i| text.is_char_boundary(i)) {
            tried += 1;
            let prefix = &text[..cut];
            let r = catch_unwind(AssertUnwindSafe(|| {
                match tensorc::emit(&rel, prefix, tensorc::Stage::Nxir) {
                    Ok(_) => {}
                    Err(e) => {
                        // Rendering must not panic either, and must say something.
                        assert!(!e.render().is_empty());
                    }
                }
            }));
            if r.is_err() {
                panics.push(format!(
                    "{rel}: prefix of {cut} bytes: {:?}",
                    prefix.lines().last().unwrap_or("")
                ));
                break; // one report per file is enough
            }
        }
    }
    std::panic::set_hook(hook);
    assert!(
        tried > 10_000,
        "only {tried} prefixes: are the case files missing?"
    );
    assert!(
        panics.is_empty(),
        "the front end panicked on:\n{}",
        panics.join("\n")
    );
}
