//! Recursive-descent parser from tokens to `ast::Program` (spec §1–§3).
//!
//! It keeps going after a syntax error: a broken statement is skipped up to
//! the next statement boundary, a broken `def` header up to the next `def`,
//! so one run reports every independent mistake. Every loop consumes a token
//! or stops, and nesting is capped at `MAX_DEPTH` so adversarial input can
//! neither hang the parser nor overflow its stack.

use crate::ast::*;
use crate::diag::{Diagnostic, Severity};
use crate::lexer::{self, Token, TokenKind};
use crate::span::{SourceFile, Span};
use crate::types::{DType, TensorType, Type};

/// The nesting budget: lists, tuples and tuple types cost one unit per
/// level, a `fn` costs `FN_COST`.
pub const MAX_DEPTH: usize = 256;

/// A nested `fn` goes through about twice as many (and larger) parser frames
/// as a list: ~10 KiB of stack per level in a debug build against ~4 KiB.
/// Weighting it keeps the worst case near 1 MiB, inside a 2 MiB test thread.
pub const FN_COST: usize = 4;

/// Parses a whole file. The program is returned exactly when no error was
/// found: a partial tree would only make the checker report follow-on errors
/// about names the parser had to skip.
pub fn parse(file: &SourceFile) -> (Option<Program>, Vec<Diagnostic>) {
    let (tokens, mut diags) = lexer::lex(&file.text);
    let mut p = Parser {
        text: &file.text,
        tokens,
        pos: 0,
        depth: 0,
        diags: Vec::new(),
    };
    let program = p.program();
    let lex_spans = lex_error_lines(&file.text, &diags);
    diags.extend(
        p.diags
            .into_iter()
            .filter(|d| !follows_lex_error(&lex_spans, d)),
    );
    // Stable sort, then keep only the first of several errors at one place
    // (such as a missing operand and the missing `}` at the end of file).
    diags.sort_by_key(|d| d.span.start);
    diags.dedup_by_key(|d| d.span.start);
    if diags.len() > MAX_ERRORS {
        let more = diags.len() - MAX_ERRORS;
        diags.truncate(MAX_ERRORS);
        if let Some(last) = diags.last_mut() {
            last.notes
                .push(format!("{more} more errors after this one are not shown"));
        }
    }
    if diags.iter().any(|d| d.severity == Severity::Error) {
        (None, diags)
    } else {
        (Some(program), diags)
    }
}

/// At most this many diagnostics are returned: past that point they are
/// noise (a binary file, a wrong encoding) and would only cost time to render.
pub const MAX_ERRORS: usize = 100;

/// For each lexer error (they come in text order): its start and the end of
/// its line. Linear in the text, however many errors there are.
fn lex_error_lines(text: &str, lex_errors: &[Diagnostic]) -> Vec<(usize, usize)> {
    let newlines: Vec<usize> = text.match_indices('\n').map(|(i, _)| i).collect();
    lex_errors
        .iter()
        .map(|e| {
            let k = newlines.partition_point(|&n| n < e.span.end);
            (e.span.start, newlines.get(k).copied().unwrap_or(text.len()))
        })
        .collect()
}

/// A syntax error later on the same line as a bad character or literal is
/// almost always caused by it (the token is missing), so it is not shown.
fn follows_lex_error(lex_lines: &[(usize, usize)], d: &Diagnostic) -> bool {
    // The last lexer error starting at or before `d` has the latest line end.
    let k = lex_lines.partition_point(|&(start, _)| start <= d.span.start);
    k > 0 && d.span.start <= lex_lines[k - 1].1
}

/// Marker that an error was already reported and the caller should recover.
struct Bail;

type PResult<T> = Result<T, Bail>;

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    diags: Vec<Diagnostic>,
}

impl Parser<'_> {
    // ---- token access -------------------------------------------------

    fn tok(&self) -> &Token {
        // The lexer always ends the list with Eof and `bump` never moves past it.
        &self.tokens[self.pos]
    }

    fn kind(&self) -> &TokenKind {
        &self.tok().kind
    }

    fn nth_kind(&self, n: usize) -> &TokenKind {
        let i = (self.pos + n).min(self.tokens.len() - 1);
        &self.tokens[i].kind
    }

    fn span(&self) -> Span {
        self.tok().span
    }

    fn at(&self, k: &TokenKind) -> bool {
        self.kind() == k
    }

    fn bump(&mut self) -> Token {
        let t = self.tok().clone();
        if t.kind != TokenKind::Eof {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, k: &TokenKind) -> Option<Span> {
        if self.at(k) {
            Some(self.bump().span)
        } else {
            None
        }
    }

    fn skip_newlines(&mut self) {
        while self.at(&TokenKind::Newline) {
            self.bump();
        }
    }

    /// The end of the previous token (for spans of whole constructs).
    fn prev_end(&self) -> usize {
        if self.pos == 0 {
            0
        } else {
            self.tokens[self.pos - 1].span.end
        }
    }

    /// How the current token reads in an error message.
    fn found(&self) -> String {
        describe(self.tok(), self.text)
    }

    fn error(&mut self, span: Span, msg: impl Into<String>) -> Bail {
        self.diags.push(Diagnostic::error(span, msg));
        Bail
    }

    /// "expected X, found Y" at the current token.
    fn expected(&mut self, what: &str) -> Bail {
        let msg = format!("expected {what}, found {}", self.found());
        let span = self.span();
        self.error(span, msg)
    }

    fn expect(&mut self, k: &TokenKind, what: &str) -> PResult<Span> {
        match self.eat(k) {
            Some(s) => Ok(s),
            None => Err(self.expected(what)),
        }
    }

    /// Takes `cost` units of the nesting budget, or reports "nesting too deep".
    fn enter(&mut self, cost: usize) -> PResult<()> {
        if self.depth + cost > MAX_DEPTH {
            let span = self.span();
            let d = Diagnostic::error(span, "nesting too deep").with_note(format!(
                "at most {MAX_DEPTH} levels of lists, tuples and tuple types, or {} of fns",
                MAX_DEPTH / FN_COST
            ));
            self.diags.push(d);
            return Err(Bail);
        }
        self.depth += cost;
        Ok(())
    }

    fn leave(&mut self, cost: usize) {
        self.depth -= cost;
    }

    // ---- recovery -------------------------------------------------------

    /// True when the tokens from the current one on look like the start of a
    /// statement (`name =`, `return`) or of a `def`.
    fn at_statement_start(&self) -> bool {
        matches!(self.kind(), TokenKind::Return | TokenKind::Def)
            || (matches!(self.kind(), TokenKind::Ident(_)) && *self.nth_kind(1) == TokenKind::Eq)
    }

    /// Skips the rest of a broken statement: up to a line break or `;` outside
    /// brackets, or a `}` that closes the enclosing body (left in place). A
    /// new line that starts like a statement also stops the skip even inside
    /// brackets, so one unclosed `[` does not swallow the rest of the file.
    /// `start` is the index of the statement's first token: brackets it
    /// opened before the error still need closing before the statement ends.
    fn recover_statement(&mut self, start: usize) {
        // An error found at the start of the next line (an unclosed bracket
        // ran into it) leaves nothing of the broken statement to skip.
        if self.pos > 0
            && self.tokens[self.pos - 1].kind == TokenKind::Newline
            && self.at_statement_start()
        {
            return;
        }
        let mut depth = 0usize;
        for t in &self.tokens[start.min(self.pos)..self.pos] {
            match t.kind {
                TokenKind::LParen | TokenKind::LBracket | TokenKind::LBrace => depth += 1,
                TokenKind::RParen | TokenKind::RBracket | TokenKind::RBrace => {
                    depth = depth.saturating_sub(1)
                }
                _ => {}
            }
        }
        loop {
            match self.kind() {
                TokenKind::Eof => return,
                TokenKind::Newline | TokenKind::Semi => {
                    self.bump();
                    if depth == 0 || self.at_statement_start() {
                        return;
                    }
                }
                TokenKind::RBrace if depth == 0 => return,
                // A `def` never belongs to a statement, however many
                // brackets are open.
                TokenKind::Def => return,
                TokenKind::LParen | TokenKind::LBracket | TokenKind::LBrace => {
                    depth += 1;
                    self.bump();
                }
                TokenKind::RParen | TokenKind::RBracket | TokenKind::RBrace => {
                    depth = depth.saturating_sub(1);
                    self.bump();
                }
                _ => {
                    self.bump();
                }
            }
        }
    }

    /// After an error in a `def` header: skips to the body's `{` and says
    /// whether it found one. The body brace is taken to be the first `{`
    /// outside parentheses that ends its line (a `{` that does not is more
    /// likely a tuple type); a one-line def is skipped whole.
    fn recover_header(&mut self) -> bool {
        let mut parens = 0usize;
        loop {
            match self.kind() {
                TokenKind::Eof | TokenKind::Def => return false,
                TokenKind::LBrace if parens == 0 && *self.nth_kind(1) == TokenKind::Newline => {
                    return true;
                }
                TokenKind::LParen | TokenKind::LBracket => parens += 1,
                TokenKind::RParen | TokenKind::RBracket => parens = parens.saturating_sub(1),
                _ => {}
            }
            self.bump();
        }
    }

    /// Skips to the next `def` (after a broken header or stray top-level text).
    fn recover_def(&mut self) {
        while !matches!(self.kind(), TokenKind::Def | TokenKind::Eof) {
            self.bump();
        }
    }

    // ---- program and defs -------------------------------------------------

    fn program(&mut self) -> Program {
        let mut defs = Vec::new();
        loop {
            while matches!(self.kind(), TokenKind::Newline | TokenKind::Semi) {
                self.bump();
            }
            match self.kind() {
                TokenKind::Eof => break,
                TokenKind::Def => {
                    if let Ok(d) = self.def() {
                        defs.push(d);
                    }
                }
                _ => {
                    let msg = format!("expected 'def', found {}", self.found());
                    let span = self.span();
                    let d = Diagnostic::error(span, msg)
                        .with_note("a file is a sequence of `def name(params) -> type { ... }`");
                    self.diags.push(d);
                    self.bump();
                    self.recover_def();
                }
            }
        }
        Program { defs }
    }

    fn def(&mut self) -> PResult<Def> {
        let start = self.bump().span.start; // `def`
        match self.def_header() {
            Ok((name, params, ret)) => {
                let body = self.block("the body of the function")?;
                Ok(Def {
                    name,
                    params,
                    ret,
                    span: Span::new(start, body.span.end),
                    body,
                })
            }
            Err(b) => {
                // Still look for errors in the body, if its `{` can be found.
                if self.recover_header() {
                    let _ = self.block("the body of the function");
                }
                self.recover_def();
                Err(b)
            }
        }
    }

    #[allow(
        clippy::type_complexity,
        reason = "a private helper returning the header's parts"
    )]
    fn def_header(&mut self) -> PResult<(Ident, Vec<Param>, Option<TypeExpr>)> {
        let name = self.ident("a function name")?;
        self.expect(&TokenKind::LParen, "'(' after the function name")?;
        let mut params = Vec::new();
        self.skip_newlines();
        if self.eat(&TokenKind::RParen).is_none() {
            loop {
                self.skip_newlines();
                let pname = self.ident("a parameter name")?;
                self.expect(&TokenKind::Colon, "':' and a type after the parameter name")?;
                let ty = self.type_expr()?;
                params.push(Param { name: pname, ty });
                self.skip_newlines();
                if self.eat(&TokenKind::Comma).is_some() {
                    continue;
                }
                self.expect(&TokenKind::RParen, "',' or ')' in the parameter list")?;
                break;
            }
        }
        let ret = if self.eat(&TokenKind::Arrow).is_some() {
            Some(self.type_expr()?)
        } else {
            None
        };
        self.skip_newlines();
        if !self.at(&TokenKind::LBrace) {
            let what = if ret.is_some() {
                "'{' to start the body"
            } else {
                "'->' or '{'"
            };
            return Err(self.expected(what));
        }
        Ok((name, params, ret))
    }

    /// A name that is not a reserved word.
    fn ident(&mut self, what: &str) -> PResult<Ident> {
        if let TokenKind::Ident(name) = self.kind() {
            let name = name.clone();
            let span = self.bump().span;
            Ok(Ident { name, span })
        } else {
            Err(self.expected(what))
        }
    }

    // ---- bodies and statements ----------------------------------------------

    /// `{ stmt* return e }` where newlines and `;` separate statements. The
    /// current token must be `{`. `what` names the body in messages.
    /// (A `fn` body is one nesting level with its `fn`, counted in `primary`.)
    fn block(&mut self, what: &str) -> PResult<Block> {
        let open = self.expect(&TokenKind::LBrace, "'{'")?;
        let mut stmts = Vec::new();
        let mut ret: Option<(Expr, Span)> = None;
        let mut failed = false;
        loop {
            while matches!(self.kind(), TokenKind::Newline | TokenKind::Semi) {
                self.bump();
            }
            match self.kind() {
                TokenKind::RBrace => break,
                TokenKind::Eof => {
                    let span = self.span();
                    let d = Diagnostic::error(
                        span,
                        format!("expected '}}' to close {what}, found end of file"),
                    )
                    .with_label(open, "the body starts here");
                    self.diags.push(d);
                    return Err(Bail);
                }
                TokenKind::Def => {
                    // Most likely a forgotten `}`: end here so the next def parses.
                    let span = self.span();
                    let d = Diagnostic::error(
                        span,
                        format!("expected '}}' to close {what}, found 'def'"),
                    )
                    .with_label(open, "the body starts here");
                    self.diags.push(d);
                    return Err(Bail);
                }
                _ => {}
            }
            let stmt_start = self.pos;
            let after_return = ret.is_some();
            let result = if self.at(&TokenKind::Return) {
                self.return_stmt().map(|r| {
                    if after_return {
                        self.error(r.1, "a body has only one 'return'");
                        failed = true;
                    } else {
                        ret = Some(r);
                    }
                })
            } else {
                self.stmt().map(|s| {
                    if after_return {
                        self.error(
                            s.span,
                            "statement after 'return' (the return ends the body)",
                        );
                        failed = true;
                    }
                    stmts.push(s);
                })
            };
            if result.is_err() {
                failed = true;
                self.recover_statement(stmt_start);
            }
        }
        let close = self.bump().span; // `}`
        let span = open.to(close);
        // A closed body is returned even after errors inside it (they are
        // reported already and the program will not be returned), so that the
        // enclosing statement goes on parsing normally instead of cascading.
        let (ret, ret_span) = ret.unwrap_or_else(|| {
            if !failed {
                self.error(close, format!("missing 'return' at the end of {what}"));
            }
            (
                Expr {
                    kind: ExprKind::Nil,
                    span: close,
                },
                close,
            )
        });
        Ok(Block {
            stmts,
            ret,
            ret_span,
            span,
        })
    }

    /// After a statement: a line break, `;`, the closing `}` or end of file.
    fn end_of_statement(&mut self, what: &str) -> PResult<()> {
        match self.kind() {
            TokenKind::Newline | TokenKind::Semi => {
                self.bump();
                Ok(())
            }
            TokenKind::RBrace | TokenKind::Eof => Ok(()),
            _ => Err(self.expected(what)),
        }
    }

    fn return_stmt(&mut self) -> PResult<(Expr, Span)> {
        let start = self.bump().span; // `return`
        if matches!(
            self.kind(),
            TokenKind::Newline | TokenKind::Semi | TokenKind::RBrace | TokenKind::Eof
        ) {
            return Err(self.expected("a value after 'return'"));
        }
        let e = self.expr()?;
        let span = start.to(e.span);
        self.end_of_statement("end of line after the returned value")?;
        Ok((e, span))
    }

    /// `name = op arg, arg, key: value  type`
    fn stmt(&mut self) -> PResult<Stmt> {
        let name = match self.kind() {
            TokenKind::Ident(_) => self.ident("a name")?,
            _ if *self.nth_kind(1) == TokenKind::Eq
                && lexer::is_reserved(
                    self.text
                        .get(self.tok().span.start..self.tok().span.end)
                        .unwrap_or(""),
                ) =>
            {
                let msg = format!("{} is a reserved word, not a name", self.found());
                let span = self.span();
                return Err(self.error(span, msg));
            }
            _ => {
                let msg = format!(
                    "expected a statement `name = op operands`, found {}",
                    self.found()
                );
                let span = self.span();
                return Err(self.error(span, msg));
            }
        };
        if !self.at(&TokenKind::Eq) {
            return Err(self.expected(&format!("'=' after '{}'", name.name)));
        }
        self.bump();
        let op = match self.kind() {
            TokenKind::Ident(_) => self.ident("an operation name")?,
            _ => {
                let msg = format!(
                    "expected an operation name after '=', found {}",
                    self.found()
                );
                let span = self.span();
                let d = Diagnostic::error(span, msg)
                    .with_note("a statement is `name = op operands`, e.g. `y = add x, 1.0`");
                self.diags.push(d);
                return Err(Bail);
            }
        };
        let mut args = Vec::new();
        if self.starts_operand() {
            loop {
                args.push(self.arg()?);
                if self.eat(&TokenKind::Comma).is_none() {
                    break;
                }
            }
        }
        let ty = if self.starts_type() {
            Some(self.type_expr()?)
        } else {
            None
        };
        let end = self.prev_end();
        self.end_of_statement(if ty.is_some() {
            "end of line after the type"
        } else {
            "',' or end of line after the operand"
        })?;
        Ok(Stmt {
            span: Span::new(name.span.start, end),
            name,
            op,
            args,
            ty,
        })
    }

    /// Whether the current token can begin an operand (and is not the
    /// statement's trailing type).
    fn starts_operand(&self) -> bool {
        match self.kind() {
            TokenKind::LBrace => !self.starts_type(),
            TokenKind::Ident(_)
            | TokenKind::Int(_)
            | TokenKind::Float(_)
            | TokenKind::Atom(_)
            | TokenKind::Nil
            | TokenKind::True
            | TokenKind::False
            | TokenKind::LBracket
            | TokenKind::Fn
            | TokenKind::Amp
            | TokenKind::Error => true,
            _ => false,
        }
    }

    /// A dtype, or a `{` whose first non-brace token is a dtype (a tuple type
    /// such as `{f32[2], s32}`; a tuple operand never contains a dtype).
    fn starts_type(&self) -> bool {
        let mut i = 0;
        loop {
            match self.nth_kind(i) {
                TokenKind::LBrace => i += 1,
                // Newlines only mean nothing after a `{`; before it they end the statement.
                TokenKind::Newline if i > 0 => i += 1,
                TokenKind::DType(_) | TokenKind::ComplexDType(_) => return true,
                // Eof stops here too, so the scan always ends.
                _ => return false,
            }
        }
    }

    fn arg(&mut self) -> PResult<Arg> {
        if matches!(self.kind(), TokenKind::Ident(_)) && *self.nth_kind(1) == TokenKind::Colon {
            let key = self.ident("an option name")?;
            self.bump(); // `:`
            if !self.starts_operand() {
                let msg = format!(
                    "expected a value for option '{}', found {}",
                    key.name,
                    self.found()
                );
                let span = self.span();
                return Err(self.error(span, msg));
            }
            let value = self.expr()?;
            Ok(Arg::Keyword(key, value))
        } else {
            Ok(Arg::Positional(self.expr()?))
        }
    }

    // ---- operands -------------------------------------------------------------

    /// An operand, possibly a `cond` clause `pred -> value`.
    fn expr(&mut self) -> PResult<Expr> {
        let lhs = self.primary()?;
        if self.eat(&TokenKind::Arrow).is_some() {
            let rhs = self.primary()?;
            let span = lhs.span.to(rhs.span);
            return Ok(Expr {
                kind: ExprKind::Clause(Box::new(lhs), Box::new(rhs)),
                span,
            });
        }
        Ok(lhs)
    }

    /// Lists and tuples take one unit of the nesting budget, `fn`s `FN_COST`.
    fn primary(&mut self) -> PResult<Expr> {
        let cost = match self.kind() {
            TokenKind::LBracket | TokenKind::LBrace => 1,
            TokenKind::Fn => FN_COST,
            _ => return self.primary_inner(),
        };
        self.enter(cost)?;
        let r = self.primary_inner();
        self.leave(cost);
        r
    }

    fn primary_inner(&mut self) -> PResult<Expr> {
        let span = self.span();
        let kind = match self.kind().clone() {
            TokenKind::Ident(n) => ExprKind::Name(n),
            TokenKind::Int(v) => ExprKind::Int(v),
            TokenKind::Float(v) => ExprKind::Float(v),
            TokenKind::Atom(a) => ExprKind::Atom(a),
            TokenKind::Nil => ExprKind::Nil,
            TokenKind::True => ExprKind::Bool(true),
            TokenKind::False => ExprKind::Bool(false),
            // Reported by the lexer; `nil` keeps the statement's shape.
            TokenKind::Error => ExprKind::Nil,
            TokenKind::LBracket => {
                let (items, span) = self.seq(TokenKind::RBracket, "']'")?;
                return Ok(Expr {
                    kind: ExprKind::List(items),
                    span,
                });
            }
            TokenKind::LBrace => {
                let (items, span) = self.seq(TokenKind::RBrace, "'}'")?;
                return Ok(Expr {
                    kind: ExprKind::Tuple(items),
                    span,
                });
            }
            TokenKind::Fn => return self.fn_expr(),
            TokenKind::Amp => return self.fn_ref(),
            _ => return Err(self.expected("an operand")),
        };
        self.bump();
        Ok(Expr { kind, span })
    }

    /// `[a, b]` or `{a, b}` (the opening bracket is current); newlines inside
    /// mean nothing.
    fn seq(&mut self, close: TokenKind, close_name: &str) -> PResult<(Vec<Expr>, Span)> {
        let open = self.bump().span;
        let mut items = Vec::new();
        self.skip_newlines();
        if let Some(end) = self.eat(&close) {
            return Ok((items, open.to(end)));
        }
        loop {
            self.skip_newlines();
            items.push(self.expr()?);
            self.skip_newlines();
            if self.eat(&TokenKind::Comma).is_some() {
                continue;
            }
            if let Some(end) = self.eat(&close) {
                return Ok((items, open.to(end)));
            }
            let mut d = Diagnostic::error(
                self.span(),
                format!("expected ',' or {close_name}, found {}", self.found()),
            );
            if self.tokens[self.pos - 1].kind == TokenKind::Newline {
                // The bracket was probably left open lines ago: show where.
                d = d.with_label(open, "unclosed bracket");
            }
            self.diags.push(d);
            return Err(Bail);
        }
    }

    /// `fn(a, b) { ... return r }`
    fn fn_expr(&mut self) -> PResult<Expr> {
        let start = self.bump().span; // `fn`
        self.expect(&TokenKind::LParen, "'(' after 'fn'")?;
        let mut params = Vec::new();
        self.skip_newlines();
        if self.eat(&TokenKind::RParen).is_none() {
            loop {
                self.skip_newlines();
                params.push(self.ident("a parameter name")?);
                self.skip_newlines();
                if self.eat(&TokenKind::Comma).is_some() {
                    continue;
                }
                self.expect(&TokenKind::RParen, "',' or ')' in the parameter list")?;
                break;
            }
        }
        self.skip_newlines();
        if !self.at(&TokenKind::LBrace) {
            return Err(self.expected("'{' to start the body of the fn"));
        }
        let body = self.block("the body of the fn")?;
        let span = start.to(body.span);
        Ok(Expr {
            kind: ExprKind::Fn(Box::new(FnExpr { params, body })),
            span,
        })
    }

    /// `&Nx.add/2`
    fn fn_ref(&mut self) -> PResult<Expr> {
        let start = self.bump().span; // `&`
        let mut path = vec![
            self.ident("a function name after '&' (as in '&Nx.add/2')")?
                .name,
        ];
        while self.eat(&TokenKind::Dot).is_some() {
            path.push(self.ident("a function name after '.'")?.name);
        }
        self.expect(&TokenKind::Slash, "'/' and an arity (as in '&Nx.add/2')")?;
        let arity = match *self.kind() {
            TokenKind::Int(n) => match u32::try_from(n) {
                Ok(a) => a,
                Err(_) => {
                    let span = self.span();
                    return Err(self.error(span, format!("invalid arity {n}")));
                }
            },
            _ => return Err(self.expected("an arity after '/'")),
        };
        let end = self.bump().span;
        let name = path.pop().unwrap_or_default();
        let module = path.join(".");
        Ok(Expr {
            kind: ExprKind::FnRef {
                module,
                name,
                arity,
            },
            span: start.to(end),
        })
    }

    // ---- types ------------------------------------------------------------------

    /// `f32[2][3]` or `{f32[2], s32}`
    fn type_expr(&mut self) -> PResult<TypeExpr> {
        // Tuple types add a nesting level.
        if !self.at(&TokenKind::LBrace) {
            return self.type_inner();
        }
        self.enter(1)?;
        let r = self.type_inner();
        self.leave(1);
        r
    }

    fn type_inner(&mut self) -> PResult<TypeExpr> {
        let start = self.span();
        match self.kind().clone() {
            TokenKind::DType(dtype) => {
                self.bump();
                let mut shape = Vec::new();
                while self.at(&TokenKind::LBracket) {
                    self.bump();
                    self.skip_newlines();
                    let dim_span = self.span();
                    match *self.kind() {
                        TokenKind::Int(n) if n >= 0 => match usize::try_from(n) {
                            Ok(d) => shape.push(d),
                            Err(_) => {
                                return Err(
                                    self.error(dim_span, format!("dimension {n} is too large"))
                                );
                            }
                        },
                        TokenKind::Int(n) => {
                            return Err(self.error(
                                dim_span,
                                format!("dimension must be a non-negative integer, found {n}"),
                            ));
                        }
                        _ => return Err(self.expected("a dimension (a non-negative integer)")),
                    }
                    self.bump();
                    self.skip_newlines();
                    self.expect(&TokenKind::RBracket, "']' after the dimension")?;
                }
                let span = start.to(Span::new(self.prev_end(), self.prev_end()));
                Ok(TypeExpr {
                    ty: Type::Tensor(TensorType::new(dtype, shape)),
                    span,
                })
            }
            TokenKind::ComplexDType(name) => Err(self.error(
                start,
                format!("unsupported dtype '{name}' (complex types are not yet implemented)"),
            )),
            TokenKind::LBrace => {
                self.bump();
                let mut elems = Vec::new();
                loop {
                    self.skip_newlines();
                    elems.push(self.type_expr()?.ty);
                    self.skip_newlines();
                    if self.eat(&TokenKind::Comma).is_some() {
                        continue;
                    }
                    let end = self.expect(&TokenKind::RBrace, "',' or '}' in the tuple type")?;
                    return Ok(TypeExpr {
                        ty: Type::Tuple(elems),
                        span: start.to(end),
                    });
                }
            }
            TokenKind::Ident(_) => {
                // Usually a misspelt dtype (`i32`, `float32`): say which exist.
                let msg = format!(
                    "expected a type (such as f32[2][3]), found {}",
                    self.found()
                );
                let names: Vec<&str> = DType::ALL.iter().map(|d| d.name()).collect();
                let d = Diagnostic::error(start, msg)
                    .with_note(format!("the dtypes are {}", names.join(" ")));
                self.diags.push(d);
                Err(Bail)
            }
            _ => Err(self.expected("a type (such as f32[2][3])")),
        }
    }
}

/// A token as it reads in "found …": the source text in quotes, or a phrase
/// for tokens without visible text.
fn describe(tok: &Token, text: &str) -> String {
    match tok.kind {
        TokenKind::Newline => "end of line".to_string(),
        TokenKind::Eof => "end of file".to_string(),
        _ => {
            let s = text.get(tok.span.start..tok.span.end).unwrap_or("");
            let shown: String = s.chars().take(32).collect();
            if shown.len() < s.len() {
                format!("'{shown}…'")
            } else {
                format!("'{shown}'")
            }
        }
    }
}
