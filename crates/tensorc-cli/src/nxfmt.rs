//! Printing tensors the way Elixir Nx's `inspect` does, so that `tensorc run`
//! output can be compared by eye (or by diff) with what Nx prints for the same
//! program:
//!
//! ```text
//! #Nx.Tensor<
//!   f32[2][2]
//!   [
//!     [1.0, 2.0],
//!     [3.0, 4.0]
//!   ]
//! >
//! ```
//!
//! Floats follow Erlang's shortest round-trip printing (`Float.to_string/1`):
//! always a decimal point, scientific notation exactly when it is shorter
//! (`1.0e-4`, `1.0e3`, but `0.001`, `100.0`) or when the magnitude reaches
//! 2^53. Digits are the shortest that identify the value *in its own dtype*,
//! so an f32 `0.1` prints as `0.1`, not as the f64 expansion of the f32 value.
//! Non-finite values print as Nx does: `NaN`, `Inf`, `-Inf`.
//!
//! Large tensors are elided like Nx's default `limit: 50`: after `limit`
//! elements every open list gets a final `...` item.

use tensorc_ir::tensor::{f32_to_bf16_bits, f64_to_f16_bits};
use tensorc_ir::{DType, Scalar, Tensor};

/// Nx's default inspect limit (elements printed before `...`).
pub const DEFAULT_LIMIT: usize = 50;

/// The whole `#Nx.Tensor<…>` block, without a trailing newline.
/// `limit: None` prints every element.
pub fn format_tensor(t: &Tensor, limit: Option<usize>) -> String {
    let mut out = String::from("#Nx.Tensor<\n  ");
    out.push_str(&t.ty().to_string());
    out.push_str("\n  ");
    let mut budget = limit.unwrap_or(usize::MAX);
    let strides = t.ty().strides();
    write_level(t, &strides, 0, 0, &mut budget, &mut out);
    out.push_str("\n>");
    out
}

/// Writes the sub-tensor of `t` starting at flat element `offset` at axis `axis`.
/// The list of axis `k` opens on a line indented by `k + 1` levels of two spaces.
fn write_level(
    t: &Tensor,
    strides: &[usize],
    axis: usize,
    offset: usize,
    budget: &mut usize,
    out: &mut String,
) {
    let shape = t.shape();
    if axis == shape.len() {
        out.push_str(&format_scalar(t.get(offset), t.dtype()));
        return;
    }
    let n = shape[axis];
    if n == 0 {
        out.push_str("[]");
        return;
    }
    if axis + 1 == shape.len() {
        // Innermost axis: one line, like Nx.
        out.push('[');
        for i in 0..n {
            if i > 0 {
                out.push_str(", ");
            }
            if *budget == 0 {
                out.push_str("...");
                break;
            }
            *budget -= 1;
            out.push_str(&format_scalar(t.get(offset + i * strides[axis]), t.dtype()));
        }
        out.push(']');
        return;
    }
    let inner = "  ".repeat(axis + 2);
    out.push_str("[\n");
    for i in 0..n {
        if i > 0 {
            out.push_str(",\n");
        }
        out.push_str(&inner);
        if *budget == 0 {
            out.push_str("...");
            break;
        }
        write_level(
            t,
            strides,
            axis + 1,
            offset + i * strides[axis],
            budget,
            out,
        );
    }
    out.push('\n');
    out.push_str(&"  ".repeat(axis + 1));
    out.push(']');
}

/// One element as Nx prints it.
pub fn format_scalar(v: Scalar, dtype: DType) -> String {
    match v {
        Scalar::I(i) => i.to_string(),
        Scalar::U(u) => u.to_string(),
        Scalar::F(f) => format_float(f, dtype),
    }
}

/// A float value of the given dtype, in Erlang/Nx notation.
pub fn format_float(x: f64, dtype: DType) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Inf".into() } else { "-Inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let (digits, exp) = shortest_digits(x.abs(), dtype);
    let body = erlang_layout(&digits, exp, x.abs() >= 9007199254740992.0);
    if x < 0.0 { format!("-{body}") } else { body }
}

/// The shortest decimal digits (no leading/trailing zeros) and the decimal
/// exponent of the first digit, such that the number reads back as the same
/// value of `dtype`. `x` is finite and positive.
fn shortest_digits(x: f64, dtype: DType) -> (String, i32) {
    let sci = match dtype {
        // Rust's `{:e}` is shortest-round-trip for f32 and f64.
        DType::F32 => format!("{:e}", x as f32),
        DType::F16 | DType::BF16 => {
            let same = |s: &str| {
                let back: f64 = s.parse().unwrap_or(f64::NAN);
                if dtype == DType::F16 {
                    f64_to_f16_bits(back) == f64_to_f16_bits(x)
                } else {
                    f32_to_bf16_bits(back as f32) == f32_to_bf16_bits(x as f32)
                }
            };
            // 5 significant digits always identify a half (11-bit) or bf16 (8-bit) value.
            (0..5)
                .map(|p| format!("{x:.p$e}"))
                .find(|s| same(s))
                .unwrap_or_else(|| format!("{x:.4e}"))
        }
        _ => format!("{x:e}"),
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    (digits.to_string(), exp)
}

/// Places the decimal point the way Erlang's `float_to_list(F, [short])` does:
/// `digits` × 10^(`exp` − len + 1), choosing scientific notation exactly when it
/// is not longer than the plain form (ties go to plain), and always for
/// magnitudes ≥ 2^53 (where integers stop being exact).
fn erlang_layout(digits: &str, exp: i32, huge: bool) -> String {
    let len = digits.len() as i32;
    // Decimal exponent of the last digit.
    let place = exp - len + 1;
    let exp_cost = exp.to_string().len() as i32 + 2;
    let scientific = || {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() { "0" } else { rest };
        format!("{first}.{rest}e{exp}")
    };
    if place < 0 {
        if exp >= 0 {
            // The point falls inside the digits: 12.5, 3.25.
            let (int, frac) = digits.split_at((exp + 1) as usize);
            format!("{int}.{frac}")
        } else if 2 - place - len <= exp_cost {
            // 0.001 and the like.
            format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
        } else {
            scientific()
        }
    } else {
        let single = if len == 1 { 1 } else { 0 };
        if exp_cost + single >= place + 2 && !huge {
            format!("{digits}{}.0", "0".repeat(place as usize))
        } else {
            scientific()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorc_ir::TensorType;

    fn f64s(x: f64) -> String {
        format_float(x, DType::F64)
    }

    #[test]
    fn floats_like_elixir() {
        // Expected strings are what `Float.to_string/1` prints in Elixir.
        assert_eq!(f64s(1.0), "1.0");
        assert_eq!(f64s(-2.5), "-2.5");
        assert_eq!(f64s(0.5), "0.5");
        assert_eq!(f64s(100.0), "100.0");
        assert_eq!(f64s(1000.0), "1.0e3");
        assert_eq!(f64s(1234.0), "1234.0");
        assert_eq!(f64s(12345.0), "12345.0");
        assert_eq!(f64s(1.0e6), "1.0e6");
        assert_eq!(f64s(1.5e6), "1.5e6");
        assert_eq!(f64s(0.001), "0.001");
        assert_eq!(f64s(0.0001), "1.0e-4");
        assert_eq!(f64s(0.00012), "1.2e-4");
        assert_eq!(f64s(0.0012), "0.0012");
        assert_eq!(f64s(1.0e-5), "1.0e-5");
        assert_eq!(f64s(2.71875), "2.71875");
        assert_eq!(f64s(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(f64s(9007199254740992.0), "9.007199254740992e15");
        assert_eq!(f64s(9007199254740990.0), "9007199254740990.0");
        assert_eq!(f64s(1.0e300), "1.0e300");
        assert_eq!(f64s(0.0), "0.0");
        assert_eq!(f64s(-0.0), "-0.0");
        assert_eq!(f64s(f64::NAN), "NaN");
        assert_eq!(f64s(f64::INFINITY), "Inf");
        assert_eq!(f64s(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn narrow_floats_use_their_own_shortest_digits() {
        // The f32 nearest 0.1 is 0.100000001490116…; f32 printing says 0.1.
        assert_eq!(format_float(0.1f32 as f64, DType::F32), "0.1");
        assert_eq!(
            format_float(std::f32::consts::E as f64, DType::F32),
            "2.7182817"
        );
        assert_eq!(
            format_float(0.1f32 as f64, DType::F64),
            "0.10000000149011612"
        );
        // The f16 nearest 0.1 is 0.0999755859375; 0.1 already identifies it.
        let h = tensorc_ir::tensor::f16_bits_to_f64(f64_to_f16_bits(0.1));
        assert_eq!(h, 0.0999755859375);
        assert_eq!(format_float(h, DType::F16), "0.1");
        assert_eq!(format_float(65504.0, DType::F16), "6.55e4");
        assert_eq!(format_float(3.0, DType::BF16), "3.0");
    }

    fn tensor(dtype: DType, shape: Vec<usize>, values: &[Scalar]) -> Tensor {
        Tensor::from_scalars(TensorType::new(dtype, shape), values).unwrap()
    }

    #[test]
    fn matrix_like_nx() {
        let t = tensor(DType::F32, vec![2, 2], &[1.0, 2.0, 3.0, 4.0].map(Scalar::F));
        assert_eq!(
            format_tensor(&t, None),
            "#Nx.Tensor<\n  f32[2][2]\n  [\n    [1.0, 2.0],\n    [3.0, 4.0]\n  ]\n>"
        );
    }

    #[test]
    fn scalars_vectors_and_rank3() {
        let s = tensor(DType::S32, vec![], &[Scalar::I(-7)]);
        assert_eq!(format_tensor(&s, None), "#Nx.Tensor<\n  s32\n  -7\n>");
        let v = tensor(DType::U8, vec![3], &[1, 0, 255].map(Scalar::U));
        assert_eq!(
            format_tensor(&v, None),
            "#Nx.Tensor<\n  u8[3]\n  [1, 0, 255]\n>"
        );
        let c = tensor(DType::S64, vec![2, 1, 2], &[1, 2, 3, 4].map(Scalar::I));
        let expected = "#Nx.Tensor<
  s64[2][1][2]
  [
    [
      [1, 2]
    ],
    [
      [3, 4]
    ]
  ]
>";
        assert_eq!(format_tensor(&c, None), expected);
    }

    #[test]
    fn zero_size_dims() {
        let e = tensor(DType::F32, vec![0], &[]);
        assert_eq!(format_tensor(&e, None), "#Nx.Tensor<\n  f32[0]\n  []\n>");
        let e = tensor(DType::F32, vec![0, 3], &[]);
        assert_eq!(format_tensor(&e, None), "#Nx.Tensor<\n  f32[0][3]\n  []\n>");
        let e = tensor(DType::F32, vec![2, 0], &[]);
        assert_eq!(
            format_tensor(&e, None),
            "#Nx.Tensor<\n  f32[2][0]\n  [\n    [],\n    []\n  ]\n>"
        );
    }

    #[test]
    fn large_tensors_are_elided() {
        let values: Vec<Scalar> = (0..12).map(Scalar::I).collect();
        let v = tensor(DType::S32, vec![12], &values);
        assert_eq!(
            format_tensor(&v, Some(5)),
            "#Nx.Tensor<\n  s32[12]\n  [0, 1, 2, 3, 4, ...]\n>"
        );
        let m = tensor(DType::S32, vec![3, 4], &values);
        assert_eq!(
            format_tensor(&m, Some(6)),
            "#Nx.Tensor<\n  s32[3][4]\n  [\n    [0, 1, 2, 3],\n    [4, 5, ...],\n    ...\n  ]\n>"
        );
        // Exactly at the limit: nothing is elided.
        assert_eq!(format_tensor(&m, Some(12)), format_tensor(&m, None));
        assert!(!format_tensor(&m, Some(12)).contains("..."));
    }

    #[test]
    fn non_finite_elements() {
        let t = tensor(
            DType::F64,
            vec![3],
            &[f64::NAN, f64::INFINITY, f64::NEG_INFINITY].map(Scalar::F),
        );
        assert_eq!(
            format_tensor(&t, None),
            "#Nx.Tensor<\n  f64[3]\n  [NaN, Inf, -Inf]\n>"
        );
    }
}
