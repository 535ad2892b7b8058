//! A compiled program and its callable functions.
//!
//! `Program` owns the typed graph (the source of every signature) and, for
//! the CPU target, the JIT-compiled code; `Function` is a borrowed handle to
//! one `def` that checks arguments before anything runs, so bad inputs give
//! an error and never reach generated code.

use crate::{CacheStatus, Error, Target};
use std::sync::OnceLock;
use std::time::Duration;
use tensorc_cpu::{CpuFunction, CpuModule};
use tensorc_ir::{Module, SourceFile, Tensor, TensorType, graph};

pub struct Program {
    pub(crate) module: Module,
    pub(crate) file: SourceFile,
    pub(crate) target: Target,
    pub(crate) cpu: Option<CpuModule>,
    pub(crate) vulkan: Option<tensorc_vulkan::VulkanModule>,
    pub(crate) compile_time: Duration,
    pub(crate) cache_status: CacheStatus,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("file", &self.file.name)
            .field("target", &self.target)
            .field("functions", &self.functions())
            .finish()
    }
}

impl Program {
    /// Names of the functions, in source order.
    pub fn functions(&self) -> Vec<&str> {
        self.module
            .functions
            .iter()
            .map(|f| f.name.as_str())
            .collect()
    }

    /// The function `name`; with `None`, the only function, or else the one
    /// named `main`.
    pub fn entry(&self, name: Option<&str>) -> Result<Function<'_>, Error> {
        let fs = &self.module.functions;
        let found = match name {
            Some(n) => fs.iter().find(|f| f.name == n),
            None if fs.len() == 1 => fs.first(),
            None => fs.iter().find(|f| f.name == "main"),
        };
        let Some(func) = found else {
            return Err(Error::NoSuchFunction {
                requested: name.map(str::to_owned),
                available: self.functions().into_iter().map(str::to_owned).collect(),
            });
        };
        let cpu = match &self.cpu {
            Some(m) => Some(m.function(&func.name).ok_or_else(|| {
                Error::internal(
                    "jit",
                    format!("no compiled code for function '{}'", func.name),
                )
            })?),
            None => None,
        };
        let mut f = Function {
            program: self,
            func,
            cpu,
            fits: true,
        };
        // Computed once here rather than on every call (bench loops call often).
        f.fits = f.check_values_fit().is_ok();
        Ok(f)
    }

    /// The typed graph.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// The source the program was compiled from.
    pub fn source(&self) -> &SourceFile {
        &self.file
    }

    pub fn target(&self) -> Target {
        self.target
    }

    /// Wall time of parse, check, lowering and code generation.
    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }

    /// What the compile cache did (`CacheStatus::Off` unless
    /// `CompileOptions::cache` asked for it on the CPU target).
    pub fn cache_status(&self) -> &CacheStatus {
        &self.cache_status
    }
}

/// One function of a `Program`.
#[derive(Clone, Copy)]
pub struct Function<'p> {
    program: &'p Program,
    func: &'p graph::Function,
    cpu: Option<&'p CpuFunction>,
    /// Whether every value of the function fits in memory (`check_values_fit`).
    fits: bool,
}

impl std::fmt::Debug for Function<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Function")
            .field("name", &self.func.name)
            .field("params", &self.func.params)
            .field("results", &self.results())
            .finish()
    }
}

impl<'p> Function<'p> {
    pub fn name(&self) -> &'p str {
        &self.func.name
    }

    pub fn params(&self) -> &'p [(String, TensorType)] {
        &self.func.params
    }

    /// Result types, tuples flattened (what `call` returns, in order).
    pub fn results(&self) -> Vec<TensorType> {
        self.func.flat_results()
    }

    /// `Err` when some value of the function (a parameter, an intermediate or
    /// a result) cannot fit in this machine's memory. `call` checks this
    /// itself; callers that build large inputs should check it first, since
    /// allocating such an input would abort the process.
    pub fn check_fits_in_memory(&self) -> Result<(), Error> {
        if self.fits {
            Ok(())
        } else {
            self.check_values_fit()
        }
    }

    /// Every value the function (and any function it calls) computes must fit
    /// in memory: both the interpreter and generated code allocate
    /// intermediates, and a failed allocation would abort or crash instead of
    /// reporting an error.
    fn check_values_fit(&self) -> Result<(), Error> {
        let fs = &self.program.module.functions;
        let mut seen = vec![false; fs.len()];
        let mut stack = vec![self.func];
        while let Some(f) = stack.pop() {
            for node in &f.nodes {
                for ty in node.ty.flatten() {
                    check_fits(&ty).map_err(|_| {
                        Error::Input(format!(
                            "value '{}' of type {ty} in function '{}' does not fit in memory",
                            if node.name.is_empty() {
                                "(literal)"
                            } else {
                                &node.name
                            },
                            f.name
                        ))
                    })?;
                }
                if let graph::Op::Call { function } = node.op
                    && let Some(g) = fs.get(function).filter(|_| !seen[function])
                {
                    seen[function] = true;
                    stack.push(g);
                }
            }
        }
        Ok(())
    }

    /// Runs the function; allocates and returns the results.
    pub fn call(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, Error> {
        let refs: Vec<&Tensor> = inputs.iter().collect();
        tensorc_cpu::abi::check_inputs(&self.func.params, &refs).map_err(Error::Input)?;
        if !self.fits {
            self.check_values_fit()?;
        }
        if let Some(vk) = &self.program.vulkan {
            let mut outputs = self
                .results()
                .into_iter()
                .map(allocate)
                .collect::<Result<Vec<_>, _>>()?;
            vk.call(&self.func.name, &refs, &mut outputs)
                .map_err(|e| crate::error::from_vulkan(e, &self.program.file))?;
            return Ok(outputs);
        }
        match self.cpu {
            Some(cpu) => {
                let mut outputs = self
                    .results()
                    .into_iter()
                    .map(allocate)
                    .collect::<Result<Vec<_>, _>>()?;
                cpu.call(&refs, &mut outputs)?;
                Ok(outputs)
            }
            None => Ok(tensorc_interp::run(
                &self.program.module,
                &self.func.name,
                inputs,
            )?),
        }
    }

    /// Runs the function, writing results into `outputs` (which must already
    /// have the result types). On the CPU target generated code writes
    /// straight into these buffers.
    pub fn call_into(&self, inputs: &[&Tensor], outputs: &mut [Tensor]) -> Result<(), Error> {
        tensorc_cpu::abi::check_inputs(&self.func.params, inputs).map_err(Error::Input)?;
        tensorc_cpu::abi::check_outputs(&self.results(), outputs).map_err(Error::Input)?;
        if !self.fits {
            self.check_values_fit()?;
        }
        if let Some(vk) = &self.program.vulkan {
            return vk
                .call(&self.func.name, inputs, outputs)
                .map_err(|e| crate::error::from_vulkan(e, &self.program.file));
        }
        match self.cpu {
            Some(cpu) => Ok(cpu.call(inputs, outputs)?),
            None => {
                let owned: Vec<Tensor> = inputs.iter().map(|t| (*t).clone()).collect();
                let results = tensorc_interp::run(&self.program.module, &self.func.name, &owned)?;
                if results.len() != outputs.len() {
                    return Err(Error::internal(
                        "interp",
                        format!(
                            "returned {} results, the signature has {}",
                            results.len(),
                            outputs.len()
                        ),
                    ));
                }
                for (out, r) in outputs.iter_mut().zip(results) {
                    if out.ty() != r.ty() {
                        return Err(Error::internal(
                            "interp",
                            format!("returned {} where the signature says {}", r.ty(), out.ty()),
                        ));
                    }
                    out.bytes_mut().copy_from_slice(r.bytes());
                }
                Ok(())
            }
        }
    }
}

/// A zeroed result tensor, or an error (never an abort) when it cannot fit in
/// this machine's memory: the global allocator aborts the process on failure,
/// so sizes beyond physical memory are refused up front.
pub(crate) fn allocate(ty: TensorType) -> Result<Tensor, Error> {
    check_fits(&ty)?;
    Tensor::zeros(ty.clone()).map_err(|_| too_big(&ty))
}

fn too_big(ty: &TensorType) -> Error {
    Error::Input(format!("a result of type {ty} does not fit in memory"))
}

/// Refuses tensor types larger than physical memory.
fn check_fits(ty: &TensorType) -> Result<(), Error> {
    let bytes = ty
        .checked_num_elements()
        .and_then(|n| n.checked_mul(ty.dtype.size_bytes()));
    match (bytes, physical_memory()) {
        (None, _) => Err(too_big(ty)),
        (Some(b), Some(limit)) if b as u64 > limit => Err(too_big(ty)),
        _ => Ok(()),
    }
}

/// Total physical memory in bytes (Linux `/proc/meminfo`); `None` elsewhere.
fn physical_memory() -> Option<u64> {
    static MEM: OnceLock<Option<u64>> = OnceLock::new();
    *MEM.get_or_init(|| {
        let info = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        kib.checked_mul(1024)
    })
}
