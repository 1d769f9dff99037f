//! Parallel random tensors for the training perturbations.
//!
//! flex draws `Tensor::random` values one at a time from one process-wide generator on the
//! calling thread (~25 ns each); the dropout masks of a w16 128² step are ~4 M values. Here a
//! 64-bit seed (drawn by the caller from the device RNG, so `device.seed(s)` still fixes every
//! draw) selects ChaCha8 streams, one per chunk of `CHUNK` values, filled in parallel. The
//! values depend only on the seed and the length, never on the thread count.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rayon::prelude::*;

/// Values per stream (and per parallel task).
const CHUNK: usize = 1 << 14;

/// `n` values, chunk `i` filled by `f(rng, out)` with the stream `i` of `seed`.
fn fill(n: usize, seed: u64, f: impl Fn(&mut ChaCha8Rng, &mut [f32]) + Sync) -> Vec<f32> {
    let mut out = vec![0.0f32; n];
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(i, chunk)| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(i as u64);
            f(&mut rng, chunk);
        });
    out
}

/// A uniform value in `[0, 1)` with 24 random bits.
fn unit(rng: &mut ChaCha8Rng) -> f32 {
    (rng.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
}

/// `n` values uniform in `[lo, hi)`.
pub fn uniform(n: usize, lo: f32, hi: f32, seed: u64) -> Vec<f32> {
    fill(n, seed, |rng, out| {
        for v in out {
            *v = lo + (hi - lo) * unit(rng);
        }
    })
}

/// `n` values, each `scale` with probability `keep` and `0` otherwise (an inverted-dropout
/// mask when `scale = 1/keep`).
pub fn bernoulli(n: usize, keep: f64, scale: f32, seed: u64) -> Vec<f32> {
    let threshold = (keep.clamp(0.0, 1.0) * 4_294_967_296.0) as u64;
    fill(n, seed, |rng, out| {
        for v in out {
            *v = if u64::from(rng.next_u32()) < threshold {
                scale
            } else {
                0.0
            };
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_stays_in_range_with_the_right_mean() {
        let v = uniform(100_000, -0.3, 0.3, 7);
        assert!(v.iter().all(|x| (-0.3..0.3).contains(x)));
        let mean = v.iter().map(|x| *x as f64).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 0.005, "{mean}");
        // Both ends of the range are reached.
        assert!(v.iter().any(|x| *x < -0.299) && v.iter().any(|x| *x > 0.299));
    }

    #[test]
    fn bernoulli_keeps_the_requested_share_and_scales() {
        let v = bernoulli(100_000, 0.7, 1.0 / 0.7, 3);
        assert!(v.iter().all(|x| *x == 0.0 || *x == 1.0 / 0.7));
        let kept = v.iter().filter(|x| **x != 0.0).count() as f64 / v.len() as f64;
        assert!((kept - 0.7).abs() < 0.01, "{kept}");
        assert!(bernoulli(1000, 1.0, 1.0, 1).iter().all(|x| *x == 1.0));
        assert!(bernoulli(1000, 0.0, 1.0, 1).iter().all(|x| *x == 0.0));
    }

    #[test]
    fn values_depend_on_the_seed_only() {
        let a = uniform(3 * CHUNK + 5, 0.0, 1.0, 11);
        assert_eq!(a, uniform(3 * CHUNK + 5, 0.0, 1.0, 11));
        assert_ne!(a, uniform(3 * CHUNK + 5, 0.0, 1.0, 12));
        // Chunks use different streams: no repeated blocks.
        assert_ne!(a[..CHUNK], a[CHUNK..2 * CHUNK]);
        // A prefix of a longer draw equals the shorter draw.
        assert_eq!(a[..CHUNK], uniform(CHUNK, 0.0, 1.0, 11)[..]);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert_eq!(a, pool.install(|| uniform(3 * CHUNK + 5, 0.0, 1.0, 11)));
    }
}
