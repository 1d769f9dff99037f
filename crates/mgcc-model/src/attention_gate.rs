//! Multi-scale attention gate on a skip connection.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};

use crate::batch_norm::BatchNorm2d;
use crate::init::ConvSpec;

/// A convolution followed by batch norm.
#[derive(Module, Debug)]
pub struct ConvBn {
    conv: Conv2d,
    bn: BatchNorm2d,
}

impl ConvBn {
    fn new(spec: ConvSpec, device: &Device) -> Self {
        Self {
            conv: spec.init(device),
            bn: BatchNorm2d::new(spec.cout, device),
        }
    }

    /// `BN(conv(x))`, spatial size kept.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        crate::conv::apply_bn(&self.conv, &self.bn, x, false)
    }

    /// `ReLU(BN(conv(x)))`, spatial size kept.
    fn forward_relu(&self, x: Tensor<4>) -> Tensor<4> {
        crate::conv::apply_bn(&self.conv, &self.bn, x, true)
    }
}

/// MSAG(c) on a skip `x`:
///
/// `a = ReLU(cat[BN(Conv1×1 x), BN(Conv3×3 x), BN(Conv3×3,dil 2 x)])`,
/// `g = σ(BN(Conv1×1(a): 3c→c))`, output `x + x·g`.
#[derive(Module, Debug)]
pub struct MultiScaleGate {
    point: ConvBn,
    local: ConvBn,
    wide: ConvBn,
    vote: ConvBn,
}

impl MultiScaleGate {
    /// A gate on `channels` channels.
    pub fn new(channels: usize, device: &Device) -> Self {
        let c = channels;
        Self {
            point: ConvBn::new(ConvSpec::new(c, c, 1), device),
            local: ConvBn::new(ConvSpec::new(c, c, 3), device),
            wide: ConvBn::new(ConvSpec::new(c, c, 3).dilated(2), device),
            vote: ConvBn::new(ConvSpec::new(3 * c, c, 1), device),
        }
    }

    /// The gate `g ∈ (0, 1)`: `B×c×H×W → B×c×H×W`.
    pub fn gate(&self, x: Tensor<4>) -> Tensor<4> {
        sigmoid(self.vote_logits(x))
    }

    /// The gate before its sigmoid: `BN(Conv1×1(a))`.
    fn vote_logits(&self, x: Tensor<4>) -> Tensor<4> {
        // ReLU(cat[a, b, c]) = cat[ReLU a, ReLU b, ReLU c]; the ReLU fuses into each BN.
        let a = mgcc_kernels::cat_channels(vec![
            self.point.forward_relu(x.clone()),
            self.local.forward_relu(x.clone()),
            self.wide.forward_relu(x),
        ]);
        self.vote.forward(a)
    }

    /// `x + x·g(x)`: `B×c×H×W → B×c×H×W`; on flex the sigmoid, product and sum are one
    /// fused pass (and one backward pass in training).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let z = self.vote_logits(x.clone());
        mgcc_kernels::sigmoid_gate(x, z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn output_is_x_scaled_by_one_plus_gate() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        let gate = MultiScaleGate::new(3, &device);
        let x = Tensor::<4>::random([2, 3, 8, 8], Distribution::Normal(0.0, 1.0), &device);
        let g = gate.gate(x.clone());
        let gv: Vec<f32> = g.clone().into_data().try_to_vec::<f32>().unwrap();
        assert!(gv.iter().all(|v| *v > 0.0 && *v < 1.0));
        let y = gate.forward(x.clone());
        assert_eq!(y.dims(), [2, 3, 8, 8]);
        let diff = (y - x.clone() * (g + 1.0)).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-5, "{diff}");
        // 1×1: 9+3, 3×3: 81+3, dilated: 81+3, vote 27+3; four BNs of 3: 4·(6 + 6).
        assert_eq!(gate.num_params(), 12 + 84 + 84 + 30 + 48);
    }

    /// The fused `x + x·σ(z)` (forward and both gradients) equals burn's composed ops on an
    /// autodiff flex device, at a size that spans several parallel chunks.
    #[test]
    fn fused_gate_output_matches_composed_ops_with_gradients() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex().autodiff();
        device.seed(3);
        let shape = [2, 3, 61, 97];
        let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device).require_grad();
        let z = Tensor::<4>::random(shape, Distribution::Normal(0.0, 3.0), &device).require_grad();
        let probe = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let run = |y: Tensor<4>| {
            let v: Vec<f32> = y.clone().into_data().try_to_vec().unwrap();
            let g = (y * probe.clone()).sum().backward();
            let grad = |t: &Tensor<4>| -> Vec<f32> {
                t.grad(&g).unwrap().into_data().try_to_vec().unwrap()
            };
            (v, grad(&x), grad(&z))
        };
        let fused = run(mgcc_kernels::sigmoid_gate(x.clone(), z.clone()));
        let composed = run(x.clone() + x.clone() * sigmoid(z.clone()));
        for (what, a, b) in [
            ("y", &fused.0, &composed.0),
            ("dx", &fused.1, &composed.1),
            ("dz", &fused.2, &composed.2),
        ] {
            assert_eq!(a.len(), b.len());
            let worst = a
                .iter()
                .zip(b)
                .map(|(p, q)| (p - q).abs() / (1.0 + q.abs()))
                .fold(0.0f32, f32::max);
            assert!(worst < 1e-5, "{what}: {worst}");
        }
    }
}
