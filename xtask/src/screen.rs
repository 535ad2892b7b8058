//! `cargo xtask bench --screen`: the shared bench's kinds of workload in
//! other shapes and layouts (issue 6 says they are checked too), timed with
//! tensorc and NumPy in the same run, on one thread and on every core.
//!
//! The cases (a `.nxir` program and the NumPy expression for each) are in
//! `numpy_screen.py`, which writes the programs under `target/screen/`, times
//! each with `tensorc bench --json` and its NumPy version in its own process
//! (whose OpenBLAS thread count xtask sets), and prints one JSON line per
//! case. This file runs it for one thread and for every core, and writes
//! `target/screen.json` and the table between the screen markers of
//! `docs/benchmarks.md`.

use crate::bench::{cores, numpy_command, numpy_python, write_between};
use crate::{build_release_cli, json_number, root, target_dir};
use anyhow::{Context, Result, bail};
use std::fmt::Write as _;

const SCRIPT: &str = include_str!("numpy_screen.py");

/// Warm-up and timed runs per case and side (with three rounds: ten runs
/// in two rounds left single two-thread rows 10–20 % apart between runs).
const WARMUP: usize = 2;
const ITERS: usize = 20;

const BEGIN: &str = "<!-- xtask screen: begin -->";
const END: &str = "<!-- xtask screen: end -->";

/// One case's times (ns) on one thread and on every core.
#[derive(Debug, Default, Clone)]
struct Case {
    name: String,
    family: String,
    tensorc_1: Option<f64>,
    numpy_1: Option<f64>,
    tensorc_all: Option<f64>,
    numpy_all: Option<f64>,
    error: Option<String>,
}

/// `filters`: only the cases whose name contains one of them.
pub fn screen(filters: &[String]) -> Result<()> {
    let bin = build_release_cli()?;
    let py = numpy_python()?;
    let script = target_dir().join("bench-venv").join("numpy_screen.py");
    std::fs::write(&script, SCRIPT)
        .with_context(|| format!("cannot write {}", script.display()))?;
    let dir = target_dir().join("screen");
    let mut cases: Vec<Case> = Vec::new();
    for threads in [1, cores()] {
        let mut cmd = numpy_command(&py, &script, threads);
        cmd.arg(&bin)
            .arg(&dir)
            .arg(threads.to_string())
            .arg(WARMUP.to_string())
            .arg(ITERS.to_string())
            .args(filters);
        println!("$ {}", crate::show(&cmd));
        let out = cmd.output().context("cannot start the screening script")?;
        if !out.status.success() {
            bail!(
                "the screening script failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            println!("{line}");
            merge(&mut cases, line, threads == 1);
        }
    }
    if cases.is_empty() {
        bail!("no screening case matches {filters:?}");
    }
    let table = markdown(&cases, cores());
    println!("\n{table}");
    let json_path = target_dir().join("screen.json");
    std::fs::write(&json_path, json(&cases))
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    println!("wrote {}", json_path.display());
    if filters.is_empty() {
        let doc = root().join("docs").join("benchmarks.md");
        write_between(&doc, BEGIN, END, &table)?;
        println!("updated {}", doc.display());
    } else {
        println!("(a filtered run leaves docs/benchmarks.md alone)");
    }
    let failed: Vec<&Case> = cases.iter().filter(|c| c.error.is_some()).collect();
    if !failed.is_empty() {
        bail!("{} of {} cases failed", failed.len(), cases.len());
    }
    Ok(())
}

/// A string field of one of the script's JSON lines (no escapes in them).
fn json_string(line: &str, key: &str) -> Option<String> {
    let rest = &line[line.find(&format!("\"{key}\""))? + key.len() + 2..];
    let rest = &rest[rest.find('"')? + 1..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// Adds one JSON line of the script to `cases` (one-thread or every-core
/// times by `one_thread`).
fn merge(cases: &mut Vec<Case>, line: &str, one_thread: bool) {
    let Some(name) = json_string(line, "name") else {
        return;
    };
    let at = match cases.iter().position(|c| c.name == name) {
        Some(i) => i,
        None => {
            cases.push(Case {
                name: name.clone(),
                family: json_string(line, "family").unwrap_or_default(),
                ..Case::default()
            });
            cases.len() - 1
        }
    };
    let c = &mut cases[at];
    if let Some(e) = json_string(line, "error") {
        c.error = Some(e);
        return;
    }
    let (t, n) = (
        json_number(line, "tensorc_min_ns"),
        json_number(line, "numpy_min_ns"),
    );
    if one_thread {
        (c.tensorc_1, c.numpy_1) = (t, n);
    } else {
        (c.tensorc_all, c.numpy_all) = (t, n);
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or("—".to_owned(), |ns| format!("{:.3}", ns / 1e6))
}

fn ratio(numpy: Option<f64>, tensorc: Option<f64>) -> String {
    numpy
        .zip(tensorc)
        .map_or("—".to_owned(), |(n, t)| format!("{:.2}", n / t))
}

/// The table: one row per case, grouped by family, ratios as NumPy time /
/// tensorc time (above 1, tensorc is faster).
fn markdown(cases: &[Case], threads: usize) -> String {
    let mut s = format!(
        "| family | case | tensorc ms | NumPy ms | tensorc / NumPy | tensorc {threads} threads ms | NumPy {threads} threads ms | tensorc / NumPy, {threads} threads |\n|---|---|---:|---:|---:|---:|---:|---:|\n"
    );
    let mut families: Vec<&str> = Vec::new();
    for c in cases {
        if !families.contains(&c.family.as_str()) {
            families.push(&c.family);
        }
    }
    for f in families {
        for c in cases.iter().filter(|c| c.family == f) {
            if let Some(e) = &c.error {
                let _ = writeln!(s, "| {f} | {} | failed: {e} | | | | | |", c.name);
                continue;
            }
            let _ = writeln!(
                s,
                "| {f} | {} | {} | {} | {} | {} | {} | {} |",
                c.name,
                ms(c.tensorc_1),
                ms(c.numpy_1),
                ratio(c.numpy_1, c.tensorc_1),
                ms(c.tensorc_all),
                ms(c.numpy_all),
                ratio(c.numpy_all, c.tensorc_all),
            );
        }
    }
    s
}

fn json(cases: &[Case]) -> String {
    let num = |v: Option<f64>| v.map_or("null".to_owned(), |x| format!("{x}"));
    let rows: Vec<String> = cases
        .iter()
        .map(|c| {
            format!(
                "  {{\"name\": \"{}\", \"family\": \"{}\", \"tensorc_min_ns\": {}, \"numpy_min_ns\": {}, \"tensorc_all_threads_min_ns\": {}, \"numpy_all_threads_min_ns\": {}, \"failed\": {}}}",
                c.name,
                c.family,
                num(c.tensorc_1),
                num(c.numpy_1),
                num(c.tensorc_all),
                num(c.numpy_all),
                c.error.is_some()
            )
        })
        .collect();
    format!("[\n{}\n]\n", rows.join(",\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_lines_merge_into_one_row_per_case() {
        let mut cases = Vec::new();
        merge(
            &mut cases,
            r#"{"name": "mm_1000", "family": "matmul", "threads": 1, "tensorc_min_ns": 8000000, "numpy_min_ns": 8400000}"#,
            true,
        );
        merge(
            &mut cases,
            r#"{"name": "mm_1000", "family": "matmul", "threads": 2, "tensorc_min_ns": 4000000, "numpy_min_ns": 3800000}"#,
            false,
        );
        merge(
            &mut cases,
            r#"{"name": "bad", "family": "other ops", "threads": 1, "error": "tensorc: boom"}"#,
            true,
        );
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].tensorc_1, Some(8e6));
        assert_eq!(cases[0].numpy_all, Some(3.8e6));
        assert_eq!(cases[1].error.as_deref(), Some("tensorc: boom"));
        let t = markdown(&cases, 2);
        assert!(
            t.contains("| matmul | mm_1000 | 8.000 | 8.400 | 1.05 | 4.000 | 3.800 | 0.95 |"),
            "{t}"
        );
        assert!(
            t.contains("| other ops | bad | failed: tensorc: boom |"),
            "{t}"
        );
        assert!(json(&cases).contains("\"failed\": true"));
    }

    #[test]
    fn the_benchmarks_doc_has_the_screen_markers() {
        let doc = std::fs::read_to_string(root().join("docs").join("benchmarks.md")).unwrap();
        assert!(doc.contains(BEGIN) && doc.contains(END));
    }
}
