//! Debugging aid: print the frontend's MLIR for a `.nxir` file
//! (`cargo run -p tensorc-frontend --example lower -- FILE.nxir`), without
//! building the LLVM-linking crates.

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: lower FILE.nxir");
        std::process::exit(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    let file = tensorc_ir::SourceFile::new(path.clone(), text);
    match tensorc_ir::check::compile(&file) {
        Err(d) => {
            eprint!("{}", tensorc_ir::render::render(&d));
            std::process::exit(1);
        }
        Ok(m) => match tensorc_frontend::lower(&m, &file) {
            Ok(s) => print!("{s}"),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        },
    }
}
