//! `tensorc-vulkan-expand-math`: rewrites the math ops that have no SPIR-V
//! lowering, or one with the wrong semantics or precision, into arith and math
//! ops that `convert-math-to-spirv`/`convert-arith-to-spirv` lower exactly,
//! so the Vulkan target computes them with Nx's semantics.
//!
//! Why: `convert-math-to-spirv` has no pattern for `math.erf`, `math.erfc`,
//! `math.cbrt`, `math.atan2`, `math.ctpop` or `math.ipowi`; `math.asin`,
//! `acos` and `atan` become GLSL.std.450 functions that Vulkan lets be off
//! by ~1e-4 (lavapipe's `atan(1)` is 4e-6 off); `math.powf` becomes
//! GLSL.std.450 Pow, undefined for negative bases and zero; `arith.remf`
//! becomes OpFRem, imprecise for large quotients; and `arith.remsi` becomes
//! `|a| umod |b|` with the sign chosen by `a == |a|`, wrong for the minimum
//! integer. Each is replaced here by an expansion on f32 (f16 computes in
//! f32 and rounds once) or on the integer type:
//! - `erf`: `x·P(x²)` below 1; `erfc`: `1 - erf` below 0.5; above,
//!   `exp(-x²)·G(x)` (G fitted on [0.5, 2.5] and [2.5, 10.1]), with `x²`
//!   split into a rounded and an exact part;
//! - `log`: exponent from the bits (subnormals exact), `2·atanh(s)` of the
//!   mantissa (GLSL.std.450 Log of a flushed subnormal is -inf); `asinh`,
//!   `acosh` on it (GLSL's disagreed with the interpreter on edge values);
//! - `sin`, `cos`, `tan`: Payne–Hanek reduction by 2/π in 32-bit integer
//!   arithmetic for every argument (lavapipe's GLSL `sin(1e30)` is -1),
//!   Taylor series on [-π/4, π/4];
//! - `atan`, `asin`, `acos`, `atan2`: one `atan` (reduction to
//!   `[0, tan(π/12)]`, Taylor series; GLSL.std.450 Atan is off by ~50 ulps
//!   on lavapipe), with C's `atan2` results for zeros, infinities, NaN;
//! - `cbrt`: exponent divided by three on the bits, Newton on the mantissa;
//! - `powf`: C `pow` (zeros, infinities, negative bases with integer
//!   exponents), the magnitude as `2^(y·log2|x|)` with `log2` carried in two
//!   floats so large `y` keep f32 accuracy (exact products by Dekker's
//!   splitting, not `fma`, which Vulkan lets be unfused: lavapipe's is);
//! - `remf`: C `fmod`, exact, by long division on the integer mantissas in
//!   an `scf.for` (also right for subnormals on devices that flush them),
//!   for f64 as well;
//! - `remsi`: the sign of the dividend applied to `|a| umod |b|`;
//! - `ctpop`: the classic parallel bit count, for every width;
//! - `ipowi` (integer `pow`, which has no SPIR-V lowering): square and
//!   multiply over the exponent's bits, wrapping.
//!
//! Every op of an expansion carries the location name `tensorc.exact`; the
//! companion pass `tensorc-vulkan-exact-float` (run after the SPIR-V
//! conversion) decorates the kernels' float arithmetic `NoContraction`, so
//! drivers keep the exact steps the expansions rely on (and Nx's rounding
//! of every other op: only reductions' multiply-accumulates stay free).
//!
//! Subnormal and zero tests are made on the bits where a device that flushes
//! subnormals (lavapipe does) would otherwise change the case taken. The
//! float functions also take 1-D vectors (`tensorc-vulkan-vec4`'s lanes):
//! the same ops on vectors, with splat constants. Left alone: f64 (but for
//! `remf`; the functions have their own pass, `vulkan_math_f64`), bf16
//! (computed in f32 before, see `vulkan_bf16`), vectors of integers and vector `remf` (its loop runs
//! per element). Coefficients are Taylor coefficients or fits made for
//! tensorc (Chebyshev interpolation, checked in f32 arithmetic).

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-vulkan-expand-math";

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Expand math ops without an exact SPIR-V lowering into arith/math ops",
        // tensorc-mlir's context loads every dialect (math has no melior handle).
        &[DialectHandle::arith()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { expand_module(module) };
            true
        },
    )
}

/// The name of the companion pass that keeps the kernels' float arithmetic
/// exact in SPIR-V (see `create_exact`).
pub const EXACT_NAME: &str = "tensorc-vulkan-exact-float";

/// The location name that marks the ops of an expansion.
pub(crate) use crate::pipeline::EXACT_LOC;

static EXACT_ID: PassId = PassId::new();

/// Creates `tensorc-vulkan-exact-float`, to run after `convert-gpu-to-spirv`:
/// it decorates the kernels' SPIR-V float arithmetic `NoContraction`, all of
/// it but a reduction's multiply-accumulate (see `fused_accumulation`).
///
/// Why: SPIR-V lets a driver reassociate, fuse or simplify float arithmetic
/// that is not `NoContraction` (what GLSL's `precise` becomes), and Mesa's
/// NIR does. The math expansions rely on exact IEEE steps (Dekker products,
/// `(a + b) - a`, Cody–Waite reduction): NIR turned `pow`'s two-float sums
/// into one float and simplified `log1p`'s correction away. Plain
/// arithmetic is no different under Nx's semantics, which round every op:
/// NIR folded `(x · −2048) · −2048` in f16 into `x · 4194304`, whose
/// constant overflows f16, so every result was ±inf where the interpreter
/// and the CPU give −49088 (generated seed 36273). Only a reduction's
/// accumulation of products stays free, so a driver may make it an `fma`:
/// a reduction's result is Nx's up to reassociation, and the CPU's matmul
/// tiles use `fma` too.
pub fn create_exact() -> Pass {
    module_pass(
        &EXACT_ID,
        EXACT_NAME,
        "Decorate the kernels' SPIR-V float arithmetic NoContraction, but multiply-accumulates",
        &[],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { mark_exact(module) };
            true
        },
    )
}

/// SPIR-V ops that `NoContraction` applies to.
const FLOAT_ARITH: &[&str] = &[
    "spirv.FAdd",
    "spirv.FSub",
    "spirv.FMul",
    "spirv.FDiv",
    "spirv.FNegate",
];

/// # Safety
/// `module` must be a live operation.
unsafe fn mark_exact(module: MlirOperation) {
    unsafe {
        let ctx = mlirOperationGetContext(module);
        let mut ops = Vec::new();
        walk(module, |op| {
            if FLOAT_ARITH.contains(&op_name(op).as_str()) {
                ops.push(op);
            }
            MlirWalkResult_MlirWalkResultAdvance
        });
        let mut free = Vec::new();
        for &op in &ops {
            if let Some(product) = fused_accumulation(op) {
                free.extend([op.ptr, product.ptr]);
            }
        }
        for op in ops {
            if !free.contains(&op.ptr) || in_expansion(op) {
                mlirOperationSetAttributeByName(op, string_ref("no_contraction"), mlirUnitAttrGet(ctx));
            }
        }
    }
}

/// Whether `op` belongs to a math expansion (its location is named
/// `EXACT_LOC`): such ops stay exact even where they accumulate (`remf`'s
/// long division loop).
unsafe fn in_expansion(op: MlirOperation) -> bool {
    unsafe {
        let loc = mlirOperationGetLocation(op);
        mlirLocationIsAName(loc)
            && from_string_ref(mlirIdentifierStr(mlirLocationNameGetName(loc))) == EXACT_LOC
    }
}

/// The product `op` accumulates, when `op` is a reduction's
/// multiply-accumulate: an `FAdd` of a loop-carried value (an argument of
/// a block of a `spirv.mlir.loop`, the accumulator `tensorc-vulkan-accumulate`
/// keeps in a register) and an `FMul` used only there, of two values no
/// float arithmetic computed (loads, conversions). Contracting exactly
/// these into an `fma` changes nothing but the reduction's rounding;
/// anything longer could be reassociated across Nx's rounding steps.
unsafe fn fused_accumulation(op: MlirOperation) -> Option<MlirOperation> {
    unsafe {
        if op_name(op) != "spirv.FAdd" {
            return None;
        }
        let (a, b) = (mlirOperationGetOperand(op, 0), mlirOperationGetOperand(op, 1));
        let product = if loop_carried(a) { b } else if loop_carried(b) { a } else { return None };
        let mul = defined_by(product, "spirv.FMul")?;
        sole_use(product)?;
        let computed = |v: MlirValue| {
            !mlirValueIsABlockArgument(v)
                && FLOAT_ARITH.contains(&op_name(mlirOpResultGetOwner(v)).as_str())
        };
        if computed(mlirOperationGetOperand(mul, 0)) || computed(mlirOperationGetOperand(mul, 1)) {
            return None;
        }
        Some(mul)
    }
}

/// Whether `v` is an argument of a block in a `spirv.mlir.loop` (a value
/// carried from one iteration to the next).
unsafe fn loop_carried(v: MlirValue) -> bool {
    unsafe {
        mlirValueIsABlockArgument(v)
            && op_name(mlirBlockGetParentOperation(mlirBlockArgumentGetOwner(v))) == "spirv.mlir.loop"
    }
}

/// The ops this pass rewrites.
const OPS: &[&str] = &[
    "math.erf",
    "math.erfc",
    "math.cbrt",
    "math.asin",
    "math.acos",
    "math.atan",
    "math.log",
    "math.sin",
    "math.cos",
    "math.tan",
    "math.asinh",
    "math.acosh",
    "math.atan2",
    "math.powf",
    "arith.remf",
    "arith.remsi",
    "math.ctpop",
    "math.ipowi",
];

/// Rewrites every op of `OPS` on a scalar of a type this pass handles.
///
/// # Safety
/// `module` must be a live operation.
unsafe fn expand_module(module: MlirOperation) {
    unsafe {
        let mut ops = Vec::new();
        walk(module, |op| {
            if OPS.contains(&op_name(op).as_str()) {
                ops.push(op);
            }
            MlirWalkResult_MlirWalkResultAdvance
        });
        for op in ops {
            let name = op_name(op);
            let ty = mlirValueGetType(result(op));
            // A 1-D vector (`tensorc-vulkan-vec4`'s lanes) is expanded lane-wise
            // with the same ops; its element type decides the expansion.
            let (ty_elem, lanes) = if mlirTypeIsAVector(ty) {
                if mlirShapedTypeGetRank(ty) != 1 || !mlirShapedTypeHasStaticShape(ty) {
                    continue;
                }
                (
                    mlirShapedTypeGetElementType(ty),
                    mlirShapedTypeGetDimSize(ty, 0),
                )
            } else {
                (ty, 0)
            };
            let operands: Vec<MlirValue> = (0..mlirOperationGetNumOperands(op))
                .map(|i| mlirOperationGetOperand(op, i))
                .collect();
            let ctx = mlirOperationGetContext(op);
            let b = B {
                ctx,
                block: mlirOperationGetBlock(op),
                at: Some(op),
                // Marked for `tensorc-vulkan-exact-float`, around the
                // source location (which diagnostics still find inside).
                loc: mlirLocationNameGet(ctx, string_ref(EXACT_LOC), mlirOperationGetLocation(op)),
                lanes,
            };
            let new = if lanes == 0 && mlirTypeIsAInteger(ty) {
                let bits = mlirIntegerTypeGetWidth(ty);
                match name.as_str() {
                    "math.ctpop" => popcount(&b, operands[0], bits),
                    "arith.remsi" => remsi(&b, operands[0], operands[1]),
                    "math.ipowi" => ipowi(&b, operands[0], operands[1], bits),
                    _ => continue,
                }
            } else if lanes == 0 && mlirTypeIsAF64(ty) {
                // The f64 functions are `vulkan_math_f64`'s; `fmod` is
                // exact integer work, the same for every width.
                match name.as_str() {
                    "arith.remf" => fmod(&b, operands[0], operands[1]),
                    _ => continue,
                }
            } else if mlirTypeIsAF32(ty_elem) || mlirTypeIsAF16(ty_elem) {
                let f32t = b.f32t();
                let half = mlirTypeIsAF16(ty_elem);
                let args: Vec<MlirValue> = operands
                    .iter()
                    .map(|&v| {
                        if half {
                            b.op("arith.extf", &[v], f32t, &[])
                        } else {
                            v
                        }
                    })
                    .collect();
                let r = match name.as_str() {
                    "math.erf" => erf(&b, args[0]),
                    "math.erfc" => erfc(&b, args[0]),
                    "math.cbrt" => cbrt(&b, args[0]),
                    "math.asin" => asin(&b, args[0]),
                    "math.acos" => acos(&b, args[0]),
                    "math.atan" => atan(&b, args[0]),
                    "math.log" => log(&b, args[0]),
                    "math.sin" => trig(&b, args[0], Trig::Sin),
                    "math.cos" => trig(&b, args[0], Trig::Cos),
                    "math.tan" => trig(&b, args[0], Trig::Tan),
                    "math.asinh" => asinh(&b, args[0]),
                    "math.acosh" => acosh(&b, args[0]),
                    "math.atan2" => atan2(&b, args[0], args[1]),
                    "math.powf" => pow(&b, args[0], args[1]),
                    // (Its loop runs per element: scalars only.)
                    "arith.remf" if lanes == 0 => fmod(&b, args[0], args[1]),
                    _ => continue,
                };
                if half {
                    b.op("arith.truncf", &[r], ty, &[])
                } else {
                    r
                }
            } else {
                continue;
            };
            mlirValueReplaceAllUsesOfWith(result(op), new);
            mlirOperationDestroy(op);
        }
    }
}

type V = MlirValue;

/// `arith.cmpf` predicates (their enum values).
#[derive(Clone, Copy)]
enum F {
    Oeq = 1,
    Ogt = 2,
    Olt = 4,
    Ult = 11,
    Uno = 14,
}

/// `arith.cmpi` predicates (their enum values).
#[derive(Clone, Copy)]
enum I {
    Eq = 0,
    Ne = 1,
    Slt = 2,
    Sgt = 4,
    Ult = 6,
    Ugt = 8,
    Uge = 9,
}

/// Builds ops in front of the op being replaced. Every op has one result;
/// binary ops take their result type from the first operand.
struct B {
    ctx: MlirContext,
    block: MlirBlock,
    /// Insert before this op; `None`: append to `block` (a loop body).
    at: Option<MlirOperation>,
    /// 0 for scalars, else the length of the 1-D vectors computed on.
    lanes: i64,
    loc: MlirLocation,
}

impl B {
    fn op(&self, name: &str, operands: &[V], ty: MlirType, attrs: &[(&str, MlirAttribute)]) -> V {
        // SAFETY: the context, block and anchor op are alive for the pass;
        // the new op is inserted into the block, which takes ownership.
        unsafe {
            let op = build(self.ctx, name, self.loc, operands, &[ty], attrs);
            self.insert(op);
            result(op)
        }
    }

    /// Places a new op (ownership passes to the block).
    fn insert(&self, op: MlirOperation) {
        // SAFETY: the block (and anchor) are alive; `op` is detached.
        unsafe {
            match self.at {
                Some(at) => mlirBlockInsertOwnedOperationBefore(self.block, at, op),
                None => mlirBlockAppendOwnedOperation(self.block, op),
            }
        }
    }

    /// `scf.for i in 0..n` (`n` an index) carrying `inits`; `body` gets a
    /// builder for the loop body and the carried values and returns the
    /// next ones. Returns the final values.
    fn for_loop(&self, n: V, inits: &[V], body: impl FnOnce(&B, &[V]) -> Vec<V>) -> Vec<V> {
        // SAFETY: everything is built in this context and handed to the IR
        // that owns it (block to region, region to op, op to block).
        unsafe {
            let idx = mlirIndexTypeGet(self.ctx);
            let c = |v| {
                let a = mlirIntegerAttrGet(idx, v);
                self.op("arith.constant", &[], idx, &[("value", a)])
            };
            let (c0, c1) = (c(0), c(1));
            let mut types = vec![idx];
            types.extend(inits.iter().map(|&v| self.ty(v)));
            let locs = vec![self.loc; types.len()];
            let block = mlirBlockCreate(types.len() as isize, types.as_ptr(), locs.as_ptr());
            let inner = B {
                ctx: self.ctx,
                block,
                at: None,
                loc: self.loc,
                lanes: self.lanes,
            };
            let args: Vec<V> = (1..types.len())
                .map(|i| mlirBlockGetArgument(block, i as isize))
                .collect();
            let next = body(&inner, &args);
            mlirBlockAppendOwnedOperation(
                block,
                build(self.ctx, "scf.yield", self.loc, &next, &[], &[]),
            );
            let region = mlirRegionCreate();
            mlirRegionAppendOwnedBlock(region, block);
            let mut operands = vec![c0, n, c1];
            operands.extend_from_slice(inits);
            let op = create_op(
                self.ctx,
                "scf.for",
                self.loc,
                &operands,
                &types[1..],
                &[],
                &[region],
            );
            self.insert(op);
            (0..inits.len())
                .map(|i| mlirOperationGetResult(op, i as isize))
                .collect()
        }
    }

    fn ty(&self, v: V) -> MlirType {
        // SAFETY: `v` is a live value.
        unsafe { mlirValueGetType(v) }
    }

    /// `elem`, or a vector of `lanes` of it.
    fn shaped(&self, elem: MlirType) -> MlirType {
        if self.lanes == 0 {
            return elem;
        }
        // SAFETY: a 1-D shape of a live element type.
        unsafe { mlirVectorTypeGet(1, &self.lanes, elem) }
    }

    fn f32t(&self) -> MlirType {
        // SAFETY: the context is alive.
        self.shaped(unsafe { mlirF32TypeGet(self.ctx) })
    }

    fn i32t(&self) -> MlirType {
        // SAFETY: the context is alive.
        self.shaped(unsafe { mlirIntegerTypeGet(self.ctx, 32) })
    }

    /// A constant of (scalar or vector) type `t` from its element's value.
    fn constant(&self, t: MlirType, elem: MlirAttribute) -> V {
        // SAFETY: `t` is a live type; a vector gets the splat of `elem`.
        let a = unsafe {
            if mlirTypeIsAVector(t) {
                mlirDenseElementsAttrSplatGet(t, elem)
            } else {
                elem
            }
        };
        self.op("arith.constant", &[], t, &[("value", a)])
    }

    /// An f32 constant (rounded to f32).
    fn c(&self, v: f64) -> V {
        // SAFETY: the context is alive.
        let a = unsafe { mlirFloatAttrDoubleGet(self.ctx, mlirF32TypeGet(self.ctx), v) };
        self.constant(self.f32t(), a)
    }

    /// An integer constant of (scalar or vector) type `t` from the low bits
    /// of `v`.
    fn int(&self, t: MlirType, v: i64) -> V {
        // SAFETY: `t` is an integer type (or a vector of one) of this context.
        let a = unsafe {
            let e = if mlirTypeIsAVector(t) {
                mlirShapedTypeGetElementType(t)
            } else {
                t
            };
            let w = mlirIntegerTypeGetWidth(e);
            // Sign-extend the low `w` bits so the value fits the type.
            let v = if w < 64 {
                (v << (64 - w)) >> (64 - w)
            } else {
                v
            };
            mlirIntegerAttrGet(e, v)
        };
        self.constant(t, a)
    }

    /// An i32 constant.
    fn i(&self, v: i64) -> V {
        self.int(self.i32t(), v)
    }

    fn bin(&self, name: &str, a: V, b: V) -> V {
        self.op(name, &[a, b], self.ty(a), &[])
    }

    fn un(&self, name: &str, a: V) -> V {
        self.op(name, &[a], self.ty(a), &[])
    }

    fn add(&self, a: V, b: V) -> V {
        self.bin("arith.addf", a, b)
    }

    fn sub(&self, a: V, b: V) -> V {
        self.bin("arith.subf", a, b)
    }

    fn mul(&self, a: V, b: V) -> V {
        self.bin("arith.mulf", a, b)
    }

    fn div(&self, a: V, b: V) -> V {
        self.bin("arith.divf", a, b)
    }

    fn fma(&self, a: V, b: V, c: V) -> V {
        self.op("math.fma", &[a, b, c], self.ty(a), &[])
    }

    fn abs(&self, a: V) -> V {
        self.un("math.absf", a)
    }

    fn neg(&self, a: V) -> V {
        self.un("arith.negf", a)
    }

    fn floor(&self, a: V) -> V {
        self.un("math.floor", a)
    }

    fn sqrt(&self, a: V) -> V {
        self.un("math.sqrt", a)
    }

    fn copysign(&self, a: V, b: V) -> V {
        self.bin("math.copysign", a, b)
    }

    fn predicate(&self, name: &str, p: i64, a: V, b: V) -> V {
        // SAFETY: the context is alive.
        let (i1, attr) = unsafe {
            let i64t = mlirIntegerTypeGet(self.ctx, 64);
            (
                self.shaped(mlirIntegerTypeGet(self.ctx, 1)),
                mlirIntegerAttrGet(i64t, p),
            )
        };
        self.op(name, &[a, b], i1, &[("predicate", attr)])
    }

    fn cmpf(&self, p: F, a: V, b: V) -> V {
        self.predicate("arith.cmpf", p as i64, a, b)
    }

    fn cmpi(&self, p: I, a: V, b: V) -> V {
        self.predicate("arith.cmpi", p as i64, a, b)
    }

    fn sel(&self, c: V, a: V, b: V) -> V {
        self.op("arith.select", &[c, a, b], self.ty(a), &[])
    }

    fn and(&self, a: V, b: V) -> V {
        self.bin("arith.andi", a, b)
    }

    fn or(&self, a: V, b: V) -> V {
        self.bin("arith.ori", a, b)
    }

    fn not(&self, a: V) -> V {
        let t = self.int(self.ty(a), -1);
        self.bin("arith.xori", a, t)
    }

    fn iadd(&self, a: V, b: V) -> V {
        self.bin("arith.addi", a, b)
    }

    fn isub(&self, a: V, b: V) -> V {
        self.bin("arith.subi", a, b)
    }

    fn shl(&self, a: V, b: V) -> V {
        self.bin("arith.shli", a, b)
    }

    fn shr(&self, a: V, b: V) -> V {
        self.bin("arith.shrui", a, b)
    }

    /// The bits of an f32.
    fn bits(&self, x: V) -> V {
        self.op("arith.bitcast", &[x], self.i32t(), &[])
    }

    /// The f32 with these bits.
    fn float(&self, i: V) -> V {
        self.op("arith.bitcast", &[i], self.f32t(), &[])
    }

    /// `2^n` for an i32 `n` in [-126, 127].
    fn pow2(&self, n: V) -> V {
        let biased = self.iadd(n, self.i(127));
        self.float(self.shl(biased, self.i(23)))
    }

    /// `c[0] + z·(c[1] + z·(c[2] + …))`.
    fn horner(&self, z: V, c: &[f64]) -> V {
        let mut p = self.c(c[c.len() - 1]);
        for &k in c[..c.len() - 1].iter().rev() {
            p = self.fma(p, z, self.c(k));
        }
        p
    }

    /// `x` rounded to the nearest integer (halves up), as an f32.
    fn round(&self, x: V) -> V {
        self.floor(self.add(x, self.c(0.5)))
    }

    fn to_i32(&self, x: V) -> V {
        self.op("arith.fptosi", &[x], self.i32t(), &[])
    }

    fn to_f32(&self, x: V) -> V {
        self.op("arith.sitofp", &[x], self.f32t(), &[])
    }

    /// `a` as `hi + lo` with `hi` holding its top 12 bits (Veltkamp), so
    /// products of halves are exact.
    fn split(&self, a: V) -> (V, V) {
        let c = self.mul(self.c(4097.0), a);
        let hi = self.sub(c, self.sub(c, a));
        (hi, self.sub(a, hi))
    }

    /// `a·b = p + e` exactly (Dekker), without `fma`: Vulkan lets `fma` be
    /// a rounded multiply and add (lavapipe's is). `|a|`, `|b|` < 2^115.
    fn two_prod(&self, a: V, b: V) -> (V, V) {
        let p = self.mul(a, b);
        let (ah, al) = self.split(a);
        let (bh, bl) = self.split(b);
        let e = self.sub(self.mul(ah, bh), p);
        let e = self.add(e, self.mul(ah, bl));
        let e = self.add(e, self.mul(al, bh));
        (p, self.add(e, self.mul(al, bl)))
    }

    /// `x · 2^n` for an i32 `n` in [-250, 250]: two exact scalings, each by a
    /// normal power of two, so the result over- or underflows only once.
    fn scale(&self, x: V, n: V) -> V {
        let n1 = self.bin("arith.shrsi", n, self.i(1));
        let n2 = self.isub(n, n1);
        self.mul(self.mul(x, self.pow2(n1)), self.pow2(n2))
    }
}

const PI_HI: f64 = 3.141_592_741_012_573_2;
const PI_LO: f64 = -8.742_278_012_618_954e-8;
const HALF_PI_HI: f64 = 1.570_796_370_506_286_6;
const HALF_PI_LO: f64 = -4.371_139_006_309_477e-8;
/// `ln 2 = LN2_C1 + LN2_C2`, `LN2_C1 = 355/512`.
const LN2_C1: f64 = 0.693_359_375;
const LN2_C2: f64 = -2.121_944_400_547_137_7e-4;
const LOG2E_HI: f64 = 1.442_695_021_629_333_5;
const LOG2E_LO: f64 = 1.925_962_989_091_09e-8;

/// `atan(t)` for `t ≥ 0` (NaN gives NaN): `π/2 - atan(1/t)` above 1, then
/// `π/6 + atan((t√3 - 1)/(t + √3))` above `tan(π/12)`, then the Taylor
/// series to `t^13` (relative error below 1e-9 on `[0, tan(π/12)]`).
fn atan_pos(b: &B, t: V) -> V {
    let one = b.c(1.0);
    let inv = b.cmpf(F::Ogt, t, one);
    let t = b.sel(inv, b.div(one, t), t);
    let big = b.cmpf(F::Ogt, t, b.c(0.267_949_192_431_122_7));
    let sqrt3 = b.c(3f64.sqrt());
    let reduced = b.div(b.fma(t, sqrt3, b.c(-1.0)), b.add(t, sqrt3));
    let u = b.sel(big, reduced, t);
    let u2 = b.mul(u, u);
    let p = b.horner(
        u2,
        &[
            -1.0 / 3.0,
            1.0 / 5.0,
            -1.0 / 7.0,
            1.0 / 9.0,
            -1.0 / 11.0,
            1.0 / 13.0,
        ],
    );
    let r = b.fma(b.mul(u, u2), p, u);
    let r = b.add(b.sel(big, b.c(std::f64::consts::FRAC_PI_6), b.c(0.0)), r);
    let flipped = b.add(b.sub(b.c(HALF_PI_HI), r), b.c(HALF_PI_LO));
    b.sel(inv, flipped, r)
}

/// `atan(x)`, odd; NaN is selected explicitly (lavapipe turned the NaN that
/// flows through `atan_pos` into 0).
fn atan(b: &B, x: V) -> V {
    let r = b.copysign(atan_pos(b, b.abs(x)), x);
    b.sel(b.cmpf(F::Uno, x, x), x, r)
}

/// `asin(x) = atan(x / sqrt((1 - x)(1 + x)))`; ±1 give ±π/2 (through
/// ±inf), |x| > 1 and NaN give NaN.
fn asin(b: &B, x: V) -> V {
    let one = b.c(1.0);
    let d = b.sqrt(b.mul(b.sub(one, x), b.add(one, x)));
    let t = b.div(x, d);
    b.copysign(atan_pos(b, b.abs(t)), t)
}

/// `acos(x) = 2·atan(sqrt((1 - x)/(1 + x)))`; -1 gives π (through inf),
/// |x| > 1 and NaN give NaN.
fn acos(b: &B, x: V) -> V {
    let one = b.c(1.0);
    let t = b.sqrt(b.div(b.sub(one, x), b.add(one, x)));
    b.mul(b.c(2.0), atan_pos(b, t))
}

/// C's `atan2(y, x)`: the angle of `|y|/|x|` moved to x's half plane
/// (`π - a` when x's sign bit is set, so -0 counts as negative) and given
/// y's sign. `y = ±0` gives ±0 or ±π, both infinite gives ±π/4 or ±3π/4,
/// NaN gives NaN.
fn atan2(b: &B, y: V, x: V) -> V {
    let (ay, ax) = (b.abs(y), b.abs(x));
    let inf = b.c(f64::INFINITY);
    let both_inf = b.and(b.cmpf(F::Oeq, ay, inf), b.cmpf(F::Oeq, ax, inf));
    let y_zero = b.cmpf(F::Oeq, y, b.c(0.0));
    let t = b.sel(both_inf, b.c(1.0), b.div(ay, ax));
    let t = b.sel(y_zero, b.c(0.0), t);
    let a = atan_pos(b, t);
    let x_neg = b.cmpi(I::Slt, b.bits(x), b.i(0));
    let left = b.add(b.sub(b.c(PI_HI), a), b.c(PI_LO));
    let r = b.copysign(b.sel(x_neg, left, a), y);
    let nan = b.cmpf(F::Uno, x, y);
    b.sel(nan, b.add(x, y), r)
}

/// `cbrt(x)`: with `|x| = m·2^(3k)`, `m` in [1, 8) (exponent divided by
/// three on the bits; subnormals are scaled by 2^24 first), a quadratic
/// guess for `cbrt(m)` (error below 4 %) and four Newton steps, times `2^k`.
/// ±0, ±inf and NaN (and subnormals a device flushes) give `x` itself.
fn cbrt(b: &B, x: V) -> V {
    let ax = b.abs(x);
    let ab = b.bits(ax);
    let tiny = b.cmpi(I::Ult, ab, b.i(0x0080_0000));
    let scaled = b.sel(tiny, b.mul(ax, b.c(16_777_216.0)), ax);
    let sb = b.bits(scaled);
    let e = b.isub(b.shr(sb, b.i(23)), b.i(127));
    let e = b.sel(tiny, b.isub(e, b.i(24)), e);
    // floor(e / 3) with a non-negative dividend: e ≥ -149 - 24 > -153.
    let k = b.isub(b.bin("arith.divui", b.iadd(e, b.i(153)), b.i(3)), b.i(51));
    let rem = b.isub(e, b.bin("arith.muli", k, b.i(3)));
    let mbits = b.or(
        b.shl(b.iadd(rem, b.i(127)), b.i(23)),
        b.and(sb, b.i(0x007f_ffff)),
    );
    let m = b.float(mbits);
    let mut y = b.horner(
        m,
        &[
            0.813_794_748_196_631,
            0.236_251_888_491_782_5,
            -0.011_158_746_763_572_29,
        ],
    );
    let third = b.c(1.0 / 3.0);
    for _ in 0..4 {
        let q = b.div(m, b.mul(y, y));
        y = b.sub(y, b.mul(b.sub(y, q), third));
    }
    let r = b.copysign(b.scale(y, k), x);
    let special = b.or(
        b.cmpf(F::Oeq, scaled, b.c(0.0)),
        b.cmpi(I::Uge, ab, b.i(0x7f80_0000)),
    );
    b.sel(special, x, r)
}

/// `exp(-h)` for `h ≥ 0` (at most ~121): `2^n · e^r` with `n` the nearest
/// integer to `-h/ln 2`, `r = (z - n·C1) - n·C2` with `C1 + C2 = ln 2` and
/// `C1` of 9 bits, so `n·C1` and the first subtraction are exact (Cody and
/// Waite), `e^r` by its Taylor series to degree 7 (relative error below
/// 1e-8 on |r| ≤ ln2/2).
fn exp_neg(b: &B, h: V) -> V {
    let z = b.neg(h);
    let n = b.round(b.mul(z, b.c(std::f64::consts::LOG2_E)));
    let r = b.sub(z, b.mul(n, b.c(LN2_C1)));
    let r = b.sub(r, b.mul(n, b.c(LN2_C2)));
    let p = b.horner(
        r,
        &[
            1.0,
            1.0,
            0.5,
            1.0 / 6.0,
            1.0 / 24.0,
            1.0 / 120.0,
            1.0 / 720.0,
            1.0 / 5040.0,
        ],
    );
    b.scale(p, b.to_i32(n))
}

/// `x·P(x²)` ≈ erf(x) for |x| ≤ 1 (fit, about one ulp).
fn erf_small(b: &B, x: V) -> V {
    let z = b.mul(x, x);
    let p = b.horner(
        z,
        &[
            1.128_379_165_848_350_4,
            -0.376_126_266_667_196_3,
            0.112_835_947_151_523_62,
            -0.026_854_212_010_276_41,
            0.005_189_087_422_780_045_6,
            -0.000_801_686_428_181_775_5,
            7.875_875_046_790_626e-5,
        ],
    );
    b.mul(x, p)
}

/// erfc(a) for `a ≥ 0.5` (inf and huge values give 0, NaN gives NaN):
/// `exp(-a²)·G(a)`, with G fitted on [0.5, 2.5] in `a` and on [2.5, 10.1] as
/// `G(a)·a` in `1/a` (about 1e-8 relative), and `a² = hi + lo` exactly (`two_prod`) so
/// `exp(-a²) = exp(-hi)·(1 - lo)`.
fn erfc_tail(b: &B, a: V) -> V {
    // erfc(11) is far below the smallest f32; clamping keeps `a²` finite.
    let eleven = b.c(11.0);
    let a = b.sel(b.cmpf(F::Ogt, a, eleven), eleven, a);
    let (hi, lo) = b.two_prod(a, a);
    let e = exp_neg(b, hi);
    let e = b.fma(b.neg(e), lo, e);
    let near = b.horner(
        b.sub(a, b.c(1.5)),
        &[
            0.321_585_415_162_013_67,
            -0.163_622_917_364_341_95,
            0.076_151_132_798_967_79,
            -0.032_930_931_783_219_03,
            0.013_376_262_781_837_234,
            -0.005_145_650_248_556_843,
            0.001_890_681_026_905_483,
            -0.000_663_226_521_915_009_4,
            0.000_214_738_294_296_523_7,
            -7.021_189_854_050_647e-5,
            3.012_266_041_935_163_2e-5,
            -9.051_851_238_931_855e-6,
        ],
    );
    let inv = b.div(b.c(1.0), a);
    let far = b.horner(
        b.mul(
            b.sub(inv, b.c(0.249_504_950_495_049_5)),
            b.c(1.0 / 0.150_495_049_504_950_52),
        ),
        &[
            0.548_056_923_041_262_5,
            -0.017_951_147_088_541_494,
            -0.003_807_583_117_271_293,
            0.000_748_416_825_108_233_5,
            -1.381_431_883_451_522_7e-5,
            -2.122_032_499_141_113_2e-5,
            4.390_436_325_829_583e-6,
            -5.414_198_422_926_12e-8,
        ],
    );
    let g = b.sel(b.cmpf(F::Olt, a, b.c(2.5)), near, b.mul(far, inv));
    b.mul(e, g)
}

/// `x·P(x²)` below 1, `±(1 - erfc(|x|))` above.
fn erf(b: &B, x: V) -> V {
    let one = b.c(1.0);
    let a = b.abs(x);
    let small = b.cmpf(F::Olt, a, one);
    let big = b.copysign(b.sub(one, erfc_tail(b, a)), x);
    b.sel(small, erf_small(b, x), big)
}

/// `1 - erf(x)` below 0.5 (where erfc > 0.47, so nothing cancels), the
/// tail above, `2 - erfc(-x)` for negative x.
fn erfc(b: &B, x: V) -> V {
    let one = b.c(1.0);
    let a = b.abs(x);
    let small = b.cmpf(F::Olt, a, b.c(0.5));
    let t = erfc_tail(b, a);
    let big = b.sel(b.cmpf(F::Olt, x, b.c(0.0)), b.sub(b.c(2.0), t), t);
    b.sel(small, b.sub(one, erf_small(b, x)), big)
}

/// `ln|x| = e·ln 2 + h + tail` for the bits `ab` of a finite nonzero `|x|`
/// (subnormals included): `|x| = m·2^e` from the bits (subnormals
/// normalized with `ctlz`), `m` in [√½, √2); `ln m = 2·atanh(s)`,
/// `s = f/(2 + f)`, `f = m - 1`, with `s` carried as `sh + sl` and the
/// series' tail to `s^13`; `h = 2·sh` exactly. Returns `(e, h, tail)`, `e`
/// as an f32.
fn ln_parts(b: &B, ab: V) -> (V, V, V) {
    let sub = b.cmpi(I::Ult, ab, b.i(0x0080_0000));
    let shift = b.isub(b.un("math.ctlz", ab), b.i(8));
    let mant = b.sel(sub, b.shl(ab, shift), ab);
    let e = b.sel(
        sub,
        b.isub(b.i(-126), shift),
        b.isub(b.shr(ab, b.i(23)), b.i(127)),
    );
    let mb = b.or(b.and(mant, b.i(0x007f_ffff)), b.i(0x3f80_0000));
    let high = b.cmpi(I::Ugt, mb, b.i(0x3fb5_04f3));
    let mb = b.sel(high, b.isub(mb, b.i(0x0080_0000)), mb);
    let e = b.sel(high, b.iadd(e, b.i(1)), e);
    let m = b.float(mb);
    let two = b.c(2.0);
    let f = b.sub(m, b.c(1.0));
    let dh = b.add(two, f);
    let dl = b.sub(f, b.sub(dh, two));
    let sh = b.div(f, dh);
    // f - sh·(dh + dl), the first difference exact (the values are close).
    let (p, pe) = b.two_prod(sh, dh);
    let res = b.sub(b.sub(b.sub(f, p), pe), b.mul(sh, dl));
    let sl = b.div(res, dh);
    let z = b.mul(sh, sh);
    let q = b.horner(
        z,
        &[
            2.0 / 3.0,
            2.0 / 5.0,
            2.0 / 7.0,
            2.0 / 9.0,
            2.0 / 11.0,
            2.0 / 13.0,
        ],
    );
    let tail = b.fma(b.mul(sh, z), q, b.mul(two, sl));
    let h = b.mul(two, sh);
    (b.to_f32(e), h, tail)
}

/// C's `pow(x, y)` (what the interpreter's `powf` computes).
///
/// Magnitude: `|x| = m·2^e` from the bits (subnormals normalized with
/// `ctlz`), `m` in [√½, √2); `ln m = 2·atanh(s)`, `s = f/(2 + f)`,
/// `f = m - 1`, with `s` carried as `sh + sl` and the series' tail to
/// `s^13`; `log2|x| = gh + gl` (two floats), `t = y·log2|x| = th + tl`;
/// then `2^t = 2^n · 2^r` with `n = round(th)`, `r = (th - n) + tl`, `2^r`
/// by its Taylor series to degree 7. Special cases as C: `pow(x, ±0) = 1`,
/// `pow(1, y) = 1`, `pow(-1, ±inf) = 1`, zeros and infinities by the sign
/// of `y` and the parity of an integer `y`, negative finite `x` with a
/// non-integer finite `y` is NaN.
fn pow(b: &B, x: V, y: V) -> V {
    let bx = b.bits(x);
    let ab = b.and(bx, b.i(0x7fff_ffff));
    let (ef, h, tail) = ln_parts(b, ab);
    let (le_hi, le_lo) = (b.c(LOG2E_HI), b.c(LOG2E_LO));
    let (ph, pl) = b.two_prod(h, le_hi);
    let pl = b.add(pl, b.add(b.mul(h, le_lo), b.mul(tail, le_hi)));
    let gh = b.add(ef, ph);
    let gl = b.add(b.sub(ph, b.sub(gh, ef)), pl);
    // Huge `y` overflow the split; `th` is then beyond the limit below.
    let (th, tl) = b.two_prod(y, gh);
    let tl = b.add(tl, b.mul(y, gl));
    // Beyond ±200 the result is 0 or inf whatever the rest is.
    let limit = b.c(200.0);
    let inside = b.cmpf(F::Olt, b.abs(th), limit);
    let thc = b.sel(inside, th, b.copysign(limit, th));
    let tlc = b.sel(inside, tl, b.c(0.0));
    let n = b.round(thc);
    let r = b.add(b.sub(thc, n), tlc);
    let p = b.horner(
        r,
        &[
            1.0,
            std::f64::consts::LN_2,
            0.240_226_506_959_100_7,
            0.055_504_108_664_821_576,
            0.009_618_129_107_628_477,
            0.001_333_355_814_642_844_1,
            0.000_154_035_303_933_816_06,
            1.525_273_380_405_983_8e-5,
        ],
    );
    let mag = b.scale(p, b.to_i32(n));
    // Special cases, outermost last.
    let (zero, inf) = (b.c(0.0), b.c(f64::INFINITY));
    let y_neg = b.cmpf(F::Olt, y, zero);
    let x_zero = b.cmpi(I::Eq, ab, b.i(0));
    let x_inf = b.cmpi(I::Eq, ab, b.i(0x7f80_0000));
    let mag = b.sel(x_zero, b.sel(y_neg, inf, zero), mag);
    let mag = b.sel(x_inf, b.sel(y_neg, zero, inf), mag);
    let ay = b.abs(y);
    let y_inf = b.cmpf(F::Oeq, ay, inf);
    let below_one = b.cmpi(I::Ult, ab, b.i(0x3f80_0000));
    let is_one = b.cmpi(I::Eq, ab, b.i(0x3f80_0000));
    let vanish = b.bin("arith.xori", below_one, y_neg);
    let at_inf = b.sel(is_one, b.c(1.0), b.sel(vanish, zero, inf));
    let mag = b.sel(y_inf, at_inf, mag);
    // Parity of an integer y: every f32 of magnitude ≥ 2^24 is even.
    let y_int = b.cmpf(F::Oeq, b.floor(y), y);
    let exact = b.cmpf(F::Olt, ay, b.c(16_777_216.0));
    let yi = b.to_i32(b.sel(exact, y, zero));
    let odd_bit = b.cmpi(I::Ne, b.and(yi, b.i(1)), b.i(0));
    let odd = b.and(b.and(y_int, exact), odd_bit);
    let x_neg = b.cmpi(I::Slt, bx, b.i(0));
    let r = b.sel(b.and(x_neg, odd), b.neg(mag), mag);
    let finite_neg = b.and(x_neg, b.not(b.or(x_zero, x_inf)));
    let bad = b.and(finite_neg, b.not(y_int));
    let nan = b.or(bad, b.cmpf(F::Uno, x, y));
    let r = b.sel(nan, b.c(f64::NAN), r);
    let one = b.c(1.0);
    let unit = b.or(b.cmpf(F::Oeq, y, zero), b.cmpf(F::Oeq, x, one));
    b.sel(unit, one, r)
}

/// `ln x`: `e·C1 + (h + (tail + e·C2))` from `ln_parts` (`e·C1` exact,
/// `C1 + C2 = ln 2`), so subnormal inputs are exact on devices that flush
/// them; `ln ±0 = -inf`, `ln +inf = inf`, negative and NaN give NaN.
fn log(b: &B, x: V) -> V {
    let bx = b.bits(x);
    let ab = b.and(bx, b.i(0x7fff_ffff));
    let (ef, h, tail) = ln_parts(b, ab);
    let low = b.add(h, b.add(tail, b.mul(ef, b.c(LN2_C2))));
    let r = b.add(b.mul(ef, b.c(LN2_C1)), low);
    let exp_mask = b.i(0x7f80_0000);
    let r = b.sel(b.cmpi(I::Eq, bx, exp_mask), b.c(f64::INFINITY), r);
    let r = b.sel(b.cmpi(I::Slt, bx, b.i(0)), b.c(f64::NAN), r);
    let r = b.sel(b.cmpi(I::Eq, ab, b.i(0)), b.c(f64::NEG_INFINITY), r);
    b.sel(b.cmpi(I::Ugt, ab, exp_mask), x, r)
}

/// `ln(1 + t)` for `t ≥ 0`: `ln(u)·t/(u - 1)` with `u = 1 + t` rounded,
/// which cancels `u`'s rounding error (Goldberg); `t` itself when `u = 1`.
fn log1p_pos(b: &B, t: V) -> V {
    let one = b.c(1.0);
    let u = b.add(one, t);
    let d = b.sub(u, one);
    let l = b.mul(log(b, u), b.div(t, d));
    b.sel(b.cmpf(F::Oeq, d, b.c(0.0)), t, l)
}

/// Above this, `asinh a = ln a + ln 2` and `acosh a = ln a + ln 2` to well
/// below an f32 ulp (the dropped term is about `1/(4a²)`).
const HUGE: f64 = 4096.0;

/// `asinh(x)`, odd: `x` below 2^-12, `ln|x| + ln 2` above 2^12,
/// `log1p(a + a²/(1 + sqrt(1 + a²)))` between; NaN selected explicitly.
fn asinh(b: &B, x: V) -> V {
    let a = b.abs(x);
    let one = b.c(1.0);
    let a2 = b.mul(a, a);
    let mid = log1p_pos(b, b.add(a, b.div(a2, b.add(one, b.sqrt(b.add(one, a2))))));
    let huge = b.cmpf(F::Ogt, a, b.c(HUGE));
    let r = b.sel(huge, b.add(log(b, a), b.c(std::f64::consts::LN_2)), mid);
    let r = b.sel(b.cmpf(F::Olt, a, b.c(1.0 / HUGE)), a, r);
    let r = b.copysign(r, x);
    b.sel(b.cmpf(F::Uno, x, x), x, r)
}

/// `acosh(x)`: `log1p(t + sqrt(t·(t + 2)))` with `t = x - 1` (exact) up to
/// 2^12, `ln x + ln 2` above; below 1 and NaN give NaN.
fn acosh(b: &B, x: V) -> V {
    let t = b.sub(x, b.c(1.0));
    let mid = log1p_pos(b, b.add(t, b.sqrt(b.mul(t, b.add(t, b.c(2.0))))));
    let huge = b.cmpf(F::Ogt, x, b.c(HUGE));
    let r = b.sel(huge, b.add(log(b, x), b.c(std::f64::consts::LN_2)), mid);
    // `!(x >= 1)` is true for NaN too.
    let below = b.cmpf(F::Ult, x, b.c(1.0));
    b.sel(below, b.c(f64::NAN), r)
}

/// 2/π in binary, bits 1 to 224 (a mathematical constant), for the
/// Payne–Hanek reduction of `trig`.
const TWO_OVER_PI: [i64; 7] = [
    0xa2f9_836e,
    0x4e44_1529,
    0xfc27_57d1,
    0xf534_ddc0,
    0xdb62_9599,
    0x3c43_9041,
    0xfe51_63ab,
];

/// `a + b` on 32 bits and its carry (0 or 1).
fn add_carry(b: &B, x: V, y: V) -> (V, V) {
    let s = b.iadd(x, y);
    (s, b.sel(b.cmpi(I::Ult, s, x), b.i(1), b.i(0)))
}

/// The unsigned 64-bit product of two 32-bit values as (high, low) words,
/// from 16-bit halves (no 64-bit integers needed).
fn mul_wide(b: &B, x: V, y: V) -> (V, V) {
    let (m16, s16) = (b.i(0xffff), b.i(16));
    let (xh, xl) = (b.shr(x, s16), b.and(x, m16));
    let (yh, yl) = (b.shr(y, s16), b.and(y, m16));
    let mul = |p: V, q: V| b.bin("arith.muli", p, q);
    let (mid, c_mid) = add_carry(b, mul(xl, yh), mul(xh, yl));
    let (lo, c_lo) = add_carry(b, mul(xl, yl), b.shl(mid, s16));
    let hi = b.iadd(mul(xh, yh), b.shr(mid, s16));
    let hi = b.iadd(b.iadd(hi, b.shl(c_mid, s16)), c_lo);
    (hi, lo)
}

#[derive(Clone, Copy, PartialEq)]
enum Trig {
    Sin,
    Cos,
    Tan,
}

/// `sin`, `cos` or `tan` of an f32, for every argument (GLSL.std.450 has no
/// defined precision for large ones: lavapipe's `sin(1e30)` is -1).
/// Below π/4 no reduction; above, Payne–Hanek: with `|x| = m·2^k` (`m` the
/// 24-bit mantissa), 96 bits of 2/π starting two bits above `2^-k` give
/// `m·(2/π)·2^k mod 4` exactly enough in 96-bit integer arithmetic (32-bit
/// words, products from 16-bit halves): the top two bits are the quadrant,
/// the next 64 the signed fraction `f` in [-1/2, 1/2) (rounding to the
/// nearest quadrant), and `r = f·π/2` is carried in two floats. `sin r` and
/// `cos r` are Taylor series to r^11 and r^12; the quadrant picks and signs
/// them; NaN and ±inf give NaN.
fn trig(b: &B, x: V, which: Trig) -> V {
    let bx = b.bits(x);
    let ab = b.and(bx, b.i(0x7fff_ffff));
    let ax = b.float(ab);
    // Window start (0-based, in the bits of 2/π with 32 zero bits before
    // them): k - 1 + 31 with k = e - 150. Clamped for the small arguments,
    // which do not use it.
    let e = b.shr(ab, b.i(23));
    let q0 = b.isub(e, b.i(120));
    let q0 = b.sel(b.cmpi(I::Slt, q0, b.i(6)), b.i(6), q0);
    let word = b.shr(q0, b.i(5));
    let o = b.and(q0, b.i(31));
    let table: Vec<i64> = std::iter::once(0).chain(TWO_OVER_PI).collect();
    let w = |i: usize| {
        let mut v = b.i(table[i]);
        for start in 1..=4usize {
            let c = b.i(table[start + i]);
            v = b.sel(b.cmpi(I::Eq, word, b.i(start as i64)), c, v);
        }
        v
    };
    let (w0, w1, w2, w3) = (w(0), w(1), w(2), w(3));
    let aligned = b.cmpi(I::Eq, o, b.i(0));
    let back = b.isub(b.i(32), o);
    let join = |p: V, q: V| b.sel(aligned, p, b.or(b.shl(p, o), b.shr(q, back)));
    let (a0, a1, a2) = (join(w0, w1), join(w1, w2), join(w2, w3));
    let m = b.or(b.and(ab, b.i(0x007f_ffff)), b.i(0x0080_0000));
    // z = m·A mod 2^96, A = a0:a1:a2.
    let (h2, z2) = mul_wide(b, m, a2);
    let (h1, l1) = mul_wide(b, m, a1);
    let (z1, c1) = add_carry(b, h2, l1);
    let z0 = b.iadd(b.iadd(h1, b.bin("arith.muli", m, a0)), c1);
    let quadrant = b.iadd(b.shr(z0, b.i(30)), b.and(b.shr(z0, b.i(29)), b.i(1)));
    let fh = b.or(b.shl(z0, b.i(2)), b.shr(z1, b.i(30)));
    let fl = b.or(b.shl(z1, b.i(2)), b.shr(z2, b.i(30)));
    let to_f = |v: V, signed: bool| {
        let name = if signed {
            "arith.sitofp"
        } else {
            "arith.uitofp"
        };
        b.op(name, &[v], b.f32t(), &[])
    };
    // f = fh·2^-32 (signed) + fl·2^-64 as f_hi + f_lo, f_hi exact.
    let f_hi = b.mul(to_f(b.and(fh, b.i(-256)), true), b.c(2f64.powi(-32)));
    let f_lo = b.add(
        b.mul(to_f(b.and(fh, b.i(0xff)), false), b.c(2f64.powi(-32))),
        b.mul(to_f(fl, false), b.c(2f64.powi(-64))),
    );
    let (ph, pl) = b.two_prod(f_hi, b.c(HALF_PI_HI));
    let pl = b.add(
        pl,
        b.add(b.mul(f_hi, b.c(HALF_PI_LO)), b.mul(f_lo, b.c(HALF_PI_HI))),
    );
    let rh = b.add(ph, pl);
    let rl = b.sub(pl, b.sub(rh, ph));
    let small = b.cmpf(F::Olt, ax, b.c(std::f64::consts::FRAC_PI_4));
    let rh = b.sel(small, ax, rh);
    let rl = b.sel(small, b.c(0.0), rl);
    let quadrant = b.and(b.sel(small, b.i(0), quadrant), b.i(3));
    let z = b.mul(rh, rh);
    let sp = b.horner(
        z,
        &[
            -1.0 / 6.0,
            1.0 / 120.0,
            -1.0 / 5040.0,
            1.0 / 362_880.0,
            -1.0 / 39_916_800.0,
        ],
    );
    let sin_r = b.fma(b.mul(rh, z), sp, rh);
    let cos_r = b.horner(
        z,
        &[
            1.0,
            -0.5,
            1.0 / 24.0,
            -1.0 / 720.0,
            1.0 / 40_320.0,
            -1.0 / 3_628_800.0,
            1.0 / 479_001_600.0,
        ],
    );
    // The low part: sin(rh + rl) ≈ sin rh + rl·cos rh, cos(rh + rl) ≈ cos rh - rl·rh.
    let sin_r = b.add(sin_r, b.mul(rl, cos_r));
    let cos_r = b.sub(cos_r, b.mul(rl, rh));
    let odd = b.cmpi(I::Ne, b.and(quadrant, b.i(1)), b.i(0));
    let upper = b.cmpi(I::Ne, b.and(quadrant, b.i(2)), b.i(0));
    let negative = b.cmpi(I::Slt, bx, b.i(0));
    let r = match which {
        // sin: s, c, -s, -c by quadrant; odd in x.
        Trig::Sin => {
            let v = b.sel(odd, cos_r, sin_r);
            let v = b.sel(upper, b.neg(v), v);
            b.sel(negative, b.neg(v), v)
        }
        // cos: c, -s, -c, s; even in x.
        Trig::Cos => {
            let v = b.sel(odd, sin_r, cos_r);
            let flip = b.bin("arith.xori", odd, upper);
            b.sel(flip, b.neg(v), v)
        }
        // tan: s/c, -c/s; odd in x.
        Trig::Tan => {
            let v = b.sel(odd, b.neg(b.div(cos_r, sin_r)), b.div(sin_r, cos_r));
            b.sel(negative, b.neg(v), v)
        }
    };
    b.sel(b.cmpi(I::Uge, ab, b.i(0x7f80_0000)), b.c(f64::NAN), r)
}

/// C's `fmod(x, y)` on f32 or f64, exact: with `x = mx·2^ex`, `y = my·2^ey`
/// (integer mantissas of `p` bits, subnormals included), the remainder of
/// `mx·2^(ex-ey)` by `my` is computed in a loop, `w - p` bits per step
/// (`r < 2^p`, so `r·2^(w-p)` fits the `w`-bit integer: 8 bits for f32, 11
/// for f64), then renormalized. `y = 0`, `x` infinite and NaN give NaN;
/// `|x| < |y|` (also `y` infinite) gives `x`.
fn fmod(b: &B, x: V, y: V) -> V {
    let fty = b.ty(x);
    // SAFETY: a live type.
    let (w, mant) = if unsafe { mlirTypeIsAF64(fty) } {
        (64u32, 52u32)
    } else {
        (32, 23)
    };
    // SAFETY: the context is alive.
    let it = unsafe { mlirIntegerTypeGet(b.ctx, w) };
    let k = |v: i64| b.int(it, v);
    let step = i64::from(w - 1 - mant);
    let frac = (1i64 << mant) - 1;
    let inf = ((1i64 << step) - 1) << mant;
    let cast = |v: V, t: MlirType| b.op("arith.bitcast", &[v], t, &[]);
    let (bx, by) = (cast(x, it), cast(y, it));
    let abs_mask = k(i64::MAX >> (64 - w));
    let (ax, ay) = (b.and(bx, abs_mask), b.and(by, abs_mask));
    let sign = b.and(bx, k(i64::MIN >> (64 - w)));
    let exp_mask = k(inf);
    let nan = b.or(
        b.or(b.cmpi(I::Eq, ay, k(0)), b.cmpi(I::Uge, ax, exp_mask)),
        b.cmpi(I::Ugt, ay, exp_mask),
    );
    let small = b.cmpi(I::Ult, ax, ay);
    let one = k(1);
    let fields = |a: V| {
        let e = b.shr(a, k(i64::from(mant)));
        let normal = b.cmpi(I::Ne, e, k(0));
        let m = b.sel(normal, b.or(b.and(a, k(frac)), k(frac + 1)), a);
        (b.sel(normal, e, one), m)
    };
    let (ex, mx) = fields(ax);
    let (ey, my) = fields(ay);
    // A zero divisor is answered by `nan`; 1 keeps the division defined.
    let my = b.sel(b.cmpi(I::Eq, my, k(0)), one, my);
    // Exponent difference, 0 where the answer is selected below anyway.
    let d = b.sel(b.or(nan, small), k(0), b.isub(ex, ey));
    let chunk = k(step);
    // d/step + 1 steps (the last may shift by 0): never zero, because
    // MLIR 22's scf.for-to-SPIR-V conversion leaves a loop's results
    // undefined when its body never runs (they are only stored in it).
    let steps = b.iadd(b.bin("arith.divui", d, chunk), one);
    // SAFETY: the context is alive.
    let idx = unsafe { mlirIndexTypeGet(b.ctx) };
    let n = b.op("arith.index_cast", &[steps], idx, &[]);
    let r0 = b.bin("arith.remui", mx, my);
    let r = b.for_loop(n, &[r0, d], |l, v| {
        let (r, d) = (v[0], v[1]);
        let s = l.sel(l.cmpi(I::Ult, d, chunk), d, chunk);
        vec![l.bin("arith.remui", l.shl(r, s), my), l.isub(d, s)]
    })[0];
    // r·2^(ey - bias - mant): normalize so bit `mant` is set, or make it
    // subnormal.
    let sh = b.isub(b.un("math.ctlz", r), chunk);
    let e = b.isub(ey, sh);
    let normal_bits = b.or(b.shl(e, k(i64::from(mant))), b.and(b.shl(r, sh), k(frac)));
    let sub_bits = b.shl(r, b.isub(ey, one));
    let bits = b.sel(b.cmpi(I::Sgt, e, k(0)), normal_bits, sub_bits);
    let bits = b.sel(b.cmpi(I::Eq, r, k(0)), k(0), bits);
    let rem = cast(b.or(bits, sign), fty);
    let rem = b.sel(small, x, rem);
    // SAFETY: the context is alive.
    let nan_value = unsafe { mlirFloatAttrDoubleGet(b.ctx, fty, f64::NAN) };
    b.sel(
        nan,
        b.op("arith.constant", &[], fty, &[("value", nan_value)]),
        rem,
    )
}

/// `a rem b` with C's sign (the dividend's) on any integer width, also for
/// the minimum value: `|a| umod |b|` negated when `a < 0`.
fn remsi(b: &B, x: V, y: V) -> V {
    let t = b.ty(x);
    let zero = b.int(t, 0);
    let abs = |v: V| {
        let neg = b.cmpi(I::Slt, v, zero);
        b.sel(neg, b.isub(zero, v), v)
    };
    let r = b.bin("arith.remui", abs(x), abs(y));
    let neg = b.cmpi(I::Slt, x, zero);
    b.sel(neg, b.isub(zero, r), r)
}

/// The number of set bits of an integer of `bits` bits: pair, nibble and
/// byte sums, then one multiply adds the bytes into the top one.
fn popcount(b: &B, x: V, bits: u32) -> V {
    let t = b.ty(x);
    let k = |v: u64| b.int(t, v as i64);
    let c = |n: i64| b.int(t, n);
    let x = b.isub(x, b.and(b.shr(x, c(1)), k(0x5555_5555_5555_5555)));
    let m2 = k(0x3333_3333_3333_3333);
    let x = b.iadd(b.and(x, m2), b.and(b.shr(x, c(2)), m2));
    let x = b.and(b.iadd(x, b.shr(x, c(4))), k(0x0f0f_0f0f_0f0f_0f0f));
    if bits <= 8 {
        return x;
    }
    let sum = b.bin("arith.muli", x, k(0x0101_0101_0101_0101));
    b.shr(sum, c(i64::from(bits) - 8))
}

/// `math.ipowi`: `base^e` wrapping, by square and multiply over the bits of
/// a non-negative `e` (unrolled: one multiply and one squaring per bit);
/// a negative `e` gives 0 unless `base` is ±1 (MLIR's definition, and Nx's).
fn ipowi(b: &B, base: V, e: V, bits: u32) -> V {
    let t = b.ty(base);
    let (zero, one) = (b.int(t, 0), b.int(t, 1));
    let mut acc = one;
    let mut square = base;
    for i in 0..bits - 1 {
        let bit = b.cmpi(I::Ne, b.and(b.shr(e, b.int(t, i64::from(i))), one), zero);
        acc = b.sel(bit, b.bin("arith.muli", acc, square), acc);
        if i + 2 < bits {
            square = b.bin("arith.muli", square, square);
        }
    }
    let m1 = b.int(t, -1);
    let odd = b.cmpi(I::Ne, b.and(e, one), zero);
    let unit = b.sel(b.cmpi(I::Eq, base, m1), b.sel(odd, m1, one), zero);
    let negative = b.sel(b.cmpi(I::Eq, base, one), one, unit);
    b.sel(b.cmpi(I::Slt, e, zero), negative, acc)
}
