//! Compiles the three models with tensorc (found through $TENSORC or PATH) into
//! static archives linked into this crate, and generates `OUT_DIR/models.rs`,
//! the safe Rust functions `src/main.rs` includes.

fn main() {
    tensorc_build::Build::new()
        .file("../mlp.nxir")
        .file("models/extra.nxir")
        .file("models/names.nxir")
        .ndarray(true)
        .compile("models");
}
