//! Renders diagnostics as text for people (spec §5):
//!
//! ```text
//! prog.nxir:3:7: error: unknown operation 'ad'
//!   |
//! 3 |   y = ad x, 1.0
//!   |       ^^
//! ```
//!
//! The first line is written here because the spec fixes its exact shape;
//! the snippet with the caret (and secondary labels, notes) is drawn by
//! `codespan-reporting` in plain ASCII without colour, so the output is the
//! same on every terminal and in tests. Notes are shown as `= note: …`.

use crate::diag::{Diagnostic, Diagnostics, Severity};
use crate::span::{SourceFile, Span};
use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, Chars, Config, termcolor::NoColor};

/// All diagnostics of a file, one after another.
pub fn render(diags: &Diagnostics) -> String {
    // The file's line index is built once, not once per diagnostic.
    let shown = visible_text(&diags.file.text);
    let files = SimpleFile::new(diags.file.name.as_str(), shown.as_ref());
    diags
        .items
        .iter()
        .map(|d| render_with(&diags.file, &files, d))
        .collect()
}

/// One diagnostic: the `FILE:LINE:COL: error: message` header, then the
/// source line with a caret under the span, then labels and notes. Spans
/// outside the text or inside a character are clamped, never a panic.
pub fn render_one(file: &SourceFile, d: &Diagnostic) -> String {
    let shown = visible_text(&file.text);
    let files = SimpleFile::new(file.name.as_str(), shown.as_ref());
    render_with(file, &files, d)
}

/// `files` holds `file`'s text as shown (see `visible_text`).
fn render_with(file: &SourceFile, files: &SimpleFile<&str, &str>, d: &Diagnostic) -> String {
    let span = clamp(file, d.span);
    let (line, col) = file.line_col(span.start);
    let severity = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut out = format!("{}:{line}:{col}: {severity}: {}\n", file.name, d.message);

    let mut labels = vec![Label::primary((), span.start..span.end)];
    for (s, msg) in &d.labels {
        let s = clamp(file, *s);
        labels.push(Label::secondary((), s.start..s.end).with_message(msg));
    }
    let cs = CsDiagnostic::new(match d.severity {
        Severity::Error => codespan_reporting::diagnostic::Severity::Error,
        Severity::Warning => codespan_reporting::diagnostic::Severity::Warning,
    })
    .with_labels(labels)
    .with_notes(d.notes.iter().map(|n| format!("note: {n}")).collect());

    let config = Config {
        chars: Chars::ascii(),
        ..Config::default()
    };
    let mut writer = NoColor::new(Vec::<u8>::new());
    if term::emit(&mut writer, &config, files, &cs).is_ok() {
        let text = String::from_utf8_lossy(&writer.into_inner()).into_owned();
        // codespan opens with its own header (`error`) and locus
        // (`--> file:line:col`), both already said by our first line.
        let mut lines = text.lines();
        lines.next();
        let mut rest = lines
            .skip_while(|l| l.trim_start().starts_with("-->"))
            .peekable();
        while let Some(l) = rest.next() {
            // Drop the blank line codespan ends with; each diagnostic
            // ends right after its last line.
            if rest.peek().is_none() && l.trim().is_empty() {
                break;
            }
            out.push_str(l.trim_end());
            out.push('\n');
        }
    }
    out
}

/// The text with invisible characters made visible, byte offsets kept: a
/// control character (other than tab and line breaks) becomes `?` per byte,
/// a zero-width or direction-changing one U+FFFD (both are 3 bytes). This
/// way the caret has something to point at, and a bidi override in a bad
/// input cannot reorder the terminal's rendering of the line.
fn visible_text(text: &str) -> std::borrow::Cow<'_, str> {
    let replace = |c: char| {
        if c.is_control() && !matches!(c, '\n' | '\t' | '\r') {
            Some("?".repeat(c.len_utf8()))
        } else if matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
        {
            Some('\u{fffd}'.to_string())
        } else {
            None
        }
    };
    if !text.chars().any(|c| replace(c).is_some()) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match replace(c) {
            Some(r) => out.push_str(&r),
            None => out.push(c),
        }
    }
    // Equal lengths by construction; checked so a mistake here could only
    // cost the cleaning, never misplace a caret.
    if out.len() == text.len() {
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Keeps a span inside the text and on character boundaries.
fn clamp(file: &SourceFile, span: Span) -> Span {
    let text = &file.text;
    let fix = |mut i: usize| {
        i = i.min(text.len());
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let start = fix(span.start);
    let end = fix(span.end).max(start);
    Span::new(start, end)
}
