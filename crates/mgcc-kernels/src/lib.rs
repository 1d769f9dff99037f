//! Fast CPU kernels for MGCC on burn's `flex` backend.
//!
//! burn 0.22's flex backend computes a convolution's weight gradient as a convolution whose
//! kernel is the whole output-gradient image, and its grouped weight gradient one group at a
//! time; together they dominate a training step. [`conv2d`] replaces burn's `conv2d` for tensors
//! on a flex device (plain or autodiff) with SIMD products over shifted views of the padded
//! image for stride-1 dense convolutions ([`shifted`]; the forward of 3×3 "same" layers with
//! ≥ 32 channels as Winograd F(2×2, 3×3), [`winograd`]), im2col + `gemm` kernels for the other
//! dense ones and at the scalar level ([`dense`]), and direct depthwise backward loops
//! ([`depthwise`]); on any other device it is burn's `conv2d`.
//! Results equal burn's up to floating-point rounding.
//!
//! The SIMD kernels ([`microkernels`], [`winograd`]) are written once over a lane trait
//! ([`lanes`]) and compiled for AVX-512 (16 lanes) and AVX2 + FMA (8 lanes); the level is
//! chosen once per process from the CPU, or forced by `MGCC_SIMD=avx512|avx2|scalar`
//! ([`simd`], [`simd_level`]).
//!
//! Also here: fused batch norm (+ ReLU), group norm (+ SiLU), gate, concatenation and pooling ops, parallel random
//! masks ([`random`]), the scratch-buffer pool and the allocator settings ([`allocator`]).

pub mod allocator;
pub mod backend;
pub mod cat_backend;
pub mod conv_bn_backend;
pub mod dense;
pub mod depthwise;
mod flex_values;
pub mod gate_backend;
pub mod geometry;
pub mod group_norm;
pub mod group_norm_backend;
pub mod im2col;
#[cfg(target_arch = "x86_64")]
pub mod lanes;
#[cfg(target_arch = "x86_64")]
pub mod microkernels;
pub mod norm;
pub mod norm_backend;
pub mod pool;
pub mod pool_backend;
pub mod random;
#[cfg(target_arch = "x86_64")]
pub mod scratch;
#[cfg(target_arch = "x86_64")]
pub mod shifted;
pub mod simd;
mod sync_ptr;
pub mod vector_math;

#[cfg(test)]
mod test_data {
    /// `n` deterministic test values in about [−1.6, 1.6] (`seed` shifts the pattern).
    pub(crate) fn data(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 31 + seed * 17) % 29) as f32 - 14.0) / 9.0)
            .collect()
    }
}
#[cfg(target_arch = "x86_64")]
pub mod winograd;

use std::sync::OnceLock;

use burn::backend::Dispatch;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor, TensorData};

use crate::backend::FastConvBackend;
use crate::cat_backend::FastCatBackend;
use crate::conv_bn_backend::FastConvBnBackend;
use crate::gate_backend::FastGateBackend;
use crate::group_norm_backend::FastGroupNormBackend;
use crate::norm_backend::FastBatchNormBackend;
pub use crate::pool::on_pool;
use crate::pool_backend::FastPoolBackend;
pub use crate::simd::{Level as SimdLevel, SIMD_ENV, simd_level};

/// Environment variable that, when set to `1`, turns the fast path off (burn's `conv2d`
/// everywhere), for A/B timing and for ruling the kernels out when debugging.
pub const DISABLE_ENV: &str = "MGCC_DISABLE_FAST_CONV";

/// Environment variable that, when set to `1`, keeps the im2col kernels ([`dense`]) for every
/// dense convolution instead of the [`shifted`] ones (A/B timing).
pub const IM2COL_ENV: &str = "MGCC_CONV_IM2COL";

/// Whether the [`shifted`] kernels may be used (not turned off by [`IM2COL_ENV`]).
pub fn shifted_enabled() -> bool {
    static OFF: OnceLock<bool> = OnceLock::new();
    !*OFF.get_or_init(|| std::env::var(IM2COL_ENV).is_ok_and(|v| v == "1"))
}

/// The [`shifted`] layout for `g` when it applies and is enabled.
#[cfg(target_arch = "x86_64")]
pub(crate) fn fused_shifted(g: &geometry::ConvGeometry) -> Option<shifted::Shifted> {
    if shifted_enabled() {
        shifted::Shifted::new(g)
    } else {
        None
    }
}

/// Environment variable that, when set to `1`, keeps the direct [`shifted`] kernel for all three
/// passes of every convolution instead of [`winograd`] where it applies (A/B timing).
pub const DISABLE_WINOGRAD_ENV: &str = "MGCC_DISABLE_WINOGRAD";

/// The [`winograd`] layout for `g` at `level` when it applies and is enabled.
#[cfg(target_arch = "x86_64")]
pub(crate) fn winograd_for(
    g: &geometry::ConvGeometry,
    level: simd::Level,
) -> Option<winograd::Winograd> {
    static OFF: OnceLock<bool> = OnceLock::new();
    let off = *OFF.get_or_init(|| std::env::var(DISABLE_WINOGRAD_ENV).is_ok_and(|v| v == "1"));
    if off {
        None
    } else {
        winograd::Winograd::with_level(g, level)
    }
}

/// Environment variable that, when set to `1`, turns the fused elementwise ops off — batch norm
/// (+ ReLU), group norm (+ SiLU), the attention-gate output, parallel concatenation and the
/// parallel random masks —
/// so burn's own ops run instead, for A/B timing.
pub const DISABLE_BN_ENV: &str = "MGCC_DISABLE_FAST_BN";

/// Whether the fused elementwise ops ([`batch_norm_train`], [`group_norm`], [`sigmoid_gate`],
/// [`cat_channels`], [`dropout_mask`], [`random_uniform`]) take their fast path on `device`.
pub fn fast_bn(device: &Device) -> bool {
    static DISABLED: OnceLock<bool> = OnceLock::new();
    let disabled = *DISABLED.get_or_init(|| std::env::var(DISABLE_BN_ENV).is_ok_and(|v| v == "1"));
    !disabled && is_flex(device)
}

/// Training-mode batch norm of `x [B, C, H, W]` with batch statistics (biased variance), then
/// ReLU when `relu`: returns `(output, mean, variance)`, as burn's `batch_norm_train` (+ `relu`).
/// Fused into one operation (two passes forward, two backward) on flex.
pub fn batch_norm_train(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
    relu: bool,
) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
    if fast_bn(&x.device()) {
        let (y, mean, var) = Dispatch::fast_batch_norm_train(
            x.into_dispatch(),
            gamma.into_dispatch(),
            beta.into_dispatch(),
            epsilon,
            relu,
        );
        return (
            Tensor::from_dispatch(y),
            Tensor::from_dispatch(mean),
            Tensor::from_dispatch(var),
        );
    }
    let out = burn::tensor::module::batch_norm_train(x, gamma, beta, epsilon);
    let y = if relu {
        burn::tensor::activation::relu(out.output)
    } else {
        out.output
    };
    (y, out.mean, out.variance)
}

/// Affine group norm of `x [B, C, H, W]` with `groups` groups (dividing `C`; biased variance,
/// `epsilon` as PyTorch's `GroupNorm`), then SiLU `a·σ(a)` when `silu`. On flex (fused ops
/// enabled, see [`DISABLE_BN_ENV`]) one fused operation forward and one backward
/// ([`group_norm`](mod@group_norm)); elsewhere the same computation in burn's ops.
///
/// # Panics
/// When `groups` is zero or does not divide `C`, or `gamma`/`beta` are not `[C]`.
pub fn group_norm(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    groups: usize,
    epsilon: f64,
    silu: bool,
) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    assert!(
        groups > 0 && c.is_multiple_of(groups),
        "group norm: {groups} groups do not divide {c} channels"
    );
    assert!(
        gamma.dims() == [c] && beta.dims() == [c],
        "group norm: γ and β must have {c} values"
    );
    if fast_bn(&x.device()) {
        return Tensor::from_dispatch(Dispatch::fast_group_norm(
            x.into_dispatch(),
            gamma.into_dispatch(),
            beta.into_dispatch(),
            groups,
            epsilon,
            silu,
        ));
    }
    let xg = x.reshape([b, groups, c / groups * h * w]);
    let centred = xg.clone().sub(xg.mean_dim(2));
    let var = centred.clone().square().mean_dim(2);
    let a = centred
        .div(var.add_scalar(epsilon).sqrt())
        .reshape([b, c, h, w])
        * gamma.reshape([1, c, 1, 1])
        + beta.reshape([1, c, 1, 1]);
    if silu {
        burn::tensor::activation::silu(a)
    } else {
        a
    }
}

/// `Tensor::cat(tensors, 1)` of `[B, C_i, H, W]` tensors; on flex (with the fused batch norm
/// enabled, see [`DISABLE_BN_ENV`]) the copies run in parallel.
pub fn cat_channels(tensors: Vec<Tensor<4>>) -> Tensor<4> {
    if !tensors.is_empty() && fast_bn(&tensors[0].device()) {
        let mut it = tensors.iter().cloned().map(Tensor::into_dispatch);
        match (it.next(), it.next(), it.next(), it.next()) {
            (Some(a), Some(b), None, _) => return Tensor::from_dispatch(Dispatch::fast_cat2(a, b)),
            (Some(a), Some(b), Some(c), None) => {
                return Tensor::from_dispatch(Dispatch::fast_cat3(a, b, c));
            }
            _ => {}
        }
    }
    Tensor::cat(tensors, 1)
}

/// Whether `device` is burn's flex CPU device (with or without autodiff).
pub fn is_flex(device: &Device) -> bool {
    device.clone().without_autodiff() == Device::flex()
}

/// Whether [`conv2d`] takes the fast path on `device`: flex, and not disabled by [`DISABLE_ENV`].
pub fn fast_path(device: &Device) -> bool {
    static DISABLED: OnceLock<bool> = OnceLock::new();
    let disabled = *DISABLED.get_or_init(|| std::env::var(DISABLE_ENV).is_ok_and(|v| v == "1"));
    !disabled && is_flex(device)
}

/// The SIMD path the dense convolutions take on `device`: `None` off the flex CPU device,
/// [`SimdLevel::Scalar`] when the hand-written kernels are off ([`DISABLE_ENV`],
/// [`IM2COL_ENV`]) or absent, else the process's [`simd_level`].
///
/// # Panics
/// When [`SIMD_ENV`] is invalid (see [`simd_level`]).
pub fn simd_path(device: &Device) -> Option<SimdLevel> {
    if !is_flex(device) {
        return None;
    }
    if !fast_path(device) || !shifted_enabled() {
        return Some(SimdLevel::Scalar);
    }
    Some(simd::level())
}

/// 2-D convolution `x [B, Cin, H, W] ⋆ weight [Cout, Cin/groups, KH, KW] + bias`, fast on flex.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    match bias {
        Some(bias) if fast_path(&x.device()) => Tensor::from_dispatch(Dispatch::fast_conv2d(
            x.into_dispatch(),
            weight.into_dispatch(),
            bias.into_dispatch(),
            options,
        )),
        bias => burn::tensor::module::conv2d(x, weight, bias, options),
    }
}

/// Inference-mode `relu?(batch_norm(conv2d(x, weight, bias), γ, β, μ, σ², ε))` with running
/// statistics `μ`, `σ²`. On a plain flex device (fast paths enabled) the batch norm and ReLU
/// are applied by the convolution kernel as it stores its output; elsewhere burn's ops.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_bn_eval(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    [gamma, beta, mean, var]: [Tensor<1>; 4],
    epsilon: f64,
    relu: bool,
    options: ConvOptions<2>,
) -> Tensor<4> {
    let device = x.device();
    match bias {
        Some(bias) if !device.is_autodiff() && fast_path(&device) && fast_bn(&device) => {
            Tensor::from_dispatch(Dispatch::fast_conv2d_bn_eval(
                x.into_dispatch(),
                weight.into_dispatch(),
                bias.into_dispatch(),
                gamma.into_dispatch(),
                beta.into_dispatch(),
                mean.into_dispatch(),
                var.into_dispatch(),
                epsilon,
                relu,
                options,
            ))
        }
        bias => {
            let y = conv2d(x, weight, bias, options);
            let y = burn::tensor::module::batch_norm(y, gamma, beta, mean, var, epsilon);
            if relu {
                burn::tensor::activation::relu(y)
            } else {
                y
            }
        }
    }
}

/// `max_pool2d(x, 2×2, stride 2)`: on a plain flex device (fast paths enabled) a parallel
/// values-only kernel, elsewhere burn's op.
pub fn max_pool2x2(x: Tensor<4>) -> Tensor<4> {
    let device = x.device();
    if !device.is_autodiff() && fast_path(&device) {
        return Tensor::from_dispatch(Dispatch::fast_max_pool2x2(x.into_dispatch()));
    }
    burn::tensor::module::max_pool2d(x, burn::tensor::ops::MaxPoolOptions::new([2, 2]))
}

/// `x + x·sigmoid(z)`: on flex (fast paths enabled, with or without autodiff) one parallel pass
/// forward and one backward, elsewhere burn's ops.
pub fn sigmoid_gate(x: Tensor<4>, z: Tensor<4>) -> Tensor<4> {
    let device = x.device();
    if fast_bn(&device) {
        return Tensor::from_dispatch(Dispatch::fast_sigmoid_gate(
            x.into_dispatch(),
            z.into_dispatch(),
        ));
    }
    let g = burn::tensor::activation::sigmoid(z);
    x.clone() + x * g
}

/// A 48-bit seed drawn from `device`'s random generator (so seeding the device fixes it).
fn draw_seed(device: &Device) -> u64 {
    let halves = Tensor::<1>::random([2], Distribution::Uniform(0.0, 16_777_216.0), device)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default();
    halves
        .iter()
        .fold(0u64, |s, h| (s << 24) | (*h as u64 & 0xff_ffff))
}

/// Uniform values in `[lo, hi)` of `shape` on `device`: filled in parallel from a seed drawn
/// from the device RNG on flex ([`random`]), `Tensor::random` elsewhere.
pub fn random_uniform(shape: [usize; 4], lo: f64, hi: f64, device: &Device) -> Tensor<4> {
    if !fast_bn(device) {
        return Tensor::random(shape, Distribution::Uniform(lo, hi), device);
    }
    let n = shape.iter().product();
    let v = random::uniform(n, lo as f32, hi as f32, draw_seed(device));
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// An inverted-dropout mask of `shape` on `device`: `1/keep` with probability `keep`, else 0;
/// filled in parallel on flex ([`random`]), `Tensor::random` elsewhere.
pub fn dropout_mask(shape: [usize; 4], keep: f64, device: &Device) -> Tensor<4> {
    if !fast_bn(device) {
        return Tensor::<4>::random(shape, Distribution::Bernoulli(keep), device).div_scalar(keep);
    }
    let n = shape.iter().product();
    let v = random::bernoulli(n, keep, (1.0 / keep) as f32, draw_seed(device));
    Tensor::from_data(TensorData::new(v, shape), device)
}
