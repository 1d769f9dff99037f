//! The U-Net double convolution block.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};

use crate::batch_norm::BatchNorm2d;
use crate::init::ConvSpec;

/// `DoubleConv(a→b)`: 3×3 conv (pad 1, bias) → BN → ReLU → 3×3 conv → BN → ReLU.
#[derive(Module, Debug)]
pub struct DoubleConv {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    conv2: Conv2d,
    bn2: BatchNorm2d,
}

impl DoubleConv {
    /// A block mapping `cin` to `cout` channels.
    pub fn new(cin: usize, cout: usize, device: &Device) -> Self {
        Self {
            conv1: ConvSpec::new(cin, cout, 3).init(device),
            bn1: BatchNorm2d::new(cout, device),
            conv2: ConvSpec::new(cout, cout, 3).init(device),
            bn2: BatchNorm2d::new(cout, device),
        }
    }

    /// `B×cin×H×W → B×cout×H×W`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = crate::conv::apply_bn(&self.conv1, &self.bn1, x, true);
        crate::conv::apply_bn(&self.conv2, &self.bn2, x, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_channels_keeps_size_and_is_non_negative() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        let block = DoubleConv::new(3, 5, &device);
        let y = block.forward(Tensor::random(
            [2, 3, 8, 6],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        ));
        assert_eq!(y.dims(), [2, 5, 8, 6]);
        let v: Vec<f32> = y.into_data().try_to_vec::<f32>().unwrap();
        assert!(v.iter().all(|x| *x >= 0.0));
        assert!(v.iter().any(|x| *x > 0.0));
        // 3·5·9 + 5 + 5·5·9 + 5 weights and biases, 2·(5 + 5) BN affine, 2·(5 + 5) running stats.
        assert_eq!(block.num_params(), 135 + 5 + 225 + 5 + 20 + 20);
    }
}
