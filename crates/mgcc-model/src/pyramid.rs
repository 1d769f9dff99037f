//! Side outputs of a pyramid decoder, as URPC's `Decoder_URPC` (Luo et al. 2021, SSL4MIS):
//! a 3×3 convolution to one logit channel on the decoder state after each of its first three
//! levels, the input of each perturbed in training, upsampled (nearest) to the input size.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};

use crate::init::ConvSpec;
use crate::perturbation::{Perturbation, maybe_dropout};

/// The three side heads, deepest first (channels `c4, c3, c2` at `1/8, 1/4, 1/2` resolution).
#[derive(Module, Debug)]
pub struct PyramidHeads {
    convs: Vec<Conv2d>,
}

impl PyramidHeads {
    /// Heads for decoder states of `channels = [c4, c3, c2]` channels.
    pub fn new(channels: [usize; 3], device: &Device) -> Self {
        Self {
            convs: channels
                .iter()
                .map(|&c| ConvSpec::new(c, 1, 3).init(device))
                .collect(),
        }
    }

    /// `levels = [B×c4×H/8×W/8, B×c3×H/4×W/4, B×c2×H/2×W/2]` → logits `B×1×H×W` of the side
    /// outputs in SSL4MIS's order `[dp1 (1/2), dp2 (1/4), dp3 (1/8)]`. Inputs are perturbed as
    /// `Decoder_URPC` does in training: dropout `p.pyramid_dropout` at 1/8, feature dropout at
    /// 1/4, feature noise at 1/2 (drawn in that order).
    pub fn forward(
        &self,
        levels: [Tensor<4>; 3],
        p: &Perturbation,
        size: [usize; 2],
    ) -> [Tensor<4>; 3] {
        let [deep, mid, shallow] = levels;
        let side =
            |i: usize, x: Tensor<4>| upsample_to(crate::conv::apply(&self.convs[i], x), size);
        let dp3 = side(0, maybe_dropout(deep, p.pyramid_dropout));
        let dp2 = side(1, p.feature_dropout(mid));
        let dp1 = side(2, p.noise(shallow));
        [dp1, dp2, dp3]
    }
}

/// Nearest-neighbour resize of `B×C×h×w` to `B×C×H×W` (`torch.nn.functional.interpolate`'s
/// default mode).
pub(crate) fn upsample_to(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    interpolate(
        x,
        InterpolateOptions::new(InterpolateMode::Nearest)
            .with_align_corners(false)
            .with_output_size(size),
    )
}
