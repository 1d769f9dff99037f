//! The latent denoiser: Medfusion's UNet (`medical_diffusion/models/estimators/unet2.py`), a
//! time-conditioned UNet on `[B, L, h, w]` latents that predicts the noise ε.
//!
//! With widths `c₀, c₁, …, c_D` (default 256, 256, 512, 1024) and `n` blocks per level
//! (default 2):
//! - in: a plain 3×3 conv `L → c₀`;
//! - encoder: for each level `i = 1..D`, `n` residual blocks (`cᵢ₋₁ → cᵢ`, then `cᵢ → cᵢ`),
//!   and between levels a stride-2 3×3 conv at `cᵢ`; *every* output is kept as a skip — the
//!   input conv's, each block's and each downsampling's (`1 + D·n + D − 1` skips);
//! - middle: residual block, optional self-attention (mgcc's option, off by default as in
//!   Medfusion's script), residual block at `c_D`;
//! - decoder: for each level from the deepest, `n + 1` residual blocks, each on
//!   `concat[h, skip]` (skips popped last first); the last block of a level narrows to `cᵢ₋₁` and,
//!   except at the shallowest level, is followed by nearest 2× upsampling + 3×3 conv;
//! - out: a zero-initialised 1×1 conv `c₀ → L` (no normalisation before it).
//!
//! Conditioning: sinusoidal embedding of t (`time_dim`, Medfusion's `emb_dim/4`, frequencies
//! `10000^(−i/(half − 1))`: `downscale_freq_shift = 1`) → Linear → SiLU → Linear (`emb_dim`),
//! plus a learned class embedding (`nn.Embedding`, N(0, 1)) when class-conditioned. The
//! unconditional prediction adds no class embedding (class index `num_classes` = "no class").
//! Each residual block adds its projection of the embedding after its first sub-block.

use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, Linear};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::layers::{self, Init};
use crate::res_block::ResBlock;

/// Denoiser shape (saved with the denoiser run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnetConfig {
    /// Latent channels L (input and output).
    pub latent_channels: usize,
    /// Width of the input conv, then per level (Medfusion's `hid_chs`); `len − 2`
    /// downsamplings.
    pub channels: Vec<usize>,
    /// Residual blocks per level in the encoder (the decoder has one more per level).
    pub blocks: usize,
    /// Width of the sinusoidal time embedding.
    pub time_dim: usize,
    /// Width of the conditioning vector.
    pub emb_dim: usize,
    /// Number of classes for class conditioning (0: unconditional).
    pub num_classes: usize,
    /// Self-attention in the middle.
    pub attention: bool,
    /// GroupNorm groups.
    pub groups: usize,
    /// Version of the block layout (see [`crate::vae::LAYOUT`]).
    #[serde(default = "crate::vae::current_layout")]
    pub layout: u32,
}

impl Default for UnetConfig {
    fn default() -> Self {
        Self {
            latent_channels: 8,
            channels: vec![256, 256, 512, 1024],
            blocks: 2,
            time_dim: 256,
            emb_dim: 1024,
            num_classes: 0,
            attention: false,
            groups: 32,
            layout: crate::vae::LAYOUT,
        }
    }
}

impl UnetConfig {
    /// Check the shape; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.layout != crate::vae::LAYOUT {
            return Err(crate::vae::legacy_message("denoiser", self.layout));
        }
        if self.channels.len() < 2 || self.channels.contains(&0) {
            return Err(
                "unet channels must list the input width and at least one level, all positive (e.g. 256,256,512,1024)"
                    .into(),
            );
        }
        if self.blocks == 0 || self.latent_channels == 0 || self.groups == 0 {
            return Err("blocks, latent_channels and groups must be positive".into());
        }
        if self.time_dim < 4 || !self.time_dim.is_multiple_of(2) || self.emb_dim == 0 {
            return Err(format!(
                "time_dim must be even and ≥ 4 and emb_dim positive, got {} and {}",
                self.time_dim, self.emb_dim
            ));
        }
        Ok(())
    }

    /// Latent side lengths must be divisible by this.
    pub fn size_multiple(&self) -> usize {
        1 << self.channels.len().saturating_sub(2)
    }

    /// Build the UNet (parameters drawn now from the device RNG).
    pub fn init(&self, device: &Device) -> Unet {
        let c = &self.channels;
        let depth = c.len();
        let (g, e) = (self.groups, Some(self.emb_dim));
        let mut down_blocks = Vec::new();
        let mut downsamples = Vec::new();
        for i in 1..depth {
            let level: Vec<ResBlock> = (0..self.blocks)
                .map(|k| ResBlock::new(if k == 0 { c[i - 1] } else { c[i] }, c[i], g, e, device))
                .collect();
            down_blocks.push(level);
            if i + 1 < depth {
                downsamples.push(layers::conv(c[i], c[i], 3, 2, Init::Default, device));
            }
        }
        let last = c[depth - 1];
        // Deepest level first; within a level the blocks in the order they run (k = n … 0).
        let mut up_blocks = Vec::new();
        let mut upsamples = Vec::new();
        for i in (1..depth).rev() {
            let level: Vec<ResBlock> = (0..=self.blocks)
                .rev()
                .map(|k| {
                    let (skip, out) = if k == 0 {
                        (c[i - 1], c[i - 1])
                    } else {
                        (c[i], c[i])
                    };
                    ResBlock::new(c[i] + skip, out, g, e, device)
                })
                .collect();
            up_blocks.push(level);
            if i > 1 {
                upsamples.push(layers::conv(
                    c[i - 1],
                    c[i - 1],
                    3,
                    1,
                    Init::Default,
                    device,
                ));
            }
        }
        Unet {
            time_mlp: (
                layers::linear(self.time_dim, self.emb_dim, device),
                layers::linear(self.emb_dim, self.emb_dim, device),
            ),
            class_emb: (self.num_classes > 0).then(|| {
                Param::from_tensor(Tensor::<2>::random(
                    [self.num_classes, self.emb_dim],
                    Distribution::Normal(0.0, 1.0),
                    device,
                ))
            }),
            conv_in: layers::conv(self.latent_channels, c[0], 3, 1, Init::Default, device),
            down_blocks,
            downsamples,
            mid: (
                ResBlock::new(last, last, g, e, device),
                ResBlock::new(last, last, g, e, device),
            ),
            attention: self.attention.then(|| SelfAttention::new(last, g, device)),
            up_blocks,
            upsamples,
            conv_out: layers::conv(c[0], self.latent_channels, 1, 1, Init::Zero, device),
            time_dim: self.time_dim,
            num_classes: self.num_classes,
        }
    }
}

/// Single-head self-attention over positions, residual, output projection zero-initialised.
#[derive(Module, Debug)]
pub struct SelfAttention {
    norm: GroupNorm,
    qkv: Conv2d,
    proj: Conv2d,
}

impl SelfAttention {
    fn new(c: usize, groups: usize, device: &Device) -> Self {
        Self {
            norm: layers::group_norm(c, groups, device),
            qkv: layers::conv(c, 3 * c, 1, 1, Init::Default, device),
            proj: layers::conv(c, c, 1, 1, Init::Zero, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let qkv = layers::apply(&self.qkv, layers::norm(&self.norm, x.clone(), false));
        let [q, k, v]: [Tensor<4>; 3] = qkv.chunk(3, 1).try_into().expect("3 chunks");
        let flat = |t: Tensor<4>| t.reshape([b, c, h * w]).swap_dims(1, 2); // [B, N, C]
        let (q, k, v) = (flat(q), flat(k), flat(v));
        let att = softmax(q.matmul(k.swap_dims(1, 2)) / (c as f64).sqrt(), 2);
        let out = att.matmul(v).swap_dims(1, 2).reshape([b, c, h, w]);
        x + layers::apply(&self.proj, out)
    }
}

/// The denoiser.
#[derive(Module, Debug)]
pub struct Unet {
    time_mlp: (Linear, Linear),
    class_emb: Option<Param<Tensor<2>>>,
    conv_in: Conv2d,
    down_blocks: Vec<Vec<ResBlock>>,
    downsamples: Vec<Conv2d>,
    mid: (ResBlock, ResBlock),
    attention: Option<SelfAttention>,
    up_blocks: Vec<Vec<ResBlock>>,
    upsamples: Vec<Conv2d>,
    conv_out: Conv2d,
    time_dim: usize,
    num_classes: usize,
}

/// Sinusoidal embedding of timesteps (`[B]` → `[B, dim]`): `[sin(t·ωᵢ), cos(t·ωᵢ)]` with
/// `ωᵢ = 10000^(−i/(dim/2 − 1))`, `i < dim/2` — Medfusion's `SinusoidalPosEmb` with its default
/// `downscale_freq_shift = 1`, so the last frequency is exactly 1/10000 (`dim ≥ 4`).
pub fn timestep_embedding(t: &[f32], dim: usize, device: &Device) -> Tensor<2> {
    let half = dim / 2;
    let denom = (half.max(2) - 1) as f64;
    let mut data = Vec::with_capacity(t.len() * dim);
    for &t in t {
        let freqs = (0..half).map(|i| (-(10000f64.ln()) * i as f64 / denom).exp());
        let args: Vec<f64> = freqs.map(|w| t as f64 * w).collect();
        data.extend(args.iter().map(|a| a.sin() as f32));
        data.extend(args.iter().map(|a| a.cos() as f32));
    }
    Tensor::from_data(TensorData::new(data, [t.len(), dim]), device)
}

impl Unet {
    /// Number of classes it is conditioned on (0: unconditional).
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Predict the noise of `x [B, L, h, w]` at timesteps `t` (one per sample), with optional
    /// class indices (`num_classes` = no class). Output `[B, L, h, w]`.
    pub fn forward(&self, x: Tensor<4>, t: &[f32], classes: Option<&[usize]>) -> Tensor<4> {
        let device = x.device();
        let b = x.dims()[0];
        assert_eq!(t.len(), b, "one timestep per sample");
        let (l1, l2) = &self.time_mlp;
        let mut emb = l2.forward(silu(l1.forward(timestep_embedding(
            t,
            self.time_dim,
            &device,
        ))));
        if let Some(table) = &self.class_emb {
            // "No class" (index `num_classes`) selects an appended zero row: the unconditional
            // prediction adds no class embedding, as Medfusion's `condition=None`.
            let ids: Vec<i64> = match classes {
                Some(c) => c.iter().map(|&c| c.min(self.num_classes) as i64).collect(),
                None => vec![self.num_classes as i64; b],
            };
            let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [b]), &device);
            let table = Tensor::cat(
                vec![table.val(), Tensor::zeros([1, emb.dims()[1]], &device)],
                0,
            );
            emb = emb + table.select(0, ids);
        }
        let mut h = layers::apply(&self.conv_in, x);
        let mut skips = vec![h.clone()];
        for (i, level) in self.down_blocks.iter().enumerate() {
            for block in level {
                h = block.forward(h, Some(&emb));
                skips.push(h.clone());
            }
            if let Some(down) = self.downsamples.get(i) {
                h = layers::apply(down, h);
                skips.push(h.clone());
            }
        }
        h = self.mid.0.forward(h, Some(&emb));
        if let Some(att) = &self.attention {
            h = att.forward(h);
        }
        h = self.mid.1.forward(h, Some(&emb));
        for (i, level) in self.up_blocks.iter().enumerate() {
            for block in level {
                let skip = skips.pop().expect("one skip per decoder block");
                h = block.forward(Tensor::cat(vec![h, skip], 1), Some(&emb));
            }
            if let Some(up) = self.upsamples.get(i) {
                h = layers::apply(up, layers::upsample2(h));
            }
        }
        debug_assert!(skips.is_empty());
        layers::apply(&self.conv_out, h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(num_classes: usize, attention: bool) -> UnetConfig {
        UnetConfig {
            latent_channels: 3,
            channels: vec![6, 10, 4],
            blocks: 1,
            time_dim: 6,
            emb_dim: 10,
            num_classes,
            attention,
            groups: 2,
            layout: crate::vae::LAYOUT,
        }
    }

    #[test]
    fn shapes_for_odd_configs_and_zero_output_at_init() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        for (cfg, side) in [(tiny(0, false), 8), (tiny(3, true), 4)] {
            cfg.validate().unwrap();
            let net = cfg.init(&device);
            let x = Tensor::<4>::random([2, 3, side, side], Distribution::Default, &device);
            let classes = [0usize, 3];
            let y = net.forward(x, &[0.0, 999.0], Some(&classes));
            assert_eq!(y.dims(), [2, 3, side, side]);
            // The output convolution starts at zero (Medfusion), so the first prediction is 0.
            let m: f32 = y.abs().max().into_scalar();
            assert_eq!(m, 0.0);
        }
        let two = UnetConfig {
            blocks: 2,
            ..tiny(0, false)
        };
        let y = two
            .init(&device)
            .forward(Tensor::<4>::zeros([1, 3, 8, 8], &device), &[5.0], None);
        assert_eq!(y.dims(), [1, 3, 8, 8]);
    }

    #[test]
    fn timestep_embedding_matches_hand_values() {
        let e: Vec<f32> = timestep_embedding(&[0.0, 2.0], 6, &Device::flex())
            .into_data()
            .try_to_vec()
            .unwrap();
        // dim 6, half 3: ωᵢ = 10000^(−i/2) = [1, 0.01, 0.0001] (Medfusion's shift 1: the last
        // frequency is 1/10000); t = 2 → [sin 2, sin 0.02, sin 0.0002, cos 2, cos 0.02, cos 0.0002].
        let expect = [
            0.0,
            0.0,
            0.0,
            1.0,
            1.0,
            1.0,
            2f32.sin(),
            0.02f32.sin(),
            0.0002f32.sin(),
            2f32.cos(),
            0.02f32.cos(),
            0.0002f32.cos(),
        ];
        for (a, b) in e.iter().zip(expect) {
            assert!((a - b).abs() < 1e-6, "{e:?}");
        }
    }

    #[test]
    fn layout_counts_and_missing_class_adds_no_embedding() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        // Medfusion's widths 256,256,512,1024 with 2 blocks: 9 skips, 3 decoder blocks per level.
        let cfg = UnetConfig {
            channels: vec![4, 4, 8, 8],
            ..tiny(2, false)
        };
        let net = cfg.init(&device);
        assert_eq!(net.down_blocks.iter().map(Vec::len).sum::<usize>(), 3);
        assert_eq!(net.downsamples.len(), 2);
        assert_eq!(
            net.up_blocks.iter().map(Vec::len).collect::<Vec<_>>(),
            [2, 2, 2]
        );
        assert_eq!(net.upsamples.len(), 2);
        assert_eq!(cfg.size_multiple(), 4);
        // The class table has one row per class and no "no class" row.
        assert_eq!(net.class_emb.as_ref().unwrap().val().dims(), [2, 10]);
        // Unconditional = conditional with the class embedding removed: compare the first
        // block's embedding input through a network whose class rows are zero.
        let zeroed = Unet {
            class_emb: net.class_emb.clone().map(|p| p.map(|t| t.zeros_like())),
            ..net.clone()
        };
        let x = Tensor::<4>::random([2, 3, 8, 8], Distribution::Default, &device);
        let jitter = |u: Unet| Unet {
            conv_out: layers::conv(4, 3, 1, 1, Init::Default, &device),
            ..u
        };
        device.seed(3);
        let a = jitter(zeroed).forward(x.clone(), &[7.0, 300.0], Some(&[0, 1]));
        device.seed(3);
        let b = jitter(net.clone()).forward(x.clone(), &[7.0, 300.0], None);
        device.seed(3);
        let c = jitter(net).forward(x, &[7.0, 300.0], Some(&[0, 1]));
        let d: f32 = (a.clone() - b).abs().max().into_scalar();
        assert!(d < 1e-5, "no class must add nothing: {d}");
        let d: f32 = (a - c).abs().max().into_scalar();
        assert!(d > 1e-4, "a class must change the prediction");
    }
}
