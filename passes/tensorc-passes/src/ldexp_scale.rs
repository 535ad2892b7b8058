//! `tensorc-ldexp-scale`: the power-of-two scaling at the end of the
//! frontend's `exp` (`fastmath.rs`, `exp_f32`) becomes one `vscalefps`
//! (`llvm.x86.avx512.mask.scalef.ps.512` of the float exponent for 16
//! lanes, LLVM's generic `llvm.ldexp` for other widths, which x86 with
//! AVX-512 also compiles to `vscalefps`), and `exp`'s final NaN select goes.
//!
//! Why: `exp_f32` builds `p · 2^n` for n ∈ [-150, 129] as `(p · 2^n1) · 2^n2`
//! with `n1 = n >> 1`, `n2 = n − n1`, each power made from its exponent bits
//! (`bitcast((k + 127) << 23)`), so that results that are subnormal or
//! overflow are rounded once: nine vector instructions per 16 lanes (the
//! conversion of n, a shift, a subtract, two adds, two shifts and two
//! multiplies), a third of the softmax row's exp loop. `ldexp(p, n)` is the
//! same value — the first product is exact (p is within [0.7, 1.42] and
//! |n1| ≤ 75) and the second rounds once, as `ldexp` does — in one
//! instruction: `vscalefps` scales by 2^floor(its float operand), and the
//! exponent is `floor`'s result, so not even the conversion stays. With no
//! `fptosi` of a NaN left (LLVM makes that poison), a NaN input that the
//! frontend's clamps let through (`ugt`/`ult`, checked here) comes out of
//! `vscalefps` as NaN, and the `select(x uno x, x, y)` that restored it is
//! dropped (`drop_nan_select`). Targets without AVX-512 would turn `ldexp`
//! into a libm call per lane, so the pipeline runs this pass only for
//! targets that have it (`pipeline::AVX512_LOWERING`, appended by
//! `tensorc_cpu::Pipelines::for_target` when `tensorc_mlir::target_has_avx512`).
//!
//! It runs on the LLVM dialect, last, where the idiom is exactly the ops
//! the frontend wrote (no canonicalization reorders them after it).

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-ldexp-scale";

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Rewrite exp's two-step power-of-two scaling into one vscalefps (AVX-512F targets)",
        &[DialectHandle::llvm()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { ldexp_scale(module) };
            true
        },
    )
}

/// Rewrites every `(p · 2^(n >> 1)) · 2^(n − (n >> 1))` of i32 exponent
/// bits in `module` into `ldexp(p, n)`; returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn ldexp_scale(module: MlirOperation) -> usize {
    unsafe {
        let mut count = 0;
        // One rewrite per walk: a rewrite erases ops (the first product may
        // itself look like an outer product), so a list collected before it
        // could hold erased ops.
        while let Some((outer, (p, n))) = ops_named(module, "llvm.fmul")
            .into_iter()
            .find_map(|op| two_step_scaling(op).map(|m| (op, m)))
        {
            let ctx = mlirOperationGetContext(outer);
            let t = mlirValueGetType(result(outer));
            let (ldexp, scalef) = match float_exponent(n) {
                Some(nf) if mlirShapedTypeGetDimSize(t, 0) == 16 => {
                    // `vscalefps` itself takes the exponent as a float
                    // (2^floor(n)), so the round trip through i32 that the
                    // generic form costs goes away.
                    let i16t = mlirIntegerTypeGet(ctx, 16);
                    let i32t = mlirIntegerTypeGet(ctx, 32);
                    let all = llvm_constant(outer, i16t, "-1 : i16");
                    let current_rounding = llvm_constant(outer, i32t, "4 : i32");
                    let call = intrinsic_call(
                        outer,
                        "llvm.x86.avx512.mask.scalef.ps.512",
                        &[p, nf, p, all, current_rounding],
                        t,
                    );
                    (insert_before(outer, call), true)
                }
                _ => (insert_before(outer, intrinsic_call(outer, "llvm.ldexp", &[p, n], t)), false),
            };
            let operands: Vec<MlirOperation> = (0..2)
                .map(|i| mlirOpResultGetOwner(mlirOperationGetOperand(outer, i)))
                .collect();
            mlirValueReplaceAllUsesOfWith(result(outer), ldexp);
            mlirOperationDestroy(outer);
            // The first product and the powers' bit arithmetic are dead now
            // (unless something else reads them): erased, so the printed
            // module shows what the code computes.
            erase_dead(&operands);
            if scalef {
                drop_nan_select(ldexp);
            }
            count += 1;
        }
        count
    }
}

/// After `exp`'s scaling became `vscalefps` of the float exponent, its last
/// step `select(x uno x, x, y)` (NaN in, NaN out) is redundant when the
/// input clamps keep NaN (`x ugt lo ? x : lo`, then `ult` against hi, as
/// the frontend's `exp_f32` writes them): a NaN then reaches `floor`, the
/// reduction and the polynomial, and `vscalefps` of NaN is NaN. The select
/// is replaced by `y` (two instructions fewer per vector).
unsafe fn drop_nan_select(y: MlirValue) {
    unsafe {
        for (user, index) in uses(y) {
            if op_name(user) != "llvm.select" || index != 2 {
                continue;
            }
            let x = mlirOperationGetOperand(user, 1);
            let Some(test) = defined_by(mlirOperationGetOperand(user, 0), "llvm.fcmp") else {
                continue;
            };
            let same = |i| mlirValueEqual(mlirOperationGetOperand(test, i), x);
            if fcmp_predicate(test) != Some(UNO) || !same(0) || !same(1) || !clamps_keep_nan(x) {
                continue;
            }
            mlirValueReplaceAllUsesOfWith(result(user), y);
            mlirOperationDestroy(user);
            if mlirValueGetFirstUse(result(test)).ptr.is_null() {
                mlirOperationDestroy(test);
            }
        }
    }
}

/// Whether `x` is clamped by `select(x ugt a, x, a)` whose result is
/// clamped by `select(c ult b, c, b)`: both keep a NaN.
unsafe fn clamps_keep_nan(x: MlirValue) -> bool {
    unsafe {
        let keeps = |v: MlirValue, predicate: i64| -> Vec<MlirValue> {
            uses(v)
                .into_iter()
                .filter(|&(op, i)| op_name(op) == "llvm.select" && i == 1)
                .filter(|&(op, _)| {
                    defined_by(mlirOperationGetOperand(op, 0), "llvm.fcmp").is_some_and(|c| {
                        fcmp_predicate(c) == Some(predicate) && mlirValueEqual(mlirOperationGetOperand(c, 0), v)
                    })
                })
                .map(|(op, _)| result(op))
                .collect()
        };
        keeps(x, UGT).into_iter().any(|c| !keeps(c, ULT).is_empty())
    }
}

/// `llvm.fcmp` predicates (LLVM's `FCmpInst` numbering, which the
/// dialect's attribute holds).
const UGT: i64 = 9;
const ULT: i64 = 11;
const UNO: i64 = 14;

/// The predicate of an `llvm.fcmp`.
unsafe fn fcmp_predicate(op: MlirOperation) -> Option<i64> {
    unsafe {
        let a = mlirOperationGetAttributeByName(op, string_ref("predicate"));
        (!a.ptr.is_null() && mlirAttributeIsAInteger(a)).then(|| mlirIntegerAttrGetValueInt(a))
    }
}

/// The ops of the idiom, all pure: what `erase_dead` may erase.
const IDIOM_OPS: [&str; 7] =
    ["llvm.fmul", "llvm.bitcast", "llvm.shl", "llvm.add", "llvm.sub", "llvm.ashr", "llvm.fptosi"];

/// Erases the idiom's ops among `roots` and the ops they read from,
/// transitively, that are left without uses. The candidates are collected
/// first and erased until none is dead, so no op is visited after it is
/// gone (an op may feed several others, as `n` feeds both halves).
unsafe fn erase_dead(roots: &[MlirOperation]) {
    unsafe {
        let mut chain: Vec<MlirOperation> = Vec::new();
        let mut stack: Vec<MlirOperation> = roots.to_vec();
        while let Some(op) = stack.pop() {
            if chain.iter().any(|c| c.ptr == op.ptr) || !IDIOM_OPS.contains(&op_name(op).as_str()) {
                continue;
            }
            chain.push(op);
            for i in 0..mlirOperationGetNumOperands(op) {
                let v = mlirOperationGetOperand(op, i);
                if mlirValueIsAOpResult(v) {
                    stack.push(mlirOpResultGetOwner(v));
                }
            }
        }
        loop {
            let Some(i) = chain.iter().position(|&op| mlirValueGetFirstUse(result(op)).ptr.is_null())
            else {
                break;
            };
            mlirOperationDestroy(chain.swap_remove(i));
        }
    }
}

/// A detached `llvm.call_intrinsic` of `name` (LLVM's spelling, which
/// takes vector exponents where `llvm.intr.ldexp` of MLIR 22 takes only
/// scalar ones) at `at`'s location.
unsafe fn intrinsic_call(
    at: MlirOperation,
    name: &str,
    args: &[MlirValue],
    t: MlirType,
) -> MlirOperation {
    unsafe {
        let ctx = mlirOperationGetContext(at);
        let segments = format!("array<i32: {}, 0>", args.len());
        build(
            ctx,
            "llvm.call_intrinsic",
            mlirOperationGetLocation(at),
            args,
            &[t],
            &[
                ("intrin", attr(ctx, &format!("\"{name}\""))),
                ("op_bundle_sizes", attr(ctx, "array<i32>")),
                ("operandSegmentSizes", attr(ctx, &segments)),
            ],
        )
    }
}

/// An `llvm.mlir.constant` of `value` (an attribute spelling) inserted
/// before `at`.
unsafe fn llvm_constant(at: MlirOperation, t: MlirType, value: &str) -> MlirValue {
    unsafe {
        let ctx = mlirOperationGetContext(at);
        let c = build(
            ctx,
            "llvm.mlir.constant",
            mlirOperationGetLocation(at),
            &[],
            &[t],
            &[("value", attr(ctx, value))],
        );
        insert_before(at, c)
    }
}

/// The float `x` when `n` is `fptosi(x)` and `x` is a `floor` (the exponent
/// as the frontend computes it): `vscalefps` scales by 2^floor(x), which
/// is then the same power as 2^n.
unsafe fn float_exponent(n: MlirValue) -> Option<MlirValue> {
    unsafe {
        let x = mlirOperationGetOperand(defined_by(n, "llvm.fptosi")?, 0);
        defined_by(x, "llvm.intr.floor").map(|_| x)
    }
}

/// `(p, n)` when `outer` is `fmul(fmul(p, 2^n1), 2^n2)` (either operand
/// order) with `n1 = ashr(n, 1)` and `n2 = sub(n, n1)`.
unsafe fn two_step_scaling(outer: MlirOperation) -> Option<(MlirValue, MlirValue)> {
    unsafe {
        let (inner, n2) = operand_and_power(outer)?;
        let inner = defined_by(inner, "llvm.fmul")?;
        let (p, n1) = operand_and_power(inner)?;
        let half = defined_by(n1, "llvm.ashr")?;
        let n = mlirOperationGetOperand(half, 0);
        if llvm_splat_int(mlirOperationGetOperand(half, 1)) != Some(1) {
            return None;
        }
        let rest = defined_by(n2, "llvm.sub")?;
        let same = |a: MlirValue, b: MlirValue| mlirValueEqual(a, b);
        (same(mlirOperationGetOperand(rest, 0), n) && same(mlirOperationGetOperand(rest, 1), n1))
            .then_some((p, n))
    }
}

/// For `fmul(a, b)`: the other operand and k when one operand is the power
/// of two `2^k` built from bits (`power_of_two`), tried in both orders.
unsafe fn operand_and_power(mul: MlirOperation) -> Option<(MlirValue, MlirValue)> {
    unsafe {
        let a = mlirOperationGetOperand(mul, 0);
        let b = mlirOperationGetOperand(mul, 1);
        if let Some(k) = power_of_two(b) {
            return Some((a, k));
        }
        power_of_two(a).map(|k| (b, k))
    }
}

/// k when `v` is `bitcast(shl(add(k, 127), 23))` from i32 lanes to f32
/// lanes: the f32 2^k for k in the normal range, as `pow2_int` in the
/// frontend's `fastmath.rs` builds it.
unsafe fn power_of_two(v: MlirValue) -> Option<MlirValue> {
    unsafe {
        let cast = defined_by(v, "llvm.bitcast")?;
        // Vectors of f32 only (scalar code is not worth an intrinsic call).
        let t = mlirValueGetType(v);
        if !mlirTypeIsAVector(t) || !mlirTypeIsAF32(mlirShapedTypeGetElementType(t)) {
            return None;
        }
        let shl = defined_by(mlirOperationGetOperand(cast, 0), "llvm.shl")?;
        if llvm_splat_int(mlirOperationGetOperand(shl, 1)) != Some(23) {
            return None;
        }
        let add = defined_by(mlirOperationGetOperand(shl, 0), "llvm.add")?;
        let (x, y) = (mlirOperationGetOperand(add, 0), mlirOperationGetOperand(add, 1));
        if llvm_splat_int(y) == Some(127) {
            Some(x)
        } else if llvm_splat_int(x) == Some(127) {
            Some(y)
        } else {
            None
        }
    }
}

/// The value of an `llvm.mlir.constant` of a vector type whose lanes are
/// all the same integer.
unsafe fn llvm_splat_int(v: MlirValue) -> Option<i64> {
    unsafe {
        let def = defined_by(v, "llvm.mlir.constant")?;
        let a = mlirOperationGetAttributeByName(def, string_ref("value"));
        if a.ptr.is_null() || !mlirAttributeIsADenseElements(a) || !mlirDenseElementsAttrIsSplat(a) {
            return None;
        }
        let s = mlirDenseElementsAttrGetSplatValue(a);
        mlirAttributeIsAInteger(s).then(|| mlirIntegerAttrGetValueInt(s))
    }
}
