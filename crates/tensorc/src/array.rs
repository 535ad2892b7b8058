//! ndarray interop: Rust arrays in, Rust arrays out.
//!
//! Tensors are plain little-endian row-major bytes; these conversions walk an
//! array in logical (row-major) order, so any memory layout of the input view
//! (transposed, sliced, Fortran order) gives the right tensor.

use crate::Error;
use ndarray::{ArrayD, ArrayView, Dimension, IxDyn};
use tensorc_ir::{DType, Tensor, TensorType};

/// A Rust number type that is one of tensorc's dtypes.
pub trait Element: Copy + 'static {
    const DTYPE: DType;
    /// Writes the little-endian bytes of `self` (exactly `DTYPE.size_bytes()` of them).
    fn write_le(self, out: &mut [u8]);
    /// Reads a value from exactly `DTYPE.size_bytes()` little-endian bytes.
    fn read_le(bytes: &[u8]) -> Self;
}

macro_rules! element {
    ($($t:ty => $d:ident),* $(,)?) => {$(
        impl Element for $t {
            const DTYPE: DType = DType::$d;
            fn write_le(self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_le_bytes());
            }
            fn read_le(bytes: &[u8]) -> Self {
                let mut b = [0u8; std::mem::size_of::<$t>()];
                b.copy_from_slice(bytes);
                <$t>::from_le_bytes(b)
            }
        }
    )*};
}

element!(i8 => S8, i16 => S16, i32 => S32, i64 => S64, u8 => U8, u16 => U16, u32 => U32, u64 => U64, f32 => F32, f64 => F64);

/// A tensor with the array's shape, dtype `T::DTYPE` and elements in logical order.
pub fn tensor_from_array<T: Element, D: Dimension>(a: ArrayView<'_, T, D>) -> Tensor {
    let ty = TensorType::new(T::DTYPE, a.shape().to_vec());
    // The array already exists in memory with this many elements, so the byte
    // size fits; only the allocation itself can fail, as for any Vec.
    let mut t = Tensor::zeros(ty).expect("an existing array's size fits in memory");
    let w = T::DTYPE.size_bytes();
    for (chunk, &v) in t.bytes_mut().chunks_exact_mut(w).zip(a.iter()) {
        v.write_le(chunk);
    }
    t
}

/// The tensor as an n-dimensional array; its dtype must be `T::DTYPE`.
pub fn tensor_to_array<T: Element>(t: &Tensor) -> Result<ArrayD<T>, Error> {
    if t.dtype() != T::DTYPE {
        return Err(Error::Input(format!(
            "cannot read a {} tensor as an array of {} (dtype {})",
            t.ty(),
            std::any::type_name::<T>(),
            T::DTYPE
        )));
    }
    let w = T::DTYPE.size_bytes();
    let data: Vec<T> = t.bytes().chunks_exact(w).map(T::read_le).collect();
    ArrayD::from_shape_vec(IxDyn(t.shape()), data)
        .map_err(|e| Error::internal("ndarray", e.to_string()))
}
