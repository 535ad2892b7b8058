//! Dtypes, tensor types and Nx's promotion and broadcasting rules (spec §2).
//!
//! Everything that decides a result type lives here so that the checker, the
//! interpreter and the lowering can never disagree about it.

use std::fmt;

/// An element type. Booleans are `U8` holding 0 or 1, as in Nx.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    S8,
    S16,
    S32,
    S64,
    U8,
    U16,
    U32,
    U64,
    F16,
    BF16,
    F32,
    F64,
}

/// The kind of a dtype, in Nx's promotion order `u < s < bf < f`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Unsigned,
    Signed,
    BFloat,
    Float,
}

impl DType {
    pub const ALL: [DType; 12] = [
        DType::S8,
        DType::S16,
        DType::S32,
        DType::S64,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::F16,
        DType::BF16,
        DType::F32,
        DType::F64,
    ];

    /// Tier-1 dtypes (spec §2): everything but f16 and bf16.
    pub fn is_tier1(self) -> bool {
        !matches!(self, DType::F16 | DType::BF16)
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::S8 => "s8",
            DType::S16 => "s16",
            DType::S32 => "s32",
            DType::S64 => "s64",
            DType::U8 => "u8",
            DType::U16 => "u16",
            DType::U32 => "u32",
            DType::U64 => "u64",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::F32 => "f32",
            DType::F64 => "f64",
        }
    }

    pub fn from_name(s: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == s)
    }

    pub fn kind(self) -> Kind {
        match self {
            DType::S8 | DType::S16 | DType::S32 | DType::S64 => Kind::Signed,
            DType::U8 | DType::U16 | DType::U32 | DType::U64 => Kind::Unsigned,
            DType::BF16 => Kind::BFloat,
            DType::F16 | DType::F32 | DType::F64 => Kind::Float,
        }
    }

    pub fn bits(self) -> u32 {
        match self {
            DType::S8 | DType::U8 => 8,
            DType::S16 | DType::U16 | DType::F16 | DType::BF16 => 16,
            DType::S32 | DType::U32 | DType::F32 => 32,
            DType::S64 | DType::U64 | DType::F64 => 64,
        }
    }

    pub fn size_bytes(self) -> usize {
        self.bits() as usize / 8
    }

    pub fn is_float(self) -> bool {
        matches!(self.kind(), Kind::Float | Kind::BFloat)
    }

    pub fn is_int(self) -> bool {
        !self.is_float()
    }

    pub fn is_signed_int(self) -> bool {
        self.kind() == Kind::Signed
    }

    pub fn is_unsigned_int(self) -> bool {
        self.kind() == Kind::Unsigned
    }

    fn make(kind: Kind, bits: u32) -> DType {
        match (kind, bits) {
            (Kind::Signed, 8) => DType::S8,
            (Kind::Signed, 16) => DType::S16,
            (Kind::Signed, 32) => DType::S32,
            (Kind::Signed, _) => DType::S64,
            (Kind::Unsigned, 8) => DType::U8,
            (Kind::Unsigned, 16) => DType::U16,
            (Kind::Unsigned, 32) => DType::U32,
            (Kind::Unsigned, _) => DType::U64,
            (Kind::BFloat, _) => DType::BF16,
            (Kind::Float, 16) => DType::F16,
            (Kind::Float, 32) => DType::F32,
            (Kind::Float, _) => DType::F64,
        }
    }

    /// Nx's `Nx.Type.merge/2` (spec §2.1).
    pub fn merge(a: DType, b: DType) -> DType {
        use Kind::*;
        let (ka, kb) = (a.kind(), b.kind());
        if ka == kb {
            return if a.bits() >= b.bits() { a } else { b };
        }
        match (ka, kb) {
            (Unsigned, Signed) => DType::make(Signed, (2 * a.bits()).min(64).max(b.bits())),
            (Signed, Unsigned) => DType::make(Signed, (2 * b.bits()).min(64).max(a.bits())),
            // bf16 with f16 gives f32; bf16 with a wider float gives that float.
            (BFloat, Float) | (Float, BFloat) => {
                let f = if ka == Float { a } else { b };
                if f == DType::F16 { DType::F32 } else { f }
            }
            // Any integer with a float: that float.
            _ => {
                if a.is_float() {
                    a
                } else {
                    b
                }
            }
        }
    }

    /// Nx's `to_floating`: integers become f32, floats stay.
    pub fn to_float(self) -> DType {
        if self.is_float() { self } else { DType::F32 }
    }

    /// Nx's `to_aggregate` for `sum`/`product` accumulators.
    pub fn to_aggregate(self) -> DType {
        match self {
            DType::U8 | DType::U16 | DType::U32 => DType::U32,
            DType::U64 => DType::U64,
            DType::S8 | DType::S16 | DType::S32 => DType::S32,
            other => other,
        }
    }

    /// Smallest and largest finite integer of an integer dtype, as i128.
    pub fn int_range(self) -> Option<(i128, i128)> {
        let bits = self.bits();
        match self.kind() {
            Kind::Signed => Some((-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)),
            Kind::Unsigned => Some((0, (1i128 << bits) - 1)),
            _ => None,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A dense, row-major tensor type: dtype plus static dimensions (possibly 0).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    pub dtype: DType,
    pub shape: Vec<usize>,
}

impl TensorType {
    pub fn new(dtype: DType, shape: impl Into<Vec<usize>>) -> Self {
        TensorType { dtype, shape: shape.into() }
    }

    pub fn scalar(dtype: DType) -> Self {
        TensorType { dtype, shape: Vec::new() }
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements; `None` when it overflows `usize`.
    pub fn checked_num_elements(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }

    /// Number of elements. Only call on types the checker accepted (it rejects overflow).
    pub fn num_elements(&self) -> usize {
        self.checked_num_elements().expect("checked types never overflow")
    }

    pub fn size_bytes(&self) -> usize {
        self.num_elements() * self.dtype.size_bytes()
    }

    pub fn with_dtype(&self, dtype: DType) -> Self {
        TensorType { dtype, shape: self.shape.clone() }
    }

    /// Row-major strides in elements.
    pub fn strides(&self) -> Vec<usize> {
        let mut s = vec![1usize; self.shape.len()];
        for i in (0..self.shape.len().saturating_sub(1)).rev() {
            s[i] = s[i + 1] * self.shape[i + 1];
        }
        s
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.dtype)?;
        for d in &self.shape {
            write!(f, "[{d}]")?;
        }
        Ok(())
    }
}

/// The type of a value: a tensor, or a tuple (results of `while`, `cond`, multi-result calls).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    Tensor(TensorType),
    Tuple(Vec<Type>),
}

impl Type {
    pub fn as_tensor(&self) -> Option<&TensorType> {
        match self {
            Type::Tensor(t) => Some(t),
            Type::Tuple(_) => None,
        }
    }

    /// The tensors of this type in order, tuples flattened depth-first.
    pub fn flatten(&self) -> Vec<TensorType> {
        let mut out = Vec::new();
        fn go(t: &Type, out: &mut Vec<TensorType>) {
            match t {
                Type::Tensor(t) => out.push(t.clone()),
                Type::Tuple(ts) => ts.iter().for_each(|t| go(t, out)),
            }
        }
        go(self, &mut out);
        out
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Tensor(t) => t.fmt(f),
            Type::Tuple(ts) => {
                f.write_str("{")?;
                for (i, t) in ts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    t.fmt(f)?;
                }
                f.write_str("}")
            }
        }
    }
}

/// Nx/numpy broadcasting of two shapes (spec §2.2); `None` when incompatible.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i < rank - a.len() { 1 } else { a[i - (rank - a.len())] };
        let db = if i < rank - b.len() { 1 } else { b[i - (rank - b.len())] };
        out[i] = if da == db {
            da
        } else if da == 1 {
            db
        } else if db == 1 {
            da
        } else {
            return None;
        };
    }
    Some(out)
}

/// The narrowest integer dtype that holds `v`: unsigned when `v >= 0` and
/// `prefer_unsigned`, signed otherwise (the weak-literal rule of spec §2.1).
pub fn narrowest_int(v: i128, prefer_unsigned: bool) -> Option<DType> {
    let cands: &[DType] = if v >= 0 && prefer_unsigned {
        &[DType::U8, DType::U16, DType::U32, DType::U64]
    } else {
        &[DType::S8, DType::S16, DType::S32, DType::S64]
    };
    cands.iter().copied().find(|d| {
        let (lo, hi) = d.int_range().unwrap();
        lo <= v && v <= hi
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use DType::*;

    #[test]
    fn merge_follows_spec_examples() {
        assert_eq!(DType::merge(S8, S32), S32);
        assert_eq!(DType::merge(F32, F64), F64);
        assert_eq!(DType::merge(U8, S8), S16);
        assert_eq!(DType::merge(U32, S8), S64);
        assert_eq!(DType::merge(S64, F32), F32);
        assert_eq!(DType::merge(BF16, F16), F32);
        assert_eq!(DType::merge(BF16, F64), F64);
        assert_eq!(DType::merge(U64, S64), S64);
    }

    #[test]
    fn broadcast_follows_spec_example() {
        assert_eq!(broadcast_shapes(&[5, 1, 4, 1], &[3, 4, 5]), Some(vec![5, 3, 4, 5]));
        assert_eq!(broadcast_shapes(&[2, 3], &[3, 2]), None);
        assert_eq!(broadcast_shapes(&[], &[0, 2]), Some(vec![0, 2]));
    }

    #[test]
    fn narrowest_int_literals() {
        assert_eq!(narrowest_int(255, true), Some(U8));
        assert_eq!(narrowest_int(256, true), Some(U16));
        assert_eq!(narrowest_int(-1, true), Some(S8));
        assert_eq!(narrowest_int(200, false), Some(S16));
    }
}
