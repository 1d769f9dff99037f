//! The residual block of the autoencoder and the denoiser (Medfusion's `ResBlock`).
//!
//! `h = conv₁(SiLU(GN(x)))`, plus the projected embedding as a per-channel bias when the block is
//! time-conditioned; `h = conv₂(SiLU(GN(h)))` with `conv₂` zero-initialised; output
//! `skip(x) + h`, where `skip` is a 1×1 convolution when the channel count changes.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, Linear};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Tensor};

use crate::layers::{self, Init};

/// Residual block `cin → cout`, optionally conditioned on an embedding vector.
#[derive(Module, Debug)]
pub struct ResBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    norm2: GroupNorm,
    conv2: Conv2d,
    skip: Option<Conv2d>,
    emb_proj: Option<Linear>,
}

impl ResBlock {
    /// A block with `groups` GroupNorm groups; `emb_dim` adds the embedding projection.
    pub fn new(
        cin: usize,
        cout: usize,
        groups: usize,
        emb_dim: Option<usize>,
        device: &Device,
    ) -> Self {
        Self {
            norm1: layers::group_norm(cin, groups, device),
            conv1: layers::conv(cin, cout, 3, 1, Init::Default, device),
            emb_proj: emb_dim.map(|d| layers::linear(d, cout, device)),
            norm2: layers::group_norm(cout, groups, device),
            conv2: layers::conv(cout, cout, 3, 1, Init::Zero, device),
            skip: (cin != cout).then(|| layers::conv(cin, cout, 1, 1, Init::Default, device)),
        }
    }

    /// `x [B, cin, H, W]`, `emb [B, emb_dim]` (when built with one) → `[B, cout, H, W]`.
    pub fn forward(&self, x: Tensor<4>, emb: Option<&Tensor<2>>) -> Tensor<4> {
        let mut h = layers::apply(&self.conv1, layers::norm_act(&self.norm1, x.clone()));
        if let (Some(proj), Some(emb)) = (&self.emb_proj, emb) {
            let [b, c] = [h.dims()[0], h.dims()[1]];
            let bias = proj.forward(silu(emb.clone())).reshape([b, c, 1, 1]);
            h = h + bias;
        }
        let h = layers::apply(&self.conv2, layers::norm_act(&self.norm2, h));
        let skip = match &self.skip {
            Some(conv) => layers::apply(conv, x),
            None => x,
        };
        skip + h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_as_the_skip_path_and_changes_channels() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 8, 6, 5], burn::tensor::Distribution::Default, &device);
        // Same channels: conv₂ is zero, so the block is the identity at initialisation.
        let same = ResBlock::new(8, 8, 4, Some(16), &device);
        let emb = Tensor::<2>::ones([2, 16], &device);
        let y = same.forward(x.clone(), Some(&emb));
        let d: f32 = (y - x.clone()).abs().max().into_scalar();
        assert_eq!(d, 0.0);
        let wider = ResBlock::new(8, 12, 4, None, &device);
        assert_eq!(wider.forward(x, None).dims(), [2, 12, 6, 5]);
    }
}
