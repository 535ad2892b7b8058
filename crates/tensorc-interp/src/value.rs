//! Element values while computing, and Nx's conversion rules between dtypes.
//!
//! Element-wise ops decode a tensor into one of two lane vectors: every
//! integer dtype (u64 included) fits exactly in `i128`, and every float dtype
//! fits exactly in `f64`. Results are brought back into their dtype after each
//! operation (`wrap` for integers, `round_to` for floats), which reproduces
//! fixed-width arithmetic: integer ops are exact modulo 2^width, and f64
//! results of `+ - * / sqrt` rounded once to f32/f16/bf16 equal the directly
//! computed narrow result (f64 carries more than 2p+2 bits for those p).
//! Data-movement ops never come through here: they copy raw element bytes so
//! NaN payloads and -0.0 survive untouched.

use tensorc_ir::graph::Literal;
use tensorc_ir::{DType, Scalar, Tensor, TensorType};

use crate::InterpError;

/// The elements of one tensor, decoded for computing.
#[derive(Clone, Debug, PartialEq)]
pub enum Lanes {
    Int(Vec<i128>),
    Float(Vec<f64>),
}

impl Lanes {
    pub fn len(&self) -> usize {
        match self {
            Lanes::Int(v) => v.len(),
            Lanes::Float(v) => v.len(),
        }
    }
}

/// Integer value `v` wrapped into `dtype` (two's complement), as its in-range value.
pub fn wrap(dtype: DType, v: i128) -> i128 {
    let bits = dtype.bits();
    let mask: u128 = (1u128 << bits) - 1;
    let low = (v as u128) & mask;
    if dtype.is_signed_int() && low >> (bits - 1) == 1 {
        (low | !mask) as i128
    } else {
        low as i128
    }
}

/// The bit pattern of an in-range integer of `dtype` as an unsigned number.
pub fn bit_pattern(dtype: DType, v: i128) -> u128 {
    (v as u128) & ((1u128 << dtype.bits()) - 1)
}

/// `v` rounded to the nearest value of float `dtype` (ties to even).
pub fn round_to(dtype: DType, v: f64) -> f64 {
    match dtype {
        DType::F32 => v as f32 as f64,
        // Rounded straight from f64: going through f32 first could round twice.
        DType::F16 => round_to_precision(v, 11, -14, 65504.0),
        DType::BF16 => round_to_precision(v, 8, -126, f32::from_bits(0x7f7f_0000) as f64),
        _ => v,
    }
}

/// Rounds `v` to a binary float with `p` significant bits, smallest normal
/// exponent `emin` and largest finite value `max` (ties to even; gradual
/// underflow below 2^emin; overflow to infinity).
fn round_to_precision(v: f64, p: i32, emin: i32, max: f64) -> f64 {
    if !v.is_finite() || v == 0.0 {
        return v;
    }
    // Exponent of v from its bits (f64 subnormals are far below every target).
    let e = (((v.to_bits() >> 52) & 0x7ff) as i32 - 1023).max(emin);
    // Scaling by powers of two is exact, so only round_ties_even rounds.
    let scale = 2f64.powi(e - (p - 1));
    let r = (v / scale).round_ties_even() * scale;
    if r.abs() > max { f64::INFINITY.copysign(v) } else { r }
}

/// Float to integer the Nx way: truncate toward zero, saturate, NaN → 0.
pub fn float_to_int(dtype: DType, v: f64) -> i128 {
    let (lo, hi) = dtype.int_range().expect("integer dtype");
    if v.is_nan() {
        return 0;
    }
    // `as i128` truncates and saturates at i128's range, far outside every dtype's.
    (v as i128).clamp(lo, hi)
}

/// Integer to float, rounded once to nearest even in the target dtype.
pub fn int_to_float(dtype: DType, v: i128) -> f64 {
    match dtype {
        // Going through f64 first could round twice for 64-bit values.
        DType::F32 => v as f32 as f64,
        DType::F64 => v as f64,
        _ => round_to(dtype, to_f64_round_to_odd(v)),
    }
}

/// `v` as an f64 truncated to 53 bits with the last bit set when bits were
/// dropped ("round to odd"): rounding that again to a format of at most 51
/// bits gives the correctly rounded result, unlike rounding to nearest twice.
fn to_f64_round_to_odd(v: i128) -> f64 {
    let m = v.unsigned_abs();
    let bits = 128 - m.leading_zeros() as i32;
    if bits <= 53 {
        return v as f64; // exact
    }
    let shift = bits - 53;
    let mut t = m >> shift;
    if m & ((1u128 << shift) - 1) != 0 {
        t |= 1;
    }
    let r = t as f64 * 2f64.powi(shift);
    if v < 0 { -r } else { r }
}

/// Decode a tensor's elements without changing their values.
pub fn decode(t: &Tensor) -> Lanes {
    let b = t.bytes();
    // Little-endian element `i` of width N.
    fn le<const N: usize>(c: &[u8]) -> [u8; N] {
        c.try_into().expect("chunk of the element width")
    }
    match t.dtype() {
        DType::F32 => Lanes::Float(b.chunks_exact(4).map(|c| f32::from_le_bytes(le(c)) as f64).collect()),
        DType::F64 => Lanes::Float(b.chunks_exact(8).map(|c| f64::from_le_bytes(le(c))).collect()),
        DType::F16 | DType::BF16 => Lanes::Float((0..t.len()).map(|i| t.get(i).as_f64()).collect()),
        DType::S8 => Lanes::Int(b.iter().map(|&x| x as i8 as i128).collect()),
        DType::U8 => Lanes::Int(b.iter().map(|&x| x as i128).collect()),
        DType::S16 => Lanes::Int(b.chunks_exact(2).map(|c| i16::from_le_bytes(le(c)) as i128).collect()),
        DType::U16 => Lanes::Int(b.chunks_exact(2).map(|c| u16::from_le_bytes(le(c)) as i128).collect()),
        DType::S32 => Lanes::Int(b.chunks_exact(4).map(|c| i32::from_le_bytes(le(c)) as i128).collect()),
        DType::U32 => Lanes::Int(b.chunks_exact(4).map(|c| u32::from_le_bytes(le(c)) as i128).collect()),
        DType::S64 => Lanes::Int(b.chunks_exact(8).map(|c| i64::from_le_bytes(le(c)) as i128).collect()),
        DType::U64 => Lanes::Int(b.chunks_exact(8).map(|c| u64::from_le_bytes(le(c)) as i128).collect()),
    }
}

/// Decode a tensor converted to `to` with Nx's `as_type` rules.
pub fn decode_as(t: &Tensor, to: DType) -> Lanes {
    convert_lanes(decode(t), t.dtype(), to)
}

/// Convert decoded elements from dtype `from` to dtype `to` (Nx `as_type`).
pub fn convert_lanes(lanes: Lanes, from: DType, to: DType) -> Lanes {
    if from == to {
        return lanes;
    }
    match lanes {
        Lanes::Int(v) if to.is_float() => Lanes::Float(v.into_iter().map(|x| int_to_float(to, x)).collect()),
        Lanes::Int(v) => Lanes::Int(v.into_iter().map(|x| wrap(to, x)).collect()),
        Lanes::Float(v) if to.is_float() => Lanes::Float(v.into_iter().map(|x| round_to(to, x)).collect()),
        Lanes::Float(v) => Lanes::Int(v.into_iter().map(|x| float_to_int(to, x)).collect()),
    }
}

/// Encode lanes (already in range for `ty.dtype`) into a tensor.
pub fn encode(ty: TensorType, lanes: &Lanes) -> Result<Tensor, InterpError> {
    let mut t = Tensor::zeros(ty).map_err(|e| InterpError::Internal(e.to_string()))?;
    if lanes.len() != t.len() {
        return Err(InterpError::Internal(format!(
            "{} elements computed for {}",
            lanes.len(),
            t.ty()
        )));
    }
    let d = t.dtype();
    let w = d.size_bytes();
    let out = t.bytes_mut();
    // Values are in range for `d`, so the narrowing casts below are exact
    // (integers keep their two's-complement bits, floats are representable).
    match (lanes, d) {
        (Lanes::Float(v), DType::F32) => {
            out.chunks_exact_mut(4).zip(v).for_each(|(c, x)| c.copy_from_slice(&(*x as f32).to_le_bytes()))
        }
        (Lanes::Float(v), DType::F64) => out.chunks_exact_mut(8).zip(v).for_each(|(c, x)| c.copy_from_slice(&x.to_le_bytes())),
        (Lanes::Float(v), DType::F16 | DType::BF16) => v.iter().enumerate().for_each(|(i, x)| t.set(i, Scalar::F(*x))),
        (Lanes::Int(v), _) if d.is_int() => {
            // The low `w` bytes of the little-endian i128 are the element.
            out.chunks_exact_mut(w).zip(v).for_each(|(c, x)| c.copy_from_slice(&x.to_le_bytes()[..w]))
        }
        _ => return Err(InterpError::Internal(format!("lanes of the wrong kind for {}", t.ty()))),
    }
    Ok(t)
}

/// A literal as written, converted to `dtype`: integers wrap, floats round,
/// a float literal for an integer dtype follows `as_type`.
pub fn literal_value(dtype: DType, lit: Literal) -> Lanes {
    match lit {
        Literal::Int(v) if dtype.is_float() => Lanes::Float(vec![int_to_float(dtype, v)]),
        Literal::Int(v) => Lanes::Int(vec![wrap(dtype, v)]),
        Literal::Float(v) if dtype.is_float() => Lanes::Float(vec![round_to(dtype, v)]),
        Literal::Float(v) => Lanes::Int(vec![float_to_int(dtype, v)]),
    }
}

/// Convert one tensor to another dtype (shape kept).
pub fn convert_tensor(t: &Tensor, to: DType) -> Result<Tensor, InterpError> {
    if t.dtype() == to {
        return Ok(t.clone());
    }
    encode(t.ty().with_dtype(to), &decode_as(t, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_is_twos_complement() {
        assert_eq!(wrap(DType::S8, 128), -128);
        assert_eq!(wrap(DType::S8, -129), 127);
        assert_eq!(wrap(DType::U8, -1), 255);
        assert_eq!(wrap(DType::U64, -1), u64::MAX as i128);
        assert_eq!(wrap(DType::S64, i64::MAX as i128 + 1), i64::MIN as i128);
        assert_eq!(bit_pattern(DType::S16, -1), 0xffff);
    }

    #[test]
    fn float_to_int_saturates() {
        assert_eq!(float_to_int(DType::U8, f64::INFINITY), 255);
        assert_eq!(float_to_int(DType::U8, f64::NAN), 0);
        assert_eq!(float_to_int(DType::U8, f64::NEG_INFINITY), 0);
        assert_eq!(float_to_int(DType::S32, f64::INFINITY), 2147483647);
        assert_eq!(float_to_int(DType::S32, f64::NEG_INFINITY), -2147483648);
        assert_eq!(float_to_int(DType::S32, -2.9), -2);
        assert_eq!(float_to_int(DType::S8, 300.0), 127);
        assert_eq!(float_to_int(DType::U64, 1e30), u64::MAX as i128);
    }

    #[test]
    fn half_and_bfloat_round_once() {
        // 1 + 2^-11 is the f16 tie between 1 and 1 + 2^-10; a hair above it must
        // round up, although rounding to f32 first would land exactly on the tie.
        let above = 1.0 + 2f64.powi(-11) + 2f64.powi(-40);
        assert_eq!(round_to(DType::F16, above), 1.0 + 2f64.powi(-10));
        assert_eq!(round_to(DType::F16, 1.0 + 2f64.powi(-11)), 1.0);
        assert_eq!(round_to(DType::F16, 65519.0), 65504.0);
        assert_eq!(round_to(DType::F16, 65520.0), f64::INFINITY);
        assert_eq!(round_to(DType::F16, -1e-9), -0.0);
        // smallest f16 subnormal is 2^-24; 1.5·2^-24 ties to even (2^-23)
        assert_eq!(round_to(DType::F16, 1.5 * 2f64.powi(-24)), 2f64.powi(-23));
        assert_eq!(round_to(DType::F16, 2f64.powi(-26)), 0.0);
        // bf16: 8 bits; same double-rounding trap one bit below
        let above = 1.0 + 2f64.powi(-8) + 2f64.powi(-40);
        assert_eq!(round_to(DType::BF16, above), 1.0 + 2f64.powi(-7));
        assert_eq!(round_to(DType::BF16, 3.4e38), f64::INFINITY);
        assert!(round_to(DType::BF16, f64::NAN).is_nan());
    }

    #[test]
    fn int_to_bf16_rounds_once() {
        // 2^60 + 2^52 + 1 is just above the bf16 tie between 2^60 and 2^60 + 2^53;
        // via f64 (nearest) the +1 is lost and the tie would round down to 2^60.
        let v: i128 = (1 << 60) + (1 << 52) + 1;
        assert_eq!(int_to_float(DType::BF16, v), ((1u64 << 60) + (1 << 53)) as f64);
        assert_eq!(int_to_float(DType::BF16, -v), -(((1u64 << 60) + (1 << 53)) as f64));
        assert_eq!(int_to_float(DType::BF16, (1 << 60) + (1 << 52)), (1u64 << 60) as f64);
        assert_eq!(int_to_float(DType::F16, 70000), f64::INFINITY);
        assert_eq!(int_to_float(DType::F16, 2049), 2048.0);
    }

    #[test]
    fn int_to_f32_rounds_once() {
        // 2^24 + 1 is a tie between 2^24 and 2^24 + 2: ties to even gives 2^24.
        assert_eq!(int_to_float(DType::F32, (1 << 24) + 1), 16777216.0);
        // 2^62 + 2^38 + 1: direct rounding to f32 goes up (above the f32 tie),
        // via f64 the +1 is lost and the tie rounds to even (down).
        let v: i128 = (1 << 62) + (1 << 38) + 1;
        assert_eq!(int_to_float(DType::F32, v), ((1u64 << 62) + (1 << 39)) as f64);
    }
}
