//! Convolutions initialised like PyTorch's `nn.Conv2d` default.
//!
//! PyTorch draws the weight from Kaiming-uniform with `a = √5`, i.e. `U(−b, b)` with
//! `b = gain·√(3/fan_in) = √(2/(1+5))·√(3/fan_in) = 1/√fan_in`, and the bias from the same
//! `U(−1/√fan_in, 1/√fan_in)`, where `fan_in = (in_channels / groups)·k_h·k_w`.
//!
//! burn 0.22's `Conv2dConfig` default (`KaimingUniform { gain: 1/√3 }`) yields the same bound
//! `√3·(1/√3)·(1/√fan_in)` for weight and bias, but its parameters are *lazy*: they are drawn
//! from the device RNG on first use, i.e. inside whatever step first touches them. To make
//! initialisation depend only on the seed set before [`crate::MgccConfig::init`], the tensors
//! here are drawn eagerly.

use burn::module::Param;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Distribution, Tensor};

/// Shape of one 2-D convolution (stride 1, "same" padding `dilation·(k/2)` on every side).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvSpec {
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Square kernel size.
    pub kernel: usize,
    /// Dilation.
    pub dilation: usize,
    /// Groups (`cin` for a depthwise convolution).
    pub groups: usize,
}

impl ConvSpec {
    /// A plain `k×k` convolution `cin → cout`.
    pub(crate) fn new(cin: usize, cout: usize, kernel: usize) -> Self {
        Self {
            cin,
            cout,
            kernel,
            dilation: 1,
            groups: 1,
        }
    }

    /// Same spec with dilation `d`.
    pub(crate) fn dilated(self, dilation: usize) -> Self {
        Self { dilation, ..self }
    }

    /// Same spec with `groups` groups.
    pub(crate) fn grouped(self, groups: usize) -> Self {
        Self { groups, ..self }
    }

    /// Builds the convolution with bias, drawing weight and bias from `U(−1/√fan_in, 1/√fan_in)`.
    pub(crate) fn init(self, device: &Device) -> Conv2d {
        let fan_in = self.cin / self.groups * self.kernel * self.kernel;
        let bound = 1.0 / (fan_in as f64).sqrt();
        let dist = Distribution::Uniform(-bound, bound);
        let weight = Tensor::<4>::random(
            [self.cout, self.cin / self.groups, self.kernel, self.kernel],
            dist,
            device,
        );
        let bias = Tensor::<1>::random([self.cout], dist, device);
        let pad = self.dilation * (self.kernel / 2);
        Conv2d {
            weight: Param::from_tensor(weight),
            bias: Some(Param::from_tensor(bias)),
            stride: [1, 1],
            kernel_size: [self.kernel, self.kernel],
            dilation: [self.dilation, self.dilation],
            groups: self.groups,
            padding: PaddingConfig2d::Explicit(pad, pad, pad, pad),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_and_bias_lie_within_pytorch_bound_and_fill_it() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        device.seed(3);
        let conv = ConvSpec::new(6, 8, 3).init(&device);
        let bound = 1.0 / ((6 * 9) as f32).sqrt();
        let w: Vec<f32> = conv.weight.val().into_data().try_to_vec::<f32>().unwrap();
        let b: Vec<f32> = conv
            .bias
            .as_ref()
            .unwrap()
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(w.len(), 8 * 6 * 9);
        let max_abs = w.iter().chain(&b).fold(0f32, |m, v| m.max(v.abs()));
        assert!(max_abs <= bound, "{max_abs} > {bound}");
        // 432 uniform draws: the largest magnitude is close to the bound.
        assert!(max_abs > 0.9 * bound, "{max_abs} far below {bound}");
    }

    #[test]
    fn depthwise_fan_in_uses_groups_and_padding_keeps_size() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        let conv = ConvSpec::new(4, 4, 7).grouped(4).init(&device);
        assert_eq!(conv.weight.dims(), [4, 1, 7, 7]);
        let bound = 1.0 / 7.0;
        let w: Vec<f32> = conv.weight.val().into_data().try_to_vec::<f32>().unwrap();
        assert!(w.iter().all(|v| v.abs() <= bound));
        let y = conv.forward(Tensor::<4>::ones([1, 4, 9, 11], &device));
        assert_eq!(y.dims(), [1, 4, 9, 11]);
        let dil = ConvSpec::new(2, 3, 3).dilated(2).init(&device);
        let y = dil.forward(Tensor::<4>::ones([1, 2, 8, 8], &device));
        assert_eq!(y.dims(), [1, 3, 8, 8]);
    }
}
