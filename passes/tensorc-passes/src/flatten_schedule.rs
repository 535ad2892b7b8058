//! The transform-dialect step that flattens element-wise ops over short
//! rows into one loop over all their elements.
//!
//! Why: the element-wise schedule tiles an op's last loop by 16 lanes and
//! every outer loop by one, so an op over rows that 16 does not divide runs
//! each row as a narrower vector step (and a remainder step): `tanh` over
//! an NHWC image of 3 channels (8×224×224×3 f32) ran 1.2 million 3-lane
//! steps, 1.35 ms on one thread against NumPy's 0.19. When every operand
//! reads the whole iteration space in the same order (identity maps), the
//! elements are one contiguous run in every operand, and the op is the same
//! op over a single loop: `transform.structured.flatten_elementwise`
//! collapses its operands and loops into one (`tensor.collapse_shape` of
//! each operand, `tensor.expand_shape` of the result), which the
//! element-wise schedule then runs 16 lanes at a time.
//!
//! Which ops: `tensorc-flatten-mark` (`flatten_mark.rs`, Rust: it follows
//! producers and checks maps the match ops cannot) tags them with
//! `FLATTEN`. This library flattens each tagged op (`failures(suppress)`:
//! an op the transform refuses stays as it was). The step runs after row
//! fusion (whose chains' element-wise ops are one-row tiles by then) and
//! before the parallel step, which then chunks the single loop.

/// The entry point of this library (preloaded beside the others; its
/// symbols have the `tensorc_fl_` prefix).
pub const ENTRY: &str = "tensorc_flatten_main";

/// The unit attribute of the ops to flatten.
pub const FLATTEN: &str = "tensorc.flatten";

/// The whole library.
pub fn flatten_schedule() -> String {
    format!(
        "module attributes {{transform.with_named_sequence}} {{\n\
         \x20 transform.named_sequence @tensorc_fl_one(%op: !transform.any_op {{transform.consumed}}) {{\n\
         \x20   %flat = transform.structured.flatten_elementwise %op : (!transform.any_op) -> !transform.any_op\n\
         \x20   transform.yield\n\
         \x20 }}\n\
         \x20 transform.named_sequence @{ENTRY}(%arg0: !transform.any_op) {{\n\
         \x20   %ops = transform.structured.match attributes{{{FLATTEN}}} in %arg0 : (!transform.any_op) -> !transform.any_op\n\
         \x20   transform.foreach %ops : !transform.any_op {{\n\
         \x20   ^bb0(%op: !transform.any_op):\n\
         \x20     transform.include @tensorc_fl_one failures(suppress) (%op) : (!transform.any_op) -> ()\n\
         \x20   }}\n\
         \x20   transform.yield\n\
         \x20 }}\n\
         }}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_each_tagged_op_on_its_own() {
        let s = flatten_schedule();
        assert_eq!(s.matches('{').count(), s.matches('}').count(), "{s}");
        assert!(s.contains(&format!("@{ENTRY}(")), "{s}");
        assert!(s.contains("match attributes{tensorc.flatten}"), "{s}");
        assert!(s.contains("include @tensorc_fl_one failures(suppress)"), "{s}");
    }
}
