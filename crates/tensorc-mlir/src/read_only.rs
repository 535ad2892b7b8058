//! Marks the tensor arguments of every function read-only for bufferization.
//!
//! One-Shot Bufferize treats function arguments as writable unless they carry
//! `bufferization.writable = false`, so an op such as `tensor.insert_slice
//! ... into %x` on an input would be bufferized *in place*, writing into the
//! caller's input buffer. tensorc's callers pass inputs by shared reference,
//! so that would be a silent soundness bug; marking the arguments makes
//! bufferization copy before any such write instead.

use crate::MlirModule;
use melior::ir::attribute::{ArrayAttribute, AttributeLike, TypeAttribute};
use melior::ir::operation::OperationLike;
use melior::ir::r#type::FunctionType;
use melior::ir::{Attribute, BlockLike, TypeLike};
use melior::{Context, StringRef};

const KEY: &str = "bufferization.writable";

/// Returns how many function arguments were newly marked.
pub(crate) fn mark_tensor_arguments_read_only(
    context: &Context,
    m: &MlirModule<'_>,
) -> Result<usize, String> {
    let mut marked = 0;
    let mut op = m.module.body().first_operation();
    while let Some(func) = op {
        op = func.next_in_block();
        if func.name().as_string_ref().as_str() != Ok("func.func") {
            continue;
        }
        let fty = func
            .attribute("function_type")
            .ok()
            .and_then(|a| TypeAttribute::try_from(a).ok())
            .and_then(|t| FunctionType::try_from(t.value()).ok())
            .ok_or("func.func without a function type")?;
        let existing = func
            .attribute("arg_attrs")
            .ok()
            .and_then(|a| ArrayAttribute::try_from(a).ok());
        let mut dicts = Vec::with_capacity(fty.input_count());
        let mut changed = false;
        for i in 0..fty.input_count() {
            let ty = fty.input(i).map_err(|e| e.to_string())?;
            let old = existing
                .as_ref()
                .and_then(|a| a.element(i).ok())
                .map(|a| a.to_string());
            let old = old.unwrap_or_else(|| "{}".to_owned());
            if ty.is_ranked_tensor() && !old.contains(KEY) {
                changed = true;
                marked += 1;
                let inner = old
                    .trim()
                    .trim_start_matches('{')
                    .trim_end_matches('}')
                    .trim();
                dicts.push(if inner.is_empty() {
                    format!("{{{KEY} = false}}")
                } else {
                    format!("{{{inner}, {KEY} = false}}")
                });
            } else {
                dicts.push(old);
            }
        }
        if !changed {
            continue;
        }
        let text = format!("[{}]", dicts.join(", "));
        let attr = Attribute::parse(context, &text)
            .ok_or_else(|| format!("could not build arg_attrs {text}"))?;
        // SAFETY: `func` is a live op of this module; setting an attribute does
        // not invalidate the iteration (the next op was taken above).
        unsafe {
            mlir_sys::mlirOperationSetAttributeByName(
                func.to_raw(),
                StringRef::new("arg_attrs").to_raw(),
                attr.to_raw(),
            );
        }
    }
    Ok(marked)
}
