//! Gathers in element-wise tiles (`take`, `take_along_axis`): the element-wise
//! schedule vectorizes a tile's `tensor.extract` as a vector gather
//! (`structured.vectorize {vectorize_nd_extract}`, elementwise_schedule.rs);
//! before, such tiles stayed scalar loops (`take` of 8192 rows of 512 from a
//! 50000×512 table: 1.35 → 0.85 ms, one thread, docs/benchmarks.md).
//!
//! - the wide cases of `tests/cases/ops/take_wide.nxir` lower to vector
//!   gathers, whole rows to contiguous vector loads (their runs against
//!   the interpreter are the case file's own tests);
//! - known values: rows of a table whose element `[i][j]` is `1000·i + j`,
//!   taken with indices in range and out of it (clamped into the axis), on
//!   one and two threads.

use tensorc::{CompileOptions, DType, Scalar, Stage, Tensor, TensorType};

#[test]
fn wide_takes_are_vector_gathers() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/cases/ops/take_wide.nxir");
    let source = std::fs::read_to_string(path).unwrap();
    let llvm = tensorc::emit("take_wide.nxir", &source, Stage::LlvmDialect)
        .unwrap_or_else(|e| panic!("{}", e.render()));
    // Whole rows (`take` along an axis with axes after it) are contiguous
    // loads: the index is read inside the body, uniform across the tile.
    for (f, gathers) in [("rows", false), ("columns", true), ("integer_rows", false), ("along_rows", true)] {
        let start = llvm
            .find(&format!("llvm.func @{f}("))
            .unwrap_or_else(|| panic!("no @{f}"));
        let body = &llvm[start..];
        let end = body[1..].find("llvm.func @").map_or(body.len(), |e| e + 1);
        assert_eq!(
            body[..end].contains("llvm.intr.masked.gather"),
            gathers,
            "@{f}:\n{}",
            &body[..end]
        );
        assert!(body[..end].contains("vector<16x"), "@{f} is not vectorized:\n{}", &body[..end]);
    }
}

#[test]
fn taken_rows_match_known_values() {
    let (rows, cols) = (300usize, 100usize);
    let source = format!(
        "def main(x: f32[{rows}][{cols}], idx: s32[40]) -> f32[40][{cols}] {{\n  r = take x, idx\n  return r\n}}\n"
    );
    let table: Vec<Scalar> = (0..rows * cols)
        .map(|e| Scalar::F((1000 * (e / cols) + e % cols) as f64))
        .collect();
    // In range, both ends, and out of range on both sides (clamped).
    let idx: Vec<i64> = (0..40)
        .map(|i| [7 * i - 20, 299, 0, 1000, -1][i as usize % 5])
        .collect();
    let inputs = [
        Tensor::from_scalars(TensorType::new(DType::F32, vec![rows, cols]), &table).unwrap(),
        Tensor::from_scalars(
            TensorType::new(DType::S32, vec![40]),
            &idx.iter().map(|&i| Scalar::I(i)).collect::<Vec<_>>(),
        )
        .unwrap(),
    ];
    let program = tensorc::compile_str("take_known.nxir", &source, &CompileOptions::default())
        .unwrap_or_else(|e| panic!("{}", e.render()));
    let failures = crate::threads::on_threads(&[1, 2], || {
        let got = match program.entry(None).and_then(|f| f.call(&inputs)) {
            Ok(g) => g,
            Err(e) => return vec![e.render()],
        };
        let mut bad = Vec::new();
        for (r, &i) in idx.iter().enumerate() {
            let row = i.clamp(0, rows as i64 - 1);
            for c in 0..cols {
                let want = (1000 * row + c as i64) as f64;
                match got[0].get(r * cols + c) {
                    Scalar::F(have) if have == want => {}
                    other => bad.push(format!("[{r}][{c}] (index {i}) is {other:?}, want {want}")),
                }
            }
        }
        bad
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
