//! `tensorc-unpack-in-place` (`passes/tensorc-passes/src/unpack_in_place.rs`):
//! packed matmul results computed in a strided view of the result.
//!
//! - the pass before and after on a buffer-level packed product (the
//!   temporary, its fill, a tile through two subviews, the unpack nest):
//!   rewritten to an `expand_shape` + `transpose` view of the result, the
//!   unpack and the buffer gone, the subviews retyped; left alone when the
//!   result is padded, when the unpack does more than copy (an epilogue),
//!   and when the result is used elsewhere; by snapshot and by counts;
//! - interpreter-vs-CPU runs of packed matmuls whose M and N are multiples
//!   of the tiles (rewritten), on one and two threads, f32 and s32, with
//!   and without an epilogue; the W3-like shape loses its packed temporary
//!   (no 4-D `alloc` left in the LLVM dialect).

use crate::harness::{EdgeSet, before_and_after, differential_all, function_text};

/// `@packed`: a 64×32 result packed as 4×2×16×16 (`{out}` and `{unpack}`
/// vary per case).
fn packed(name: &str, out: &str, epilogue: bool, extra_use: bool) -> String {
    let value = if epilogue { "%e" } else { "%v" };
    let add = if epilogue {
        "        %e = arith.addf %v, %v : vector<16x16xf32>\n"
    } else {
        ""
    };
    let extra = if extra_use {
        "    %w = vector.transfer_read %out[%c0, %c0], %p {in_bounds = [true, true]} : OUT, vector<16x16xf32>\n    vector.transfer_write %w, %out[%c16, %c0] {in_bounds = [true, true]} : vector<16x16xf32>, OUT\n"
    } else {
        ""
    };
    format!(
        r#"  func.func @{name}(%out: OUT, %b: memref<16x16xf32>) {{
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c4 = arith.constant 4 : index
    %c16 = arith.constant 16 : index
    %c32 = arith.constant 32 : index
    %c64 = arith.constant 64 : index
    %p = ub.poison : f32
    %zero = arith.constant dense<0.0> : vector<16x16xf32>
    %t = memref.alloc() {{alignment = 64 : i64}} : memref<4x2x16x16xf32>
    scf.for %i = %c0 to %c4 step %c1 {{
      scf.for %j = %c0 to %c2 step %c1 {{
        vector.transfer_write %zero, %t[%i, %j, %c0, %c0] {{in_bounds = [true, true]}} : vector<16x16xf32>, memref<4x2x16x16xf32>
      }}
    }}
    %col = memref.subview %t[0, 1, 0, 0] [4, 1, 16, 16] [1, 1, 1, 1] : memref<4x2x16x16xf32> to memref<4x1x16x16xf32, strided<[512, 256, 16, 1], offset: 256>>
    scf.for %i = %c0 to %c4 step %c1 {{
      %tile = memref.subview %col[%i, 0, 0, 0] [1, 1, 16, 16] [1, 1, 1, 1] : memref<4x1x16x16xf32, strided<[512, 256, 16, 1], offset: 256>> to memref<1x1x16x16xf32, strided<[512, 256, 16, 1], offset: ?>>
      %x = vector.transfer_read %tile[%c0, %c0, %c0, %c0], %p {{in_bounds = [true, true]}} : memref<1x1x16x16xf32, strided<[512, 256, 16, 1], offset: ?>>, vector<16x16xf32>
      %y = vector.transfer_read %b[%c0, %c0], %p {{in_bounds = [true, true]}} : memref<16x16xf32>, vector<16x16xf32>
      %s = arith.addf %x, %y : vector<16x16xf32>
      vector.transfer_write %s, %tile[%c0, %c0, %c0, %c0] {{in_bounds = [true, true]}} : vector<16x16xf32>, memref<1x1x16x16xf32, strided<[512, 256, 16, 1], offset: ?>>
    }}
{extra}    scf.for %i = %c0 to %c64 step %c16 {{
      %a = affine.apply affine_map<(d0) -> (d0 floordiv 16)>(%i)
      scf.for %j = %c0 to %c32 step %c16 {{
        %bj = affine.apply affine_map<(d0) -> (d0 floordiv 16)>(%j)
        %v = vector.transfer_read %t[%a, %bj, %c0, %c0], %p {{in_bounds = [true, true]}} : memref<4x2x16x16xf32>, vector<16x16xf32>
{add}        vector.transfer_write {value}, %out[%i, %j] {{in_bounds = [true, true]}} : vector<16x16xf32>, OUT
      }}
    }}
    memref.dealloc %t : memref<4x2x16x16xf32>
    return
  }}
"#
    )
    .replace("OUT", out)
}

#[test]
fn unpack_in_place_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::unpack_in_place;
    tensorc_mlir::register_external_pass(unpack_in_place::NAME, unpack_in_place::create);
    let module = format!(
        "module {{\n{}{}{}{}}}\n",
        packed("exact", "memref<64x32xf32>", false, false),
        packed("padded", "memref<60x32xf32>", false, false),
        packed("epilogue", "memref<64x32xf32>", true, false),
        packed("out_used_elsewhere", "memref<64x32xf32>", false, true),
    );
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, &module, unpack_in_place::NAME);
    let exact = function_text(&after, "exact").to_owned();
    // The view of the result: rows of 16 elements 32 apart, blocks of 16
    // rows 512 apart.
    assert!(
        exact.contains("memref.expand_shape %arg0 [[0, 1], [2, 3]] output_shape [4, 16, 2, 16]"),
        "{exact}"
    );
    assert!(exact.contains("strided<[512, 16, 32, 1]>"), "{exact}");
    assert!(
        !exact.contains("memref.alloc") && !exact.contains("memref.dealloc"),
        "{exact}"
    );
    // The unpack nest (two loops, two applies) is gone; the fill and the
    // tile loops remain.
    assert!(!exact.contains("floordiv"), "{exact}");
    assert_eq!(exact.matches("scf.for").count(), 3, "{exact}");
    // Both subviews now have the view's strides; the column block's offset
    // is static (element [0, 16] of the result), the tile's dynamic.
    assert!(
        exact.contains("strided<[512, 16, 32, 1], offset: 16>"),
        "{exact}"
    );
    assert!(
        exact.contains("strided<[512, 16, 32, 1], offset: ?>"),
        "{exact}"
    );
    for name in ["padded", "epilogue", "out_used_elsewhere"] {
        assert_eq!(
            function_text(&before, name),
            function_text(&after, name),
            "@{name} changed"
        );
    }
    insta::assert_snapshot!(
        "unpack_in_place_pass",
        format!("// before\n{before}\n// after\n{after}")
    );
}

fn dot(at: &str, bt: &str, ot: &str) -> String {
    format!(
        "def main(a: {at}, b: {bt}) -> {ot} {{\n  c = dot a, [1], [], b, [0], []\n  return c\n}}\n"
    )
}

#[test]
fn packed_results_in_place_agree_with_the_interpreter() {
    let programs = [
        // M, N multiples of 16, K of neither the block nor 16.
        ("exact_f32", dot("f32[128][600]", "f32[600][1024]", "f32[128][1024]"), 5e-5),
        ("exact_k_large", dot("f32[64][1030]", "f32[1030][1024]", "f32[64][1024]"), 5e-5),
        ("exact_s32", dot("s32[80][520]", "s32[520][1024]", "s32[80][1024]"), 0.0),
        // The epilogue keeps its temporary.
        (
            "exact_bias_relu",
            "def main(x: f32[96][600], w: f32[600][1024], b: f32[1024]) -> f32[96][1024] {\n  h = dot x, [1], [], w, [0], []\n  z = add h, b\n  y = max z, 0.0\n  return y\n}\n"
                .to_owned(),
            5e-5,
        ),
    ];
    let failures = crate::threads::on_threads(&[1, 2], || {
        differential_all(&programs, EdgeSet::Mild, 9)
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// W3's shape computes in its result: no packed 16×16 temporary left.
#[test]
fn w3_like_product_has_no_packed_temporary() {
    let source = dot("f32[512][512]", "f32[512][1024]", "f32[512][1024]");
    let llvm = crate::harness::avx512_llvm_dialect("w3like.nxir", &source);
    // Three temporaries are left: A's pack and B's two block buffers
    // (`tensorc-pack-ahead`); with the packed result there were four.
    let allocs = llvm
        .matches("llvm.call @_mlir_memref_to_llvm_aligned_alloc")
        .count();
    assert_eq!(allocs, 3, "{llvm}");
}

/// A batch of packed products (`tensorc-pack-mark` makes it a loop of
/// matmuls, each filling its own slice of the result) computes each
/// product in its slice of the batched result: a view with a dynamic
/// offset, made inside the loop after the temporary was hoisted out of it.
#[test]
fn batched_products_compute_in_their_result_slices() {
    let source = "def main(a: f32[2][128][512], b: f32[2][512][1024]) -> f32[2][128][1024] {\n  c = dot a, [2], [0], b, [1], [0]\n  return c\n}\n";
    let llvm = crate::harness::avx512_llvm_dialect("batched.nxir", source);
    // A's pack and B's two block buffers (`tensorc-pack-ahead`), no
    // packed result.
    let allocs = llvm
        .matches("llvm.call @_mlir_memref_to_llvm_aligned_alloc")
        .count();
    assert_eq!(allocs, 3, "{llvm}");
}
