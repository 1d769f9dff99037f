//! The attention-gated decoder (main and auxiliary decoders share this shape).

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};

use crate::attention_gate::MultiScaleGate;
use crate::batch_norm::BatchNorm2d;
use crate::double_conv::DoubleConv;
use crate::encoder::level_channels;
use crate::init::ConvSpec;

/// Nearest-neighbour 2× upsampling: `B×C×H×W → B×C×2H×2W`, `out[i, j] = in[⌊i/2⌋, ⌊j/2⌋]`.
pub(crate) fn upsample2(x: Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    interpolate(
        x,
        InterpolateOptions::new(InterpolateMode::Nearest)
            .with_align_corners(false)
            .with_output_size([2 * h, 2 * w]),
    )
}

/// Up block: nearest 2× upsample → 3×3 conv (`cin→cout`) → BN → ReLU.
#[derive(Module, Debug)]
pub struct UpBlock {
    conv: Conv2d,
    bn: BatchNorm2d,
}

impl UpBlock {
    fn new(cin: usize, cout: usize, device: &Device) -> Self {
        Self {
            conv: ConvSpec::new(cin, cout, 3).init(device),
            bn: BatchNorm2d::new(cout, device),
        }
    }

    /// `B×cin×H×W → B×cout×2H×2W`.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        crate::conv::apply_bn(&self.conv, &self.bn, upsample2(x), true)
    }
}

/// Decoder over encoder features `f1…f5` with channels `c = [w, 2w, 4w, 8w, 16w]`:
/// skips `f1…f4` pass their own [`MultiScaleGate`]; `d = f5`; for levels `i = 4, 3, 2, 1`:
/// `d = DoubleConv(cat[gate_i(f_i), Up_i(d)] → c_i)`; finally a 1×1 conv `w → 1` gives logits.
#[derive(Module, Debug)]
pub struct Decoder {
    gates: Vec<MultiScaleGate>,
    ups: Vec<UpBlock>,
    fuse: Vec<DoubleConv>,
    head: Conv2d,
}

impl Decoder {
    /// A decoder for first-level width `width`.
    pub fn new(width: usize, device: &Device) -> Self {
        let c = level_channels(width);
        Self {
            gates: (0..4).map(|i| MultiScaleGate::new(c[i], device)).collect(),
            ups: (0..4)
                .map(|i| UpBlock::new(c[i + 1], c[i], device))
                .collect(),
            fuse: (0..4)
                .map(|i| DoubleConv::new(2 * c[i], c[i], device))
                .collect(),
            head: ConvSpec::new(width, 1, 1).init(device),
        }
    }

    /// `[f1, …, f5]` with `f_i: B×c_i×H/2^(i−1)×W/2^(i−1)` → logits `B×1×H×W`.
    pub fn forward(&self, feats: [Tensor<4>; 5]) -> Tensor<4> {
        self.forward_with_levels(feats).0
    }

    /// [`forward`](Self::forward), also returning the decoder state after the first three
    /// levels: `[B×c4×H/8×W/8, B×c3×H/4×W/4, B×c2×H/2×W/2]` (the taps of URPC's side outputs).
    pub fn forward_with_levels(&self, feats: [Tensor<4>; 5]) -> (Tensor<4>, [Tensor<4>; 3]) {
        let [f1, f2, f3, f4, f5] = feats;
        let skips = [f1, f2, f3, f4];
        let mut d = f5;
        let mut levels = Vec::with_capacity(3);
        for (i, skip) in skips.into_iter().enumerate().rev() {
            let gated = self.gates[i].forward(skip);
            let up = self.ups[i].forward(d);
            d = self.fuse[i].forward(mgcc_kernels::cat_channels(vec![gated, up]));
            if i > 0 {
                levels.push(d.clone());
            }
        }
        let levels: [Tensor<4>; 3] = levels.try_into().expect("three inner levels");
        (crate::conv::apply(&self.head, d), levels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn upsample_repeats_each_pixel_into_a_2x2_block() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        let x =
            Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &device).reshape([1, 1, 2, 3]);
        let y: Vec<f32> = upsample2(x).into_data().try_to_vec::<f32>().unwrap();
        #[rustfmt::skip]
        let expect = vec![
            1.0, 1.0, 2.0, 2.0, 3.0, 3.0,
            1.0, 1.0, 2.0, 2.0, 3.0, 3.0,
            4.0, 4.0, 5.0, 5.0, 6.0, 6.0,
            4.0, 4.0, 5.0, 5.0, 6.0, 6.0,
        ];
        assert_eq!(y, expect);
    }

    #[test]
    fn decoder_maps_features_of_odd_width_to_one_channel_logits() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        let w = 5;
        let c = level_channels(w);
        let dec = Decoder::new(w, &device);
        let feats: [Tensor<4>; 5] = core::array::from_fn(|i| {
            let s = 32 >> i;
            Tensor::random([2, c[i], s, s], Distribution::Default, &device)
        });
        assert_eq!(dec.forward(feats).dims(), [2, 1, 32, 32]);
    }
}
