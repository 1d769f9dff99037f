//! Structural similarity (Wang et al. 2004) and PSNR for images in `[−1, 1]`.
//!
//! SSIM is computed on `[0, 1]` intensities (data range 1) with an 11×11 Gaussian window
//! (σ = 1.5, applied separably, no padding: only windows fully inside the image),
//! `C₁ = 0.01²`, `C₂ = 0.03²`:
//! `SSIM = (2μₓμᵧ + C₁)(2σₓᵧ + C₂) / ((μₓ² + μᵧ² + C₁)(σₓ² + σᵧ² + C₂))`, averaged over
//! windows, channels and the batch — the definition of scikit-image with
//! `gaussian_weights=True, use_sample_covariance=False` and of `pytorch_msssim`.
//! Images smaller than the window use a window of the image's size (odd, at least 1).

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};

/// Window width and Gaussian σ.
pub const WINDOW: usize = 11;
pub const SIGMA: f64 = 1.5;
const C1: f64 = 0.01 * 0.01;
const C2: f64 = 0.03 * 0.03;

/// Normalised 1-D Gaussian of `n` taps.
fn gaussian(n: usize) -> Vec<f32> {
    let c = (n as f64 - 1.0) / 2.0;
    let g: Vec<f64> = (0..n)
        .map(|i| (-((i as f64 - c).powi(2)) / (2.0 * SIGMA * SIGMA)).exp())
        .collect();
    let s: f64 = g.iter().sum();
    g.iter().map(|v| (v / s) as f32).collect()
}

/// Depthwise separable Gaussian blur, valid region only.
fn blur(x: Tensor<4>, n: usize) -> Tensor<4> {
    let [_, c, _, _] = x.dims();
    let device = x.device();
    let g = gaussian(n);
    let kernel = |shape: [usize; 4]| {
        let data: Vec<f32> = (0..c).flat_map(|_| g.iter().copied()).collect();
        Tensor::<4>::from_data(TensorData::new(data, shape), &device)
    };
    let opts = ConvOptions::new([1, 1], [0, 0], [1, 1], c);
    let x = conv2d(x, kernel([c, 1, 1, n]), None, opts.clone());
    conv2d(x, kernel([c, 1, n, 1]), None, opts)
}

/// SSIM per image and channel, `[B, C]`, of `x` against `y`, both `[B, C, H, W]` on the
/// `[0, 1]` scale (the mean of the SSIM map over the valid windows).
pub fn ssim_channels01(x: Tensor<4>, y: Tensor<4>) -> Tensor<2> {
    let [_, _, h, w] = x.dims();
    let mut n = WINDOW.min(h).min(w);
    if n.is_multiple_of(2) {
        n -= 1;
    }
    let n = n.max(1);
    let mx = blur(x.clone(), n);
    let my = blur(y.clone(), n);
    let sxx = blur(x.clone() * x.clone(), n) - mx.clone() * mx.clone();
    let syy = blur(y.clone() * y.clone(), n) - my.clone() * my.clone();
    let sxy = blur(x * y, n) - mx.clone() * my.clone();
    let num = (mx.clone() * my.clone() * 2.0 + C1) * (sxy * 2.0 + C2);
    let den = (mx.powi_scalar(2) + my.powi_scalar(2) + C1) * (sxx + syy + C2);
    let map = num / den;
    let [b, c, hh, ww] = map.dims();
    map.reshape([b, c, hh * ww]).mean_dim(2).reshape([b, c])
}

/// Mean SSIM of `x` against `y` (both `[B, C, H, W]` in `[−1, 1]`), differentiable in both.
pub fn ssim(x: Tensor<4>, y: Tensor<4>) -> Tensor<1> {
    ssim_channels01((x + 1.0) * 0.5, (y + 1.0) * 0.5).mean()
}

/// The SSIM of Medfusion's autoencoder loss, per image (`[B]`): the prediction `x` (in
/// `[−1, 1]`) is moved to `[0, 1]` and clamped there, and each channel's SSIM is clamped at 0
/// before the channel mean — `pytorch_msssim.ssim(..., data_range=1, size_average=False,
/// nonnegative_ssim=True)` on `((x + 1)/2).clamp(0, 1)` and `(y + 1)/2`.
pub fn ssim_loss_per_image(x: Tensor<4>, y: Tensor<4>) -> Tensor<1> {
    let x = ((x + 1.0) * 0.5).clamp(0.0, 1.0);
    let y = (y + 1.0) * 0.5;
    let [b, _] = [x.dims()[0], x.dims()[1]];
    ssim_channels01(x, y)
        .clamp_min(0.0)
        .mean_dim(1)
        .reshape([b])
}

/// Peak signal-to-noise ratio in dB of `x` against `y` (both in `[−1, 1]`, compared on the
/// `[0, 1]` scale): `10·log10(1 / MSE)`; per image, then averaged by the caller.
pub fn psnr(x: &[f32], y: &[f32]) -> f64 {
    assert_eq!(x.len(), y.len());
    let mse = x
        .iter()
        .zip(y)
        .map(|(a, b)| {
            let d = ((a.clamp(-1.0, 1.0) - b.clamp(-1.0, 1.0)) * 0.5) as f64;
            d * d
        })
        .sum::<f64>()
        / x.len().max(1) as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (1.0 / mse).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn tensor(v: Vec<f32>, shape: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(v, shape), &Device::flex())
    }

    #[test]
    fn identical_images_score_one_and_constant_shift_matches_closed_form() {
        let n = 16 * 16;
        let ramp: Vec<f32> = (0..n).map(|i| (i % 16) as f32 / 8.0 - 1.0).collect();
        let x = tensor(ramp.clone(), [1, 1, 16, 16]);
        let s: f32 = ssim(x.clone(), x.clone()).into_scalar();
        assert!((s - 1.0).abs() < 1e-5, "{s}");
        // Constant images a and b (on [0,1]): σ terms vanish, SSIM = (2ab + C1)/(a² + b² + C1).
        let a = tensor(vec![0.0; n], [1, 1, 16, 16]); // 0.5 on [0,1]
        let b = tensor(vec![-0.5; n], [1, 1, 16, 16]); // 0.25
        let s: f32 = ssim(a, b).into_scalar();
        let expect = (2.0 * 0.5 * 0.25 + C1) / (0.25 + 0.0625 + C1);
        assert!((s as f64 - expect).abs() < 1e-5, "{s} vs {expect}");
    }

    #[test]
    fn loss_ssim_clamps_the_prediction_and_negative_channels() {
        let n = 16 * 16;
        // Prediction above the range: clamped to 1 on [0,1]; target constant 0.25.
        let x = tensor(vec![1.4; 2 * n], [1, 2, 16, 16]);
        let y = tensor(vec![-0.5; 2 * n], [1, 2, 16, 16]);
        let s: Vec<f32> = ssim_loss_per_image(x, y).into_data().try_to_vec().unwrap();
        let expect = (2.0 * 1.0 * 0.25 + C1) / (1.0 + 0.0625 + C1);
        assert!((s[0] as f64 - expect).abs() < 1e-5, "{s:?} vs {expect}");
        // A channel with negative SSIM (anti-correlated ramps) counts as 0; the other channel
        // is identical (SSIM 1): the image's value is (0 + 1)/2.
        let ramp: Vec<f32> = (0..n).map(|i| (i % 16) as f32 / 8.0 - 1.0).collect();
        let anti: Vec<f32> = ramp.iter().map(|v| -v).collect();
        let x = tensor([ramp.clone(), ramp.clone()].concat(), [1, 2, 16, 16]);
        let y = tensor([anti, ramp].concat(), [1, 2, 16, 16]);
        let per_channel: Vec<f32> =
            ssim_channels01((x.clone() + 1.0) * 0.5, (y.clone() + 1.0) * 0.5)
                .into_data()
                .try_to_vec()
                .unwrap();
        assert!(per_channel[0] < -0.5 && (per_channel[1] - 1.0).abs() < 1e-5);
        let s: Vec<f32> = ssim_loss_per_image(x, y).into_data().try_to_vec().unwrap();
        assert!((s[0] - 0.5).abs() < 1e-5, "{s:?}");
    }

    #[test]
    fn gaussian_window_is_normalised_and_symmetric() {
        let g = gaussian(11);
        assert!((g.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((g[0] - g[10]).abs() < 1e-9 && g[5] > g[4]);
    }

    #[test]
    fn psnr_matches_hand_value() {
        // Difference 0.2 on [−1,1] = 0.1 on [0,1]: MSE 0.01 → 20 dB.
        let x = vec![0.2f32; 8];
        let y = vec![0.0f32; 8];
        assert!((psnr(&x, &y) - 20.0).abs() < 1e-4);
        assert!(psnr(&y, &y).is_infinite());
    }
}
