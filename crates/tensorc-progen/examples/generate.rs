//! Prints the generated program for a seed: `cargo run -p tensorc-progen --example generate -- 42`
//! (add `int` or `special` for the integer-only or special-input configuration of the
//! differential tests; `TENSORC_GEN_STATEMENTS` sets the most statements per def, as for the
//! tests). Handy for looking at what the differential test runs, or for a bug report.

use tensorc_progen::GenConfig;

fn main() {
    let mut args = std::env::args().skip(1);
    let seed = args.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut cfg = match args.next().as_deref() {
        Some("int") => GenConfig {
            dtypes: tensorc_ir::DType::ALL
                .into_iter()
                .filter(|d| d.is_int())
                .collect(),
            floats: false,
            ..GenConfig::default()
        },
        Some("special") => GenConfig {
            special_inputs: true,
            ..GenConfig::default()
        },
        _ => GenConfig::default(),
    };
    if let Some(n) = std::env::var("TENSORC_GEN_STATEMENTS").ok().and_then(|v| v.parse().ok()) {
        cfg.max_statements = n;
    }
    print!("{}", tensorc_progen::generate(seed, &cfg));
}
