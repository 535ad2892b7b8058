//! The text emitter: SSA naming, MLIR spellings of types and constants, and a
//! helper that writes one `linalg.generic`.
//!
//! Everything the lowering prints goes through here so that naming is
//! deterministic (one counter per module), every op carries the location of
//! the node being lowered, and number formatting (which MLIR's parser is picky
//! about) lives in one place.

use std::fmt::Write as _;

use tensorc_ir::graph::Literal;
use tensorc_ir::span::{SourceFile, Span};
use tensorc_ir::tensor::{f32_to_bf16_bits, f64_to_f16_bits};
use tensorc_ir::types::{DType, TensorType};

/// MLIR element type. Integers are signless: the signedness lives in the ops.
pub(crate) fn elem(d: DType) -> &'static str {
    match d {
        DType::S8 | DType::U8 => "i8",
        DType::S16 | DType::U16 => "i16",
        DType::S32 | DType::U32 => "i32",
        DType::S64 | DType::U64 => "i64",
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        DType::F32 => "f32",
        DType::F64 => "f64",
    }
}

fn shaped(kind: &str, t: &TensorType) -> String {
    let mut s = format!("{kind}<");
    for d in &t.shape {
        let _ = write!(s, "{d}x");
    }
    s.push_str(elem(t.dtype));
    s.push('>');
    s
}

/// `tensor<2x3xf32>`; rank 0 is `tensor<f32>`.
pub(crate) fn tensor_ty(t: &TensorType) -> String {
    shaped("tensor", t)
}

pub(crate) fn memref_ty(t: &TensorType) -> String {
    shaped("memref", t)
}

/// An integer value as an MLIR attribute of a signless type: wrapped into the
/// signed range of the width, so `u64` values above `i64::MAX` print negative.
pub(crate) fn int_attr(d: DType, v: i128) -> String {
    let bits = d.bits();
    let modulus = 1i128 << bits;
    let mut m = v.rem_euclid(modulus);
    if m >= modulus / 2 {
        m -= modulus;
    }
    m.to_string()
}

/// A finite decimal MLIR accepts as a float literal (it needs a `.`).
fn decimal(s: String) -> String {
    if s.contains('.') {
        return s;
    }
    match s.find('e') {
        Some(i) => format!("{}.0{}", &s[..i], &s[i..]),
        None => format!("{s}.0"),
    }
}

/// A float value of dtype `d` as an MLIR attribute. Finite f32/f64 values print
/// as shortest round-trip decimals of the target precision; non-finite values
/// and the 16-bit types print as exact bit patterns.
pub(crate) fn float_attr(d: DType, v: f64) -> String {
    match d {
        DType::F64 if v.is_finite() => decimal(format!("{v:?}")),
        DType::F64 => format!("0x{:016X}", v.to_bits()),
        DType::F16 => format!("0x{:04X}", f64_to_f16_bits(v)),
        DType::BF16 => format!("0x{:04X}", f32_to_bf16_bits(v as f32)),
        _ => {
            let f = v as f32;
            if f.is_finite() { decimal(format!("{f:?}")) } else { format!("0x{:08X}", f.to_bits()) }
        }
    }
}

/// A literal converted to dtype `d` (the checker already checked it fits).
pub(crate) fn literal_attr(d: DType, lit: Literal) -> String {
    match (lit, d.is_float()) {
        (Literal::Int(i), true) => float_attr(d, i as f64),
        (Literal::Float(f), true) => float_attr(d, f),
        (Literal::Int(i), false) => int_attr(d, i),
        // A float literal for an integer type only arises from an integral value.
        (Literal::Float(f), false) => int_attr(d, f as i128),
    }
}

/// An operand of a `linalg.generic`.
pub(crate) struct GenericOperand {
    /// SSA value (a tensor).
    pub value: String,
    pub ty: TensorType,
    /// The results of its indexing map, e.g. `d0, 0` (without parentheses).
    pub map: String,
}

/// `d0, d1, …` for the identity map over `rank` loops.
pub(crate) fn identity_map(rank: usize) -> String {
    (0..rank).map(|i| format!("d{i}")).collect::<Vec<_>>().join(", ")
}

/// The location name of ops whose float arithmetic must stay exact as
/// written (see [`Emitter::exact`]; the same string as
/// `tensorc_passes::pipeline::EXACT_LOC`, which the Vulkan pass reads,
/// checked by a test in `fastmath.rs`).
pub const EXACT_LOC: &str = "tensorc.exact";

pub(crate) struct Emitter<'a> {
    file: &'a SourceFile,
    pub out: String,
    next: usize,
    indent: usize,
    /// ` loc(...)` of the node being lowered, appended to every op.
    loc: String,
}

impl<'a> Emitter<'a> {
    pub fn new(file: &'a SourceFile) -> Self {
        Emitter { file, out: String::new(), next: 0, indent: 2, loc: String::new() }
    }

    /// Make `span` the location of the ops emitted from now on.
    pub fn set_loc(&mut self, span: Span) {
        let (line, col) = self.file.line_col(span.start);
        let name: String = self
            .file
            .name
            .chars()
            .flat_map(|c| match c {
                '"' => vec!['\\', '"'],
                '\\' => vec!['\\', '\\'],
                '\n' => vec!['\\', 'n'],
                c => vec![c],
            })
            .collect();
        self.loc = format!(" loc(\"{name}\":{line}:{col})");
    }

    /// Runs `steps` with its ops' location wrapped in the name
    /// [`EXACT_LOC`]: the math expansions' compensated steps (`x − ((1 + x)
    /// − 1)`, Cody–Waite reductions) need IEEE arithmetic as written, and
    /// on Vulkan `tensorc-vulkan-exact-float` decorates the SPIR-V
    /// arithmetic of such ops `NoContraction` (Mesa's NIR otherwise
    /// simplified `log1p`'s correction away: `log1p(1e-5)` was 1.4·10^-4
    /// off). The CPU pipeline ignores the name.
    pub fn exact(&mut self, steps: impl FnOnce(&mut Self) -> String) -> String {
        let inner = self.loc.trim_start().strip_prefix("loc(").and_then(|l| l.strip_suffix(')')).map(str::to_string);
        let wrapped = match inner {
            Some(inner) => format!(" loc(\"{EXACT_LOC}\"({inner}))"),
            None => format!(" loc(\"{EXACT_LOC}\")"),
        };
        let saved = std::mem::replace(&mut self.loc, wrapped);
        let result = steps(self);
        self.loc = saved;
        result
    }

    /// Change the indentation of following lines by `delta` spaces.
    pub fn indent(&mut self, delta: isize) {
        self.indent = self.indent.saturating_add_signed(delta);
    }

    pub fn fresh(&mut self) -> String {
        let n = self.next;
        self.next += 1;
        format!("%{n}")
    }

    /// A raw line at the current indentation (no location appended).
    pub fn line(&mut self, s: &str) {
        for _ in 0..self.indent {
            self.out.push(' ');
        }
        self.out.push_str(s);
        self.out.push('\n');
    }

    /// A result-less op with the current location.
    pub fn stmt(&mut self, s: &str) {
        let l = format!("{s}{}", self.loc);
        self.line(&l);
    }

    /// `%n = <rhs> loc(...)`; returns `%n`.
    pub fn op(&mut self, rhs: &str) -> String {
        let v = self.fresh();
        let l = format!("{v} = {rhs}{}", self.loc);
        self.line(&l);
        v
    }

    // ----- scalar helpers used inside generic bodies -----

    pub fn int_const(&mut self, d: DType, v: i128) -> String {
        self.op(&format!("arith.constant {} : {}", int_attr(d, v), elem(d)))
    }

    pub fn float_const(&mut self, d: DType, v: f64) -> String {
        self.op(&format!("arith.constant {} : {}", float_attr(d, v), elem(d)))
    }

    /// `v` of dtype `d`, integer or float.
    pub fn num_const(&mut self, d: DType, v: f64) -> String {
        if d.is_float() { self.float_const(d, v) } else { self.int_const(d, v as i128) }
    }

    pub fn bool_const(&mut self, b: bool) -> String {
        self.op(&format!("arith.constant {b}"))
    }

    pub fn bin(&mut self, op: &str, a: &str, b: &str, ty: &str) -> String {
        self.op(&format!("{op} {a}, {b} : {ty}"))
    }

    pub fn un(&mut self, op: &str, a: &str, ty: &str) -> String {
        self.op(&format!("{op} {a} : {ty}"))
    }

    pub fn cmpf(&mut self, pred: &str, a: &str, b: &str, d: DType) -> String {
        if d == DType::BF16 {
            // Compared in f32, which holds every bf16 exactly (same result).
            // A vectorized bf16 compare makes LLVM 22 abort the process on
            // AVX-512 ("Cannot select X86ISD::CMPP"; regression case
            // tests/cases/regressions/abort_bf16_compare_u64.nxir), and
            // LLVM folds `fcmp (fpext a), (fpext b)` back into that bf16
            // compare, so the widening is spelled in integer ops it keeps.
            let a = self.bf16_to_f32_bits(a);
            let b = self.bf16_to_f32_bits(b);
            return self.op(&format!("arith.cmpf {pred}, {a}, {b} : f32"));
        }
        self.op(&format!("arith.cmpf {pred}, {a}, {b} : {}", elem(d)))
    }

    /// A bf16 scalar as the f32 with the same value: its 16 bits become the
    /// high half of the f32's bits (bf16 is f32 with the low half cut off).
    pub(crate) fn bf16_to_f32_bits(&mut self, v: &str) -> String {
        let bits = self.cast("arith.bitcast", v, "bf16", "i16");
        let wide = self.cast("arith.extui", &bits, "i16", "i32");
        let sixteen = self.int_const(DType::S32, 16);
        let high = self.bin("arith.shli", &wide, &sixteen, "i32");
        self.cast("arith.bitcast", &high, "i32", "f32")
    }

    pub fn cmpi(&mut self, pred: &str, a: &str, b: &str, d: DType) -> String {
        self.op(&format!("arith.cmpi {pred}, {a}, {b} : {}", elem(d)))
    }

    pub fn select(&mut self, c: &str, a: &str, b: &str, ty: &str) -> String {
        self.op(&format!("arith.select {c}, {a}, {b} : {ty}"))
    }

    pub fn cast(&mut self, op: &str, v: &str, from: &str, to: &str) -> String {
        self.op(&format!("{op} {v} : {from} to {to}"))
    }

    // ----- tensor helpers -----

    pub fn empty(&mut self, t: &TensorType) -> String {
        self.op(&format!("tensor.empty() : {}", tensor_ty(t)))
    }

    /// `v` (of type `t`) copied into a fresh tensor (`linalg.copy`).
    pub fn copy_to_fresh(&mut self, v: &str, t: &TensorType) -> String {
        let ty = tensor_ty(t);
        let fresh = self.empty(t);
        self.op(&format!("linalg.copy ins({v} : {ty}) outs({fresh} : {ty}) -> {ty}"))
    }

    /// `linalg.fill` of a fresh tensor with the scalar `v`.
    pub fn fill(&mut self, v: &str, t: &TensorType) -> String {
        let e = self.empty(t);
        self.op(&format!(
            "linalg.fill ins({v} : {}) outs({e} : {}) -> {}",
            elem(t.dtype),
            tensor_ty(t),
            tensor_ty(t)
        ))
    }

    /// One `linalg.generic` over `nloops` loops. `reduction[i]` marks loop i as
    /// a reduction. Outputs are `(init value, type, map)`. `body` receives the
    /// block arguments (inputs then outputs) and returns the yielded values.
    /// Returns one SSA value per output.
    pub fn generic(
        &mut self,
        nloops: usize,
        reduction: &[bool],
        ins: &[GenericOperand],
        outs: &[GenericOperand],
        body: impl FnOnce(&mut Self, &[String]) -> Vec<String>,
    ) -> Vec<String> {
        self.generic_tagged(nloops, reduction, ins, outs, None, body)
    }

    /// `generic` with a unit attribute `tag` on the op (a hint for the
    /// passes, e.g. `ARG_KEY`).
    pub fn generic_tagged(
        &mut self,
        nloops: usize,
        reduction: &[bool],
        ins: &[GenericOperand],
        outs: &[GenericOperand],
        tag: Option<&str>,
        body: impl FnOnce(&mut Self, &[String]) -> Vec<String>,
    ) -> Vec<String> {
        let dims = identity_map(nloops);
        let maps: Vec<String> = ins
            .iter()
            .chain(outs)
            .map(|o| format!("affine_map<({dims}) -> ({})>", o.map))
            .collect();
        let iters: Vec<&str> =
            (0..nloops).map(|i| if reduction.get(i).copied().unwrap_or(false) { "\"reduction\"" } else { "\"parallel\"" }).collect();
        let res = self.fresh();
        let mut head = String::new();
        if outs.len() == 1 {
            let _ = write!(head, "{res} = ");
        } else {
            let _ = write!(head, "{res}:{} = ", outs.len());
        }
        let _ = write!(
            head,
            "linalg.generic {{indexing_maps = [{}], iterator_types = [{}]{}}}",
            maps.join(", "),
            iters.join(", "),
            tag.map(|t| format!(", {t}")).unwrap_or_default()
        );
        let list = |ops: &[GenericOperand]| {
            let vals: Vec<&str> = ops.iter().map(|o| o.value.as_str()).collect();
            let tys: Vec<String> = ops.iter().map(|o| tensor_ty(&o.ty)).collect();
            format!("{} : {}", vals.join(", "), tys.join(", "))
        };
        if !ins.is_empty() {
            let _ = write!(head, " ins({})", list(ins));
        }
        let _ = write!(head, " outs({}) {{", list(outs));
        self.line(&head);
        let args: Vec<String> = ins.iter().chain(outs).map(|_| self.fresh()).collect();
        let decl: Vec<String> = ins
            .iter()
            .chain(outs)
            .zip(&args)
            .map(|(o, a)| format!("{a}: {}", elem(o.ty.dtype)))
            .collect();
        self.line(&format!("^bb0({}):", decl.join(", ")));
        self.indent += 2;
        let ys = body(self, &args);
        let ytys: Vec<&str> = outs.iter().map(|o| elem(o.ty.dtype)).collect();
        let y = format!("linalg.yield {} : {}", ys.join(", "), ytys.join(", "));
        self.stmt(&y);
        self.indent -= 2;
        let rtys: Vec<String> = outs.iter().map(|o| tensor_ty(&o.ty)).collect();
        let tail = if outs.len() == 1 { format!("}} -> {}", rtys[0]) } else { format!("}} -> ({})", rtys.join(", ")) };
        self.stmt(&tail);
        if outs.len() == 1 { vec![res] } else { (0..outs.len()).map(|i| format!("{res}#{i}")).collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_wrap_into_the_signless_range() {
        assert_eq!(int_attr(DType::U8, 255), "-1");
        assert_eq!(int_attr(DType::U64, u64::MAX as i128), "-1");
        assert_eq!(int_attr(DType::U64, 1i128 << 63), "-9223372036854775808");
        assert_eq!(int_attr(DType::S32, -5), "-5");
        assert_eq!(int_attr(DType::U16, 300), "300");
    }

    #[test]
    fn floats_always_parse_as_mlir_floats() {
        assert_eq!(float_attr(DType::F32, 1.0), "1.0");
        assert_eq!(float_attr(DType::F32, 0.1), "0.1");
        assert_eq!(float_attr(DType::F64, 1e-5), "1.0e-5");
        assert_eq!(float_attr(DType::F32, f64::INFINITY), "0x7F800000");
        assert_eq!(float_attr(DType::F32, f64::NEG_INFINITY), "0xFF800000");
        assert_eq!(float_attr(DType::F64, f64::NEG_INFINITY), "0xFFF0000000000000");
        assert_eq!(float_attr(DType::F16, 1.0), "0x3C00");
        assert_eq!(float_attr(DType::BF16, 1.0), "0x3F80");
    }

    #[test]
    fn types() {
        assert_eq!(tensor_ty(&TensorType::new(DType::U8, vec![2, 0])), "tensor<2x0xi8>");
        assert_eq!(tensor_ty(&TensorType::scalar(DType::F64)), "tensor<f64>");
        assert_eq!(memref_ty(&TensorType::new(DType::S64, vec![3])), "memref<3xi64>");
    }
}
