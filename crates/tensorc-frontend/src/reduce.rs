//! Contractions and reductions: `dot`, `sum`/`product`/`reduce_max`/
//! `reduce_min`/`all`/`any`, and `argmax`/`argmin`.
//!
//! All are `linalg.generic`s with reduction iterators over a filled
//! accumulator, so operand conversion happens inside the body (no converted
//! copy of the input is materialized). `argmax`/`argmin` are two of them
//! (the best value, then the least or greatest index holding it), so their
//! tie-breaking does not depend on the order the CPU schedules reduce in;
//! along a last axis of 32-bit elements they first scan the line lane-wise
//! (`arg_lanes`), in index order per lane, and the two reductions combine
//! the lanes.
//!
//! A "reduction" over no loops at all (`sum` over `axes: []` or of a scalar,
//! an outer-product `dot`, `argmax` of a scalar) must not read its
//! accumulator: `linalg-fuse-elementwise-ops` fuses an all-parallel generic
//! into its consumers and keeps the producer's output as an extra output of
//! the fused op, whose loops run once per *consumer* element, so a body that
//! reads its init would fold the value in again at every consumer element.
//! Those cases start from a constant inside the body and write into a plain
//! `tensor.empty` instead (see [`Lowerer::accumulator`]).

use tensorc_ir::graph::{BinaryOp, ReduceKind};
use tensorc_ir::types::{DType, TensorType};

use crate::{ARG_KEY, LowerError, NARROW_KEY, VectorRegisters};
use crate::emit::{Emitter, GenericOperand, elem, identity_map, tensor_ty};
use crate::lower::{Lowerer, Val};

/// The lowest value of `d` (−inf for floats), the identity of `max`.
pub(crate) fn lowest(d: DType) -> f64 {
    match d.int_range() {
        Some((lo, _)) => lo as f64,
        None => f64::NEG_INFINITY,
    }
}

/// The highest value of `d` (+inf for floats), the identity of `min`.
pub(crate) fn highest(d: DType) -> f64 {
    match d.int_range() {
        Some((_, hi)) => hi as f64,
        None => f64::INFINITY,
    }
}

/// The scalar constant `v` of dtype `d` (f64 for floats; for integers an
/// exact i128 from `int`).
fn start_const(e: &mut Emitter, d: DType, v: f64, int: Option<i128>) -> String {
    match (d.is_float(), int) {
        (false, Some(i)) => e.int_const(d, i),
        _ => e.num_const(d, v),
    }
}

/// Whether element `v` replaces the running best `best` of an
/// `argmax`/`argmin` (`max`) scan in index order: strictly better (tie_break
/// low) or better-or-equal (`high`); NaN counts as better than any number,
/// the first NaN staying (low) or the last one winning (high). For low,
/// `ugt(v, best) and ord(best)` is `ogt(v, best) or (v NaN and best not)`
/// in two compares, which x86 does as one compare masked by another.
fn better(e: &mut Emitter, v: &str, best: &str, dx: DType, max: bool, high: bool) -> String {
    if dx.is_float() {
        if !high {
            let pred = if max { "ugt" } else { "ult" };
            let better = e.cmpf(pred, v, best, dx);
            let best_ord = e.cmpf("ord", best, best, dx);
            return e.bin("arith.andi", &better, &best_ord, "i1");
        }
        let pred = if max { "oge" } else { "ole" };
        let better = e.cmpf(pred, v, best, dx);
        let v_nan = e.cmpf("uno", v, v, dx);
        e.bin("arith.ori", &better, &v_nan, "i1")
    } else {
        let s = dx.is_signed_int();
        let pred = match (max, high, s) {
            (true, false, true) => "sgt",
            (true, true, true) => "sge",
            (false, false, true) => "slt",
            (false, true, true) => "sle",
            (true, false, false) => "ugt",
            (true, true, false) => "uge",
            (false, false, false) => "ult",
            (false, true, false) => "ule",
        };
        e.cmpi(pred, v, best, dx)
    }
}

/// A 32-bit element `v` of dtype `d` as an unsigned i32 that orders like
/// `argmax`'s (`max`) or `argmin`'s preference: greater is better. A float
/// maps to `2^31 ± |v|` on its bits (so −0.0 ties with 0.0, as `oeq` has
/// it) and NaN to all ones, better than any number; a signed integer flips
/// its sign bit; `argmin` complements the number's pattern. Integer ops
/// only: with a float compare for NaN, LLVM rebuilt the float vector lane
/// by lane from the keys.
pub(crate) fn arg_order_key(e: &mut Emitter, v: &str, d: DType, max: bool) -> String {
    let top = e.int_const(DType::S32, i32::MIN as i128);
    let ones = e.int_const(DType::S32, -1);
    let (ordered, nan) = if d.is_float() {
        let bits = e.cast("arith.bitcast", v, "f32", "i32");
        let abs_mask = e.int_const(DType::S32, i32::MAX as i128);
        let abs = e.bin("arith.andi", &bits, &abs_mask, "i32");
        let c31 = e.int_const(DType::S32, 31);
        let sign = e.bin("arith.shrsi", &bits, &c31, "i32");
        let flipped = e.bin("arith.xori", &abs, &sign, "i32");
        let signed = e.bin("arith.subi", &flipped, &sign, "i32");
        let ordered = e.bin("arith.addi", &signed, &top, "i32");
        let inf = e.int_const(DType::S32, 0x7f80_0000);
        (ordered, Some(e.cmpi("ugt", &abs, &inf, DType::S32)))
    } else if d.is_signed_int() {
        (e.bin("arith.xori", v, &top, "i32"), None)
    } else {
        (v.to_owned(), None)
    };
    let ordered = if max { ordered } else { e.bin("arith.xori", &ordered, &ones, "i32") };
    match nan {
        Some(nan) => e.select(&nan, &ones, &ordered, "i32"),
        None => ordered,
    }
}

/// The most columns of a narrow matrix product (`narrow`).
const NARROW_MAX_N: usize = 16;

/// The largest B (bytes) of a narrow matrix product of more than 8
/// columns: each step of the reduction reads a vector of every row of Bᵀ
/// (one row of A at a time), which must stay in L1 (48 KiB here). With B
/// in L2, 256×4096·16 f32 (256 KiB) took 0.7 ms as a narrow product, 0.23
/// as a matrix product. Up to 8 columns (two rows of A at a time) the
/// narrow product was faster with B in L2 too: 256×4096·8 0.24 → 0.16 ms,
/// 4096×4096·8 7.4 → 2.5–3.6, 1024×8192·4 2.0 → 1.05 (XLA 0.10, 2.9, 1.13;
/// an A over 16 MiB gets `tensorc-prefetch-rows`' row prefetches).
const NARROW_MAX_B_BYTES: usize = 40 << 10;

/// Whether the product of `a` (M×K) and `b` (K×N, either contracted over
/// `contract_a`, its other matrix axis free; after `nb` (0 or 1) batch
/// axes) of float type `d` is narrow: 2 to
/// `NARROW_MAX_N` columns, K of 64 or more (`tensorc_passes::matvec::
/// MIN_CONTRACTION`), 2 rows or more and, over 8 columns, B of at most
/// `NARROW_MAX_B_BYTES`. The matrix schedule's 8×32 register tiles waste
/// most of their 32 columns there: as reductions along rows of A and of
/// Bᵀ, all result columns of one or two rows of A at a time (the reduction
/// schedule's `tensorc.mvn` tags), A is read once, in order: 1000×512·3
/// f32 0.078 → 0.022 ms (XLA 0.047), 4096×1024·10 1.04 → 0.60 (XLA 1.04).
fn narrow(a: &TensorType, b: &TensorType, nb: usize, contract_a: usize, d: DType) -> bool {
    let (m, k) = (a.shape[2 * nb + 1 - contract_a], a.shape[contract_a]);
    let batch = a.shape[..nb].iter().product::<usize>();
    let n = b.num_elements() / (k * batch).max(1);
    d.is_float()
        && (2..=NARROW_MAX_N).contains(&n)
        && k >= 64
        && m >= 2
        && (n <= 8 || n * k * d.size_bytes() <= NARROW_MAX_B_BYTES)
}

/// The running best an `argmax` (`max`) or `argmin` scan of `d` starts
/// from, every element at least as good: the lowest (highest) value, as
/// `filled` takes it.
fn arg_start(d: DType, max: bool) -> (f64, Option<i128>) {
    let start = if max { lowest(d) } else { highest(d) };
    (start, d.int_range().map(|(lo, hi)| if max { lo } else { hi }))
}

/// Lanes of the one-pass lane-wise `argmax`/`argmin` scan
/// (`Lowerer::arg_lane_scan`) of `x` along `axis`, or `None` for the
/// two-pass form. Only along the last axis (the lanes are consecutive
/// elements, so a chunk is a contiguous vector load), only for 32-bit
/// elements (64-bit elements would need twice the registers), only when
/// the line holds at least two chunks of lanes (`lanes` need not divide it:
/// see `Lowerer::arg_lane_scan`) and more than `ARG_KEY_MAX` elements, and only for two lines or more: one line
/// (`argmax` of a vector, or over all axes) has nothing else to run in
/// parallel, and its two reductions split into parallel stages (threads;
/// on Vulkan, two kernels where a scan of 70000 elements looped 70434 times
/// in one, past lavapipe's loop limit for longer lines).
///
/// How many lanes: four vector registers of values (and four of indices)
/// on lines of at most `ARG_LANES_SHORT_MAX` elements, a quarter of the
/// registers (eight AVX-512 registers, four AVX2 ones) on longer lines,
/// each register one independent compare-select chain. On AVX-512 (64
/// lanes on short lines, 128 on long ones): with 128 lanes on short lines
/// the eight chains' compare masks outnumber the eight mask registers and
/// LLVM spilled them, and each line ends with 128 lanes to combine; on
/// lines of up to 1024 elements 64 lanes ran faster (one thread,
/// alternated: 8000×130 343 → 99 µs, 5000×200 244 → 80–91, 10000×300
/// 244–255 → 194, 3000×777 155 → 146, 1000×1000 66–76 → 60–61, 4096×1024
/// 284–311 → 254–265), on longer ones slower (2000×1200 132–134 → 140–158,
/// 2000×1536 145–148 → 175–179, 1024×4096 190 → 234). On AVX2 (32 lanes
/// on both), 64 lanes' eight registers of values and eight of indices are
/// all sixteen and spilled: 32 lanes took 0.48–0.60× the time of 64 on
/// 1000×300, 8000×130 and 1000×1000, 0.75× on 3000×777, 0.9× on 4096×1024,
/// 0.79× and 0.88× of 128 on 2000×1536 and 1024×4096 (AOT, alternated).
/// Lines of up to `ARG_KEY_MAX` keep the two-pass form, faster there
/// (20000×64 with a 32-lane scan of two chunks: 1.5× its time); on AVX2 a
/// scan of 32 lanes takes the lines from 65 elements (20000×65 0.69×,
/// 10000×100 0.85×, 10000×127 0.63× the two-pass form's time).
fn arg_lanes(t: &TensorType, axis: usize, regs: VectorRegisters) -> Option<usize> {
    let n = *t.shape.last()?;
    let lines: usize = t.shape[..t.rank() - 1].iter().product();
    let per_register = regs.bytes / 4;
    let registers = if n <= ARG_LANES_SHORT_MAX { 4 } else { regs.count / 4 };
    let lanes = registers * per_register;
    (axis + 1 == t.rank()
        && t.dtype.size_bytes() == 4
        && n >= 2 * lanes
        && n > ARG_KEY_MAX
        && lines >= 2)
        .then_some(lanes)
}

/// Whether `argmax`/`argmin` along `axis` of `t` runs over many short
/// lines (`SHORT_LINE_MAX`): the axis is the last, of 2 to
/// `SHORT_LINE_MAX` elements, and the first or second axis holds two
/// lines or more.
fn short_lines(t: &TensorType, axis: usize) -> bool {
    let n = t.shape[axis];
    axis + 1 == t.rank() && (2..=SHORT_LINE_MAX).contains(&n) && t.shape[..axis].iter().take(2).any(|&r| r >= 2)
}

/// The longest line `argmax`/`argmin` reads in one pass carrying (best
/// value, index), left to the scalar lowering: the reduction schedule's
/// `SCALAR_ROW_MAX` (passes crate), under which LLVM unrolls a line whole
/// and vectorizes the loop over lines.
const SHORT_LINE_MAX: usize = 13;

/// The longest line scanned with four registers of lanes.
const ARG_LANES_SHORT_MAX: usize = 1024;

/// The longest line whose index reduction reads a constant of indices and
/// is tagged `ARG_KEY` (the reduction schedule's short rows; longer lines
/// keep `linalg.index` and LLVM's vectorization of their loop, 9 % faster
/// than the schedule's split at 128 elements).
const ARG_KEY_MAX: usize = 64;

/// Where an accumulating generic's body gets its running value from.
#[derive(Clone, Copy)]
pub(crate) enum Acc {
    /// The output block argument (a filled init, read back): there are
    /// reduction loops.
    Read,
    /// A constant emitted in the body: no reduction loops, so each output
    /// element is visited once and the init is never read (fusion-safe).
    Start(f64, Option<i128>),
}

impl Acc {
    /// The running value of output `d` whose block argument is `arg`.
    fn value(self, e: &mut Emitter, d: DType, arg: &str) -> String {
        match self {
            Acc::Read => arg.to_string(),
            Acc::Start(v, int) => start_const(e, d, v, int),
        }
    }
}

impl Lowerer<'_> {
    /// A filled accumulator: the constant `v` (f64 for floats; for integers an
    /// exact i128 from `int`) splat over `t`.
    pub(crate) fn filled(&mut self, t: &TensorType, v: f64, int: Option<i128>) -> String {
        let c = start_const(&mut self.e, t.dtype, v, int);
        self.e.fill(&c, t)
    }

    /// The init of an accumulating generic's output of type `t` starting at
    /// `v`/`int`, and how its body reads the running value. With reduction
    /// loops (`reduces`), a filled tensor read back through the block
    /// argument; without, a `tensor.empty` that the body never reads (see the
    /// module doc for why reading it is wrong once fused).
    pub(crate) fn accumulator(&mut self, t: &TensorType, v: f64, int: Option<i128>, reduces: bool) -> (String, Acc) {
        if reduces { (self.filled(t, v, int), Acc::Read) } else { (self.e.empty(t), Acc::Start(v, int)) }
    }

    /// Nx `dot`: one loop per output axis (batch, free a, free b) followed by
    /// one reduction loop per contracted pair.
    #[allow(clippy::too_many_arguments, reason = "mirrors the op's six operands")]
    pub fn dot(
        &mut self,
        a: &Val,
        b: &Val,
        contract_a: &[usize],
        batch_a: &[usize],
        contract_b: &[usize],
        batch_b: &[usize],
        ty: &TensorType,
    ) -> Result<String, LowerError> {
        if contract_a.len() != contract_b.len() || batch_a.len() != batch_b.len() {
            return Err(LowerError::Internal("dot axes do not pair up".into()));
        }
        // A half-precision product (f16, bf16) is computed in f32 and
        // rounded once at the end, as XLA does (and the interpreter): x86
        // has no half arithmetic, so each multiply and add in the half
        // type was a conversion to f32 and back (bf16 1024³ 66.8 ms, XLA
        // 9.3), and the sums are more accurate.
        if matches!(ty.dtype, DType::F16 | DType::BF16) {
            let wide = ty.with_dtype(DType::F32);
            let name = self.dot(a, b, contract_a, batch_a, contract_b, batch_b, &wide)?;
            return Ok(self.convert_tensor(&Val { name, ty: wide }, ty.dtype).name);
        }
        // Operands of other types are converted to the result's first, as
        // the interpreter converts each element before multiplying: the
        // same values, and then a product of one type, which the named
        // matrix products below take (a generic contraction with the
        // conversions in its body stays scalar loops: f16·f32 512³ took
        // 349 ms, f32·f32 1.0).
        let a = &self.convert_tensor(a, ty.dtype);
        let b = &self.convert_tensor(b, ty.dtype);
        let out_rank = ty.rank();
        let nloops = out_rank + contract_a.len();
        // Loop index of each operand axis.
        let axes_map = |rank: usize, contract: &[usize], batch: &[usize], free_start: usize| {
            let mut free = free_start;
            (0..rank)
                .map(|ax| {
                    if let Some(i) = batch.iter().position(|&x| x == ax) {
                        format!("d{i}")
                    } else if let Some(k) = contract.iter().position(|&x| x == ax) {
                        format!("d{}", out_rank + k)
                    } else {
                        free += 1;
                        format!("d{}", free - 1)
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let free_a = a.ty.rank() - contract_a.len() - batch_a.len();
        let map_a = axes_map(a.ty.rank(), contract_a, batch_a, batch_a.len());
        let map_b = axes_map(b.ty.rank(), contract_b, batch_b, batch_a.len() + free_a);
        let d = ty.dtype;
        // Matrix products (with at most one leading batch axis) become named
        // ops, which tensorc's CPU schedules (tiling, packing, vectorization)
        // recognize. An operand contracted over its other matrix axis (aᵀ·b,
        // a·bᵀ) is transposed first: one pass over the operand instead of a
        // generic contraction that stays scalar loops. (Both operands have
        // the result's type by now: named ops would cast with their own
        // rules.)
        let nb = batch_a.len();
        let matrix = |x: &Val, contract: &[usize]| {
            x.ty.rank() == nb + 2 && contract.len() == 1 && (contract[0] == nb || contract[0] == nb + 1)
        };
        let canonical = nb <= 1
            && matrix(a, contract_a)
            && matrix(b, contract_b)
            && batch_a.iter().chain(batch_b).enumerate().all(|(i, &x)| x == i % nb.max(1));
        // Other products with free axes in both operands (several free,
        // batch or contracted axes in one): each operand's axes are put in
        // matrix order, `[batch][free][contracted]` and
        // `[batch][contracted][free]` (one transpose when they are not), so
        // the generic below reads them in groups, which
        // `tensorc-name-contractions` collapses into a named product after
        // fusion (which first fuses an operand's conversion into this
        // generic; the pass moves it out again).
        let free_b = b.ty.rank() - contract_b.len() - batch_b.len();
        if !canonical && free_a > 0 && free_b > 0 && !contract_a.is_empty() {
            let free = |x: &Val, contract: &[usize], batch: &[usize]| -> Vec<usize> {
                (0..x.ty.rank()).filter(|ax| !contract.contains(ax) && !batch.contains(ax)).collect()
            };
            let perm_a: Vec<usize> = [batch_a, &free(a, contract_a, batch_a), contract_a].concat();
            let perm_b: Vec<usize> = [batch_b, contract_b, &free(b, contract_b, batch_b)].concat();
            let ordered = |perm: &[usize]| perm.iter().enumerate().all(|(i, &p)| i == p);
            if !ordered(&perm_a) || !ordered(&perm_b) {
                let a = self.permuted(a, &perm_a);
                let b = self.permuted(b, &perm_b);
                let batch: Vec<usize> = (0..nb).collect();
                let nk = contract_a.len();
                let contract_a: Vec<usize> = (nb + free_a..nb + free_a + nk).collect();
                let contract_b: Vec<usize> = (nb..nb + nk).collect();
                return self.dot(&a, &b, &contract_a, &batch, &contract_b, &batch, ty);
            }
        }
        // Without contracted axes (an outer product) there is nothing to sum.
        let (init, acc) = self.accumulator(ty, 0.0, Some(0), !contract_a.is_empty());
        if canonical {
            // Swaps the two matrix axes of `x` unless it is contracted over `want`.
            let mut oriented = |x: &Val, contract: &[usize], want: usize| {
                if contract[0] == want {
                    return x.clone();
                }
                let perm: Vec<usize> = (0..nb).chain([nb + 1, nb]).collect();
                self.permuted(x, &perm)
            };
            if narrow(&a.ty, &b.ty, nb, contract_a[0], d) {
                // Bᵀ's rows: the contracted axis last, read contiguously.
                let bt = oriented(b, contract_b, nb + 1);
                let a = oriented(a, contract_a, nb + 1);
                return Ok(self.narrow_product(&a, &bt, init, ty));
            }
            let a = oriented(a, contract_a, nb + 1);
            let b = oriented(b, contract_b, nb);
            let op = if nb == 0 { "linalg.matmul" } else { "linalg.batch_matmul" };
            return Ok(self.e.op(&format!(
                "{op} ins({}, {} : {}, {}) outs({init} : {}) -> {}",
                a.name,
                b.name,
                tensor_ty(&a.ty),
                tensor_ty(&b.ty),
                tensor_ty(ty),
                tensor_ty(ty)
            )));
        }
        let outs = [GenericOperand { value: init, ty: ty.clone(), map: identity_map(out_rank) }];
        let mut red = vec![false; out_rank];
        red.resize(nloops, true);
        // Both operands have type `d` (converted above).
        Ok(self
            .e
            .generic(nloops, &red, &[a.operand(map_a), b.operand(map_b)], &outs, |e, s| {
                let m = e.binary(BinaryOp::Multiply, &s[0], &s[1], d);
                let sum = acc.value(e, d, &s[2]);
                vec![e.binary(BinaryOp::Add, &sum, &m, d)]
            })
            .remove(0))
    }

    /// `a·bᵀ` of `a` `[M][K]` and `bt` `[N][K]` (or a batch of them: `[B]`
    /// first; a narrow product: `narrow`) as one reduction over K per
    /// result element, tagged `NARROW_KEY`, into `init` (zeros of `ty`).
    fn narrow_product(&mut self, a: &Val, bt: &Val, init: String, ty: &TensorType) -> String {
        let d = ty.dtype;
        let nb = ty.rank() - 2;
        let (b, m, n, k) = if nb == 1 { ("d0, ", "d1", "d2", "d3") } else { ("", "d0", "d1", "d2") };
        let outs = [GenericOperand { value: init, ty: ty.clone(), map: format!("{b}{m}, {n}") }];
        let ins = [a.operand(format!("{b}{m}, {k}")), bt.operand(format!("{b}{n}, {k}"))];
        let mut reduced = vec![false; nb + 2];
        reduced.push(true);
        // `contract`: LLVM fuses each multiply and add into one FMA (one
        // rounding, as the matrix schedules' products have), half the
        // vector instructions of the loop.
        let t = elem(d);
        self.e
            .generic_tagged(nb + 3, &reduced, &ins, &outs, Some(NARROW_KEY), |e, s| {
                let m = e.op(&format!("arith.mulf {}, {} fastmath<contract> : {t}", s[0], s[1]));
                vec![e.op(&format!("arith.addf {}, {m} fastmath<contract> : {t}", s[2]))]
            })
            .remove(0)
    }

    /// `sum`/`product`/`reduce_max`/`reduce_min`/`all`/`any` of `x` over
    /// `axes`; the node type `ty` may keep the reduced axes as size 1.
    pub fn reduce(&mut self, x: &Val, kind: ReduceKind, axes: &[usize], ty: &TensorType) -> String {
        let d = ty.dtype;
        let rank = x.ty.rank();
        // Several axes but not all: one reduction per axis, the last first
        // (each then a row or column reduction the CPU schedules take; a
        // generic reducing two loops at once stays scalar loops: `sum` over
        // axes [0, 2] of 256×300×300 f32 took 13.2 ms, XLA 2.1). Every
        // combiner here is associative and commutative: integers and
        // booleans give the same result, floats are reassociated.
        let mut sorted = axes.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() >= 2 && sorted.len() < rank {
            let last = sorted.pop().expect("two axes or more");
            let shape: Vec<usize> = (0..rank).filter(|&i| i != last).map(|i| x.ty.shape[i]).collect();
            let mid_ty = TensorType::new(d, shape);
            let mid = Val { name: self.reduce(x, kind, &[last], &mid_ty), ty: mid_ty };
            // The other axes all come before `last`: their numbers stand.
            return self.reduce(&mid, kind, &sorted, ty);
        }
        let kept: Vec<usize> = (0..rank).filter(|i| !axes.contains(i)).collect();
        let red_ty = TensorType::new(d, kept.iter().map(|&i| x.ty.shape[i]).collect::<Vec<_>>());
        let red: Vec<bool> = (0..rank).map(|i| axes.contains(&i)).collect();
        let (start, start_int) = match kind {
            ReduceKind::Sum | ReduceKind::Any => (0.0, Some(0)),
            ReduceKind::Product | ReduceKind::All => (1.0, Some(1)),
            ReduceKind::Max => (lowest(d), d.int_range().map(|r| r.0)),
            ReduceKind::Min => (highest(d), d.int_range().map(|r| r.1)),
        };
        // Over no axes the identity is still folded in (0 + -0.0 is +0.0, as
        // in the interpreter), just from a constant rather than the init.
        let (init, acc_src) = self.accumulator(&red_ty, start, start_int, red.contains(&true));
        let out_map = kept.iter().map(|i| format!("d{i}")).collect::<Vec<_>>().join(", ");
        let outs = [GenericOperand { value: init, ty: red_ty.clone(), map: out_map }];
        let dx = x.ty.dtype;
        let r = self
            .e
            .generic(rank, &red, &[x.operand(identity_map(rank))], &outs, |e, s| {
                let v = &s[0];
                let acc = &acc_src.value(e, d, &s[1]);
                let r = match kind {
                    ReduceKind::All | ReduceKind::Any => {
                        let t = e.truthy(v, dx);
                        let t = e.bool_to_u8(&t);
                        let op = if kind == ReduceKind::All { "arith.andi" } else { "arith.ori" };
                        e.bin(op, acc, &t, elem(d))
                    }
                    _ => {
                        let v = e.convert(v, dx, d);
                        let op = match kind {
                            ReduceKind::Sum => BinaryOp::Add,
                            ReduceKind::Product => BinaryOp::Multiply,
                            ReduceKind::Max => BinaryOp::Max,
                            _ => BinaryOp::Min,
                        };
                        e.binary(op, acc, &v, d)
                    }
                };
                vec![r]
            })
            .remove(0);
        self.reshape(&Val { name: r, ty: red_ty }, ty)
    }

    /// `argmax`/`argmin`. Two reductions that vectorize
    /// (`arg_reduce_two_pass`), except over an empty line and over many
    /// short lines (`short_lines`): one generic carrying (best value, its
    /// index): a later element replaces the best when strictly better
    /// (tie_break low) or better-or-equal (high); NaN counts as better than
    /// any number. Short lines are left to the scalar lowering, where LLVM
    /// unrolls a line whole and vectorizes the loop over lines with both
    /// results in registers: one read of x and no temporary, where the two
    /// reductions read x twice and wrote the best values between (one
    /// thread, AOT, alternated, 100000 lines: f32 argmax of 3 0.048 →
    /// 0.030 ms, of 5 0.078 → 0.049, of 10 0.281 → 0.148 (XLA 0.215), of 13
    /// 0.483 → 0.252; argmin tie_break high of 10: f64 2.10 → 1.07, s32 0.165
    /// → 0.097, u8 0.055 → 0.043, f16 0.255 → 0.142, bf16 0.388 → 0.143; two
    /// threads f32 of 10 0.153 → 0.078). From 14 elements LLVM leaves the
    /// one-pass loop scalar (16: 0.24 → 0.44 ms, 24: 0.39 → 7.7).
    pub fn arg_reduce(&mut self, x: &Val, max: bool, axis: Option<usize>, high: bool, ty: &TensorType) -> String {
        let di = ty.dtype;
        let dx = x.ty.dtype;
        let rank = x.ty.rank();
        let reduced: Vec<bool> = (0..rank).map(|i| axis.is_none_or(|a| a == i)).collect();
        let kept: Vec<usize> = (0..rank).filter(|&i| !reduced[i]).collect();
        let kept_shape: Vec<usize> = kept.iter().map(|&i| x.ty.shape[i]).collect();
        let val_ty = TensorType::new(dx, kept_shape.clone());
        let idx_ty = TensorType::new(di, kept_shape);
        if !reduced.contains(&true) {
            // A scalar operand: its only element is the best, at index 0.
            // (No loops means no generic: one would read its init, see above.)
            let zeros = self.filled(&idx_ty, 0.0, Some(0));
            return self.reshape(&Val { name: zeros, ty: idx_ty }, ty);
        }
        let one_pass = axis.is_some_and(|a| short_lines(&x.ty, a));
        if !one_pass && let Some(r) = self.arg_reduce_two_pass(x, max, axis, high, ty) {
            return r;
        }
        let (start, start_int) = arg_start(dx, max);
        let vinit = self.filled(&val_ty, start, start_int);
        let iinit = self.filled(&idx_ty, 0.0, Some(0));
        let out_map = kept.iter().map(|i| format!("d{i}")).collect::<Vec<_>>().join(", ");
        let outs = [
            GenericOperand { value: vinit, ty: val_ty, map: out_map.clone() },
            GenericOperand { value: iinit, ty: idx_ty.clone(), map: out_map },
        ];
        let (shape, strides) = (x.ty.shape.clone(), x.ty.strides());
        let r = self.e.generic(rank, &reduced, &[x.operand(identity_map(rank))], &outs, |e, s| {
            let (v, best, best_i) = (&s[0], &s[1], &s[2]);
            let idx = match axis {
                Some(k) => e.op(&format!("linalg.index {k} : index")),
                None => e.flat_index(&shape, &strides),
            };
            let i = e.index_to(&idx, di);
            let take = better(e, v, best, dx, max, high);
            let nv = e.select(&take, v, best, elem(dx));
            let ni = e.select(&take, &i, best_i, elem(di));
            vec![nv, ni]
        });
        self.reshape(&Val { name: r[1].clone(), ty: idx_ty }, ty)
    }

    /// `argmax`/`argmin` as two reductions, each a single combiner that the
    /// CPU schedules vectorize (the one generic carrying a value and an index
    /// stays scalar loops: 0.01x NumPy on 4096x1024; the second one is
    /// tagged `ARG_KEY`, since it reads the first's result broadcast, which
    /// the reduction schedule's matchers refuse):
    /// 1. `m`, the best value along the axis (`reduce_max`/`reduce_min`,
    ///    whose float forms propagate NaN, the best value of all);
    /// 2. the least (tie_break low) or greatest (high) index `i` whose
    ///    element equals `m` (`oeq`, so -0.0 ties with 0.0), or is NaN
    ///    when `m` is NaN (only then can a NaN be there), as a `minsi`/`maxsi` of
    ///    `hit ? i : miss` (miss `n` for low, -1 for high: any line has a
    ///    hit, so the miss never shows).
    ///
    /// Both read x in order along the axis; a row chain like this is what
    /// row fusion keeps in L1 between the two. The index is i32 (i64 for
    /// lines of 2^31 elements or more) and converted to the result type at
    /// the end, wrapping like the interpreter. `None` for empty lines (the
    /// one-generic form gives index 0 for those). f16/bf16 compare through
    /// `Emitter::cmpf` (bf16 as f32 bits) like everywhere else.
    fn arg_reduce_two_pass(&mut self, x: &Val, max: bool, axis: Option<usize>, high: bool, ty: &TensorType) -> Option<String> {
        let dx = x.ty.dtype;
        // Over all axes: the flat row-major index is the index into x as one line.
        let (x, axis) = match axis {
            Some(a) => (x.clone(), a),
            None => {
                let flat = TensorType::new(dx, vec![x.ty.num_elements()]);
                (Val { name: self.reshape(x, &flat), ty: flat }, 0)
            }
        };
        let n = x.ty.shape[axis];
        if n == 0 {
            return None;
        }
        let dk = if n < (1 << 31) { DType::S32 } else { DType::S64 };
        // The lines to search (each lane's best along the same last axis,
        // for the lane-wise scan) and, with the scan, each one's index.
        let (lines, lane_index) = match arg_lanes(&x.ty, axis, self.regs) {
            Some(l) => {
                let (best, index) = self.arg_lane_scan(&x, max, high, l, dk);
                (best, Some(index))
            }
            None => (x, None),
        };
        if let Some(index) = &lane_index
            && dk == DType::S32
        {
            let key = self.arg_lane_combine(&lines, index, max, high);
            let idx = self.convert_tensor(&key, ty.dtype);
            return Some(self.reshape(&idx, ty));
        }
        let rank = lines.ty.rank();
        let reduced: Vec<bool> = (0..rank).map(|i| i == axis).collect();
        let kept: Vec<usize> = (0..rank).filter(|&i| i != axis).collect();
        let kept_shape: Vec<usize> = kept.iter().map(|&i| lines.ty.shape[i]).collect();
        let out_map = kept.iter().map(|i| format!("d{i}")).collect::<Vec<_>>().join(", ");

        // 1. The best value.
        let m_ty = TensorType::new(dx, kept_shape.clone());
        let kind = if max { ReduceKind::Max } else { ReduceKind::Min };
        let m = Val { name: self.reduce(&lines, kind, &[axis], &m_ty), ty: m_ty };

        // 2. Its first (low) or last (high) index.
        let k_ty = TensorType::new(dk, kept_shape.clone());
        // Not the combiner's identity (i32::MAX for min): with it the
        // split reduction's vectorization fails and the loop stays scalar.
        let miss = if high { -1 } else { n as i128 };
        let k_init = self.filled(&k_ty, miss as f64, Some(miss));
        let k_out = [GenericOperand { value: k_init, ty: k_ty.clone(), map: out_map.clone() }];
        let mut ins = vec![lines.operand(identity_map(rank)), m.operand(out_map)];
        // Short lines read their indices from a constant `[0, 1, …, n-1]`
        // (broadcast along the other axes) instead of `linalg.index`, and
        // are tagged `ARG_KEY` for the reduction schedule: its split into
        // partials tiles the line, and MLIR 22 does not offset a
        // `linalg.index` by the tile's start there (every chunk's elements
        // got the indices of the first), while a sliced input is offset.
        let iota = (lane_index.is_none() && n <= ARG_KEY_MAX).then(|| {
            let iota_ty = TensorType::new(dk, vec![n]);
            let values: Vec<String> = (0..n).map(|i| i.to_string()).collect();
            let name = self.e.op(&format!("arith.constant dense<[{}]> : {}", values.join(", "), tensor_ty(&iota_ty)));
            Val { name, ty: iota_ty }
        });
        if let Some(index) = &lane_index {
            ins.push(index.operand(identity_map(rank)));
        }
        if let Some(iota) = &iota {
            ins.push(iota.operand(format!("d{axis}")));
        }
        let tag = iota.as_ref().map(|_| ARG_KEY);
        let index_input = lane_index.is_some() || iota.is_some();
        let key = self
            .e
            .generic_tagged(rank, &reduced, &ins, &k_out, tag, |e, s| {
                let (v, best) = (&s[0], &s[1]);
                let acc = s.last().expect("the generic has an output");
                // A lane's best element carries its index; a short line's
                // index comes from the constant.
                let i = if index_input {
                    s[2].clone()
                } else {
                    let idx = e.op(&format!("linalg.index {axis} : index"));
                    e.index_to(&idx, dk)
                };
                let hit = if dx.is_float() {
                    // `m` NaN ? `v` NaN : `v == m`, not `v == m || v NaN`
                    // (the same, since a NaN in the line makes `m` NaN):
                    // the choice depends on the line only, so the
                    // vectorized loop tests one compare per element
                    // (argmax 4096×1024 0.388 → 0.339 ms, one thread).
                    let eq = e.cmpf("oeq", v, best, dx);
                    let nan = e.cmpf("uno", v, v, dx);
                    let best_nan = e.cmpf("uno", best, best, dx);
                    e.select(&best_nan, &nan, &eq, "i1")
                } else {
                    e.cmpi("eq", v, best, dx)
                };
                let miss = e.int_const(dk, miss);
                let key = e.select(&hit, &i, &miss, elem(dk));
                let op = if high { "arith.maxsi" } else { "arith.minsi" };
                vec![e.bin(op, acc, &key, elem(dk))]
            })
            .remove(0);
        let key = Val { name: key, ty: k_ty };
        let idx = self.convert_tensor(&key, ty.dtype);
        Some(self.reshape(&idx, ty))
    }

    /// The index the lanes of a lane-wise scan (`best` values, their
    /// `index`es, 32-bit, along the last axis) agree on: one reduction of
    /// 64-bit keys, the value's rank in the high half (`arg_order_key`) and
    /// the index in the low half (complemented for tie_break low, so the
    /// greatest key holds the least index), combined by an unsigned `max`,
    /// then the index taken back out. The two-reduction form (the best
    /// value, then the least index holding it) spent over half of argmax
    /// 1000×1000 in its per-line combination: a `maximumf` tree (four
    /// instructions per level for NaN) and a second pass over the lanes.
    fn arg_lane_combine(&mut self, best: &Val, index: &Val, max: bool, high: bool) -> Val {
        let (dx, dk) = (best.ty.dtype, index.ty.dtype);
        let rank = best.ty.rank();
        let kept = best.ty.shape[..rank - 1].to_vec();
        let key_ty = TensorType::new(DType::U64, kept.clone());
        let out_map = (0..rank - 1).map(|i| format!("d{i}")).collect::<Vec<_>>().join(", ");
        let init = self.filled(&key_ty, 0.0, Some(0));
        let reduced: Vec<bool> = (0..rank).map(|i| i + 1 == rank).collect();
        let ins = [best.operand(identity_map(rank)), index.operand(identity_map(rank))];
        let outs = [GenericOperand { value: init, ty: key_ty.clone(), map: out_map }];
        let key = self.e.generic(rank, &reduced, &ins, &outs, |e, a| {
            let rank_bits = arg_order_key(e, &a[0], dx, max);
            let i = if high {
                a[1].clone()
            } else {
                let ones = e.int_const(dk, -1);
                e.bin("arith.xori", &a[1], &ones, "i32")
            };
            let hi = e.cast("arith.extui", &rank_bits, "i32", "i64");
            let c32 = e.int_const(DType::U64, 32);
            let hi = e.bin("arith.shli", &hi, &c32, "i64");
            let lo = e.cast("arith.extui", &i, "i32", "i64");
            let key = e.bin("arith.ori", &hi, &lo, "i64");
            vec![e.bin("arith.maxui", &a[2], &key, "i64")]
        });
        let key = Val { name: key[0].clone(), ty: key_ty };
        let idx_ty = TensorType::new(dk, kept);
        let name = self.elementwise(&[&key], &idx_ty, |e, a| {
            let low = e.cast("arith.trunci", &a[0], "i64", "i32");
            if high {
                low
            } else {
                let ones = e.int_const(dk, -1);
                e.bin("arith.xori", &low, &ones, "i32")
            }
        });
        Val { name, ty: idx_ty }
    }

    /// The lane-wise scan of `argmax`/`argmin` along the last axis of `x`,
    /// `lanes` elements at a time: one generic keeps, per lane, the best
    /// element seen so far and its index in the line (`better`, in index
    /// order), so each element is read and compared about once. Returns the
    /// best values and their indices, `[..., lanes]` each; the caller finds
    /// the best among the lanes and the least (or greatest) index holding
    /// it.
    ///
    /// The lanes start from the line's first chunk (lane `j` from element
    /// `j` and index `j`, the state after seeing that element alone; or,
    /// when it is no better than the start value, −inf for argmax, from the
    /// start value and index 0, which only matters when every element is
    /// that value, and then index 0 is the answer), and
    /// the scan views the line's last `m · lanes` elements as `m` chunks
    /// (`[..., m, lanes]`, `m` the chunks after the first, rounded up).
    /// When `lanes` does not divide the line these overlap the first chunk,
    /// so some elements are seen by two lanes. That changes no answer: each
    /// lane still sees its elements in increasing index order (`j`, then
    /// `s + j`, `s + lanes + j`, … with `s = n − m · lanes > 0`), so it
    /// holds the best of what it saw and the least (greatest) index of that
    /// best among them; the best over the lanes is the line's best, and the
    /// least (greatest) index over the lanes holding it is the line's,
    /// whichever lanes saw it. Tried first: a second scan step over the
    /// line's last chunk (row fusion tiled the first step once per result
    /// of it that the second reads: two scans per row); a padded last chunk
    /// would copy the input.
    fn arg_lane_scan(&mut self, x: &Val, max: bool, high: bool, lanes: usize, dk: DType) -> (Val, Val) {
        let dx = x.ty.dtype;
        let rank = x.ty.rank();
        let n = x.ty.shape[rank - 1];
        let m = n.div_ceil(lanes) - 1;
        let s = n - m * lanes;
        let mut lane_shape = x.ty.shape.clone();
        lane_shape[rank - 1] = lanes;
        let (val_ty, index_ty) = (TensorType::new(dx, lane_shape.clone()), TensorType::new(dk, lane_shape));
        let lane_out = |value: String, ty: &TensorType| GenericOperand { value, ty: ty.clone(), map: identity_map(rank) };

        // The start: the state after each lane's first element (`better`
        // than the start value, or the start value and index 0 as in the
        // scan), one generic of two results. Not a plain copy: that folds
        // away, and the scan then updates a slice of the read-only input
        // in place (a buffer allocated per row); and the comparison makes
        // the starts of an argmax and an argmin of one tensor differ, so
        // CSE does not merge them into one op that two row chains fuse
        // (MLIR 22's `fuse_into_containing_op` crashed on that).
        let first = self.axis_slice(x, rank - 1, 0, lanes);
        let (ve, ie) = (self.e.empty(&val_ty), self.e.empty(&index_ty));
        let (start, start_int) = arg_start(dx, max);
        let outs = [lane_out(ve, &val_ty), lane_out(ie, &index_ty)];
        let start = self.e.generic(rank, &[], &[first.operand(identity_map(rank))], &outs, |e, a| {
            let v = &a[0];
            let none = start_const(e, dx, start, start_int);
            let take = better(e, v, &none, dx, max, high);
            let value = e.select(&take, v, &none, elem(dx));
            let lane = e.op(&format!("linalg.index {} : index", rank - 1));
            let lane = e.index_to(&lane, dk);
            let zero = e.int_const(dk, 0);
            let index = e.select(&take, &lane, &zero, elem(dk));
            vec![value, index]
        });
        let (best, index) = (&start[..1], &start[1..]);

        let rest = self.axis_slice(x, rank - 1, s, m * lanes);
        let mut chunked = x.ty.shape.clone();
        chunked[rank - 1] = m;
        chunked.push(lanes);
        let chunked = TensorType::new(dx, chunked);
        let xc = Val { name: self.reshape(&rest, &chunked), ty: chunked };
        let loops = rank + 1;
        let out_map = (0..loops).filter(|&d| d != rank - 1).map(|d| format!("d{d}")).collect::<Vec<_>>().join(", ");
        let outs = [
            GenericOperand { value: best[0].clone(), ty: val_ty.clone(), map: out_map.clone() },
            GenericOperand { value: index[0].clone(), ty: index_ty.clone(), map: out_map },
        ];
        let reduced: Vec<bool> = (0..loops).map(|d| d == rank - 1).collect();
        let r = self.e.generic(loops, &reduced, &[xc.operand(identity_map(loops))], &outs, |e, a| {
            let (v, best, best_i) = (&a[0], &a[1], &a[2]);
            // The element's index in the line, not its chunk: a chunk is
            // one broadcast per chunk, which LLVM folds into a masked
            // broadcast from a general register per vector, on the port the
            // compares need too (argmax 1024×4096: about 3 cycles per 16
            // elements); the index is a vector add, on either port.
            let c = e.op(&format!("linalg.index {} : index", rank - 1));
            let lane = e.op(&format!("linalg.index {rank} : index"));
            let l = e.op(&format!("arith.constant {lanes} : index"));
            let base = e.bin("arith.muli", &c, &l, "index");
            let i = e.bin("arith.addi", &base, &lane, "index");
            let start = e.op(&format!("arith.constant {s} : index"));
            let i = e.bin("arith.addi", &i, &start, "index");
            let i = e.index_to(&i, dk);
            let take = better(e, v, best, dx, max, high);
            let nv = e.select(&take, v, best, elem(dx));
            let ni = e.select(&take, &i, best_i, elem(dk));
            vec![nv, ni]
        });
        (Val { name: r[0].clone(), ty: val_ty }, Val { name: r[1].clone(), ty: index_ty })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index reduction's tag is the one `tensorc-row-fuse-mark` looks
    /// for; a mismatch would silently leave short rows as scalar loops.
    #[test]
    fn arg_key_is_the_passes_tag() {
        assert_eq!(ARG_KEY, tensorc_passes::reduction_schedule::ARG_KEY);
    }

    /// Four registers of lanes on short lines, a quarter of the registers
    /// on long ones; at least two chunks, more than `ARG_KEY_MAX` elements,
    /// two lines, 32-bit elements, the last axis.
    #[test]
    fn scan_lanes_fit_the_registers() {
        let lanes = |d: DType, shape: &[usize], axis: usize, regs| arg_lanes(&TensorType::new(d, shape.to_vec()), axis, regs);
        let (wide, narrow) = (VectorRegisters::AVX512, VectorRegisters::AVX2);
        assert_eq!(lanes(DType::F32, &[4, 1024], 1, wide), Some(64));
        assert_eq!(lanes(DType::F32, &[4, 1025], 1, wide), Some(128));
        assert_eq!(lanes(DType::F32, &[4, 127], 1, wide), None);
        assert_eq!(lanes(DType::F32, &[4, 128], 1, wide), Some(64));
        assert_eq!(lanes(DType::F32, &[4, 1024], 1, narrow), Some(32));
        assert_eq!(lanes(DType::S32, &[4, 5000], 1, narrow), Some(32));
        assert_eq!(lanes(DType::F32, &[4, 65], 1, narrow), Some(32));
        assert_eq!(lanes(DType::F32, &[4, 64], 1, narrow), None);
        assert_eq!(lanes(DType::F32, &[1, 1000], 1, narrow), None);
        assert_eq!(lanes(DType::F64, &[4, 1000], 1, narrow), None);
        assert_eq!(lanes(DType::F32, &[1000, 4], 0, narrow), None);
    }
}
