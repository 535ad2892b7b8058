//! JIT tests on hand-written MLIR in the frontend's ABI (tensor inputs, one
//! memref out-param per result): these pin the descriptor layout for every
//! rank, several results, zero-size tensors and in-place output, independently
//! of the frontend. Expected values are computed by hand.

use super::*;
use tensorc_ir::graph::Function;
use tensorc_ir::{DType, Scalar, Span, Tensor, TensorType, Type};

fn tt(d: DType, shape: &[usize]) -> TensorType {
    TensorType::new(d, shape.to_vec())
}

/// The signature-only graph function `CpuModule::compile` needs.
fn sig(name: &str, params: &[(&str, TensorType)], results: &[TensorType]) -> Function {
    let result = if results.len() == 1 {
        Type::Tensor(results[0].clone())
    } else {
        Type::Tuple(results.iter().cloned().map(Type::Tensor).collect())
    };
    Function {
        name: name.into(),
        params: params
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect(),
        result,
        nodes: vec![],
        regions: vec![],
        span: Span::default(),
    }
}

fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
    let s: Vec<Scalar> = v.iter().map(|&x| Scalar::F(x as f64)).collect();
    Tensor::from_scalars(tt(DType::F32, shape), &s).unwrap()
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_scalars().into_iter().map(Scalar::as_f64).collect()
}

const KERNELS: &str = r#"
#id1 = affine_map<(i) -> (i)>
#red1 = affine_map<(i) -> ()>
module {
  // add: x + y on 2x3.
  func.func @add(%x: tensor<2x3xf32>, %y: tensor<2x3xf32>, %out: memref<2x3xf32>) attributes {llvm.emit_c_interface} {
    %e = tensor.empty() : tensor<2x3xf32>
    %r = linalg.add ins(%x, %y : tensor<2x3xf32>, tensor<2x3xf32>) outs(%e : tensor<2x3xf32>) -> tensor<2x3xf32>
    bufferization.materialize_in_destination %r in restrict writable %out : (tensor<2x3xf32>, memref<2x3xf32>) -> ()
    return
  }
  // dot: 2x3 . 3x2 matrix product.
  func.func @dot(%a: tensor<2x3xf32>, %b: tensor<3x2xf32>, %out: memref<2x2xf32>) attributes {llvm.emit_c_interface} {
    %z = arith.constant 0.0 : f32
    %e = tensor.empty() : tensor<2x2xf32>
    %f = linalg.fill ins(%z : f32) outs(%e : tensor<2x2xf32>) -> tensor<2x2xf32>
    %r = linalg.matmul ins(%a, %b : tensor<2x3xf32>, tensor<3x2xf32>) outs(%f : tensor<2x2xf32>) -> tensor<2x2xf32>
    bufferization.materialize_in_destination %r in restrict writable %out : (tensor<2x2xf32>, memref<2x2xf32>) -> ()
    return
  }
  // sum of a vector into a rank-0 result, and the same vector doubled: two results.
  func.func @sum_and_double(%v: tensor<4xi32>, %o0: memref<i32>, %o1: memref<4xi32>) attributes {llvm.emit_c_interface} {
    %z = arith.constant 0 : i32
    %e0 = tensor.empty() : tensor<i32>
    %f0 = linalg.fill ins(%z : i32) outs(%e0 : tensor<i32>) -> tensor<i32>
    %s = linalg.generic {indexing_maps = [#id1, #red1], iterator_types = ["reduction"]}
        ins(%v : tensor<4xi32>) outs(%f0 : tensor<i32>) {
      ^bb0(%a: i32, %acc: i32):
        %t = arith.addi %a, %acc : i32
        linalg.yield %t : i32
    } -> tensor<i32>
    %e1 = tensor.empty() : tensor<4xi32>
    %d = linalg.add ins(%v, %v : tensor<4xi32>, tensor<4xi32>) outs(%e1 : tensor<4xi32>) -> tensor<4xi32>
    bufferization.materialize_in_destination %s in restrict writable %o0 : (tensor<i32>, memref<i32>) -> ()
    bufferization.materialize_in_destination %d in restrict writable %o1 : (tensor<4xi32>, memref<4xi32>) -> ()
    return
  }
  // rank 0 in, rank 0 out: x * x in f64.
  func.func @square(%x: tensor<f64>, %out: memref<f64>) attributes {llvm.emit_c_interface} {
    %e = tensor.empty() : tensor<f64>
    %r = linalg.mul ins(%x, %x : tensor<f64>, tensor<f64>) outs(%e : tensor<f64>) -> tensor<f64>
    bufferization.materialize_in_destination %r in restrict writable %out : (tensor<f64>, memref<f64>) -> ()
    return
  }
  // put_slice-like: the result starts as a copy of the input %x, so a naive
  // in-place bufferization would write into the caller's input.
  func.func @put(%x: tensor<4xf32>, %u: tensor<2xf32>, %out: memref<4xf32>) attributes {llvm.emit_c_interface} {
    %r = tensor.insert_slice %u into %x[1] [2] [1] : tensor<2xf32> into tensor<4xf32>
    bufferization.materialize_in_destination %r in restrict writable %out : (tensor<4xf32>, memref<4xf32>) -> ()
    return
  }
  // A strided window of the input: bufferizes to a non-contiguous memref.copy,
  // which lowers to a call of the runtime's memrefCopy.
  func.func @window(%x: tensor<3x4xi16>, %out: memref<2x2xi16>) attributes {llvm.emit_c_interface} {
    %w = tensor.extract_slice %x[1, 1] [2, 2] [1, 2] : tensor<3x4xi16> to tensor<2x2xi16>
    bufferization.materialize_in_destination %w in restrict writable %out : (tensor<2x2xi16>, memref<2x2xi16>) -> ()
    return
  }
  // Rows 1..3 of every slab: each slab's two rows are contiguous on both
  // sides (memrefCopy copies them as one run of 10), the slabs are not.
  func.func @slab(%x: tensor<3x4x5xi16>, %out: memref<3x2x5xi16>) attributes {llvm.emit_c_interface} {
    %w = tensor.extract_slice %x[0, 1, 0] [3, 2, 5] [1, 1, 1] : tensor<3x4x5xi16> to tensor<3x2x5xi16>
    bufferization.materialize_in_destination %w in restrict writable %out : (tensor<3x2x5xi16>, memref<3x2x5xi16>) -> ()
    return
  }
  // zero-size: negate an empty 0x3 tensor.
  func.func @empty(%x: tensor<0x3xf32>, %out: memref<0x3xf32>) attributes {llvm.emit_c_interface} {
    %e = tensor.empty() : tensor<0x3xf32>
    %r = linalg.negf ins(%x : tensor<0x3xf32>) outs(%e : tensor<0x3xf32>) -> tensor<0x3xf32>
    bufferization.materialize_in_destination %r in restrict writable %out : (tensor<0x3xf32>, memref<0x3xf32>) -> ()
    return
  }
}
"#;

fn kernels() -> (tensorc_ir::Module, String) {
    let f = |d, s: &[usize]| tt(d, s);
    let module = tensorc_ir::Module {
        functions: vec![
            sig(
                "add",
                &[("x", f(DType::F32, &[2, 3])), ("y", f(DType::F32, &[2, 3]))],
                &[f(DType::F32, &[2, 3])],
            ),
            sig(
                "dot",
                &[("a", f(DType::F32, &[2, 3])), ("b", f(DType::F32, &[3, 2]))],
                &[f(DType::F32, &[2, 2])],
            ),
            sig(
                "sum_and_double",
                &[("v", f(DType::S32, &[4]))],
                &[f(DType::S32, &[]), f(DType::S32, &[4])],
            ),
            sig(
                "square",
                &[("x", f(DType::F64, &[]))],
                &[f(DType::F64, &[])],
            ),
            sig(
                "empty",
                &[("x", f(DType::F32, &[0, 3]))],
                &[f(DType::F32, &[0, 3])],
            ),
            sig(
                "put",
                &[("x", f(DType::F32, &[4])), ("u", f(DType::F32, &[2]))],
                &[f(DType::F32, &[4])],
            ),
            sig(
                "window",
                &[("x", f(DType::S16, &[3, 4]))],
                &[f(DType::S16, &[2, 2])],
            ),
            sig(
                "slab",
                &[("x", f(DType::S16, &[3, 4, 5]))],
                &[f(DType::S16, &[3, 2, 5])],
            ),
        ],
    };
    (module, KERNELS.to_string())
}

#[test]
fn runs_every_kind_of_signature() {
    let (module, text) = kernels();
    let cpu = CpuModule::compile(&module, &text, &Pipelines::naive()).unwrap();
    assert_eq!(cpu.functions().len(), 8);

    // add
    let x = f32s(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let y = f32s(&[2, 3], &[10., 20., 30., 40., 50., 60.]);
    let mut out = vec![Tensor::zeros(tt(DType::F32, &[2, 3])).unwrap()];
    cpu.function("add")
        .unwrap()
        .call(&[&x, &y], &mut out)
        .unwrap();
    assert_eq!(values(&out[0]), vec![11., 22., 33., 44., 55., 66.]);
    // inputs untouched
    assert_eq!(values(&x), vec![1., 2., 3., 4., 5., 6.]);

    // dot: [[1,2,3],[4,5,6]] . [[1,2],[3,4],[5,6]] = [[22,28],[49,64]]
    let b = f32s(&[3, 2], &[1., 2., 3., 4., 5., 6.]);
    let mut out = vec![Tensor::zeros(tt(DType::F32, &[2, 2])).unwrap()];
    cpu.function("dot")
        .unwrap()
        .call(&[&x, &b], &mut out)
        .unwrap();
    assert_eq!(values(&out[0]), vec![22., 28., 49., 64.]);

    // two results, one rank 0
    let v = Tensor::from_scalars(
        tt(DType::S32, &[4]),
        &[Scalar::I(1), Scalar::I(-2), Scalar::I(3), Scalar::I(10)],
    )
    .unwrap();
    let mut outs = vec![
        Tensor::zeros(tt(DType::S32, &[])).unwrap(),
        Tensor::zeros(tt(DType::S32, &[4])).unwrap(),
    ];
    cpu.function("sum_and_double")
        .unwrap()
        .call(&[&v], &mut outs)
        .unwrap();
    assert_eq!(outs[0].to_scalars(), vec![Scalar::I(12)]);
    assert_eq!(
        outs[1].to_scalars(),
        vec![Scalar::I(2), Scalar::I(-4), Scalar::I(6), Scalar::I(20)]
    );

    // rank 0
    let x0 = Tensor::from_scalars(tt(DType::F64, &[]), &[Scalar::F(-1.5)]).unwrap();
    let mut out = vec![Tensor::zeros(tt(DType::F64, &[])).unwrap()];
    cpu.function("square")
        .unwrap()
        .call(&[&x0], &mut out)
        .unwrap();
    assert_eq!(out[0].to_scalars(), vec![Scalar::F(2.25)]);

    // zero-size
    let e = Tensor::zeros(tt(DType::F32, &[0, 3])).unwrap();
    let mut out = vec![Tensor::zeros(tt(DType::F32, &[0, 3])).unwrap()];
    cpu.function("empty")
        .unwrap()
        .call(&[&e], &mut out)
        .unwrap();
    assert!(out[0].is_empty());
}

#[test]
fn results_are_written_in_place() {
    let (module, text) = kernels();
    let cpu = CpuModule::compile(&module, &text, &Pipelines::naive()).unwrap();
    let x = f32s(&[2, 3], &[1.; 6]);
    let mut out = vec![f32s(&[2, 3], &[7.; 6])];
    let before = out[0].as_ptr();
    cpu.function("add")
        .unwrap()
        .call(&[&x, &x], &mut out)
        .unwrap();
    assert_eq!(out[0].as_ptr(), before);
    assert_eq!(values(&out[0]), vec![2.; 6]);
}

#[test]
fn inputs_are_never_written() {
    let (module, text) = kernels();
    let cpu = CpuModule::compile(&module, &text, &Pipelines::naive()).unwrap();
    let x = f32s(&[4], &[1., 2., 3., 4.]);
    let u = f32s(&[2], &[-1., -2.]);
    let mut out = vec![Tensor::zeros(tt(DType::F32, &[4])).unwrap()];
    cpu.function("put")
        .unwrap()
        .call(&[&x, &u], &mut out)
        .unwrap();
    assert_eq!(values(&out[0]), vec![1., -1., -2., 4.]);
    assert_eq!(values(&x), vec![1., 2., 3., 4.]);
}

#[test]
fn strided_copies_use_the_runtime() {
    let (module, text) = kernels();
    let mlir = Mlir::new();
    let lowered = mlir.print(
        &lower(&mlir, &text, &Pipelines::naive(), Upto::LlvmDialect).unwrap(),
        Default::default(),
    );
    assert!(
        lowered.contains("llvm.call @memrefCopy"),
        "the test must exercise memrefCopy: {lowered}"
    );
    let cpu = CpuModule::compile(&module, &text, &Pipelines::naive()).unwrap();
    let vals: Vec<Scalar> = (0..12).map(Scalar::I).collect();
    let x = Tensor::from_scalars(tt(DType::S16, &[3, 4]), &vals).unwrap();
    let mut out = vec![Tensor::zeros(tt(DType::S16, &[2, 2])).unwrap()];
    cpu.function("window")
        .unwrap()
        .call(&[&x], &mut out)
        .unwrap();
    // rows 1..3, columns 1 and 3 of [[0,1,2,3],[4,5,6,7],[8,9,10,11]]
    assert_eq!(out[0].to_scalars(), [5, 7, 9, 11].map(Scalar::I).to_vec());
    // Rows 1 and 2 of each 4x5 slab of 0..60: elements 5..15, 25..35, 45..55.
    let vals: Vec<Scalar> = (0..60).map(Scalar::I).collect();
    let x = Tensor::from_scalars(tt(DType::S16, &[3, 4, 5]), &vals).unwrap();
    let mut out = vec![Tensor::zeros(tt(DType::S16, &[3, 2, 5])).unwrap()];
    cpu.function("slab").unwrap().call(&[&x], &mut out).unwrap();
    let want: Vec<Scalar> = [5..15, 25..35, 45..55].into_iter().flatten().map(Scalar::I).collect();
    assert_eq!(out[0].to_scalars(), want);
}

#[test]
fn arguments_are_checked_before_running() {
    let (module, text) = kernels();
    let cpu = CpuModule::compile(&module, &text, &Pipelines::naive()).unwrap();
    let add = cpu.function("add").unwrap();
    let bad = Tensor::zeros(tt(DType::F64, &[3, 2])).unwrap();
    let good = Tensor::zeros(tt(DType::F32, &[2, 3])).unwrap();
    let mut out = vec![Tensor::zeros(tt(DType::F32, &[2, 3])).unwrap()];
    let err = add.call(&[&bad, &good], &mut out).unwrap_err();
    assert_eq!(
        err.to_string(),
        "input 'x' expects f32[2][3], got f64[3][2]"
    );
    let mut wrong_out = vec![Tensor::zeros(tt(DType::F32, &[3])).unwrap()];
    let err = add.call(&[&good, &good], &mut wrong_out).unwrap_err();
    assert_eq!(err.to_string(), "output 0 expects f32[2][3], got f32[3]");
}

#[test]
fn missing_function_is_an_internal_error() {
    let (mut module, text) = kernels();
    module
        .functions
        .push(sig("ghost", &[], &[tt(DType::F32, &[])]));
    let err = CpuModule::compile(&module, &text, &Pipelines::naive())
        .err()
        .unwrap();
    assert!(
        matches!(&err, CpuError::MissingEntry(n) if n == "ghost"),
        "{err}"
    );
}

#[test]
fn stages_can_be_stopped_early() {
    let (_, text) = kernels();
    let mlir = Mlir::new();
    let m = lower(&mlir, &text, &Pipelines::naive(), Upto::Opt).unwrap();
    let printed = mlir.print(&m, Default::default());
    assert!(printed.contains("linalg.matmul"), "{printed}");
    let m = lower(&mlir, &text, &Pipelines::naive(), Upto::LlvmDialect).unwrap();
    let printed = mlir.print(&m, Default::default());
    assert!(printed.contains("llvm.func @_mlir_ciface_dot"), "{printed}");
    assert!(!printed.contains("linalg."), "{printed}");
}

#[test]
fn unresolved_runtime_functions_are_named() {
    let text = r#"module {
  llvm.func @tensorc_missing(f32) -> f32
  func.func @f(%x: tensor<f32>, %out: memref<f32>) attributes {llvm.emit_c_interface} {
    %v = tensor.extract %x[] : tensor<f32>
    %r = llvm.call @tensorc_missing(%v) : (f32) -> f32
    memref.store %r, %out[] : memref<f32>
    return
  }
}"#;
    let module = tensorc_ir::Module {
        functions: vec![sig(
            "f",
            &[("x", tt(DType::F32, &[]))],
            &[tt(DType::F32, &[])],
        )],
    };
    let err = CpuModule::compile(&module, text, &Pipelines::naive())
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "the generated code calls functions that are not available at run time: tensorc_missing"
    );
}

/// A 512x512 f32 temporary (1 MiB: `x * x`) reduced over its rows. The
/// naive pipeline keeps the product in a buffer of its own, which generated
/// code gets from the runtime's workspace: the first call may malloc it, every
/// later call gets it back from the cache (no malloc on this thread), until
/// `release_workspace` empties the cache. Other tests of this binary only
/// allocate tiny temporaries, so none competes for this size class.
#[test]
fn temporaries_come_from_the_workspace_after_the_first_call() {
    let _serial = runtime::tests::WORKSPACE_TESTS
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    const N: usize = 512;
    let text = format!(
        r#"
#id2 = affine_map<(i, j) -> (i, j)>
#row = affine_map<(i, j) -> (i)>
module {{
  func.func @sumsq(%x: tensor<{N}x{N}xf32>, %out: memref<{N}xf32>) attributes {{llvm.emit_c_interface}} {{
    %z = arith.constant 0.0 : f32
    %e = tensor.empty() : tensor<{N}x{N}xf32>
    %sq = linalg.mul ins(%x, %x : tensor<{N}x{N}xf32>, tensor<{N}x{N}xf32>) outs(%e : tensor<{N}x{N}xf32>) -> tensor<{N}x{N}xf32>
    %e1 = tensor.empty() : tensor<{N}xf32>
    %f = linalg.fill ins(%z : f32) outs(%e1 : tensor<{N}xf32>) -> tensor<{N}xf32>
    %s = linalg.generic {{indexing_maps = [#id2, #row], iterator_types = ["parallel", "reduction"]}}
        ins(%sq : tensor<{N}x{N}xf32>) outs(%f : tensor<{N}xf32>) {{
      ^bb0(%a: f32, %acc: f32):
        %t = arith.addf %a, %acc : f32
        linalg.yield %t : f32
    }} -> tensor<{N}xf32>
    bufferization.materialize_in_destination %s in restrict writable %out : (tensor<{N}xf32>, memref<{N}xf32>) -> ()
    return
  }}
}}"#
    );
    let mlir = Mlir::new();
    let lowered = mlir.print(
        &lower(&mlir, &text, &Pipelines::naive(), Upto::LlvmDialect).unwrap(),
        Default::default(),
    );
    assert!(
        lowered.contains("llvm.call @_mlir_memref_to_llvm_aligned_alloc")
            && lowered.contains("llvm.call @_mlir_memref_to_llvm_free")
            && !lowered.contains("@malloc"),
        "temporaries must go through the workspace: {lowered}"
    );
    let module = tensorc_ir::Module {
        functions: vec![sig(
            "sumsq",
            &[("x", tt(DType::F32, &[N, N]))],
            &[tt(DType::F32, &[N])],
        )],
    };
    let cpu = CpuModule::compile(&module, &text, &Pipelines::naive()).unwrap();
    let f = cpu.function("sumsq").unwrap();
    // Small integers: every sum is exact in f32, whatever the order.
    let x_vals: Vec<f32> = (0..N * N).map(|i| ((i * 7) % 13) as f32).collect();
    let x = f32s(&[N, N], &x_vals);
    let expected: Vec<f64> = x_vals
        .chunks(N)
        .map(|row| row.iter().map(|v| (v * v) as f64).sum())
        .collect();
    let mut out = vec![Tensor::zeros(tt(DType::F32, &[N])).unwrap()];
    let mut call = || {
        out[0] = Tensor::zeros(tt(DType::F32, &[N])).unwrap();
        let before = runtime::workspace_stats();
        f.call(&[&x], &mut out).unwrap();
        assert_eq!(values(&out[0]), expected);
        let after = runtime::workspace_stats();
        (
            after.system_allocs - before.system_allocs,
            after.cache_hits - before.cache_hits,
        )
    };
    call();
    for _ in 0..3 {
        let (mallocs, hits) = call();
        assert_eq!(mallocs, 0, "a steady-state call allocated from the system");
        assert!(hits >= 1, "the temporary must come from the cache");
    }
    assert!(runtime::workspace_stats().cached_bytes >= (N * N * 4) as u64);
    runtime::release_workspace();
    let (mallocs, _) = call();
    assert!(
        mallocs >= 1,
        "after release the temporary is allocated afresh"
    );
}

/// The workspace allocator compiled on its own with a 64 KiB cache bound,
/// driven by a C program: least-recently-freed eviction, the never-cached
/// large blocks, and four threads allocating, filling, checking and freeing
/// blocks of mixed sizes at once (a block handed out twice, or a broken
/// list, shows up as a wrong fill pattern or a crash), then a release that
/// empties the cache. The driver exits non-zero naming the first failure.
#[test]
fn workspace_eviction_and_threads_in_c() {
    let dir = std::env::temp_dir().join(format!("tensorc-workspace-c-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let driver = r#"#include <pthread.h>
#include <stdio.h>
#include <string.h>
void *_mlir_memref_to_llvm_alloc(size_t);
void _mlir_memref_to_llvm_free(void *);
void tensorc_release_workspace(void);
struct stats { unsigned long long system_allocs, system_bytes, cache_hits; };
void tensorc_workspace_stats(struct stats *, unsigned long long *);
#define CHECK(c) do { if (!(c)) { printf("failed: %s (line %d)\n", #c, __LINE__); return 1; } } while (0)
static unsigned long long cached(void) {
  struct stats s; unsigned long long c;
  tensorc_workspace_stats(&s, &c);
  return c;
}
static unsigned long long system_allocs(void) {
  struct stats s; unsigned long long c;
  tensorc_workspace_stats(&s, &c);
  return s.system_allocs;
}
static void *worker(void *arg) {
  unsigned seed = (unsigned)(size_t)arg * 2654435761u, i, k;
  unsigned char *live[8] = {0};
  size_t sizes[8] = {0};
  for (i = 0; i < 20000; i++) {
    k = (seed = seed * 1103515245u + 12345u) >> 29;
    if (live[k]) {
      size_t j;
      for (j = 0; j < sizes[k]; j++)
        if (live[k][j] != (unsigned char)(k + 16 * (size_t)arg)) return (void *)1;
      _mlir_memref_to_llvm_free(live[k]);
      live[k] = 0;
    } else {
      sizes[k] = 1 + ((seed >> 8) % 30000);
      live[k] = _mlir_memref_to_llvm_alloc(sizes[k]);
      if (!live[k] || (size_t)live[k] % 64) return (void *)2;
      memset(live[k], (int)(k + 16 * (size_t)arg), sizes[k]);
    }
  }
  for (k = 0; k < 8; k++) _mlir_memref_to_llvm_free(live[k]);
  return 0;
}
int main(void) {
  void *a, *b, *c, *d, *e, *big, *r;
  pthread_t t[4];
  size_t i;
  /* 20000 bytes round up to the 20480-byte class; three fit in 64 KiB. */
  a = _mlir_memref_to_llvm_alloc(20000);
  b = _mlir_memref_to_llvm_alloc(20000);
  c = _mlir_memref_to_llvm_alloc(20000);
  d = _mlir_memref_to_llvm_alloc(20000);
  CHECK(system_allocs() == 4 && cached() == 0);
  _mlir_memref_to_llvm_free(a);
  _mlir_memref_to_llvm_free(b);
  _mlir_memref_to_llvm_free(c);
  CHECK(cached() == 3 * 20480);
  _mlir_memref_to_llvm_free(d); /* evicts a, the oldest */
  CHECK(cached() == 3 * 20480);
  /* Most recently freed first: d, c, b, then a fresh block. */
  CHECK(_mlir_memref_to_llvm_alloc(19000) == d);
  CHECK(_mlir_memref_to_llvm_alloc(20480) == c);
  CHECK(_mlir_memref_to_llvm_alloc(17000) == b);
  CHECK(cached() == 0 && system_allocs() == 4);
  e = _mlir_memref_to_llvm_alloc(20000);
  CHECK(system_allocs() == 5);
  /* Another class is not served from this one. */
  _mlir_memref_to_llvm_free(e);
  r = _mlir_memref_to_llvm_alloc(100);
  CHECK(r != e && system_allocs() == 6);
  _mlir_memref_to_llvm_free(r);
  /* More than half the bound: allocated and freed, never kept. */
  big = _mlir_memref_to_llvm_alloc(40000);
  _mlir_memref_to_llvm_free(big);
  CHECK(cached() == 20480 + 112); /* 100 bytes: the 112-byte class */
  _mlir_memref_to_llvm_free(b);
  _mlir_memref_to_llvm_free(c);
  _mlir_memref_to_llvm_free(d);
  for (i = 0; i < 4; i++) pthread_create(&t[i], 0, worker, (void *)i);
  for (i = 0; i < 4; i++) {
    void *res;
    pthread_join(t[i], &res);
    CHECK(res == 0);
  }
  CHECK(cached() <= 65536);
  tensorc_release_workspace();
  CHECK(cached() == 0);
  printf("ok\n");
  return 0;
}
"#;
    let runtime = concat!(env!("CARGO_MANIFEST_DIR"), "/runtime/tensorc_workspace.c");
    std::fs::write(dir.join("driver.c"), driver).unwrap();
    let built = std::process::Command::new("cc")
        .current_dir(&dir)
        .args(["-O2", "-Wall", "-Wextra", "-Werror", "-pthread"])
        .args([
            "-DTENSORC_RT_STATS",
            "-DTENSORC_WORKSPACE_CACHE_BYTES=65536",
        ])
        .args(["driver.c", runtime, "-o", "driver"])
        .output()
        .expect("run the C compiler");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let out = std::process::Command::new(dir.join("driver"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The runtime's `__truncsfbf2` (what LLVM calls for f32 -> bf16 on CPUs
/// without a bf16 instruction) rounds exactly like the interpreter's
/// conversion: ties to even, overflow to inf, NaNs stay NaN (quieted).
#[test]
fn bf16_truncation_matches_the_interpreter() {
    use tensorc_ir::tensor::f32_to_bf16_bits;
    let mut inputs = vec![
        0.0f32, -0.0, 1.0, -1.0, f32::MAX, f32::MIN_POSITIVE, 1e-40, f32::INFINITY, f32::NEG_INFINITY,
        // exact ties between two bf16 values: to even, both directions
        f32::from_bits(0x3f80_8000), f32::from_bits(0x3f81_8000), f32::from_bits(0x3f80_8001),
        // rounds up into the next binade and past the largest finite bf16
        f32::from_bits(0x3fff_ffff), f32::from_bits(0x7f7f_ffff),
    ];
    let mut state = 0x1234_5678u32;
    for _ in 0..100_000 {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        inputs.push(f32::from_bits(state));
    }
    for x in inputs {
        // SAFETY: a pure function of its argument.
        let got = unsafe { crate::runtime::__truncsfbf2(x) }.to_bits() as u16;
        if x.is_nan() {
            assert!(got & 0x7f80 == 0x7f80 && got & 0x7f != 0 && got & 0x40 != 0, "{x:?} -> {got:#06x}");
            assert_eq!(got & 0x8000, (x.to_bits() >> 16) as u16 & 0x8000, "sign of {x:?}");
        } else {
            assert_eq!(got, f32_to_bf16_bits(x), "{x:?} ({:#010x})", x.to_bits());
        }
    }
}
