//! The one way tensorc's Rust passes become melior external passes. Every
//! pass of this crate is anchored on `builtin.module`, keeps no state and
//! rewrites the module through raw handles (`raw.rs`), so what differs
//! between them is only the name, the description, the dialects it may
//! create and the function that does the work; `module_pass` is the
//! registration they share instead of each repeating the struct, the
//! `RunExternalPass` impl and the `create_external` call.

use melior::ContextRef;
use melior::dialect::DialectHandle;
use melior::ir::OperationRef;
use melior::ir::r#type::TypeId;
use melior::pass::{ExternalPass, Pass, RunExternalPass, create_external};
use mlir_sys::MlirOperation;

/// A pass's identity for MLIR: the address of a `static` of this type
/// (`static PASS_ID: PassId = PassId::new();`, one per pass). MLIR needs it
/// 8-byte aligned; the byte of content keeps two passes' statics from
/// sharing an address, which zero-sized statics may do.
#[repr(align(8))]
pub(crate) struct PassId(#[allow(dead_code)] u8);

impl PassId {
    pub(crate) const fn new() -> Self {
        PassId(0)
    }
}

/// The pass object MLIR clones per thread: only the work function.
#[derive(Clone)]
struct ModulePass {
    run: fn(MlirOperation) -> bool,
}

impl<'c> RunExternalPass<'c> for ModulePass {
    fn initialize(&mut self, _context: ContextRef<'c>) {}

    fn run(&mut self, module: OperationRef<'c, '_>, pass: ExternalPass<'_>) {
        if !(self.run)(module.to_raw()) {
            pass.signal_failure();
        }
    }
}

/// Creates a pass anchored on `builtin.module` whose argument and name in
/// pipeline strings are both `name`. `run` gets the live module and returns
/// whether the pass succeeded (on `false` it should have emitted an error
/// diagnostic; the pass then signals failure). `dialects` are those whose
/// ops it may create that the input may lack (tensorc's context loads every
/// dialect, so this is documentation more than necessity).
pub(crate) fn module_pass(
    id: &'static PassId,
    name: &str,
    description: &str,
    dialects: &[DialectHandle],
    run: fn(MlirOperation) -> bool,
) -> Pass {
    create_external(
        ModulePass { run },
        TypeId::create(id),
        name,
        name,
        description,
        "builtin.module",
        dialects,
    )
}
