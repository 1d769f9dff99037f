//! Layer constructors drawn eagerly from the device RNG (so a model depends only on the seed
//! set before `init`), with PyTorch's default initialisation, and the layer applications the
//! autoencoder and the denoiser share.
//!
//! PyTorch's `nn.Conv2d` / `nn.Linear` default: weight and bias `U(−1/√fan_in, 1/√fan_in)`.
//! Medfusion zero-initialises the last convolution of each residual block and the output
//! convolutions, so that blocks start as identities and the networks start by predicting 0.

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, GroupNormConfig, Linear, PaddingConfig2d};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Distribution, Tensor};

/// How a new convolution's parameters are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// PyTorch's default.
    Default,
    /// All zeros.
    Zero,
}

/// `k×k` convolution `cin → cout` with the given stride and padding `k/2`.
pub fn conv(
    cin: usize,
    cout: usize,
    kernel: usize,
    stride: usize,
    init: Init,
    device: &Device,
) -> Conv2d {
    let shape = [cout, cin, kernel, kernel];
    let (weight, bias) = match init {
        Init::Default => {
            let bound = 1.0 / ((cin * kernel * kernel) as f64).sqrt();
            let dist = Distribution::Uniform(-bound, bound);
            (
                Tensor::<4>::random(shape, dist, device),
                Tensor::<1>::random([cout], dist, device),
            )
        }
        Init::Zero => (
            Tensor::<4>::zeros(shape, device),
            Tensor::<1>::zeros([cout], device),
        ),
    };
    let pad = kernel / 2;
    Conv2d {
        weight: Param::from_tensor(weight),
        bias: Some(Param::from_tensor(bias)),
        stride: [stride, stride],
        kernel_size: [kernel, kernel],
        dilation: [1, 1],
        groups: 1,
        padding: PaddingConfig2d::Explicit(pad, pad, pad, pad),
    }
}

/// Fully connected layer `d_in → d_out` (burn's row layout: weight `[d_in, d_out]`).
pub fn linear(d_in: usize, d_out: usize, device: &Device) -> Linear {
    let bound = 1.0 / (d_in as f64).sqrt();
    let dist = Distribution::Uniform(-bound, bound);
    Linear {
        weight: Param::from_tensor(Tensor::<2>::random([d_in, d_out], dist, device)),
        bias: Some(Param::from_tensor(Tensor::<1>::random(
            [d_out],
            dist,
            device,
        ))),
    }
}

/// Group normalisation (affine, ε = 1e-5 as PyTorch) with `groups` groups, or fewer when
/// `channels` is not divisible (the largest divisor of `channels` not above `groups`).
pub fn group_norm(channels: usize, groups: usize, device: &Device) -> GroupNorm {
    let g = (1..=groups.min(channels))
        .rev()
        .find(|g| channels.is_multiple_of(*g))
        .unwrap_or(1);
    GroupNormConfig::new(g, channels)
        .with_epsilon(1e-5)
        .init(device)
}

/// Apply a convolution (through the fast CPU kernels on flex).
pub fn apply(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    mgcc_model::apply_conv(conv, x)
}

/// `GroupNorm(x)`, then SiLU when `silu`: one fused operation on flex
/// ([`mgcc_kernels::group_norm`]), burn's ops elsewhere (or for a non-affine norm).
pub fn norm(norm: &GroupNorm, x: Tensor<4>, silu: bool) -> Tensor<4> {
    match (&norm.gamma, &norm.beta) {
        (Some(gamma), Some(beta)) => mgcc_kernels::group_norm(
            x,
            gamma.val(),
            beta.val(),
            norm.num_groups,
            norm.epsilon,
            silu,
        ),
        _ if silu => burn::tensor::activation::silu(norm.forward(x)),
        _ => norm.forward(x),
    }
}

/// Nearest-neighbour 2× upsampling.
pub fn upsample2(x: Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    interpolate(
        x,
        InterpolateOptions::new(InterpolateMode::Nearest)
            .with_align_corners(false)
            .with_output_size([2 * h, 2 * w]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_conv_halves_and_zero_conv_outputs_zero() {
        let device = Device::flex();
        let c = conv(3, 5, 3, 2, Init::Default, &device);
        let y = apply(&c, Tensor::<4>::ones([2, 3, 9, 8], &device));
        assert_eq!(y.dims(), [2, 5, 5, 4]);
        let z = conv(3, 4, 1, 1, Init::Zero, &device);
        let y: Vec<f32> = apply(&z, Tensor::<4>::ones([1, 3, 4, 4], &device))
            .into_data()
            .try_to_vec()
            .unwrap();
        assert!(y.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn group_norm_falls_back_to_a_divisor() {
        let device = Device::flex();
        assert_eq!(group_norm(64, 8, &device).num_groups, 8);
        assert_eq!(group_norm(12, 8, &device).num_groups, 6);
        assert_eq!(group_norm(3, 8, &device).num_groups, 3);
    }

    /// The fused group norm (+ SiLU) equals burn's `GroupNorm` (then `silu`) forward and in all
    /// three gradients on an autodiff flex device, with and without SiLU.
    #[test]
    fn fused_norm_matches_burns_group_norm_with_gradients() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex().autodiff();
        device.seed(5);
        let shape = [3, 12, 9, 7];
        let mut gn = group_norm(12, 4, &device);
        let dist = Distribution::Normal(0.0, 1.0);
        gn.gamma = Some(Param::from_tensor(
            Tensor::<1>::random([12], dist, &device).require_grad(),
        ));
        gn.beta = Some(Param::from_tensor(
            Tensor::<1>::random([12], dist, &device).require_grad(),
        ));
        let x = Tensor::<4>::random(shape, Distribution::Normal(0.5, 2.0), &device).require_grad();
        let probe = Tensor::<4>::random(shape, dist, &device);
        let run = |y: Tensor<4>| {
            let v: Vec<f32> = y.clone().into_data().try_to_vec().unwrap();
            let g = (y * probe.clone()).sum().backward();
            let vals =
                |t: Option<Tensor<1>>| -> Vec<f32> { t.unwrap().into_data().try_to_vec().unwrap() };
            (
                v,
                x.grad(&g).unwrap().into_data().try_to_vec::<f32>().unwrap(),
                vals(gn.gamma.as_ref().unwrap().val().grad(&g)),
                vals(gn.beta.as_ref().unwrap().val().grad(&g)),
            )
        };
        for silu in [false, true] {
            let fused = run(norm(&gn, x.clone(), silu));
            let burn = if silu {
                burn::tensor::activation::silu(gn.forward(x.clone()))
            } else {
                gn.forward(x.clone())
            };
            let composed = run(burn);
            for (what, a, b) in [
                ("y", &fused.0, &composed.0),
                ("dx", &fused.1, &composed.1),
                ("dγ", &fused.2, &composed.2),
                ("dβ", &fused.3, &composed.3),
            ] {
                assert_eq!(a.len(), b.len());
                let worst = a
                    .iter()
                    .zip(b)
                    .map(|(p, q)| (p - q).abs() / (1.0 + q.abs()))
                    .fold(0.0f32, f32::max);
                assert!(worst < 1e-5, "{what} (silu {silu}): {worst}");
            }
        }
    }
}
