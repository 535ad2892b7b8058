//! Runs the packing step and the matmul schedule through `mlir-opt` on small
//! modules and checks what they did to the IR: which matmuls get packed, that
//! the packed ones end as 8×32×1 contractions with no pack/unpack left, and
//! that a bias + relu consumer reads the packed result directly (fused into
//! the unpacking). The crate itself stays LLVM-free; the test drives the
//! `mlir-opt` of the LLVM 22 install the workspace builds against.

use std::path::PathBuf;
use std::process::Command;

use tensorc_passes::matmul_schedule::{MatmulTiles, matmul_schedule, script_file};
use tensorc_passes::packed_matmul::{PACK_ENTRY, PackedMatmul, pack_schedule};

fn mlir_opt() -> PathBuf {
    let prefix = std::env::var("MLIR_SYS_220_PREFIX").unwrap_or_else(|_| "/usr/lib/llvm-22".into());
    PathBuf::from(prefix).join("bin/mlir-opt")
}

/// `input` after the packing step alone, or after it and the matmul schedule.
fn run(input: &str, with_main: bool) -> String {
    let pack = script_file(&pack_schedule(PackedMatmul::default())).unwrap();
    let mut pipeline = format!(
        "builtin.module(transform-preload-library{{transform-library-paths={}}},transform-interpreter{{entry-point={PACK_ENTRY}}}",
        pack.display()
    );
    if with_main {
        let main = script_file(&matmul_schedule(
            MatmulTiles::default(),
            PackedMatmul::default(),
        ))
        .unwrap();
        pipeline.push_str(&format!(
            ",transform-preload-library{{transform-library-paths={}}},transform-interpreter,canonicalize,cse",
            main.display()
        ));
    }
    pipeline.push(')');
    // A content-named file, like the schedules: tests running in parallel
    // never write each other's input.
    let file = script_file(input).unwrap();
    let out = Command::new(mlir_opt())
        .arg(&file)
        .arg(format!("--pass-pipeline={pipeline}"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", mlir_opt().display()));
    assert!(
        out.status.success(),
        "mlir-opt failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A function computing `relu(a·b + bias)` (with `epilogue`) or `a·b`, in
/// the form the frontend and the `opt` stage produce, the matmul tagged to
/// be packed as `tensorc-pack-mark` tags it (that Rust pass, which decides
/// by the sizes, does not run in `mlir-opt`; its decisions are tested with
/// the pass, in the integration tests).
fn matmul(m: usize, n: usize, k: usize, dtype: &str, epilogue: bool) -> String {
    matmul_tagged(m, n, k, dtype, epilogue, true)
}

fn matmul_tagged(m: usize, n: usize, k: usize, dtype: &str, epilogue: bool, tag: bool) -> String {
    matmul_with(
        m,
        n,
        k,
        dtype,
        epilogue,
        if tag { " {tensorc.pack}" } else { "" },
    )
}

fn matmul_with(m: usize, n: usize, k: usize, dtype: &str, epilogue: bool, tag: &str) -> String {
    let zero = if dtype.starts_with('f') { "0.0" } else { "0" };
    let (bias_arg, body, result) = if epilogue {
        (
            format!(", %bias: tensor<{n}x{dtype}>"),
            format!(
                "    %r = linalg.generic {{indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (j)>, affine_map<(i, j) -> (i, j)>], iterator_types = [\"parallel\", \"parallel\"]}} ins(%c, %bias : tensor<{m}x{n}x{dtype}>, tensor<{n}x{dtype}>) outs(%e : tensor<{m}x{n}x{dtype}>) {{\n\
                 \x20   ^bb0(%x: {dtype}, %y: {dtype}, %o: {dtype}):\n\
                 \x20     %s = arith.addf %x, %y : {dtype}\n\
                 \x20     %t = arith.maximumf %s, %z : {dtype}\n\
                 \x20     linalg.yield %t : {dtype}\n\
                 \x20   }} -> tensor<{m}x{n}x{dtype}>\n"
            ),
            "%r",
        )
    } else {
        (String::new(), String::new(), "%c")
    };
    format!(
        "func.func @f(%a: tensor<{m}x{k}x{dtype}>, %b: tensor<{k}x{n}x{dtype}>{bias_arg}) -> tensor<{m}x{n}x{dtype}> {{\n\
         \x20 %z = arith.constant {zero} : {dtype}\n\
         \x20 %e = tensor.empty() : tensor<{m}x{n}x{dtype}>\n\
         \x20 %f = linalg.fill ins(%z : {dtype}) outs(%e : tensor<{m}x{n}x{dtype}>) -> tensor<{m}x{n}x{dtype}>\n\
         \x20 %c = linalg.matmul{tag} ins(%a, %b : tensor<{m}x{k}x{dtype}>, tensor<{k}x{n}x{dtype}>) outs(%f : tensor<{m}x{n}x{dtype}>) -> tensor<{m}x{n}x{dtype}>\n\
         {body}\
         \x20 return {result} : tensor<{m}x{n}x{dtype}>\n\
         }}\n"
    )
}

#[test]
fn only_tagged_matmuls_are_packed() {
    let packed = |m, n, k, dtype, tag| {
        run(&matmul_tagged(m, n, k, dtype, false, tag), false).contains("linalg.pack")
    };
    // Sizes no tile divides, and s32.
    assert!(packed(65, 1030, 257, "f32", true));
    assert!(packed(70, 259, 1025, "f32", true));
    assert!(packed(64, 1024, 256, "i32", true));
    // The same products untagged.
    assert!(!packed(65, 1030, 257, "f32", false));
    assert!(!packed(64, 1024, 256, "i32", false));
}

#[test]
fn packed_matmul_becomes_8x32_contractions_with_no_pack_left() {
    let out = run(&matmul(65, 1030, 257, "f32", false), true);
    for gone in [
        "linalg.pack",
        "linalg.unpack",
        "linalg.matmul",
        "linalg.generic",
    ] {
        assert!(!out.contains(gone), "{gone} left:\n{out}");
    }
    assert!(out.contains("vector.contract"), "{out}");
    // 8×32 register tiles (two B panels per k); 1030 columns make 65
    // panels, so the peeled last tile is 8×16. Both are static and vectorized.
    assert!(
        out.contains("vector<2x1x16xf32> into vector<1x2x8x16xf32>"),
        "{out}"
    );
    assert!(
        out.contains("vector<1x1x16xf32> into vector<1x1x8x16xf32>"),
        "{out}"
    );
    // K blocks of 128 (257 leaves a block of 1): the packing step cuts the
    // blocks and peels the last, so a full block is a k loop of 128 steps
    // carrying the 8×32 tile. B is packed block by block into block-sized
    // temporaries: a full block reads its [32][128][16] block, the block
    // of 1 its [32][1][16] block (B's row 256 alone); no B packed whole.
    assert!(
        out.lines()
            .any(|l| l.contains("to %c128 step %c1 iter_args") && l.contains("-> (vector<1x2x8x16xf32>)")),
        "{out}"
    );
    assert!(out.contains("tensor<32x128x16xf32>, vector<2x1x16xf32>"), "{out}");
    assert!(out.contains("tensor<32x1x16xf32>, vector<2x1x16xf32>"), "{out}");
    assert!(!out.contains("tensor<65x257x16xf32>"), "{out}");
    // The full N blocks' B slices are static: only the last, partial N
    // block pads (its 6 columns to one 16-wide panel); A pads its 65 rows.
    assert_eq!(out.matches("tensor.pad").count(), 3, "{out}");
}

#[test]
fn bias_relu_consumer_reads_the_packed_result() {
    let out = run(&matmul(64, 1024, 256, "f32", true), true);
    // The epilogue's 8×16 tile is read straight out of the packed
    // [M/8][N/16][8][16] result (one [1][1][8][16] tile per read): no
    // unpacked temporary in between.
    assert!(
        out.contains("tensor<8x64x8x16xf32>, vector<1x1x8x16xf32>"),
        "epilogue does not read the packed tile:\n{out}"
    );
    assert!(
        out.contains("arith.maximumf") && out.contains("vector<8x16xf32>"),
        "{out}"
    );
    assert!(
        !out.contains("linalg.unpack") && !out.contains("linalg.transpose"),
        "{out}"
    );
}

/// A dot with a transposed operand, as the frontend writes it (a
/// `linalg.transpose` into a temporary, then `linalg.matmul`): the packing
/// step folds the transpose into the pack (`fold_into_pack_and_unpack`), so
/// B is packed straight from its N×K layout and no transposed copy is left.
#[test]
fn transposed_operand_is_packed_in_place() {
    let input = "func.func @f(%a: tensor<77x600xf32>, %bt: tensor<1031x600xf32>) -> tensor<77x1031xf32> {\n\
         \x20 %z = arith.constant 0.0 : f32\n\
         \x20 %e = tensor.empty() : tensor<77x1031xf32>\n\
         \x20 %f = linalg.fill ins(%z : f32) outs(%e : tensor<77x1031xf32>) -> tensor<77x1031xf32>\n\
         \x20 %te = tensor.empty() : tensor<600x1031xf32>\n\
         \x20 %b = linalg.transpose ins(%bt : tensor<1031x600xf32>) outs(%te : tensor<600x1031xf32>) permutation = [1, 0]\n\
         \x20 %c = linalg.matmul {tensorc.pack} ins(%a, %b : tensor<77x600xf32>, tensor<600x1031xf32>) outs(%f : tensor<77x1031xf32>) -> tensor<77x1031xf32>\n\
         \x20 return %c : tensor<77x1031xf32>\n\
         }\n";
    let packed = run(input, false);
    assert!(!packed.contains("linalg.transpose"), "{packed}");
    // B's packs (one per block) read slices of %bt, [N/16][K][16] with the
    // N×K source's first axis tiled.
    assert!(packed.contains("linalg.pack %extracted_slice"), "{packed}");
    assert!(packed.contains("tensor<1031x600xf32> to tensor<512x128xf32>"), "{packed}");
    let lowered = run(input, true);
    assert!(!lowered.contains("linalg."), "{lowered}");
    assert!(lowered.contains("vector.contract"), "{lowered}");
}

/// A product whose threads split N (`tensorc-pack-mark` adds the chunk,
/// `PackedMatmul::n_chunk`): one `scf.forall` of 16-panel (256-column)
/// chunks, each packing its own B blocks inside its own K block loop; no N
/// block loop and no B packed outside the chunks.
#[test]
fn n_chunked_product_packs_b_inside_each_chunk() {
    let input = matmul_with(
        65,
        1024,
        300,
        "f32",
        true,
        " {tensorc.pack, tensorc.pack_n16}",
    );
    let packed = run(&input, false);
    // 1024 columns: 64 panels in four chunks.
    assert_eq!(packed.matches("scf.forall (").count(), 1, "{packed}");
    assert!(packed.contains("scf.forall (%arg3) in (4)"), "{packed}");
    let chunk =
        &packed[packed.find("scf.forall").unwrap()..packed.find("scf.forall.in_parallel").unwrap()];
    // Inside it: a full K block's B pack (128 rows of the chunk's 256
    // columns) in the K loop, the peeled last block's (44 rows) after it,
    // both block-sized; A is packed once, outside.
    assert!(
        chunk.contains("scf.for %arg5 = %c0 to %c256 step %c128"),
        "{chunk}"
    );
    assert!(
        chunk.contains("tensor<128x256xf32> -> tensor<16x128x16xf32>"),
        "{chunk}"
    );
    assert!(
        chunk.contains("tensor<44x256xf32> -> tensor<16x44x16xf32>"),
        "{chunk}"
    );
    assert_eq!(chunk.matches("linalg.pack").count(), 2, "{chunk}");
    assert_eq!(packed.matches("linalg.pack").count(), 3, "{packed}");
    assert!(
        !packed.contains("tensor<300x1024xf32> ->"),
        "B packed whole:\n{packed}"
    );
    // The bias + relu epilogue is still fused into the unpack, after the
    // chunks.
    assert!(packed.contains("attrs =  {tensorc.vec}"), "{packed}");
    let lowered = run(&input, true);
    assert!(lowered.contains("scf.forall"), "{lowered}");
    assert!(!lowered.contains("linalg."), "{lowered}");
    assert!(
        lowered.contains("vector<2x1x16xf32> into vector<1x2x8x16xf32>"),
        "{lowered}"
    );
}
