//! The Medfusion autoencoder (its `VAE` class with residual blocks): image `[B, C, S, S]` in
//! `[−1, 1]` ↔ latent `[B, L, S/f, S/f]`, `f = 2^stages` (8 with the default three stages).
//!
//! Encoder: a residual block `C → c₀` straight from the image (`inc`), then per stage a stride-2
//! 3×3 conv that changes the width `cᵢ₋₁ → cᵢ` and a residual block at `cᵢ` (default widths
//! 64 → 128 → 256 → 512), then a 3×3 conv to `2·L` channels and a 1×1 conv: mean and
//! log-variance (clamped to `[−30, 20]`) of an `L`-channel Gaussian latent.
//!
//! Decoder: a residual block `L → c_last`, then per stage nearest 2× upsampling, a 3×3 conv
//! that changes the width `cᵢ → cᵢ₋₁` and a residual block, then a zero-initialised 1×1 conv to
//! `C` channels (no normalisation before it, as Medfusion's `outc`). With deep supervision (on by
//! default, as Medfusion's training script) a zero-initialised 1×1 head reads the features
//! entering the last stage and gives a half-resolution image, used only by the loss.
//!
//! Residual blocks: [`ResBlock`] (Medfusion's `UnetResBlock`), GroupNorm with 8 groups.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};

use crate::layers::{self, Init};
use crate::res_block::ResBlock;

/// Autoencoder shape (saved as `vae.json` beside its weights).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaeConfig {
    /// Image channels (3: gray replicated, as the segmentation network reads; or 1).
    pub in_channels: usize,
    /// Channels at full resolution and after each stride-2 stage; `len − 1` downsamplings.
    pub channels: Vec<usize>,
    /// Latent channels L.
    pub latent_channels: usize,
    /// GroupNorm groups.
    pub groups: usize,
    /// Extra output head at half resolution for the loss.
    pub deep_supervision: bool,
    /// Version of the block layout (2: Medfusion's). A configuration written by hand may leave
    /// it out; a run folder written before version 2 has none and is refused when opened
    /// (`run_dir`).
    #[serde(default = "current_layout")]
    pub layout: u32,
}

/// The block layout this version builds.
pub const LAYOUT: u32 = 2;

pub(crate) fn legacy_layout() -> u32 {
    1
}

pub(crate) fn current_layout() -> u32 {
    LAYOUT
}

/// Message for a run whose networks were built with the earlier layout.
pub(crate) fn legacy_message(what: &str, layout: u32) -> String {
    format!(
        "this {what} was trained with mgcc's earlier network layout (version {layout}); this mgcc builds Medfusion's layout (version {LAYOUT}, docs/generation.md) and cannot load it: train it again"
    )
}

impl Default for VaeConfig {
    fn default() -> Self {
        Self {
            in_channels: 3,
            channels: vec![64, 128, 256, 512],
            latent_channels: 8,
            groups: 8,
            deep_supervision: true,
            layout: LAYOUT,
        }
    }
}

/// Lower and upper clamp of the log-variance.
pub const LOGVAR_RANGE: (f32, f32) = (-30.0, 20.0);

impl VaeConfig {
    /// Spatial downsampling factor (2^stages).
    pub fn factor(&self) -> usize {
        1 << (self.channels.len() - 1)
    }

    /// Check the shape; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.layout != LAYOUT {
            return Err(legacy_message("autoencoder", self.layout));
        }
        if self.channels.is_empty() || self.channels.contains(&0) {
            return Err("vae channels must be a non-empty list of positive widths".into());
        }
        if !matches!(self.in_channels, 1 | 3) {
            return Err(format!(
                "in_channels must be 1 or 3, got {}",
                self.in_channels
            ));
        }
        if self.latent_channels == 0 || self.groups == 0 {
            return Err("latent_channels and groups must be positive".into());
        }
        if self.deep_supervision && self.channels.len() < 2 {
            return Err("deep_supervision needs at least one downsampling stage".into());
        }
        Ok(())
    }

    /// Build the autoencoder (parameters drawn now from the device RNG).
    pub fn init(&self, device: &Device) -> Vae {
        let c = &self.channels;
        let g = self.groups;
        let l = self.latent_channels;
        let last = *c.last().unwrap_or(&1);
        let encoder = Encoder {
            inc: ResBlock::new(self.in_channels, c[0], g, None, device),
            downs: c
                .windows(2)
                .map(|w| {
                    (
                        layers::conv(w[0], w[1], 3, 2, Init::Default, device),
                        ResBlock::new(w[1], w[1], g, None, device),
                    )
                })
                .collect(),
            conv_moments: layers::conv(last, 2 * l, 3, 1, Init::Default, device),
            proj_moments: layers::conv(2 * l, 2 * l, 1, 1, Init::Default, device),
        };
        let decoder = Decoder {
            inc: ResBlock::new(l, last, g, None, device),
            ups: c
                .windows(2)
                .rev()
                .map(|w| {
                    (
                        layers::conv(w[1], w[0], 3, 1, Init::Default, device),
                        ResBlock::new(w[0], w[0], g, None, device),
                    )
                })
                .collect(),
            conv_out: layers::conv(c[0], self.in_channels, 1, 1, Init::Zero, device),
            head_half: (self.deep_supervision)
                .then(|| layers::conv(c[1], self.in_channels, 1, 1, Init::Zero, device)),
        };
        Vae {
            encoder,
            decoder,
            latent_channels: l,
        }
    }
}

#[derive(Module, Debug)]
struct Encoder {
    inc: ResBlock,
    downs: Vec<(Conv2d, ResBlock)>,
    conv_moments: Conv2d,
    proj_moments: Conv2d,
}

#[derive(Module, Debug)]
struct Decoder {
    inc: ResBlock,
    ups: Vec<(Conv2d, ResBlock)>,
    conv_out: Conv2d,
    head_half: Option<Conv2d>,
}

/// The autoencoder.
#[derive(Module, Debug)]
pub struct Vae {
    encoder: Encoder,
    decoder: Decoder,
    latent_channels: usize,
}

/// Mean and log-variance of the latent posterior, each `[B, L, h, w]`.
#[derive(Debug, Clone)]
pub struct Posterior {
    pub mean: Tensor<4>,
    pub logvar: Tensor<4>,
}

impl Posterior {
    /// `z = mean + exp(logvar/2)·ε` with ε from the device RNG.
    pub fn sample(&self) -> Tensor<4> {
        let eps = Tensor::random(
            self.mean.dims(),
            Distribution::Normal(0.0, 1.0),
            &self.mean.device(),
        );
        self.mean.clone() + (self.logvar.clone() * 0.5).exp() * eps
    }

    /// KL divergence to N(0, I), summed over latent elements, averaged over the batch:
    /// `½·Σ(μ² + σ² − 1 − log σ²)/B`.
    pub fn kl(&self) -> Tensor<1> {
        let b = self.mean.dims()[0] as f32;
        let terms = self.mean.clone().powi_scalar(2) + self.logvar.clone().exp()
            - 1.0
            - self.logvar.clone();
        terms.sum().mul_scalar(0.5 / b)
    }
}

/// Decoder output: full-resolution image and, with deep supervision, a half-resolution one.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub image: Tensor<4>,
    pub half: Option<Tensor<4>>,
}

impl Vae {
    /// Latent channels L.
    pub fn latent_channels(&self) -> usize {
        self.latent_channels
    }

    /// `x [B, C, S, S]` → posterior over `[B, L, S/f, S/f]`.
    pub fn encode(&self, x: Tensor<4>) -> Posterior {
        let e = &self.encoder;
        let mut h = e.inc.forward(x, None);
        for (down, block) in &e.downs {
            h = block.forward(layers::apply(down, h), None);
        }
        let moments = layers::apply(&e.proj_moments, layers::apply(&e.conv_moments, h));
        let [mean, logvar] = moments
            .chunk(2, 1)
            .try_into()
            .expect("moments have 2·L channels");
        Posterior {
            mean,
            logvar: logvar.clamp(LOGVAR_RANGE.0, LOGVAR_RANGE.1),
        }
    }

    /// `z [B, L, h, w]` → image `[B, C, h·f, w·f]` (unbounded; clip to `[−1, 1]` for display).
    pub fn decode(&self, z: Tensor<4>) -> Decoded {
        let d = &self.decoder;
        let mut h = d.inc.forward(z, None);
        let mut half = None;
        let n = d.ups.len();
        for (i, (conv, block)) in d.ups.iter().enumerate() {
            if i + 1 == n
                && let Some(head) = &d.head_half
            {
                half = Some(layers::apply(head, h.clone()));
            }
            h = block.forward(layers::apply(conv, layers::upsample2(h)), None);
        }
        let image = layers::apply(&d.conv_out, h);
        Decoded { image, half }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_for_odd_configs() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        for (cfg, size) in [
            (
                VaeConfig {
                    in_channels: 1,
                    channels: vec![6, 10],
                    latent_channels: 3,
                    groups: 4,
                    deep_supervision: true,
                    layout: LAYOUT,
                },
                12,
            ),
            (
                VaeConfig {
                    channels: vec![8, 8, 16, 12],
                    latent_channels: 8,
                    groups: 8,
                    ..Default::default()
                },
                16,
            ),
        ] {
            cfg.validate().unwrap();
            let vae = cfg.init(&device);
            let x = Tensor::<4>::zeros([2, cfg.in_channels, size, size], &device);
            let post = vae.encode(x);
            let lat = size / cfg.factor();
            assert_eq!(post.mean.dims(), [2, cfg.latent_channels, lat, lat]);
            assert_eq!(post.logvar.dims(), post.mean.dims());
            let out = vae.decode(post.sample());
            assert_eq!(out.image.dims(), [2, cfg.in_channels, size, size]);
            match out.half {
                Some(h) => assert_eq!(h.dims(), [2, cfg.in_channels, size / 2, size / 2]),
                None => assert!(!cfg.deep_supervision),
            }
        }
    }

    #[test]
    fn layout_defaults_to_this_version_and_others_are_refused() {
        // A configuration written by hand may leave `layout` out.
        let cfg: VaeConfig = toml::from_str(
            "in_channels = 3\nchannels = [8, 16]\nlatent_channels = 4\ngroups = 8\ndeep_supervision = false\n",
        )
        .unwrap();
        assert_eq!(cfg.layout, LAYOUT);
        cfg.validate().unwrap();
        let old = VaeConfig { layout: 1, ..cfg };
        let err = old.validate().unwrap_err();
        assert!(err.contains("earlier network layout (version 1)"), "{err}");
        assert!(err.contains("train it again"), "{err}");
        let now = toml::to_string(&VaeConfig::default()).unwrap();
        assert!(now.contains("layout = 2"));
    }

    #[test]
    fn kl_matches_hand_value() {
        let device = Device::flex();
        // One sample, two latent elements: μ = (1, 0), log σ² = (0, ln 2):
        // ½[(1 + 1 − 1 − 0) + (0 + 2 − 1 − ln 2)] = ½(2 − ln 2).
        let post = Posterior {
            mean: Tensor::from_floats([[[[1.0, 0.0]]]], &device),
            logvar: Tensor::from_floats([[[[0.0, 2f32.ln()]]]], &device),
        };
        let kl: f32 = post.kl().into_scalar();
        assert!((kl - 0.5 * (2.0 - 2f32.ln())).abs() < 1e-6);
    }
}
