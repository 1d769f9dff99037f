//! The latent denoiser: a time-conditioned UNet on `[B, L, h, w]` latents that predicts the
//! noise ε (Medfusion's UNet without attention by default).
//!
//! - in: 3×3 conv `L → c₀`;
//! - encoder: per level `blocks` residual blocks (`→ cᵢ`), each output kept as a skip; a stride-2
//!   3×3 conv between levels;
//! - middle: two residual blocks at the last width, with an optional single-head
//!   self-attention between them;
//! - decoder: per level (deepest first) `blocks` residual blocks on `concat[h, skip]` (the skips
//!   of that level, last first), then nearest 2× upsampling + 3×3 conv to the next width;
//! - out: GroupNorm + SiLU + zero-initialised 1×1 conv `c₀ → L`.
//!
//! Conditioning: sinusoidal embedding of t (`time_dim`) → Linear → SiLU → Linear (`emb_dim`),
//! plus an optional learned class embedding (index `num_classes` is the "no class" token used
//! for classifier-free guidance); each residual block adds its projection of the embedding
//! after its first convolution.

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
    /// Width per level; `len − 1` downsamplings.
    pub channels: Vec<usize>,
    /// Residual blocks per level in the encoder (and in the decoder).
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
}

impl Default for UnetConfig {
    fn default() -> Self {
        Self {
            latent_channels: 8,
            channels: vec![256, 512, 1024],
            blocks: 2,
            time_dim: 256,
            emb_dim: 1024,
            num_classes: 0,
            attention: false,
            groups: 8,
        }
    }
}

impl UnetConfig {
    /// Check the shape; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.channels.is_empty() || self.channels.contains(&0) {
            return Err("unet channels must be a non-empty list of positive widths".into());
        }
        if self.blocks == 0 || self.latent_channels == 0 || self.groups == 0 {
            return Err("blocks, latent_channels and groups must be positive".into());
        }
        if self.time_dim < 2 || !self.time_dim.is_multiple_of(2) || self.emb_dim == 0 {
            return Err(format!(
                "time_dim must be even and ≥ 2 and emb_dim positive, got {} and {}",
                self.time_dim, self.emb_dim
            ));
        }
        Ok(())
    }

    /// Latent side lengths must be divisible by this.
    pub fn size_multiple(&self) -> usize {
        1 << (self.channels.len() - 1)
    }

    /// Build the UNet (parameters drawn now from the device RNG).
    pub fn init(&self, device: &Device) -> Unet {
        let c = &self.channels;
        let (g, e) = (self.groups, Some(self.emb_dim));
        let mut down_blocks = Vec::new();
        let mut downsamples = Vec::new();
        let mut prev = c[0];
        for (i, &ci) in c.iter().enumerate() {
            let level: Vec<ResBlock> = (0..self.blocks)
                .map(|j| ResBlock::new(if j == 0 { prev } else { ci }, ci, g, e, device))
                .collect();
            down_blocks.push(level);
            if i + 1 < c.len() {
                downsamples.push(layers::conv(ci, ci, 3, 2, Init::Default, device));
            }
            prev = ci;
        }
        let last = *c.last().unwrap_or(&1);
        let mut up_blocks = Vec::new();
        let mut upsamples = Vec::new();
        for i in (0..c.len()).rev() {
            let level: Vec<ResBlock> = (0..self.blocks)
                .map(|_| ResBlock::new(2 * c[i], c[i], g, e, device))
                .collect();
            up_blocks.push(level);
            if i > 0 {
                upsamples.push(layers::conv(c[i], c[i - 1], 3, 1, Init::Default, device));
            }
        }
        Unet {
            time_mlp: (
                layers::linear(self.time_dim, self.emb_dim, device),
                layers::linear(self.emb_dim, self.emb_dim, device),
            ),
            class_emb: (self.num_classes > 0).then(|| {
                Param::from_tensor(Tensor::<2>::random(
                    [self.num_classes + 1, self.emb_dim],
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
            norm_out: layers::group_norm(c[0], g, device),
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
        let qkv = layers::apply(&self.qkv, self.norm.forward(x.clone()));
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
    norm_out: GroupNorm,
    conv_out: Conv2d,
    time_dim: usize,
    num_classes: usize,
}

/// Sinusoidal embedding of timesteps (`[B]` → `[B, dim]`): `[sin(t·ωᵢ), cos(t·ωᵢ)]` with
/// `ωᵢ = 10000^(−i/(dim/2))`, `i < dim/2` (the DDPM / Medfusion convention).
pub fn timestep_embedding(t: &[f32], dim: usize, device: &Device) -> Tensor<2> {
    let half = dim / 2;
    let mut data = Vec::with_capacity(t.len() * dim);
    for &t in t {
        let freqs = (0..half).map(|i| (-(10000f64.ln()) * i as f64 / half as f64).exp());
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
            let ids: Vec<i64> = match classes {
                Some(c) => c.iter().map(|&c| c.min(self.num_classes) as i64).collect(),
                None => vec![self.num_classes as i64; b],
            };
            let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [b]), &device);
            emb = emb + table.val().select(0, ids);
        }
        let mut h = layers::apply(&self.conv_in, x);
        let mut skips = Vec::new();
        for (i, level) in self.down_blocks.iter().enumerate() {
            for block in level {
                h = block.forward(h, Some(&emb));
                skips.push(h.clone());
            }
            if let Some(down) = self.downsamples.get(i) {
                h = layers::apply(down, h);
            }
        }
        h = self.mid.0.forward(h, Some(&emb));
        if let Some(att) = &self.attention {
            h = att.forward(h);
        }
        h = self.mid.1.forward(h, Some(&emb));
        for (i, level) in self.up_blocks.iter().enumerate() {
            for block in level {
                let skip = skips.pop().expect("one skip per encoder block");
                h = block.forward(Tensor::cat(vec![h, skip], 1), Some(&emb));
            }
            if let Some(up) = self.upsamples.get(i) {
                h = layers::apply(up, layers::upsample2(h));
            }
        }
        layers::apply(&self.conv_out, layers::norm_act(&self.norm_out, h))
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
        let e: Vec<f32> = timestep_embedding(&[0.0, 2.0], 4, &Device::flex())
            .into_data()
            .try_to_vec()
            .unwrap();
        // dim 4: ω = [1, 0.01]; t = 0 → [0, 0, 1, 1]; t = 2 → [sin 2, sin 0.02, cos 2, cos 0.02].
        let expect = [
            0.0,
            0.0,
            1.0,
            1.0,
            2f32.sin(),
            0.02f32.sin(),
            2f32.cos(),
            0.02f32.cos(),
        ];
        for (a, b) in e.iter().zip(expect) {
            assert!((a - b).abs() < 1e-6, "{e:?}");
        }
    }
}
