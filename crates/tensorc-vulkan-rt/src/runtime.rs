//! The Vulkan runtime on ash: device selection, pipelines, buffers, dispatch.
//!
//! libvulkan is loaded with `dlopen` when the first program is compiled for
//! Vulkan or loaded from a `.tvk` artifact, so tensorc builds and runs (other targets) on machines without a
//! Vulkan loader. One `Gpu` (instance, device, queue) serves the whole
//! process; each `Program` creates its pipelines once, and each function its
//! buffers, descriptor sets and a pre-recorded command buffer on its first
//! call, which later calls only resubmit.
//!
//! Memory is host-visible and coherent (one allocation per buffer): inputs
//! are copied in and results out by the CPU, which is the simplest correct
//! scheme and, on lavapipe and integrated GPUs, also the fastest.

use crate::schedule::{BufferKind, Compiled, Step};
use crate::{Limits, VulkanError};
use ash::vk;
use std::ffi::{CStr, CString, c_void};
use std::sync::{Arc, Mutex, OnceLock};
use tensorc_ir::{DType, Tensor};

/// Environment variable choosing the device: an index into the device list
/// or a case-insensitive substring of the device name.
pub const DEVICE_ENV: &str = "TENSORC_VULKAN_DEVICE";
/// Environment variable enabling the Khronos validation layer (`1`).
pub const VALIDATION_ENV: &str = "TENSORC_VULKAN_VALIDATION";

static VALIDATION: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Validation-layer errors and warnings reported so far in this process
/// (empty unless `TENSORC_VULKAN_VALIDATION=1`).
pub fn validation_messages() -> Vec<String> {
    VALIDATION.lock().map(|v| v.clone()).unwrap_or_default()
}

unsafe extern "system" fn on_validation_message(
    severity: vk::DebugUtilsMessageSeverityFlagsEXT,
    _ty: vk::DebugUtilsMessageTypeFlagsEXT,
    data: *const vk::DebugUtilsMessengerCallbackDataEXT<'_>,
    _user: *mut c_void,
) -> vk::Bool32 {
    if severity.intersects(
        vk::DebugUtilsMessageSeverityFlagsEXT::ERROR
            | vk::DebugUtilsMessageSeverityFlagsEXT::WARNING,
    ) {
        // SAFETY: the layer passes a valid callback-data struct whose message
        // is a NUL-terminated string, alive for the duration of the call.
        let msg = unsafe {
            data.as_ref()
                .filter(|d| !d.p_message.is_null())
                .map(|d| CStr::from_ptr(d.p_message).to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        if let Ok(mut v) = VALIDATION.lock() {
            v.push(msg);
        }
    }
    vk::FALSE
}

fn vkerr(what: &str) -> impl Fn(vk::Result) -> VulkanError + '_ {
    move |e| VulkanError::Vulkan(format!("{what}: {e}"))
}

/// Device features that decide which dtypes can run.
#[derive(Clone, Copy, Debug, Default)]
struct Features {
    float64: bool,
    int64: bool,
    int16: bool,
    float16: bool,
    int8: bool,
    storage16: bool,
    storage8: bool,
}

/// The process-wide Vulkan instance, device and compute queue.
pub struct Gpu {
    _entry: ash::Entry,
    instance: ash::Instance,
    device: ash::Device,
    queue: Mutex<vk::Queue>,
    queue_family: u32,
    memory: vk::PhysicalDeviceMemoryProperties,
    props: vk::PhysicalDeviceLimits,
    name: String,
    /// Loop iterations one invocation may run before the driver ends its
    /// loops silently (`Some(65535)` on lavapipe), `None` when unlimited.
    loop_limit: Option<u64>,
    features: Features,
    _messenger: Option<(ash::ext::debug_utils::Instance, vk::DebugUtilsMessengerEXT)>,
}

// SAFETY: Vulkan handles may be used from any thread; the queue, the only
// object that needs external synchronization here, is behind a mutex.
unsafe impl Send for Gpu {}
unsafe impl Sync for Gpu {}

/// Mesa's llvmpipe (behind lavapipe) ends a shader invocation's loops after
/// this many iterations in total, without reporting it
/// (`LP_MAX_TGSI_LOOP_ITERATIONS`).
const LAVAPIPE_LOOP_LIMIT: u64 = 65535;

/// Whether `pd` is lavapipe: its driver id when the device reports one
/// (Vulkan 1.2), else the device name (`llvmpipe (LLVM ...)`).
fn is_llvmpipe(instance: &ash::Instance, pd: vk::PhysicalDevice, modern: bool, name: &str) -> bool {
    if modern {
        let mut driver = vk::PhysicalDeviceDriverProperties::default();
        let mut p2 = vk::PhysicalDeviceProperties2::default().push_next(&mut driver);
        // SAFETY: a query on a live instance; the chain outlives the call.
        unsafe { instance.get_physical_device_properties2(pd, &mut p2) };
        if driver.driver_id == vk::DriverId::MESA_LLVMPIPE {
            return true;
        }
    }
    name.to_lowercase().contains("llvmpipe")
}

static SHARED: OnceLock<Result<Arc<Gpu>, String>> = OnceLock::new();

impl Gpu {
    /// The process-wide device, created on first use. A missing loader,
    /// driver or device is `VulkanError::NoDriver`.
    pub fn shared() -> Result<Arc<Gpu>, VulkanError> {
        SHARED
            .get_or_init(|| Gpu::create().map(Arc::new).map_err(|e| e.to_string()))
            .clone()
            .map_err(|e| match e.strip_prefix("no Vulkan driver found: ") {
                Some(rest) => VulkanError::NoDriver(rest.to_owned()),
                None => VulkanError::Vulkan(e),
            })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The loop iterations one kernel invocation may run on this device
    /// before the driver silently ends its loops (`None`: no such limit).
    pub fn loop_limit(&self) -> Option<u64> {
        self.loop_limit
    }

    /// Workgroup limits the lowering must respect on this device.
    pub fn limits(&self) -> Limits {
        // The tile lands on thread x or y depending on the loop nest, so it
        // must fit both; powers of two only (the tiling doubles it).
        let max = self
            .props
            .max_compute_work_group_invocations
            .min(self.props.max_compute_work_group_size[0])
            .min(self.props.max_compute_work_group_size[1])
            .max(1);
        let max = 1u32 << (31 - max.leading_zeros());
        Limits {
            invocations: max.min(128),
            max_invocations: max,
            max_groups: self.props.max_compute_work_group_count,
        }
    }

    /// An error naming the dtype and the device when the device cannot
    /// store or compute with `d`.
    pub fn check_dtype(&self, d: DType) -> Result<(), VulkanError> {
        let f = &self.features;
        let missing = match d {
            DType::F64 => (!f.float64).then_some("shaderFloat64"),
            DType::S64 | DType::U64 => (!f.int64).then_some("shaderInt64"),
            // bf16 is stored as its 16 bits and computed in f32
            // (`tensorc_passes::vulkan_bf16`).
            DType::S16 | DType::U16 | DType::BF16 => {
                (!(f.int16 && f.storage16)).then_some("shaderInt16 and storageBuffer16BitAccess")
            }
            DType::F16 => (!(f.float16 && f.storage16))
                .then_some("shaderFloat16 and storageBuffer16BitAccess"),
            DType::S8 | DType::U8 => {
                (!(f.int8 && f.storage8)).then_some("shaderInt8 and storageBuffer8BitAccess")
            }
            DType::S32 | DType::U32 | DType::F32 => None,
        };
        match missing {
            None => Ok(()),
            Some(feature) => Err(VulkanError::DeviceFeature(format!(
                "dtype {} is not supported on Vulkan device '{}' (it needs {feature})",
                d.name(),
                self.name
            ))),
        }
    }

    fn create() -> Result<Gpu, VulkanError> {
        let no_driver = |m: String| VulkanError::NoDriver(m);
        // SAFETY: loading the system's Vulkan loader; its initialisation has
        // no preconditions.
        let entry = unsafe { ash::Entry::load() }
            .map_err(|e| no_driver(format!("could not load libvulkan ({e})")))?;
        let want_validation = std::env::var(VALIDATION_ENV).is_ok_and(|v| v == "1");
        let layer = c"VK_LAYER_KHRONOS_validation";
        let mut layers: Vec<*const i8> = Vec::new();
        let mut exts: Vec<*const i8> = Vec::new();
        if want_validation {
            // SAFETY: plain enumeration through the loaded entry points.
            let available =
                unsafe { entry.enumerate_instance_layer_properties() }.unwrap_or_default();
            if !available
                .iter()
                .any(|l| l.layer_name_as_c_str().is_ok_and(|n| n == layer))
            {
                return Err(VulkanError::Vulkan(format!(
                    "{VALIDATION_ENV}=1 but the layer VK_LAYER_KHRONOS_validation is not installed"
                )));
            }
            layers.push(layer.as_ptr());
            exts.push(ash::ext::debug_utils::NAME.as_ptr());
        }
        let app = vk::ApplicationInfo::default()
            .application_name(c"tensorc")
            .api_version(vk::API_VERSION_1_2);
        let info = vk::InstanceCreateInfo::default()
            .application_info(&app)
            .enabled_layer_names(&layers)
            .enabled_extension_names(&exts);
        // SAFETY: every pointer in `info` outlives the call.
        let instance = unsafe { entry.create_instance(&info, None) }
            .map_err(|e| no_driver(format!("vkCreateInstance failed ({e})")))?;
        let messenger = if want_validation {
            let du = ash::ext::debug_utils::Instance::new(&entry, &instance);
            let mi = vk::DebugUtilsMessengerCreateInfoEXT::default()
                .message_severity(
                    vk::DebugUtilsMessageSeverityFlagsEXT::ERROR
                        | vk::DebugUtilsMessageSeverityFlagsEXT::WARNING,
                )
                .message_type(
                    vk::DebugUtilsMessageTypeFlagsEXT::GENERAL
                        | vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION
                        | vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE,
                )
                .pfn_user_callback(Some(on_validation_message));
            // SAFETY: the callback is a static function; the messenger lives as long as the instance.
            let m = unsafe { du.create_debug_utils_messenger(&mi, None) }
                .map_err(vkerr("vkCreateDebugUtilsMessengerEXT"))?;
            Some((du, m))
        } else {
            None
        };
        // SAFETY: queries on a live instance.
        let devices = unsafe { instance.enumerate_physical_devices() }
            .map_err(|e| no_driver(format!("vkEnumeratePhysicalDevices failed ({e})")))?;
        let mut candidates = Vec::new();
        for (i, &pd) in devices.iter().enumerate() {
            let props = unsafe { instance.get_physical_device_properties(pd) };
            let name = props
                .device_name_as_c_str()
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_default();
            let families = unsafe { instance.get_physical_device_queue_family_properties(pd) };
            let Some(q) = families
                .iter()
                .position(|f| f.queue_flags.contains(vk::QueueFlags::COMPUTE))
            else {
                continue;
            };
            let rank = match props.device_type {
                vk::PhysicalDeviceType::DISCRETE_GPU => 0,
                vk::PhysicalDeviceType::INTEGRATED_GPU => 1,
                vk::PhysicalDeviceType::VIRTUAL_GPU => 2,
                vk::PhysicalDeviceType::CPU => 3,
                _ => 4,
            };
            candidates.push((i, rank, pd, props, name, q as u32));
        }
        if candidates.is_empty() {
            return Err(no_driver("no Vulkan device with a compute queue".into()));
        }
        let chosen = match std::env::var(DEVICE_ENV) {
            Ok(sel) if !sel.is_empty() => {
                let lower = sel.to_lowercase();
                candidates
                    .iter()
                    .find(|c| {
                        sel.parse::<usize>().is_ok_and(|n| n == c.0)
                            || c.4.to_lowercase().contains(&lower)
                    })
                    .ok_or_else(|| {
                        let names: Vec<String> = candidates
                            .iter()
                            .map(|c| format!("{}: {}", c.0, c.4))
                            .collect();
                        VulkanError::Vulkan(format!(
                            "{DEVICE_ENV}={sel} matches no device; the devices are: {}",
                            names.join(", ")
                        ))
                    })?
            }
            _ => candidates
                .iter()
                .min_by_key(|c| (c.1, c.0))
                .expect("non-empty"),
        };
        let (_, _, pd, props, name, queue_family) = chosen.clone();
        // Feature query through the 1.1/1.2 structs (device API ≥ 1.2), else core only.
        let modern = props.api_version >= vk::API_VERSION_1_2;
        let mut f11 = vk::PhysicalDeviceVulkan11Features::default();
        let mut f12 = vk::PhysicalDeviceVulkan12Features::default();
        let mut f2 = vk::PhysicalDeviceFeatures2::default();
        if modern {
            f2 = f2.push_next(&mut f11).push_next(&mut f12);
        }
        unsafe { instance.get_physical_device_features2(pd, &mut f2) };
        let core = f2.features;
        let loop_limit = if is_llvmpipe(&instance, pd, modern, &name) {
            Some(LAVAPIPE_LOOP_LIMIT)
        } else {
            None
        };
        let features = Features {
            float64: core.shader_float64 != 0,
            int64: core.shader_int64 != 0,
            int16: core.shader_int16 != 0,
            float16: modern && f12.shader_float16 != 0,
            int8: modern && f12.shader_int8 != 0,
            storage16: modern && f11.storage_buffer16_bit_access != 0,
            storage8: modern && f12.storage_buffer8_bit_access != 0,
        };
        let enabled_core = vk::PhysicalDeviceFeatures::default()
            .shader_float64(features.float64)
            .shader_int64(features.int64)
            .shader_int16(features.int16);
        let mut e11 = vk::PhysicalDeviceVulkan11Features::default()
            .storage_buffer16_bit_access(features.storage16);
        let mut e12 = vk::PhysicalDeviceVulkan12Features::default()
            .shader_float16(features.float16)
            .shader_int8(features.int8)
            .storage_buffer8_bit_access(features.storage8);
        let priorities = [1.0f32];
        let queues = [vk::DeviceQueueCreateInfo::default()
            .queue_family_index(queue_family)
            .queue_priorities(&priorities)];
        let mut dinfo = vk::DeviceCreateInfo::default()
            .queue_create_infos(&queues)
            .enabled_features(&enabled_core);
        if modern {
            dinfo = dinfo.push_next(&mut e11).push_next(&mut e12);
        }
        // SAFETY: all structs in the chain outlive the call.
        let device =
            unsafe { instance.create_device(pd, &dinfo, None) }.map_err(vkerr("vkCreateDevice"))?;
        let queue = unsafe { device.get_device_queue(queue_family, 0) };
        let memory = unsafe { instance.get_physical_device_memory_properties(pd) };
        Ok(Gpu {
            _entry: entry,
            instance,
            device,
            queue: Mutex::new(queue),
            queue_family,
            memory,
            props: props.limits,
            name,
            loop_limit,
            features,
            _messenger: messenger,
        })
    }

    fn memory_type(&self, bits: u32) -> Option<u32> {
        let want = vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT;
        let types = &self.memory.memory_types[..self.memory.memory_type_count as usize];
        // Prefer memory that is also device-local (integrated GPUs, lavapipe, ReBAR).
        let pick = |extra: vk::MemoryPropertyFlags| {
            types
                .iter()
                .enumerate()
                .position(|(i, t)| bits & (1 << i) != 0 && t.property_flags.contains(want | extra))
                .map(|i| i as u32)
        };
        pick(vk::MemoryPropertyFlags::DEVICE_LOCAL)
            .or_else(|| pick(vk::MemoryPropertyFlags::empty()))
    }
}

/// A host-visible storage buffer, persistently mapped.
struct DeviceBuffer {
    buffer: vk::Buffer,
    memory: vk::DeviceMemory,
    ptr: *mut u8,
    bytes: usize,
}

/// The per-function state created on first call.
struct Instance {
    buffers: Vec<DeviceBuffer>,
    pool: vk::DescriptorPool,
    command_pool: vk::CommandPool,
    /// One recorded command buffer per segment (a maximal run of steps
    /// with no control step in it).
    segments: Vec<vk::CommandBuffer>,
    /// The schedule with its straight-line runs replaced by segments.
    plan: Vec<Node>,
    /// The schedule's buffer sizes (the device buffers are rounded up).
    sizes: Vec<usize>,
    fence: vk::Fence,
}

/// The schedule as the host runs it: segments are submitted (and waited
/// for), control nodes read a predicate buffer in between.
enum Node {
    Segment(usize),
    If {
        cond: usize,
        then_nodes: Vec<Node>,
        else_nodes: Vec<Node>,
    },
    While {
        cond_nodes: Vec<Node>,
        cond: usize,
        body: Vec<Node>,
    },
}

/// Splits `steps` at control steps: each maximal run of dispatches and
/// copies becomes a segment (appended to `segments`), each control step a
/// node over its own split step lists.
fn plan<'a>(steps: &'a [Step], segments: &mut Vec<Vec<&'a Step>>) -> Vec<Node> {
    let mut nodes = Vec::new();
    let mut open: Vec<&'a Step> = Vec::new();
    let close =
        |open: &mut Vec<&'a Step>, nodes: &mut Vec<Node>, segments: &mut Vec<Vec<&'a Step>>| {
            if !open.is_empty() {
                nodes.push(Node::Segment(segments.len()));
                segments.push(std::mem::take(open));
            }
        };
    for step in steps {
        match step {
            Step::Dispatch { .. } | Step::Copy { .. } => open.push(step),
            Step::If {
                cond,
                then_steps,
                else_steps,
            } => {
                close(&mut open, &mut nodes, segments);
                let then_nodes = plan(then_steps, segments);
                let else_nodes = plan(else_steps, segments);
                nodes.push(Node::If {
                    cond: *cond,
                    then_nodes,
                    else_nodes,
                });
            }
            Step::While {
                cond_steps,
                cond,
                body,
            } => {
                close(&mut open, &mut nodes, segments);
                let cond_nodes = plan(cond_steps, segments);
                let body = plan(body, segments);
                nodes.push(Node::While {
                    cond_nodes,
                    cond: *cond,
                    body,
                });
            }
        }
    }
    close(&mut open, &mut nodes, segments);
    nodes
}

struct Pipeline {
    module: vk::ShaderModule,
    set_layout: vk::DescriptorSetLayout,
    layout: vk::PipelineLayout,
    pipeline: vk::Pipeline,
}

/// A compiled module on one device: its pipelines (created once) and, per
/// function, the buffers and command buffer of its first call (reused).
pub struct Program {
    gpu: Arc<Gpu>,
    compiled: Compiled,
    pipelines: Vec<Pipeline>,
    instances: Vec<Mutex<Option<Instance>>>,
}

// SAFETY: the raw mapped pointers are only touched under the instance mutex.
unsafe impl Send for Program {}
unsafe impl Sync for Program {}

impl Program {
    pub fn new(gpu: &Arc<Gpu>, compiled: Compiled) -> Result<Program, VulkanError> {
        let d = &gpu.device;
        let mut program = Program {
            gpu: gpu.clone(),
            instances: compiled
                .schedules
                .iter()
                .map(|_| Mutex::new(None))
                .collect(),
            compiled: Compiled::default(),
            pipelines: Vec::new(),
        };
        for k in &compiled.kernels {
            let bindings: Vec<vk::DescriptorSetLayoutBinding> = (0..k.bindings)
                .map(|b| {
                    vk::DescriptorSetLayoutBinding::default()
                        .binding(b)
                        .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                        .descriptor_count(1)
                        .stage_flags(vk::ShaderStageFlags::COMPUTE)
                })
                .collect();
            // SAFETY (this block): creation calls on a live device with
            // create-infos whose pointers outlive each call; every object is
            // recorded in `pipelines` and destroyed in Drop.
            unsafe {
                let module = d
                    .create_shader_module(
                        &vk::ShaderModuleCreateInfo::default().code(&k.words),
                        None,
                    )
                    .map_err(vkerr("vkCreateShaderModule"))?;
                let set_layout = d
                    .create_descriptor_set_layout(
                        &vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings),
                        None,
                    )
                    .map_err(vkerr("vkCreateDescriptorSetLayout"))?;
                let layouts = [set_layout];
                let layout = d
                    .create_pipeline_layout(
                        &vk::PipelineLayoutCreateInfo::default().set_layouts(&layouts),
                        None,
                    )
                    .map_err(vkerr("vkCreatePipelineLayout"))?;
                let entry = CString::new(k.entry.clone())
                    .map_err(|_| VulkanError::Internal("entry name with NUL".into()))?;
                let stage = vk::PipelineShaderStageCreateInfo::default()
                    .stage(vk::ShaderStageFlags::COMPUTE)
                    .module(module)
                    .name(&entry);
                let info = vk::ComputePipelineCreateInfo::default()
                    .stage(stage)
                    .layout(layout);
                let pipeline = d
                    .create_compute_pipelines(vk::PipelineCache::null(), &[info], None)
                    .map_err(|(_, e)| {
                        VulkanError::Vulkan(format!("vkCreateComputePipelines: {e}"))
                    })?[0];
                program.pipelines.push(Pipeline {
                    module,
                    set_layout,
                    layout,
                    pipeline,
                });
            }
        }
        program.compiled = compiled;
        Ok(program)
    }

    /// Runs function `name` (arguments already checked against its signature).
    pub fn run(
        &self,
        name: &str,
        inputs: &[&Tensor],
        outputs: &mut [Tensor],
    ) -> Result<(), VulkanError> {
        let index = self
            .compiled
            .schedules
            .iter()
            .position(|s| s.function == name)
            .ok_or_else(|| VulkanError::Args(format!("no function named '{name}'")))?;
        self.check_loop_limit(name, &self.compiled.schedules[index].steps)?;
        let mut guard = self.instances[index]
            .lock()
            .map_err(|_| VulkanError::Internal("a previous call panicked".into()))?;
        if guard.is_none() {
            *guard = Some(self.instantiate(index)?);
        }
        let inst = guard.as_ref().expect("just created");
        let schedule = &self.compiled.schedules[index];
        for (b, buf) in schedule.buffers.iter().zip(&inst.buffers) {
            if let BufferKind::Input(i) = b.kind {
                let src = inputs[i].bytes();
                // SAFETY: the mapping holds at least `b.bytes` = the input's size.
                unsafe {
                    std::ptr::copy_nonoverlapping(src.as_ptr(), buf.ptr, src.len().min(buf.bytes))
                };
            }
        }
        self.execute(inst, &inst.plan)?;
        for (b, buf) in schedule.buffers.iter().zip(&inst.buffers) {
            if let BufferKind::Output(i) = b.kind {
                let dst = outputs[i].bytes_mut();
                let n = dst.len().min(buf.bytes);
                // SAFETY: the fence wait made the device writes visible (the
                // final barrier covers host reads); the mapping is `buf.bytes` long.
                unsafe { std::ptr::copy_nonoverlapping(buf.ptr, dst.as_mut_ptr(), n) };
            }
        }
        // A result may be an input returned unchanged, or a view of one:
        // outputs that no step writes are copied from their source buffer by
        // the schedule itself, so nothing else is needed here.
        Ok(())
    }

    /// Refuses function `name` when a kernel it runs may loop longer per
    /// invocation than the device's loop limiter allows (the driver would
    /// silently stop early and the results would be wrong).
    fn check_loop_limit(&self, name: &str, steps: &[Step]) -> Result<(), VulkanError> {
        let Some(limit) = self.gpu.loop_limit else {
            return Ok(());
        };
        for st in steps {
            match st {
                Step::Dispatch { kernel, .. } => {
                    let k = &self.compiled.kernels[*kernel];
                    if k.loop_iterations.is_some_and(|n| n <= limit) {
                        continue;
                    }
                    return Err(VulkanError::LoopLimit {
                        function: name.to_owned(),
                        device: self.gpu.name.clone(),
                        bound: k.loop_iterations,
                        limit,
                        at: k.loop_at.clone(),
                    });
                }
                Step::Copy { .. } => {}
                Step::If {
                    then_steps,
                    else_steps,
                    ..
                } => {
                    self.check_loop_limit(name, then_steps)?;
                    self.check_loop_limit(name, else_steps)?;
                }
                Step::While {
                    cond_steps, body, ..
                } => {
                    self.check_loop_limit(name, cond_steps)?;
                    self.check_loop_limit(name, body)?;
                }
            }
        }
        Ok(())
    }

    /// Runs plan nodes in order: each segment is submitted and waited for,
    /// so a control node reads its predicate after everything before it.
    /// Loops run as long as the program says (as in the interpreter).
    fn execute(&self, inst: &Instance, nodes: &[Node]) -> Result<(), VulkanError> {
        for node in nodes {
            match node {
                Node::Segment(i) => self.submit(inst, inst.segments[*i])?,
                Node::If {
                    cond,
                    then_nodes,
                    else_nodes,
                } => {
                    if self.predicate(inst, *cond) {
                        self.execute(inst, then_nodes)?;
                    } else {
                        self.execute(inst, else_nodes)?;
                    }
                }
                Node::While {
                    cond_nodes,
                    cond,
                    body,
                } => loop {
                    self.execute(inst, cond_nodes)?;
                    if !self.predicate(inst, *cond) {
                        break;
                    }
                    self.execute(inst, body)?;
                },
            }
        }
        Ok(())
    }

    /// A scalar predicate buffer is true when any of its bytes is nonzero
    /// (the frontend stores predicates as integers).
    fn predicate(&self, inst: &Instance, cond: usize) -> bool {
        let buf = &inst.buffers[cond];
        let n = inst.sizes[cond].min(buf.bytes);
        // SAFETY: the mapping is `buf.bytes` long; the last submission was
        // waited for and ended with a barrier to host reads, so device
        // writes are visible; volatile because the device wrote it.
        (0..n).any(|i| unsafe { std::ptr::read_volatile(buf.ptr.add(i)) } != 0)
    }

    /// Submits one recorded segment and waits for it.
    fn submit(&self, inst: &Instance, cb: vk::CommandBuffer) -> Result<(), VulkanError> {
        let d = &self.gpu.device;
        let queue = self
            .gpu
            .queue
            .lock()
            .map_err(|_| VulkanError::Internal("the queue lock is poisoned".into()))?;
        let cbs = [cb];
        let submit = vk::SubmitInfo::default().command_buffers(&cbs);
        // SAFETY: the command buffer was fully recorded, its resources are
        // alive, and the fence is unsignaled (reset after every wait).
        unsafe {
            d.queue_submit(*queue, &[submit], inst.fence)
                .map_err(vkerr("vkQueueSubmit"))?;
            d.wait_for_fences(&[inst.fence], true, u64::MAX)
                .map_err(vkerr("vkWaitForFences"))?;
            d.reset_fences(&[inst.fence])
                .map_err(vkerr("vkResetFences"))?;
        }
        Ok(())
    }

    fn create_buffer(&self, bytes: usize) -> Result<DeviceBuffer, VulkanError> {
        let d = &self.gpu.device;
        let max = self.gpu.props.max_storage_buffer_range as usize;
        if bytes > max {
            return Err(VulkanError::Unsupported(format!(
                "a buffer of {bytes} bytes on device '{}' (maxStorageBufferRange is {max})",
                self.gpu.name
            )));
        }
        // Never zero-sized (Vulkan forbids it), and whole 16-byte units so
        // kernels that emulate narrow types with 32-bit words stay in bounds.
        let size = (bytes.max(1)).div_ceil(16) * 16;
        // SAFETY: creation on a live device; the buffer is bound to memory of
        // a compatible type before use and destroyed in Drop.
        unsafe {
            let buffer = d
                .create_buffer(
                    &vk::BufferCreateInfo::default()
                        .size(size as u64)
                        .usage(
                            vk::BufferUsageFlags::STORAGE_BUFFER
                                | vk::BufferUsageFlags::TRANSFER_SRC
                                | vk::BufferUsageFlags::TRANSFER_DST,
                        )
                        .sharing_mode(vk::SharingMode::EXCLUSIVE),
                    None,
                )
                .map_err(vkerr("vkCreateBuffer"))?;
            let req = d.get_buffer_memory_requirements(buffer);
            let ty = self.gpu.memory_type(req.memory_type_bits).ok_or_else(|| {
                VulkanError::Vulkan(format!(
                    "device '{}' has no host-visible coherent memory",
                    self.gpu.name
                ))
            })?;
            let memory = d
                .allocate_memory(
                    &vk::MemoryAllocateInfo::default()
                        .allocation_size(req.size)
                        .memory_type_index(ty),
                    None,
                )
                .map_err(vkerr("vkAllocateMemory"))?;
            d.bind_buffer_memory(buffer, memory, 0)
                .map_err(vkerr("vkBindBufferMemory"))?;
            let ptr = d
                .map_memory(memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty())
                .map_err(vkerr("vkMapMemory"))? as *mut u8;
            std::ptr::write_bytes(ptr, 0, size);
            Ok(DeviceBuffer {
                buffer,
                memory,
                ptr,
                bytes: size,
            })
        }
    }

    /// Buffers, descriptor sets and the recorded command buffer of function `index`.
    fn instantiate(&self, index: usize) -> Result<Instance, VulkanError> {
        let d = &self.gpu.device;
        let schedule = &self.compiled.schedules[index];
        let mut buffers = Vec::with_capacity(schedule.buffers.len());
        for b in &schedule.buffers {
            let buf = self.create_buffer(b.bytes)?;
            if let BufferKind::Constant(data) = &b.kind {
                // SAFETY: the mapping is at least `data.len()` bytes long.
                unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buf.ptr, data.len()) };
            }
            buffers.push(buf);
        }
        let mut segment_steps: Vec<Vec<&Step>> = Vec::new();
        let plan = plan(&schedule.steps, &mut segment_steps);
        // Descriptor sets in recording order: segment by segment.
        let dispatches: Vec<_> = segment_steps
            .iter()
            .flatten()
            .filter_map(|s| match s {
                Step::Dispatch {
                    kernel,
                    groups,
                    buffers,
                } => Some((*kernel, *groups, buffers.clone())),
                _ => None,
            })
            .collect();
        let descriptors: u32 = dispatches.iter().map(|(_, _, b)| b.len() as u32).sum();
        // SAFETY (this block): creation and recording on a live device; every
        // handle used in recording was created above and stays alive in the
        // returned Instance (or the Program) until Drop.
        unsafe {
            let sizes = [vk::DescriptorPoolSize::default()
                .ty(vk::DescriptorType::STORAGE_BUFFER)
                .descriptor_count(descriptors.max(1))];
            let pool = d
                .create_descriptor_pool(
                    &vk::DescriptorPoolCreateInfo::default()
                        .max_sets((dispatches.len() as u32).max(1))
                        .pool_sizes(&sizes),
                    None,
                )
                .map_err(vkerr("vkCreateDescriptorPool"))?;
            let mut sets = Vec::with_capacity(dispatches.len());
            for (kernel, _, bufs) in &dispatches {
                let layouts = [self.pipelines[*kernel].set_layout];
                let set = d
                    .allocate_descriptor_sets(
                        &vk::DescriptorSetAllocateInfo::default()
                            .descriptor_pool(pool)
                            .set_layouts(&layouts),
                    )
                    .map_err(vkerr("vkAllocateDescriptorSets"))?[0];
                let infos: Vec<[vk::DescriptorBufferInfo; 1]> = bufs
                    .iter()
                    .map(|&b| {
                        [vk::DescriptorBufferInfo::default()
                            .buffer(buffers[b].buffer)
                            .offset(0)
                            .range(vk::WHOLE_SIZE)]
                    })
                    .collect();
                let writes: Vec<vk::WriteDescriptorSet> = infos
                    .iter()
                    .enumerate()
                    .map(|(i, info)| {
                        vk::WriteDescriptorSet::default()
                            .dst_set(set)
                            .dst_binding(i as u32)
                            .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                            .buffer_info(info)
                    })
                    .collect();
                d.update_descriptor_sets(&writes, &[]);
                sets.push(set);
            }
            let command_pool = d
                .create_command_pool(
                    &vk::CommandPoolCreateInfo::default().queue_family_index(self.gpu.queue_family),
                    None,
                )
                .map_err(vkerr("vkCreateCommandPool"))?;
            let segments = if segment_steps.is_empty() {
                Vec::new()
            } else {
                d.allocate_command_buffers(
                    &vk::CommandBufferAllocateInfo::default()
                        .command_pool(command_pool)
                        .level(vk::CommandBufferLevel::PRIMARY)
                        .command_buffer_count(segment_steps.len() as u32),
                )
                .map_err(vkerr("vkAllocateCommandBuffers"))?
            };
            let fence = d
                .create_fence(&vk::FenceCreateInfo::default(), None)
                .map_err(vkerr("vkCreateFence"))?;
            let work = vk::PipelineStageFlags::COMPUTE_SHADER | vk::PipelineStageFlags::TRANSFER;
            // Every step may read what any earlier one wrote: a full
            // compute/transfer memory barrier between consecutive steps.
            let between = [vk::MemoryBarrier::default()
                .src_access_mask(vk::AccessFlags::SHADER_WRITE | vk::AccessFlags::TRANSFER_WRITE)
                .dst_access_mask(
                    vk::AccessFlags::SHADER_READ
                        | vk::AccessFlags::SHADER_WRITE
                        | vk::AccessFlags::TRANSFER_READ
                        | vk::AccessFlags::TRANSFER_WRITE,
                )];
            let mut set_index = 0;
            for (&cb, steps) in segments.iter().zip(&segment_steps) {
                d.begin_command_buffer(cb, &vk::CommandBufferBeginInfo::default())
                    .map_err(vkerr("vkBeginCommandBuffer"))?;
                // Earlier segments (submitted before, in queue order) wrote what
                // this one reads: the same barrier first.
                d.cmd_pipeline_barrier(
                    cb,
                    work,
                    work,
                    vk::DependencyFlags::empty(),
                    &between,
                    &[],
                    &[],
                );
                for (i, step) in steps.iter().enumerate() {
                    if i > 0 {
                        d.cmd_pipeline_barrier(
                            cb,
                            work,
                            work,
                            vk::DependencyFlags::empty(),
                            &between,
                            &[],
                            &[],
                        );
                    }
                    match step {
                        Step::Dispatch { kernel, groups, .. } => {
                            let p = &self.pipelines[*kernel];
                            d.cmd_bind_pipeline(cb, vk::PipelineBindPoint::COMPUTE, p.pipeline);
                            d.cmd_bind_descriptor_sets(
                                cb,
                                vk::PipelineBindPoint::COMPUTE,
                                p.layout,
                                0,
                                &[sets[set_index]],
                                &[],
                            );
                            set_index += 1;
                            d.cmd_dispatch(cb, groups[0], groups[1], groups[2]);
                        }
                        Step::Copy { src, dst, bytes } => {
                            if *bytes > 0 {
                                let region = vk::BufferCopy::default().size(*bytes as u64);
                                d.cmd_copy_buffer(
                                    cb,
                                    buffers[*src].buffer,
                                    buffers[*dst].buffer,
                                    &[region],
                                );
                            }
                        }
                        Step::If { .. } | Step::While { .. } => {
                            unreachable!("plan() puts no control step in a segment")
                        }
                    }
                }
                // Results become visible to the host after the fence.
                let to_host = [vk::MemoryBarrier::default()
                    .src_access_mask(
                        vk::AccessFlags::SHADER_WRITE | vk::AccessFlags::TRANSFER_WRITE,
                    )
                    .dst_access_mask(vk::AccessFlags::HOST_READ)];
                d.cmd_pipeline_barrier(
                    cb,
                    work,
                    vk::PipelineStageFlags::HOST,
                    vk::DependencyFlags::empty(),
                    &to_host,
                    &[],
                    &[],
                );
                d.end_command_buffer(cb)
                    .map_err(vkerr("vkEndCommandBuffer"))?;
            }
            Ok(Instance {
                buffers,
                pool,
                command_pool,
                segments,
                plan,
                sizes: schedule.buffers.iter().map(|b| b.bytes).collect(),
                fence,
            })
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let d = &self.gpu.device;
        // SAFETY: every call waited for its fence, so nothing is in flight;
        // each handle was created by this program and is destroyed once.
        unsafe {
            for inst in self.instances.iter_mut() {
                if let Ok(Some(inst)) = inst.get_mut().map(Option::take) {
                    d.destroy_fence(inst.fence, None);
                    d.destroy_command_pool(inst.command_pool, None);
                    d.destroy_descriptor_pool(inst.pool, None);
                    for b in inst.buffers {
                        d.unmap_memory(b.memory);
                        d.destroy_buffer(b.buffer, None);
                        d.free_memory(b.memory, None);
                    }
                }
            }
            for p in self.pipelines.drain(..) {
                d.destroy_pipeline(p.pipeline, None);
                d.destroy_pipeline_layout(p.layout, None);
                d.destroy_descriptor_set_layout(p.set_layout, None);
                d.destroy_shader_module(p.module, None);
            }
        }
    }
}

impl Drop for Gpu {
    fn drop(&mut self) {
        // Only reached if a Gpu is dropped before being shared (the shared
        // one lives for the whole process).
        // SAFETY: nothing created from the device is alive any more.
        unsafe {
            let _ = self.device.device_wait_idle();
            self.device.destroy_device(None);
            if let Some((du, m)) = self._messenger.take() {
                du.destroy_debug_utils_messenger(m, None);
            }
            self.instance.destroy_instance(None);
        }
    }
}
