//! ConvMixer stages applied to the bottleneck features.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::gelu;
use burn::tensor::{Device, Tensor};

use crate::batch_norm::BatchNorm2d;
use crate::init::ConvSpec;

/// One ConvMixer layer on `c` channels with a `k×k` depthwise kernel:
///
/// `y = x + BN(GELU(DWConv_k(x)))`, then `out = BN(GELU(Conv_1×1(y)))`
/// (exact erf GELU; conv → GELU → BN as in the published code).
#[derive(Module, Debug)]
pub struct MixerLayer {
    depthwise: Conv2d,
    depthwise_bn: BatchNorm2d,
    pointwise: Conv2d,
    pointwise_bn: BatchNorm2d,
}

impl MixerLayer {
    /// A layer on `channels` channels with depthwise kernel `kernel` (padding `kernel/2`).
    pub fn new(channels: usize, kernel: usize, device: &Device) -> Self {
        Self {
            depthwise: ConvSpec::new(channels, channels, kernel)
                .grouped(channels)
                .init(device),
            depthwise_bn: BatchNorm2d::new(channels, device),
            pointwise: ConvSpec::new(channels, channels, 1).init(device),
            pointwise_bn: BatchNorm2d::new(channels, device),
        }
    }

    /// `B×c×h×w → B×c×h×w`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let spatial = self
            .depthwise_bn
            .forward(gelu(crate::conv::apply(&self.depthwise, x.clone())));
        let y = x + spatial;
        self.pointwise_bn
            .forward(gelu(crate::conv::apply(&self.pointwise, y)))
    }
}

/// A stack of `depth` [`MixerLayer`]s.
#[derive(Module, Debug)]
pub struct ConvMixerStage {
    layers: Vec<MixerLayer>,
}

impl ConvMixerStage {
    /// `depth` layers on `channels` channels with depthwise kernel `kernel`.
    pub fn new(channels: usize, depth: usize, kernel: usize, device: &Device) -> Self {
        Self {
            layers: (0..depth)
                .map(|_| MixerLayer::new(channels, kernel, device))
                .collect(),
        }
    }

    /// Number of layers.
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// `B×c×h×w → B×c×h×w`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.layers.iter().fold(x, |x, layer| layer.forward(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn stage_keeps_shape_and_counts_parameters() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        let stage = ConvMixerStage::new(5, 3, 7, &device);
        assert_eq!(stage.depth(), 3);
        let y = stage.forward(Tensor::random([2, 5, 2, 3], Distribution::Default, &device));
        assert_eq!(y.dims(), [2, 5, 2, 3]);
        // Per layer: depthwise 5·49 + 5, pointwise 5·5 + 5, two BNs 2·(2·5) affine + 2·(2·5) running.
        let per_layer = 5 * 49 + 5 + 25 + 5 + 20 + 20;
        assert_eq!(stage.num_params(), 3 * per_layer);
    }

    #[test]
    fn layer_follows_conv_gelu_bn_with_residual() {
        let _rng = crate::test_util::rng_lock();
        // On a plain device BN uses running stats (mean 0, var 1): BN(v) = v/√(1+ε).
        let device = Device::flex();
        let layer = MixerLayer::new(2, 3, &device);
        let x = Tensor::<4>::random([1, 2, 3, 3], Distribution::Normal(0.0, 1.0), &device);
        let s = 1.0 / (1.0f64 + 1e-5).sqrt();
        let y = x.clone() + gelu(layer.depthwise.forward(x.clone())).mul_scalar(s);
        let expect = gelu(layer.pointwise.forward(y)).mul_scalar(s);
        let diff = (layer.forward(x) - expect).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-5, "{diff}");
    }
}
