//! The `rcnn3-v1` feature space: a fixed random-weight CNN.
//!
//! Input: a `size`×`size` gray image in `[0,1]`, scaled to `[-1,1]` (`2v − 1`). Three conv
//! layers, each 3×3, stride 2, zero padding 1, no bias, followed by ReLU, with 1→16→32→64
//! channels (a side of `s` becomes `ceil(s/2)`). Weights are He-normal
//! (`N(0, 2/fan_in)`, `fan_in = in_channels·9`), drawn once from ChaCha8 seeded with
//! [`WEIGHT_SEED`] in the order layer, out-channel, in-channel, ky, kx; each normal is one
//! Box–Muller draw from two 53-bit uniforms of consecutive `next_u64` outputs. So the weights
//! (and the features) are the same on every run and machine.
//!
//! Features: for each layer, the per-channel mean of its ReLU activations over all positions,
//! then the per-channel population standard deviation (divide by the number of positions);
//! layers concatenated in order: `[mean₁(16), std₁(16), mean₂(32), std₂(32), mean₃(64),
//! std₃(64)]`, [`FEATURE_DIM`] = 224 dimensions.
//!
//! It is not Inception-v3: FID and KID in this space are not comparable with published
//! values, only between reports made with the same feature space and image size.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Short name of the feature space, written into reports.
pub const FEATURE_SPACE: &str = "rcnn3-v1";

/// Output channels of the three conv layers.
pub const CHANNELS: [usize; 3] = [16, 32, 64];

/// Feature dimension: mean and std per channel of every layer.
pub const FEATURE_DIM: usize = 2 * (CHANNELS[0] + CHANNELS[1] + CHANNELS[2]);

/// Seed of the ChaCha8 stream the weights come from (ASCII "mgccrcn3").
pub const WEIGHT_SEED: u64 = 0x6d67_6363_7263_6e33;

/// One-paragraph description of the feature space, for reports.
pub fn feature_space_description() -> String {
    format!(
        "{FEATURE_SPACE}: fixed random-weight CNN on the size x size gray image scaled to [-1,1]; \
         3 conv layers 3x3 stride 2 padding 1, no bias, ReLU, 1->16->32->64 channels, \
         He-normal weights from ChaCha8 seed {WEIGHT_SEED:#x}; features = per-channel mean and \
         population std of each layer's ReLU activations, concatenated ({FEATURE_DIM} dims). \
         Not Inception-v3."
    )
}

struct ConvLayer {
    cin: usize,
    cout: usize,
    /// `[cout][cin][3][3]`
    w: Vec<f32>,
}

/// The fixed random CNN of the `rcnn3-v1` feature space.
pub struct RandomCnn {
    layers: Vec<ConvLayer>,
}

fn uniform53(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - uniform53(rng); // (0, 1]
    let u2 = uniform53(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl Default for RandomCnn {
    fn default() -> Self {
        Self::new()
    }
}

impl RandomCnn {
    /// Builds the network with its fixed weights.
    pub fn new() -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(WEIGHT_SEED);
        let mut cin = 1;
        let layers = CHANNELS
            .iter()
            .map(|&cout| {
                let std = (2.0 / (cin * 9) as f64).sqrt();
                let w = (0..cout * cin * 9)
                    .map(|_| (standard_normal(&mut rng) * std) as f32)
                    .collect();
                let layer = ConvLayer { cin, cout, w };
                cin = cout;
                layer
            })
            .collect();
        RandomCnn { layers }
    }

    /// The first weights of the first layer (for pinning the weights in tests).
    #[cfg(test)]
    fn first_weights(&self, n: usize) -> &[f32] {
        &self.layers[0].w[..n]
    }

    /// Features of one `size`×`size` gray image in `[0,1]` (row-major).
    ///
    /// # Panics
    /// When `image.len() != size * size` or `size == 0`.
    pub fn features(&self, image: &[f32], size: usize) -> Vec<f32> {
        assert!(size > 0, "image size must be positive");
        assert_eq!(image.len(), size * size, "image is not size x size");
        let mut x: Vec<f32> = image.iter().map(|v| 2.0 * v - 1.0).collect();
        let (mut h, mut w) = (size, size);
        let mut out = Vec::with_capacity(FEATURE_DIM);
        for layer in &self.layers {
            let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
            let y = conv3x3s2_relu(layer, &x, h, w, oh, ow);
            let plane = oh * ow;
            let mut stds = Vec::with_capacity(layer.cout);
            for c in 0..layer.cout {
                let ch = &y[c * plane..(c + 1) * plane];
                let mean = ch.iter().map(|&v| v as f64).sum::<f64>() / plane as f64;
                let var = ch.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / plane as f64;
                out.push(mean as f32);
                stds.push(var.sqrt() as f32);
            }
            out.extend(stds);
            x = y;
            (h, w) = (oh, ow);
        }
        out
    }
}

/// 3×3 conv, stride 2, zero padding 1, no bias, then ReLU. `x` is `[cin][h][w]`; the output
/// is `[cout][oh][ow]` with `oh = ceil(h/2)`, `ow = ceil(w/2)`.
fn conv3x3s2_relu(
    layer: &ConvLayer,
    x: &[f32],
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
) -> Vec<f32> {
    // zero-padded copy (rows/cols −1 ..= 2·oh−1 / 2·ow−1, so every tap is in range), with
    // each padded row split into its even columns (ow+1) and odd columns (ow) so that the
    // stride-2 taps read contiguous memory
    let ph = 2 * oh + 1;
    let mut even = vec![0.0f32; layer.cin * ph * (ow + 1)];
    let mut odd = vec![0.0f32; layer.cin * ph * ow];
    for ci in 0..layer.cin {
        for iy in 0..h {
            let src = &x[(ci * h + iy) * w..(ci * h + iy + 1) * w];
            let prow = ci * ph + iy + 1;
            // input column ix sits at padded column ix+1: odd ix → even padded column
            for (ix, &v) in src.iter().enumerate() {
                let pc = ix + 1;
                if pc % 2 == 0 {
                    even[prow * (ow + 1) + pc / 2] = v;
                } else {
                    odd[prow * ow + pc / 2] = v;
                }
            }
        }
    }
    let mut y = vec![0.0f32; layer.cout * oh * ow];
    for co in 0..layer.cout {
        let wc = &layer.w[co * layer.cin * 9..(co + 1) * layer.cin * 9];
        let yc = &mut y[co * oh * ow..(co + 1) * oh * ow];
        for ci in 0..layer.cin {
            let k = &wc[ci * 9..ci * 9 + 9];
            for oy in 0..oh {
                let yrow = &mut yc[oy * ow..(oy + 1) * ow];
                for ky in 0..3 {
                    let prow = ci * ph + 2 * oy + ky;
                    let e = &even[prow * (ow + 1)..(prow + 1) * (ow + 1)];
                    let o = &odd[prow * ow..(prow + 1) * ow];
                    let (k0, k1, k2) = (k[ky * 3], k[ky * 3 + 1], k[ky * 3 + 2]);
                    // output ox reads padded columns 2ox, 2ox+1, 2ox+2
                    for (((yv, &e0), &o1), &e2) in yrow.iter_mut().zip(&e[..ow]).zip(o).zip(&e[1..])
                    {
                        *yv += k0 * e0 + k1 * o1 + k2 * e2;
                    }
                }
            }
        }
    }
    y.iter_mut().for_each(|v| *v = v.max(0.0));
    y
}

/// `rcnn3-v1` features of many `size`×`size` gray images (in parallel; same order).
///
/// # Panics
/// When an image does not have `size * size` values.
pub fn image_features(images: &[Vec<f32>], size: usize) -> Vec<Vec<f32>> {
    let net = RandomCnn::new();
    images.par_iter().map(|im| net.features(im, size)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_pinned_and_he_scaled() {
        let a = RandomCnn::new();
        let b = RandomCnn::new();
        assert_eq!(a.first_weights(9), b.first_weights(9));
        // He-normal scale of layer 3 (fan_in 288): sample std ≈ sqrt(2/288)
        let w = &a.layers[2].w;
        let var = w.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / w.len() as f64;
        assert!((var / (2.0 / 288.0) - 1.0).abs() < 0.05, "{var}");
        // pinned values: a change here changes every report's KID/FID
        let pinned = PINNED_FIRST_WEIGHTS;
        for (got, want) in a.first_weights(4).iter().zip(pinned) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }

    const PINNED_FIRST_WEIGHTS: [f32; 4] = [0.057060536, -0.29342937, -0.30041942, 0.32645884];

    #[test]
    fn conv_matches_hand_computation() {
        // one 1→1 layer with all-ones kernel on a 4×4 image of ones: output 2×2
        // top-left sees 2×2 inside the image (padding), others 3×3 / 2×3 / 3×2
        let layer = ConvLayer {
            cin: 1,
            cout: 1,
            w: vec![1.0; 9],
        };
        let y = conv3x3s2_relu(&layer, &[1.0; 16], 4, 4, 2, 2);
        assert_eq!(y, vec![4.0, 6.0, 6.0, 9.0]);
        let neg = ConvLayer {
            cin: 1,
            cout: 1,
            w: vec![-1.0; 9],
        };
        assert_eq!(conv3x3s2_relu(&neg, &[1.0; 16], 4, 4, 2, 2), vec![0.0; 4]);
    }

    /// Direct definition: y[co][oy][ox] = relu(Σ w[co][ci][ky][kx] · x[ci][2oy+ky−1][2ox+kx−1]).
    fn naive_conv(layer: &ConvLayer, x: &[f32], h: usize, w: usize) -> Vec<f32> {
        let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
        let mut y = vec![0.0f32; layer.cout * oh * ow];
        for co in 0..layer.cout {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0.0f64;
                    for ci in 0..layer.cin {
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let (iy, ix) =
                                    ((2 * oy + ky) as isize - 1, (2 * ox + kx) as isize - 1);
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                    acc += layer.w[((co * layer.cin + ci) * 3 + ky) * 3 + kx]
                                        as f64
                                        * x[(ci * h + iy as usize) * w + ix as usize] as f64;
                                }
                            }
                        }
                    }
                    y[(co * oh + oy) * ow + ox] = acc.max(0.0) as f32;
                }
            }
        }
        y
    }

    #[test]
    fn conv_matches_direct_definition_on_odd_and_even_sizes() {
        let net = RandomCnn::new();
        let layer = &net.layers[1]; // 16 → 32 channels
        for &(h, w) in &[(7usize, 5usize), (8, 8), (1, 3)] {
            let x: Vec<f32> = (0..16 * h * w)
                .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
                .collect();
            let got = conv3x3s2_relu(layer, &x, h, w, h.div_ceil(2), w.div_ceil(2));
            let want = naive_conv(layer, &x, h, w);
            assert_eq!(got.len(), want.len());
            for (g, e) in got.iter().zip(&want) {
                assert!((g - e).abs() < 1e-4, "{h}x{w}: {g} vs {e}");
            }
        }
    }

    #[test]
    fn features_have_fixed_dim_and_separate_images() {
        let flat = vec![0.5f32; 256];
        let ramp: Vec<f32> = (0..256).map(|i| (i % 16) as f32 / 15.0).collect();
        let f = image_features(&[flat.clone(), ramp, flat], 16);
        assert_eq!(f[0].len(), FEATURE_DIM);
        assert_eq!(f[0], f[2]);
        assert_ne!(f[0], f[1]);
        assert!(f[1].iter().all(|v| v.is_finite() && *v >= 0.0));
    }
}
