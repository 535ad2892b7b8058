//! The tensorc library facade: compile `.nxir` source, run its functions,
//! print any intermediate stage.
//!
//! This crate owns the order of the pipeline (parse and check in
//! `tensorc-ir`, lower in `tensorc-frontend`, the pass pipelines of
//! `tensorc-passes`, code generation in `tensorc-cpu`) and exposes it behind a
//! small API that the CLI and the tests share, so there is exactly one way a
//! program gets compiled and run.

mod aot;
mod array;
mod error;
mod program;

pub use aot::{AotOptions, ArtifactKind, check_cpu, compile_artifacts};
pub use array::{Element, tensor_from_array, tensor_to_array};
pub use error::Error;
pub use program::{Function, Program};
pub use tensorc_cpu::cache::{Cache, CacheStatus};
pub use tensorc_cpu::threads::{num_threads, set_num_threads};
pub use tensorc_ir::{DType, Scalar, SourceFile, Tensor, TensorType};
/// For programs that own their process (the CLI): a fatal LLVM error exits
/// with code 1 and a message instead of aborting (see its docs).
pub use tensorc_mlir::exit_on_llvm_fatal_error;

use std::path::Path;
use std::time::Instant;
use tensorc_cpu::{Mlir, Pipelines, Upto};
use tensorc_mlir::{CodegenOutput, CodegenTarget, PrintOptions};

/// Where a program runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Target {
    /// Native code for the host CPU, JIT-compiled in this process.
    #[default]
    Cpu,
    /// The reference interpreter (no code generation).
    Interp,
    /// SPIR-V kernels dispatched through Vulkan (`tensorc-vulkan`).
    Vulkan,
}

impl Target {
    pub const ALL: [Target; 3] = [Target::Cpu, Target::Interp, Target::Vulkan];

    /// The name used on the command line (`--target interp`).
    pub fn name(self) -> &'static str {
        match self {
            Target::Cpu => "cpu",
            Target::Interp => "interp",
            Target::Vulkan => "vulkan",
        }
    }

    pub fn from_name(s: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == s)
    }
}

#[derive(Clone, Debug, Default)]
pub struct CompileOptions {
    pub target: Target,
    /// CPU threads for parallel loops, the calling thread included. `Some(n)`
    /// sets the process-wide count (`set_num_threads`) when the program is
    /// compiled; `None` leaves it as it is (by default every core, or
    /// `TENSORC_NUM_THREADS`). Results do not depend on it: each output
    /// element is computed by one thread in the same order (docs/library.md).
    pub threads: Option<usize>,
    /// The compile cache of the CPU target (`Cache::Off` by default: the
    /// library writes no file unless asked; the CLI turns it on). See
    /// docs/library.md and `Program::cache_status`.
    pub cache: Cache,
}

/// A stage whose IR `emit` can print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The canonical `.nxir` form, every statement annotated with its type.
    Nxir,
    /// The frontend's MLIR (linalg/tensor/arith/math on tensors), with locations.
    Linalg,
    /// After tensorc's optimization pipeline.
    Opt,
    /// After lowering to the LLVM dialect.
    LlvmDialect,
    /// LLVM IR.
    LlvmIr,
    /// Assembly for the host CPU (after LLVM's `-O3`).
    Asm,
    /// The SPIR-V dialect of the Vulkan kernels (`spirv.module`s, before serialization).
    Spirv,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Nxir,
        Stage::Linalg,
        Stage::Opt,
        Stage::LlvmDialect,
        Stage::LlvmIr,
    ];

    /// The name used on the command line (`--stage llvm-ir`).
    pub fn name(self) -> &'static str {
        match self {
            Stage::Nxir => "nxir",
            Stage::Linalg => "linalg",
            Stage::Opt => "opt",
            Stage::LlvmDialect => "llvm-dialect",
            Stage::LlvmIr => "llvm-ir",
            Stage::Asm => "asm",
            Stage::Spirv => "spirv",
        }
    }

    pub fn from_name(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.name() == s)
    }
}

/// Compiles source text; `file_name` is used in diagnostics and MLIR locations.
pub fn compile_str(file_name: &str, source: &str, opts: &CompileOptions) -> Result<Program, Error> {
    let start = Instant::now();
    let file = SourceFile::new(file_name, source);
    let module = tensorc_ir::check::compile(&file).map_err(Error::Program)?;
    if let Some(n) = opts.threads {
        set_num_threads(n);
    }
    let mut cache_status = CacheStatus::Off;
    let cpu = match opts.target {
        Target::Interp | Target::Vulkan => None,
        Target::Cpu => {
            let text = lower_to_mlir(&module, &file, Some(&CodegenTarget::default()))?;
            // No option changes the generated code (`threads` is a run-time
            // setting), so nothing extra joins the cache key.
            let (m, status) =
                tensorc_cpu::cache::compile(&module, &text, &pipelines(), &opts.cache, "")?;
            cache_status = status;
            Some(m)
        }
    };
    let vulkan = match opts.target {
        Target::Vulkan => {
            let text = lower_to_mlir(&module, &file, None)?;
            Some(
                tensorc_vulkan::compile_module(&module, &text)
                    .map_err(|e| error::from_vulkan(e, &file))?,
            )
        }
        _ => None,
    };
    Ok(Program {
        module,
        file,
        target: opts.target,
        cpu,
        vulkan,
        compile_time: start.elapsed(),
        cache_status,
    })
}

/// Compiles `.nxir` source for Vulkan into a `.tvk` artifact (docs/vulkan.md)
/// and writes it to `out`. No Vulkan device is needed; every function must
/// be supported by the target.
pub fn compile_vulkan_artifact(file_name: &str, source: &str, out: &Path) -> Result<(), Error> {
    let file = SourceFile::new(file_name, source);
    let module = tensorc_ir::check::compile(&file).map_err(Error::Program)?;
    let text = lower_to_mlir(&module, &file, None)?;
    let artifact = tensorc_vulkan::compile_artifact(&module, &text, env!("CARGO_PKG_VERSION"))
        .map_err(|e| error::from_vulkan(e, &file))?;
    std::fs::write(out, artifact.to_bytes()).map_err(|e| Error::Io {
        path: out.to_owned(),
        message: e.to_string(),
    })
}

/// Whether `bytes` are a `.tvk` artifact (judged by its magic bytes).
pub fn is_vulkan_artifact(bytes: &[u8]) -> bool {
    tensorc_vulkan::tvk::is_artifact(bytes)
}

/// Loads a `.tvk` artifact onto the default Vulkan device, with no MLIR and
/// no compilation. The returned `Program` has the artifact's functions and
/// signatures; its `module()` holds signatures only (no graph nodes).
pub fn load_vulkan_artifact(path: &Path) -> Result<Program, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    load_vulkan_artifact_bytes(&path.display().to_string(), &bytes)
}

/// `load_vulkan_artifact` on bytes already read; `name` is used in messages.
pub fn load_vulkan_artifact_bytes(name: &str, bytes: &[u8]) -> Result<Program, Error> {
    let start = Instant::now();
    let artifact = tensorc_vulkan::Artifact::from_bytes(bytes).map_err(|e| Error::Io {
        path: name.into(),
        message: e.to_string(),
    })?;
    let module = tensorc_ir::Module {
        functions: artifact
            .functions
            .iter()
            .map(|f| tensorc_ir::graph::Function {
                name: f.name.clone(),
                params: f.params.clone(),
                result: f.result.clone(),
                nodes: Vec::new(),
                regions: Vec::new(),
                span: tensorc_ir::Span::default(),
            })
            .collect(),
    };
    let file = SourceFile::new(name, "");
    let vulkan = tensorc_vulkan::VulkanModule::from_artifact(artifact)
        .map_err(|e| error::from_vulkan(e, &file))?;
    Ok(Program {
        module,
        file,
        target: Target::Vulkan,
        cpu: None,
        vulkan: Some(vulkan),
        compile_time: start.elapsed(),
        cache_status: CacheStatus::Off,
    })
}

/// Messages the Vulkan validation layer reported in this process (empty
/// unless `TENSORC_VULKAN_VALIDATION=1`); tests require none.
pub fn vulkan_validation_messages() -> Vec<String> {
    tensorc_vulkan::validation_messages()
}

/// Reads and compiles a file.
pub fn compile_file(path: &Path, opts: &CompileOptions) -> Result<Program, Error> {
    let source = read_source(path)?;
    compile_str(&path.display().to_string(), &source, opts)
}

/// The IR of `source` after `stage`, as text, for this machine. MLIR stages
/// after `linalg` are printed without locations so the text does not depend
/// on file paths.
pub fn emit(file_name: &str, source: &str, stage: Stage) -> Result<String, Error> {
    emit_for(file_name, source, stage, Target::Cpu, None)
}

/// `emit` for `target`: for the CPU `cpu` (an LLVM CPU name, as `compile
/// --cpu` takes; `None` or `native` is this machine's), the frontend's and
/// the pipelines' choices made for its vector registers and assembly for
/// it; for Vulkan, the frontend's text as the Vulkan target lowers it
/// (stages `linalg` and `spirv`; `spirv` is Vulkan's whatever `target`).
/// The caller checks the CPU name (`check_cpu`).
pub fn emit_for(
    file_name: &str,
    source: &str,
    stage: Stage,
    target: Target,
    cpu: Option<&str>,
) -> Result<String, Error> {
    let file = SourceFile::new(file_name, source);
    let module = tensorc_ir::check::compile(&file).map_err(Error::Program)?;
    if stage == Stage::Nxir {
        return Ok(tensorc_ir::printer::print_module(&module));
    }
    let vulkan = stage == Stage::Spirv || target == Target::Vulkan;
    let target = CodegenTarget { triple: None, cpu };
    let text = lower_to_mlir(&module, &file, (!vulkan).then_some(&target))?;
    if stage == Stage::Spirv {
        let limits = tensorc_vulkan::Limits::default();
        return tensorc_vulkan::lower::lower(&text, &limits, tensorc_vulkan::Upto::Spirv)
            .map(|(ir, _)| ir)
            .map_err(|e| error::from_vulkan(e, &file));
    }
    let mlir = Mlir::new();
    let upto = match stage {
        Stage::Nxir | Stage::Linalg | Stage::Spirv => Upto::Linalg,
        Stage::Opt => Upto::Opt,
        Stage::LlvmDialect | Stage::LlvmIr | Stage::Asm => Upto::LlvmDialect,
    };
    // Even the frontend's own text goes through the MLIR parser and verifier,
    // so `emit --stage linalg` never shows IR the rest of the pipeline rejects.
    // The stages after `opt` are those of code for the target, as `asm` is.
    let pipelines = pipelines().for_target(&target);
    let m = tensorc_cpu::lower(&mlir, &text, &pipelines, upto)?;
    Ok(match stage {
        Stage::Nxir | Stage::Linalg | Stage::Spirv => text,
        Stage::Opt | Stage::LlvmDialect => mlir.print(&m, PrintOptions::default()),
        Stage::LlvmIr => mlir.translate_to_llvm_ir(&m, "llvm-ir")?,
        Stage::Asm => {
            String::from_utf8_lossy(&mlir.codegen_for(&m, CodegenOutput::Assembly, "asm", &target)?)
                .into_owned()
        }
    })
}

fn read_source(path: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    String::from_utf8(bytes).map_err(|_| Error::Io {
        path: path.to_owned(),
        message: "the file is not valid UTF-8".into(),
    })
}

/// The CPU pass pipelines, owned by `tensorc-passes`.
fn pipelines() -> Pipelines {
    // The pipelines name tensorc's Rust passes, which tensorc-mlir runs by name.
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        use tensorc_passes::{outline_parallel, parallel_mark};
        tensorc_mlir::register_external_pass(parallel_mark::NAME, parallel_mark::create);
        tensorc_mlir::register_external_pass(outline_parallel::NAME, outline_parallel::create);
        use tensorc_passes::row_fuse;
        tensorc_mlir::register_external_pass(row_fuse::NAME, row_fuse::create);
        use tensorc_passes::vector_trig;
        tensorc_mlir::register_external_pass(vector_trig::NAME, vector_trig::create);
        use tensorc_passes::refill_copies;
        tensorc_mlir::register_external_pass(refill_copies::NAME, refill_copies::create);
        use tensorc_passes::flatten_mark;
        tensorc_mlir::register_external_pass(flatten_mark::NAME, flatten_mark::create);
        use tensorc_passes::matvec;
        tensorc_mlir::register_external_pass(matvec::NAME, matvec::create);
        use tensorc_passes::late_accumulate;
        tensorc_mlir::register_external_pass(late_accumulate::NAME, late_accumulate::create);
        use tensorc_passes::drop_zero_fill;
        tensorc_mlir::register_external_pass(drop_zero_fill::NAME, drop_zero_fill::create);
        use tensorc_passes::k_block_ends;
        tensorc_mlir::register_external_pass(k_block_ends::NAME, k_block_ends::create);
        use tensorc_passes::pack_ahead;
        tensorc_mlir::register_external_pass(pack_ahead::NAME, pack_ahead::create);
        use tensorc_passes::unpack_in_place;
        tensorc_mlir::register_external_pass(unpack_in_place::NAME, unpack_in_place::create);
        use tensorc_passes::pack_mark;
        tensorc_mlir::register_external_pass(pack_mark::NAME, pack_mark::create);
        tensorc_mlir::register_external_pass(pack_mark::NAME_AVX2, pack_mark::create_avx2);
        use tensorc_passes::repitch_b;
        tensorc_mlir::register_external_pass(repitch_b::NAME, repitch_b::create);
        use tensorc_passes::read_through_pads;
        tensorc_mlir::register_external_pass(read_through_pads::NAME, read_through_pads::create);
        use tensorc_passes::fill_halo;
        tensorc_mlir::register_external_pass(fill_halo::NAME, fill_halo::create);
        use tensorc_passes::parallel_copies;
        tensorc_mlir::register_external_pass(parallel_copies::NAME, parallel_copies::create);
        use tensorc_passes::running_max;
        tensorc_mlir::register_external_pass(running_max::NAME, running_max::create);
        tensorc_mlir::register_external_pass(tensorc_passes::fused_row_sums::NAME, tensorc_passes::fused_row_sums::create);
        use tensorc_passes::row_skew;
        tensorc_mlir::register_external_pass(row_skew::NAME, row_skew::create);
        use tensorc_passes::fold_partials;
        tensorc_mlir::register_external_pass(fold_partials::NAME, fold_partials::create);
        use tensorc_passes::nd_int_math;
        tensorc_mlir::register_external_pass(nd_int_math::NAME, nd_int_math::create);
        use tensorc_passes::bf16_rounding;
        tensorc_mlir::register_external_pass(bf16_rounding::NAME, bf16_rounding::create);
        use tensorc_passes::bf16_selects;
        tensorc_mlir::register_external_pass(bf16_selects::NAME, bf16_selects::create);
        use tensorc_passes::bf16_wide_extends;
        tensorc_mlir::register_external_pass(bf16_wide_extends::NAME, bf16_wide_extends::create);
        use tensorc_passes::flatten_reductions;
        tensorc_mlir::register_external_pass(flatten_reductions::NAME, flatten_reductions::create);
        use tensorc_passes::vulkan_math_f64;
        tensorc_mlir::register_external_pass(vulkan_math_f64::NAME_CPU, vulkan_math_f64::create_cpu);
        use tensorc_passes::noalias_args;
        tensorc_mlir::register_external_pass(noalias_args::NAME, noalias_args::create);
        use tensorc_passes::bf16_stores;
        tensorc_mlir::register_external_pass(bf16_stores::NAME, bf16_stores::create);
        use tensorc_passes::strided_gather;
        tensorc_mlir::register_external_pass(strided_gather::NAME, strided_gather::create);
        use tensorc_passes::name_contractions;
        tensorc_mlir::register_external_pass(name_contractions::NAME, name_contractions::create);
        use tensorc_passes::pow_by_constant;
        tensorc_mlir::register_external_pass(pow_by_constant::NAME, pow_by_constant::create);
        use tensorc_passes::fuse_elementwise;
        tensorc_mlir::register_external_pass(fuse_elementwise::NAME, fuse_elementwise::create);
        use tensorc_passes::invariant_reductions;
        tensorc_mlir::register_external_pass(invariant_reductions::NAME, invariant_reductions::create);
        use tensorc_passes::scalar_transfers;
        tensorc_mlir::register_external_pass(scalar_transfers::NAME, scalar_transfers::create);
        use tensorc_passes::prefetch_rows;
        tensorc_mlir::register_external_pass(prefetch_rows::NAME, prefetch_rows::create);
        use tensorc_passes::prefetch_stream;
        tensorc_mlir::register_external_pass(prefetch_stream::NAME, prefetch_stream::create);
        use tensorc_passes::stream_stores;
        tensorc_mlir::register_external_pass(stream_stores::NAME, stream_stores::create);
        use tensorc_passes::prefetch_panels;
        tensorc_mlir::register_external_pass(prefetch_panels::NAME, prefetch_panels::create);
        use tensorc_passes::merge_chunks;
        tensorc_mlir::register_external_pass(merge_chunks::NAME, merge_chunks::create);
        use tensorc_passes::lane_per_row;
        tensorc_mlir::register_external_pass(lane_per_row::NAME, lane_per_row::create);
        use tensorc_passes::lane_loads;
        tensorc_mlir::register_external_pass(lane_loads::NAME, lane_loads::create);
        use tensorc_passes::max_tree;
        tensorc_mlir::register_external_pass(max_tree::NAME, max_tree::create);
        use tensorc_passes::ldexp_scale;
        tensorc_mlir::register_external_pass(ldexp_scale::NAME, ldexp_scale::create);
    });
    Pipelines {
        opt: tensorc_passes::pipeline::opt_pipeline().to_owned(),
        lowering: tensorc_passes::pipeline::cpu_lowering_pipeline().to_owned(),
        avx512: tensorc_passes::pipeline::AVX512_LOWERING.to_owned(),
        narrow: tensorc_passes::pipeline::cpu_lowering_pipeline_for(tensorc_passes::pipeline::VectorIsa::Avx2),
    }
}

/// The frontend: typed graph to MLIR text, for the CPU `cpu` (the vector
/// registers it sizes register-resident state for: AVX-512's when the CPU
/// has it, else AVX2's) or, with `None`, for Vulkan (the frontend's default
/// shape). The checker accepted the program, so a lowering failure is
/// tensorc's, reported with the stage name.
fn lower_to_mlir(
    module: &tensorc_ir::Module,
    file: &SourceFile,
    cpu: Option<&CodegenTarget<'_>>,
) -> Result<String, Error> {
    use tensorc_frontend::VectorRegisters;
    let lowered = match cpu {
        None => tensorc_frontend::lower(module, file),
        Some(cpu) if tensorc_mlir::target_has_avx512(cpu) => {
            tensorc_frontend::lower_for(module, file, VectorRegisters::AVX512)
        }
        Some(_) => tensorc_frontend::lower_for(module, file, VectorRegisters::AVX2),
    };
    lowered.map_err(|e| match e {
        tensorc_frontend::LowerError::Unsupported(what) => Error::Unsupported(format!(
            "the {} target cannot compile this program yet: {what}",
            if cpu.is_none() { "Vulkan" } else { "CPU" }
        )),
        tensorc_frontend::LowerError::Internal(msg) => Error::internal("lower", msg),
    })
}

#[cfg(test)]
mod tests;
