//! The compiled form of a `.nxir` module for Vulkan: SPIR-V kernels plus, per
//! function, the host-side schedule (which buffers exist, which kernels run in
//! which order on which buffers).
//!
//! It is plain data with no MLIR in it, so the runtime needs nothing but this
//! to run a program, and a `.tvk` artifact (`tvk.rs`) is this, serialized.

/// One SPIR-V compute shader (one outlined `gpu.func`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kernel {
    /// The symbol of the `gpu.module` it came from (`f_kernel_0`).
    pub module: String,
    /// The entry point name inside the SPIR-V module.
    pub entry: String,
    /// The SPIR-V words (what `vkCreateShaderModule` takes).
    pub words: Vec<u32>,
    /// Storage-buffer bindings in set 0, numbered 0..bindings.
    pub bindings: u32,
    /// `LocalSize` of the entry point.
    pub workgroup_size: [u32; 3],
    /// An upper bound of the loop iterations one invocation runs in total
    /// (`None`: not known at compile time). Drivers with a loop limiter
    /// (lavapipe) refuse kernels above it rather than return wrong values.
    pub loop_iterations: Option<u64>,
    /// The source position of the loop that dominates the bound (the
    /// `.nxir` statement an error names), when known.
    pub loop_at: Option<crate::FileLoc>,
}

/// A device buffer of one function's schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BufferKind {
    /// The i-th function input.
    Input(usize),
    /// The i-th flattened result (the out-params of the frontend ABI).
    Output(usize),
    /// An intermediate the generated code allocates.
    Temporary,
    /// Data known at compile time (a `memref.global` constant).
    Constant(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Buffer {
    pub kind: BufferKind,
    pub bytes: usize,
}

/// One step of a function's schedule. Every step may read what the previous
/// steps wrote, so the runtime puts a full memory barrier between steps.
/// Control steps (`If`, `While`) are decided on the host: the runtime
/// submits the work before them, waits, and reads the predicate buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Run kernel `kernel` with `groups` workgroups; binding i is buffer `buffers[i]`.
    Dispatch {
        kernel: usize,
        groups: [u32; 3],
        buffers: Vec<usize>,
    },
    /// Copy `bytes` bytes from the start of buffer `src` to the start of `dst`.
    Copy {
        src: usize,
        dst: usize,
        bytes: usize,
    },
    /// `cond` (Nx `cond`, MLIR `scf.if` on the host): the host waits for
    /// the steps before, reads buffer `cond` (a scalar; true when any byte
    /// is nonzero) and runs one of the two step lists.
    If {
        cond: usize,
        then_steps: Vec<Step>,
        else_steps: Vec<Step>,
    },
    /// `while` (MLIR `scf.while`): run `cond_steps`, read buffer `cond` as
    /// for `If`; while it is true run `body` and start again.
    While {
        cond_steps: Vec<Step>,
        cond: usize,
        body: Vec<Step>,
    },
}

impl Step {
    /// The step lists nested in a control step (none for the others).
    pub fn nested(&self) -> Vec<&[Step]> {
        match self {
            Step::If {
                then_steps,
                else_steps,
                ..
            } => vec![then_steps, else_steps],
            Step::While {
                cond_steps, body, ..
            } => vec![cond_steps, body],
            Step::Dispatch { .. } | Step::Copy { .. } => Vec::new(),
        }
    }

    /// Calls `f` on every step of `steps`, nested ones included, in order.
    pub fn walk<'a>(steps: &'a [Step], f: &mut dyn FnMut(&'a Step)) {
        for s in steps {
            f(s);
            for inner in s.nested() {
                Step::walk(inner, f);
            }
        }
    }
}

/// The host side of one `def`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub function: String,
    pub buffers: Vec<Buffer>,
    pub steps: Vec<Step>,
}

/// Everything the runtime needs to run a module's functions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Compiled {
    pub kernels: Vec<Kernel>,
    pub schedules: Vec<Schedule>,
}
