//! Feature perturbations feeding the auxiliary decoders.
//!
//! All randomness comes from the device RNG (`Tensor::random`, or on flex a seed drawn from it
//! for parallel generation, see `mgcc_kernels::random`), so `device.seed(s)` before a step makes
//! a step's perturbations reproducible (on flex the seed is global to the process). burn's `nn::Dropout` only acts on an autodiff device, so explicit masks
//! are used instead. Masks are computed on detached tensors and carry no gradient, as in PyTorch.

use burn::tensor::{Distribution, Tensor};
use serde::{Deserialize, Serialize};

/// Range of the feature-dropout threshold factor `γ ~ U(0.7, 0.9)`.
pub const FEATURE_DROPOUT_GAMMA: (f64, f64) = (0.7, 0.9);
/// Drop probability of the auxiliary-decoder dropout.
pub const DROPOUT_P: f64 = 0.3;
/// Half-width of the uniform feature noise `n ~ U(−0.3, 0.3)`.
pub const NOISE_RANGE: f64 = 0.3;

/// Strengths of the feature perturbations of the consistency methods (MGCC, CCT, URPC).
///
/// The defaults are those of the published MGCC code and of SSL4MIS's `UNet_CCT` /
/// `Decoder_URPC`: dropout 0.3, uniform noise ±0.3, feature-dropout threshold factor
/// `γ ~ U(0.7, 0.9)`, and dropout 0.5 before URPC's deepest side output.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Perturbation {
    /// Drop probability of [`dropout`] on decoder inputs.
    pub dropout: f64,
    /// Half-width `r` of the uniform [`feature_noise`] `U(−r, r)`.
    pub noise: f64,
    /// Lower end of the feature-dropout threshold factor γ.
    pub feature_dropout_min: f64,
    /// Upper end of the feature-dropout threshold factor γ.
    pub feature_dropout_max: f64,
    /// Drop probability before the deepest side output of a pyramid (URPC) decoder.
    pub pyramid_dropout: f64,
}

impl Default for Perturbation {
    fn default() -> Self {
        Self {
            dropout: DROPOUT_P,
            noise: NOISE_RANGE,
            feature_dropout_min: FEATURE_DROPOUT_GAMMA.0,
            feature_dropout_max: FEATURE_DROPOUT_GAMMA.1,
            pyramid_dropout: 0.5,
        }
    }
}

impl Perturbation {
    /// Checks the ranges: probabilities in [0, 1), noise ≥ 0, 0 ≤ γ_min ≤ γ_max.
    pub fn validate(&self) -> Result<(), String> {
        for (name, p) in [
            ("dropout", self.dropout),
            ("pyramid_dropout", self.pyramid_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(format!("perturbation.{name} must be in [0, 1) (got {p})"));
            }
        }
        if !(self.noise >= 0.0 && self.noise.is_finite()) {
            return Err(format!(
                "perturbation.noise must be >= 0 (got {})",
                self.noise
            ));
        }
        let (lo, hi) = (self.feature_dropout_min, self.feature_dropout_max);
        if !(0.0 <= lo && lo <= hi && hi.is_finite()) {
            return Err(format!(
                "perturbation.feature_dropout_min/max must satisfy 0 <= min <= max (got {lo}, {hi})"
            ));
        }
        Ok(())
    }

    /// No perturbation at all: dropout 0, noise 0, feature dropout off (γ range 0..0).
    /// Used to compare the network with a reference implementation.
    pub fn none() -> Self {
        Self {
            dropout: 0.0,
            noise: 0.0,
            feature_dropout_min: 0.0,
            feature_dropout_max: 0.0,
            pyramid_dropout: 0.0,
        }
    }

    /// [`feature_dropout_in`] with this γ range; the identity when the range is `0..0`.
    pub fn feature_dropout(&self, x: Tensor<4>) -> Tensor<4> {
        if self.feature_dropout_max == 0.0 {
            return x;
        }
        feature_dropout_in(x, self.feature_dropout_min, self.feature_dropout_max)
    }

    /// [`dropout`] with probability `self.dropout` (identity at 0).
    pub fn dropout(&self, x: Tensor<4>) -> Tensor<4> {
        maybe_dropout(x, self.dropout)
    }

    /// [`feature_noise`] with half-width `self.noise`.
    pub fn noise(&self, x: Tensor<4>) -> Tensor<4> {
        feature_noise(x, self.noise)
    }
}

/// [`dropout`] when `p > 0`, the identity otherwise (no random draw).
pub fn maybe_dropout(x: Tensor<4>, p: f64) -> Tensor<4> {
    if p > 0.0 { dropout(x, p) } else { x }
}

/// Feature dropout with a given threshold factor `gamma` (shape `[1]`).
///
/// `a = mean_c(x)` (`B×1×H×W`), `m_b = max_{h,w} a_b`; positions with `a < γ·m_b` are kept,
/// the others (the most activated ones) are zeroed in every channel. `B×C×H×W → B×C×H×W`.
pub fn feature_dropout_with_gamma(x: Tensor<4>, gamma: Tensor<1>) -> Tensor<4> {
    let [b, _, h, w] = x.dims();
    let attention = x.clone().detach().mean_dim(1); // B×1×H×W
    let peak = attention.clone().reshape([b, h * w]).max_dim(1); // B×1
    let threshold = (peak.reshape([b, 1, 1, 1]) * gamma.reshape([1, 1, 1, 1])).expand([b, 1, h, w]);
    let keep = attention.lower(threshold).float(); // B×1×H×W
    x * keep
}

/// Feature dropout with `γ ~ U(0.7, 0.9)` drawn once per call (shared by the batch).
/// `B×C×H×W → B×C×H×W`.
pub fn feature_dropout(x: Tensor<4>) -> Tensor<4> {
    let (lo, hi) = FEATURE_DROPOUT_GAMMA;
    feature_dropout_in(x, lo, hi)
}

/// Feature dropout with `γ ~ U(lo, hi)` drawn once per call (shared by the batch).
/// `B×C×H×W → B×C×H×W`.
pub fn feature_dropout_in(x: Tensor<4>, lo: f64, hi: f64) -> Tensor<4> {
    let gamma = Tensor::<1>::random([1], Distribution::Uniform(lo, hi), &x.device());
    feature_dropout_with_gamma(x, gamma)
}

/// Inverted dropout: each element is kept with probability `1 − p` and scaled by `1/(1 − p)`,
/// otherwise zeroed (`torch.nn.functional.dropout` in training). `B×C×H×W → B×C×H×W`.
pub fn dropout(x: Tensor<4>, p: f64) -> Tensor<4> {
    let mask = mgcc_kernels::dropout_mask(x.dims(), 1.0 - p, &x.device());
    x * mask
}

/// Uniform feature noise: `x + x·n`, `n ~ U(−r, r)` of shape `C×H×W` drawn once per call and
/// shared by the batch (the identity for `r = 0`). `B×C×H×W → B×C×H×W`.
pub fn feature_noise(x: Tensor<4>, r: f64) -> Tensor<4> {
    if r == 0.0 {
        return x;
    }
    let [_, c, h, w] = x.dims();
    let noise = mgcc_kernels::random_uniform([1, c, h, w], -r, r, &x.device());
    x.clone() + x * noise
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// Batch 2, 3 channels, 4×4; channel mean at pixel p of sample b is `(p + 1)·(b + 1)`.
    fn ramp(device: &Device) -> Tensor<4> {
        let mut data = Vec::new();
        for b in 0..2 {
            for c in 0..3 {
                for p in 0..16 {
                    // Channels 0, 1, 2 hold a−1, a, a+1: their mean is a.
                    data.push(((p + 1) * (b + 1)) as f32 + c as f32 - 1.0);
                }
            }
        }
        Tensor::<1>::from_floats(data.as_slice(), device).reshape([2, 3, 4, 4])
    }

    #[test]
    fn feature_dropout_zeroes_exactly_positions_at_or_above_threshold() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        let x = ramp(&device);
        let xv = values(x.clone());
        // γ = 0.75: sample 0 peak 16 → threshold 12; sample 1 peak 32 → threshold 24.
        let y = values(feature_dropout_with_gamma(
            x,
            Tensor::from_floats([0.75], &device),
        ));
        for b in 0..2 {
            let thr = 0.75 * 16.0 * (b + 1) as f32;
            for c in 0..3 {
                for p in 0..16 {
                    let i = (b * 3 + c) * 16 + p;
                    let a = ((p + 1) * (b + 1)) as f32;
                    let want = if a < thr { xv[i] } else { 0.0 };
                    assert_eq!(y[i], want, "b{b} c{c} p{p}");
                }
            }
        }
        // The threshold position itself (a = 12 in sample 0, pixel 11) is dropped.
        assert_eq!(y[11], 0.0);
        assert_eq!(y[10], xv[10]);
    }

    #[test]
    fn feature_dropout_draws_gamma_between_0_7_and_0_9() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        for seed in 0..8 {
            device.seed(seed);
            let y = values(feature_dropout(ramp(&device)));
            // Sample 0 channel 1 holds a = p + 1, peak 16: a < 11.2 always kept, a ≥ 14.4 always dropped.
            for p in 0..16 {
                let a = (p + 1) as f32;
                let v = y[16 + p];
                if a < 0.7 * 16.0 {
                    assert_eq!(v, a, "seed {seed} p{p}");
                } else if a >= 0.9 * 16.0 {
                    assert_eq!(v, 0.0, "seed {seed} p{p}");
                }
            }
        }
    }

    #[test]
    fn dropout_keeps_about_70_percent_scaled_by_inverse_keep() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        device.seed(11);
        let y = values(dropout(Tensor::ones([2, 4, 32, 32], &device), DROPOUT_P));
        let scale = 1.0 / 0.7f32;
        assert!(y.iter().all(|v| *v == 0.0 || (v - scale).abs() < 1e-6));
        let kept = y.iter().filter(|v| **v != 0.0).count() as f64 / y.len() as f64;
        // 8192 draws: standard deviation of the fraction ≈ 0.005.
        assert!((kept - 0.7).abs() < 0.025, "kept {kept}");
    }

    #[test]
    fn noise_is_bounded_shared_across_batch_and_varies_over_positions() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        device.seed(5);
        let x = Tensor::<4>::ones([2, 3, 8, 8], &device).mul_scalar(2.0);
        let y = values(feature_noise(x, NOISE_RANGE));
        let n: Vec<f32> = y.iter().map(|v| v / 2.0 - 1.0).collect();
        assert!(n.iter().all(|v| v.abs() <= 0.3 + 1e-6));
        let half = n.len() / 2;
        assert_eq!(&n[..half], &n[half..]);
        let spread =
            n.iter().cloned().fold(f32::MIN, f32::max) - n.iter().cloned().fold(f32::MAX, f32::min);
        assert!(spread > 0.4, "spread {spread}");
    }

    #[test]
    fn seeding_the_autodiff_device_makes_draws_reproducible() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex().autodiff();
        let draw = |seed| {
            device.seed(seed);
            let x = Tensor::<4>::ones([1, 2, 4, 4], &device);
            let a = values(dropout(x.clone(), DROPOUT_P));
            let b = values(feature_noise(x.clone(), NOISE_RANGE));
            let c = values(feature_dropout(ramp(&device)));
            (a, b, c)
        };
        let first = draw(42);
        assert_eq!(first, draw(42));
        assert_ne!(first.1, draw(43).1);
    }

    #[test]
    fn masks_carry_no_gradient_but_inputs_do() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex().autodiff();
        device.seed(1);
        let x = ramp(&device).require_grad();
        let y = feature_dropout_with_gamma(x.clone(), Tensor::from_floats([0.75], &device));
        let grads = y.sum().backward();
        let g = values(x.grad(&grads).unwrap());
        // d(sum(x·keep))/dx = keep.
        assert_eq!(g[0], 1.0);
        assert_eq!(g[15], 0.0);
    }
}
