//! Batch normalisation with PyTorch's `nn.BatchNorm2d` semantics.
//!
//! `y = γ·(x − μ)/√(σ² + ε) + β` per channel, `ε = 1e-5`.
//!
//! * **Mode.** Training behaviour (batch statistics over `B×H×W`, running-statistic update)
//!   applies when the input lives on an autodiff device *and* the layer's `training` flag is
//!   on — burn 0.22's own rule. `Module::valid()` moves the model off autodiff and clears the
//!   flag, so `model.valid().forward(x)` is PyTorch's `eval()`; a model on a plain device always
//!   uses the running statistics.
//! * **Running statistics.** `r ← (1 − m)·r + m·s` with `m = 0.1` (burn uses the same
//!   convention as PyTorch). PyTorch stores the *unbiased* batch variance `σ²·n/(n−1)`
//!   (`n = B·H·W`) in `running_var`, whereas burn 0.22's `nn::BatchNorm` stores the biased
//!   one; this layer applies the `n/(n−1)` correction so the running variance matches PyTorch.
//!   The normalisation itself uses the biased variance, as both frameworks do.

use burn::module::{Flag, Module, Param, RunningState};
use burn::tensor::activation::relu;
use burn::tensor::module::batch_norm;
use burn::tensor::{Device, Tensor};

/// PyTorch momentum for running statistics.
const MOMENTUM: f64 = 0.1;
/// PyTorch epsilon.
pub(crate) const EPSILON: f64 = 1e-5;

/// `nn.BatchNorm2d(channels)` with PyTorch defaults; see the module docs.
#[derive(Module, Debug)]
pub struct BatchNorm2d {
    /// Learnable scale γ, initialised to 1.
    pub gamma: Param<Tensor<1>>,
    /// Learnable shift β, initialised to 0.
    pub beta: Param<Tensor<1>>,
    /// Running mean (starts at 0); a buffer, not learnable.
    pub running_mean: RunningState<Tensor<1>>,
    /// Running unbiased variance (starts at 1); a buffer, not learnable.
    pub running_var: RunningState<Tensor<1>>,
    /// Training flag, cleared by `Module::valid()`.
    pub training: Param<Flag>,
}

impl BatchNorm2d {
    /// A fresh layer over `channels` channels.
    pub fn new(channels: usize, device: &Device) -> Self {
        Self {
            gamma: Param::from_tensor(Tensor::ones([channels], device)),
            beta: Param::from_tensor(Tensor::zeros([channels], device)),
            running_mean: RunningState::new(Tensor::zeros([channels], device)),
            running_var: RunningState::new(Tensor::ones([channels], device)),
            training: Param::from_bool(true),
        }
    }

    /// Normalises `x`: `B×C×H×W → B×C×H×W`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_maybe_relu(x, false)
    }

    /// `ReLU(BN(x))`, fused into one operation in training mode on flex.
    pub fn forward_relu(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_maybe_relu(x, true)
    }

    /// Whether this layer uses batch statistics for inputs on `device` (training mode: an
    /// autodiff device and the training flag on). Other layers of a block follow it, so dropout
    /// acts exactly when batch norm trains, as after PyTorch's `model.train()`.
    pub fn is_training(&self, device: &Device) -> bool {
        device.is_autodiff() && self.training.is_enabled()
    }

    /// `[γ, β, running mean, running variance]` on `device` when this layer normalises with
    /// its running statistics there (inference mode), `None` in training mode.
    pub fn eval_params(&self, device: &Device) -> Option<[Tensor<1>; 4]> {
        if self.is_training(device) {
            return None;
        }
        Some([
            self.gamma.val(),
            self.beta.val(),
            self.running_mean.value_sync().to_device(device),
            self.running_var.value_sync().to_device(device),
        ])
    }

    /// `forward(x)` (or `forward_relu(x)` when `with_relu`).
    pub fn forward_maybe_relu(&self, x: Tensor<4>, with_relu: bool) -> Tensor<4> {
        if self.is_training(&x.device()) {
            return self.forward_train(x, with_relu);
        }
        let device = x.device();
        let y = batch_norm(
            x,
            self.gamma.val(),
            self.beta.val(),
            self.running_mean.value_sync().to_device(&device),
            self.running_var.value_sync().to_device(&device),
            EPSILON,
        );
        if with_relu { relu(y) } else { y }
    }

    /// Batch statistics; updates the running mean and unbiased running variance.
    fn forward_train(&self, x: Tensor<4>, with_relu: bool) -> Tensor<4> {
        let device = x.device();
        let [b, _, h, w] = x.dims();
        let n = b * h * w;
        // PyTorch refuses n = 1 in training; here the correction is simply skipped.
        let unbias = if n > 1 {
            n as f64 / (n - 1) as f64
        } else {
            1.0
        };
        let (output, batch_mean, batch_var) = mgcc_kernels::batch_norm_train(
            x,
            self.gamma.val(),
            self.beta.val(),
            EPSILON,
            with_relu,
        );
        let mean = self
            .running_mean
            .value_sync()
            .to_device(&device)
            .mul_scalar(1.0 - MOMENTUM)
            .add(batch_mean.detach().mul_scalar(MOMENTUM));
        let var = self
            .running_var
            .value_sync()
            .to_device(&device)
            .mul_scalar(1.0 - MOMENTUM)
            .add(batch_var.detach().mul_scalar(MOMENTUM * unbias));
        self.running_mean.update(mean.detach());
        self.running_var.update(var.detach());
        output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// Channel 0 holds 0..8, channel 1 holds 2·(0..8): batch 2, 2×2 pixels, n = 8.
    fn sample(device: &Device) -> Tensor<4> {
        let c0: Vec<f32> = (0..8).map(|v| v as f32).collect();
        let c1: Vec<f32> = c0.iter().map(|v| 2.0 * v).collect();
        // Layout B×C×H×W: sample b takes values 4b..4b+4 of each channel.
        let mut data = Vec::new();
        for b in 0..2 {
            data.extend_from_slice(&c0[4 * b..4 * b + 4]);
            data.extend_from_slice(&c1[4 * b..4 * b + 4]);
        }
        Tensor::<1>::from_floats(data.as_slice(), device).reshape([2, 2, 2, 2])
    }

    #[test]
    fn training_uses_batch_stats_and_updates_running_stats_like_pytorch() {
        let device = Device::flex().autodiff();
        let bn = BatchNorm2d::new(2, &device);
        let y = values(bn.forward(sample(&device)));
        // Channel 0: mean 3.5, biased var 5.25 → first value (0 − 3.5)/√(5.25 + 1e-5).
        let expect = -3.5 / (5.25f32 + 1e-5).sqrt();
        assert!((y[0] - expect).abs() < 1e-5, "{} vs {expect}", y[0]);
        // Running mean 0.1·3.5, running var 0.9 + 0.1·(5.25·8/7) = 0.9 + 0.6 (unbiased: 6).
        let rm = values(bn.running_mean.value_sync());
        let rv = values(bn.running_var.value_sync());
        assert!(
            (rm[0] - 0.35).abs() < 1e-6 && (rm[1] - 0.7).abs() < 1e-6,
            "{rm:?}"
        );
        assert!((rv[0] - 1.5).abs() < 1e-5, "{rv:?}");
        assert!((rv[1] - (0.9 + 0.1 * 24.0)).abs() < 1e-4, "{rv:?}");
    }

    #[test]
    fn plain_device_and_valid_use_running_stats() {
        let device = Device::flex().autodiff();
        let bn = BatchNorm2d::new(2, &device);
        let _ = bn.forward(sample(&device)); // running mean [0.35, 0.7], var [1.5, 3.3]
        let eval = bn.valid();
        let y = values(eval.forward(sample(&Device::flex())));
        let expect = (0.0 - 0.35) / (1.5f32 + 1e-5).sqrt();
        assert!((y[0] - expect).abs() < 1e-5, "{} vs {expect}", y[0]);
        // The validation copy did not touch the running statistics.
        let rm = values(eval.running_mean.value_sync());
        assert!((rm[0] - 0.35).abs() < 1e-6);
        // A fresh layer on a plain device is the identity (mean 0, var 1, γ 1, β 0) up to ε.
        let fresh = BatchNorm2d::new(2, &Device::flex());
        let y = values(fresh.forward(sample(&Device::flex())));
        assert!((y[3] - 3.0 / (1.0f32 + 1e-5).sqrt()).abs() < 1e-5);
    }
}
