//! The syntax tree of a `.nxir` file, exactly as written (spec §1–§3).
//!
//! The parser produces it and the checker consumes it; nothing here is typed
//! or resolved yet, so the parser can be tested on programs that do not check.

use crate::span::Span;
use crate::types::Type;

#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    pub defs: Vec<Def>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A written type such as `f32[2][3]` or `{f32[2], s32}`.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeExpr {
    pub ty: Type,
    pub span: Span,
}

/// `def name(params) -> ret { body }`
#[derive(Clone, Debug, PartialEq)]
pub struct Def {
    pub name: Ident,
    pub params: Vec<Param>,
    pub ret: Option<TypeExpr>,
    pub body: Block,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: Ident,
    pub ty: TypeExpr,
}

/// The statements of a `def` or `fn` body and its `return`.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    /// The returned expression: a name, a literal, or a tuple of them.
    pub ret: Expr,
    /// Span of the `return` statement.
    pub ret_span: Span,
    pub span: Span,
}

/// `name = op args  type`
#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub name: Ident,
    pub op: Ident,
    pub args: Vec<Arg>,
    pub ty: Option<TypeExpr>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Positional(Expr),
    /// `key: value`
    Keyword(Ident, Expr),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Name(String),
    /// Integer literal (wide enough for every s64 and u64 value).
    Int(i128),
    /// Float literal, including `nan`, `infinity`, `neg_infinity`.
    Float(f64),
    /// `:same`, `:asc`, … (stored without the colon).
    Atom(String),
    Nil,
    Bool(bool),
    List(Vec<Expr>),
    Tuple(Vec<Expr>),
    /// `fn(a, b) { …; return r }`
    Fn(Box<FnExpr>),
    /// `&Nx.add/2`: module path (`Nx`), function name (`add`), arity.
    FnRef { module: String, name: String, arity: u32 },
    /// `pred -> value`, a clause of `cond`.
    Clause(Box<Expr>, Box<Expr>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct FnExpr {
    pub params: Vec<Ident>,
    pub body: Block,
}
