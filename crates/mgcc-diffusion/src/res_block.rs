//! The residual block of the autoencoder and the denoiser: Medfusion's `UnetResBlock` built
//! from two `BasicResBlock`s.
//!
//! Each sub-block is post-activation, `SiLU(GN(conv₃ₓ₃(x))) + skip(x)`, with `skip` a 1×1
//! convolution when the width changes and the identity otherwise. The second sub-block's
//! convolution is zero-initialised (so it starts as the identity) and, when the block is
//! conditioned, `Linear(SiLU(emb))` is added as a per-channel bias between the two:
//!
//! `h = first(x) [+ Linear(SiLU(emb))]`, `out = second(h)`.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, Linear};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Tensor};

use crate::layers::{self, Init};

/// `SiLU(GN(conv₃ₓ₃(x))) + skip(x)` (Medfusion's `BasicResBlock`).
#[derive(Module, Debug)]
pub struct SubBlock {
    conv: Conv2d,
    norm: GroupNorm,
    skip: Option<Conv2d>,
}

impl SubBlock {
    fn new(cin: usize, cout: usize, groups: usize, init: Init, device: &Device) -> Self {
        Self {
            conv: layers::conv(cin, cout, 3, 1, init, device),
            norm: layers::group_norm(cout, groups, device),
            skip: (cin != cout).then(|| layers::conv(cin, cout, 1, 1, Init::Default, device)),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = layers::norm(&self.norm, layers::apply(&self.conv, x.clone()), true);
        match &self.skip {
            Some(conv) => h + layers::apply(conv, x),
            None => h + x,
        }
    }
}

/// Residual block `cin → cout`, optionally conditioned on an embedding vector.
#[derive(Module, Debug)]
pub struct ResBlock {
    first: SubBlock,
    second: SubBlock,
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
            first: SubBlock::new(cin, cout, groups, Init::Default, device),
            second: SubBlock::new(cout, cout, groups, Init::Zero, device),
            emb_proj: emb_dim.map(|d| layers::linear(d, cout, device)),
        }
    }

    /// `x [B, cin, H, W]`, `emb [B, emb_dim]` (when built with one) → `[B, cout, H, W]`.
    pub fn forward(&self, x: Tensor<4>, emb: Option<&Tensor<2>>) -> Tensor<4> {
        let mut h = self.first.forward(x);
        if let (Some(proj), Some(emb)) = (&self.emb_proj, emb) {
            let [b, c] = [h.dims()[0], h.dims()[1]];
            h = h + proj.forward(silu(emb.clone())).reshape([b, c, 1, 1]);
        }
        self.second.forward(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn max_abs(t: Tensor<4>) -> f32 {
        t.abs().max().into_scalar()
    }

    #[test]
    fn starts_as_its_first_sub_block_plus_the_embedding() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 8, 6, 5], Distribution::Default, &device);
        let emb = Tensor::<2>::random([2, 16], Distribution::Default, &device);
        let block = ResBlock::new(8, 12, 4, Some(16), &device);
        let y = block.forward(x.clone(), Some(&emb));
        assert_eq!(y.dims(), [2, 12, 6, 5]);
        // The second sub-block's convolution is zero: GN(0) = β = 0, SiLU(0) = 0, so it passes
        // its input through.
        let proj = block.emb_proj.as_ref().unwrap();
        let bias = proj.forward(silu(emb)).reshape([2, 12, 1, 1]);
        let expect = block.first.forward(x.clone()) + bias;
        assert!(max_abs(y - expect) < 1e-6);
        // Post-activation with a 1×1 skip: SiLU(GN(conv(x))) + skip(x), by hand.
        let f = &block.first;
        let hand = silu(f.norm.forward(layers::apply(&f.conv, x.clone())))
            + layers::apply(f.skip.as_ref().unwrap(), x.clone());
        assert!(max_abs(block.first.forward(x.clone()) - hand) < 1e-6);
        // Same width: identity skip, no 1×1 convolution.
        let same = ResBlock::new(8, 8, 4, None, &device);
        assert!(same.first.skip.is_none());
        let h = silu(
            same.first
                .norm
                .forward(layers::apply(&same.first.conv, x.clone())),
        );
        assert!(max_abs(same.forward(x.clone(), None) - (h + x)) < 1e-6);
    }
}
