//! `Tensor`: a dense, row-major tensor value with 64-byte-aligned storage.
//!
//! Shared by the interpreter (as its value type), the JIT (buffers handed to
//! generated code, which may assume vector alignment), `.npy` I/O and the
//! library API, so that no layer needs to copy between representations.

use crate::types::{DType, TensorType};
use std::alloc::{Layout, alloc, alloc_zeroed, dealloc};
use std::fmt;
use std::ptr::NonNull;

/// Alignment of every tensor buffer: one cache line, enough for AVX-512 loads.
pub const TENSOR_ALIGN: usize = 64;

/// Buffers of at least this many bytes start on a `HUGE_PAGE` boundary and,
/// on Linux, are advised to use transparent huge pages (`madvise`'s
/// `MADV_HUGEPAGE`, which this machine's kernel honours only when asked):
/// streaming through 32 MiB a 4 KiB page at a time costs a TLB miss every 64
/// lines. NumPy does the same for its arrays from 4 MiB on, so in `cargo
/// xtask bench` its inputs had 2 MiB pages and ours did not. Layernorm over
/// 8192×1024 f32 with input and output in 2 MiB pages took 0.94× the time
/// (an AOT library alternated between two sets of buffers in one process;
/// softmax 0.99×, the 1024³ and 2048³ matmuls, which pack their operands,
/// 0.98× and 1.01×).
pub const HUGE_FROM: usize = 4 << 20;

/// The huge page size `HUGE_FROM` buffers are aligned to (x86-64's 2 MiB).
pub const HUGE_PAGE: usize = 2 << 20;

/// The layout of a buffer of `len` bytes (`len` > 0).
fn layout_for(len: usize) -> Layout {
    let align = if len >= HUGE_FROM { HUGE_PAGE } else { TENSOR_ALIGN };
    Layout::from_size_align(len, align).expect("size fits isize")
}

/// Asks the kernel to back `[p, p + len)`, a fresh allocation of ours that
/// nothing has touched yet, with huge pages. Only advice: where transparent
/// huge pages are off or not built in, nothing changes (the call may fail).
#[cfg(target_os = "linux")]
fn advise_huge_pages(p: *mut u8, len: usize) {
    unsafe extern "C" {
        fn madvise(addr: *mut std::ffi::c_void, length: usize, advice: i32) -> i32;
    }
    const MADV_HUGEPAGE: i32 = 14;
    // SAFETY: `p` starts an allocation of `len` bytes (aligned to
    // `HUGE_PAGE`, so to the page size too); advice does not change its
    // contents or who owns it.
    let _ = unsafe { madvise(p.cast(), len, MADV_HUGEPAGE) };
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_p: *mut u8, _len: usize) {}

/// An owned byte buffer aligned to `TENSOR_ALIGN` (large ones to
/// `HUGE_PAGE`). Zero-sized buffers still have a valid, aligned, non-null
/// pointer (generated code may receive it).
pub struct AlignedBytes {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the buffer is uniquely owned plain memory.
unsafe impl Send for AlignedBytes {}
unsafe impl Sync for AlignedBytes {}

impl AlignedBytes {
    pub fn zeroed(len: usize) -> Self {
        if len == 0 {
            // A dangling but aligned pointer is valid for zero-length access.
            let ptr = NonNull::new(TENSOR_ALIGN as *mut u8).expect("non-zero");
            return AlignedBytes { ptr, len };
        }
        let layout = layout_for(len);
        let raw = if layout.align() == HUGE_PAGE {
            // SAFETY: layout has non-zero size.
            let raw = unsafe { alloc(layout) };
            if !raw.is_null() {
                // Advised before the zeroing touches the pages, which is
                // when the kernel picks their size.
                advise_huge_pages(raw, len);
                // SAFETY: `raw` is valid for `len` bytes.
                unsafe { raw.write_bytes(0, len) };
            }
            raw
        } else {
            // SAFETY: layout has non-zero size.
            unsafe { alloc_zeroed(layout) }
        };
        let ptr = NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        AlignedBytes { ptr, len }
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr is valid for len bytes (or dangling with len 0).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and we hold &mut self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for AlignedBytes {
    fn drop(&mut self) {
        if self.len != 0 {
            let layout = layout_for(self.len);
            // SAFETY: allocated with this layout in `zeroed`.
            unsafe { dealloc(self.ptr.as_ptr(), layout) }
        }
    }
}

impl Clone for AlignedBytes {
    fn clone(&self) -> Self {
        let mut b = AlignedBytes::zeroed(self.len);
        b.as_mut_slice().copy_from_slice(self.as_slice());
        b
    }
}

/// One element value, wide enough to hold any element of any dtype exactly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    /// Any signed integer dtype.
    I(i64),
    /// Any unsigned integer dtype.
    U(u64),
    /// Any float dtype (f16/bf16/f32 values are exactly representable in f64).
    F(f64),
}

impl Scalar {
    pub fn as_f64(self) -> f64 {
        match self {
            Scalar::I(v) => v as f64,
            Scalar::U(v) => v as f64,
            Scalar::F(v) => v,
        }
    }
}

#[derive(Clone)]
pub struct Tensor {
    ty: TensorType,
    data: AlignedBytes,
}

/// Error from constructing a tensor out of mismatched parts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TensorError {
    #[error("tensor of type {ty} needs {expected} bytes, got {got}")]
    ByteLength { ty: TensorType, expected: usize, got: usize },
    #[error("tensor of type {0} is too large")]
    TooLarge(TensorType),
}

impl Tensor {
    /// A zero-filled tensor. Fails when the byte size overflows.
    pub fn zeros(ty: TensorType) -> Result<Tensor, TensorError> {
        let n = ty
            .checked_num_elements()
            .and_then(|n| n.checked_mul(ty.dtype.size_bytes()))
            .filter(|&n| n <= isize::MAX as usize)
            .ok_or_else(|| TensorError::TooLarge(ty.clone()))?;
        Ok(Tensor { ty, data: AlignedBytes::zeroed(n) })
    }

    /// A tensor from little-endian row-major bytes.
    pub fn from_bytes(ty: TensorType, bytes: &[u8]) -> Result<Tensor, TensorError> {
        let mut t = Tensor::zeros(ty)?;
        if bytes.len() != t.data.len {
            return Err(TensorError::ByteLength { ty: t.ty, expected: t.data.len, got: bytes.len() });
        }
        t.data.as_mut_slice().copy_from_slice(bytes);
        Ok(t)
    }

    /// A tensor from element values, each converted to `ty.dtype` with `Tensor::set`.
    pub fn from_scalars(ty: TensorType, values: &[Scalar]) -> Result<Tensor, TensorError> {
        let mut t = Tensor::zeros(ty)?;
        let n = t.len();
        if values.len() != n {
            return Err(TensorError::ByteLength {
                ty: t.ty.clone(),
                expected: n * t.ty.dtype.size_bytes(),
                got: values.len() * t.ty.dtype.size_bytes(),
            });
        }
        for (i, v) in values.iter().enumerate() {
            t.set(i, *v);
        }
        Ok(t)
    }

    pub fn ty(&self) -> &TensorType {
        &self.ty
    }

    pub fn dtype(&self) -> DType {
        self.ty.dtype
    }

    pub fn shape(&self) -> &[usize] {
        &self.ty.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len / self.ty.dtype.size_bytes()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn bytes(&self) -> &[u8] {
        self.data.as_slice()
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.data.as_mut_slice()
    }

    pub fn as_ptr(&self) -> *const u8 {
        self.data.as_ptr()
    }

    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.data.as_mut_ptr()
    }

    /// Element `i` (row-major flat index).
    pub fn get(&self, i: usize) -> Scalar {
        let w = self.ty.dtype.size_bytes();
        let b = &self.bytes()[i * w..(i + 1) * w];
        match self.ty.dtype {
            DType::S8 => Scalar::I(b[0] as i8 as i64),
            DType::S16 => Scalar::I(i16::from_le_bytes([b[0], b[1]]) as i64),
            DType::S32 => Scalar::I(i32::from_le_bytes(b.try_into().unwrap()) as i64),
            DType::S64 => Scalar::I(i64::from_le_bytes(b.try_into().unwrap())),
            DType::U8 => Scalar::U(b[0] as u64),
            DType::U16 => Scalar::U(u16::from_le_bytes([b[0], b[1]]) as u64),
            DType::U32 => Scalar::U(u32::from_le_bytes(b.try_into().unwrap()) as u64),
            DType::U64 => Scalar::U(u64::from_le_bytes(b.try_into().unwrap())),
            DType::F16 => Scalar::F(f16_bits_to_f64(u16::from_le_bytes([b[0], b[1]]))),
            DType::BF16 => Scalar::F(f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16) as f64),
            DType::F32 => Scalar::F(f32::from_le_bytes(b.try_into().unwrap()) as f64),
            DType::F64 => Scalar::F(f64::from_le_bytes(b.try_into().unwrap())),
        }
    }

    /// Stores element `i`. The value is assumed to be representable in the dtype:
    /// integers wrap (two's complement), floats round to nearest even. Semantic
    /// conversions with Nx's saturation rules belong to the interpreter.
    pub fn set(&mut self, i: usize, v: Scalar) {
        let d = self.ty.dtype;
        let w = d.size_bytes();
        let out = &mut self.bytes_mut()[i * w..(i + 1) * w];
        let as_i = |v: Scalar| -> i64 {
            match v {
                Scalar::I(x) => x,
                Scalar::U(x) => x as i64,
                Scalar::F(x) => x as i64,
            }
        };
        match d {
            DType::S8 | DType::U8 => out.copy_from_slice(&(as_i(v) as u8).to_le_bytes()),
            DType::S16 | DType::U16 => out.copy_from_slice(&(as_i(v) as u16).to_le_bytes()),
            DType::S32 | DType::U32 => out.copy_from_slice(&(as_i(v) as u32).to_le_bytes()),
            DType::S64 => out.copy_from_slice(&as_i(v).to_le_bytes()),
            DType::U64 => {
                let x = match v {
                    Scalar::U(x) => x,
                    Scalar::I(x) => x as u64,
                    Scalar::F(x) => x as u64,
                };
                out.copy_from_slice(&x.to_le_bytes())
            }
            DType::F16 => out.copy_from_slice(&f64_to_f16_bits(v.as_f64()).to_le_bytes()),
            DType::BF16 => out.copy_from_slice(&f32_to_bf16_bits(v.as_f64() as f32).to_le_bytes()),
            DType::F32 => out.copy_from_slice(&(v.as_f64() as f32).to_le_bytes()),
            DType::F64 => out.copy_from_slice(&v.as_f64().to_le_bytes()),
        }
    }

    /// All elements as scalars (convenient in tests).
    pub fn to_scalars(&self) -> Vec<Scalar> {
        (0..self.len()).map(|i| self.get(i)).collect()
    }

    /// A tensor with the same data and a new shape of equal element count.
    pub fn reshaped(&self, shape: Vec<usize>) -> Option<Tensor> {
        let ty = TensorType::new(self.ty.dtype, shape);
        (ty.checked_num_elements() == Some(self.len())).then(|| Tensor { ty, data: self.data.clone() })
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor<{}>{:?}", self.ty, self.to_scalars())
    }
}

impl PartialEq for Tensor {
    fn eq(&self, other: &Self) -> bool {
        self.ty == other.ty && self.bytes() == other.bytes()
    }
}

/// IEEE half bits to f64 (exact).
pub fn f16_bits_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f64;
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 if frac == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

/// f64 to IEEE half bits, rounding to nearest even (via f32, exact for this purpose
/// except double rounding on values exactly between two f32s, which cannot
/// matter for f16's 11-bit mantissa).
pub fn f64_to_f16_bits(x: f64) -> u16 {
    let f = x as f32;
    let b = f.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    if f.is_nan() {
        return sign | 0x7e00;
    }
    let exp = ((b >> 23) & 0xff) as i32 - 127 + 15;
    let man = b & 0x7f_ffff;
    if exp >= 31 {
        return sign | 0x7c00;
    }
    if exp <= 0 {
        if exp < -10 {
            return sign;
        }
        let m = man | 0x80_0000;
        let shift = (14 - exp) as u32;
        let half = 1u32 << (shift - 1);
        let mut r = m >> shift;
        let rem = m & ((1 << shift) - 1);
        if rem > half || (rem == half && r & 1 == 1) {
            r += 1;
        }
        return sign | r as u16;
    }
    let mut r = ((exp as u32) << 10) | (man >> 13);
    let rem = man & 0x1fff;
    if rem > 0x1000 || (rem == 0x1000 && r & 1 == 1) {
        r += 1;
    }
    sign | r as u16
}

/// f32 to bfloat16 bits, rounding to nearest even.
pub fn f32_to_bf16_bits(x: f32) -> u16 {
    if x.is_nan() {
        return ((x.to_bits() >> 16) as u16) | 0x40;
    }
    let b = x.to_bits();
    let round = 0x7fff + ((b >> 16) & 1);
    ((b + round) >> 16) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_is_aligned_and_roundtrips() {
        let mut t = Tensor::zeros(TensorType::new(DType::S16, vec![3])).unwrap();
        assert_eq!(t.as_ptr() as usize % TENSOR_ALIGN, 0);
        t.set(1, Scalar::I(-2));
        assert_eq!(t.get(1), Scalar::I(-2));
        assert_eq!(t.bytes(), &[0, 0, 0xfe, 0xff, 0, 0]);
        let z = Tensor::zeros(TensorType::new(DType::F32, vec![0, 4])).unwrap();
        assert!(z.is_empty());
        assert_eq!(z.as_ptr() as usize % TENSOR_ALIGN, 0);
    }

    #[test]
    fn large_storage_starts_on_a_huge_page_and_is_zeroed() {
        // Just below and at the threshold, and a size that is no multiple
        // of the huge page: each zeroed, aligned as its size says, writable
        // to its last byte, cloned and dropped with the layout it has.
        for len in [HUGE_FROM - 4, HUGE_FROM, HUGE_FROM + 3 * HUGE_PAGE / 2 + 4] {
            let mut b = AlignedBytes::zeroed(len);
            let align = if len >= HUGE_FROM { HUGE_PAGE } else { TENSOR_ALIGN };
            assert_eq!(b.as_ptr() as usize % align, 0, "{len} bytes");
            assert!(b.as_slice().iter().all(|&x| x == 0), "{len} bytes");
            b.as_mut_slice()[len - 1] = 7;
            let c = b.clone();
            assert_eq!(c.as_slice()[len - 1], 7);
            assert_eq!(c.as_ptr() as usize % align, 0);
        }
    }

    #[test]
    fn half_conversions() {
        assert_eq!(f64_to_f16_bits(1.0), 0x3c00);
        assert_eq!(f16_bits_to_f64(0x3c00), 1.0);
        assert_eq!(f64_to_f16_bits(65504.0), 0x7bff);
        assert_eq!(f64_to_f16_bits(1e6), 0x7c00);
        assert_eq!(f16_bits_to_f64(0x0001), 2f64.powi(-24));
        assert_eq!(f32_to_bf16_bits(1.0), 0x3f80);
    }

    #[test]
    fn too_large_is_an_error_not_an_abort() {
        let ty = TensorType::new(DType::F64, vec![usize::MAX / 2, 4]);
        assert!(matches!(Tensor::zeros(ty), Err(TensorError::TooLarge(_))));
    }
}
