//! The reference interpreter: plain, obviously correct, the oracle for every test.
//!
//! It walks a checked `graph::Module` node by node, computing each value with
//! Nx's exact semantics (spec §4). Clarity comes first: element-wise ops
//! decode values into wide lanes (`value`), apply one scalar function
//! (`elementwise`) and round back; shape ops are index maps over raw bytes
//! (`layout`); only the costly ops (`contract`: dot, conv and reductions) use
//! typed loops so benchmark-sized programs still finish in seconds.
//! `scan` (window ops, cumulative ops, sort, general reduce), `indexing`
//! (take, gather, take_along_axis, put_slice), `select` (top_k, dynamic
//! slices) and `control` (regions: reduce with a fn, while, cond) cover the
//! rest of spec §4.
//!
//! Architecture Invariant: this crate depends on `tensorc-ir` only, never on
//! MLIR or LLVM, so that the oracle is independent of the compiler it judges.

mod contract;
mod control;
mod elementwise;
mod indexing;
mod layout;
mod linalg;
mod scan;
mod scatter;
mod select;
pub mod special;
mod value;
mod window;

use tensorc_ir::graph::{BinaryOp, Function, Op, RegionId, UnaryOp};
use tensorc_ir::{DType, Module, Tensor, TensorType, Type, ValueId};

use layout::{FILL, gather_bytes, gather_lanes, implicit_broadcast_map, index_map, strides};
use value::{Lanes, convert_tensor, decode, decode_as, encode, literal_value};

/// Why a program could not be run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InterpError {
    #[error("no function named '{0}'")]
    UnknownFunction(String),
    #[error("function '{function}' expects {expected} inputs, got {got}")]
    InputCount { function: String, expected: usize, got: usize },
    #[error("input '{name}' expects {expected}, got {got}")]
    InputType { name: String, expected: TensorType, got: TensorType },
    /// An op the interpreter does not implement (reported, never a crash).
    #[error("unsupported operation in the interpreter: {0}")]
    Unsupported(String),
    /// The graph broke an invariant the checker guarantees: a tensorc bug.
    #[error("internal error in the interpreter: {0}")]
    Internal(String),
}

/// A computed value: a tensor, or a tuple (multi-result calls).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Tensor(Tensor),
    Tuple(Vec<Value>),
}

impl Value {
    fn tensor(&self) -> Result<&Tensor, InterpError> {
        match self {
            Value::Tensor(t) => Ok(t),
            Value::Tuple(_) => Err(InterpError::Internal("a tuple used as a tensor".into())),
        }
    }

    /// Tensors of this value, tuples flattened depth-first.
    fn flatten_into(self, out: &mut Vec<Tensor>) {
        match self {
            Value::Tensor(t) => out.push(t),
            Value::Tuple(vs) => vs.into_iter().for_each(|v| v.flatten_into(out)),
        }
    }
}

/// Runs `function` of `module` on `inputs`; results are flattened (a tuple
/// result gives several tensors). Inputs must match the parameter types exactly.
pub fn run(module: &Module, function: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, InterpError> {
    let index = module
        .functions
        .iter()
        .position(|f| f.name == function)
        .ok_or_else(|| InterpError::UnknownFunction(function.to_string()))?;
    let f = &module.functions[index];
    if inputs.len() != f.params.len() {
        return Err(InterpError::InputCount {
            function: f.name.clone(),
            expected: f.params.len(),
            got: inputs.len(),
        });
    }
    for ((name, ty), t) in f.params.iter().zip(inputs) {
        if t.ty() != ty {
            return Err(InterpError::InputType { name: name.clone(), expected: ty.clone(), got: t.ty().clone() });
        }
    }
    let args = inputs.iter().cloned().map(Value::Tensor).collect();
    let mut out = Vec::new();
    Interp { module, depth: 0 }.call(index, args)?.flatten_into(&mut out);
    Ok(out)
}

/// Calls nest at most this deep; the checker forbids recursion, so hitting it is a bug.
const MAX_CALL_DEPTH: usize = 256;

struct Interp<'m> {
    module: &'m Module,
    depth: usize,
}

/// Values computed so far in one function activation, indexed by node id.
struct Env {
    values: Vec<Option<Value>>,
}

impl Env {
    fn get(&self, id: ValueId) -> Result<&Value, InterpError> {
        self.values
            .get(id.index())
            .and_then(|v| v.as_ref())
            .ok_or_else(|| InterpError::Internal(format!("value %{} used before it is defined", id.0)))
    }

    fn tensor(&self, id: ValueId) -> Result<&Tensor, InterpError> {
        self.get(id)?.tensor()
    }
}

impl Interp<'_> {
    fn call(&self, index: usize, args: Vec<Value>) -> Result<Value, InterpError> {
        if self.depth > MAX_CALL_DEPTH {
            return Err(InterpError::Internal("calls nested too deeply".into()));
        }
        let f = self
            .module
            .functions
            .get(index)
            .ok_or_else(|| InterpError::Internal(format!("call of function #{index}")))?;
        let inner = Interp { module: self.module, depth: self.depth + 1 };
        let mut env = Env { values: vec![None; f.nodes.len()] };
        inner.region(f, RegionId(0), args, &mut env)
    }

    /// Evaluates a region with its parameters bound to `args`; a tuple-returning
    /// region gives a `Value::Tuple`.
    fn region(&self, f: &Function, rid: RegionId, args: Vec<Value>, env: &mut Env) -> Result<Value, InterpError> {
        let r = f
            .regions
            .get(rid.0 as usize)
            .ok_or_else(|| InterpError::Internal(format!("missing region #{}", rid.0)))?;
        if args.len() != r.params.len() {
            return Err(InterpError::Internal(format!("region expects {} arguments", r.params.len())));
        }
        for (&p, a) in r.params.iter().zip(args) {
            env.values[p.index()] = Some(a);
        }
        for &id in &r.nodes {
            if matches!(f.node(id).op, Op::Param(_)) {
                continue;
            }
            // Region-carrying ops (F1) evaluate their regions in this environment.
            let v = if control::is_control(&f.node(id).op) { self.control(f, id, env)? } else { self.node(f, id, env)? };
            env.values[id.index()] = Some(v);
        }
        let results = r.results.iter().map(|&id| env.get(id).cloned()).collect::<Result<Vec<_>, _>>()?;
        if r.returns_tuple {
            Ok(Value::Tuple(results))
        } else {
            results.into_iter().next().ok_or_else(|| InterpError::Internal("region returns nothing".into()))
        }
    }

    fn node(&self, f: &Function, id: ValueId, env: &Env) -> Result<Value, InterpError> {
        let node = f.node(id);
        let ty = match &node.ty {
            Type::Tensor(t) => t.clone(),
            Type::Tuple(_) => {
                return match &node.op {
                    Op::Call { function } => self.call(*function, operands(node, env)?),
                    Op::TopK { k } => {
                        let x = env.tensor(node.operands[0])?;
                        let (v, i) = select::top_k(x, *k)?;
                        Ok(Value::Tuple(vec![Value::Tensor(v), Value::Tensor(i)]))
                    }
                    other => Err(InterpError::Unsupported(format!("tuple-valued {other:?}"))),
                };
            }
        };
        let arg = |i: usize| -> Result<&Tensor, InterpError> {
            let id = node
                .operands
                .get(i)
                .ok_or_else(|| InterpError::Internal(format!("'{}' lacks operand {i}", node.name)))?;
            env.tensor(*id)
        };
        let t = match &node.op {
            Op::Param(_) => return Err(InterpError::Internal("parameter outside a region's parameter list".into())),
            Op::Constant(lit) => {
                let n = ty.num_elements();
                let splat = match literal_value(ty.dtype, *lit) {
                    Lanes::Int(v) => Lanes::Int(vec![v[0]; n]),
                    Lanes::Float(v) => Lanes::Float(vec![v[0]; n]),
                };
                encode(ty.clone(), &splat)?
            }
            Op::Tensor(lits) => {
                let lanes: Vec<Lanes> = lits.iter().map(|l| literal_value(ty.dtype, *l)).collect();
                encode(ty.clone(), &concat_lanes(ty.dtype, &lanes))?
            }
            Op::Iota(axis) => iota(&ty, *axis)?,
            Op::Eye => eye(&ty)?,
            Op::Unary(op) => unary(*op, arg(0)?, ty)?,
            Op::Binary { op, compute } => binary(*op, *compute, arg(0)?, arg(1)?, ty)?,
            Op::Select { compute } => select(arg(0)?, arg(1)?, arg(2)?, *compute, ty)?,
            Op::Clip { compute } => {
                let x = binary(BinaryOp::Max, *compute, arg(0)?, arg(1)?, ty.with_dtype(*compute))?;
                binary(BinaryOp::Min, *compute, &x, arg(2)?, ty)?
            }
            Op::AsType => convert_tensor(arg(0)?, ty.dtype)?.reshaped(ty.shape.clone()).ok_or_else(|| shape_err(&ty))?,
            Op::Bitcast => {
                let x = arg(0)?;
                Tensor::from_bytes(ty, x.bytes()).map_err(|e| InterpError::Internal(e.to_string()))?
            }
            Op::Reshape | Op::Squeeze { .. } => arg(0)?.reshaped(ty.shape.clone()).ok_or_else(|| shape_err(&ty))?,
            Op::Broadcast { axes } => {
                let x = arg(0)?;
                gather_bytes(x, ty.clone(), &layout::broadcast_map(x.shape(), &ty.shape, axes), None)?
            }
            Op::Transpose { perm } => {
                let x = arg(0)?;
                gather_bytes(x, ty, &layout::transpose_map(x.shape(), perm), None)?
            }
            Op::Slice { starts, strides: steps, .. } => select::slice(arg(0)?, starts, steps, ty)?,
            Op::Pad { config } => pad(arg(0)?, arg(1)?, config, ty)?,
            Op::Reverse { axes } => {
                let x = arg(0)?;
                let (st, shape) = (strides(x.shape()), x.shape().to_vec());
                let map = index_map(&ty.shape, |o| {
                    Some((0..o.len()).map(|d| if axes.contains(&d) { shape[d] - 1 - o[d] } else { o[d] } * st[d]).sum())
                });
                gather_bytes(x, ty, &map, None)?
            }
            Op::Concatenate { axis } => {
                let parts = converted_operands(node, env, ty.dtype)?;
                layout::concat_bytes(&parts, *axis, ty)?
            }
            Op::Stack { axis } => {
                // Stacking is concatenation of the operands with a new size-1 axis.
                let parts = converted_operands(node, env, ty.dtype)?
                    .into_iter()
                    .map(|p| {
                        let mut s = p.shape().to_vec();
                        s.insert(*axis, 1);
                        p.reshaped(s).ok_or_else(|| shape_err(&ty))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                layout::concat_bytes(&parts, *axis, ty)?
            }
            Op::Dot { contract_a, batch_a, contract_b, batch_b } => {
                contract::dot(arg(0)?, arg(1)?, contract_a, batch_a, contract_b, batch_b, ty)?
            }
            Op::Reduce { kind, axes, .. } => contract::reduce(*kind, arg(0)?, axes, ty)?,
            Op::ArgReduce { max, axis, tie_break_high, .. } => {
                contract::arg_reduce(*max, arg(0)?, *axis, *tie_break_high, ty)?
            }
            Op::Call { function } => return self.call(*function, operands(node, env)?),
            Op::Elem { index } => {
                let id = node.operands.first().ok_or_else(|| InterpError::Internal("elem without operand".into()))?;
                return match env.get(*id)? {
                    Value::Tuple(vs) => vs
                        .get(*index)
                        .cloned()
                        .ok_or_else(|| InterpError::Internal(format!("elem {index} of a {}-tuple", vs.len()))),
                    Value::Tensor(_) => Err(InterpError::Internal("elem of a tensor".into())),
                };
            }
            // F3 (issue 3): scans, sorting, indexing.
            // F4 (issue 3): linear algebra.
            Op::TriangularSolve { left_side, lower, transpose_a } => {
                linalg::triangular_solve(arg(0)?, arg(1)?, *left_side, *lower, *transpose_a, ty)?
            }
            Op::Indexed { add, axes } => scatter::indexed(arg(0)?, arg(1)?, arg(2)?, axes, *add, ty)?,
            Op::WindowScatter { max, window, strides: steps, padding } => {
                scatter::window_scatter(arg(0)?, arg(1)?, arg(2)?, *max, window, steps, padding, ty)?
            }
            Op::Cumulative { kind, axis, reverse } => scan::cumulative(*kind, arg(0)?, *axis, *reverse, ty)?,
            Op::Sort { axis, descending } => scan::sort(arg(0)?, *axis, *descending, ty)?,
            Op::Argsort { axis, descending } => scan::argsort(arg(0)?, *axis, *descending, ty)?,
            Op::Take { axis } => indexing::take(arg(0)?, arg(1)?, *axis, ty)?,
            Op::TakeAlongAxis { axis } => indexing::take_along_axis(arg(0)?, arg(1)?, *axis, ty)?,
            Op::Gather { axes } => indexing::gather(arg(0)?, arg(1)?, axes, ty)?,
            Op::DynamicSlice { starts, lengths, strides: steps } => {
                let x = arg(0)?;
                let dynamic = (1..node.operands.len()).map(arg).collect::<Result<Vec<_>, _>>()?;
                let begin = select::resolve_starts(starts, &dynamic, x.shape(), lengths)?;
                select::slice(x, &begin, steps, ty)?
            }
            Op::PutSlice { starts } => {
                let (x, y) = (arg(0)?, arg(1)?);
                let dynamic = (2..node.operands.len()).map(arg).collect::<Result<Vec<_>, _>>()?;
                let begin = select::resolve_starts(starts, &dynamic, x.shape(), y.shape())?;
                let begin: Vec<i64> = begin.into_iter().map(|b| b as i64).collect();
                indexing::put_slice(x, &begin, y, ty)?
            }
            // F2 (issue 3): convolution and window reductions.
            Op::Conv(spec) => contract::conv(arg(0)?, arg(1)?, spec, ty)?,
            Op::Window { kind, window, strides, padding, dilations } => {
                scan::window_reduce(*kind, arg(0)?, window, strides, padding, dilations, ty)?
            }
            // `graph::Op` grows as ops are added to the checker; until the
            // interpreter learns a new op it reports it instead of not building.
            #[allow(unreachable_patterns, reason = "catches Op variants added after this match was written")]
            other => return Err(InterpError::Unsupported(format!("{other:?}"))),
        };
        Ok(Value::Tensor(t))
    }
}

fn shape_err(ty: &TensorType) -> InterpError {
    InterpError::Internal(format!("element count does not match {ty}"))
}

fn operands(node: &tensorc_ir::Node, env: &Env) -> Result<Vec<Value>, InterpError> {
    node.operands.iter().map(|&id| env.get(id).cloned()).collect()
}

fn converted_operands(node: &tensorc_ir::Node, env: &Env, d: DType) -> Result<Vec<Tensor>, InterpError> {
    node.operands.iter().map(|&id| convert_tensor(env.tensor(id)?, d)).collect()
}

/// Joins single-value lanes that were all converted to dtype `d`.
fn concat_lanes(d: DType, parts: &[Lanes]) -> Lanes {
    let (mut ints, mut floats) = (Vec::new(), Vec::new());
    for p in parts {
        match p {
            Lanes::Int(v) => ints.extend_from_slice(v),
            Lanes::Float(v) => floats.extend_from_slice(v),
        }
    }
    if d.is_float() { Lanes::Float(floats) } else { Lanes::Int(ints) }
}

/// Counts over the flattened tensor, or the index along one axis.
fn iota(ty: &TensorType, axis: Option<usize>) -> Result<Tensor, InterpError> {
    let mut vals = Vec::with_capacity(ty.num_elements());
    layout::for_each_index(&ty.shape, |flat, idx| {
        vals.push(match axis {
            None => flat,
            Some(a) => idx[a],
        } as i128)
    });
    encode(ty.clone(), &value::convert_lanes(Lanes::Int(vals), DType::S64, ty.dtype))
}

/// 1 where the last two indices agree (batched over leading axes).
fn eye(ty: &TensorType) -> Result<Tensor, InterpError> {
    let r = ty.rank();
    if r < 2 {
        return Err(InterpError::Internal(format!("eye of rank-{r} type {ty}")));
    }
    let mut vals = Vec::with_capacity(ty.num_elements());
    layout::for_each_index(&ty.shape, |_, idx| vals.push((idx[r - 2] == idx[r - 1]) as i128));
    encode(ty.clone(), &value::convert_lanes(Lanes::Int(vals), DType::U8, ty.dtype))
}

/// Decodes `t` converted to `d` and broadcast (numpy rule) to `shape`.
fn lanes_for(t: &Tensor, d: DType, shape: &[usize]) -> Lanes {
    let lanes = decode_as(t, d);
    if t.shape() == shape {
        return lanes;
    }
    // A single value (most often a weak literal) just repeats.
    if t.len() == 1 {
        let n = shape.iter().product();
        return match lanes {
            Lanes::Int(v) => Lanes::Int(vec![v[0]; n]),
            Lanes::Float(v) => Lanes::Float(vec![v[0]; n]),
        };
    }
    gather_lanes(&lanes, &implicit_broadcast_map(t.shape(), shape))
}

fn unsupported(what: &str, op: impl std::fmt::Debug, d: DType) -> InterpError {
    InterpError::Internal(format!("{what} {op:?} on {d}"))
}

fn unary(op: UnaryOp, x: &Tensor, ty: TensorType) -> Result<Tensor, InterpError> {
    use UnaryOp::*;
    let predicate = matches!(op, IsNan | IsInfinity | LogicalNot);
    let lanes = if predicate {
        // Tested on the operand's own values, result u8.
        let b: Option<Vec<bool>> = match decode(x) {
            Lanes::Int(v) => v.into_iter().map(|e| elementwise::predicate_int(op, e)).collect(),
            Lanes::Float(v) => v.into_iter().map(|e| elementwise::predicate_float(op, e)).collect(),
        };
        let b = b.ok_or_else(|| unsupported("unary", op, x.dtype()))?;
        value::convert_lanes(Lanes::Int(b.into_iter().map(|e| e as i128).collect()), DType::U8, ty.dtype)
    } else {
        // Math ops convert to the (float) result type first; the rest keep it.
        let d = ty.dtype;
        let r = match decode_as(x, d) {
            Lanes::Int(v) => v.into_iter().map(|e| elementwise::unary_int(op, d, e)).collect::<Option<Vec<_>>>().map(Lanes::Int),
            Lanes::Float(v) => {
                v.into_iter().map(|e| elementwise::unary_float(op, d, e)).collect::<Option<Vec<_>>>().map(Lanes::Float)
            }
        };
        r.ok_or_else(|| unsupported("unary", op, d))?
    };
    encode(ty, &lanes)
}

fn binary(op: BinaryOp, compute: DType, a: &Tensor, b: &Tensor, ty: TensorType) -> Result<Tensor, InterpError> {
    let (la, lb) = (lanes_for(a, compute, &ty.shape), lanes_for(b, compute, &ty.shape));
    let r = match (la, lb) {
        (Lanes::Int(x), Lanes::Int(y)) => x
            .iter()
            .zip(&y)
            .map(|(&p, &q)| elementwise::binary_int(op, compute, p, q))
            .collect::<Option<Vec<_>>>()
            .map(Lanes::Int),
        (Lanes::Float(x), Lanes::Float(y)) => x
            .iter()
            .zip(&y)
            .map(|(&p, &q)| elementwise::binary_float(op, compute, p, q))
            .collect::<Option<Vec<_>>>()
            .map(Lanes::Float),
        _ => None,
    };
    let r = r.ok_or_else(|| unsupported("binary", op, compute))?;
    // Predicates computed 0/1 in the compute type; the node says u8.
    encode(ty.clone(), &value::convert_lanes(r, compute, ty.dtype))
}

fn select(p: &Tensor, t: &Tensor, f: &Tensor, compute: DType, ty: TensorType) -> Result<Tensor, InterpError> {
    let pred: Vec<bool> = match lanes_for(p, p.dtype(), &ty.shape) {
        Lanes::Int(v) => v.into_iter().map(|e| e != 0).collect(),
        Lanes::Float(v) => v.into_iter().map(|e| e != 0.0).collect(),
    };
    let r = match (lanes_for(t, compute, &ty.shape), lanes_for(f, compute, &ty.shape)) {
        (Lanes::Int(x), Lanes::Int(y)) => Lanes::Int(pred.iter().zip(x.iter().zip(&y)).map(|(&c, (&a, &b))| if c { a } else { b }).collect()),
        (Lanes::Float(x), Lanes::Float(y)) => {
            Lanes::Float(pred.iter().zip(x.iter().zip(&y)).map(|(&c, (&a, &b))| if c { a } else { b }).collect())
        }
        _ => return Err(InterpError::Internal("select branches of mixed kinds".into())),
    };
    encode(ty.clone(), &value::convert_lanes(r, compute, ty.dtype))
}

/// Per axis `(low, high, interior)`: output position o maps to input i when
/// `o - low = i·(interior+1)`; everything else is the pad value. Negative low/high crop.
fn pad(x: &Tensor, v: &Tensor, config: &[(i64, i64, i64)], ty: TensorType) -> Result<Tensor, InterpError> {
    let fill = convert_tensor(v, x.dtype())?;
    if fill.len() != 1 {
        return Err(InterpError::Internal("pad value is not a scalar".into()));
    }
    let (st, shape) = (strides(x.shape()), x.shape().to_vec());
    let map = index_map(&ty.shape, |o| {
        let mut flat = 0usize;
        for d in 0..o.len() {
            let (low, _, interior) = config[d];
            let p = o[d] as i64 - low;
            let step = interior + 1;
            if p < 0 || p % step != 0 || p / step >= shape[d] as i64 {
                return None;
            }
            flat += (p / step) as usize * st[d];
        }
        Some(flat)
    });
    debug_assert!(map.len() == ty.num_elements() && map.iter().all(|&i| i == FILL || i < x.len()));
    gather_bytes(x, ty, &map, Some(fill.bytes()))
}

#[cfg(test)]
mod tests;
