//! The generator proper: builds a `.nxir` program statement by statement,
//! inferring every type itself (with the promotion and broadcasting helpers
//! of `tensorc_ir::types`) and annotating it, so the checker re-derives and
//! confirms each one.
//!
//! A program is a few helper `def`s followed by `main`; later defs `call`
//! earlier ones. Parameters are created on demand: when an op needs an
//! operand of a particular shape (the other side of a `dot`, a tensor that
//! broadcasts against another, a piece to concatenate), the generator either
//! finds a live value of that shape or adds a parameter for it.
//!
//! The foundation families live here; the submodules add `conv` and
//! `triangular_solve` (`linalg`), the tier-2 indexing and `top_k`
//! (`indexing`), `window_reduce` and the scatter windows with the window
//! geometry they share (`windows`), and `while`/`cond` (`control`).

mod control;
mod indexing;
mod linalg;
mod windows;

use crate::model::{self, MATH, is_finite_range, max_abs, mul_range, normalize, unit};
use crate::rng::Rng;
use tensorc_ir::types::{broadcast_shapes, narrowest_int};
use tensorc_ir::{DType, TensorType};

/// What and how much to generate.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Most helper defs before `main` (each may be called by later defs).
    pub max_helpers: usize,
    /// Most statements per def (the count is drawn from 2..=this).
    pub max_statements: usize,
    /// Most elements of any tensor.
    pub max_elements: usize,
    /// Highest rank of generated shapes.
    pub max_rank: usize,
    /// Dtypes of parameters and conversion targets.
    pub dtypes: Vec<DType>,
    /// Op names never generated. The default run leaves out the ops listed in
    /// `KNOWN_BUGS` so that it stays green while a reported bug is open.
    pub excluded_ops: Vec<String>,
    /// Float literals and ops whose result is a float (math functions,
    /// `divide`, `atan2`) are generated. With integer `dtypes` and this off,
    /// every value is an integer, so any input is fair (no error model needed).
    pub floats: bool,
    /// Parameters may hold any value of their dtype — for floats NaN, ±inf,
    /// -0.0, subnormals and extremes too — rather than the small values of
    /// `tensorc_ir::random`. The generator then only builds what stays
    /// comparable on such inputs (sums and math functions of clipped values,
    /// comparisons of exact ones); the differential test feeds these
    /// programs its edge-value inputs.
    pub special_inputs: bool,
}

/// What the default configuration leaves out because of an open, reported
/// bug: `(name, the bug and its minimal program)`. A name is an op name or an
/// op variant `op:variant` that the generator checks where it makes that
/// choice. `GenConfig::everything()` generates them all again.
pub const KNOWN_BUGS: &[(&str, &str)] = &[
    // Fixed bugs (the identity sum/product and contraction-free dot fused
    // into consumers, atan2(0, 0) folded to NaN, the argmin/argmax NaN-tie
    // disagreement, f64 -> bf16 as an unresolvable libcall, computed while
    // states / cond branch values / scatter targets overwritten in place —
    // variants `while:computed_state`, `cond:computed_value`,
    // `indexed:returned_target`, still checked by the generator — the
    // process abort on vectorized bf16 compares (`compare:bf16`, fixed in the
    // frontend's `cmpf`) and the one on sorting an all-padding `pad`
    // (`pad:all_padding`, fixed in the reduction schedule), gathers from
    // strided slices that failed to compile (`take:strided_source`), bf16
    // results flushed to zero when subnormal on AVX512-BF16 hosts
    // (`bf16:subnormals`, gen_special_bf16_subnormals.nxir)) are guarded by
    // the regression tests in tests/integration (known.rs, known_fixes.rs,
    // gen_*.nxir). None is open now; an open one is listed here as
    // `(name, the bug and its minimal program)`.
];

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            max_helpers: 2,
            max_statements: 10,
            max_elements: 64,
            max_rank: 4,
            dtypes: DType::ALL.to_vec(),
            excluded_ops: KNOWN_BUGS.iter().map(|(op, _)| op.to_string()).collect(),
            floats: true,
            special_inputs: false,
        }
    }
}

impl GenConfig {
    /// Every op allowed, known bugs included (for `cargo xtask fuzz`-style runs).
    pub fn everything() -> Self {
        GenConfig {
            excluded_ops: Vec::new(),
            ..GenConfig::default()
        }
    }
}

/// A live tensor value: its name, type, the interval holding its elements
/// and the interp-vs-cpu error bound (see `model`).
#[derive(Clone, Debug)]
struct Val {
    name: String,
    ty: TensorType,
    lo: f64,
    hi: f64,
    err: f64,
    /// May hold NaN (bit patterns, `fmod` by zero, `inf - inf`, ...).
    nan: bool,
}

impl Val {
    /// The model of a sum of `n` of this value's elements (a reduction, a
    /// cumulative or window sum): the interval covers every partial sum, the
    /// error grows with the terms and with the rounding of each addition.
    /// `None` when the range is unbounded.
    fn sum_of(&self, n: f64) -> Option<(f64, f64, f64)> {
        if !is_finite_range(self.lo, self.hi) {
            return None;
        }
        let m = max_abs(self.lo, self.hi);
        let u = unit(self.ty.dtype);
        Some((n * self.lo.min(0.0), n * self.hi.max(0.0), n * self.err + n * n * u * m))
    }

    /// The model of a product of `n` of this value's elements, which the
    /// generator keeps in [-1, 1] before multiplying.
    fn product_of(&self, n: f64) -> (f64, f64, f64) {
        (-1.0, 1.0, n * self.err + 2.0 * n * unit(self.ty.dtype))
    }

    fn exact(&self) -> bool {
        self.err == 0.0
    }
    fn range(&self) -> (f64, f64) {
        (self.lo, self.hi)
    }
}

/// A number literal operand (weak, spec §2.1).
#[derive(Clone, Copy, Debug)]
enum Lit {
    Int(i64),
    Float(f64),
}

impl Lit {
    fn text(self) -> String {
        match self {
            Lit::Int(v) => v.to_string(),
            Lit::Float(v) => format!("{v:?}"),
        }
    }
    fn value(self) -> f64 {
        match self {
            Lit::Int(v) => v as f64,
            Lit::Float(v) => v,
        }
    }
    /// The literal's dtype next to a tensor of dtype `t` (spec §2.1).
    fn dtype_next_to(self, t: DType) -> DType {
        match self {
            _ if t.is_float() => t,
            Lit::Float(_) => DType::F32,
            Lit::Int(v) => narrowest_int(v as i128, t.is_unsigned_int()).unwrap_or(DType::S64),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Opnd {
    V(usize),
    L(Lit),
}

/// A helper def as its callers see it.
struct Helper {
    name: String,
    params: Vec<TensorType>,
    results: Vec<Val>,
    tuple: bool,
}

const FLOAT_LITS: &[f64] = &[
    0.5, -0.5, 1.5, 2.0, -2.0, 0.25, 3.0, -1.0, 0.0, 1.0, 10.0, -4.5, 100.0, 300.5,
];
const INT_LITS: &[i64] = &[
    0, 1, 2, 3, -1, -2, 5, 7, -8, 9, 100, 200, 300, -130, 1000, 70000,
];

#[derive(Clone, Copy, Debug)]
enum Family {
    Unary,
    Math,
    Binary,
    Compare,
    Logical,
    Select,
    Clip,
    AsType,
    Bitcast,
    Create,
    Reshape,
    Transpose,
    Broadcast,
    Slice,
    Pad,
    Reverse,
    Concatenate,
    Stack,
    Squeeze,
    Dot,
    Reduce,
    ArgReduce,
    Call,
    Chain,
    Scale,
    Cumulative,
    Sort,
    Take,
    PutSlice,
    Window,
    ReduceFn,
    Gather,
    TakeAlongAxis,
    Indexed,
    DynamicSlice,
    DynamicPutSlice,
    TopK,
    WindowReduce,
    WindowScatter,
    Conv,
    TriangularSolve,
    While,
    Cond,
}

const FAMILIES: &[(Family, u32)] = &[
    (Family::Unary, 6),
    (Family::Math, 8),
    (Family::Binary, 14),
    (Family::Compare, 4),
    (Family::Logical, 2),
    (Family::Select, 3),
    (Family::Clip, 2),
    (Family::AsType, 4),
    (Family::Bitcast, 1),
    (Family::Create, 1),
    (Family::Reshape, 3),
    (Family::Transpose, 3),
    (Family::Broadcast, 3),
    (Family::Slice, 3),
    (Family::Pad, 3),
    (Family::Reverse, 2),
    (Family::Concatenate, 3),
    (Family::Stack, 2),
    (Family::Squeeze, 2),
    (Family::Dot, 4),
    (Family::Reduce, 5),
    (Family::ArgReduce, 2),
    (Family::Call, 4),
    (Family::Chain, 4),
    (Family::Scale, 3),
    (Family::Cumulative, 3),
    (Family::Sort, 3),
    (Family::Take, 3),
    (Family::PutSlice, 2),
    (Family::Window, 3),
    (Family::ReduceFn, 3),
    (Family::Gather, 2),
    (Family::TakeAlongAxis, 2),
    (Family::Indexed, 3),
    (Family::DynamicSlice, 2),
    (Family::DynamicPutSlice, 2),
    (Family::TopK, 2),
    (Family::WindowReduce, 2),
    (Family::WindowScatter, 2),
    (Family::Conv, 5),
    (Family::TriangularSolve, 2),
    (Family::While, 3),
    (Family::Cond, 3),
];

pub(crate) struct Gen<'c> {
    rng: Rng,
    cfg: &'c GenConfig,
    helpers: Vec<Helper>,
    // The def being generated.
    params: Vec<usize>,
    pool: Vec<Val>,
    lines: Vec<String>,
    counter: usize,
    /// Inside a chain: the next op takes the latest value as its first operand.
    force_last: bool,
    /// Values passed into a region (`while` state, `cond` branch values) or
    /// updated in place (scatter targets), with the `KNOWN_BUGS` variant
    /// that returning them from the def is.
    region_inputs: Vec<(usize, &'static str)>,
}

impl<'c> Gen<'c> {
    pub(crate) fn new(seed: u64, cfg: &'c GenConfig) -> Self {
        Gen {
            rng: Rng::new(seed),
            cfg,
            helpers: Vec::new(),
            params: Vec::new(),
            pool: Vec::new(),
            lines: Vec::new(),
            counter: 0,
            force_last: false,
            region_inputs: Vec::new(),
        }
    }

    pub(crate) fn program(mut self) -> String {
        let mut out = String::new();
        let n_helpers = if self.cfg.max_helpers == 0 {
            0
        } else {
            self.rng.below(self.cfg.max_helpers + 1)
        };
        for i in 0..=n_helpers {
            let name = if i == n_helpers {
                "main".to_string()
            } else {
                format!("f{i}")
            };
            let text = self.def(&name);
            out.push_str(&text);
            out.push('\n');
        }
        out
    }

    fn allowed(&self, op: &str) -> bool {
        let float_op = matches!(op, "divide" | "atan2" | "conv" | "triangular_solve")
            || MATH.iter().any(|m| m.name == op);
        (self.cfg.floats || !float_op) && !self.cfg.excluded_ops.iter().any(|e| e == op)
    }

    // ---- values, parameters, statements ----

    /// The range of a parameter: what `tensorc_ir::random` fills it with, or
    /// with `special_inputs` anything the dtype holds (NaN included).
    fn default_range(&self, d: DType) -> (f64, f64) {
        if self.cfg.special_inputs {
            return match d.int_range() {
                Some((min, max)) => (min as f64, max as f64),
                None => (f64::NEG_INFINITY, f64::INFINITY),
            };
        }
        if d.is_float() {
            (-1.0, 1.0)
        } else if d.is_signed_int() {
            (-8.0, 7.0)
        } else {
            (0.0, 15.0)
        }
    }

    fn new_param(&mut self, ty: TensorType) -> usize {
        let (lo, hi) = self.default_range(ty.dtype);
        let name = format!("p{}", self.params.len());
        let nan = self.cfg.special_inputs && ty.dtype.is_float();
        self.pool.push(Val {
            name,
            ty,
            lo,
            hi,
            err: 0.0,
            nan,
        });
        self.params.push(self.pool.len() - 1);
        self.pool.len() - 1
    }

    fn fresh(&mut self) -> String {
        self.counter += 1;
        format!("v{}", self.counter - 1)
    }

    /// Emits `name = rhs  ty` and adds the value to the pool.
    fn push(&mut self, rhs: String, ty: TensorType, lo: f64, hi: f64, err: f64) -> usize {
        let name = self.fresh();
        self.push_named(name, rhs, ty, lo, hi, err)
    }

    /// `push` under a name taken from `fresh` earlier (when the statement's
    /// own text needs its name, as the nested names of `while`/`cond` do).
    fn push_named(
        &mut self,
        name: String,
        rhs: String,
        ty: TensorType,
        lo: f64,
        hi: f64,
        err: f64,
    ) -> usize {
        self.lines.push(format!("  {name} = {rhs}  {ty}"));
        let (lo, hi) = normalize(ty.dtype, lo.min(hi), hi.max(lo));
        let err = if ty.dtype.is_float() { err } else { 0.0 };
        let nan = self.may_be_nan(&rhs, &ty);
        self.pool.push(Val {
            name,
            ty,
            lo,
            hi,
            err,
            nan,
        });
        self.pool.len() - 1
    }

    /// Whether the result of `rhs` may hold NaN: an operand may, or a float
    /// result comes from bits (`bitcast`), from `fmod` (by zero), or from an
    /// operand that may be infinite (`inf - inf`, `0 * inf`).
    fn may_be_nan(&self, rhs: &str, ty: &TensorType) -> bool {
        if !ty.dtype.is_float() {
            return false;
        }
        let mut words = rhs
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty());
        let op = words.next().unwrap_or("");
        let operands: Vec<&Val> = words
            .filter_map(|w| self.pool.iter().find(|v| v.name == w))
            .collect();
        if operands.iter().any(|v| v.nan) {
            return true;
        }
        ty.dtype.is_float()
            && (matches!(op, "bitcast" | "remainder")
                || operands
                    .iter()
                    .any(|v| v.ty.dtype.is_float() && !is_finite_range(v.lo, v.hi)))
    }

    fn dtype(&mut self) -> DType {
        let ds = &self.cfg.dtypes;
        ds[self.rng.below(ds.len())]
    }

    fn float_dtype(&mut self) -> DType {
        let fs: Vec<DType> = self
            .cfg
            .dtypes
            .iter()
            .copied()
            .filter(|d| d.is_float())
            .collect();
        if fs.is_empty() {
            DType::F32
        } else {
            fs[self.rng.below(fs.len())]
        }
    }

    fn int_dtype(&mut self) -> DType {
        let is: Vec<DType> = self.cfg.dtypes.iter().copied().filter(|d| d.is_int()).collect();
        if is.is_empty() {
            DType::S32
        } else {
            is[self.rng.below(is.len())]
        }
    }

    fn dim(&mut self) -> usize {
        match self.rng.below(40) {
            0 => 0,
            1..=9 => 1,
            n => 2 + n % 4,
        }
    }

    fn shape(&mut self) -> Vec<usize> {
        loop {
            let rank = self.rng.below(self.cfg.max_rank + 1);
            let s: Vec<usize> = (0..rank).map(|_| self.dim()).collect();
            if s.iter().product::<usize>() <= self.cfg.max_elements {
                return s;
            }
        }
    }

    fn fits(&self, shape: &[usize]) -> bool {
        shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .is_some_and(|n| n <= self.cfg.max_elements)
    }

    /// A value matching `ok`: the latest one inside a chain, else the latest
    /// half the time (to build chains), else any.
    fn pick(&mut self, ok: impl Fn(&Val) -> bool) -> Option<usize> {
        let cands: Vec<usize> = (0..self.pool.len())
            .filter(|&i| ok(&self.pool[i]))
            .collect();
        let last = *cands.last()?;
        if self.force_last {
            return (last == self.pool.len() - 1).then_some(last);
        }
        if self.rng.chance(0.5) {
            Some(last)
        } else {
            Some(cands[self.rng.below(cands.len())])
        }
    }

    /// `pick`, or a new parameter of a random type that `ok` accepts.
    fn pick_or_param(&mut self, ok: impl Fn(&Val) -> bool + Copy) -> Option<usize> {
        if let Some(v) = self.pick(ok) {
            return Some(v);
        }
        if self.force_last {
            return None;
        }
        for _ in 0..20 {
            let d = self.dtype();
            let s = self.shape();
            let (lo, hi) = self.default_range(d);
            let probe = Val {
                name: String::new(),
                ty: TensorType::new(d, s.clone()),
                lo,
                hi,
                err: 0.0,
                nan: false,
            };
            if ok(&probe) {
                return Some(self.new_param(probe.ty));
            }
        }
        None
    }

    /// Emits a clip (after a conversion to float for integers) so that the
    /// value lies in `[lo, hi]`; returns the value unchanged when it already does.
    fn condition(&mut self, v: usize, lo: f64, hi: f64) -> Option<usize> {
        let val = self.pool[v].clone();
        if val.lo >= lo && val.hi <= hi {
            return Some(v);
        }
        if !self.allowed("clip") {
            return None;
        }
        let mut v = v;
        if val.ty.dtype.is_int() {
            if !self.allowed("as_type") {
                return None;
            }
            let f = self.float_dtype();
            let ty = val.ty.with_dtype(f);
            v = self.push(format!("as_type {}", val.name), ty, val.lo, val.hi, 0.0);
        }
        let val = self.pool[v].clone();
        let (clo, chi) = (val.lo.max(lo).min(hi), val.hi.min(hi).max(lo));
        let rhs = format!(
            "clip {}, {}, {}",
            val.name,
            Lit::Float(lo).text(),
            Lit::Float(hi).text()
        );
        Some(self.push(rhs, val.ty.clone(), clo, chi, val.err))
    }

    /// `v`, clipped into [-8, 8] first when it is a float that may be
    /// infinite (NaN passes a clip and stays in place), for ops whose
    /// rounding error the model can only bound on finite values (sums).
    fn bounded(&mut self, v: usize) -> Option<usize> {
        let val = &self.pool[v];
        if val.ty.dtype.is_int() || is_finite_range(val.lo, val.hi) {
            return Some(v);
        }
        self.condition(v, -8.0, 8.0)
    }

    /// `None` when `x` is a strided `slice` or derives from one through its
    /// ops' first operands (canonicalization turns many ops into views: a
    /// reshape, a scan over a size-1 axis, ...), and indexing into one is a
    /// known bug (`take:strided_source`).
    fn gather_source_ok(&self, x: usize) -> Option<()> {
        if self.allowed("take:strided_source") {
            return Some(());
        }
        let mut name = self.pool[x].name.clone();
        // Each step goes to an earlier statement, so this ends.
        loop {
            let head = format!("  {name} = ");
            let Some(rhs) = self.lines.iter().find_map(|l| l.strip_prefix(&head)) else {
                return Some(());
            };
            let mut words = rhs.split([' ', ',']).filter(|w| !w.is_empty());
            let (op, src) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            if op == "slice" {
                // The third list (starts, lengths, strides), when present.
                let lists: Vec<&str> = rhs.split('[').skip(1).collect();
                let strided = lists.get(2).is_some_and(|st| {
                    st.split(']')
                        .next()
                        .unwrap_or("")
                        .split(',')
                        .any(|n| n.trim() != "1")
                });
                if strided {
                    return None;
                }
            }
            name = src.to_string();
        }
    }

    /// A shape that broadcasts with `s` (some axes 1, maybe fewer or more leading axes).
    fn compatible_shape(&mut self, s: &[usize]) -> Vec<usize> {
        for _ in 0..20 {
            let mut out: Vec<usize> = s
                .iter()
                .map(|&d| {
                    if d == 1 {
                        if self.rng.chance(0.3) {
                            1 + self.rng.below(4)
                        } else {
                            1
                        }
                    } else if self.rng.chance(0.3) {
                        1
                    } else {
                        d
                    }
                })
                .collect();
            if !out.is_empty() && self.rng.chance(0.25) {
                let k = self.rng.below(out.len() + 1);
                out.drain(..k);
            } else if out.len() < self.cfg.max_rank && self.rng.chance(0.15) {
                let d = 1 + self.rng.below(3);
                out.insert(0, d);
            }
            if self.fits(&out) && broadcast_shapes(s, &out).is_some_and(|b| self.fits(&b)) {
                return out;
            }
        }
        s.to_vec()
    }

    fn float_lit(&mut self) -> Lit {
        Lit::Float(FLOAT_LITS[self.rng.below(FLOAT_LITS.len())])
    }

    fn int_lit(&mut self) -> Lit {
        Lit::Int(INT_LITS[self.rng.below(INT_LITS.len())])
    }

    /// A literal to combine with a tensor of dtype `d`: usually of its kind,
    /// sometimes the other kind (to exercise weak promotion). Next to a float
    /// tensor the literal takes its dtype, so it must be exact there (half
    /// types hold few of them; the checker rejects ones that overflow).
    fn lit_for(&mut self, d: DType, int_only: bool) -> Lit {
        for _ in 0..8 {
            let l = if int_only
                || !self.cfg.floats
                || (d.is_int() && self.rng.chance(0.85))
                || (d.is_float() && self.rng.chance(0.2))
            {
                self.int_lit()
            } else {
                self.float_lit()
            };
            if !d.is_float() || model::exact_in(d, l.value()) {
                return l;
            }
        }
        Lit::Int(1)
    }

    /// The second operand of an element-wise op with `x`: a literal, a live
    /// value whose shape broadcasts with x's, or a new parameter.
    fn partner(&mut self, x: usize, int_only: bool, exact: bool, lit_ok: bool) -> Option<Opnd> {
        let xs = self.pool[x].ty.shape.clone();
        let xd = self.pool[x].ty.dtype;
        let r = self.rng.below(10);
        if lit_ok && r < 3 {
            return Some(Opnd::L(self.lit_for(xd, int_only)));
        }
        if r < 7 {
            let max = self.cfg.max_elements;
            let found = self.pick_any(|v| {
                broadcast_shapes(&xs, &v.ty.shape)
                    .is_some_and(|b| b.iter().product::<usize>() <= max)
                    && (!int_only || v.ty.dtype.is_int())
                    && (!exact || v.exact())
            });
            if let Some(v) = found {
                return Some(Opnd::V(v));
            }
        }
        let shape = self.compatible_shape(&xs);
        let d = if self.rng.chance(0.5) {
            xd
        } else if int_only {
            self.int_dtype()
        } else {
            self.dtype()
        };
        let d = if int_only && d.is_float() {
            self.int_dtype()
        } else {
            d
        };
        Some(Opnd::V(self.new_param(TensorType::new(d, shape))))
    }

    /// Like `pick` but never limited to the latest value.
    fn pick_any(&mut self, ok: impl Fn(&Val) -> bool) -> Option<usize> {
        let saved = self.force_last;
        self.force_last = false;
        let r = self.pick(ok);
        self.force_last = saved;
        r
    }

    /// Dtype, name, range and error of an operand next to the tensor dtype `t`.
    fn opnd(&self, o: Opnd, t: DType) -> (DType, String, (f64, f64), f64, Vec<usize>) {
        match o {
            Opnd::V(i) => {
                let v = &self.pool[i];
                (
                    v.ty.dtype,
                    v.name.clone(),
                    v.range(),
                    v.err,
                    v.ty.shape.clone(),
                )
            }
            Opnd::L(l) => (
                l.dtype_next_to(t),
                l.text(),
                (l.value(), l.value()),
                0.0,
                Vec::new(),
            ),
        }
    }

    // ---- defs ----

    fn def(&mut self, name: &str) -> String {
        self.params.clear();
        self.region_inputs.clear();
        self.pool.clear();
        self.lines.clear();
        self.counter = 0;
        self.force_last = false;
        for _ in 0..1 + self.rng.below(2) {
            let d = self.dtype();
            let s = self.shape();
            self.new_param(TensorType::new(d, s));
        }
        let target = 2 + self.rng.below(self.cfg.max_statements.max(2) - 1);
        let mut attempts = 0;
        while self.lines.len() < target && attempts < target * 30 {
            attempts += 1;
            let fam = self.family();
            self.family_step(fam);
        }
        // Results: the latest value, plus a few others.
        let mut results = vec![self.pool.len() - 1];
        // Every value nothing reads is returned too (up to a few): a compiler
        // may drop dead code, and then it would not be tested.
        let read: std::collections::HashSet<&str> = self
            .lines
            .iter()
            .filter_map(|l| l.split_once(" = ").map(|(_, r)| r))
            .flat_map(|r| r.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
            .collect();
        let sinks: Vec<usize> = (0..self.pool.len())
            .rev()
            .filter(|&i| !self.params.contains(&i) && !read.contains(self.pool[i].name.as_str()))
            .collect();
        for s in sinks.into_iter().take(4) {
            if !results.contains(&s) {
                results.push(s);
            }
        }
        for _ in 0..self.rng.below(2) {
            let r = self.rng.below(self.pool.len());
            if !results.contains(&r) {
                results.push(r);
            }
        }
        // Returning a value that also enters a region is a known bug while
        // its variant is excluded (see KNOWN_BUGS).
        let banned: Vec<usize> = self
            .region_inputs
            .iter()
            .filter(|(_, variant)| !self.allowed(variant))
            .map(|&(i, _)| i)
            .collect();
        let last = results[0];
        results.retain(|r| !banned.contains(r));
        if results.is_empty() {
            results.push(last);
        }
        let tuple = results.len() > 1 || self.rng.chance(0.05);
        let params: Vec<String> = self
            .params
            .iter()
            .map(|&p| format!("{}: {}", self.pool[p].name, self.pool[p].ty))
            .collect();
        let names: Vec<String> = results.iter().map(|&r| self.pool[r].name.clone()).collect();
        let tys: Vec<String> = results
            .iter()
            .map(|&r| self.pool[r].ty.to_string())
            .collect();
        let (ret_ty, ret) = if tuple {
            (
                format!("{{{}}}", tys.join(", ")),
                format!("{{{}}}", names.join(", ")),
            )
        } else {
            (tys[0].clone(), names[0].clone())
        };
        let mut out = format!("def {name}({}) -> {ret_ty} {{\n", params.join(", "));
        for l in &self.lines {
            out.push_str(l);
            out.push('\n');
        }
        out.push_str(&format!("  return {ret}\n}}\n"));
        if name != "main" {
            self.helpers.push(Helper {
                name: name.to_string(),
                params: self
                    .params
                    .iter()
                    .map(|&p| self.pool[p].ty.clone())
                    .collect(),
                results: results.iter().map(|&r| self.pool[r].clone()).collect(),
                tuple,
            });
        }
        out
    }

    fn family(&mut self) -> Family {
        let total: u32 = FAMILIES.iter().map(|f| f.1).sum();
        let mut r = self.rng.below(total as usize) as u32;
        for &(f, w) in FAMILIES {
            if r < w {
                return f;
            }
            r -= w;
        }
        Family::Binary
    }

    fn family_step(&mut self, f: Family) {
        let _ = match f {
            Family::Unary => self.unary(),
            Family::Math => self.math(),
            Family::Binary => self.binary(),
            Family::Compare => self.compare(),
            Family::Logical => self.logical(),
            Family::Select => self.select(),
            Family::Clip => self.clip(),
            Family::AsType => self.as_type(),
            Family::Bitcast => self.bitcast(),
            Family::Create => self.create(),
            Family::Reshape => self.reshape(),
            Family::Transpose => self.transpose(),
            Family::Broadcast => self.broadcast(),
            Family::Slice => self.slice(),
            Family::Pad => self.pad(),
            Family::Reverse => self.reverse(),
            Family::Concatenate => self.concatenate(),
            Family::Stack => self.stack(),
            Family::Squeeze => self.squeeze(),
            Family::Dot => self.dot(),
            Family::Reduce => self.reduce(),
            Family::ArgReduce => self.arg_reduce(),
            Family::Call => self.call(),
            Family::Chain => self.chain(),
            Family::Scale => self.scale(),
            Family::Cumulative => self.cumulative(),
            Family::Sort => self.sort(),
            Family::Take => self.take(),
            Family::PutSlice => self.put_slice(),
            Family::Window => self.window(),
            Family::ReduceFn => self.reduce_fn(),
            Family::Gather => self.gather(),
            Family::TakeAlongAxis => self.take_along_axis(),
            Family::Indexed => self.indexed(),
            Family::DynamicSlice => self.dynamic_slice(),
            Family::DynamicPutSlice => self.dynamic_put_slice(),
            Family::TopK => self.top_k(),
            Family::WindowReduce => self.window_reduce(),
            Family::WindowScatter => self.window_scatter(),
            Family::Conv => self.conv(),
            Family::TriangularSolve => self.triangular_solve(),
            Family::While => self.while_loop(),
            Family::Cond => self.cond(),
        };
    }

    /// Two to four element-wise ops in a row on the latest value: the
    /// fusion candidates a compiler should turn into one loop.
    fn chain(&mut self) -> Option<()> {
        let n = 2 + self.rng.below(3);
        for _ in 0..n {
            self.force_last = true;
            let before = self.pool.len();
            for _ in 0..6 {
                let _ = match self.rng.below(4) {
                    0 => self.unary(),
                    1 => self.math(),
                    2 => self.clip(),
                    _ => self.binary(),
                };
                if self.pool.len() > before {
                    break;
                }
            }
            self.force_last = false;
        }
        Some(())
    }

    /// Multiplies an exact value by a large literal of its own dtype, so
    /// integers wrap around their whole range and floats leave every integer
    /// range: the inputs alone (small values) never reach those edges.
    fn scale(&mut self) -> Option<()> {
        if !self.allowed("multiply") {
            return None;
        }
        let x = self.pick_or_param(|v| v.exact() && is_finite_range(v.lo, v.hi))?;
        let v = self.pool[x].clone();
        let d = v.ty.dtype;
        let lit = match (d, d.bits()) {
            // Powers of two (times 3), exact in every float type; f16 tops out at 65504.
            (DType::F16, _) => Lit::Float([1024.0, -2048.0, 3072.0, 512.0][self.rng.below(4)]),
            (_, _) if d.is_float() => Lit::Float(
                [1048576.0, 3221225472.0, -65536.0, 1.8446744073709552e19][self.rng.below(4)],
            ),
            (_, 8) => Lit::Int(37),
            (_, 16) => Lit::Int(9000),
            (_, 32) => Lit::Int(600_000_001),
            _ => Lit::Int(2_000_000_000_000_000_003),
        };
        let (lo, hi) = mul_range(v.range(), (lit.value(), lit.value()));
        self.push(
            format!("multiply {}, {}", v.name, lit.text()),
            v.ty.clone(),
            lo,
            hi,
            0.0,
        );
        Some(())
    }

    // ---- element-wise ----

    fn unary(&mut self) -> Option<()> {
        const OPS: &[&str] = &[
            "negate",
            "abs",
            "sign",
            "floor",
            "ceil",
            "round",
            "bitwise_not",
            "population_count",
            "count_leading_zeros",
            "is_nan",
            "is_infinity",
            "logical_not",
        ];
        let op = OPS[self.rng.below(OPS.len())];
        if !self.allowed(op) {
            return None;
        }
        let int_only = matches!(
            op,
            "bitwise_not" | "population_count" | "count_leading_zeros"
        );
        let continuous = matches!(op, "negate" | "abs");
        let x = self
            .pick_or_param(|v| (!int_only || v.ty.dtype.is_int()) && (continuous || v.exact()))?;
        let v = self.pool[x].clone();
        let d = v.ty.dtype;
        let (lo, hi) = (v.lo, v.hi);
        let (ty, rlo, rhi) = match op {
            "negate" => {
                let r = if d.is_unsigned_int() && !(lo == 0.0 && hi == 0.0) {
                    (0.0, f64::INFINITY)
                } else {
                    (-hi, -lo)
                };
                (v.ty.clone(), r.0, r.1)
            }
            "abs" => {
                let wrap = d
                    .int_range()
                    .is_some_and(|(min, _)| lo <= min as f64 && d.is_signed_int());
                if wrap {
                    (v.ty.clone(), f64::NEG_INFINITY, 0.0)
                } else {
                    (v.ty.clone(), model::min_abs(lo, hi), max_abs(lo, hi))
                }
            }
            "sign" => (v.ty.clone(), -1.0, 1.0),
            "floor" | "ceil" | "round" => (v.ty.clone(), lo.floor() - 1.0, hi.ceil() + 1.0),
            "bitwise_not" => (v.ty.clone(), f64::NEG_INFINITY, f64::INFINITY),
            "population_count" | "count_leading_zeros" => (v.ty.clone(), 0.0, d.bits() as f64),
            _ => (v.ty.with_dtype(DType::U8), 0.0, 1.0),
        };
        let err = if continuous { v.err } else { 0.0 };
        self.push(format!("{op} {}", v.name), ty, rlo, rhi, err);
        Some(())
    }

    fn math(&mut self) -> Option<()> {
        let m = &MATH[self.rng.below(MATH.len())];
        if !self.allowed(m.name) {
            return None;
        }
        let x = self.pick_or_param(|v| v.exact() || is_finite_range(v.lo, v.hi))?;
        let x = self.condition(x, m.domain.0, m.domain.1)?;
        let v = self.pool[x].clone();
        let d = v.ty.dtype.to_float();
        let (lo, hi, lip) = m.image(v.lo, v.hi);
        let err = lip * v.err + model::math_ulps(d) * unit(d) * max_abs(lo, hi);
        if err > model::budget(d, lo, hi) {
            return None;
        }
        self.push(
            format!("{} {}", m.name, v.name),
            v.ty.with_dtype(d),
            lo,
            hi,
            err,
        );
        Some(())
    }

    fn binary(&mut self) -> Option<()> {
        const OPS: &[&str] = &[
            "add",
            "subtract",
            "multiply",
            "divide",
            "pow",
            "remainder",
            "atan2",
            "min",
            "max",
            "quotient",
            "bitwise_and",
            "bitwise_or",
            "bitwise_xor",
            "left_shift",
            "right_shift",
        ];
        let op = OPS[self.rng.below(OPS.len())];
        if !self.allowed(op) {
            return None;
        }
        let int_only = matches!(
            op,
            "quotient"
                | "bitwise_and"
                | "bitwise_or"
                | "bitwise_xor"
                | "left_shift"
                | "right_shift"
        );
        // pow, remainder and atan2 on floats are only well defined between
        // implementations for exact operands (see `model`).
        let need_exact = matches!(op, "pow" | "remainder" | "atan2");
        let x = self
            .pick_or_param(|v| (!int_only || v.ty.dtype.is_int()) && (!need_exact || v.exact()))?;
        let y = self.partner(x, int_only, need_exact, true)?;
        // Literals sometimes go first (operand order matters for most ops).
        let swap = self.rng.chance(0.2);
        let (mut a, mut b) = if swap {
            (y, Opnd::V(x))
        } else {
            (Opnd::V(x), y)
        };
        let tensor_dtype = |g: &Self, o: Opnd| match o {
            Opnd::V(i) => Some(g.pool[i].ty.dtype),
            Opnd::L(_) => None,
        };
        let td = tensor_dtype(self, a)
            .into_iter()
            .chain(tensor_dtype(self, b))
            .reduce(DType::merge)?;
        let (da, ..) = self.opnd(a, td);
        let (db, ..) = self.opnd(b, td);
        let merged = DType::merge(da, db);
        if merged.is_float() {
            // Keep operands of float ops in well-conditioned ranges.
            match op {
                "divide" => b = self.condition_divisor(b, td)?,
                "pow" => {
                    a = self.condition_opnd(a, 0.5, 2.0)?;
                    b = self.condition_opnd(b, -3.0, 3.0)?;
                }
                "atan2" => {
                    a = self.condition_opnd(a, -4.0, 4.0)?;
                    b = self.condition_opnd(b, 0.25, 4.0)?;
                }
                _ => {}
            }
        } else if op == "divide" {
            b = self.condition_divisor(b, td)?;
        } else if op == "atan2" && !self.allowed("atan2:zeros") {
            b = self.condition_opnd(b, 0.25, 4.0)?;
        }
        let td = tensor_dtype(self, a)
            .into_iter()
            .chain(tensor_dtype(self, b))
            .reduce(DType::merge)?;
        let (da, na, ra, ea, sa) = self.opnd(a, td);
        let (db, nb, rb, eb, sb) = self.opnd(b, td);
        let merged = DType::merge(da, db);
        let shape = broadcast_shapes(&sa, &sb)?;
        if !self.fits(&shape) {
            return None;
        }
        let compute = if matches!(op, "divide" | "atan2") {
            merged.to_float()
        } else {
            merged
        };
        let u = unit(compute);
        let inexact_in = ea > 0.0 || eb > 0.0;
        if inexact_in && !(is_finite_range(ra.0, ra.1) && is_finite_range(rb.0, rb.1)) {
            return None;
        }
        let (ma, mb) = (max_abs(ra.0, ra.1), max_abs(rb.0, rb.1));
        let round = |e: f64, m: f64| if e > 0.0 { e + u * m } else { 0.0 };
        let full = (f64::NEG_INFINITY, f64::INFINITY);
        let ((lo, hi), err) = match op {
            "add" => {
                let r = (ra.0 + rb.0, ra.1 + rb.1);
                (r, round(ea + eb, max_abs(r.0, r.1)))
            }
            "subtract" => {
                let r = (ra.0 - rb.1, ra.1 - rb.0);
                (r, round(ea + eb, max_abs(r.0, r.1)))
            }
            "multiply" => {
                let r = mul_range(ra, rb);
                (r, round(ma * eb + mb * ea + ea * eb, max_abs(r.0, r.1)))
            }
            "divide" => {
                // The divisor was conditioned away from zero.
                let m = model::min_abs(rb.0, rb.1);
                if m <= 0.0 {
                    return None;
                }
                let q = ma / m;
                ((-q, q), round(ea / m + ma * eb / (m * m), q))
            }
            "pow" if compute.is_float() => {
                let c = [
                    ra.0.powf(rb.0),
                    ra.0.powf(rb.1),
                    ra.1.powf(rb.0),
                    ra.1.powf(rb.1),
                ];
                let (lo, hi) = (
                    c.iter().copied().fold(f64::INFINITY, f64::min),
                    c.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                );
                ((lo, hi), model::math_ulps(compute) * u * max_abs(lo, hi))
            }
            "atan2" => ((-1.6, 1.6), model::math_ulps(compute) * u * 1.6),
            "remainder" => ((-ma, ma), 0.0),
            "min" => ((ra.0.min(rb.0), ra.1.min(rb.1)), ea.max(eb)),
            "max" => ((ra.0.max(rb.0), ra.1.max(rb.1)), ea.max(eb)),
            _ => (full, 0.0),
        };
        if !err.is_finite() || err > model::budget(compute, lo, hi) {
            return None;
        }
        self.push(
            format!("{op} {na}, {nb}"),
            TensorType::new(compute, shape),
            lo,
            hi,
            err,
        );
        Some(())
    }

    /// Conditions a divisor so its magnitude is at least 0.5.
    fn condition_divisor(&mut self, b: Opnd, _td: DType) -> Option<Opnd> {
        match b {
            Opnd::L(l) if l.value().abs() >= 0.25 => Some(b),
            Opnd::L(_) => Some(Opnd::L(Lit::Float(2.0))),
            Opnd::V(i) => {
                let v = &self.pool[i];
                if model::min_abs(v.lo, v.hi) >= 0.25 {
                    Some(b)
                } else {
                    self.condition(i, 0.5, 4.0).map(Opnd::V)
                }
            }
        }
    }

    fn condition_opnd(&mut self, o: Opnd, lo: f64, hi: f64) -> Option<Opnd> {
        match o {
            Opnd::L(l) if (lo..=hi).contains(&l.value()) => Some(o),
            Opnd::L(_) => Some(Opnd::L(Lit::Float(lo.max(0.5).min(hi)))),
            Opnd::V(i) => self.condition(i, lo, hi).map(Opnd::V),
        }
    }

    fn compare(&mut self) -> Option<()> {
        const OPS: &[&str] = &[
            "equal",
            "not_equal",
            "less",
            "less_equal",
            "greater",
            "greater_equal",
        ];
        self.predicate(OPS)
    }

    fn logical(&mut self) -> Option<()> {
        self.predicate(&["logical_and", "logical_or", "logical_xor"])
    }

    /// A comparison or logical op: discontinuous, so on exact operands only.
    fn predicate(&mut self, ops: &[&str]) -> Option<()> {
        let op = ops[self.rng.below(ops.len())];
        if !self.allowed(op) {
            return None;
        }
        let x = self.pick_or_param(|v| v.exact())?;
        let y = self.partner(x, false, true, true)?;
        let (a, b) = if self.rng.chance(0.2) {
            (y, Opnd::V(x))
        } else {
            (Opnd::V(x), y)
        };
        let td = self.pool[x].ty.dtype;
        let (da, na, _, _, sa) = self.opnd(a, td);
        let (db, nb, _, _, sb) = self.opnd(b, td);
        if DType::merge(da, db) == DType::BF16 && !self.allowed("compare:bf16") {
            return None;
        }
        let shape = broadcast_shapes(&sa, &sb)?;
        if !self.fits(&shape) {
            return None;
        }
        self.push(
            format!("{op} {na}, {nb}"),
            TensorType::new(DType::U8, shape),
            0.0,
            1.0,
            0.0,
        );
        Some(())
    }

    fn select(&mut self) -> Option<()> {
        if !self.allowed("select") {
            return None;
        }
        let p = self.pick_or_param(|v| v.exact())?;
        let t = self.partner(p, false, false, true)?;
        let f = match t {
            // Two literal branches would make both s32/f32 by default; keep one tensor.
            Opnd::L(_) => {
                let f = self.partner(p, false, false, false)?;
                if let Opnd::V(i) = f {
                    let (ps, fs) = (self.pool[p].ty.shape.clone(), self.pool[i].ty.shape.clone());
                    broadcast_shapes(&ps, &fs)?;
                }
                f
            }
            Opnd::V(i) => {
                // The false branch must broadcast with the predicate and the true branch.
                let both = broadcast_shapes(&self.pool[p].ty.shape, &self.pool[i].ty.shape)?;
                if self.rng.chance(0.3) {
                    Opnd::L(self.lit_for(self.pool[i].ty.dtype, false))
                } else {
                    let shape = self.compatible_shape(&both);
                    let d = if self.rng.chance(0.6) {
                        self.pool[i].ty.dtype
                    } else {
                        self.dtype()
                    };
                    Opnd::V(self.new_param(TensorType::new(d, shape)))
                }
            }
        };
        let td = [t, f]
            .iter()
            .filter_map(|o| match o {
                Opnd::V(i) => Some(self.pool[*i].ty.dtype),
                Opnd::L(_) => None,
            })
            .reduce(DType::merge)?;
        let (dt, nt, rt, et, st) = self.opnd(t, td);
        let (df, nf, rf, ef, sf) = self.opnd(f, td);
        let shape = broadcast_shapes(&self.pool[p].ty.shape, &st)
            .and_then(|s| broadcast_shapes(&s, &sf))?;
        if !self.fits(&shape) {
            return None;
        }
        let compute = DType::merge(dt, df);
        let name = self.pool[p].name.clone();
        self.push(
            format!("select {name}, {nt}, {nf}"),
            TensorType::new(compute, shape),
            rt.0.min(rf.0),
            rt.1.max(rf.1),
            et.max(ef),
        );
        Some(())
    }

    fn clip(&mut self) -> Option<()> {
        if !self.allowed("clip") {
            return None;
        }
        let x = self.pick_or_param(|_| true)?;
        let v = self.pool[x].clone();
        let (a, b) = (
            self.lit_for(v.ty.dtype, false),
            self.lit_for(v.ty.dtype, false),
        );
        let (lo, hi) = if a.value() <= b.value() {
            (a, b)
        } else {
            (b, a)
        };
        let compute = DType::merge(
            DType::merge(v.ty.dtype, lo.dtype_next_to(v.ty.dtype)),
            hi.dtype_next_to(v.ty.dtype),
        );
        let (rlo, rhi) = (
            v.lo.max(lo.value()).min(hi.value()),
            v.hi.min(hi.value()).max(lo.value()),
        );
        // Converting an inexact f32 value to f64 keeps its error; the other
        // direction cannot happen (merging only widens).
        self.push(
            format!("clip {}, {}, {}", v.name, lo.text(), hi.text()),
            v.ty.with_dtype(compute),
            rlo,
            rhi,
            v.err,
        );
        Some(())
    }

    fn as_type(&mut self) -> Option<()> {
        if !self.allowed("as_type") {
            return None;
        }
        let x = self.pick_or_param(|_| true)?;
        let v = self.pool[x].clone();
        let mut to = self.dtype();
        if !v.exact() && to.is_int() {
            to = self.float_dtype();
        }
        let (lo, hi, err) = if to.is_int() {
            let (min, max) = to.int_range().map(|(a, b)| (a as f64, b as f64))?;
            if v.ty.dtype.is_float() {
                // Truncate and saturate; NaN becomes 0.
                (
                    v.lo.trunc().clamp(min, max).min(0.0),
                    v.hi.trunc().clamp(min, max).max(0.0),
                    0.0,
                )
            } else {
                (v.lo, v.hi, 0.0)
            }
        } else {
            let err = if v.err > 0.0 {
                v.err + unit(to) * max_abs(v.lo, v.hi)
            } else {
                0.0
            };
            (v.lo, v.hi, err)
        };
        if err > model::budget(to, lo, hi) {
            return None;
        }
        self.push(
            format!("as_type {}", v.name),
            v.ty.with_dtype(to),
            lo,
            hi,
            err,
        );
        Some(())
    }

    /// Bit reinterpretation, from integers only: a float's bits would expose
    /// the sign of zero and NaN payloads, which the spec leaves open.
    fn bitcast(&mut self) -> Option<()> {
        if !self.allowed("bitcast") {
            return None;
        }
        let x = self.pick_or_param(|v| v.ty.dtype.is_int())?;
        let v = self.pool[x].clone();
        let same: Vec<DType> = self
            .cfg
            .dtypes
            .iter()
            .copied()
            .filter(|d| d.bits() == v.ty.dtype.bits() && *d != v.ty.dtype)
            .collect();
        if same.is_empty() {
            return None;
        }
        let to = same[self.rng.below(same.len())];
        self.push(
            format!("bitcast {}", v.name),
            v.ty.with_dtype(to),
            f64::NEG_INFINITY,
            f64::INFINITY,
            0.0,
        );
        Some(())
    }

    /// `constant` and `iota` (and `eye` for rank >= 2): leaves with a required annotation.
    fn create(&mut self) -> Option<()> {
        let d = self.dtype();
        let shape = self.shape();
        let n = shape.iter().product::<usize>();
        let ty = TensorType::new(d, shape.clone());
        match self.rng.below(4) {
            3 if !shape.is_empty() && self.allowed("tensor") => {
                let data: Vec<Lit> = (0..n).map(|_| self.fitting_lit(d)).collect();
                let lo = data.iter().map(|l| l.value()).fold(f64::INFINITY, f64::min);
                let hi = data
                    .iter()
                    .map(|l| l.value())
                    .fold(f64::NEG_INFINITY, f64::max);
                let (lo, hi) = if n == 0 { (0.0, 0.0) } else { (lo, hi) };
                let mut text = String::new();
                nested(&data, &shape, &mut text);
                self.push(format!("tensor {text}"), ty, lo, hi, 0.0);
            }
            0 if self.allowed("constant") => {
                let l = if d.is_int() {
                    let v = INT_LITS[self.rng.below(5)];
                    Lit::Int(if d.is_unsigned_int() { v.abs() } else { v })
                } else {
                    self.fitting_lit(d)
                };
                self.push(
                    format!("constant {}", l.text()),
                    ty,
                    l.value(),
                    l.value(),
                    0.0,
                );
            }
            1 if self.allowed("iota") => {
                let axis = if shape.is_empty() || self.rng.chance(0.4) {
                    None
                } else {
                    Some(self.rng.below(shape.len()))
                };
                let hi = match axis {
                    None => n.saturating_sub(1),
                    Some(a) => shape[a].saturating_sub(1),
                } as f64;
                let a = axis.map_or("nil".to_string(), |a| a.to_string());
                self.push(format!("iota {a}"), ty, 0.0, hi, 0.0);
            }
            _ if shape.len() >= 2 && self.allowed("eye") => {
                self.push("eye".to_string(), ty, 0.0, 1.0, 0.0);
            }
            _ => return None,
        }
        Some(())
    }

    // ---- shape ops (values move, ranges and errors stay) ----

    fn derived(&mut self, rhs: String, v: &Val, shape: Vec<usize>) {
        self.push(rhs, TensorType::new(v.ty.dtype, shape), v.lo, v.hi, v.err);
    }

    fn reshape(&mut self) -> Option<()> {
        if !self.allowed("reshape") {
            return None;
        }
        let x = self.pick_or_param(|_| true)?;
        let v = self.pool[x].clone();
        let n: usize = v.ty.shape.iter().product();
        let rank = self.rng.below(self.cfg.max_rank + 1);
        let shape = if n == 0 {
            let mut s: Vec<usize> = (0..rank.max(1)).map(|_| 1 + self.rng.below(3)).collect();
            let z = self.rng.below(s.len());
            s[z] = 0;
            s
        } else if rank == 0 {
            if n != 1 {
                return None;
            }
            Vec::new()
        } else {
            let mut rem = n;
            let mut s = Vec::new();
            for _ in 0..rank - 1 {
                let divs: Vec<usize> = (1..=rem).filter(|d| rem.is_multiple_of(*d)).collect();
                let d = divs[self.rng.below(divs.len())];
                s.push(d);
                rem /= d;
            }
            s.push(rem);
            self.rng.shuffle(&mut s);
            s
        };
        self.derived(format!("reshape {}", v.name), &v, shape);
        Some(())
    }

    fn transpose(&mut self) -> Option<()> {
        if !self.allowed("transpose") {
            return None;
        }
        let x = self.pick_or_param(|v| v.ty.rank() >= 2)?;
        let v = self.pool[x].clone();
        let mut perm: Vec<usize> = (0..v.ty.rank()).collect();
        self.rng.shuffle(&mut perm);
        let shape = perm.iter().map(|&p| v.ty.shape[p]).collect();
        let reversed = perm.iter().rev().copied().eq(0..v.ty.rank());
        let rhs = if reversed && self.rng.chance(0.5) {
            format!("transpose {}", v.name)
        } else {
            format!(
                "transpose {}, {}",
                v.name,
                self.axes_list(&perm, v.ty.rank())
            )
        };
        self.derived(rhs, &v, shape);
        Some(())
    }

    fn broadcast(&mut self) -> Option<()> {
        if !self.allowed("broadcast") {
            return None;
        }
        let x = self.pick_or_param(|v| v.ty.rank() < 4)?;
        let v = self.pool[x].clone();
        let r = v.ty.rank();
        let out_rank = (r + self.rng.below(3)).clamp(1, self.cfg.max_rank.max(r));
        // Input axis i goes to output axis axes[i] (increasing).
        let mut all: Vec<usize> = (0..out_rank).collect();
        self.rng.shuffle(&mut all);
        let mut axes: Vec<usize> = all[..r].to_vec();
        axes.sort_unstable();
        let mut shape = vec![0; out_rank];
        for (o, s) in shape.iter_mut().enumerate() {
            *s = match axes.iter().position(|&a| a == o) {
                Some(i) if v.ty.shape[i] != 1 => v.ty.shape[i],
                _ => 1 + self.rng.below(3),
            };
        }
        if !self.fits(&shape) {
            return None;
        }
        let dims = shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        self.derived(
            format!("broadcast {}, {{{dims}}}, {}", v.name, list(&axes)),
            &v,
            shape,
        );
        Some(())
    }

    fn slice(&mut self) -> Option<()> {
        if !self.allowed("slice") {
            return None;
        }
        let x = self.pick_or_param(|v| v.ty.rank() >= 1)?;
        let v = self.pool[x].clone();
        let (mut st, mut ln, mut sd, mut shape) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for &d in &v.ty.shape {
            let len = if d == 0 || self.rng.chance(0.1) {
                self.rng.below(d + 1)
            } else {
                1 + self.rng.below(d)
            };
            // Starts past the end are legal and clamp (spec §4.3).
            let start = self.rng.below(d + 3);
            let stride = 1 + self.rng.below(3);
            st.push(start);
            ln.push(len);
            sd.push(stride);
            shape.push(if len == 0 { 0 } else { (len - 1) / stride + 1 });
        }
        let rhs = if sd.iter().all(|&s| s == 1) && self.rng.chance(0.5) {
            format!("slice {}, {}, {}", v.name, list(&st), list(&ln))
        } else {
            format!(
                "slice {}, {}, {}, {}",
                v.name,
                list(&st),
                list(&ln),
                list(&sd)
            )
        };
        self.derived(rhs, &v, shape);
        Some(())
    }

    /// A literal that fits dtype `d` exactly (pad values may not promote).
    fn fitting_lit(&mut self, d: DType) -> Lit {
        if d.is_float() {
            loop {
                let l = self.float_lit();
                if model::exact_in(d, l.value()) {
                    return l;
                }
            }
        }
        let (min, max) = d.int_range().expect("integer dtype");
        loop {
            let v = INT_LITS[self.rng.below(INT_LITS.len())];
            if (min..=max).contains(&(v as i128)) {
                return Lit::Int(v);
            }
        }
    }

    fn pad(&mut self) -> Option<()> {
        if !self.allowed("pad") {
            return None;
        }
        let x = self.pick_or_param(|_| true)?;
        let v = self.pool[x].clone();
        let mut cfg = Vec::new();
        let mut shape = Vec::new();
        let mut all_padding = false;
        for &d in &v.ty.shape {
            let lo = self.rng.below(5) as i64 - 2;
            let hi = self.rng.below(5) as i64 - 2;
            let interior = if self.rng.chance(0.3) {
                self.rng.below(3) as i64
            } else {
                0
            };
            let n = d as i64 + lo + hi + interior * (d as i64 - 1).max(0);
            if n < 0 {
                return None;
            }
            // Source elements land at lo, lo + (interior + 1), …: none of
            // them inside [0, n) means the axis holds only padding.
            let last = lo + (d as i64 - 1) * (interior + 1);
            all_padding |= d == 0 || last < 0 || lo >= n;
            cfg.push(format!("{{{lo}, {hi}, {interior}}}"));
            shape.push(n as usize);
        }
        if !self.fits(&shape) {
            return None;
        }
        let empty = shape.contains(&0);
        if all_padding && !empty && !self.allowed("pad:all_padding") {
            return None;
        }
        let dt = v.ty.dtype;
        let scalar = self.pick_any(|w| w.ty.rank() == 0 && w.ty.dtype == dt && w.name != v.name);
        let (text, pv, pe) = match scalar {
            Some(s) if self.rng.chance(0.3) => {
                let w = &self.pool[s];
                (w.name.clone(), (w.lo, w.hi), w.err)
            }
            _ => {
                let l = self.fitting_lit(dt);
                (l.text(), (l.value(), l.value()), 0.0)
            }
        };
        let rhs = format!("pad {}, {text}, [{}]", v.name, cfg.join(", "));
        self.push(
            rhs,
            TensorType::new(dt, shape),
            v.lo.min(pv.0),
            v.hi.max(pv.1),
            v.err.max(pe),
        );
        Some(())
    }

    fn reverse(&mut self) -> Option<()> {
        if !self.allowed("reverse") {
            return None;
        }
        let x = self.pick_or_param(|v| v.ty.rank() >= 1)?;
        let v = self.pool[x].clone();
        let axes: Vec<usize> = (0..v.ty.rank()).filter(|_| self.rng.chance(0.5)).collect();
        let axes = if axes.is_empty() { vec![0] } else { axes };
        let rhs = if axes.len() == v.ty.rank() && self.rng.chance(0.5) {
            format!("reverse {}", v.name)
        } else {
            format!("reverse {}, {}", v.name, self.axes_list(&axes, v.ty.rank()))
        };
        self.derived(rhs, &v, v.ty.shape.clone());
        Some(())
    }

    /// Joins values of possibly different dtypes: ranges and errors combine.
    fn joined(&mut self, rhs: String, parts: &[usize], shape: Vec<usize>) -> Option<()> {
        let dtype = parts
            .iter()
            .map(|&p| self.pool[p].ty.dtype)
            .reduce(DType::merge)?;
        let lo = parts
            .iter()
            .map(|&p| self.pool[p].lo)
            .fold(f64::INFINITY, f64::min);
        let hi = parts
            .iter()
            .map(|&p| self.pool[p].hi)
            .fold(f64::NEG_INFINITY, f64::max);
        let err = parts.iter().map(|&p| self.pool[p].err).fold(0.0, f64::max);
        if err > model::budget(dtype, lo, hi) {
            return None;
        }
        self.push(rhs, TensorType::new(dtype, shape), lo, hi, err);
        Some(())
    }

    fn concatenate(&mut self) -> Option<()> {
        if !self.allowed("concatenate") {
            return None;
        }
        let x = self.pick_or_param(|v| v.ty.rank() >= 1)?;
        let xs = self.pool[x].ty.shape.clone();
        let axis = self.rng.below(xs.len());
        let mut parts = vec![x];
        let mut total = xs[axis];
        for _ in 0..1 + self.rng.below(2) {
            let like = |v: &Val| {
                v.ty.rank() == xs.len()
                    && (0..xs.len()).all(|i| i == axis || v.ty.shape[i] == xs[i])
            };
            let p = match self.pick_any(like) {
                Some(p) if self.rng.chance(0.6) => p,
                _ => {
                    let mut s = xs.clone();
                    s[axis] = self.rng.below(4);
                    if !self.fits(&s) {
                        return None;
                    }
                    let d = if self.rng.chance(0.5) {
                        self.pool[x].ty.dtype
                    } else {
                        self.dtype()
                    };
                    self.new_param(TensorType::new(d, s))
                }
            };
            total += self.pool[p].ty.shape[axis];
            parts.push(p);
        }
        let mut shape = xs.clone();
        shape[axis] = total;
        if !self.fits(&shape) {
            return None;
        }
        let names: Vec<String> = parts.iter().map(|&p| self.pool[p].name.clone()).collect();
        let axis_text = self.axis(axis, xs.len());
        self.joined(
            format!("concatenate [{}], axis: {axis_text}", names.join(", ")),
            &parts,
            shape,
        )
    }

    fn stack(&mut self) -> Option<()> {
        if !self.allowed("stack") {
            return None;
        }
        let x = self.pick_or_param(|v| v.ty.rank() < 4)?;
        let xs = self.pool[x].ty.shape.clone();
        let mut parts = vec![x];
        for _ in 0..1 + self.rng.below(2) {
            let p = match self.pick_any(|v| v.ty.shape == xs) {
                Some(p) if self.rng.chance(0.6) => p,
                _ => {
                    let d = if self.rng.chance(0.5) {
                        self.pool[x].ty.dtype
                    } else {
                        self.dtype()
                    };
                    self.new_param(TensorType::new(d, xs.clone()))
                }
            };
            parts.push(p);
        }
        let axis = self.rng.below(xs.len() + 1);
        let mut shape = xs.clone();
        shape.insert(axis, parts.len());
        if !self.fits(&shape) {
            return None;
        }
        let names: Vec<String> = parts.iter().map(|&p| self.pool[p].name.clone()).collect();
        self.joined(
            format!("stack [{}], axis: {axis}", names.join(", ")),
            &parts,
            shape,
        )
    }

    fn squeeze(&mut self) -> Option<()> {
        if !self.allowed("squeeze") {
            return None;
        }
        let x = self.pick_or_param(|v| v.ty.shape.contains(&1))?;
        let v = self.pool[x].clone();
        let ones: Vec<usize> = (0..v.ty.rank()).filter(|&i| v.ty.shape[i] == 1).collect();
        let mut axes: Vec<usize> = ones
            .iter()
            .copied()
            .filter(|_| self.rng.chance(0.6))
            .collect();
        if axes.is_empty() {
            axes.push(ones[0]);
        }
        let shape = (0..v.ty.rank())
            .filter(|i| !axes.contains(i))
            .map(|i| v.ty.shape[i])
            .collect();
        let rhs = if axes.len() == ones.len() && self.rng.chance(0.5) {
            format!("squeeze {}", v.name)
        } else {
            format!("squeeze {}, {}", v.name, self.axes_list(&axes, v.ty.rank()))
        };
        self.derived(rhs, &v, shape);
        Some(())
    }

    // ---- contraction and reductions ----

    fn dot(&mut self) -> Option<()> {
        if !self.allowed("dot") {
            return None;
        }
        let x = self.pick_or_param(|v| v.ty.rank() >= 1 && v.ty.rank() <= 3)?;
        let x = self.bounded(x)?;
        let a = self.pool[x].clone();
        let ra = a.ty.rank();
        let nb = if ra >= 2 && self.rng.chance(0.25) {
            1
        } else {
            0
        };
        let free_a: Vec<usize> = (nb..ra).collect();
        let mut ca: Vec<usize> = free_a
            .iter()
            .copied()
            .filter(|_| self.rng.chance(0.5))
            .collect();
        if ca.is_empty() && self.rng.chance(0.8) {
            ca.push(free_a[self.rng.below(free_a.len())]);
        }
        if ca.is_empty() && !self.allowed("dot:no_contraction") {
            return None;
        }
        self.rng.shuffle(&mut ca);
        // b: batch dims, then the contracted dims and new free dims in random order.
        let mut rest: Vec<Option<usize>> = ca.iter().map(|&c| Some(c)).collect();
        for _ in 0..self.rng.below(2) {
            rest.push(None);
        }
        self.rng.shuffle(&mut rest);
        let mut bshape: Vec<usize> = (0..nb).map(|i| a.ty.shape[i]).collect();
        let mut cb = vec![0; ca.len()];
        let mut free_b = Vec::new();
        for r in &rest {
            match r {
                Some(c) => {
                    let k = ca.iter().position(|x| x == c).expect("listed");
                    cb[k] = bshape.len();
                    bshape.push(a.ty.shape[*c]);
                }
                None => {
                    let d = 1 + self.rng.below(4);
                    free_b.push(d);
                    bshape.push(d);
                }
            }
        }
        let mut out: Vec<usize> = (0..nb).map(|i| a.ty.shape[i]).collect();
        out.extend((nb..ra).filter(|i| !ca.contains(i)).map(|i| a.ty.shape[i]));
        out.extend(free_b.iter().copied());
        if !self.fits(&bshape) || !self.fits(&out) {
            return None;
        }
        let b = match self.pick_any(|v| v.ty.shape == bshape) {
            Some(b) if self.rng.chance(0.5) => b,
            _ => {
                let d = if self.rng.chance(0.5) {
                    a.ty.dtype
                } else {
                    self.dtype()
                };
                self.new_param(TensorType::new(d, bshape.clone()))
            }
        };
        let b = self.bounded(b)?;
        let b = self.pool[b].clone();
        let dtype = DType::merge(a.ty.dtype, b.ty.dtype);
        let n: usize = ca.iter().map(|&c| a.ty.shape[c]).product();
        let (lo, hi, err) = if dtype.is_int() {
            (f64::NEG_INFINITY, f64::INFINITY, 0.0)
        } else if n == 0 {
            (0.0, 0.0, 0.0)
        } else {
            if !is_finite_range(a.lo, a.hi) || !is_finite_range(b.lo, b.hi) {
                return None;
            }
            let (ma, mb) = (max_abs(a.lo, a.hi), max_abs(b.lo, b.hi));
            let m = n as f64 * ma * mb;
            let nf = n as f64;
            // Propagated error plus summation in any order.
            let err = nf * (ma * b.err + mb * a.err + a.err * b.err)
                + nf * nf * unit(dtype) * ma * mb
                + unit(dtype) * m;
            (-m, m, err)
        };
        if err > model::budget(dtype, lo, hi) {
            return None;
        }
        let rhs = format!(
            "dot {}, {}, {}, {}, {}, {}",
            a.name,
            self.axes_list(&ca, ra),
            list(&(0..nb).collect::<Vec<_>>()),
            b.name,
            self.axes_list(&cb, bshape.len()),
            list(&(0..nb).collect::<Vec<_>>())
        );
        self.push(rhs, TensorType::new(dtype, out), lo, hi, err);
        Some(())
    }

    fn reduce(&mut self) -> Option<()> {
        const OPS: &[&str] = &["sum", "product", "reduce_max", "reduce_min", "all", "any"];
        let op = OPS[self.rng.below(OPS.len())];
        if !self.allowed(op) {
            return None;
        }
        let need_exact = matches!(op, "all" | "any");
        let mut x = self.pick_or_param(|v| !need_exact || v.exact())?;
        if op == "product" && self.pool[x].ty.dtype.is_float() {
            x = self.condition(x, -1.0, 1.0)?;
        } else if op == "sum" {
            x = self.bounded(x)?;
        }
        let v = self.pool[x].clone();
        let r = v.ty.rank();
        let axes: Option<Vec<usize>> = if r == 0 || self.rng.chance(0.3) {
            None
        } else {
            Some((0..r).filter(|_| self.rng.chance(0.5)).collect())
        };
        let keep = self.rng.chance(0.3);
        let reduced: Vec<usize> = axes.clone().unwrap_or_else(|| (0..r).collect());
        let n: usize = reduced.iter().map(|&i| v.ty.shape[i]).product();
        if reduced.is_empty() && !self.allowed(&format!("{op}:no_axes")) {
            return None;
        }
        let shape: Vec<usize> = (0..r)
            .filter_map(|i| {
                if !reduced.contains(&i) {
                    Some(v.ty.shape[i])
                } else if keep {
                    Some(1)
                } else {
                    None
                }
            })
            .collect();
        let d = v.ty.dtype;
        let nf = n as f64;
        let (dtype, lo, hi, err) = match op {
            "sum" | "product" if d.is_int() => {
                let (lo, hi) = if op == "sum" {
                    (nf * v.lo.min(0.0), nf * v.hi.max(0.0))
                } else {
                    (f64::NEG_INFINITY, f64::INFINITY)
                };
                (d.to_aggregate(), lo, hi, 0.0)
            }
            "sum" => {
                if n == 0 {
                    (d, 0.0, 0.0, 0.0)
                } else {
                    if !is_finite_range(v.lo, v.hi) {
                        return None;
                    }
                    let m = max_abs(v.lo, v.hi);
                    (
                        d,
                        nf * v.lo.min(0.0),
                        nf * v.hi.max(0.0),
                        nf * v.err + nf * nf * unit(d) * m,
                    )
                }
            }
            "product" => {
                if n == 0 {
                    (d, 1.0, 1.0, 0.0)
                } else {
                    (d, -1.0, 1.0, nf * v.err + 2.0 * nf * unit(d))
                }
            }
            "reduce_max" | "reduce_min" => {
                if n == 0 {
                    (d, f64::NEG_INFINITY, f64::INFINITY, v.err)
                } else {
                    (d, v.lo, v.hi, v.err)
                }
            }
            _ => (DType::U8, 0.0, 1.0, 0.0),
        };
        if err > model::budget(dtype, lo, hi) {
            return None;
        }
        let axes_text = match axes {
            Some(a) => self.axes_list(&a, r),
            None => "nil".to_string(),
        };
        if !keep && self.rng.chance(0.3) {
            self.push(
                format!("{op} {}, axes: {axes_text}", v.name),
                TensorType::new(dtype, shape),
                lo,
                hi,
                err,
            );
            return Some(());
        }
        self.push(
            format!("{op} {}, axes: {axes_text}, keep_axes: {keep}", v.name),
            TensorType::new(dtype, shape),
            lo,
            hi,
            err,
        );
        Some(())
    }

    fn arg_reduce(&mut self) -> Option<()> {
        let op = if self.rng.chance(0.5) {
            "argmax"
        } else {
            "argmin"
        };
        if !self.allowed(op) {
            return None;
        }
        let nan_ok = self.allowed(&format!("{op}:nan"));
        let x = self.pick_or_param(|v| {
            v.exact() && (nan_ok || !v.nan) && v.ty.shape.iter().all(|&d| d > 0)
        })?;
        let v = self.pool[x].clone();
        let r = v.ty.rank();
        let axis = if r == 0 || self.rng.chance(0.3) {
            None
        } else {
            Some(self.rng.below(r))
        };
        let keep = axis.is_some() && self.rng.chance(0.3);
        let tie = if self.rng.chance(0.5) { "low" } else { "high" };
        let (shape, n) = match axis {
            None => (Vec::new(), v.ty.shape.iter().product::<usize>()),
            Some(a) => {
                let s = (0..r)
                    .filter_map(|i| {
                        if i != a {
                            Some(v.ty.shape[i])
                        } else if keep {
                            Some(1)
                        } else {
                            None
                        }
                    })
                    .collect();
                (s, v.ty.shape[a])
            }
        };
        let dtype = if self.rng.chance(0.3) {
            self.int_dtype()
        } else {
            DType::S32
        };
        let axis_text = match axis {
            Some(a) => self.axis(a, r),
            None => "nil".to_string(),
        };
        let mut rhs = format!("{op} {}, axis: {axis_text}", v.name);
        if tie == "high" || self.rng.chance(0.5) {
            rhs.push_str(&format!(", tie_break: :{tie}"));
        }
        if keep || (axis.is_some() && self.rng.chance(0.5)) {
            rhs.push_str(&format!(", keep_axis: {keep}"));
        }
        self.push(
            rhs,
            TensorType::new(dtype, shape),
            0.0,
            n.saturating_sub(1) as f64,
            0.0,
        );
        Some(())
    }

    // ---- scans, sorting and indexing (beyond the foundation set) ----

    /// `cumulative_sum x, axis: k, reverse: b` and friends: like the
    /// reductions, float sums and products reassociate; max/min are exact.
    fn cumulative(&mut self) -> Option<()> {
        const OPS: &[&str] = &[
            "cumulative_sum",
            "cumulative_product",
            "cumulative_max",
            "cumulative_min",
        ];
        let op = OPS[self.rng.below(OPS.len())];
        if !self.allowed(op) {
            return None;
        }
        let mut x = self.pick_or_param(|v| v.ty.rank() >= 1)?;
        if op == "cumulative_product" && self.pool[x].ty.dtype.is_float() {
            x = self.condition(x, -1.0, 1.0)?;
        } else if op == "cumulative_sum" {
            x = self.bounded(x)?;
        }
        let v = self.pool[x].clone();
        let axis = self.rng.below(v.ty.rank());
        let n = v.ty.shape[axis] as f64;
        let d = v.ty.dtype;
        let (lo, hi, err) = match op {
            "cumulative_max" | "cumulative_min" => (v.lo, v.hi, v.err),
            _ if d.is_int() => (f64::NEG_INFINITY, f64::INFINITY, 0.0),
            "cumulative_sum" => v.sum_of(n)?,
            _ => v.product_of(n),
        };
        if err > model::budget(d, lo, hi) {
            return None;
        }
        let reverse = self.rng.chance(0.4);
        let axis_text = self.axis(axis, v.ty.rank());
        let mut rhs = format!("{op} {}, axis: {axis_text}", v.name);
        if reverse || self.rng.chance(0.3) {
            rhs.push_str(&format!(", reverse: {reverse}"));
        }
        self.push(rhs, v.ty.clone(), lo, hi, err);
        Some(())
    }

    /// `sort` (values move, so inexact inputs are fine) and `argsort`
    /// (indices: exact inputs only, and no NaN ties if excluded).
    fn sort(&mut self) -> Option<()> {
        let arg = self.rng.chance(0.5);
        let op = if arg { "argsort" } else { "sort" };
        if !self.allowed(op) {
            return None;
        }
        let x = self.pick_or_param(|v| v.ty.rank() >= 1 && (!arg || v.exact()))?;
        let v = self.pool[x].clone();
        let axis = self.rng.below(v.ty.rank());
        let axis_text = self.axis(axis, v.ty.rank());
        let mut rhs = format!("{op} {}, axis: {axis_text}", v.name);
        let desc = self.rng.chance(0.5);
        if desc || self.rng.chance(0.5) {
            rhs.push_str(if desc {
                ", direction: :desc"
            } else {
                ", direction: :asc"
            });
        }
        if arg {
            let dtype = if self.rng.chance(0.3) {
                self.int_dtype()
            } else {
                DType::S32
            };
            let n = v.ty.shape[axis].saturating_sub(1) as f64;
            self.push(rhs, v.ty.with_dtype(dtype), 0.0, n, 0.0);
        } else {
            self.push(rhs, v.ty.clone(), v.lo, v.hi, v.err);
        }
        Some(())
    }

    /// `take x, idx, axis: k` with integer indices (out-of-range ones clamp).
    fn take(&mut self) -> Option<()> {
        if !self.allowed("take") {
            return None;
        }
        let x = self.pick_or_param(|v| v.ty.rank() >= 1 && v.ty.shape.iter().all(|&d| d > 0))?;
        self.gather_source_ok(x)?;
        let v = self.pool[x].clone();
        let axis = self.rng.below(v.ty.rank());
        let rest: usize = v.ty.num_elements() / v.ty.shape[axis];
        let max = self.cfg.max_elements;
        let idx = match self.pick_any(|w| {
            w.ty.dtype.is_int() && w.ty.num_elements() * rest <= max && w.ty.rank() <= 2
        }) {
            Some(i) if self.rng.chance(0.5) => i,
            _ => {
                let d = self.int_dtype();
                let shape: Vec<usize> = (0..self.rng.below(3))
                    .map(|_| 1 + self.rng.below(3))
                    .collect();
                if shape.iter().product::<usize>() * rest > max {
                    return None;
                }
                self.new_param(TensorType::new(d, shape))
            }
        };
        let ti = self.pool[idx].ty.clone();
        let mut shape = v.ty.shape[..axis].to_vec();
        shape.extend_from_slice(&ti.shape);
        shape.extend_from_slice(&v.ty.shape[axis + 1..]);
        if !self.fits(&shape) {
            return None;
        }
        let axis_text = self.axis(axis, v.ty.rank());
        let rhs = format!(
            "take {}, {}, axis: {axis_text}",
            v.name, self.pool[idx].name
        );
        self.push(rhs, TensorType::new(v.ty.dtype, shape), v.lo, v.hi, v.err);
        Some(())
    }

    /// `put_slice x, starts, y`: y (no larger than x on any axis) written at
    /// clamped starts; the dtypes merge.
    fn put_slice(&mut self) -> Option<()> {
        if !self.allowed("put_slice") {
            return None;
        }
        let x = self.pick_or_param(|v| v.ty.rank() >= 1)?;
        let v = self.pool[x].clone();
        let xs = v.ty.shape.clone();
        let y = match self
            .pick_any(|w| w.ty.rank() == xs.len() && (0..xs.len()).all(|i| w.ty.shape[i] <= xs[i]))
        {
            Some(y) if self.rng.chance(0.5) => y,
            _ => {
                let shape: Vec<usize> = xs.iter().map(|&d| self.rng.below(d + 1)).collect();
                let d = if self.rng.chance(0.6) {
                    v.ty.dtype
                } else {
                    self.dtype()
                };
                self.new_param(TensorType::new(d, shape))
            }
        };
        let w = self.pool[y].clone();
        let starts: Vec<usize> = xs.iter().map(|&d| self.rng.below(d + 2)).collect();
        let dtype = DType::merge(v.ty.dtype, w.ty.dtype);
        let err = v.err.max(w.err);
        let (lo, hi) = (v.lo.min(w.lo), v.hi.max(w.hi));
        if err > model::budget(dtype, lo, hi) {
            return None;
        }
        let rhs = format!("put_slice {}, {}, {}", v.name, list(&starts), w.name);
        self.push(rhs, v.ty.with_dtype(dtype), lo, hi, err);
        Some(())
    }

    /// `window_sum x, {dims}, strides:, padding:, window_dilations:` and
    /// friends; padding uses the reduction's identity (-inf for max, ...).
    fn window(&mut self) -> Option<()> {
        const OPS: &[&str] = &["window_sum", "window_product", "window_max", "window_min"];
        let op = OPS[self.rng.below(OPS.len())];
        if !self.allowed(op) {
            return None;
        }
        let mut x =
            self.pick_or_param(|v| v.ty.rank() >= 1 && v.ty.shape.iter().all(|&d| d > 0))?;
        if op == "window_product" && self.pool[x].ty.dtype.is_float() {
            x = self.condition(x, -1.0, 1.0)?;
        } else if op == "window_sum" {
            x = self.bounded(x)?;
        }
        let v = self.pool[x].clone();
        let geo = self.window_geometry(&v.ty.shape, true)?;
        let (win, pads, shape) = (geo.window.clone(), geo.pads.clone(), geo.shape.clone());
        if !self.fits(&shape) {
            return None;
        }
        let padded = pads.iter().any(|&(lo, hi)| lo + hi > 0);
        let n: f64 = win.iter().product::<usize>() as f64;
        let d = v.ty.dtype;
        let (lo, hi, err) = match op {
            "window_max" | "window_min" if padded => {
                if d.is_int() {
                    (f64::NEG_INFINITY, f64::INFINITY, v.err)
                } else if op == "window_max" {
                    (f64::NEG_INFINITY, v.hi, v.err)
                } else {
                    (v.lo, f64::INFINITY, v.err)
                }
            }
            "window_max" | "window_min" => (v.lo, v.hi, v.err),
            _ if d.is_int() => (f64::NEG_INFINITY, f64::INFINITY, 0.0),
            "window_sum" => v.sum_of(n)?,
            _ => v.product_of(n),
        };
        if err > model::budget(d, lo, hi) {
            return None;
        }
        let opts = self.window_text(&geo);
        let rhs = format!("{op} {}, {opts}", v.name);
        self.push(rhs, TensorType::new(d, shape), lo, hi, err);
        Some(())
    }

    /// `reduce x, init, axes: [..], fn(acc, v) { .. }` (or the `&Nx.add/2`
    /// shorthand), with the body on one line so the program keeps one
    /// statement per line.
    fn reduce_fn(&mut self) -> Option<()> {
        if !self.allowed("reduce") {
            return None;
        }
        let (body, x) = self.pick_combined(|v| v.ty.rank() < 8)?;
        let v = self.pool[x].clone();
        let d = v.ty.dtype;
        let r = v.ty.rank();
        let axes: Option<Vec<usize>> = if r == 0 || self.rng.chance(0.3) {
            None
        } else {
            Some((0..r).filter(|_| self.rng.chance(0.5)).collect())
        };
        let keep = self.rng.chance(0.3);
        let reduced: Vec<usize> = axes.clone().unwrap_or_else(|| (0..r).collect());
        let n = reduced.iter().map(|&i| v.ty.shape[i]).product::<usize>() as f64;
        let shape: Vec<usize> = (0..r)
            .filter_map(|i| {
                if !reduced.contains(&i) {
                    Some(v.ty.shape[i])
                } else if keep {
                    Some(1)
                } else {
                    None
                }
            })
            .collect();
        let (init, lo, hi, err, f) = self.combined(body, &v, n)?;
        let mut rhs = format!("reduce {}, {init}", v.name);
        if let Some(a) = &axes {
            let text = self.axes_list(a, r);
            rhs.push_str(&format!(", axes: {text}"));
        }
        if keep {
            rhs.push_str(", keep_axes: true");
        }
        rhs.push_str(&format!(", {f}"));
        self.push(rhs, TensorType::new(d, shape), lo, hi, err);
        Some(())
    }

    // ---- calls ----

    fn call(&mut self) -> Option<()> {
        if self.helpers.is_empty() || !self.allowed("call") {
            return None;
        }
        let h = self.rng.below(self.helpers.len());
        let (name, params, results, tuple) = {
            let h = &self.helpers[h];
            (h.name.clone(), h.params.clone(), h.results.clone(), h.tuple)
        };
        let mut args = Vec::new();
        for ty in &params {
            // The helper was generated assuming exact arguments in the default
            // input range, so that is what it gets.
            let (lo, hi) = self.default_range(ty.dtype);
            let found = self.pick_any(|v| v.ty == *ty && v.exact() && v.lo >= lo && v.hi <= hi);
            let a = match found {
                Some(a) => a,
                None => self.new_param(ty.clone()),
            };
            args.push(self.pool[a].name.clone());
        }
        let mut rhs = format!("call {name}");
        for a in &args {
            rhs.push_str(", ");
            rhs.push_str(a);
        }
        if !tuple {
            let r = &results[0];
            self.push(rhs, r.ty.clone(), r.lo, r.hi, r.err);
            return Some(());
        }
        let t = self.fresh();
        let tys: Vec<String> = results.iter().map(|r| r.ty.to_string()).collect();
        self.lines
            .push(format!("  {t} = {rhs}  {{{}}}", tys.join(", ")));
        for (i, r) in results.iter().enumerate() {
            if i == 0 || self.rng.chance(0.6) {
                self.push(format!("elem {t}, {i}"), r.ty.clone(), r.lo, r.hi, r.err);
            }
        }
        Some(())
    }
}

impl Gen<'_> {
    /// An axis index, sometimes written from the end (`-1` for the last).
    fn axis(&mut self, a: usize, rank: usize) -> String {
        if self.rng.chance(0.3) {
            format!("{}", a as i64 - rank as i64)
        } else {
            a.to_string()
        }
    }

    fn axes_list(&mut self, axes: &[usize], rank: usize) -> String {
        let items: Vec<String> = axes.iter().map(|&a| self.axis(a, rank)).collect();
        format!("[{}]", items.join(", "))
    }
}

/// Row-major literal data as nested lists of `shape`.
fn nested(data: &[Lit], shape: &[usize], out: &mut String) {
    match shape.split_first() {
        None => out.push_str(&data.first().map_or("0".to_string(), |l| l.text())),
        Some((&n, rest)) => {
            let inner: usize = rest.iter().product();
            out.push('[');
            for i in 0..n {
                if i > 0 {
                    out.push_str(", ");
                }
                let lo = (i * inner).min(data.len());
                nested(&data[lo..(lo + inner).min(data.len())], rest, out);
            }
            out.push(']');
        }
    }
}

fn list(xs: &[usize]) -> String {
    format!(
        "[{}]",
        xs.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}
