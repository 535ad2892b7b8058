//! The op-name tables of `.nxir`: which spelling means which graph op.
//!
//! One table per family, read in both directions — the checker maps names to
//! ops and the printer maps ops back to names — so the two can never drift.

use crate::graph::{BinaryOp, ReduceKind, UnaryOp};

pub(crate) const UNARY: &[(&str, UnaryOp)] = &[
    ("negate", UnaryOp::Negate),
    ("abs", UnaryOp::Abs),
    ("sign", UnaryOp::Sign),
    ("floor", UnaryOp::Floor),
    ("ceil", UnaryOp::Ceil),
    ("round", UnaryOp::Round),
    ("bitwise_not", UnaryOp::BitwiseNot),
    ("population_count", UnaryOp::PopulationCount),
    ("count_leading_zeros", UnaryOp::CountLeadingZeros),
    ("exp", UnaryOp::Exp),
    ("expm1", UnaryOp::Expm1),
    ("log", UnaryOp::Log),
    ("log1p", UnaryOp::Log1p),
    ("sigmoid", UnaryOp::Sigmoid),
    ("sin", UnaryOp::Sin),
    ("cos", UnaryOp::Cos),
    ("tan", UnaryOp::Tan),
    ("asin", UnaryOp::Asin),
    ("acos", UnaryOp::Acos),
    ("atan", UnaryOp::Atan),
    ("sinh", UnaryOp::Sinh),
    ("cosh", UnaryOp::Cosh),
    ("tanh", UnaryOp::Tanh),
    ("asinh", UnaryOp::Asinh),
    ("acosh", UnaryOp::Acosh),
    ("atanh", UnaryOp::Atanh),
    ("sqrt", UnaryOp::Sqrt),
    ("rsqrt", UnaryOp::Rsqrt),
    ("cbrt", UnaryOp::Cbrt),
    ("erf", UnaryOp::Erf),
    ("erfc", UnaryOp::Erfc),
    ("erf_inv", UnaryOp::ErfInv),
    ("is_nan", UnaryOp::IsNan),
    ("is_infinity", UnaryOp::IsInfinity),
    ("logical_not", UnaryOp::LogicalNot),
];

pub(crate) const BINARY: &[(&str, BinaryOp)] = &[
    ("add", BinaryOp::Add),
    ("subtract", BinaryOp::Subtract),
    ("multiply", BinaryOp::Multiply),
    ("pow", BinaryOp::Pow),
    ("remainder", BinaryOp::Remainder),
    ("atan2", BinaryOp::Atan2),
    ("min", BinaryOp::Min),
    ("max", BinaryOp::Max),
    ("quotient", BinaryOp::Quotient),
    ("divide", BinaryOp::Divide),
    ("bitwise_and", BinaryOp::BitwiseAnd),
    ("bitwise_or", BinaryOp::BitwiseOr),
    ("bitwise_xor", BinaryOp::BitwiseXor),
    ("left_shift", BinaryOp::LeftShift),
    ("right_shift", BinaryOp::RightShift),
    ("equal", BinaryOp::Equal),
    ("not_equal", BinaryOp::NotEqual),
    ("less", BinaryOp::Less),
    ("less_equal", BinaryOp::LessEqual),
    ("greater", BinaryOp::Greater),
    ("greater_equal", BinaryOp::GreaterEqual),
    ("logical_and", BinaryOp::LogicalAnd),
    ("logical_or", BinaryOp::LogicalOr),
    ("logical_xor", BinaryOp::LogicalXor),
];

pub(crate) const REDUCE: &[(&str, ReduceKind)] = &[
    ("sum", ReduceKind::Sum),
    ("product", ReduceKind::Product),
    ("reduce_max", ReduceKind::Max),
    ("reduce_min", ReduceKind::Min),
    ("all", ReduceKind::All),
    ("any", ReduceKind::Any),
];

/// Ops the spec names that this checker does not implement yet: they get the
/// clean "unsupported operation" diagnostic instead of "unknown operation".
pub(crate) const UNSUPPORTED: &[&str] = &[
    "fft",
    "ifft",
    "real",
    "imag",
    "conjugate",
];

/// Ops implemented outside the tables above (matched by name in the checker).
pub(crate) const OTHER: &[&str] = &[
    "select", "clip", "as_type", "bitcast", "constant", "tensor", "iota", "eye", "reshape", "squeeze", "broadcast",
    "transpose", "slice", "pad", "reverse", "concatenate", "stack", "dot", "argmax", "argmin", "call", "elem",
    // F2 (issue 3)
    "conv", "window_sum", "window_product", "window_max", "window_min", "window_reduce",
    // F1 (issue 3)
    "reduce", "while", "cond",
    // F3 (issue 3)
    "cumulative_sum", "cumulative_product", "cumulative_max", "cumulative_min", "sort", "argsort", "top_k", "take",
    "gather", "take_along_axis", "put_slice", "indexed_add", "indexed_put", "window_scatter_max",
    "window_scatter_min",
    // F4 (issue 3)
    "triangular_solve",
];

/// Every op name the language knows, implemented or not (for "did you mean" hints).
pub(crate) fn all_names() -> impl Iterator<Item = &'static str> {
    UNARY
        .iter()
        .map(|p| p.0)
        .chain(BINARY.iter().map(|p| p.0))
        .chain(REDUCE.iter().map(|p| p.0))
        .chain(OTHER.iter().copied())
        .chain(UNSUPPORTED.iter().copied())
}

pub(crate) fn unary_by_name(name: &str) -> Option<UnaryOp> {
    UNARY.iter().find(|(n, _)| *n == name).map(|&(_, op)| op)
}

pub(crate) fn unary_name(op: UnaryOp) -> &'static str {
    UNARY.iter().find(|(_, o)| *o == op).map(|&(n, _)| n).expect("every unary op is in the table")
}

pub(crate) fn binary_by_name(name: &str) -> Option<BinaryOp> {
    BINARY.iter().find(|(n, _)| *n == name).map(|&(_, op)| op)
}

pub(crate) fn binary_name(op: BinaryOp) -> &'static str {
    BINARY.iter().find(|(_, o)| *o == op).map(|&(n, _)| n).expect("every binary op is in the table")
}

pub(crate) fn reduce_by_name(name: &str) -> Option<ReduceKind> {
    REDUCE.iter().find(|(n, _)| *n == name).map(|&(_, op)| op)
}

pub(crate) fn reduce_name(kind: ReduceKind) -> &'static str {
    REDUCE.iter().find(|(_, k)| *k == kind).map(|&(n, _)| n).expect("every reduction is in the table")
}

/// Unary ops whose result is the float type of the operand (spec §4.2 "unary math").
pub(crate) fn unary_is_math(op: UnaryOp) -> bool {
    use UnaryOp::*;
    !matches!(
        op,
        Negate | Abs | Sign | Floor | Ceil | Round | BitwiseNot | PopulationCount | CountLeadingZeros | IsNan
            | IsInfinity | LogicalNot
    )
}

pub(crate) fn unary_int_only(op: UnaryOp) -> bool {
    matches!(op, UnaryOp::BitwiseNot | UnaryOp::PopulationCount | UnaryOp::CountLeadingZeros)
}

pub(crate) fn binary_int_only(op: BinaryOp) -> bool {
    use BinaryOp::*;
    matches!(op, Quotient | BitwiseAnd | BitwiseOr | BitwiseXor | LeftShift | RightShift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_unique_names() {
        let mut names: Vec<&str> = UNARY.iter().map(|p| p.0).collect();
        names.extend(BINARY.iter().map(|p| p.0));
        names.extend(REDUCE.iter().map(|p| p.0));
        names.extend(UNSUPPORTED.iter().copied());
        names.extend(OTHER.iter().copied());
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
    }
}
