//! The five-level convolutional encoder.

use burn::module::Module;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor};

use crate::double_conv::DoubleConv;

/// Channels per level for first-level width `w`: `[w, 2w, 4w, 8w, 16w]`.
pub fn level_channels(width: usize) -> [usize; 5] {
    [width, 2 * width, 4 * width, 8 * width, 16 * width]
}

/// 2×2 max-pool with stride 2: `B×C×H×W → B×C×H/2×W/2`.
pub(crate) fn pool2(x: Tensor<4>) -> Tensor<4> {
    if mgcc_kernels::is_flex(&x.device()) {
        return mgcc_kernels::max_pool2x2(x);
    }
    max_pool2d(x, MaxPoolOptions::new([2, 2]))
}

/// Encoder: level 1 = `DoubleConv(in→c1)` at full resolution, levels 2–5 =
/// 2×2 max-pool then `DoubleConv(c[i−1]→c[i])`.
#[derive(Module, Debug)]
pub struct Encoder {
    levels: Vec<DoubleConv>,
}

impl Encoder {
    /// An encoder for `in_channels` inputs and first-level width `width`.
    pub fn new(in_channels: usize, width: usize, device: &Device) -> Self {
        let c = level_channels(width);
        let mut levels = vec![DoubleConv::new(in_channels, c[0], device)];
        levels.extend((1..5).map(|i| DoubleConv::new(c[i - 1], c[i], device)));
        Self { levels }
    }

    /// `x: B×in×H×W` (H, W multiples of 16) → `[f1, …, f5]`, `f_i: B×c_i×H/2^(i−1)×W/2^(i−1)`.
    pub fn forward(&self, x: Tensor<4>) -> [Tensor<4>; 5] {
        let f1 = self.levels[0].forward(x);
        let f2 = self.levels[1].forward(pool2(f1.clone()));
        let f3 = self.levels[2].forward(pool2(f2.clone()));
        let f4 = self.levels[3].forward(pool2(f3.clone()));
        let f5 = self.levels[4].forward(pool2(f4.clone()));
        [f1, f2, f3, f4, f5]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_shapes_per_level_for_odd_width() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        let enc = Encoder::new(3, 3, &device);
        let f = enc.forward(Tensor::ones([2, 3, 32, 48], &device));
        let dims: Vec<[usize; 4]> = f.iter().map(|t| t.dims()).collect();
        assert_eq!(
            dims,
            vec![
                [2, 3, 32, 48],
                [2, 6, 16, 24],
                [2, 12, 8, 12],
                [2, 24, 4, 6],
                [2, 48, 2, 3]
            ]
        );
    }

    #[test]
    fn pool_takes_the_maximum_of_each_2x2_window() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        let x = Tensor::<1>::from_floats([1.0, 5.0, 2.0, 0.0, 3.0, 4.0, 8.0, 7.0], &device)
            .reshape([1, 1, 2, 4]);
        let y: Vec<f32> = pool2(x).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(y, vec![5.0, 8.0]);
    }

    #[test]
    fn fast_pool_matches_burn_on_odd_sizes() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        let x = Tensor::<4>::random(
            [2, 3, 9, 10],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let fast: Vec<f32> = pool2(x.clone()).into_data().try_to_vec::<f32>().unwrap();
        let burn: Vec<f32> = max_pool2d(x, MaxPoolOptions::new([2, 2]))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(fast, burn);
    }
}
