//! Fast CPU kernels for MGCC on burn's `flex` backend.
//!
//! burn 0.22's flex backend computes a convolution's weight gradient as a convolution whose
//! kernel is the whole output-gradient image, and its grouped weight gradient one group at a
//! time; together they dominate a training step. [`conv2d`] replaces burn's `conv2d` for tensors
//! on a flex device (plain or autodiff) with im2col + `gemm` kernels ([`dense`]) and direct
//! depthwise backward loops ([`depthwise`]); on any other device it is burn's `conv2d`.
//! Results equal burn's up to floating-point summation order.

pub mod backend;
pub mod dense;
pub mod depthwise;
pub mod geometry;
pub mod im2col;

use std::sync::OnceLock;

use burn::backend::Dispatch;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};

use crate::backend::FastConvBackend;

/// Environment variable that, when set to `1`, turns the fast path off (burn's `conv2d`
/// everywhere), for A/B timing and for ruling the kernels out when debugging.
pub const DISABLE_ENV: &str = "MGCC_DISABLE_FAST_CONV";

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
