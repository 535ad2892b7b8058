//! `tensorc-fuse-elementwise`: element-wise chains become one
//! `linalg.generic`, in time linear in the chain's length, and splat
//! constant inputs become scalars in the body.
//!
//! Why: the frontend emits one `linalg.generic` per element-wise node, and
//! each intermediate tensor is a buffer written and read again. Upstream's
//! `linalg-fuse-elementwise-ops` fuses them one producer at a time, each
//! time building a new op and cloning both bodies, so a chain of `n` ops
//! costs `n²` cloned ops (1000 chained adds of a constant: 0.47 s, 3000:
//! 4.2 s of `emit --stage opt`); folding a constant input into the body is
//! likewise one new op per constant. This pass grows the chain's last op in
//! place instead: each producer's body ops move (not copy) to the front of
//! its consumer's body, and its inputs become the consumer's block
//! arguments, so each op of the chain is moved once.
//!
//! Which producers: a `linalg.generic` whose loops are all parallel, with
//! one result, used only by one input of a `linalg.generic` in the same
//! block (so nothing else needs the intermediate tensor and the consumer's
//! loop runs exactly as often as the producer's would), whose result map
//! and the consumer's map of that input are both the identity (the
//! producer's loops are the consumer's, so its inputs keep their maps and
//! its `linalg.index`es their meaning), and whose body does not read its
//! output. The fused op must still bound every loop by some operand (a
//! reduction consumer whose other operands do not cover the reduced loop
//! keeps its producer). These are the cases of upstream's fusion with its
//! default control (a producer with one use), restricted to identity maps;
//! upstream's pass runs after this one and fuses what is left (broadcasts,
//! transposes), on ops this one has already made whole.
//!
//! The fused op is the consumer's op, its operands the consumer's inputs
//! before the fused one, the producer's inputs, then the rest, as upstream
//! orders them; its attributes are the consumer's.
//!
//! Constants: an input defined by an `arith.constant` splat of an integer
//! or float (a 0-d tensor operand, or any shape with one repeated value)
//! becomes an `arith.constant` scalar before the op, used in the body
//! instead of the block argument; the operand goes — unless it is the only
//! operand that spans some loop (a sum along an axis of a constant tensor),
//! whose bound would go with it (generated seed 32977). `canonicalize`
//! hoists and merges those constants.

use crate::external_pass::{PassId, module_pass};
use crate::generic::Generic;
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;
use std::collections::HashSet;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-fuse-elementwise";

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Fuse element-wise linalg.generic chains in place and fold splat constant inputs",
        &[DialectHandle::arith()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { fuse_chains(module) };
            true
        },
    )
}

/// What the pass did: producers fused into their consumers, constant
/// inputs folded into bodies.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fused {
    pub producers: usize,
    pub constants: usize,
}

/// Fuses every chain in `module` and folds the constant inputs of the ops
/// left.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn fuse_chains(module: MlirOperation) -> Fused {
    unsafe {
        let mut done = Fused::default();
        // Consumers from the last op back: a producer is fused into the op
        // that ends its chain, and its own producers then follow it there,
        // each moved once. A fused producer is destroyed; it may still be
        // in the list, so it is remembered by address.
        let mut destroyed = HashSet::new();
        for consumer in ops_named(module, "linalg.generic").into_iter().rev() {
            if destroyed.contains(&consumer.ptr) {
                continue;
            }
            while let Some((input, producer)) = fusable_input(consumer) {
                fuse(consumer, input, producer);
                destroyed.insert(producer.ptr);
                done.producers += 1;
            }
            done.constants += fold_splat_inputs(consumer);
        }
        done
    }
}

/// The first input of `consumer` whose producer this pass fuses (see the
/// module comment), with that producer.
unsafe fn fusable_input(consumer: MlirOperation) -> Option<(isize, MlirOperation)> {
    unsafe {
        let c = Generic::of(consumer)?;
        let block = mlirOperationGetBlock(consumer);
        (0..c.inputs).find_map(|i| {
            let v = mlirOperationGetOperand(consumer, i);
            let producer = defined_by(v, "linalg.generic")?;
            let p = Generic::of(producer)?;
            let fusable = mlirOperationGetBlock(producer).ptr == block.ptr
                && mlirOperationGetNumResults(producer) == 1
                && sole_use(v).is_some_and(|(user, n)| user.ptr == consumer.ptr && n == i)
                && mlirAffineMapIsIdentity(c.maps[i as usize])
                && fusable_producer(&p)
                && covers_loops(&c, i, &p);
            fusable.then_some((i, producer))
        })
    }
}

/// All loops parallel, the result's map the identity, the output not read.
unsafe fn fusable_producer(p: &Generic) -> bool {
    unsafe {
        let out = mlirBlockGetArgument(p.block(), p.inputs);
        p.parallel.iter().all(|&x| x)
            && mlirAffineMapIsIdentity(p.maps[p.inputs as usize])
            && mlirValueGetFirstUse(out).ptr.is_null()
    }
}

/// Whether, with input `i` of `c` replaced by `p`'s inputs, every loop of
/// `c` is still indexed by some operand (else its bound would be unknown:
/// a reduced loop only the fused input spanned).
unsafe fn covers_loops(c: &Generic, i: isize, p: &Generic) -> bool {
    unsafe {
        let others = c.maps.iter().enumerate().filter(|&(k, _)| k as isize != i).map(|(_, m)| *m);
        all_loops_indexed(c, others.chain(p.maps[..p.inputs as usize].iter().copied()))
    }
}

/// Whether the operand maps `maps` of a generic with `g`'s loops index
/// every one of its loops by a dimension of their own (the loop bounds come
/// from the operands' sizes there).
unsafe fn all_loops_indexed(g: &Generic, maps: impl Iterator<Item = MlirAffineMap>) -> bool {
    unsafe {
        let loops = mlirAffineMapGetNumDims(g.maps[0]) as usize;
        let mut covered = vec![false; loops];
        for map in maps {
            for r in 0..mlirAffineMapGetNumResults(map) {
                let e = mlirAffineMapGetResult(map, r);
                if mlirAffineExprIsADim(e) {
                    if let Some(slot) = covered.get_mut(mlirAffineDimExprGetPosition(e) as usize) {
                        *slot = true;
                    }
                }
            }
        }
        covered.iter().all(|&x| x)
    }
}

/// Fuses `producer` (which defines input `i` of `consumer`) into
/// `consumer`, in place, and destroys it.
unsafe fn fuse(consumer: MlirOperation, i: isize, producer: MlirOperation) {
    unsafe {
        let c = Generic::of(consumer).expect("checked by fusable_input");
        let p = Generic::of(producer).expect("checked by fusable_input");
        let (c_block, p_block) = (c.block(), p.block());
        // The producer's input arguments go where the fused one was.
        for k in 0..p.inputs {
            let old = mlirBlockGetArgument(p_block, k);
            let new = mlirBlockInsertArgument(c_block, i + k, mlirValueGetType(old), mlirOperationGetLocation(producer));
            mlirValueReplaceAllUsesOfWith(old, new);
        }
        // Its body, without the yield, goes in front of the consumer's.
        let front = mlirBlockGetFirstOperation(c_block);
        let p_ops = block_ops(p_block);
        let (yield_op, body) = p_ops.split_last().expect("a generic's body ends in its yield");
        for &op in body {
            mlirOperationMoveBefore(op, front);
        }
        // The yielded value stands for the fused argument.
        let fused_arg = mlirBlockGetArgument(c_block, i + p.inputs);
        mlirValueReplaceAllUsesOfWith(fused_arg, mlirOperationGetOperand(*yield_op, 0));
        mlirBlockEraseArgument(c_block, (i + p.inputs) as u32);

        let operand = |k: isize| mlirOperationGetOperand(consumer, k);
        let mut inputs: Vec<MlirValue> = (0..i).map(operand).collect();
        inputs.extend((0..p.inputs).map(|k| mlirOperationGetOperand(producer, k)));
        inputs.extend((i + 1..c.inputs).map(operand));
        let mut maps = c.maps[..i as usize].to_vec();
        maps.extend_from_slice(&p.maps[..p.inputs as usize]);
        maps.extend_from_slice(&c.maps[i as usize + 1..c.inputs as usize]);
        c.set_operands(&inputs, &maps);
        mlirOperationDestroy(producer);
    }
}

/// Replaces each input of `op` defined by a splat `arith.constant` of an
/// integer or float by a scalar constant before `op`, unless the op would
/// then lose the bound of a loop only that input indexes (a sum over the
/// axis of a constant tensor); returns how many.
unsafe fn fold_splat_inputs(op: MlirOperation) -> usize {
    unsafe {
        let Some(g) = Generic::of(op) else {
            return 0;
        };
        let block = g.block();
        let mut kept = (Vec::new(), Vec::new());
        let mut folded = Vec::new();
        for k in 0..g.inputs {
            let v = mlirOperationGetOperand(op, k);
            // The maps left if this input goes too: the ones kept so far,
            // the inputs still to see and the outputs.
            let mut rest = kept.1.clone();
            rest.extend_from_slice(&g.maps[k as usize + 1..]);
            match splat_value(v).filter(|_| all_loops_indexed(&g, rest.into_iter())) {
                Some(value) => {
                    let arg = mlirBlockGetArgument(block, k);
                    let ctx = mlirOperationGetContext(op);
                    let loc = mlirOperationGetLocation(mlirOpResultGetOwner(v));
                    let scalar = build(ctx, "arith.constant", loc, &[], &[mlirValueGetType(arg)], &[("value", value)]);
                    mlirValueReplaceAllUsesOfWith(arg, insert_before(op, scalar));
                    folded.push(k);
                }
                None => {
                    kept.0.push(v);
                    kept.1.push(g.maps[k as usize]);
                }
            }
        }
        // Back to front, so the arguments still to erase keep their numbers.
        for &k in folded.iter().rev() {
            mlirBlockEraseArgument(block, k as u32);
        }
        if !folded.is_empty() {
            g.set_operands(&kept.0, &kept.1);
        }
        folded.len()
    }
}

/// The one value of `v` when it is an `arith.constant` splat of integers
/// or floats (as a typed scalar attribute).
unsafe fn splat_value(v: MlirValue) -> Option<MlirAttribute> {
    unsafe {
        // A generic's input is a tensor, so its constant is a dense one.
        let a = constant_scalar(v)?;
        (mlirAttributeIsAFloat(a) || mlirAttributeIsAInteger(a)).then_some(a)
    }
}
