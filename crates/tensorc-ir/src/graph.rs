//! The typed graph: what the checker produces and every back end consumes.
//!
//! One arena of nodes per function; regions (a function body, the body of an
//! `fn` passed to `reduce`/`while`/`cond`) are ordered lists of node ids, so a
//! nested region can use ("capture") any value defined before it in an
//! enclosing region. Every node carries its inferred type and the span of the
//! statement it came from.
//!
//! Like Nx's `Nx.Defn.Expr`, element-wise nodes keep their operands
//! *unbroadcast and unconverted*: the node records the type the operation is
//! computed in (`compute`), and each consumer converts and broadcasts operands
//! to the node's shape itself. Literal operands become synthetic scalar
//! `Constant` nodes whose dtype is already the resolved weak-literal type.

use crate::span::Span;
use crate::types::{DType, TensorType, Type};

/// Index of a node in its function's arena; also the id of the node's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

impl ValueId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Index of a region in its function's region table. Region 0 is the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RegionId(pub u32);

#[derive(Clone, Debug, PartialEq)]
pub struct Module {
    pub functions: Vec<Function>,
}

impl Module {
    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.name == name)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Function {
    pub name: String,
    /// Parameter names and types, in order. Parameter i is the node `Op::Param(i)`
    /// listed in `regions[0].params[i]`.
    pub params: Vec<(String, TensorType)>,
    /// The function's result type: a tensor, or a tuple for `return {a, b}`.
    pub result: Type,
    pub nodes: Vec<Node>,
    pub regions: Vec<Region>,
    pub span: Span,
}

impl Function {
    pub fn node(&self, id: ValueId) -> &Node {
        &self.nodes[id.index()]
    }

    pub fn body(&self) -> &Region {
        &self.regions[0]
    }

    pub fn region(&self, id: RegionId) -> &Region {
        &self.regions[id.0 as usize]
    }

    /// The tensor type of a value; panics on a tuple (checked graphs only ask for tensors).
    pub fn tensor_type(&self, id: ValueId) -> &TensorType {
        self.node(id).ty.as_tensor().expect("value is a tensor")
    }

    /// Results flattened to tensors (what the C ABI and the JIT see).
    pub fn flat_results(&self) -> Vec<TensorType> {
        self.result.flatten()
    }
}

/// An ordered list of nodes with parameters and results.
#[derive(Clone, Debug, PartialEq)]
pub struct Region {
    /// Nodes with `Op::Param(i)`, one per region parameter.
    pub params: Vec<ValueId>,
    /// Every node of this region in definition order (params included first).
    pub nodes: Vec<ValueId>,
    /// The returned values; several when the region returns a tuple `{a, b}`.
    pub results: Vec<ValueId>,
    /// True when the region returned a tuple literal (even of one element).
    pub returns_tuple: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub op: Op,
    pub operands: Vec<ValueId>,
    pub ty: Type,
    /// The SSA name the user wrote; empty for synthetic nodes (inlined literals).
    pub name: String,
    pub span: Span,
}

impl Node {
    /// Synthetic nodes are literal operands the checker materialized; the
    /// printer writes them back inline.
    pub fn is_synthetic(&self) -> bool {
        self.name.is_empty()
    }
}

/// A literal number as written; converted to the node's dtype by consumers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Literal {
    Int(i128),
    Float(f64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    // result type = operand type
    Negate,
    Abs,
    Sign,
    Floor,
    Ceil,
    Round,
    BitwiseNot,
    PopulationCount,
    CountLeadingZeros,
    // result = float type of the operand; the operand is converted first
    Exp,
    Expm1,
    Log,
    Log1p,
    Sigmoid,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Asinh,
    Acosh,
    Atanh,
    Sqrt,
    Rsqrt,
    Cbrt,
    Erf,
    Erfc,
    ErfInv,
    // result u8
    IsNan,
    IsInfinity,
    LogicalNot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Subtract,
    Multiply,
    Pow,
    Remainder,
    Atan2,
    Min,
    Max,
    Quotient,
    Divide,
    BitwiseAnd,
    BitwiseOr,
    BitwiseXor,
    LeftShift,
    RightShift,
    // comparisons and logical ops: result u8
    Equal,
    NotEqual,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    LogicalAnd,
    LogicalOr,
    LogicalXor,
}

impl BinaryOp {
    /// Comparison and logical ops produce `u8` booleans.
    pub fn is_predicate(self) -> bool {
        use BinaryOp::*;
        matches!(
            self,
            Equal | NotEqual | Less | LessEqual | Greater | GreaterEqual | LogicalAnd | LogicalOr | LogicalXor
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceKind {
    Sum,
    Product,
    Max,
    Min,
    All,
    Any,
}

/// The normalized options of one `conv` node (see `Op::Conv`), kept as one
/// value so the interpreter, the lowering and the printer pass it whole
/// instead of each naming nine fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvSpec {
    /// One stride per spatial axis.
    pub strides: Vec<usize>,
    /// (low, high) per spatial axis; negative values crop.
    pub padding: Vec<(i64, i64)>,
    pub input_dilation: Vec<usize>,
    pub kernel_dilation: Vec<usize>,
    pub feature_group_size: usize,
    pub batch_group_size: usize,
    /// For every logical axis (`[batch, channels, spatial…]`), the input axis holding it.
    pub input_permutation: Vec<usize>,
    /// For every logical axis (`[out, in, spatial…]`), the kernel axis holding it.
    pub kernel_permutation: Vec<usize>,
    /// For every logical axis (`[batch, out, spatial…]`), the result axis holding it.
    pub output_permutation: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Parameter `i` of the enclosing region (a function argument or `fn` parameter).
    Param(usize),
    /// A splat of one value to the node's type.
    Constant(Literal),
    /// Literal data in row-major order (already checked to fit the dtype).
    Tensor(Vec<Literal>),
    /// `None`: counts over the flattened tensor; `Some(k)`: the index along axis k.
    Iota(Option<usize>),
    Eye,
    /// One operand; see `UnaryOp` for the result type.
    Unary(UnaryOp),
    /// Two operands, converted to `compute` and broadcast to the node's shape.
    /// For `divide`/`atan2`, `compute` is already the float type.
    Binary { op: BinaryOp, compute: DType },
    /// `select pred, on_true, on_false`: branches converted to `compute`.
    Select { compute: DType },
    /// `clip x, lo, hi`, all converted to `compute`.
    Clip { compute: DType },
    /// Conversion to the node's dtype (Nx's truncate-and-saturate rule).
    AsType,
    /// Bit reinterpretation to the node's dtype (same width).
    Bitcast,
    Reshape,
    /// Axes already normalized (non-negative, sorted).
    Squeeze { axes: Vec<usize> },
    /// `axes[i]` is the output axis of input axis i; output shape is the node's shape.
    Broadcast { axes: Vec<usize> },
    /// Output axis i is input axis `perm[i]`.
    Transpose { perm: Vec<usize> },
    /// Static slice; `starts` already clamped into bounds.
    Slice { starts: Vec<usize>, lengths: Vec<usize>, strides: Vec<usize> },
    /// Operands: x, pad value (scalar, converted to x's dtype). Per axis (low, high, interior).
    Pad { config: Vec<(i64, i64, i64)> },
    Reverse { axes: Vec<usize> },
    /// N operands converted to the node's dtype, joined along `axis`.
    Concatenate { axis: usize },
    /// N operands converted to the node's dtype, stacked on a new `axis`.
    Stack { axis: usize },
    /// Operands a, b converted to the node's dtype. Axes normalized.
    Dot { contract_a: Vec<usize>, batch_a: Vec<usize>, contract_b: Vec<usize>, batch_b: Vec<usize> },
    /// Reduction over sorted `axes`. `sum`/`product`/`reduce_max`/`reduce_min`
    /// convert the operand to the node's dtype first (the aggregate type);
    /// `all`/`any` test the operand for nonzero in its *own* dtype (converting
    /// 256 to the u8 result type first would wrongly make it 0).
    Reduce { kind: ReduceKind, axes: Vec<usize>, keep_axes: bool },
    /// `argmax`/`argmin`: `max` selects which. `axis: None` reduces the flattened tensor.
    ArgReduce { max: bool, axis: Option<usize>, tie_break_high: bool, keep_axis: bool },
    /// Call of another function in the same module, by index.
    Call { function: usize },
    /// One element of a tuple-typed operand.
    Elem { index: usize },
    // ----- F3 (issue 3): scans, sorting, indexing -----
    /// `cumulative_sum|product|max|min x, axis:, reverse:` (`kind` is Sum,
    /// Product, Max or Min); the result has the operand's type.
    Cumulative { kind: ReduceKind, axis: usize, reverse: bool },
    /// Stable sort along `axis`; NaN orders above every number (last
    /// ascending, first descending), -0.0 equals 0.0.
    Sort { axis: usize, descending: bool },
    /// The positions `Sort` takes its elements from, in the node's integer dtype.
    Argsort { axis: usize, descending: bool },
    /// `top_k x, k:` along the last axis: the tuple `{values, s32 indices}`
    /// of the first k elements of a stable descending sort.
    TopK { k: usize },
    /// Operands x, idx (integer). x's shape with `axis` replaced by idx's
    /// shape; indices clamp into range.
    Take { axis: usize },
    /// Operands x, idx (integer, x's rank; other axes broadcast). Clamped.
    TakeAlongAxis { axis: usize },
    /// Operands x, idx (integer, last axis of size `axes.len()`): idx's shape
    /// without its last axis, then x's non-indexed axes. Clamped.
    Gather { axes: Vec<usize> },
    /// Operands x, then one scalar integer tensor per `None` start (tier 2),
    /// in axis order. Static starts are already clamped; dynamic ones clamp
    /// at run time to `[0, dim - length]`.
    DynamicSlice { starts: Vec<Option<usize>>, lengths: Vec<usize>, strides: Vec<usize> },
    /// Operands x, y, then one scalar integer tensor per `None` start. Both
    /// are converted to the node's (merged) dtype; y is written at the
    /// starts, clamped so that it fits.
    PutSlice { starts: Vec<Option<usize>> },
    // ----- F2 (issue 3): convolution and window reductions -----
    /// `conv input, kernel`: both operands converted to the node's (float)
    /// dtype. Options are normalized: one stride, (low, high) padding
    /// (`:same`/`:valid` already resolved; negative crops) and dilation per
    /// spatial axis. Each permutation lists, for every logical axis (input
    /// `[batch, channels, spatial…]`, kernel `[out, in, spatial…]`, output
    /// `[batch, out, spatial…]`), the axis of the actual tensor that holds it.
    Conv(ConvSpec),
    /// `window_sum|product|max|min x, {dims}` (`kind` is Sum, Product, Max or
    /// Min): per axis the window size, stride, (low, high) padding (resolved,
    /// non-negative; padded positions hold the reduction's identity) and
    /// window dilation. The result has the operand's dtype.
    Window { kind: ReduceKind, window: Vec<usize>, strides: Vec<usize>, padding: Vec<(i64, i64)>, dilations: Vec<usize> },
    /// `window_reduce x, init, {dims}, opts…, fn(acc, v) {…}`: operands x and
    /// the scalar init (converted to x's dtype, the result dtype). Options as
    /// for `Window`; padded positions hold init. Each window folds its
    /// elements in row-major window order, starting from init, with the
    /// combiner region `body` (two scalar parameters, element-wise ops only).
    WindowReduce {
        window: Vec<usize>,
        strides: Vec<usize>,
        padding: Vec<(i64, i64)>,
        dilations: Vec<usize>,
        body: RegionId,
    },
    // ----- F1 (issue 3): regions, control flow, general reduce -----
    /// `reduce x, init, axes:, keep_axes:, fn(acc, v) {…}`: operands x and the
    /// scalar init, both converted to the node's dtype. `body` has two scalar
    /// parameters of the node's dtype (accumulator, element) and returns one
    /// scalar, converted to the node's dtype; it holds only element-wise ops on
    /// scalars. Each group of reduced elements is folded in row-major order
    /// starting from init (so init enters every group exactly once). Axes sorted.
    ReduceFn { axes: Vec<usize>, keep_axes: bool, body: RegionId },
    /// `while init, fn(..) {cond}, fn(..) {body}`. The node's type is the state
    /// type: a tuple of tensors, or one tensor. Operands: the tuple literal's
    /// elements, or one operand whose type is the whole state. Both regions take
    /// one parameter per state tensor; `cond` returns a scalar (nonzero
    /// continues), `body` returns the next state.
    While { cond: RegionId, body: RegionId },
    /// `cond p1 -> b1, …, true -> bn`: operands are the n-1 scalar predicates;
    /// `branches` are n regions without parameters, all of the node's type (a
    /// branch written as values is a region with no named statements whose
    /// results are those values). Only the first branch whose predicate is
    /// nonzero (or the last) is evaluated.
    Cond { branches: Vec<RegionId> },
    // ----- F3 (issue 3, tier 2): scatters -----
    /// `indexed_add`/`indexed_put target, indices, updates, axes:` (Nx):
    /// operands target, indices (integer `[n, k]`), updates (`[n, ...w]`);
    /// target and updates are converted to the node's (merged) dtype. Update
    /// i writes its window `w` at `indices[i]` on `axes` (sorted, k of them)
    /// and at offset 0 on the other axes; updates are applied in order (add
    /// accumulates, put keeps the last); an update whose index is out of
    /// range is skipped.
    Indexed { add: bool, axes: Vec<usize> },
    /// `window_scatter_max|min x, source, init, {window}, strides:, padding:`
    /// (Nx select-and-scatter): operands x, source, init (scalar); source and
    /// init are converted to the node's (merged) dtype, the result has x's
    /// shape. x is padded with init (converted to x's dtype); in each window
    /// (one per source element, in row-major order) the selected element is
    /// the last one, in row-major window order, that is >= (max) or <= (min)
    /// every one before it (the first element when comparisons fail, e.g.
    /// on NaN); its source value is added to the result there, which starts
    /// at init everywhere. Selections that land in the padding are dropped.
    WindowScatter { max: bool, window: Vec<usize>, strides: Vec<usize>, padding: Vec<(i64, i64)> },
    // ----- F4 (issue 3, tier 2): linear algebra -----
    /// `triangular_solve a, b` (Nx.LinAlg): operands a (`[..., n, n]`) and b
    /// (a's batch axes, then `[n]`, `[n, m]` when `left_side`, `[m, n]`
    /// otherwise), both converted to the node's float dtype; the result has
    /// b's shape. Solves `op(a) x = b` (`left_side`) or `x op(a) = b`, where
    /// `op(a)` is a or, with `transpose_a`, its transpose; only the lower
    /// (`lower`) or upper triangle of a, diagonal included, is read. A zero
    /// on the diagonal divides by zero (inf/NaN), as in Nx.
    TriangularSolve { left_side: bool, lower: bool, transpose_a: bool },
}
