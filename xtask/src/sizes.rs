//! `cargo xtask sizes`: the artifact size table of docs/aot.md, measured
//! rather than typed in. Every `../shared/bench/*.nxir` workload and
//! `examples/mlp.nxir` is compiled with `tensorc compile --emit shared --emit
//! static` (the default, portable `--cpu`), and the byte sizes of the `.so`,
//! the `.a` and the code in it (`.text`, from `size`) are written between the
//! markers in docs/aot.md.
//!
//! The CLI is built in the dev profile: artifacts are optimized by LLVM at O3
//! whatever profile tensorc itself was built in, so the bytes are the same
//! and the (much longer) release build of LLVM-linked tensorc is not needed.

use crate::{cargo, root, run, target_dir, tensorc};
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;

const BEGIN: &str = "<!-- xtask sizes: begin -->";
const END: &str = "<!-- xtask sizes: end -->";

struct Row {
    name: String,
    shared: u64,
    archive: u64,
    text: u64,
}

pub fn sizes() -> Result<()> {
    run(cargo().args(["build", "-p", "tensorc-cli"]))?;
    let bin = target_dir()
        .join("debug")
        .join(format!("tensorc{}", std::env::consts::EXE_SUFFIX));
    let (shared, mut files) = crate::bench::workloads()?;
    files.push(root().join("examples").join("mlp.nxir"));

    let out = target_dir().join("sizes");
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut rows = Vec::new();
    for file in &files {
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let base = out.join(&stem);
        tensorc(
            &bin,
            &[
                "compile",
                &file.to_string_lossy(),
                "--emit",
                "shared",
                "--emit",
                "static",
                "-o",
                &base.to_string_lossy(),
            ],
        )?;
        let so = base.with_extension("so");
        let a = base.with_extension("a");
        let name = if file.starts_with(&shared) {
            stem
        } else {
            format!("examples/{stem}")
        };
        rows.push(Row {
            name,
            shared: file_size(&so)?,
            archive: file_size(&a)?,
            text: text_size(&a)?,
        });
    }
    let table = markdown(&rows);
    print!("{table}");
    crate::bench::write_between(&root().join("docs").join("aot.md"), BEGIN, END, &table)?;
    println!("wrote the table into docs/aot.md");
    Ok(())
}

fn file_size(p: &Path) -> Result<u64> {
    Ok(std::fs::metadata(p)
        .with_context(|| format!("tensorc wrote no {}", p.display()))?
        .len())
}

/// The summed `.text` size of an archive's members (Berkeley format of
/// binutils' `size`: `text data bss dec hex filename`, one line per member).
fn text_size(archive: &Path) -> Result<u64> {
    let out = Command::new("size")
        .arg(archive)
        .output()
        .context("cannot run `size` (binutils)")?;
    if !out.status.success() {
        bail!("size {} failed: {}", archive.display(), String::from_utf8_lossy(&out.stderr));
    }
    parse_size_text(&String::from_utf8_lossy(&out.stdout))
        .with_context(|| format!("unexpected `size` output for {}", archive.display()))
}

fn parse_size_text(text: &str) -> Option<u64> {
    let mut total = 0;
    let mut members = 0;
    for line in text.lines().skip(1) {
        total += line.split_whitespace().next()?.parse::<u64>().ok()?;
        members += 1;
    }
    (members > 0).then_some(total)
}

fn markdown(rows: &[Row]) -> String {
    let mut t = String::from("| workload | `.so` | `.a` | code (`.text`) |\n|---|---:|---:|---:|\n");
    for r in rows {
        t.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.name, r.shared, r.archive, r.text
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_text_of_every_archive_member() {
        let out = "   text\t   data\t    bss\t    dec\t    hex\tfilename\n   \
                   4005\t      0\t      0\t   4005\t    fa5\tw.o (ex w.a)\n   \
                   10\t      0\t      0\t   10\t    a\tx.o (ex w.a)\n";
        assert_eq!(parse_size_text(out), Some(4015));
        assert_eq!(parse_size_text("   text\tdata\n"), None);
    }
}
