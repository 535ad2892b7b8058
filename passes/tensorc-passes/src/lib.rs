//! tensorc's own MLIR pass pipeline definitions and Rust-written passes.
//! Pipelines are strings that both `mlir-opt` and `tensorc-mlir`'s
//! in-process pass manager parse; without the `melior` feature the crate is
//! LLVM-free. With it, it also has the Rust passes (melior external passes:
//! `parallel_mark`, `outline_parallel`), which `tensorc-mlir` runs by name
//! where a pipeline string names them (`register_external_pass`).

pub mod conv_schedule;
pub mod elementwise_schedule;
#[cfg(feature = "melior")]
pub mod drop_zero_fill;
#[cfg(feature = "melior")]
pub mod bf16_rounding;
#[cfg(feature = "melior")]
pub mod bf16_selects;
#[cfg(feature = "melior")]
pub mod bf16_wide_extends;
#[cfg(feature = "melior")]
pub mod bf16_stores;
#[cfg(feature = "melior")]
pub mod nd_int_math;
#[cfg(feature = "melior")]
pub mod fill_halo;
#[cfg(feature = "melior")]
pub mod flatten_mark;
#[cfg(feature = "melior")]
pub mod flatten_reductions;
pub mod flatten_schedule;
#[cfg(feature = "melior")]
pub mod fold_partials;
#[cfg(feature = "melior")]
pub mod fuse_elementwise;
#[cfg(feature = "melior")]
pub mod lane_loads;
#[cfg(feature = "melior")]
pub mod lane_per_row;
pub mod lane_scan_schedule;
#[cfg(feature = "melior")]
pub mod ldexp_scale;
#[cfg(feature = "melior")]
pub mod invariant_reductions;
#[cfg(feature = "melior")]
pub mod k_block_ends;
#[cfg(feature = "melior")]
pub mod late_accumulate;
pub mod matmul_schedule;
#[cfg(feature = "melior")]
pub mod max_tree;
#[cfg(feature = "melior")]
pub mod merge_chunks;
#[cfg(feature = "melior")]
pub mod matvec;
#[cfg(feature = "melior")]
pub mod name_contractions;
#[cfg(feature = "melior")]
pub mod noalias_args;
#[cfg(feature = "melior")]
pub mod outline_parallel;
#[cfg(feature = "melior")]
pub mod parallel_mark;
pub mod packed_matmul;
#[cfg(feature = "melior")]
pub mod pack_ahead;
#[cfg(feature = "melior")]
pub mod pow_by_constant;
#[cfg(feature = "melior")]
pub mod parallel_copies;
pub mod parallel_schedule;
#[cfg(feature = "melior")]
pub mod prefetch_panels;
#[cfg(feature = "melior")]
pub mod prefetch_rows;
#[cfg(feature = "melior")]
pub mod prefetch_stream;
pub mod pipeline;
#[cfg(feature = "melior")]
pub mod read_through_pads;
#[cfg(feature = "melior")]
pub mod stream_stores;
#[cfg(feature = "melior")]
pub mod refill_copies;
pub mod reduction_schedule;
#[cfg(feature = "melior")]
pub mod row_fuse;
#[cfg(feature = "melior")]
pub mod row_skew;
#[cfg(feature = "melior")]
pub mod fused_row_sums;
#[cfg(feature = "melior")]
pub mod running_max;
pub mod row_fuse_schedule;
#[cfg(feature = "melior")]
pub mod scalar_transfers;
#[cfg(feature = "melior")]
pub mod strided_gather;
pub mod transpose_schedule;
#[cfg(feature = "melior")]
pub mod pack_mark;
#[cfg(feature = "melior")]
pub mod repitch_b;
#[cfg(feature = "melior")]
pub mod unpack_in_place;
#[cfg(feature = "melior")]
pub mod vector_trig;
pub mod vulkan_math_f64;
#[cfg(feature = "melior")]
pub mod vulkan_accumulate;
#[cfg(feature = "melior")]
pub mod vulkan_copy;
#[cfg(feature = "melior")]
pub mod vulkan_vec4;
#[cfg(feature = "melior")]
pub mod vulkan_narrow_compares;
#[cfg(feature = "melior")]
pub mod vulkan_zero_divisor;
#[cfg(feature = "melior")]
pub mod vulkan_bf16;
#[cfg(feature = "melior")]
pub mod vulkan_math;
#[cfg(feature = "melior")]
mod external_pass;
#[cfg(feature = "melior")]
mod generic;
#[cfg(feature = "melior")]
mod raw;

pub use pipeline::{cpu_lowering_pipeline, full_cpu_pipeline, opt_pipeline};
