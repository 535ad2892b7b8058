//! The frontend's MLIR (linalg on tensors, out-param ABI) to SPIR-V kernels
//! and a host schedule.
//!
//! The route is the one verified in `vulkan-path.md`: bufferize, linalg to
//! parallel loops, tile them into workgroups, map to GPU blocks/threads,
//! outline kernels; then give every `gpu.func` its `spirv.entry_point_abi`,
//! convert to SPIR-V, lower the ABI attributes and deduce the minimal
//! version/capabilities, and serialize each module through
//! `gpu-module-to-binary` (no C++ shim, no subprocess). What is left of each
//! host function is read op by op into a `Schedule`; any host op that is not a
//! buffer allocation, a view, a copy or a kernel launch means part of the
//! program did not become a kernel, and is reported as unsupported.

use crate::Limits;
use crate::VulkanError;
use crate::ir::{self, MemRefInfo};
use crate::schedule::{Buffer, BufferKind, Compiled, Kernel, Schedule, Step};
use mlir_sys::*;
use std::collections::HashMap;
use tensorc_mlir::{Mlir, MlirModule};
use tensorc_passes::{vulkan_accumulate, vulkan_copy, vulkan_vec4};

/// SPIR-V capabilities and extensions the target environment offers; the
/// kernels only declare what `spirv-update-vce` finds they use, and the
/// runtime checks the dtypes against the device's features before running.
const CAPS: &str =
    "Shader,Int64,Int16,Int8,Float64,Float16,StorageBuffer16BitAccess,StorageBuffer8BitAccess";
const EXTS: &str =
    "SPV_KHR_storage_buffer_storage_class,SPV_KHR_16bit_storage,SPV_KHR_8bit_storage";

/// Tensors to loops on memrefs (`vulkan-path.md` §2, step 1, first half),
/// after tensorc's `opt` stage, the CPU's (`tensorc_passes::opt_pipeline`:
/// element-wise fusion, so a chain of element-wise nodes is one kernel, then
/// `eliminate-empty-tensors` with no `cse` before it); copies from or into
/// strided views become parallel loops (`tensorc_passes::vulkan_copy`).
fn loops_pipeline() -> String {
    format!(
        "builtin.module({},\
one-shot-bufferize{{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map}},\
canonicalize,func.func(convert-linalg-to-parallel-loops),{})",
        tensorc_passes::opt_pipeline(),
        vulkan_copy::NAME
    )
}

/// Parallel loops to outlined GPU kernels (second half): first
/// `tensorc-vulkan-accumulate` keeps each reduction loop's output element in
/// a register (an `scf.for` iter_arg) instead of loading and storing it per
/// iteration (`tensorc_passes::vulkan_accumulate`), and
/// `tensorc-vulkan-vec4` makes element-wise loops access their buffers as
/// `vector<4xT>` (`tensorc_passes::vulkan_vec4`); then tiles of
/// `invocations` threads along the first loop dimension, which `wrap` made
/// the row-major innermost one, mapped to thread x.
fn gpu_pipeline(limits: &Limits) -> String {
    format!(
        "builtin.module({},{},func.func(fold-memref-alias-ops,lower-affine,\
scf-parallel-loop-tiling{{parallel-loop-tile-sizes={} no-min-max-bounds}},\
gpu-map-parallel-loops{{mapping-policy=outermost-first}},convert-parallel-loops-to-gpu,\
lower-affine,canonicalize,gpu-launch-sink-index-computations),gpu-kernel-outlining,canonicalize,cse)",
        vulkan_accumulate::NAME,
        vulkan_vec4::NAME,
        limits.invocations
    )
}

/// GPU kernels to SPIR-V. bf16 is first computed in f32, as on the CPU
/// (`math-extend-to-supported-types` for math ops, f16 left to
/// `vulkan_math`; `arith-emulate-unsupported-floats`, every result rounded
/// to bf16 by `tensorc-bf16-rounding`); `arith-expand`
/// writes its conversions out in integer arithmetic, and
/// `tensorc-vulkan-bf16` then stores and moves it as i16, kernels and host
/// functions alike (`tensorc_passes::vulkan_bf16`). `tensorc-vulkan-expand-math`
/// (a Rust pass, run by name) rewrites the math ops with no exact SPIR-V
/// lowering, and `tensorc-vulkan-exact-float` keeps those expansions exact
/// in SPIR-V (`tensorc_passes::vulkan_math`).
fn spirv_pipeline() -> String {
    use tensorc_passes::{bf16_rounding, vulkan_bf16, vulkan_math, vulkan_narrow_compares, vulkan_zero_divisor};
    static REGISTER_MATH: std::sync::Once = std::sync::Once::new();
    REGISTER_MATH.call_once(|| {
        tensorc_mlir::register_external_pass(vulkan_math::NAME, vulkan_math::create);
        tensorc_mlir::register_external_pass(vulkan_math::EXACT_NAME, vulkan_math::create_exact);
        tensorc_mlir::register_external_pass(vulkan_bf16::NAME, vulkan_bf16::create);
        tensorc_mlir::register_external_pass(vulkan_zero_divisor::NAME, vulkan_zero_divisor::create);
        tensorc_mlir::register_external_pass(vulkan_narrow_compares::NAME, vulkan_narrow_compares::create);
        tensorc_mlir::register_external_pass(bf16_rounding::NAME, bf16_rounding::create);
    });
    format!(
        "builtin.module(spirv-attach-target{{module=.* ver=v1.3 caps={CAPS} exts={EXTS} client_api=Vulkan}},\
math-extend-to-supported-types{{extra-types=f16 target-type=f32}},\
arith-emulate-unsupported-floats{{source-types=bf16 target-type=f32}},{},\
{},{},math-expand-ops,arith-expand{{include-bf16=true}},{},\
{},{},convert-math-to-spirv,convert-gpu-to-spirv,{},spirv.module(spirv-lower-abi-attrs,spirv-update-vce))",
        bf16_rounding::NAME,
        vulkan_math::NAME,
        math_f64_pass(),
        vulkan_bf16::NAME,
        vulkan_zero_divisor::NAME,
        vulkan_narrow_compares::NAME,
        vulkan_math::EXACT_NAME
    )
}

/// `tensorc-vulkan-expand-math-f64` (a Rust pass, registered here and run by
/// name): f64 transcendental functions, which GLSL.std.450 lacks, written
/// out in f64 arithmetic before `math-expand-ops` sees them
/// (`tensorc_passes::vulkan_math_f64`).
fn math_f64_pass() -> &'static str {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        tensorc_mlir::register_external_pass(
            tensorc_passes::vulkan_math_f64::NAME,
            tensorc_passes::vulkan_math_f64::create,
        );
    });
    tensorc_passes::vulkan_math_f64::NAME
}

/// Stages `lower` can stop after (for `emit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upto {
    /// GPU kernels on memrefs plus host functions.
    Gpu,
    /// The `spirv.module`s (before serialization).
    Spirv,
    /// Everything: serialized kernels and schedules.
    Binary,
}

/// Runs the pipeline on frontend text. Returns the printed IR of the last
/// stage reached and, for `Upto::Binary`, the compiled program.
pub fn lower(
    mlir_text: &str,
    limits: &Limits,
    upto: Upto,
) -> Result<(String, Option<Compiled>), VulkanError> {
    // The pipelines name tensorc's Rust passes (the `opt` stage's
    // `tensorc-pow-by-constant` too), which tensorc-mlir runs by name.
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        tensorc_mlir::register_external_pass(vulkan_accumulate::NAME, vulkan_accumulate::create);
        tensorc_mlir::register_external_pass(vulkan_vec4::NAME, vulkan_vec4::create);
        tensorc_mlir::register_external_pass(vulkan_copy::NAME, vulkan_copy::create);
        use tensorc_passes::name_contractions;
        tensorc_mlir::register_external_pass(name_contractions::NAME, name_contractions::create);
        use tensorc_passes::pow_by_constant;
        tensorc_mlir::register_external_pass(pow_by_constant::NAME, pow_by_constant::create);
        use tensorc_passes::fuse_elementwise;
        tensorc_mlir::register_external_pass(fuse_elementwise::NAME, fuse_elementwise::create);
        use tensorc_passes::invariant_reductions;
        tensorc_mlir::register_external_pass(invariant_reductions::NAME, invariant_reductions::create);
    });
    let mlir = Mlir::new();
    let mut m = mlir.parse(mlir_text, "lower").map_err(crate::mlir_error)?;
    mlir.mark_tensor_arguments_read_only(&mut m, "lower")
        .map_err(crate::mlir_error)?;
    mlir.run_pipeline(&mut m, &loops_pipeline(), "loops")
        .map_err(legalization)?;
    let printed = mlir.print(&m, tensorc_mlir::PrintOptions { locations: true });
    let (wrapped, runs) = crate::wrap::wrap_host_compute(&printed, limits);
    if std::env::var_os("TENSORC_VULKAN_DEBUG").is_some() {
        eprintln!("{printed}\n---- {runs}\n{wrapped}");
    }
    if runs > 0 {
        m = mlir
            .parse(&wrapped, "wrap-host-compute")
            .map_err(crate::mlir_error)?;
    }
    mlir.run_pipeline(&mut m, &gpu_pipeline(limits), "gpu-lowering")
        .map_err(legalization)?;
    let top = unsafe { mlirModuleGetOperation(m.to_raw()) };
    // The schedule is read before the SPIR-V conversion, which leaves host
    // functions alone but is simpler to reason about on this form.
    let mut kernels: Vec<Kernel> = Vec::new();
    let schedules = read_schedules(top, &mut kernels, limits)?;
    if upto == Upto::Gpu {
        return Ok((mlir.print(&m, Default::default()), None));
    }
    set_entry_point_abis(&mlir, top, &kernels)?;
    mlir.run_pipeline(&mut m, &spirv_pipeline(), "spirv-lowering")
        .map_err(legalization)?;
    if upto == Upto::Spirv {
        return Ok((spirv_text(&mlir, &m, top), None));
    }
    nest_spirv_modules(top)?;
    let text = spirv_text(&mlir, &m, top);
    mlir.run_pipeline(
        &mut m,
        "builtin.module(gpu-module-to-binary)",
        "spirv-serialize",
    )
    .map_err(crate::mlir_error)?;
    read_binaries(top, &mut kernels)?;
    if std::env::var_os("TENSORC_VULKAN_DEBUG").is_some() {
        for s in &schedules {
            eprintln!(
                "schedule of {}: buffers {:?}\n  steps {:?}",
                s.function,
                s.buffers.iter().map(|b| b.bytes).collect::<Vec<_>>(),
                s.steps
            );
        }
    }
    Ok((text, Some(Compiled { kernels, schedules })))
}

/// Just the `spirv.module` ops, printed (what `emit --stage spirv` shows).
fn spirv_text(mlir: &Mlir, m: &MlirModule<'_>, top: MlirOperation) -> String {
    let mut out = String::new();
    for op in ir::body_ops(top, 0) {
        let name = ir::op_name(op);
        let candidates = if name == "gpu.module" {
            ir::body_ops(op, 0)
        } else {
            vec![op]
        };
        for c in candidates {
            if ir::op_name(c) == "spirv.module" {
                out.push_str(&print_op(c));
                out.push('\n');
            }
        }
    }
    if out.is_empty() {
        out = mlir.print(m, Default::default());
    }
    out
}

fn print_op(op: MlirOperation) -> String {
    unsafe extern "C" fn cb(s: MlirStringRef, data: *mut std::ffi::c_void) {
        // SAFETY: `data` is the `Vec<u8>` passed below, alive for the call.
        let out = unsafe { &mut *(data as *mut Vec<u8>) };
        out.extend_from_slice(&ir::bytes(s));
    }
    let mut buf: Vec<u8> = Vec::new();
    // SAFETY: printing a live op into a buffer that outlives the call.
    unsafe {
        let flags = mlirOpPrintingFlagsCreate();
        mlirOperationPrintWithFlags(op, flags, Some(cb), &mut buf as *mut Vec<u8> as *mut _);
        mlirOpPrintingFlagsDestroy(flags);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// A conversion that failed on an op with no SPIR-V lowering is the
/// program's limit on this target, not a tensorc bug: report the op.
fn legalization(e: tensorc_mlir::MlirError) -> VulkanError {
    for d in &e.diagnostics {
        if let Some(rest) = d.message.strip_prefix("failed to legalize operation '")
            && let Some(op) = rest.split('\'').next()
        {
            return VulkanError::UnsupportedOp {
                mlir_op: op.to_owned(),
                what: format!("`{op}`"),
                at: d.location.as_ref().map(crate::file_loc),
            };
        }
    }
    // Any other SPIR-V op the conversion produced but the verifier rejects
    // (e.g. a 32-to-16-bit `spirv.Bitcast` for an f16 conversion): MLIR has
    // no valid Vulkan lowering for the source op.
    for d in &e.diagnostics {
        if let Some(rest) = d.message.strip_prefix("'spirv.") {
            let op = rest.split('\'').next().unwrap_or("?");
            return VulkanError::UnsupportedOp {
                mlir_op: format!("spirv.{op}"),
                what: format!("an operation that converts to an invalid `spirv.{op}`"),
                at: d.location.as_ref().map(crate::file_loc),
            };
        }
    }
    crate::mlir_error(e)
}

fn unsupported(what: String) -> VulkanError {
    VulkanError::Unsupported(what)
}

/// Reads every public host function into a schedule, registering the kernels
/// it launches (in first-launch order) in `kernels`.
/// Per outlined kernel (module, func): argument count, block size and loop
/// bound (`loop_bound::kernel_loop_bound`).
type GpuFuncs =
    HashMap<(String, String), (usize, [u32; 3], (Option<u64>, Option<crate::FileLoc>))>;

fn read_schedules(
    top: MlirOperation,
    kernels: &mut Vec<Kernel>,
    limits: &Limits,
) -> Result<Vec<Schedule>, VulkanError> {
    let ops = ir::body_ops(top, 0);
    // Kernel argument counts and block sizes, by (module, func).
    let mut gpu_funcs: GpuFuncs = HashMap::new();
    let mut globals: HashMap<String, MlirOperation> = HashMap::new();
    for &op in &ops {
        match ir::op_name(op).as_str() {
            "gpu.module" => {
                let module = ir::str_attr(op, "sym_name").unwrap_or_default();
                for f in ir::body_ops(op, 0) {
                    if ir::op_name(f) != "gpu.func" {
                        continue;
                    }
                    let name = ir::str_attr(f, "sym_name").unwrap_or_default();
                    let args = ir::entry_block(f)
                        .map(|b| unsafe { mlirBlockGetNumArguments(b) } as usize)
                        .unwrap_or(0);
                    let bs = ir::attr(f, "known_block_size")
                        .and_then(ir::i32_array)
                        .filter(|v| v.len() == 3)
                        .ok_or_else(|| {
                            VulkanError::Internal(format!(
                                "kernel {module}::{name} has no known block size"
                            ))
                        })?;
                    gpu_funcs.insert(
                        (module.clone(), name),
                        (
                            args,
                            [bs[0] as u32, bs[1] as u32, bs[2] as u32],
                            crate::loop_bound::kernel_loop_bound(f),
                        ),
                    );
                }
            }
            "memref.global" => {
                if let Some(n) = ir::str_attr(op, "sym_name") {
                    globals.insert(n, op);
                }
            }
            _ => {}
        }
    }
    let mut schedules = Vec::new();
    for &op in &ops {
        if ir::op_name(op) != "func.func" || ir::entry_block(op).is_none() {
            continue;
        }
        let name = ir::str_attr(op, "sym_name").unwrap_or_default();
        if ir::str_attr(op, "sym_visibility").as_deref() == Some("private") {
            continue;
        }
        schedules.push(read_schedule(
            op, &name, &gpu_funcs, &globals, kernels, limits,
        )?);
    }
    Ok(schedules)
}

fn read_schedule(
    func: MlirOperation,
    name: &str,
    gpu_funcs: &GpuFuncs,
    globals: &HashMap<String, MlirOperation>,
    kernels: &mut Vec<Kernel>,
    limits: &Limits,
) -> Result<Schedule, VulkanError> {
    let block =
        ir::entry_block(func).ok_or_else(|| VulkanError::Internal("empty function".into()))?;
    let nargs = unsafe { mlirBlockGetNumArguments(block) } as usize;
    let mut r = ScheduleReader {
        gpu_funcs,
        globals,
        kernels,
        limits,
        buffers: Vec::new(),
        values: HashMap::new(),
        scalars: HashMap::new(),
    };
    // Every argument starts as an input; `crate::compile` marks the trailing
    // out-params as outputs from the `def` signature.
    for i in 0..nargs {
        let v = unsafe { mlirBlockGetArgument(block, i as isize) };
        let info = ir::memref_info(ir::value_type(v)).ok_or_else(|| {
            VulkanError::Internal(format!("argument {i} of `{name}` is not a static memref"))
        })?;
        r.values.insert(ir::value_key(v), r.buffers.len());
        r.buffers.push(Buffer {
            kind: BufferKind::Input(i),
            bytes: info.elements * info.elem_bytes,
        });
    }
    let (steps, _) = r.block(func, 0)?;
    // A scalar read on the host that no control step consumed was meant
    // for host computation the schedule cannot run.
    if let Some(s) = r.scalars.values().find(|s| !s.used) {
        return Err(VulkanError::UnsupportedOp {
            mlir_op: ir::op_name(s.op),
            what: "an operation that does not become a data-parallel GPU kernel".to_owned(),
            at: ir::op_location(s.op),
        });
    }
    Ok(Schedule {
        function: name.to_owned(),
        buffers: r.buffers,
        steps,
    })
}

/// A scalar the host reads from a buffer to decide a control step
/// (`%v = memref.load %buf[]`, then `arith.cmpi ne, %v, 0`).
struct HostScalar {
    buffer: usize,
    /// How many steps its block had when it was read: the control step
    /// must follow before any further step could change the buffer.
    at_step: usize,
    op: MlirOperation,
    used: bool,
}

/// The state of reading one host function into a schedule.
struct ScheduleReader<'a> {
    gpu_funcs: &'a GpuFuncs,
    globals: &'a HashMap<String, MlirOperation>,
    kernels: &'a mut Vec<Kernel>,
    limits: &'a Limits,
    buffers: Vec<Buffer>,
    /// Value → buffer.
    values: HashMap<usize, usize>,
    /// Value → the scalar it holds (see `HostScalar`).
    scalars: HashMap<usize, HostScalar>,
}

impl ScheduleReader<'_> {
    fn buffer_of(&self, v: MlirValue, what: &str) -> Result<usize, VulkanError> {
        self.values.get(&ir::value_key(v)).copied().ok_or_else(|| {
            unsupported(format!(
                "{what} uses a buffer computed on the host, which the Vulkan target cannot run"
            ))
        })
    }

    fn new_buffer(&mut self, v: MlirValue, kind: BufferKind, bytes: usize) -> usize {
        self.values.insert(ir::value_key(v), self.buffers.len());
        self.buffers.push(Buffer { kind, bytes });
        self.buffers.len() - 1
    }

    /// The predicate buffer behind a control op's condition `v`, which
    /// must have been read from it right before (no step in between).
    fn predicate(
        &mut self,
        v: MlirValue,
        steps: usize,
        op: MlirOperation,
    ) -> Result<usize, VulkanError> {
        let unsupported_control = || VulkanError::UnsupportedOp {
            mlir_op: ir::op_name(op),
            what: "control flow whose condition is not a scalar read from a buffer".to_owned(),
            at: ir::op_location(op),
        };
        let s = self
            .scalars
            .get_mut(&ir::value_key(v))
            .ok_or_else(unsupported_control)?;
        if s.at_step != steps {
            return Err(unsupported_control());
        }
        s.used = true;
        Ok(s.buffer)
    }

    /// Reads the single block of `op`'s region `region` into steps; also
    /// returns the operands of its terminator (`scf.yield`, `scf.condition`).
    fn block(
        &mut self,
        op: MlirOperation,
        region: isize,
    ) -> Result<(Vec<Step>, Vec<MlirValue>), VulkanError> {
        let mut steps = Vec::new();
        let mut terminator = Vec::new();
        for op in ir::body_ops(op, region) {
            let opname = ir::op_name(op);
            match opname.as_str() {
                "arith.constant" | "memref.dealloc" | "func.return" => {}
                "scf.yield" | "scf.condition" => terminator = ir::operands(op),
                "memref.alloc" | "memref.alloca" => {
                    let r = ir::result(op, 0)
                        .ok_or_else(|| VulkanError::Internal("alloc without result".into()))?;
                    let info = static_memref(r, &opname)?;
                    self.new_buffer(r, BufferKind::Temporary, info.elements * info.elem_bytes);
                }
                "memref.get_global" => {
                    let r = ir::result(op, 0).ok_or_else(|| {
                        VulkanError::Internal("get_global without result".into())
                    })?;
                    let info = static_memref(r, &opname)?;
                    let sym = ir::attr(op, "name")
                        .map(|a| ir::string(unsafe { mlirFlatSymbolRefAttrGetValue(a) }))
                        .unwrap_or_default();
                    let data = self
                        .globals
                        .get(&sym)
                        .and_then(|g| ir::attr(*g, "initial_value"))
                        .and_then(|a| ir::dense_bytes(a, &info))
                        .ok_or_else(|| {
                            unsupported(format!("the constant `{sym}` has no dense initial value"))
                        })?;
                    self.new_buffer(r, BufferKind::Constant(data.clone()), data.len());
                }
                // Views of a whole contiguous buffer: the same device buffer.
                // (`unrealized_conversion_cast`: `tensorc-vulkan-vec4`'s
                // view of a buffer as `vector<4xT>` elements.)
                "memref.collapse_shape"
                | "memref.expand_shape"
                | "memref.cast"
                | "builtin.unrealized_conversion_cast" => {
                    let src = ir::operands(op)[0];
                    let r = ir::result(op, 0)
                        .ok_or_else(|| VulkanError::Internal("view without result".into()))?;
                    let info = static_memref(r, &opname)?;
                    if !info.identity {
                        return Err(unsupported(format!(
                            "a strided view (`{opname}`) of a buffer"
                        )));
                    }
                    let b = self.buffer_of(src, &opname)?;
                    self.values.insert(ir::value_key(r), b);
                }
                "memref.copy" => {
                    let o = ir::operands(op);
                    let (si, di) = (static_memref(o[0], &opname)?, static_memref(o[1], &opname)?);
                    if !si.identity || !di.identity {
                        return Err(unsupported(
                            "a copy between strided views of buffers".to_owned(),
                        ));
                    }
                    let src = self.buffer_of(o[0], &opname)?;
                    let dst = self.buffer_of(o[1], &opname)?;
                    if src != dst {
                        steps.push(Step::Copy {
                            src,
                            dst,
                            bytes: si.elements * si.elem_bytes,
                        });
                    }
                }
                // A scalar the host reads for a control step: recorded, and
                // an error at the end unless a control step consumes it.
                "memref.load"
                    if ir::operands(op).len() == 1
                        && static_memref(ir::operands(op)[0], &opname)
                            .is_ok_and(|i| i.elements == 1 && i.identity) =>
                {
                    let buffer = self.buffer_of(ir::operands(op)[0], &opname)?;
                    let r = ir::result(op, 0)
                        .ok_or_else(|| VulkanError::Internal("load without result".into()))?;
                    self.scalars.insert(
                        ir::value_key(r),
                        HostScalar {
                            buffer,
                            at_step: steps.len(),
                            op,
                            used: false,
                        },
                    );
                }
                // `x != 0` of such a scalar is the same predicate.
                "arith.cmpi"
                    if ir::attr(op, "predicate").is_some_and(|a| unsafe {
                        mlirAttributeIsAInteger(a) && mlirIntegerAttrGetValueInt(a) == 1
                    }) && ir::constant_int(ir::operands(op)[1]) == Some(0)
                        && self
                            .scalars
                            .contains_key(&ir::value_key(ir::operands(op)[0])) =>
                {
                    let src = self
                        .scalars
                        .get_mut(&ir::value_key(ir::operands(op)[0]))
                        .expect("checked in the guard");
                    src.used = true;
                    let (buffer, at_step) = (src.buffer, src.at_step);
                    let r = ir::result(op, 0)
                        .ok_or_else(|| VulkanError::Internal("cmpi without result".into()))?;
                    self.scalars.insert(
                        ir::value_key(r),
                        HostScalar {
                            buffer,
                            at_step,
                            op,
                            used: false,
                        },
                    );
                }
                "scf.if" => {
                    let cond = self.predicate(ir::operands(op)[0], steps.len(), op)?;
                    // Each result (a buffer yielded by either branch) gets a
                    // buffer of its own, which each branch copies into.
                    let nres = unsafe { mlirOperationGetNumResults(op) };
                    let mut results = Vec::new();
                    for i in 0..nres {
                        let r = ir::result(op, i)
                            .ok_or_else(|| VulkanError::Internal("scf.if result".into()))?;
                        let info = static_memref(r, &opname)?;
                        if !info.identity {
                            return Err(unsupported(
                                "a `cond` whose result is a strided view of a buffer".to_owned(),
                            ));
                        }
                        let bytes = info.elements * info.elem_bytes;
                        results.push((self.new_buffer(r, BufferKind::Temporary, bytes), bytes));
                    }
                    let mut branches = Vec::new();
                    for region in 0..2 {
                        let (mut branch, yielded) = self.block(op, region)?;
                        for (&v, &(dst, bytes)) in yielded.iter().zip(&results) {
                            let src = self.buffer_of(v, "a `cond` result")?;
                            branch.push(Step::Copy { src, dst, bytes });
                        }
                        branches.push(branch);
                    }
                    let else_steps = branches.pop().unwrap_or_default();
                    let then_steps = branches.pop().unwrap_or_default();
                    steps.push(Step::If {
                        cond,
                        then_steps,
                        else_steps,
                    });
                }
                // The frontend keeps a while's state in buffers, so the loop
                // carries no values: run the condition's steps, test, body.
                "scf.while"
                    if ir::operands(op).is_empty()
                        && unsafe { mlirOperationGetNumResults(op) } == 0 =>
                {
                    let (cond_steps, cond) = self.block(op, 0)?;
                    let cond = cond.first().copied().ok_or_else(|| {
                        VulkanError::Internal("scf.condition without a condition".into())
                    })?;
                    let cond = self.predicate(cond, cond_steps.len(), op)?;
                    let (body, _) = self.block(op, 1)?;
                    steps.push(Step::While {
                        cond_steps,
                        cond,
                        body,
                    });
                }
                "gpu.launch_func" => {
                    if let Some(step) = self.launch(op)? {
                        steps.push(step);
                    }
                }
                other => {
                    return Err(VulkanError::UnsupportedOp {
                        mlir_op: other.to_owned(),
                        what: "an operation that does not become a data-parallel GPU kernel"
                            .to_owned(),
                        at: ir::op_location(op),
                    });
                }
            }
        }
        Ok((steps, terminator))
    }

    /// A kernel launch as a dispatch (`None` for an empty launch).
    fn launch(&mut self, op: MlirOperation) -> Result<Option<Step>, VulkanError> {
        let (module, entry) = ir::attr(op, "kernel")
            .and_then(ir::symbol_ref)
            .ok_or_else(|| VulkanError::Internal("gpu.launch_func without a kernel symbol".into()))?;
        let (kargs, block_size, ref bound) = *self
            .gpu_funcs
            .get(&(module.clone(), entry.clone()))
            .ok_or_else(|| VulkanError::Internal(format!("no kernel {module}::{entry}")))?;
        let o = ir::operands(op);
        if o.len() != 6 + kargs {
            return Err(VulkanError::Internal(format!(
                "gpu.launch_func of {module}::{entry} has {} operands, expected {}",
                o.len(),
                6 + kargs
            )));
        }
        let mut groups = [0u32; 3];
        for (d, g) in groups.iter_mut().enumerate() {
            let n = ir::constant_int(o[d]).ok_or_else(|| {
                unsupported("a kernel launch whose size is not known at compile time".to_owned())
            })?;
            *g = u32::try_from(n).unwrap_or(u32::MAX);
            if *g > self.limits.max_groups[d] {
                return Err(VulkanError::TooManyWorkgroups(format!(
                    "a kernel needing {n} workgroups in dimension {d}, more than the device allows ({})",
                    self.limits.max_groups[d]
                )));
            }
        }
        let mut bufs = Vec::with_capacity(kargs);
        for &v in &o[6..] {
            if ir::memref_info(ir::value_type(v)).is_none() {
                return Err(unsupported("a kernel with a scalar argument".to_owned()));
            }
            bufs.push(self.buffer_of(v, "a kernel")?);
        }
        let kernel = match self
            .kernels
            .iter()
            .position(|k| k.module == module && k.entry == entry)
        {
            Some(k) => k,
            None => {
                self.kernels.push(Kernel {
                    module,
                    entry,
                    words: Vec::new(),
                    bindings: kargs as u32,
                    workgroup_size: block_size,
                    loop_iterations: bound.0,
                    loop_at: bound.1.clone(),
                });
                self.kernels.len() - 1
            }
        };
        if groups.contains(&0) {
            return Ok(None); // an empty tensor: nothing to run
        }
        Ok(Some(Step::Dispatch {
            kernel,
            groups,
            buffers: bufs,
        }))
    }
}

fn static_memref(v: MlirValue, what: &str) -> Result<MemRefInfo, VulkanError> {
    ir::memref_info(ir::value_type(v)).ok_or_else(|| {
        unsupported(format!(
            "`{what}` of a dynamically shaped or non-numeric buffer"
        ))
    })
}

/// `convert-gpu-to-spirv` needs the workgroup size as an attribute; it is the
/// block size the tiling chose (`known_block_size`).
fn set_entry_point_abis(
    mlir: &Mlir,
    top: MlirOperation,
    kernels: &[Kernel],
) -> Result<(), VulkanError> {
    let ctx = mlir.context().to_raw();
    // `convert-math-to-spirv` looks the target up on an ancestor attribute
    // (it does not read gpu.module targets).
    let env = format!(
        "#spirv.target_env<#spirv.vce<v1.3, [{}], [{}]>, api=Vulkan, #spirv.resource_limits<>>",
        CAPS.replace(',', ", "),
        EXTS.replace(',', ", ")
    );
    let a = ir::parse_attr(ctx, &env)
        .ok_or_else(|| VulkanError::Internal(format!("could not build {env}")))?;
    ir::set_attr(top, "spirv.target_env", a);
    for op in ir::body_ops(top, 0) {
        if ir::op_name(op) != "gpu.module" {
            continue;
        }
        for f in ir::body_ops(op, 0) {
            if ir::op_name(f) != "gpu.func" {
                continue;
            }
            let Some(bs) = ir::attr(f, "known_block_size").and_then(ir::i32_array) else {
                continue;
            };
            let text = format!(
                "#spirv.entry_point_abi<workgroup_size = [{}, {}, {}]>",
                bs[0], bs[1], bs[2]
            );
            let a = ir::parse_attr(ctx, &text)
                .ok_or_else(|| VulkanError::Internal(format!("could not build {text}")))?;
            ir::set_attr(f, "spirv.entry_point_abi", a);
        }
    }
    let _ = kernels;
    Ok(())
}

/// For a Vulkan target `convert-gpu-to-spirv` puts each `spirv.module` next
/// to its `gpu.module`; `gpu-module-to-binary` serializes it only from inside.
fn nest_spirv_modules(top: MlirOperation) -> Result<(), VulkanError> {
    let ops = ir::body_ops(top, 0);
    let gpu_modules: HashMap<String, MlirOperation> = ops
        .iter()
        .filter(|&&o| ir::op_name(o) == "gpu.module")
        .filter_map(|&o| Some((ir::str_attr(o, "sym_name")?, o)))
        .collect();
    for &op in &ops {
        if ir::op_name(op) != "spirv.module" {
            continue;
        }
        let name = ir::str_attr(op, "sym_name").unwrap_or_default();
        let gpu_name = name.strip_prefix("__spv__").unwrap_or(&name);
        let g = gpu_modules.get(gpu_name).ok_or_else(|| {
            VulkanError::Internal(format!("spirv.module @{name} has no gpu.module to go into"))
        })?;
        let block =
            ir::entry_block(*g).ok_or_else(|| VulkanError::Internal("empty gpu.module".into()))?;
        // SAFETY: both ops are live; the spirv.module is detached before it
        // is inserted, and ownership passes to the gpu.module's block.
        unsafe {
            mlirOperationRemoveFromParent(op);
            mlirBlockAppendOwnedOperation(block, op);
        }
    }
    Ok(())
}

fn read_binaries(top: MlirOperation, kernels: &mut [Kernel]) -> Result<(), VulkanError> {
    for op in ir::body_ops(top, 0) {
        if ir::op_name(op) != "gpu.binary" {
            continue;
        }
        let name = ir::str_attr(op, "sym_name").unwrap_or_default();
        let objects = ir::attr(op, "objects")
            .ok_or_else(|| VulkanError::Internal(format!("gpu.binary @{name} has no objects")))?;
        // SAFETY: `objects` is the ArrayAttr of #gpu.object the pass built.
        let bytes = unsafe {
            if !mlirAttributeIsAArray(objects) || mlirArrayAttrGetNumElements(objects) < 1 {
                return Err(VulkanError::Internal(format!(
                    "gpu.binary @{name} is empty"
                )));
            }
            ir::bytes(mlirGPUObjectAttrGetObject(mlirArrayAttrGetElement(
                objects, 0,
            )))
        };
        if bytes.len() % 4 != 0 || bytes.is_empty() {
            return Err(VulkanError::Internal(format!(
                "the SPIR-V of @{name} is {} bytes, not whole words",
                bytes.len()
            )));
        }
        let words: Vec<u32> = bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        for k in kernels.iter_mut().filter(|k| k.module == name) {
            k.words = words.clone();
        }
    }
    if let Some(k) = kernels.iter().find(|k| k.words.is_empty()) {
        return Err(VulkanError::Internal(format!(
            "no SPIR-V was produced for kernel {}",
            k.module
        )));
    }
    Ok(())
}
