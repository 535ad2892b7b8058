//! Op semantics against hand-computed values from the spec and Nx's docs.
//!
//! Graphs are built directly (not parsed) so these tests pin the interpreter
//! alone; `tests/nxir.rs` runs the same kind of checks through the parser and
//! checker. Expected values are worked out by hand from the rules in spec §4
//! (or, for transcendental functions, from mpmath), never copied from output.

use super::*;
use tensorc_ir::graph::{Literal, Node, ReduceKind, Region};
use crate::value::round_to;
use tensorc_ir::{Scalar, Span};

use DType::*;

/// Builds a one-function module node by node.
#[derive(Default)]
struct B {
    nodes: Vec<Node>,
    params: Vec<(String, TensorType)>,
    param_ids: Vec<ValueId>,
}

impl B {
    fn push(&mut self, op: Op, operands: &[ValueId], ty: Type, name: &str) -> ValueId {
        self.nodes.push(Node { op, operands: operands.to_vec(), ty, name: name.into(), span: Span::default() });
        ValueId(self.nodes.len() as u32 - 1)
    }

    fn param(&mut self, ty: TensorType) -> ValueId {
        let name = format!("p{}", self.params.len());
        self.params.push((name.clone(), ty.clone()));
        let id = self.push(Op::Param(self.params.len() - 1), &[], Type::Tensor(ty), &name);
        self.param_ids.push(id);
        id
    }

    fn op(&mut self, op: Op, operands: &[ValueId], ty: TensorType) -> ValueId {
        let n = format!("v{}", self.nodes.len());
        self.push(op, operands, Type::Tensor(ty), &n)
    }

    fn lit(&mut self, d: DType, l: Literal) -> ValueId {
        self.push(Op::Constant(l), &[], Type::Tensor(TensorType::scalar(d)), "")
    }

    fn function(self, name: &str, results: &[ValueId]) -> Function {
        let result = if results.len() == 1 {
            self.nodes[results[0].index()].ty.clone()
        } else {
            Type::Tuple(results.iter().map(|r| self.nodes[r.index()].ty.clone()).collect())
        };
        let body = Region {
            params: self.param_ids.clone(),
            nodes: (0..self.nodes.len() as u32).map(ValueId).collect(),
            results: results.to_vec(),
            returns_tuple: results.len() != 1,
        };
        Function {
            name: name.into(),
            params: self.params,
            result,
            nodes: self.nodes,
            regions: vec![body],
            span: Span::default(),
        }
    }

    fn module(self, results: &[ValueId]) -> Module {
        Module { functions: vec![self.function("main", results)] }
    }
}

fn tt(d: DType, shape: &[usize]) -> TensorType {
    TensorType::new(d, shape.to_vec())
}

/// A tensor from f64 values (exact for every test value used with them).
fn tf(d: DType, shape: &[usize], v: &[f64]) -> Tensor {
    Tensor::from_scalars(tt(d, shape), &v.iter().map(|&x| Scalar::F(x)).collect::<Vec<_>>()).unwrap()
}

/// A tensor from integer values.
fn ti(d: DType, shape: &[usize], v: &[i128]) -> Tensor {
    let s: Vec<Scalar> =
        v.iter().map(|&x| if d.is_unsigned_int() { Scalar::U(x as u64) } else { Scalar::I(x as i64) }).collect();
    Tensor::from_scalars(tt(d, shape), &s).unwrap()
}

fn floats(t: &Tensor) -> Vec<f64> {
    t.to_scalars().iter().map(|s| s.as_f64()).collect()
}

fn ints(t: &Tensor) -> Vec<i128> {
    t.to_scalars()
        .iter()
        .map(|s| match s {
            Scalar::I(v) => *v as i128,
            Scalar::U(v) => *v as i128,
            Scalar::F(v) => panic!("float {v}"),
        })
        .collect()
}

/// Float equality that treats NaN as equal to NaN and tells -0.0 from 0.0.
fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits())
}

fn run1(m: &Module, inputs: &[Tensor]) -> Tensor {
    let mut r = run(m, "main", inputs).unwrap();
    assert_eq!(r.len(), 1);
    r.pop().unwrap()
}

/// `op x` with x's dtype `d_in` and result dtype `d_out`.
fn unary_of(op: UnaryOp, x: Tensor, d_out: DType) -> Tensor {
    let mut b = B::default();
    let p = b.param(x.ty().clone());
    let r = b.op(Op::Unary(op), &[p], x.ty().with_dtype(d_out));
    run1(&b.module(&[r]), &[x])
}

/// `op a, b` computed in `compute`, result `d_out`, broadcast shape `shape`.
fn binary_of(op: BinaryOp, compute: DType, a: Tensor, bt: Tensor, d_out: DType, shape: &[usize]) -> Tensor {
    let mut b = B::default();
    let (pa, pb) = (b.param(a.ty().clone()), b.param(bt.ty().clone()));
    let r = b.op(Op::Binary { op, compute }, &[pa, pb], tt(d_out, shape));
    run1(&b.module(&[r]), &[a, bt])
}

/// Element-wise integer binary op on equal-shaped vectors of one dtype.
fn ibin(op: BinaryOp, d: DType, a: &[i128], bv: &[i128]) -> Vec<i128> {
    let out = if op.is_predicate() { U8 } else { d };
    ints(&binary_of(op, d, ti(d, &[a.len()], a), ti(d, &[bv.len()], bv), out, &[a.len()]))
}

fn fbin(op: BinaryOp, d: DType, a: &[f64], bv: &[f64]) -> Vec<f64> {
    let out = if op.is_predicate() { U8 } else { d };
    floats(&binary_of(op, d, tf(d, &[a.len()], a), tf(d, &[bv.len()], bv), out, &[a.len()]))
}

const NAN: f64 = f64::NAN;
const INF: f64 = f64::INFINITY;

// ---------------------------------------------------------------- inputs

#[test]
fn inputs_are_checked() {
    let mut b = B::default();
    let p = b.param(tt(F32, &[2, 3]));
    let m = b.module(&[p]);
    let e = run(&m, "main", &[tf(F64, &[3, 2], &[0.0; 6])]).unwrap_err();
    assert_eq!(e.to_string(), "input 'p0' expects f32[2][3], got f64[3][2]");
    let e = run(&m, "main", &[]).unwrap_err();
    assert_eq!(e.to_string(), "function 'main' expects 1 inputs, got 0");
    assert_eq!(run(&m, "nope", &[]).unwrap_err(), InterpError::UnknownFunction("nope".into()));
    let x = tf(F32, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(run1(&m, std::slice::from_ref(&x)), x);
}

// ---------------------------------------------------------------- unary

#[test]
fn round_is_half_away_from_zero() {
    let x = tf(F32, &[6], &[0.5, 1.5, 2.5, -0.5, -2.5, 2.4]);
    assert_eq!(floats(&unary_of(UnaryOp::Round, x, F32)), [1.0, 2.0, 3.0, -1.0, -3.0, 2.0]);
    let x = tf(F64, &[3], &[-1.5, 1.2, -0.2]);
    assert_eq!(floats(&unary_of(UnaryOp::Floor, x.clone(), F64)), [-2.0, 1.0, -1.0]);
    assert_eq!(floats(&unary_of(UnaryOp::Ceil, x, F64)), [-1.0, 2.0, -0.0]);
    // identity on integers
    let x = ti(S32, &[3], &[-3, 0, 7]);
    for op in [UnaryOp::Floor, UnaryOp::Ceil, UnaryOp::Round] {
        assert_eq!(ints(&unary_of(op, x.clone(), S32)), [-3, 0, 7]);
    }
}

#[test]
fn sign_abs_negate() {
    let x = tf(F32, &[5], &[-3.5, 0.0, 2.0, NAN, -INF]);
    assert!(same(&floats(&unary_of(UnaryOp::Sign, x.clone(), F32)), &[-1.0, 0.0, 1.0, NAN, -1.0]));
    assert!(same(&floats(&unary_of(UnaryOp::Abs, x.clone(), F32)), &[3.5, 0.0, 2.0, NAN, INF]));
    assert!(same(&floats(&unary_of(UnaryOp::Negate, x, F32)), &[3.5, -0.0, -2.0, NAN, INF]));
    let x = ti(S8, &[4], &[-128, -5, 0, 127]);
    assert_eq!(ints(&unary_of(UnaryOp::Sign, x.clone(), S8)), [-1, -1, 0, 1]);
    // abs and negate of MIN wrap back to MIN
    assert_eq!(ints(&unary_of(UnaryOp::Abs, x.clone(), S8)), [-128, 5, 0, 127]);
    assert_eq!(ints(&unary_of(UnaryOp::Negate, x, S8)), [-128, 5, 0, -127]);
    let x = ti(U8, &[3], &[0, 1, 200]);
    assert_eq!(ints(&unary_of(UnaryOp::Negate, x.clone(), U8)), [0, 255, 56]);
    assert_eq!(ints(&unary_of(UnaryOp::Sign, x, U8)), [0, 1, 1]);
}

#[test]
fn bit_counting() {
    let x = ti(S8, &[4], &[-1, 0, 1, 0x40]);
    assert_eq!(ints(&unary_of(UnaryOp::PopulationCount, x.clone(), S8)), [8, 0, 1, 1]);
    assert_eq!(ints(&unary_of(UnaryOp::CountLeadingZeros, x.clone(), S8)), [0, 8, 7, 1]);
    assert_eq!(ints(&unary_of(UnaryOp::BitwiseNot, x, S8)), [0, -1, -2, -65]);
    let x = ti(U64, &[3], &[u64::MAX as i128, 0, 1 << 40]);
    assert_eq!(ints(&unary_of(UnaryOp::PopulationCount, x.clone(), U64)), [64, 0, 1]);
    assert_eq!(ints(&unary_of(UnaryOp::CountLeadingZeros, x.clone(), U64)), [0, 64, 23]);
    assert_eq!(ints(&unary_of(UnaryOp::BitwiseNot, x, U64)), [0, u64::MAX as i128, (u64::MAX - (1 << 40)) as i128]);
    let x = ti(U16, &[2], &[1, 0xff]);
    assert_eq!(ints(&unary_of(UnaryOp::CountLeadingZeros, x, U16)), [15, 8]);
}

#[test]
fn predicates_give_u8() {
    let x = tf(F32, &[5], &[NAN, INF, -INF, 0.0, -0.0]);
    assert_eq!(ints(&unary_of(UnaryOp::IsNan, x.clone(), U8)), [1, 0, 0, 0, 0]);
    assert_eq!(ints(&unary_of(UnaryOp::IsInfinity, x.clone(), U8)), [0, 1, 1, 0, 0]);
    assert_eq!(ints(&unary_of(UnaryOp::LogicalNot, x, U8)), [0, 0, 0, 1, 1]);
    let x = ti(S32, &[3], &[0, -4, 9]);
    assert_eq!(ints(&unary_of(UnaryOp::LogicalNot, x.clone(), U8)), [1, 0, 0]);
    assert_eq!(ints(&unary_of(UnaryOp::IsNan, x, U8)), [0, 0, 0]);
}

#[test]
fn math_ops_on_exact_points() {
    use UnaryOp::*;
    let one = |op, x: f64, d| floats(&unary_of(op, tf(d, &[1], &[x]), d))[0];
    for d in [F32, F64] {
        assert_eq!(one(Exp, 0.0, d), 1.0);
        assert_eq!(one(Log, 1.0, d), 0.0);
        assert_eq!(one(Log, 0.0, d), -INF);
        assert!(one(Log, -1.0, d).is_nan());
        assert_eq!(one(Sqrt, 16.0, d), 4.0);
        assert_eq!(one(Rsqrt, 4.0, d), 0.5);
        assert_eq!(one(Rsqrt, 0.0, d), INF);
        assert_eq!(one(Cbrt, -27.0, d), -3.0);
        assert_eq!(one(Sigmoid, 0.0, d), 0.5);
        assert_eq!(one(Sigmoid, -INF, d), 0.0);
        assert_eq!(one(Tanh, INF, d), 1.0);
        assert_eq!(one(Atan, INF, d), round_to(d, std::f64::consts::FRAC_PI_2));
        assert_eq!(one(Acos, -1.0, d), round_to(d, std::f64::consts::PI));
        assert_eq!(one(Atanh, 1.0, d), INF);
        assert_eq!(one(Acosh, 1.0, d), 0.0);
        assert_eq!(one(Erf, 0.0, d), 0.0);
        assert_eq!(one(Erfc, 0.0, d), 1.0);
        assert_eq!(one(ErfInv, 1.0, d), INF);
        assert_eq!(one(Expm1, 0.0, d), 0.0);
        assert_eq!(one(Log1p, -1.0, d), -INF);
    }
    // f32 results are rounded to f32: exp(1) in f32 is the f32 nearest e.
    assert_eq!(one(Exp, 1.0, F32), std::f64::consts::E as f32 as f64);
    // 1/(1+e^-2) = 0.8807970779778823 (mpmath), rounded to f32
    assert_eq!(one(Sigmoid, 2.0, F32), 0.8807970779778823f64 as f32 as f64);
    // erf(0.5) = 0.520499877813046537682746653892 (mpmath); erf_inv(0.5) = 0.4769362762044698733814
    assert_eq!(one(Erf, 0.5, F64), 0.5204998778130465);
    assert_eq!(one(Erf, 0.5, F32), 0.5204998778130465f64 as f32 as f64);
    assert_eq!(one(ErfInv, 0.5, F32), 0.4769362762044699f64 as f32 as f64);
}

#[test]
fn math_on_integers_computes_in_f32() {
    // sqrt of s32 [4, 2] -> f32: the operand converts first.
    let r = unary_of(UnaryOp::Sqrt, ti(S32, &[2], &[4, 2]), F32);
    assert_eq!(r.dtype(), F32);
    assert_eq!(floats(&r), [2.0, std::f64::consts::SQRT_2 as f32 as f64]);
}

// ---------------------------------------------------------------- binary

#[test]
fn integer_arithmetic_wraps() {
    use BinaryOp::*;
    assert_eq!(ibin(Add, S8, &[127, -128], &[1, -1]), [-128, 127]);
    assert_eq!(ibin(Subtract, U8, &[0, 5], &[1, 3]), [255, 2]);
    assert_eq!(ibin(Multiply, S16, &[300, -2], &[300, 3]), [90000 - 65536, -6]);
    assert_eq!(ibin(Multiply, U64, &[u64::MAX as i128], &[u64::MAX as i128]), [1]);
    assert_eq!(ibin(Add, S64, &[i64::MAX as i128], &[1]), [i64::MIN as i128]);
}

#[test]
fn integer_division_never_traps() {
    use BinaryOp::*;
    assert_eq!(ibin(Quotient, S32, &[7, -7, 7, -7, 5], &[2, 2, -2, -2, 0]), [3, -3, -3, 3, -1]);
    assert_eq!(ibin(Remainder, S32, &[7, -7, 7, -7, 5], &[2, 2, -2, -2, 0]), [1, -1, 1, -1, 5]);
    assert_eq!(ibin(Quotient, S8, &[-128], &[-1]), [-128]);
    assert_eq!(ibin(Remainder, S8, &[-128], &[-1]), [0]);
    assert_eq!(ibin(Quotient, U8, &[9, 200], &[0, 7]), [255, 28]);
    assert_eq!(ibin(Remainder, U8, &[9, 200], &[0, 7]), [9, 4]);
    assert_eq!(ibin(Quotient, S64, &[i64::MIN as i128], &[-1]), [i64::MIN as i128]);
}

#[test]
fn remainder_mixed_types_from_nx_docs() {
    // Nx.remainder(-11 :: s8, 10 :: u8) -> s16 -1
    let r = binary_of(BinaryOp::Remainder, S16, ti(S8, &[], &[-11]), ti(U8, &[], &[10]), S16, &[]);
    assert_eq!(r.dtype(), S16);
    assert_eq!(ints(&r), [-1]);
}

#[test]
fn float_remainder_is_fmod() {
    let r = fbin(BinaryOp::Remainder, F32, &[5.5, -5.5, 5.5, 1.0, INF], &[2.0, 2.0, -2.0, 0.0, 2.0]);
    assert!(same(&r, &[1.5, -1.5, 1.5, NAN, NAN]));
}

#[test]
fn integer_pow_is_exact() {
    use BinaryOp::Pow;
    assert_eq!(ibin(Pow, S32, &[2, -3, 0, 5, 7], &[10, 3, 0, 0, 1]), [1024, -27, 1, 1, 7]);
    assert_eq!(ibin(Pow, S32, &[2, 1, -1, -1, 0], &[-1, -5, -3, -2, -1]), [0, 1, -1, 1, 0]);
    // 3^40 mod 2^64 = 12157665459056928801 - 0 (fits u64 exactly)
    assert_eq!(ibin(Pow, U64, &[3], &[40]), [12157665459056928801]);
    // 3^5 = 243 wraps in s8 to -13; 2^8 wraps to 0
    assert_eq!(ibin(Pow, S8, &[3, 2], &[5, 8]), [-13, 0]);
    let r = fbin(Pow, F64, &[2.0, 4.0, -8.0, 0.0], &[-1.0, 0.5, 1.0 / 3.0, 0.0]);
    assert!(same(&r, &[0.5, 2.0, NAN, 1.0]));
}

#[test]
fn shifts_out_of_range() {
    use BinaryOp::*;
    assert_eq!(ibin(LeftShift, S8, &[1, 1, 1, 3, -1], &[7, 8, -1, 1, 3]), [-128, 0, 0, 6, -8]);
    assert_eq!(ibin(RightShift, S8, &[-128, -1, -7, 64, -7], &[7, 3, 8, 8, -1]), [-1, -1, -1, 0, -1]);
    assert_eq!(ibin(RightShift, S8, &[-7, 100], &[1, 2]), [-4, 25]);
    // logical for unsigned
    assert_eq!(ibin(RightShift, U8, &[128, 255, 255], &[7, 4, 8]), [1, 15, 0]);
    assert_eq!(ibin(LeftShift, U32, &[3], &[31]), [1 << 31]);
    assert_eq!(ibin(RightShift, S64, &[i64::MIN as i128], &[63]), [-1]);
}

#[test]
fn bitwise_ops() {
    use BinaryOp::*;
    assert_eq!(ibin(BitwiseAnd, S8, &[-1, 12], &[5, 10]), [5, 8]);
    assert_eq!(ibin(BitwiseOr, U8, &[0xf0, 12], &[0x0f, 10]), [255, 14]);
    assert_eq!(ibin(BitwiseXor, S16, &[-1, 12], &[0, 10]), [-1, 6]);
}

#[test]
fn comparisons_and_nan() {
    use BinaryOp::*;
    let a = [1.0, NAN, 2.0, -0.0];
    let b = [1.0, NAN, 3.0, 0.0];
    assert_eq!(fbin(Equal, F32, &a, &b), [1.0, 0.0, 0.0, 1.0]);
    assert_eq!(fbin(NotEqual, F32, &a, &b), [0.0, 1.0, 1.0, 0.0]);
    assert_eq!(fbin(Less, F32, &a, &b), [0.0, 0.0, 1.0, 0.0]);
    assert_eq!(fbin(LessEqual, F32, &a, &b), [1.0, 0.0, 1.0, 1.0]);
    assert_eq!(fbin(Greater, F32, &a, &b), [0.0, 0.0, 0.0, 0.0]);
    assert_eq!(fbin(GreaterEqual, F32, &a, &b), [1.0, 0.0, 0.0, 1.0]);
    // unsigned compare is unsigned
    assert_eq!(ibin(Less, U8, &[200, 1], &[100, 2]), [0, 1]);
    assert_eq!(ibin(Less, S8, &[-100, 1], &[100, 2]), [1, 1]);
}

#[test]
fn logical_ops_nonzero_is_true() {
    use BinaryOp::*;
    assert_eq!(fbin(LogicalAnd, F32, &[NAN, 0.5, -0.0, 2.0], &[1.0, 0.0, 1.0, -2.0]), [1.0, 0.0, 0.0, 1.0]);
    assert_eq!(ibin(LogicalOr, S32, &[0, 0, -3], &[0, 7, 0]), [0, 1, 1]);
    assert_eq!(ibin(LogicalXor, S32, &[0, 0, -3, 4], &[0, 7, 0, 5]), [0, 1, 1, 0]);
}

#[test]
fn min_max_propagate_nan() {
    use BinaryOp::*;
    let a = [1.0, NAN, 2.0, -0.0, -INF];
    let b = [NAN, 3.0, 1.0, 0.0, 5.0];
    assert!(same(&fbin(Max, F64, &a, &b), &[NAN, NAN, 2.0, 0.0, 5.0]));
    assert!(same(&fbin(Min, F64, &a, &b), &[NAN, NAN, 1.0, -0.0, -INF]));
    assert_eq!(ibin(Max, U8, &[200, 3], &[100, 4]), [200, 4]);
    assert_eq!(ibin(Min, S8, &[-128, 3], &[127, 4]), [-128, 3]);
}

#[test]
fn divide_and_atan2_are_float() {
    // Nx.divide(1, 2) -> f32 0.5: s32 operands converted to the f32 compute type.
    let r = binary_of(BinaryOp::Divide, F32, ti(S32, &[], &[1]), ti(S32, &[], &[2]), F32, &[]);
    assert_eq!(floats(&r), [0.5]);
    assert!(same(&fbin(BinaryOp::Divide, F32, &[1.0, -1.0, 0.0], &[0.0, 0.0, 0.0]), &[INF, -INF, NAN]));
    let r = fbin(BinaryOp::Atan2, F64, &[1.0, 0.0, -0.0, 1.0], &[1.0, -1.0, -1.0, 0.0]);
    let pi = std::f64::consts::PI;
    assert!(same(&r, &[pi / 4.0, pi, -pi, pi / 2.0]));
    // 1/3 in f32 is rounded to f32
    assert_eq!(fbin(BinaryOp::Divide, F32, &[1.0], &[3.0]), [(1.0f32 / 3.0f32) as f64]);
}

#[test]
fn f32_addition_rounds_to_f32() {
    // 1 + 2^-24 is a tie in f32 and rounds to even (1.0); 1 + 3·2^-24 rounds up.
    let e = 2f64.powi(-24);
    assert_eq!(fbin(BinaryOp::Add, F32, &[1.0, 1.0], &[e, 3.0 * e]), [1.0, 1.0 + 4.0 * e]);
    assert_eq!(fbin(BinaryOp::Add, F64, &[1.0], &[e]), [1.0 + e]);
}

#[test]
fn binary_broadcasts_and_converts() {
    // [[1],[2]] (s8) + [10, 20, 30] (s32) computed in s32 -> [[11,21,31],[12,22,32]]
    let r = binary_of(BinaryOp::Add, S32, ti(S8, &[2, 1], &[1, 2]), ti(S32, &[3], &[10, 20, 30]), S32, &[2, 3]);
    assert_eq!(ints(&r), [11, 21, 31, 12, 22, 32]);
    // u8 200 with weak literal -1 (s16): u8,s16 -> s16, 200 + -1 = 199
    let mut b = B::default();
    let p = b.param(tt(U8, &[2]));
    let c = b.lit(S16, Literal::Int(-1));
    let r = b.op(Op::Binary { op: BinaryOp::Add, compute: S16 }, &[p, c], tt(S16, &[2]));
    assert_eq!(ints(&run1(&b.module(&[r]), &[ti(U8, &[2], &[200, 0])])), [199, -1]);
    // s32 [5][1][4][1] * s32 [3][4][5] -> [5][3][4][5]
    let a = Tensor::zeros(tt(S32, &[5, 1, 4, 1])).unwrap();
    let bb = Tensor::zeros(tt(S32, &[3, 4, 5])).unwrap();
    let r = binary_of(BinaryOp::Multiply, S32, a, bb, S32, &[5, 3, 4, 5]);
    assert_eq!(r.shape(), &[5, 3, 4, 5]);
}

#[test]
fn zero_sized_elementwise() {
    let r = binary_of(BinaryOp::Add, F32, tf(F32, &[0, 3], &[]), tf(F32, &[3], &[1.0, 2.0, 3.0]), F32, &[0, 3]);
    assert_eq!(r.shape(), &[0, 3]);
    assert!(r.is_empty());
}

// ---------------------------------------------------------------- select, clip, as_type

#[test]
fn select_and_clip() {
    let mut b = B::default();
    let p = b.param(tt(U8, &[3]));
    let t = b.param(tt(S8, &[3]));
    let f = b.lit(F32, Literal::Float(0.5));
    let r = b.op(Op::Select { compute: F32 }, &[p, t, f], tt(F32, &[3]));
    let out = run1(&b.module(&[r]), &[ti(U8, &[3], &[1, 0, 7]), ti(S8, &[3], &[-1, -2, -3])]);
    assert_eq!(floats(&out), [-1.0, 0.5, -3.0]);

    let mut b = B::default();
    let x = b.param(tt(F32, &[5]));
    let lo = b.lit(F32, Literal::Float(-1.0));
    let hi = b.lit(F32, Literal::Float(1.0));
    let r = b.op(Op::Clip { compute: F32 }, &[x, lo, hi], tt(F32, &[5]));
    let out = run1(&b.module(&[r]), &[tf(F32, &[5], &[-3.0, 0.25, 7.0, NAN, -INF])]);
    assert!(same(&floats(&out), &[-1.0, 0.25, 1.0, NAN, -1.0]));
}

fn as_type(x: Tensor, d: DType) -> Tensor {
    let mut b = B::default();
    let p = b.param(x.ty().clone());
    let r = b.op(Op::AsType, &[p], x.ty().with_dtype(d));
    run1(&b.module(&[r]), &[x])
}

#[test]
fn as_type_follows_nx() {
    // From Nx.as_type docs: [:infinity, :nan, :neg_infinity] -> u8 [255, 0, 0], s32 [MAX, 0, MIN]
    let x = tf(F32, &[3], &[INF, NAN, -INF]);
    assert_eq!(ints(&as_type(x.clone(), U8)), [255, 0, 0]);
    assert_eq!(ints(&as_type(x, S32)), [2147483647, 0, -2147483648]);
    let x = tf(F64, &[5], &[2.9, -2.9, 300.0, -300.0, -0.5]);
    assert_eq!(ints(&as_type(x.clone(), S8)), [2, -2, 127, -128, 0]);
    assert_eq!(ints(&as_type(x, U8)), [2, 0, 255, 0, 0]);
    // int -> narrower int wraps
    assert_eq!(ints(&as_type(ti(S32, &[3], &[300, -1, 128]), S8)), [44, -1, -128]);
    assert_eq!(ints(&as_type(ti(S32, &[2], &[-1, 65536]), U16)), [65535, 0]);
    // f64 -> f32 rounds to nearest even; f32 -> f64 exact
    let x = tf(F64, &[2], &[1.0 + 2f64.powi(-24), 1.0 + 3.0 * 2f64.powi(-24)]);
    assert_eq!(floats(&as_type(x, F32)), [1.0, 1.0 + 4.0 * 2f64.powi(-24)]);
    assert_eq!(floats(&as_type(ti(U64, &[1], &[u64::MAX as i128]), F32)), [2f64.powi(64)]);
    // to f16: 65520 is the tie between 65504 and infinity-ward rounding
    assert_eq!(floats(&as_type(tf(F32, &[2], &[1.0 / 3.0, 70000.0]), F16)), [0.333251953125, INF]);
}

#[test]
fn bitcast_reinterprets() {
    let mut b = B::default();
    let p = b.param(tt(F32, &[2]));
    let r = b.op(Op::Bitcast, &[p], tt(U32, &[2]));
    let out = run1(&b.module(&[r]), &[tf(F32, &[2], &[1.0, -0.0])]);
    assert_eq!(ints(&out), [0x3f80_0000, 0x8000_0000]);
    let mut b = B::default();
    let p = b.param(tt(S8, &[2]));
    let r = b.op(Op::Bitcast, &[p], tt(U8, &[2]));
    assert_eq!(ints(&run1(&b.module(&[r]), &[ti(S8, &[2], &[-1, 5])])), [255, 5]);
}

// ---------------------------------------------------------------- creation

#[test]
fn creation_ops() {
    let mut b = B::default();
    let c = b.op(Op::Constant(Literal::Float(2.5)), &[], tt(F32, &[2, 2]));
    let t = b.op(Op::Tensor(vec![Literal::Int(1), Literal::Int(-2), Literal::Int(3)]), &[], tt(S8, &[3]));
    let i0 = b.op(Op::Iota(None), &[], tt(S32, &[2, 3]));
    let i1 = b.op(Op::Iota(Some(1)), &[], tt(F32, &[2, 3]));
    let i0a = b.op(Op::Iota(Some(0)), &[], tt(U8, &[2, 3]));
    let e = b.op(Op::Eye, &[], tt(S32, &[2, 2, 3]));
    let tf_ = b.op(Op::Tensor(vec![Literal::Int(1), Literal::Float(0.5)]), &[], tt(F64, &[2]));
    let empty = b.op(Op::Tensor(vec![]), &[], tt(S32, &[0]));
    let r = run(&b.module(&[c, t, i0, i1, i0a, e, tf_, empty]), "main", &[]).unwrap();
    assert_eq!(floats(&r[0]), [2.5; 4]);
    assert_eq!(ints(&r[1]), [1, -2, 3]);
    assert_eq!(ints(&r[2]), [0, 1, 2, 3, 4, 5]);
    assert_eq!(floats(&r[3]), [0.0, 1.0, 2.0, 0.0, 1.0, 2.0]);
    assert_eq!(ints(&r[4]), [0, 0, 0, 1, 1, 1]);
    assert_eq!(ints(&r[5]), [1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0]);
    assert_eq!(floats(&r[6]), [1.0, 0.5]);
    assert!(r[7].is_empty());
    let mut b = B::default();
    let c = b.op(Op::Constant(Literal::Float(NAN)), &[], tt(F64, &[]));
    assert!(floats(&run1(&b.module(&[c]), &[]))[0].is_nan());
}

// ---------------------------------------------------------------- shape ops

fn shape_op(op: Op, x: Tensor, out: TensorType) -> Tensor {
    let mut b = B::default();
    let p = b.param(x.ty().clone());
    let r = b.op(op, &[p], out);
    run1(&b.module(&[r]), &[x])
}

fn iota_i(d: DType, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    ti(d, shape, &(0..n as i128).collect::<Vec<_>>())
}

#[test]
fn reshape_squeeze_transpose() {
    let x = iota_i(S32, &[2, 3]);
    assert_eq!(ints(&shape_op(Op::Reshape, x.clone(), tt(S32, &[3, 2]))), [0, 1, 2, 3, 4, 5]);
    let r = shape_op(Op::Transpose { perm: vec![1, 0] }, x, tt(S32, &[3, 2]));
    assert_eq!(ints(&r), [0, 3, 1, 4, 2, 5]);
    // [2][3][4] with perm [2, 0, 1]: out[k][i][j] = x[i][j][k] = 12i + 4j + k
    let r = shape_op(Op::Transpose { perm: vec![2, 0, 1] }, iota_i(S32, &[2, 3, 4]), tt(S32, &[4, 2, 3]));
    let want: Vec<i128> =
        (0..4).flat_map(|k| (0..2).flat_map(move |i| (0..3).map(move |j| 12 * i + 4 * j + k))).collect();
    assert_eq!(ints(&r), want);
    let r = shape_op(Op::Squeeze { axes: vec![0, 2] }, iota_i(U8, &[1, 3, 1]), tt(U8, &[3]));
    assert_eq!(r.shape(), &[3]);
}

#[test]
fn broadcast_with_axes() {
    // [1, 2, 3] broadcast to {2, 3} on axes [1]
    let r = shape_op(Op::Broadcast { axes: vec![1] }, iota_i(S32, &[3]), tt(S32, &[2, 3]));
    assert_eq!(ints(&r), [0, 1, 2, 0, 1, 2]);
    // [[0],[1]] ([2][1]) to {2, 3} on axes [0, 1]
    let r = shape_op(Op::Broadcast { axes: vec![0, 1] }, iota_i(S32, &[2, 1]), tt(S32, &[2, 3]));
    assert_eq!(ints(&r), [0, 0, 0, 1, 1, 1]);
    // [3] on axis 0 of {3, 2}: columns repeat
    let r = shape_op(Op::Broadcast { axes: vec![0] }, iota_i(S32, &[3]), tt(S32, &[3, 2]));
    assert_eq!(ints(&r), [0, 0, 1, 1, 2, 2]);
}

#[test]
fn slices() {
    // [[0..4],[4..8],[8..12]] rows 1.., cols 0,2 (stride 2)
    let op = Op::Slice { starts: vec![1, 0], lengths: vec![2, 3], strides: vec![1, 2] };
    let r = shape_op(op, iota_i(S32, &[3, 4]), tt(S32, &[2, 2]));
    assert_eq!(ints(&r), [4, 6, 8, 10]);
    // spec: slice of [1, 2, 3] at start 5 length 2 gives [2, 3]; the checker clamps to 1.
    let op = Op::Slice { starts: vec![1], lengths: vec![2], strides: vec![1] };
    assert_eq!(ints(&shape_op(op, ti(S32, &[3], &[1, 2, 3]), tt(S32, &[2]))), [2, 3]);
}

fn pad_of(x: Tensor, v: f64, config: Vec<(i64, i64, i64)>, out: &[usize]) -> Tensor {
    let mut b = B::default();
    let p = b.param(x.ty().clone());
    let d = x.dtype();
    let pv = b.lit(d, Literal::Float(v));
    let r = b.op(Op::Pad { config }, &[p, pv], tt(d, out));
    run1(&b.module(&[r]), &[x])
}

#[test]
fn pad_low_high_interior_and_crop() {
    let x = tf(F32, &[3], &[1.0, 2.0, 3.0]);
    assert_eq!(floats(&pad_of(x.clone(), 0.0, vec![(1, 2, 0)], &[6])), [0.0, 1.0, 2.0, 3.0, 0.0, 0.0]);
    assert_eq!(floats(&pad_of(x.clone(), 9.0, vec![(0, 0, 1)], &[5])), [1.0, 9.0, 2.0, 9.0, 3.0]);
    assert_eq!(floats(&pad_of(x.clone(), 0.0, vec![(-1, 0, 0)], &[2])), [2.0, 3.0]);
    // interior 1 then crop one on each side: [1,0,2,0,3] -> [0,2,0]
    assert_eq!(floats(&pad_of(x, 0.0, vec![(-1, -1, 1)], &[3])), [0.0, 2.0, 0.0]);
    // the spec example: [{1, 2, 0}, {0, -1, 1}] on [2][3]:
    // rows: 1 + 2 + 2 = 5; cols: 3 + 2 interior - 1 = 4
    let x = tf(F32, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let r = pad_of(x, 0.0, vec![(1, 2, 0), (0, -1, 1)], &[5, 4]);
    #[rustfmt::skip]
    let want = [0.0, 0.0, 0.0, 0.0,
                1.0, 0.0, 2.0, 0.0,
                4.0, 0.0, 5.0, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.0];
    assert_eq!(floats(&r), want);
    // padding an empty axis
    assert_eq!(floats(&pad_of(tf(F32, &[0], &[]), 7.0, vec![(1, 1, 3)], &[2])), [7.0, 7.0]);
}

#[test]
fn reverse_axes() {
    let r = shape_op(Op::Reverse { axes: vec![1] }, iota_i(S32, &[2, 3]), tt(S32, &[2, 3]));
    assert_eq!(ints(&r), [2, 1, 0, 5, 4, 3]);
    let r = shape_op(Op::Reverse { axes: vec![0, 1] }, iota_i(S32, &[2, 3]), tt(S32, &[2, 3]));
    assert_eq!(ints(&r), [5, 4, 3, 2, 1, 0]);
}

#[test]
fn concatenate_and_stack() {
    let mut b = B::default();
    let x = b.param(tt(S32, &[2, 2]));
    let y = b.param(tt(S8, &[2, 1]));
    let c1 = b.op(Op::Concatenate { axis: 1 }, &[x, y], tt(S32, &[2, 3]));
    let c0 = b.op(Op::Concatenate { axis: 0 }, &[x, x], tt(S32, &[4, 2]));
    let s0 = b.op(Op::Stack { axis: 0 }, &[x, x], tt(S32, &[2, 2, 2]));
    let s2 = b.op(Op::Stack { axis: 2 }, &[x, x], tt(S32, &[2, 2, 2]));
    let m = b.module(&[c1, c0, s0, s2]);
    let r = run(&m, "main", &[ti(S32, &[2, 2], &[1, 2, 3, 4]), ti(S8, &[2, 1], &[-5, -6])]).unwrap();
    assert_eq!(ints(&r[0]), [1, 2, -5, 3, 4, -6]);
    assert_eq!(ints(&r[1]), [1, 2, 3, 4, 1, 2, 3, 4]);
    assert_eq!(ints(&r[2]), [1, 2, 3, 4, 1, 2, 3, 4]);
    assert_eq!(ints(&r[3]), [1, 1, 2, 2, 3, 3, 4, 4]);
}

// ---------------------------------------------------------------- dot

fn dot_of(a: Tensor, bt: Tensor, ca: &[usize], ba: &[usize], cb: &[usize], bb: &[usize], out: TensorType) -> Tensor {
    let mut b = B::default();
    let (pa, pb) = (b.param(a.ty().clone()), b.param(bt.ty().clone()));
    let op = Op::Dot { contract_a: ca.to_vec(), batch_a: ba.to_vec(), contract_b: cb.to_vec(), batch_b: bb.to_vec() };
    let r = b.op(op, &[pa, pb], out);
    run1(&b.module(&[r]), &[a, bt])
}

#[test]
fn dot_matmul_and_variants() {
    // [[1,2],[3,4]] @ [[5,6],[7,8]] = [[19,22],[43,50]]
    let a = ti(S32, &[2, 2], &[1, 2, 3, 4]);
    let w = ti(S32, &[2, 2], &[5, 6, 7, 8]);
    assert_eq!(ints(&dot_of(a.clone(), w.clone(), &[1], &[], &[0], &[], tt(S32, &[2, 2]))), [19, 22, 43, 50]);
    // a^T @ w: contract axis 0 of both: [[1*5+3*7, 1*6+3*8],[2*5+4*7, 2*6+4*8]] = [[26,30],[38,44]]
    assert_eq!(ints(&dot_of(a.clone(), w.clone(), &[0], &[], &[0], &[], tt(S32, &[2, 2]))), [26, 30, 38, 44]);
    // outer product (no contraction): [1,2] x [3,4,5]
    let r = dot_of(ti(S32, &[2], &[1, 2]), ti(S32, &[3], &[3, 4, 5]), &[], &[], &[], &[], tt(S32, &[2, 3]));
    assert_eq!(ints(&r), [3, 4, 5, 6, 8, 10]);
    // mixed types f32 x s32 -> f32
    let r = dot_of(tf(F32, &[2], &[0.5, 1.5]), ti(S32, &[2], &[2, 4]), &[0], &[], &[0], &[], tt(F32, &[]));
    assert_eq!(floats(&r), [7.0]);
    // integer dot wraps in the result type: 100*100 + 100*100 in s16 = 20000 fits; 200*200 wraps
    let r = dot_of(ti(S16, &[2], &[200, 1]), ti(S16, &[2], &[200, 1]), &[0], &[], &[0], &[], tt(S16, &[]));
    assert_eq!(ints(&r), [40001 - 65536]);
}

#[test]
fn dot_batched_and_multi_contract() {
    // batch of 2: [b][1][2] . [b][2][1]
    let a = ti(S32, &[2, 1, 2], &[1, 2, 3, 4]);
    let w = ti(S32, &[2, 2, 1], &[5, 6, 7, 8]);
    let r = dot_of(a, w, &[2], &[0], &[1], &[0], tt(S32, &[2, 1, 1]));
    assert_eq!(ints(&r), [17, 53]);
    // contract two axes at once with swapped order: a[i][j], w[j][i] contracting (0,1) with (1,0) = trace(a·w)
    let a = ti(S32, &[2, 3], &[1, 2, 3, 4, 5, 6]);
    let w = ti(S32, &[3, 2], &[1, 0, 0, 1, 1, 1]);
    // sum_ij a[i][j] w[j][i] = 1*1 + 2*0 + 3*1 + 4*0 + 5*1 + 6*1 = 15
    let r = dot_of(a.clone(), w.clone(), &[0, 1], &[], &[1, 0], &[], tt(S32, &[]));
    assert_eq!(ints(&r), [15]);
    // free axes order: a [2][3] contract axis 1 with w [3][2] axis 0 -> out [2][2]
    let r = dot_of(a, w, &[1], &[], &[0], &[], tt(S32, &[2, 2]));
    assert_eq!(ints(&r), [4, 5, 10, 11]);
    // empty contraction gives zeros
    let r = dot_of(tf(F32, &[2, 0], &[]), tf(F32, &[0, 3], &[]), &[1], &[], &[0], &[], tt(F32, &[2, 3]));
    assert_eq!(floats(&r), [0.0; 6]);
}

#[test]
fn dot_f32_accumulates_in_f32() {
    // 1 + 2^-24 + 2^-24 accumulated in f32 order: (0 + 1) + 2^-24 -> 1 (tie to even), + 2^-24 -> 1.
    let e = 2f64.powi(-24);
    let r = dot_of(tf(F32, &[3], &[1.0, e, e]), tf(F32, &[3], &[1.0, 1.0, 1.0]), &[0], &[], &[0], &[], tt(F32, &[]));
    assert_eq!(floats(&r), [1.0]);
    let r = dot_of(tf(F64, &[3], &[1.0, e, e]), tf(F64, &[3], &[1.0, 1.0, 1.0]), &[0], &[], &[0], &[], tt(F64, &[]));
    assert_eq!(floats(&r), [1.0 + 2.0 * e]);
}

#[test]
fn half_dots_accumulate_in_f32() {
    // 4096 ones dotted with ones: in f16 or bf16 steps the sum would stick
    // at 2048 (f16: 2048 + 1 rounds back to 2048) or 256 (bf16); summed in
    // f32 it is 4096, which both hold exactly.
    for d in [F16, BF16] {
        let ones = tf(d, &[4096], &[1.0; 4096]);
        let r = dot_of(ones.clone(), ones, &[0], &[], &[0], &[], tt(d, &[]));
        assert_eq!(floats(&r), [4096.0], "{d:?}");
    }
    // Rounded once at the end: 1 + 3·2^-11 is 1 + 2^-9 + 2^-11 in f32,
    // which rounds to 1 + 2^-9 in f16 (the nearest of 1 + k·2^-10: tie to
    // even, k = 2).
    let e = 2f64.powi(-11);
    let r = dot_of(tf(F16, &[4], &[1.0, e, e, e]), tf(F16, &[4], &[1.0; 4]), &[0], &[], &[0], &[], tt(F16, &[]));
    assert_eq!(floats(&r), [1.0 + 2.0 * 2f64.powi(-10)]);
}

// ---------------------------------------------------------------- reductions

fn reduce_of(kind: ReduceKind, x: Tensor, axes: &[usize], keep: bool, out: TensorType) -> Tensor {
    let op = Op::Reduce { kind, axes: axes.to_vec(), keep_axes: keep };
    shape_op(op, x, out)
}

#[test]
fn sums_and_products() {
    let x = iota_i(S32, &[2, 3]);
    assert_eq!(ints(&reduce_of(ReduceKind::Sum, x.clone(), &[0, 1], false, tt(S32, &[]))), [15]);
    assert_eq!(ints(&reduce_of(ReduceKind::Sum, x.clone(), &[0], false, tt(S32, &[3]))), [3, 5, 7]);
    let r = reduce_of(ReduceKind::Sum, x.clone(), &[1], true, tt(S32, &[2, 1]));
    assert_eq!((r.shape().to_vec(), ints(&r)), (vec![2, 1], vec![3, 12]));
    assert_eq!(ints(&reduce_of(ReduceKind::Product, ti(S32, &[3], &[2, -3, 4]), &[0], false, tt(S32, &[]))), [-24]);
    // u8 operands accumulate in u32 (the node dtype): 200 + 200 = 400, no wrap at 8 bits
    assert_eq!(ints(&reduce_of(ReduceKind::Sum, ti(U8, &[2], &[200, 200]), &[0], false, tt(U32, &[]))), [400]);
    // s32 sum wraps
    let r = reduce_of(ReduceKind::Sum, ti(S32, &[2], &[i32::MAX as i128, 1]), &[0], false, tt(S32, &[]));
    assert_eq!(ints(&r), [i32::MIN as i128]);
    // empty: 0 and 1
    assert_eq!(floats(&reduce_of(ReduceKind::Sum, tf(F32, &[0], &[]), &[0], false, tt(F32, &[]))), [0.0]);
    assert_eq!(floats(&reduce_of(ReduceKind::Product, tf(F32, &[2, 0], &[]), &[1], false, tt(F32, &[2]))), [1.0, 1.0]);
    // NaN and inf
    let r = reduce_of(ReduceKind::Sum, tf(F32, &[3], &[1.0, NAN, 2.0]), &[0], false, tt(F32, &[]));
    assert!(floats(&r)[0].is_nan());
    let r = reduce_of(ReduceKind::Sum, tf(F32, &[2], &[INF, -INF]), &[0], false, tt(F32, &[]));
    assert!(floats(&r)[0].is_nan());
}

#[test]
fn max_min_reductions() {
    let x = tf(F32, &[2, 3], &[1.0, 5.0, -2.0, 0.0, NAN, 3.0]);
    assert!(same(&floats(&reduce_of(ReduceKind::Max, x.clone(), &[1], false, tt(F32, &[2]))), &[5.0, NAN]));
    assert!(same(&floats(&reduce_of(ReduceKind::Min, x.clone(), &[0], false, tt(F32, &[3]))), &[0.0, NAN, -2.0]));
    // empty axis: lowest/highest value of the type
    assert_eq!(floats(&reduce_of(ReduceKind::Max, tf(F32, &[0], &[]), &[0], false, tt(F32, &[]))), [-INF]);
    assert_eq!(floats(&reduce_of(ReduceKind::Min, tf(F64, &[0], &[]), &[0], false, tt(F64, &[]))), [INF]);
    assert_eq!(ints(&reduce_of(ReduceKind::Max, ti(S8, &[0], &[]), &[0], false, tt(S8, &[]))), [-128]);
    assert_eq!(ints(&reduce_of(ReduceKind::Min, ti(U16, &[0], &[]), &[0], false, tt(U16, &[]))), [65535]);
    assert_eq!(ints(&reduce_of(ReduceKind::Max, ti(S8, &[3], &[-128, -7, -9]), &[0], false, tt(S8, &[]))), [-7]);
}

#[test]
fn all_and_any() {
    let x = tf(F32, &[2, 2], &[0.5, NAN, 0.0, 1.0]);
    assert_eq!(ints(&reduce_of(ReduceKind::All, x.clone(), &[1], false, tt(U8, &[2]))), [1, 0]);
    assert_eq!(ints(&reduce_of(ReduceKind::Any, x.clone(), &[0], false, tt(U8, &[2]))), [1, 1]);
    // 256 is nonzero even though it is 0 modulo 2^8
    assert_eq!(ints(&reduce_of(ReduceKind::All, ti(S32, &[2], &[256, -1]), &[0], false, tt(U8, &[]))), [1]);
    assert_eq!(ints(&reduce_of(ReduceKind::All, ti(S32, &[0], &[]), &[0], false, tt(U8, &[]))), [1]);
    assert_eq!(ints(&reduce_of(ReduceKind::Any, ti(S32, &[0], &[]), &[0], false, tt(U8, &[]))), [0]);
}

fn arg_of(max: bool, x: Tensor, axis: Option<usize>, high: bool, out: TensorType) -> Vec<i128> {
    let op = Op::ArgReduce { max, axis, tie_break_high: high, keep_axis: false };
    ints(&shape_op(op, x, out))
}

#[test]
fn argmax_argmin() {
    // Nx docs: argmax([[[4, 2, 3], [1, -5, 3]], [[6, 2, 3], [4, 8, 3]]]) = 10 (flattened)
    let x = ti(S32, &[2, 2, 3], &[4, 2, 3, 1, -5, 3, 6, 2, 3, 4, 8, 3]);
    assert_eq!(arg_of(true, x.clone(), None, false, tt(S32, &[])), [10]);
    // axis 0: [[1, 0, 0], [1, 1, 0]]; with tie_break high: [[1, 1, 1], [1, 1, 1]]
    assert_eq!(arg_of(true, x.clone(), Some(0), false, tt(S32, &[2, 3])), [1, 0, 0, 1, 1, 0]);
    assert_eq!(arg_of(true, x.clone(), Some(0), true, tt(S32, &[2, 3])), [1, 1, 1, 1, 1, 1]);
    // axis 1 (argmax): [[0, 0, 0], [0, 1, 0]]; axis 2: [[0, 2], [0, 1]]
    assert_eq!(arg_of(true, x.clone(), Some(1), false, tt(S32, &[2, 3])), [0, 0, 0, 0, 1, 0]);
    assert_eq!(arg_of(true, x.clone(), Some(2), false, tt(S32, &[2, 2])), [0, 2, 0, 1]);
    // argmin axis 2: [[1, 1], [1, 2]]; flattened: 4 (-5)
    assert_eq!(arg_of(false, x.clone(), Some(2), false, tt(S32, &[2, 2])), [1, 1, 1, 2]);
    assert_eq!(arg_of(false, x, None, false, tt(S32, &[])), [4]);
    // NaN is both the max and the min; NaNs tie with each other, so
    // tie_break picks the first (low) or the last (high) NaN
    let x = tf(F32, &[5], &[1.0, NAN, 7.0, NAN, -3.0]);
    assert_eq!(arg_of(true, x.clone(), Some(0), false, tt(S32, &[])), [1]);
    assert_eq!(arg_of(true, x.clone(), Some(0), true, tt(S32, &[])), [3]);
    assert_eq!(arg_of(false, x.clone(), Some(0), false, tt(S32, &[])), [1]);
    assert_eq!(arg_of(false, x.clone(), Some(0), true, tt(S32, &[])), [3]);
    // a NaN beats every number whichever way ties break
    let x = tf(F64, &[3], &[-INF, NAN, INF]);
    assert_eq!(arg_of(true, x.clone(), None, true, tt(S32, &[])), [1]);
    assert_eq!(arg_of(false, x.clone(), None, false, tt(S32, &[])), [1]);
    // ties low/high, and the result type may be narrower
    let x = tf(F32, &[4], &[2.0, 9.0, 9.0, 0.0]);
    assert_eq!(arg_of(true, x.clone(), None, false, tt(U8, &[])), [1]);
    assert_eq!(arg_of(true, x, None, true, tt(S64, &[])), [2]);
}

// ---------------------------------------------------------------- calls and tuples

#[test]
fn calls_and_tuple_results() {
    // helper(a, b) = {a + b, a * b}; main(x) = elem(helper(x, x), 1) and both elems
    let mut h = B::default();
    let a = h.param(tt(S32, &[2]));
    let bb = h.param(tt(S32, &[2]));
    let s = h.op(Op::Binary { op: BinaryOp::Add, compute: S32 }, &[a, bb], tt(S32, &[2]));
    let p = h.op(Op::Binary { op: BinaryOp::Multiply, compute: S32 }, &[a, bb], tt(S32, &[2]));
    let helper = h.function("helper", &[s, p]);

    let mut b = B::default();
    let x = b.param(tt(S32, &[2]));
    let tup = Type::Tuple(vec![Type::Tensor(tt(S32, &[2])), Type::Tensor(tt(S32, &[2]))]);
    let c = b.push(Op::Call { function: 0 }, &[x, x], tup, "c");
    let e1 = b.op(Op::Elem { index: 1 }, &[c], tt(S32, &[2]));
    let e0 = b.op(Op::Elem { index: 0 }, &[c], tt(S32, &[2]));
    let main = b.function("main", &[e1, e0]);
    let m = Module { functions: vec![helper, main] };
    let r = run(&m, "main", &[ti(S32, &[2], &[3, -4])]).unwrap();
    assert_eq!(ints(&r[0]), [9, 16]);
    assert_eq!(ints(&r[1]), [6, -8]);
    // the helper itself returns its tuple flattened
    let r = run(&m, "helper", &[ti(S32, &[2], &[1, 2]), ti(S32, &[2], &[3, 4])]).unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(ints(&r[1]), [3, 8]);
}

#[test]
fn large_matmul_is_fast_enough() {
    // 128x256 @ 256x128 of ones in f32: every entry is 256.
    let ones = |r: usize, c: usize| tf(F32, &[r, c], &vec![1.0; r * c]);
    let r = dot_of(ones(128, 256), ones(256, 128), &[1], &[], &[0], &[], tt(F32, &[128, 128]));
    assert!(floats(&r).iter().all(|&v| v == 256.0));
}

// ---------------------------------------------------------------- conv

fn conv1d(x: &[f64], w: &[f64], stride: usize, pad: (i64, i64), idil: usize, kdil: usize, out_len: usize) -> Vec<f64> {
    let spec = tensorc_ir::graph::ConvSpec {
        strides: vec![stride],
        padding: vec![pad],
        input_dilation: vec![idil],
        kernel_dilation: vec![kdil],
        feature_group_size: 1,
        batch_group_size: 1,
        input_permutation: vec![0, 1, 2],
        kernel_permutation: vec![0, 1, 2],
        output_permutation: vec![0, 1, 2],
    };
    let xt = tf(F32, &[1, 1, x.len()], x);
    let wt = tf(F32, &[1, 1, w.len()], w);
    floats(&contract::conv(&xt, &wt, &spec, tt(F32, &[1, 1, out_len])).unwrap())
}

#[test]
fn conv_1d_options() {
    let x = [1.0, 2.0, 3.0, 4.0, 5.0];
    // valid: y[i] = x[i] - x[i+1]
    assert_eq!(conv1d(&x, &[1.0, -1.0], 1, (0, 0), 1, 1, 4), [-1.0; 4]);
    // padding (1, 1): [0,1,2,3,4,5,0]
    assert_eq!(conv1d(&x, &[1.0, -1.0], 1, (1, 1), 1, 1, 6), [-1.0, -1.0, -1.0, -1.0, -1.0, 5.0]);
    // stride 2: windows at 0 and 2 -> x0-x1, x2-x3
    assert_eq!(conv1d(&x, &[1.0, -1.0], 2, (0, 0), 1, 1, 2), [-1.0, -1.0]);
    // kernel dilation 2: y[i] = x[i] - x[i+2]
    assert_eq!(conv1d(&x, &[1.0, -1.0], 1, (0, 0), 1, 2, 3), [-2.0, -2.0, -2.0]);
    // input dilation 2: [1,0,2,0,3,0,4,0,5] with [1,-1]
    assert_eq!(conv1d(&x, &[1.0, -1.0], 1, (0, 0), 2, 1, 8), [1.0, -2.0, 2.0, -3.0, 3.0, -4.0, 4.0, -5.0]);
    // negative padding crops: drop x0 -> [2,3,4,5] -> three differences
    assert_eq!(conv1d(&x, &[1.0, -1.0], 1, (-1, 0), 1, 1, 3), [-1.0; 3]);
}

#[test]
fn conv_groups() {
    let base = tensorc_ir::graph::ConvSpec {
        strides: vec![1],
        padding: vec![(0, 0)],
        input_dilation: vec![1],
        kernel_dilation: vec![1],
        feature_group_size: 2,
        batch_group_size: 1,
        input_permutation: vec![0, 1, 2],
        kernel_permutation: vec![0, 1, 2],
        output_permutation: vec![0, 1, 2],
    };
    // feature groups: channel 0 -> filter 0 (weight 2), channel 1 -> filter 1 (weight 3)
    let x = tf(F32, &[1, 2, 3], &[1.0, 2.0, 3.0, 10.0, 20.0, 30.0]);
    let w = tf(F32, &[2, 1, 1], &[2.0, 3.0]);
    let r = contract::conv(&x, &w, &base, tt(F32, &[1, 2, 3])).unwrap();
    assert_eq!(floats(&r), [2.0, 4.0, 6.0, 30.0, 60.0, 90.0]);
    // batch groups: batch 0 feeds filter 0, batch 1 feeds filter 1; output batch 1
    let spec = tensorc_ir::graph::ConvSpec { feature_group_size: 1, batch_group_size: 2, ..base.clone() };
    let x = tf(F32, &[2, 1, 2], &[1.0, 2.0, 10.0, 20.0]);
    let w = tf(F32, &[2, 1, 1], &[1.0, 2.0]);
    let r = contract::conv(&x, &w, &spec, tt(F32, &[1, 2, 2])).unwrap();
    assert_eq!(floats(&r), [1.0, 2.0, 20.0, 40.0]);
    // plain: 2 channels summed: filter [1, 1] over channels -> 11, 22, 33
    let spec = tensorc_ir::graph::ConvSpec { feature_group_size: 1, ..base };
    let x = tf(F32, &[1, 2, 3], &[1.0, 2.0, 3.0, 10.0, 20.0, 30.0]);
    let w = tf(F32, &[1, 2, 1], &[1.0, 1.0]);
    assert_eq!(floats(&contract::conv(&x, &w, &spec, tt(F32, &[1, 1, 3])).unwrap()), [11.0, 22.0, 33.0]);
}

#[test]
fn conv_nhwc_permutations() {
    // NHWC input 1x2x2x1 = [[1,2],[3,4]], HWIO kernel 1x1x1x2 = [1, 10], NHWC output.
    let spec = tensorc_ir::graph::ConvSpec {
        strides: vec![1, 1],
        padding: vec![(0, 0), (0, 0)],
        input_dilation: vec![1, 1],
        kernel_dilation: vec![1, 1],
        feature_group_size: 1,
        batch_group_size: 1,
        input_permutation: vec![0, 3, 1, 2],
        kernel_permutation: vec![3, 2, 0, 1],
        output_permutation: vec![0, 3, 1, 2],
    };
    let x = tf(F32, &[1, 2, 2, 1], &[1.0, 2.0, 3.0, 4.0]);
    let w = tf(F32, &[1, 1, 1, 2], &[1.0, 10.0]);
    let r = contract::conv(&x, &w, &spec, tt(F32, &[1, 2, 2, 2])).unwrap();
    assert_eq!(floats(&r), [1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0]);
    // 3x3 "same" box filter on NHWC 3x3 of ones: corners see 4, edges 6, centre 9
    let spec = tensorc_ir::graph::ConvSpec { padding: vec![(1, 1), (1, 1)], ..spec };
    let x = tf(F32, &[1, 3, 3, 1], &[1.0; 9]);
    let w = tf(F32, &[3, 3, 1, 1], &[1.0; 9]);
    let r = contract::conv(&x, &w, &spec, tt(F32, &[1, 3, 3, 1])).unwrap();
    assert_eq!(floats(&r), [4.0, 6.0, 4.0, 6.0, 9.0, 6.0, 4.0, 6.0, 4.0]);
    // a wrong output size is an internal error, not a panic
    assert!(contract::conv(&x, &w, &spec, tt(F32, &[1, 2, 2, 1])).is_err());
}

#[test]
#[ignore = "slow; times the W9 benchmark's conv shape"]
fn conv_w09_timing() {
    let spec = tensorc_ir::graph::ConvSpec {
        strides: vec![1, 1],
        padding: vec![(1, 1), (1, 1)],
        input_dilation: vec![1, 1],
        kernel_dilation: vec![1, 1],
        feature_group_size: 1,
        batch_group_size: 1,
        input_permutation: vec![0, 3, 1, 2],
        kernel_permutation: vec![3, 2, 0, 1],
        output_permutation: vec![0, 3, 1, 2],
    };
    let x = tensorc_ir::random::random_tensor(&tt(F32, &[1, 56, 56, 64]), 1, 0);
    let w = tensorc_ir::random::random_tensor(&tt(F32, &[3, 3, 64, 64]), 1, 1);
    let t = std::time::Instant::now();
    let r = contract::conv(&x, &w, &spec, tt(F32, &[1, 56, 56, 64])).unwrap();
    println!("conv 1x56x56x64 * 3x3x64x64: {:.2?}", t.elapsed());
    assert_eq!(r.len(), 56 * 56 * 64);
}
