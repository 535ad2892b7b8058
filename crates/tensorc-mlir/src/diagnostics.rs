//! MLIR diagnostics captured as data instead of being printed to stderr.
//!
//! MLIR reports parse, verifier, pass and translation failures through the
//! context's diagnostic handler; by default they go to stderr and are lost to
//! the caller. `Mlir` installs a handler that records them here so that every
//! failure becomes an error value carrying its text and, when the op had a
//! `loc("file":line:col)`, the user-source position it came from.

use melior::diagnostic::{Diagnostic, DiagnosticSeverity};
use melior::ir::Location;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
    Note,
    Remark,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
            Severity::Remark => "remark",
        }
    }
}

/// A position in a source file as MLIR knows it (1-based line and column).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileLoc {
    pub file: String,
    pub line: usize,
    pub col: usize,
}

/// One MLIR diagnostic with its attached notes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MlirDiagnostic {
    pub severity: Severity,
    /// The file position, when the location (or the first file position inside it) has one.
    pub location: Option<FileLoc>,
    /// The location as MLIR prints it (`loc("f.nxir":3:5)`, `loc(unknown)`, ...).
    pub location_text: String,
    pub message: String,
    pub notes: Vec<MlirDiagnostic>,
}

impl MlirDiagnostic {
    pub(crate) fn from_melior(d: &Diagnostic<'_>) -> MlirDiagnostic {
        let severity = match d.severity() {
            DiagnosticSeverity::Error => Severity::Error,
            DiagnosticSeverity::Warning => Severity::Warning,
            DiagnosticSeverity::Note => Severity::Note,
            DiagnosticSeverity::Remark => Severity::Remark,
        };
        let loc = d.location();
        let notes = (0..d.note_count())
            .filter_map(|i| d.note(i).ok())
            .map(|n| MlirDiagnostic::from_melior(&n))
            .collect();
        MlirDiagnostic {
            severity,
            location: file_loc(loc, 0),
            location_text: loc.to_string(),
            message: d.to_string(),
            notes,
        }
    }
}

/// The file position of a location. Call sites report the callee (where the op
/// really is); named locations are unwrapped by their printed text, since the
/// C API exposes no child getter for them.
fn file_loc(loc: Location<'_>, depth: usize) -> Option<FileLoc> {
    if depth > 8 {
        return None;
    }
    if loc.is_file_line_col_range() {
        let file = loc.file_line_col_range_filename();
        let file = file.as_string_ref().as_str().ok()?.to_owned();
        return Some(FileLoc {
            file,
            line: loc.file_line_col_range_start_line(),
            col: loc.file_line_col_range_start_column(),
        });
    }
    if loc.is_call_site() {
        return file_loc(loc.call_site_callee(), depth + 1);
    }
    parse_loc_text(&loc.to_string())
}

/// Finds the first `"file":line:col` inside a printed location (skipping
/// quoted names such as the `"x"` of `loc("x"("f.nxir":2:1))`).
fn parse_loc_text(text: &str) -> Option<FileLoc> {
    let mut rest = text;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let end = after.find('"')?;
        let file = &after[..end];
        let tail = &after[end + 1..];
        if let Some(l) = parse_line_col(tail) {
            return Some(FileLoc {
                file: file.to_owned(),
                line: l.0,
                col: l.1,
            });
        }
        rest = tail;
    }
    None
}

/// `:line:col...` to `(line, col)`.
fn parse_line_col(s: &str) -> Option<(usize, usize)> {
    let s = s.strip_prefix(':')?;
    let line: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    let s = s[line.len()..].strip_prefix(':')?;
    let col: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    Some((line.parse().ok()?, col.parse().ok()?))
}

impl fmt::Display for MlirDiagnostic {
    /// `file:line:col: error: message`, notes indented below.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(l) => write!(f, "{}:{}:{}: ", l.file, l.line, l.col)?,
            None if self.location_text != "loc(unknown)" && !self.location_text.is_empty() => {
                write!(f, "{}: ", self.location_text)?
            }
            None => {}
        }
        write!(f, "{}: {}", self.severity.name(), self.message)?;
        for n in &self.notes {
            write!(f, "\n  {n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_printed_locations() {
        assert_eq!(
            parse_loc_text(r#"loc("a b.nxir":3:15)"#),
            Some(FileLoc {
                file: "a b.nxir".into(),
                line: 3,
                col: 15
            })
        );
        assert_eq!(
            parse_loc_text(r#"loc("x"("f.nxir":2:1))"#),
            Some(FileLoc {
                file: "f.nxir".into(),
                line: 2,
                col: 1
            })
        );
        assert_eq!(parse_loc_text("loc(unknown)"), None);
    }
}
