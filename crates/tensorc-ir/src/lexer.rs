//! Turns `.nxir` text into tokens (spec §1), reporting bad characters and
//! malformed literals as diagnostics instead of stopping at the first one.
//!
//! Newlines are statement separators only in some places (a `def`/`fn` body)
//! and insignificant in others (inside brackets and tuple braces). Whether a
//! `{` opens a body or a tuple is a syntactic question, so the lexer emits
//! one `Newline` token per run of line breaks and the parser skips them where
//! the grammar says they mean nothing. The one purely lexical rule — a line
//! ending in `,` or `->` continues on the next line — is applied here by not
//! emitting the `Newline` at all.

use crate::diag::Diagnostic;
use crate::span::Span;
use crate::types::DType;

#[derive(Clone, Debug, PartialEq)]
pub enum TokenKind {
    Ident(String),
    /// Integer literal, sign included (`-7` is one token). i128 holds every
    /// s64 and u64 value.
    Int(i128),
    /// Float literal, sign included; also `nan`, `infinity`, `neg_infinity`.
    Float(f64),
    /// `:same` (stored without the colon).
    Atom(String),
    /// A dtype name such as `f32` (reserved word).
    DType(DType),
    /// `c64` / `c128`: reserved dtype names of tier 3 that `DType` cannot
    /// represent yet, kept distinct so the parser can say so precisely.
    ComplexDType(&'static str),
    Def,
    Fn,
    Return,
    Nil,
    True,
    False,
    /// `=`
    Eq,
    /// `,`
    Comma,
    /// `:` (keyword arguments and parameter types)
    Colon,
    /// `;`
    Semi,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    /// `->`
    Arrow,
    /// `&`
    Amp,
    /// `/`
    Slash,
    /// `.`
    Dot,
    /// One or more line breaks (with any comments and blank lines between).
    Newline,
    /// A bad character or malformed literal, already reported. It stands in
    /// for an operand so that one typo gives one error, not a cascade.
    Error,
    /// End of input; its empty span sits just after the last other token.
    Eof,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub kind: TokenKind,
    pub span: Span,
}

/// Reserved words that are not dtype names (spec §1).
pub const KEYWORDS: [&str; 9] = [
    "def",
    "fn",
    "return",
    "nil",
    "true",
    "false",
    "nan",
    "infinity",
    "neg_infinity",
];

fn keyword(word: &str) -> Option<TokenKind> {
    Some(match word {
        "def" => TokenKind::Def,
        "fn" => TokenKind::Fn,
        "return" => TokenKind::Return,
        "nil" => TokenKind::Nil,
        "true" => TokenKind::True,
        "false" => TokenKind::False,
        "nan" => TokenKind::Float(f64::NAN),
        "infinity" => TokenKind::Float(f64::INFINITY),
        "neg_infinity" => TokenKind::Float(f64::NEG_INFINITY),
        "c64" => TokenKind::ComplexDType("c64"),
        "c128" => TokenKind::ComplexDType("c128"),
        _ => return DType::from_name(word).map(TokenKind::DType),
    })
}

/// True for a word the user cannot bind as a name (keywords and dtype names).
pub fn is_reserved(word: &str) -> bool {
    keyword(word).is_some()
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Tokenizes the whole text. The token list always ends with `Eof`, whatever
/// the input; every problem becomes a diagnostic and lexing carries on.
pub fn lex(text: &str) -> (Vec<Token>, Vec<Diagnostic>) {
    let mut lx = Lexer {
        text,
        pos: 0,
        tokens: Vec::new(),
        diags: Vec::new(),
    };
    lx.run();
    (lx.tokens, lx.diags)
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    tokens: Vec<Token>,
    diags: Vec<Diagnostic>,
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.text[self.pos..].chars().nth(n)
    }

    /// The character just before the current position, if any.
    fn prev_char(&self) -> Option<char> {
        self.text[..self.pos].chars().next_back()
    }

    fn push(&mut self, kind: TokenKind, start: usize) {
        self.tokens.push(Token {
            kind,
            span: Span::new(start, self.pos),
        });
    }

    fn newline(&mut self, start: usize) {
        // Collapse runs, drop leading ones, and continue lines that end in
        // `,` or `->` (spec §1).
        let suppress = match self.tokens.last() {
            None => true,
            Some(t) => matches!(
                t.kind,
                TokenKind::Newline | TokenKind::Comma | TokenKind::Arrow
            ),
        };
        if !suppress {
            // Empty span: a caret at the line end, not a two-line range.
            self.tokens.push(Token {
                kind: TokenKind::Newline,
                span: Span::new(start, start),
            });
        }
    }

    fn run(&mut self) {
        // Some editors start UTF-8 files with a byte-order mark; it is not text.
        if self.text.starts_with('\u{feff}') {
            self.pos = '\u{feff}'.len_utf8();
        }
        while let Some(c) = self.peek() {
            let start = self.pos;
            match c {
                '\n' => {
                    self.pos += 1;
                    self.newline(start);
                }
                ' ' | '\t' | '\r' => self.pos += 1,
                '#' => {
                    // The comment's newline is left for the next round.
                    let rest = &self.text[self.pos..];
                    self.pos += rest.find('\n').unwrap_or(rest.len());
                }
                '-' if self.peek_at(1) == Some('>') => {
                    self.pos += 2;
                    self.push(TokenKind::Arrow, start);
                }
                '-' if self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) => self.number(),
                '0'..='9' => self.number(),
                ':' if self.peek_at(1).is_some_and(is_ident_start)
                    && !self.prev_char().is_some_and(is_ident_char) =>
                {
                    // `:same` is an atom, but `x:f32` is a name, a colon and a type.
                    self.pos += 1;
                    let word = self.word();
                    self.push(TokenKind::Atom(word.to_string()), start);
                }
                c if is_ident_start(c) => {
                    let word = self.word();
                    let kind = keyword(word).unwrap_or_else(|| TokenKind::Ident(word.to_string()));
                    self.push(kind, start);
                }
                _ => {
                    self.pos += c.len_utf8();
                    let kind = match c {
                        '=' => TokenKind::Eq,
                        ',' => TokenKind::Comma,
                        ':' => TokenKind::Colon,
                        ';' => TokenKind::Semi,
                        '(' => TokenKind::LParen,
                        ')' => TokenKind::RParen,
                        '[' => TokenKind::LBracket,
                        ']' => TokenKind::RBracket,
                        '{' => TokenKind::LBrace,
                        '}' => TokenKind::RBrace,
                        '&' => TokenKind::Amp,
                        '/' => TokenKind::Slash,
                        '.' => TokenKind::Dot,
                        _ => {
                            // A run of junk (a pasted binary, a wrong
                            // encoding) is one error, not one per character.
                            let mut n = 1;
                            while let Some(d) = self.peek().filter(|&d| is_stray(d)) {
                                self.pos += d.len_utf8();
                                n += 1;
                            }
                            let msg = if n == 1 {
                                format!("unexpected character {}", show_char(c))
                            } else {
                                format!("{n} unexpected characters, starting with {}", show_char(c))
                            };
                            self.diags
                                .push(Diagnostic::error(Span::new(start, self.pos), msg));
                            TokenKind::Error
                        }
                    };
                    self.push(kind, start);
                }
            }
        }
        // Eof sits right after the last token rather than at the very end of
        // the text, so "found end of file" points at visible text, not at an
        // empty line after trailing blank lines and comments.
        let end = self
            .tokens
            .iter()
            .rev()
            .find(|t| t.kind != TokenKind::Newline)
            .map_or(0, |t| t.span.end);
        self.tokens.push(Token {
            kind: TokenKind::Eof,
            span: Span::new(end, end),
        });
    }

    /// Consumes `[A-Za-z0-9_]*` and returns it.
    fn word(&mut self) -> &'a str {
        let start = self.pos;
        let text = self.text;
        let rest = &text[self.pos..];
        self.pos += rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len());
        &text[start..self.pos]
    }

    /// Consumes the longest run that could belong to a number literal and
    /// then validates it, so `12abc` or `1.0.0` is one bad literal with one
    /// diagnostic rather than a cascade of odd tokens.
    fn number(&mut self) {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        let hex =
            self.text[self.pos..].starts_with("0x") || self.text[self.pos..].starts_with("0X");
        loop {
            match self.peek() {
                Some(c) if is_ident_char(c) => self.pos += 1,
                Some('.') if !hex && self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) => {
                    self.pos += 1
                }
                Some('+' | '-')
                    if !hex
                        && matches!(self.prev_char(), Some('e' | 'E'))
                        && self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) =>
                {
                    self.pos += 1
                }
                _ => break,
            }
        }
        let lexeme = &self.text[start..self.pos];
        let span = Span::new(start, self.pos);
        match parse_number(lexeme) {
            Ok(kind) => self.push(kind, start),
            Err(msg) => {
                self.diags.push(Diagnostic::error(span, msg));
                self.push(TokenKind::Error, start);
            }
        }
    }
}

/// A character that can start no token and is not whitespace. (`-` is
/// not stray: it may start `->` or a negative number.)
fn is_stray(c: char) -> bool {
    !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || "=,:;()[]{}&/.# \t\r\n".contains(c))
}

/// A character as an error message shows it: quoted when it is visible,
/// as a code point when it would be invisible or reorder the text.
fn show_char(c: char) -> String {
    let invisible = matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}');
    if c.is_control() || c.is_whitespace() || invisible {
        format!("U+{:04X}", c as u32)
    } else {
        format!("'{c}'")
    }
}

/// Digits separated by single underscores (`1_000`), as in Elixir.
fn valid_digits(s: &str, radix: u32) -> bool {
    !s.is_empty()
        && !s.starts_with('_')
        && !s.ends_with('_')
        && !s.contains("__")
        && s.chars().all(|c| c == '_' || c.is_digit(radix))
}

fn parse_number(lexeme: &str) -> Result<TokenKind, String> {
    let invalid = || format!("invalid number literal '{lexeme}'");
    let (neg, body) = match lexeme.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, lexeme),
    };
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        if !valid_digits(hex, 16) {
            return Err(invalid());
        }
        return int_value(neg, &hex.replace('_', ""), 16, lexeme);
    }
    // mantissa [. fraction] [e|E [+|-] exponent]
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    if !valid_digits(int_part, 10) || frac.is_some_and(|f| !valid_digits(f, 10)) {
        return Err(invalid());
    }
    if let Some(e) = exponent {
        let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
        if !valid_digits(digits, 10) {
            return Err(invalid());
        }
    }
    if frac.is_none() && exponent.is_none() {
        return int_value(neg, &int_part.replace('_', ""), 10, lexeme);
    }
    let clean = lexeme.replace('_', "");
    match clean.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(TokenKind::Float(v)),
        // Only the digits were validated above; std's parser agrees on them,
        // so the remaining failure is a magnitude beyond f64.
        _ => Err(format!("float literal '{lexeme}' is out of range")),
    }
}

fn int_value(neg: bool, digits: &str, radix: u32, lexeme: &str) -> Result<TokenKind, String> {
    let out_of_range = || format!("integer literal '{lexeme}' is out of range");
    let magnitude = u128::from_str_radix(digits, radix).map_err(|_| out_of_range())?;
    let value = if neg {
        // -2^127 is the one magnitude beyond i128::MAX that still fits.
        0i128
            .checked_sub_unsigned(magnitude)
            .ok_or_else(out_of_range)?
    } else {
        i128::try_from(magnitude).map_err(|_| out_of_range())?
    };
    Ok(TokenKind::Int(value))
}
