//! Deterministic pseudo-random inputs for `tensorc run`/`bench` and tests.
//!
//! Inputs the user does not supply must be the same on every machine and in
//! every back end, so they come from a fixed generator (SplitMix64) seeded by
//! the run's seed and the input's position, not from an external RNG crate.
//! Values are kept small so that products, powers and sums of random inputs
//! stay far from overflow: floats are uniform in [-1, 1), signed integers in
//! [-8, 8), unsigned in [0, 16).

use crate::tensor::{Scalar, Tensor, TensorError};
use crate::types::{DType, Kind, TensorType};

/// SplitMix64 (Steele, Lea, Flood 2014): a 64-bit counter through a mixing function.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Float edge values whose sums and products do not depend on the order of
/// accumulation (small dyadic values), plus the non-finite ones: the edge
/// inputs of test cases marked `# inputs: mild` (contractions, whose
/// schedules reassociate and fuse multiply-adds, so huge or tiny magnitudes
/// would leave order-dependent rounding residues). Shared by the
/// integration harness and the frontend's differential test.
pub const MILD_FLOAT_EDGES: [f64; 13] = [
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -0.0,
    0.0,
    1.0,
    -1.0,
    0.5,
    -2.5,
    3.0,
    -7.0,
    100.0,
    2.0,
];

/// Input number `index` of a run with `seed`: the same (ty, seed, index)
/// always gives the same tensor. Panics only if the tensor cannot be allocated
/// at all (see `try_random_tensor`).
pub fn random_tensor(ty: &TensorType, seed: u64, index: u64) -> Tensor {
    try_random_tensor(ty, seed, index).expect("random input tensor too large to allocate")
}

/// `random_tensor`, reporting a tensor too large to allocate as an error.
pub fn try_random_tensor(ty: &TensorType, seed: u64, index: u64) -> Result<Tensor, TensorError> {
    let mut t = Tensor::zeros(ty.clone())?;
    // Mixing (seed, index) through one generator step decorrelates streams of
    // neighbouring seeds and indices.
    let mut g = SplitMix64(SplitMix64(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03)).next());
    let d = ty.dtype;
    for i in 0..t.len() {
        let r = g.next();
        let v = match d.kind() {
            Kind::Signed => Scalar::I((r >> 60) as i64 - 8),
            Kind::Unsigned => Scalar::U(r >> 60),
            Kind::Float | Kind::BFloat => {
                // A multiple of 2^-p in [0, 1) with p the dtype's precision, so
                // 2u - 1 is exact in the dtype and never rounds up to 1.
                let p = match d {
                    DType::F16 => 11,
                    DType::BF16 => 8,
                    DType::F32 => 24,
                    _ => 53,
                };
                let u = (r >> (64 - p)) as f64 / (1u64 << p) as f64;
                Scalar::F(2.0 * u - 1.0)
            }
        };
        t.set(i, v);
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_the_published_sequence() {
        // First outputs of SplitMix64 seeded with 0 (reference implementation
        // by Vigna, splitmix64.c).
        let mut g = SplitMix64(0);
        assert_eq!(g.next(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(g.next(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn deterministic_and_in_range() {
        for d in DType::ALL {
            let ty = TensorType::new(d, vec![64, 33]);
            let a = random_tensor(&ty, 7, 1);
            assert_eq!(a, random_tensor(&ty, 7, 1));
            assert_ne!(a, random_tensor(&ty, 7, 2), "{d}");
            assert_ne!(a, random_tensor(&ty, 8, 1), "{d}");
            for s in a.to_scalars() {
                match s {
                    Scalar::I(v) => assert!((-8..8).contains(&v)),
                    Scalar::U(v) => assert!(v < 16),
                    Scalar::F(v) => assert!((-1.0..1.0).contains(&v), "{d} {v}"),
                }
            }
        }
    }

    #[test]
    fn covers_the_whole_range() {
        let t = random_tensor(&TensorType::new(DType::S8, vec![1000]), 1, 0);
        let vals: Vec<i64> = t.to_scalars().iter().map(|s| s.as_f64() as i64).collect();
        assert_eq!(*vals.iter().min().unwrap(), -8);
        assert_eq!(*vals.iter().max().unwrap(), 7);
        let f = random_tensor(&TensorType::new(DType::F32, vec![1000]), 1, 0);
        let fs: Vec<f64> = f.to_scalars().iter().map(|s| s.as_f64()).collect();
        assert!(fs.iter().any(|&v| v < -0.9) && fs.iter().any(|&v| v > 0.9));
        assert!(random_tensor(&TensorType::new(DType::F32, vec![0, 3]), 1, 0).is_empty());
    }
}
