//! The `.tvk` artifact: a module compiled for Vulkan, saved so that it can be
//! run later without the compiler (`tensorc compile --target vulkan`, then
//! `tensorc run OUT.tvk` or `tensorc::load_vulkan_artifact`).
//!
//! It holds exactly what `VulkanModule` keeps after compiling — each
//! function's signature, the dtypes it computes with (checked against the
//! device on load) and the compiled programs (SPIR-V words and host
//! schedules, `schedule.rs`) — in a little-endian binary layout documented in
//! docs/vulkan.md. This file uses neither MLIR nor LLVM, so loading an
//! artifact makes no MLIR call.
//!
//! The bytes come from a file, so they are untrusted: every length is checked
//! against the bytes that remain before anything is allocated, every index
//! is checked against what it points into, and a checksum over the payload
//! catches damage the structure does not; reading never panics.

use crate::schedule::{Buffer, BufferKind, Compiled, Kernel, Schedule, Step};
use tensorc_ir::{DType, TensorType, Type};

/// The first eight bytes of every `.tvk` file. The high byte and the CR LF /
/// Ctrl-Z / LF tail (as in PNG) make text-mode transfers and `.nxir` text
/// fail the check at once.
pub const MAGIC: [u8; 8] = *b"\x89TVK\r\n\x1a\n";

/// The layout version this tensorc writes and the only one it reads
/// (version 2 added the control steps `If` and `While`, version 3 each
/// kernel's loop bound and the source position of its dominant loop).
pub const FORMAT_VERSION: u32 = 3;

/// The most storage-buffer bindings a kernel may declare: far above what
/// tensorc generates (one per memref argument), low enough that a damaged
/// count cannot make the runtime build a huge descriptor-set layout.
const MAX_BINDINGS: u32 = 4096;

/// Nesting limit for result tuples, so a hostile file cannot recurse deeply.
const MAX_TUPLE_DEPTH: u32 = 64;

/// Nesting limit for control steps (`while` in `cond` in `while` ...), for
/// the same reason; far above what a program nests in practice.
const MAX_CONTROL_DEPTH: u32 = 64;

/// The fewest bytes any encoded step takes (a tag and two u64s), for
/// checking step counts against the bytes left.
const MIN_STEP_BYTES: usize = 1 + 8 + 8;

/// Header: magic, format version, version-string length (then the string),
/// payload length, checksum.
const FIXED_HEADER: usize = 8 + 4 + 4;

/// One `def` of the artifact.
#[derive(Clone, Debug, PartialEq)]
pub struct ArtifactFunction {
    pub name: String,
    pub params: Vec<(String, TensorType)>,
    /// A tensor, or a tuple for `return {a, b}` (results are its flattening).
    pub result: Type,
    /// Every dtype the function computes with, checked against the device on load.
    pub dtypes: Vec<DType>,
    /// Index into `Artifact::programs` of the program holding its schedule.
    pub program: usize,
}

/// A whole `.tvk` file, decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Artifact {
    /// The `tensorc` version that wrote it (informational; the format
    /// version decides compatibility).
    pub tensorc_version: String,
    pub functions: Vec<ArtifactFunction>,
    pub programs: Vec<Compiled>,
}

/// Why bytes are not a loadable artifact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ArtifactError(pub String);

fn bad(msg: impl Into<String>) -> ArtifactError {
    ArtifactError(msg.into())
}

/// Whether `bytes` start like a `.tvk` artifact (the CLI tells artifacts
/// from `.nxir` sources by this, not by the file name).
pub fn is_artifact(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// 64-bit FNV-1a: small, dependency-free, and enough to catch accidental
/// damage (it is not a defence against deliberate forgery, which the
/// structural checks make harmless anyway).
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

// ---------------------------------------------------------------- writing

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn dtype(&mut self, d: DType) {
        self.str(d.name());
    }
    fn tensor_type(&mut self, t: &TensorType) {
        self.dtype(t.dtype);
        self.len(t.shape.len());
        for &d in &t.shape {
            self.len(d);
        }
    }
    fn ty(&mut self, t: &Type) {
        match t {
            Type::Tensor(t) => {
                self.u8(0);
                self.tensor_type(t);
            }
            Type::Tuple(items) => {
                self.u8(1);
                self.len(items.len());
                for i in items {
                    self.ty(i);
                }
            }
        }
    }
    fn compiled(&mut self, c: &Compiled) {
        self.len(c.kernels.len());
        for k in &c.kernels {
            self.str(&k.module);
            self.str(&k.entry);
            self.u32(k.bindings);
            for v in k.workgroup_size {
                self.u32(v);
            }
            self.len(k.words.len());
            for &w in &k.words {
                self.u32(w);
            }
            match k.loop_iterations {
                None => self.u8(0),
                Some(n) => {
                    self.u8(1);
                    self.u64(n);
                }
            }
            match &k.loop_at {
                None => self.u8(0),
                Some(l) => {
                    self.u8(1);
                    self.str(&l.file);
                    self.len(l.line);
                    self.len(l.col);
                }
            }
        }
        self.len(c.schedules.len());
        for s in &c.schedules {
            self.str(&s.function);
            self.len(s.buffers.len());
            for b in &s.buffers {
                match &b.kind {
                    BufferKind::Input(i) => {
                        self.u8(0);
                        self.len(*i);
                    }
                    BufferKind::Output(i) => {
                        self.u8(1);
                        self.len(*i);
                    }
                    BufferKind::Temporary => self.u8(2),
                    BufferKind::Constant(data) => {
                        self.u8(3);
                        self.bytes(data);
                    }
                }
                self.len(b.bytes);
            }
            self.steps(&s.steps);
        }
    }
    fn steps(&mut self, steps: &[Step]) {
        self.len(steps.len());
        for st in steps {
            match st {
                Step::Dispatch {
                    kernel,
                    groups,
                    buffers,
                } => {
                    self.u8(0);
                    self.len(*kernel);
                    for g in groups {
                        self.u32(*g);
                    }
                    self.len(buffers.len());
                    for &b in buffers {
                        self.len(b);
                    }
                }
                Step::Copy { src, dst, bytes } => {
                    self.u8(1);
                    self.len(*src);
                    self.len(*dst);
                    self.len(*bytes);
                }
                Step::If {
                    cond,
                    then_steps,
                    else_steps,
                } => {
                    self.u8(2);
                    self.len(*cond);
                    self.steps(then_steps);
                    self.steps(else_steps);
                }
                Step::While {
                    cond_steps,
                    cond,
                    body,
                } => {
                    self.u8(3);
                    self.steps(cond_steps);
                    self.len(*cond);
                    self.steps(body);
                }
            }
        }
    }
}

impl Artifact {
    /// The file's bytes: header, then the payload the checksum covers.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut p = Writer(Vec::new());
        p.len(self.functions.len());
        for f in &self.functions {
            p.str(&f.name);
            p.len(f.params.len());
            for (name, ty) in &f.params {
                p.str(name);
                p.tensor_type(ty);
            }
            p.ty(&f.result);
            p.len(f.dtypes.len());
            for &d in &f.dtypes {
                p.dtype(d);
            }
            p.len(f.program);
        }
        p.len(self.programs.len());
        for c in &self.programs {
            p.compiled(c);
        }
        let payload = p.0;
        let mut out = Writer(Vec::with_capacity(payload.len() + 64));
        out.0.extend_from_slice(&MAGIC);
        out.u32(FORMAT_VERSION);
        out.u32(self.tensorc_version.len() as u32);
        out.0.extend_from_slice(self.tensorc_version.as_bytes());
        out.len(payload.len());
        out.u64(checksum(&payload));
        out.0.extend_from_slice(&payload);
        out.0
    }

    /// Decodes and validates a file. Every failure says what is wrong and
    /// never panics, whatever the bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Artifact, ArtifactError> {
        if !is_artifact(bytes) {
            return Err(bad(
                "not a tensorc Vulkan artifact (the file does not start with the .tvk magic bytes)",
            ));
        }
        if bytes.len() < FIXED_HEADER {
            return Err(bad("truncated .tvk file (the header is incomplete)"));
        }
        let mut r = Reader {
            bytes: &bytes[8..],
            what: "header",
        };
        let version = r.u32()?;
        if version != FORMAT_VERSION {
            return Err(bad(format!(
                "unsupported .tvk format version {version} (this tensorc reads version {FORMAT_VERSION}); recompile the program with this tensorc"
            )));
        }
        let vlen = r.u32()? as usize;
        let tensorc_version = String::from_utf8(r.take(vlen)?.to_vec())
            .map_err(|_| bad("corrupt .tvk file (the tensorc version is not UTF-8)"))?;
        let plen = r.u64()?;
        let sum = r.u64()?;
        if plen != r.bytes.len() as u64 {
            return Err(bad(format!(
                "{} .tvk file (the header announces {plen} payload bytes, the file has {})",
                if plen > r.bytes.len() as u64 {
                    "truncated"
                } else {
                    "corrupt"
                },
                r.bytes.len()
            )));
        }
        if checksum(r.bytes) != sum {
            return Err(bad(
                "corrupt .tvk file (the payload checksum does not match)",
            ));
        }
        let mut r = Reader {
            bytes: r.bytes,
            what: "payload",
        };
        let artifact = r.artifact(tensorc_version)?;
        if !r.bytes.is_empty() {
            return Err(bad("corrupt .tvk file (bytes after the last program)"));
        }
        artifact.validate()?;
        Ok(artifact)
    }

    /// Cross-references that the layout alone cannot guarantee: every index
    /// points at something, every buffer has the size its role implies, and
    /// every function has a schedule. The runtime relies on all of these.
    fn validate(&self) -> Result<(), ArtifactError> {
        let corrupt = |m: String| bad(format!("corrupt .tvk file ({m})"));
        if self.functions.is_empty() {
            return Err(corrupt("no functions".into()));
        }
        for f in &self.functions {
            let program = self
                .programs
                .get(f.program)
                .ok_or_else(|| corrupt(format!("function '{}' names a missing program", f.name)))?;
            let s = program
                .schedules
                .iter()
                .find(|s| s.function == f.name)
                .ok_or_else(|| corrupt(format!("no schedule for function '{}'", f.name)))?;
            let results = f.result.flatten();
            let size = |t: &TensorType| {
                t.checked_num_elements()
                    .and_then(|n| n.checked_mul(t.dtype.size_bytes()))
            };
            for b in &s.buffers {
                let want = match &b.kind {
                    BufferKind::Input(i) => Some(size(
                        &f.params
                            .get(*i)
                            .ok_or_else(|| corrupt(format!("'{}' has no input {i}", f.name)))?
                            .1,
                    )),
                    BufferKind::Output(i) => {
                        Some(size(results.get(*i).ok_or_else(|| {
                            corrupt(format!("'{}' has no result {i}", f.name))
                        })?))
                    }
                    BufferKind::Constant(data) => Some(Some(data.len())),
                    BufferKind::Temporary => None,
                };
                if let Some(want) = want
                    && want != Some(b.bytes)
                {
                    return Err(corrupt(format!(
                        "a buffer of '{}' has the wrong size",
                        f.name
                    )));
                }
            }
        }
        for c in &self.programs {
            for k in &c.kernels {
                // SPIR-V starts with its magic number; anything else would be
                // handed to the driver as a shader.
                if k.words.first() != Some(&0x0723_0203) {
                    return Err(corrupt(format!("kernel '{}' is not SPIR-V", k.entry)));
                }
                if k.bindings > MAX_BINDINGS {
                    return Err(corrupt(format!(
                        "kernel '{}' declares {} bindings",
                        k.entry, k.bindings
                    )));
                }
            }
            for s in &c.schedules {
                let mut all = Vec::new();
                Step::walk(&s.steps, &mut |st| all.push(st));
                for st in all {
                    match st {
                        Step::Dispatch {
                            kernel, buffers, ..
                        } => {
                            let k = c.kernels.get(*kernel).ok_or_else(|| {
                                corrupt(format!("'{}' dispatches a missing kernel", s.function))
                            })?;
                            if buffers.len() != k.bindings as usize
                                || buffers.iter().any(|&b| b >= s.buffers.len())
                            {
                                return Err(corrupt(format!(
                                    "a dispatch of '{}' binds missing buffers",
                                    s.function
                                )));
                            }
                        }
                        Step::Copy { src, dst, bytes } => {
                            let fits =
                                |b: usize| s.buffers.get(b).is_some_and(|b| b.bytes >= *bytes);
                            if !fits(*src) || !fits(*dst) {
                                return Err(corrupt(format!(
                                    "a copy of '{}' is outside its buffers",
                                    s.function
                                )));
                            }
                        }
                        // A predicate is one scalar, read by the host.
                        Step::If { cond, .. } | Step::While { cond, .. } => {
                            if !s
                                .buffers
                                .get(*cond)
                                .is_some_and(|b| (1..=8).contains(&b.bytes))
                            {
                                return Err(corrupt(format!(
                                    "a control step of '{}' tests a missing or non-scalar buffer",
                                    s.function
                                )));
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- reading

struct Reader<'a> {
    bytes: &'a [u8],
    /// The part being read, for messages.
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ArtifactError> {
        if n > self.bytes.len() {
            return Err(bad(format!(
                "truncated or corrupt .tvk file (the {} ends early)",
                self.what
            )));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ArtifactError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, ArtifactError> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, ArtifactError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, ArtifactError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    /// A size or index (stored as u64).
    fn index(&mut self) -> Result<usize, ArtifactError> {
        usize::try_from(self.u64()?).map_err(|_| bad("corrupt .tvk file (an index is too large)"))
    }
    /// An element count, each element taking at least `min_size` bytes: a
    /// count the remaining bytes cannot hold is refused before allocating.
    fn count(&mut self, min_size: usize) -> Result<usize, ArtifactError> {
        let n = self.index()?;
        if n.saturating_mul(min_size.max(1)) > self.bytes.len() {
            return Err(bad(format!(
                "truncated or corrupt .tvk file (a count in the {} exceeds the file)",
                self.what
            )));
        }
        Ok(n)
    }
    fn bytes(&mut self) -> Result<&'a [u8], ArtifactError> {
        let n = self.count(1)?;
        self.take(n)
    }
    fn str(&mut self) -> Result<String, ArtifactError> {
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|_| bad("corrupt .tvk file (a name is not UTF-8)"))
    }
    fn dtype(&mut self) -> Result<DType, ArtifactError> {
        let s = self.str()?;
        DType::from_name(&s).ok_or_else(|| bad(format!("corrupt .tvk file (unknown dtype '{s}')")))
    }
    fn tensor_type(&mut self) -> Result<TensorType, ArtifactError> {
        let dtype = self.dtype()?;
        let rank = self.count(8)?;
        let shape = (0..rank)
            .map(|_| self.index())
            .collect::<Result<Vec<_>, _>>()?;
        let t = TensorType::new(dtype, shape);
        if t.checked_num_elements()
            .and_then(|n| n.checked_mul(dtype.size_bytes()))
            .is_none()
        {
            return Err(bad("corrupt .tvk file (a tensor type is too large)"));
        }
        Ok(t)
    }
    fn ty(&mut self, depth: u32) -> Result<Type, ArtifactError> {
        if depth > MAX_TUPLE_DEPTH {
            return Err(bad("corrupt .tvk file (result tuples nest too deeply)"));
        }
        match self.u8()? {
            0 => Ok(Type::Tensor(self.tensor_type()?)),
            1 => {
                let n = self.count(1)?;
                let items = (0..n)
                    .map(|_| self.ty(depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Type::Tuple(items))
            }
            t => Err(bad(format!("corrupt .tvk file (unknown type tag {t})"))),
        }
    }
    fn artifact(&mut self, tensorc_version: String) -> Result<Artifact, ArtifactError> {
        let nf = self.count(8)?;
        let mut functions = Vec::with_capacity(nf);
        for _ in 0..nf {
            let name = self.str()?;
            let np = self.count(16)?;
            let mut params = Vec::with_capacity(np);
            for _ in 0..np {
                let pname = self.str()?;
                params.push((pname, self.tensor_type()?));
            }
            let result = self.ty(0)?;
            let nd = self.count(8)?;
            let dtypes = (0..nd)
                .map(|_| self.dtype())
                .collect::<Result<Vec<_>, _>>()?;
            let program = self.index()?;
            functions.push(ArtifactFunction {
                name,
                params,
                result,
                dtypes,
                program,
            });
        }
        let np = self.count(16)?;
        let mut programs = Vec::with_capacity(np);
        for _ in 0..np {
            programs.push(self.compiled()?);
        }
        Ok(Artifact {
            tensorc_version,
            functions,
            programs,
        })
    }
    fn compiled(&mut self) -> Result<Compiled, ArtifactError> {
        let nk = self.count(8 + 8 + 4 + 12 + 8 + 1 + 1)?;
        let mut kernels = Vec::with_capacity(nk);
        for _ in 0..nk {
            let module = self.str()?;
            let entry = self.str()?;
            let bindings = self.u32()?;
            let workgroup_size = [self.u32()?, self.u32()?, self.u32()?];
            let nw = self.count(4)?;
            let words = (0..nw).map(|_| self.u32()).collect::<Result<Vec<_>, _>>()?;
            let loop_iterations = match self.u8()? {
                0 => None,
                1 => Some(self.u64()?),
                t => {
                    return Err(bad(format!(
                        "corrupt .tvk file (unknown loop-bound tag {t})"
                    )));
                }
            };
            let loop_at = match self.u8()? {
                0 => None,
                1 => Some(crate::FileLoc {
                    file: self.str()?,
                    line: self.index()?,
                    col: self.index()?,
                }),
                t => return Err(bad(format!("corrupt .tvk file (unknown location tag {t})"))),
            };
            kernels.push(Kernel {
                module,
                entry,
                words,
                bindings,
                workgroup_size,
                loop_iterations,
                loop_at,
            });
        }
        let ns = self.count(8 + 8 + 8)?;
        let mut schedules = Vec::with_capacity(ns);
        for _ in 0..ns {
            let function = self.str()?;
            let nb = self.count(1 + 8)?;
            let mut buffers = Vec::with_capacity(nb);
            for _ in 0..nb {
                let kind = match self.u8()? {
                    0 => BufferKind::Input(self.index()?),
                    1 => BufferKind::Output(self.index()?),
                    2 => BufferKind::Temporary,
                    3 => BufferKind::Constant(self.bytes()?.to_vec()),
                    t => return Err(bad(format!("corrupt .tvk file (unknown buffer kind {t})"))),
                };
                let bytes = self.index()?;
                buffers.push(Buffer { kind, bytes });
            }
            let steps = self.steps(0)?;
            schedules.push(Schedule {
                function,
                buffers,
                steps,
            });
        }
        Ok(Compiled { kernels, schedules })
    }
    fn steps(&mut self, depth: u32) -> Result<Vec<Step>, ArtifactError> {
        if depth > MAX_CONTROL_DEPTH {
            return Err(bad("corrupt .tvk file (control steps nest too deeply)"));
        }
        let nst = self.count(MIN_STEP_BYTES)?;
        let mut steps = Vec::with_capacity(nst);
        for _ in 0..nst {
            steps.push(match self.u8()? {
                0 => {
                    let kernel = self.index()?;
                    let groups = [self.u32()?, self.u32()?, self.u32()?];
                    let n = self.count(8)?;
                    let buffers = (0..n)
                        .map(|_| self.index())
                        .collect::<Result<Vec<_>, _>>()?;
                    Step::Dispatch {
                        kernel,
                        groups,
                        buffers,
                    }
                }
                1 => Step::Copy {
                    src: self.index()?,
                    dst: self.index()?,
                    bytes: self.index()?,
                },
                2 => Step::If {
                    cond: self.index()?,
                    then_steps: self.steps(depth + 1)?,
                    else_steps: self.steps(depth + 1)?,
                },
                3 => Step::While {
                    cond_steps: self.steps(depth + 1)?,
                    cond: self.index()?,
                    body: self.steps(depth + 1)?,
                },
                t => return Err(bad(format!("corrupt .tvk file (unknown step kind {t})"))),
            });
        }
        Ok(steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small but complete artifact: every buffer kind, every step kind
    /// (a while and an if, one nested in the other), a tuple result.
    fn sample() -> Artifact {
        let f32_4 = TensorType::new(DType::F32, vec![4]);
        Artifact {
            tensorc_version: "0.1.0".into(),
            functions: vec![ArtifactFunction {
                name: "main".into(),
                params: vec![("x".into(), f32_4.clone())],
                result: Type::Tuple(vec![
                    Type::Tensor(f32_4.clone()),
                    Type::Tensor(TensorType::new(DType::S32, vec![])),
                ]),
                dtypes: vec![DType::F32, DType::S32],
                program: 0,
            }],
            programs: vec![Compiled {
                kernels: vec![
                    Kernel {
                        module: "main_kernel".into(),
                        entry: "main_kernel".into(),
                        words: vec![0x0723_0203, 0x0001_0300, 7, 9, 0],
                        bindings: 2,
                        workgroup_size: [128, 1, 1],
                        loop_iterations: Some(70_000),
                        loop_at: Some(crate::FileLoc {
                            file: "m.nxir".into(),
                            line: 2,
                            col: 3,
                        }),
                    },
                    Kernel {
                        module: "main_kernel_0".into(),
                        entry: "main_kernel".into(),
                        words: vec![0x0723_0203, 0x0001_0300, 7, 9, 0],
                        bindings: 2,
                        workgroup_size: [64, 1, 1],
                        loop_iterations: None,
                        loop_at: None,
                    },
                ],
                schedules: vec![Schedule {
                    function: "main".into(),
                    buffers: vec![
                        Buffer {
                            kind: BufferKind::Input(0),
                            bytes: 16,
                        },
                        Buffer {
                            kind: BufferKind::Output(0),
                            bytes: 16,
                        },
                        Buffer {
                            kind: BufferKind::Output(1),
                            bytes: 4,
                        },
                        Buffer {
                            kind: BufferKind::Temporary,
                            bytes: 16,
                        },
                        Buffer {
                            kind: BufferKind::Constant(vec![1, 2, 3, 4]),
                            bytes: 4,
                        },
                        Buffer {
                            kind: BufferKind::Temporary,
                            bytes: 1,
                        },
                    ],
                    steps: vec![
                        Step::Dispatch {
                            kernel: 0,
                            groups: [1, 1, 1],
                            buffers: vec![0, 3],
                        },
                        Step::Copy {
                            src: 3,
                            dst: 1,
                            bytes: 16,
                        },
                        Step::Copy {
                            src: 4,
                            dst: 2,
                            bytes: 4,
                        },
                        Step::While {
                            cond_steps: vec![Step::Dispatch {
                                kernel: 0,
                                groups: [1, 1, 1],
                                buffers: vec![0, 5],
                            }],
                            cond: 5,
                            body: vec![Step::If {
                                cond: 5,
                                then_steps: vec![Step::Copy {
                                    src: 3,
                                    dst: 1,
                                    bytes: 16,
                                }],
                                else_steps: vec![],
                            }],
                        },
                    ],
                }],
            }],
        }
    }

    #[test]
    fn round_trip() {
        let a = sample();
        let bytes = a.to_bytes();
        assert!(is_artifact(&bytes));
        assert_eq!(Artifact::from_bytes(&bytes), Ok(a));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample().to_bytes();
        for n in 0..bytes.len() {
            let e = Artifact::from_bytes(&bytes[..n]).expect_err("a truncated file must fail");
            assert!(
                e.0.contains("truncated") || e.0.contains("magic"),
                "prefix {n}: {e}"
            );
        }
    }

    #[test]
    fn every_byte_flip_is_an_error() {
        let bytes = sample().to_bytes();
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= flip;
                // The version string is informational: a flip there that
                // keeps it UTF-8 leaves a valid file.
                let in_version = (16..16 + 5).contains(&i);
                match Artifact::from_bytes(&b) {
                    Err(_) => {}
                    Ok(a) => assert!(
                        in_version && a.functions == sample().functions,
                        "byte {i} ^ {flip:#x} accepted"
                    ),
                }
            }
        }
    }

    /// Damage that keeps the checksum right (as a deliberately edited file
    /// would) must still be caught by the structural checks, never panic.
    #[test]
    fn resealed_damage_never_panics() {
        let bytes = sample().to_bytes();
        let start = FIXED_HEADER + 5 + 16;
        let mut seed = 0x1234_5678_9abc_def0u64;
        for i in start..bytes.len() {
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let mut b = bytes.clone();
                b[i] = seed as u8;
                let sum = checksum(&b[start..]);
                b[start - 8..start].copy_from_slice(&sum.to_le_bytes());
                let _ = Artifact::from_bytes(&b);
            }
        }
    }

    #[test]
    fn wrong_magic_and_newer_version() {
        let mut b = sample().to_bytes();
        b[1] = b'X';
        assert!(Artifact::from_bytes(&b).unwrap_err().0.contains("magic"));
        assert!(!is_artifact(b"def main(x: f32[2]) do\n"));
        let mut b = sample().to_bytes();
        b[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        let e = Artifact::from_bytes(&b).unwrap_err();
        assert!(e.0.contains("unsupported .tvk format version 4"), "{e}");
        // A version-2 file (before loop bounds) is refused the same way.
        let mut b = sample().to_bytes();
        b[8..12].copy_from_slice(&2u32.to_le_bytes());
        let e = Artifact::from_bytes(&b).unwrap_err();
        assert_eq!(
            e.0,
            "unsupported .tvk format version 2 (this tensorc reads version 3); recompile the program with this tensorc"
        );
    }

    fn while_step(a: &mut Artifact) -> &mut Step {
        &mut a.programs[0].schedules[0].steps[3]
    }

    #[test]
    fn control_steps_are_checked() {
        // A predicate buffer that does not exist, or is not a scalar.
        for cond in [6, 3] {
            let mut a = sample();
            if let Step::While { cond: c, .. } = while_step(&mut a) {
                *c = cond;
            }
            assert!(
                error_of(&a)
                    .contains("a control step of 'main' tests a missing or non-scalar buffer"),
                "{}",
                error_of(&a)
            );
        }
        let mut a = sample();
        if let Step::While { body, .. } = while_step(&mut a)
            && let Step::If { cond, .. } = &mut body[0]
        {
            *cond = 40;
        }
        assert!(error_of(&a).contains("tests a missing or non-scalar buffer"));
        // Steps nested in control steps are checked like the others.
        let mut a = sample();
        if let Step::While { cond_steps, .. } = while_step(&mut a) {
            cond_steps[0] = Step::Dispatch {
                kernel: 9,
                groups: [1, 1, 1],
                buffers: vec![0, 5],
            };
        }
        assert!(error_of(&a).contains("dispatches a missing kernel"));
        let mut a = sample();
        if let Step::While { body, .. } = while_step(&mut a)
            && let Step::If { then_steps, .. } = &mut body[0]
        {
            then_steps[0] = Step::Copy {
                src: 3,
                dst: 1,
                bytes: 17,
            };
        }
        assert!(error_of(&a).contains("outside its buffers"));
        // Nesting deeper than the limit is refused while reading (no deep
        // recursion on hostile input); the limit itself is accepted.
        let nest = |depth: u32| {
            let mut a = sample();
            let mut step = Step::Copy {
                src: 3,
                dst: 1,
                bytes: 16,
            };
            for _ in 0..depth {
                step = Step::If {
                    cond: 5,
                    then_steps: vec![step],
                    else_steps: vec![],
                };
            }
            a.programs[0].schedules[0].steps = vec![step];
            a
        };
        assert!(Artifact::from_bytes(&nest(MAX_CONTROL_DEPTH).to_bytes()).is_ok());
        assert!(error_of(&nest(MAX_CONTROL_DEPTH + 1)).contains("control steps nest too deeply"));
        // An unknown step tag.
        let good = sample().to_bytes();
        let mut a = sample();
        a.programs[0].schedules[0].steps.truncate(3);
        let cut = a.to_bytes();
        // The While is the last thing in the payload, so the version
        // without it (same layout up to there, a fixed-size header) ends
        // exactly where the While's tag byte is.
        let tag_at = cut.len();
        let mut b = good.clone();
        assert_eq!(b[tag_at], 3, "the While tag");
        b[tag_at] = 9;
        let e = Artifact::from_bytes(&reseal(b)).unwrap_err().0;
        assert!(e.contains("unknown step kind 9"), "{e}");
    }

    /// The payload length and checksum fixed up after editing the payload.
    fn reseal(mut b: Vec<u8>) -> Vec<u8> {
        let start = FIXED_HEADER + u32::from_le_bytes([b[12], b[13], b[14], b[15]]) as usize;
        let payload_len = (b.len() - start - 16) as u64;
        let sum = checksum(&b[start + 16..]);
        b[start..start + 8].copy_from_slice(&payload_len.to_le_bytes());
        b[start + 8..start + 16].copy_from_slice(&sum.to_le_bytes());
        b
    }

    fn error_of(a: &Artifact) -> String {
        Artifact::from_bytes(&a.to_bytes()).unwrap_err().0
    }

    #[test]
    fn every_structural_message() {
        let mut b = sample().to_bytes();
        b.push(0);
        let e = Artifact::from_bytes(&reseal(b)).unwrap_err().0;
        assert!(e.contains("bytes after the last program"), "{e}");

        let mut a = sample();
        a.functions.clear();
        assert!(error_of(&a).contains("no functions"));
        let mut a = sample();
        a.programs[0].schedules[0].function = "other".into();
        assert!(error_of(&a).contains("no schedule for function 'main'"));
        let mut a = sample();
        a.programs[0].schedules[0].buffers[0].kind = BufferKind::Input(5);
        assert!(error_of(&a).contains("'main' has no input 5"));
        let mut a = sample();
        a.programs[0].schedules[0].buffers[1].kind = BufferKind::Output(5);
        assert!(error_of(&a).contains("'main' has no result 5"));
        let mut a = sample();
        a.programs[0].schedules[0].steps[0] = Step::Dispatch {
            kernel: 7,
            groups: [1, 1, 1],
            buffers: vec![0, 3],
        };
        assert!(error_of(&a).contains("dispatches a missing kernel"));
        let mut a = sample();
        a.programs[0].schedules[0].steps[1] = Step::Copy {
            src: 3,
            dst: 1,
            bytes: 17,
        };
        assert!(error_of(&a).contains("outside its buffers"));
        let mut a = sample();
        let mut deep = Type::Tensor(TensorType::new(DType::F32, vec![4]));
        for _ in 0..=MAX_TUPLE_DEPTH {
            deep = Type::Tuple(vec![deep]);
        }
        a.functions[0].result = deep;
        assert!(error_of(&a).contains("nest too deeply"));
        let mut a = sample();
        a.functions[0].params[0].1 = TensorType::new(DType::F32, vec![usize::MAX, 2]);
        assert!(error_of(&a).contains("a tensor type is too large"));
        // Tags and names only a damaged file can hold: patched in the bytes.
        let good = sample().to_bytes();
        let find = |needle: &[u8]| {
            good.windows(needle.len())
                .position(|w| w == needle)
                .expect("needle in the sample")
        };
        let mut b = good.clone();
        let at = find(b"f32");
        b[at..at + 3].copy_from_slice(b"f33");
        let e = Artifact::from_bytes(&reseal(b)).unwrap_err().0;
        assert!(e.contains("unknown dtype 'f33'"), "{e}");
        let mut b = good.clone();
        let at = find(b"main_kernel");
        b[at] = 0xff;
        let e = Artifact::from_bytes(&reseal(b)).unwrap_err().0;
        assert!(e.contains("a name is not UTF-8"), "{e}");
        let mut b = good.clone();
        b[12] = 0xff;
        b[13] = 0xff;
        b[14] = 0xff;
        assert!(
            Artifact::from_bytes(&b)
                .unwrap_err()
                .0
                .contains("the header ends early")
        );
        let mut b = good.clone();
        b[16] = 0xff;
        let e = Artifact::from_bytes(&b).unwrap_err().0;
        assert!(e.contains("the tensorc version is not UTF-8"), "{e}");
        // The function count (first payload word) larger than the file.
        let mut b = good.clone();
        let start = FIXED_HEADER + 5 + 16;
        b[start + 7] = 0x7f;
        let e = Artifact::from_bytes(&reseal(b)).unwrap_err().0;
        assert!(e.contains("a count in the payload exceeds the file"), "{e}");
    }

    #[test]
    fn inconsistent_indices_are_rejected() {
        let mut a = sample();
        a.functions[0].program = 3;
        assert!(
            Artifact::from_bytes(&a.to_bytes())
                .unwrap_err()
                .0
                .contains("missing program")
        );
        let mut a = sample();
        a.programs[0].schedules[0].steps[0] = Step::Dispatch {
            kernel: 0,
            groups: [1, 1, 1],
            buffers: vec![0, 9],
        };
        assert!(
            Artifact::from_bytes(&a.to_bytes())
                .unwrap_err()
                .0
                .contains("binds missing")
        );
        let mut a = sample();
        a.programs[0].schedules[0].buffers[0].bytes = 1 << 40;
        assert!(
            Artifact::from_bytes(&a.to_bytes())
                .unwrap_err()
                .0
                .contains("wrong size")
        );
        let mut a = sample();
        a.programs[0].kernels[0].bindings = u32::MAX;
        assert!(
            Artifact::from_bytes(&a.to_bytes())
                .unwrap_err()
                .0
                .contains("declares 4294967295 bindings")
        );
        let mut a = sample();
        a.programs[0].kernels[0].words[0] = 0;
        assert!(
            Artifact::from_bytes(&a.to_bytes())
                .unwrap_err()
                .0
                .contains("not SPIR-V")
        );
    }
}
