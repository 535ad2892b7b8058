//! Prints the generated program for a seed: `cargo run -p tensorc-progen --example generate -- 42`.
//! Handy for looking at what the differential test runs, or for a bug report.

fn main() {
    let seed = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    print!(
        "{}",
        tensorc_progen::generate(seed, &tensorc_progen::GenConfig::default())
    );
}
