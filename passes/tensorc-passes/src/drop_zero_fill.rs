//! `tensorc-drop-zero-fill`: an unpacked matrix product (or a scheduled
//! convolution) whose result starts as zeros writes its register tiles
//! instead of adding them to a zeroed C.
//!
//! Why: the frontend writes `dot` as a `linalg.fill` of zeros and a
//! `linalg.matmul` accumulating into it. The parallel step cuts the two
//! into separate parallel loops, so C was written with zeros in one pass
//! (its own fork-join), and every register tile then read its zeros back
//! to add its sum (`tensorc-late-accumulate`'s `C + Σ`): for
//! 2000×300·2000×2000 that is 16 MiB written and read for nothing against
//! 1.7 GFLOP, for W10's batch 4 MiB against 0.13 GFLOP. Fusing the fill into
//! the tiles is not open to the transform dialect here
//! (`fuse_into_containing_op` cannot follow a tile loop's iter_args to the
//! fill, and after the parallel step the fill reaches the product only as
//! slices of slices), so the two ends are joined by marks instead:
//!
//! 1. On tensors (`mark`, called by `tensorc-pack-mark`, before the packing
//!    and parallel steps): a `linalg.matmul`/`batch_matmul` that is not
//!    packed, whose C is a `linalg.fill` of a zero constant used by nothing
//!    else, with M and N of at least 2 (`tensorc-matvec` rewrites the
//!    others into reductions), or a 2-D or 1-D channels-last convolution
//!    (`CONVS`: the conv schedule's register tiles take C as the initial
//!    accumulator of their tap loops and write it after them; W9 on two
//!    threads ran its fill as a fork-join of its own), gets the
//!    location `tensorc.zero_init.<id>`
//!    wrapped around its own, and the fill the attribute
//!    `tensorc.zero_init = <id>`. Tiling and vectorizing give every op made
//!    from the product that location and every chunk of the fill that
//!    attribute.
//! 2. On buffers (this pass, right after `tensorc-late-accumulate`): for
//!    each id, every op with the location that reads the fill's buffer must
//!    be a register tile's read of C, either added after its k loop (`C + Σ`,
//!    replaced by `Σ`) or the k loop's initial accumulator (replaced by a
//!    zero vector), and there must be as many as writes of that buffer with
//!    the location (one read per tile). Then the reads go and the fills
//!    with the id are erased. Anything else with the location — an
//!    unvectorized `linalg` op (a product the schedules left as loops), a
//!    scalar or other read of C — leaves the id's fills and reads as they
//!    are.
//!
//! Exact up to the sign of zero: `0 + Σ` and `Σ` are the same bits except
//! when every FMA of a tile element rounds to -0.0 (products that underflow:
//! `fma(-1e-30, 1e-30, +0.0)` is -0.0), where `Σ` stays -0.0 and `0 + Σ`
//! was +0.0; the two compare equal (integers are unchanged).

use crate::external_pass::{PassId, module_pass};
use crate::matmul_schedule::{K_BLOCK_ROWS, k_block_tag};
use crate::packed_matmul::PACK;
use crate::parallel_mark::static_shape;
use crate::raw::*;
use melior::pass::Pass;
use mlir_sys::*;
use std::collections::BTreeMap;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = crate::pipeline::DROP_ZERO_FILL;

/// The convolution ops whose fills are marked: the conv schedule's
/// (`conv_schedule::scheduled_ops`) but the depthwise one.
const CONVS: [&str; 2] = ["linalg.conv_2d_nhwc_hwcf", "linalg.conv_1d_nwc_wcf"];

/// The attribute of a fill whose product may skip it: the product's id.
pub const FILL_ATTR: &str = "tensorc.zero_init";

/// The location name of the marked products: this prefix and the id.
const MARKER: &str = "tensorc.zero_init.";

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Drop the zero fill of unpacked products whose tiles then write C instead of adding to it",
        &[],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { drop_fills(module) };
            true
        },
    )
}

/// Step 1, on tensors: marks the products whose zero fill may go and
/// their fills; returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn mark(module: MlirOperation) -> usize {
    unsafe {
        let mut products = ops_named(module, "linalg.matmul");
        products.extend(ops_named(module, "linalg.batch_matmul"));
        // Not depthwise convolutions: their tiles read C back once per
        // filter row, so step 2 would refuse them anyway, and a marked fill
        // is no longer merged with its identical twins (the channels
        // computed apart each fill their products with zeros).
        for name in CONVS {
            products.extend(ops_named(module, name));
        }
        let mut id = 0;
        for op in products {
            // A product cut into K blocks reads C back in every block but
            // the first, with one read per tile in the IR all the same.
            if has_attr(op, PACK)
                || has_attr(op, &k_block_tag(K_BLOCK_ROWS))
                || mlirOperationGetNumOperands(op) != 3
                || mlirOperationGetNumResults(op) != 1
            {
                continue;
            }
            let init = mlirOperationGetOperand(op, 2);
            let Some(fill) = defined_by(init, "linalg.fill") else {
                continue;
            };
            // Products need M, N ≥ 2 (`tensorc-matvec` rewrites the others);
            // a convolution's tiles are register tiles whatever its shape.
            let wide_enough = CONVS.contains(&op_name(op).as_str())
                || static_shape(init).is_some_and(|s| s.len() >= 2 && s[s.len() - 2] >= 2 && s[s.len() - 1] >= 2);
            if sole_use(init).is_none()
                || !wide_enough
                || !is_zero(mlirOperationGetOperand(fill, 0))
            {
                continue;
            }
            let ctx = mlirOperationGetContext(op);
            mlirOperationSetAttributeByName(
                fill,
                string_ref(FILL_ATTR),
                mlirIntegerAttrGet(mlirIntegerTypeGet(ctx, 64), id),
            );
            let loc = mlirOperationGetLocation(op);
            let name = format!("{MARKER}{id}");
            mlirOperationSetLocation(op, mlirLocationNameGet(ctx, string_ref(&name), loc));
            id += 1;
        }
        id as usize
    }
}

/// Whether `v` is a constant zero (+0.0, -0.0 or an integer 0), or a
/// vector of them.
pub(crate) unsafe fn is_zero(v: MlirValue) -> bool {
    unsafe {
        let Some(c) = defined_by(v, "arith.constant") else {
            return false;
        };
        let mut a = mlirOperationGetAttributeByName(c, string_ref("value"));
        if mlirAttributeIsADenseElements(a) {
            if !mlirDenseElementsAttrIsSplat(a) {
                return false;
            }
            a = mlirDenseElementsAttrGetSplatValue(a);
        }
        if mlirAttributeIsAFloat(a) {
            mlirFloatAttrGetValueDouble(a) == 0.0
        } else {
            mlirAttributeIsAInteger(a) && mlirIntegerAttrGetValueInt(a) == 0
        }
    }
}

/// The id in `loc`'s `tensorc.zero_init.<id>` name, looking through fused
/// and nested locations.
unsafe fn marked_id(loc: MlirLocation) -> Option<i64> {
    unsafe {
        let text = print_loc(loc);
        let at = text.find(MARKER)? + MARKER.len();
        let digits: String = text[at..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    }
}

/// The memref `v` is a view of: through subviews and casts.
unsafe fn base(mut v: MlirValue) -> MlirValue {
    unsafe {
        while let Some(op) = defined_by(v, "memref.subview").or_else(|| defined_by(v, "memref.cast")) {
            v = mlirOperationGetOperand(op, 0);
        }
        v
    }
}

/// How one register tile's read of C goes.
pub(crate) enum TileRead {
    /// `read` (maybe widened by `widen`) is added to the k loop's sum by
    /// `add`: its uses take `sum`.
    Added {
        read: MlirOperation,
        widen: Option<MlirOperation>,
        add: MlirOperation,
        sum: MlirValue,
    },
    /// `read` (maybe widened) is operand `operand` of the k loop `lp`, its
    /// initial accumulator: a zero vector takes its place.
    Initial {
        read: MlirOperation,
        widen: Option<MlirOperation>,
        lp: MlirOperation,
        operand: isize,
    },
}

/// `read` as a register tile's read of C, if it is one.
pub(crate) unsafe fn tile_read(read: MlirOperation) -> Option<TileRead> {
    unsafe {
        let (mut user, mut operand) = sole_use(result(read))?;
        let mut widen = None;
        if op_name(user) == "vector.broadcast" {
            widen = Some(user);
            (user, operand) = sole_use(result(user))?;
        }
        match op_name(user).as_str() {
            "arith.addf" | "arith.addi" => {
                let sum = mlirOperationGetOperand(user, 1 - operand);
                let from_loop = mlirValueIsAOpResult(sum)
                    && op_name(mlirOpResultGetOwner(sum)) == "scf.for";
                from_loop.then_some(TileRead::Added { read, widen, add: user, sum })
            }
            // Operands 0–2 are the bounds and the step.
            "scf.for" if operand >= 3 => Some(TileRead::Initial { read, widen, lp: user, operand }),
            _ => None,
        }
    }
}

/// Step 2, on buffers.
unsafe fn drop_fills(module: MlirOperation) {
    unsafe {
        let mut fills: BTreeMap<i64, Vec<MlirOperation>> = BTreeMap::new();
        for f in ops_named(module, "linalg.fill") {
            let a = mlirOperationGetAttributeByName(f, string_ref(FILL_ATTR));
            if !a.ptr.is_null() && mlirAttributeIsAInteger(a) {
                fills.entry(mlirIntegerAttrGetValueInt(a)).or_default().push(f);
            }
        }
        if fills.is_empty() {
            return;
        }
        let mut marked: BTreeMap<i64, Vec<MlirOperation>> = BTreeMap::new();
        walk(module, |op| {
            if let Some(id) = marked_id(mlirOperationGetLocation(op)) {
                marked.entry(id).or_default().push(op);
            }
            MlirWalkResult_MlirWalkResultAdvance
        });
        for (id, fs) in fills {
            let c = base(mlirOperationGetOperand(fs[0], 1));
            if fs.iter().any(|&f| !mlirValueEqual(base(mlirOperationGetOperand(f, 1)), c)) {
                continue;
            }
            let Some(reads) = tile_reads(marked.get(&id).map_or(&[][..], Vec::as_slice), c) else {
                continue;
            };
            for r in reads {
                drop_read(r);
            }
            for f in fs {
                mlirOperationDestroy(f);
            }
        }
    }
}

/// The tile reads of C (`c`) among one product's ops, when every op of it
/// that touches C is one of them, a write, a view or a prefetch, with one
/// read per write. Any other use of C — a `linalg` op, a load, a `memref.copy` of a
/// tile of C into a temporary (how bufferization left some f64 conv tiles,
/// which then read C through the copy: the fill had gone and they read
/// garbage) — keeps the fill.
unsafe fn tile_reads(ops: &[MlirOperation], c: MlirValue) -> Option<Vec<TileRead>> {
    unsafe {
        let (mut reads, mut writes) = (Vec::new(), 0);
        for &op in ops {
            let name = op_name(op);
            if name.starts_with("linalg.") {
                return None;
            }
            let touched: Vec<isize> = (0..mlirOperationGetNumOperands(op))
                .filter(|&i| mlirValueEqual(base(mlirOperationGetOperand(op, i)), c))
                .collect();
            match (name.as_str(), touched.as_slice()) {
                // Views, and the prefetches of C's lines that
                // `tensorc-late-accumulate` puts before a tile's k loop
                // (harmless: the tile writes those lines).
                (_, []) | ("memref.subview" | "memref.cast" | "memref.prefetch", [0]) => {}
                ("vector.transfer_read", [0]) => reads.push(tile_read(op)?),
                ("vector.transfer_write" | "vector.store" | "memref.store", [1]) => writes += 1,
                _ => return None,
            }
        }
        (!reads.is_empty() && reads.len() == writes).then_some(reads)
    }
}

unsafe fn drop_read(r: TileRead) {
    unsafe {
        match r {
            TileRead::Added { read, widen, add, sum } => {
                mlirValueReplaceAllUsesOfWith(result(add), sum);
                mlirOperationDestroy(add);
                erase_read(read, widen);
            }
            TileRead::Initial { read, widen, lp, operand } => {
                let ty = mlirValueGetType(mlirOperationGetOperand(lp, operand));
                let zero = zero_vector_before(lp, ty);
                mlirOperationSetOperand(lp, operand, zero);
                erase_read(read, widen);
            }
        }
    }
}

unsafe fn erase_read(read: MlirOperation, widen: Option<MlirOperation>) {
    unsafe {
        if let Some(w) = widen {
            mlirOperationDestroy(w);
        }
        mlirOperationDestroy(read);
    }
}
