//! `mgcc ldm bench`: time the generation stage (JSON lines; the last is the summary).

use anyhow::{Result, bail};
use mgcc_diffusion::bench::{LdmBenchConfig, run as run_bench};
use mgcc_diffusion::unet::UnetConfig;
use mgcc_diffusion::vae::VaeConfig;

use super::device::DeviceArgs;
use super::ldm::parse_widths;

/// Time one autoencoder training step, one denoiser training step and DDIM sampling of a batch
/// (denoiser steps plus decoding) at a stated config. Defaults are Medfusion's (256², 8×32×32
/// latents, UNet 256,256,512,1024, denoiser batch 32) — sized for a GPU; shrink for a CPU.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  mgcc ldm bench --device wgpu                                     # Medfusion config\n  mgcc ldm bench --size 64 --vae-channels 32,64,128 --unet-channels 64,64,128 --emb-dim 256 --unet-batch 16 --threads 2"
)]
pub struct Args {
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    /// Autoencoder widths (stages = len − 1).
    #[arg(long, default_value = "64,128,256,512")]
    pub vae_channels: String,
    #[arg(long, default_value_t = 8)]
    pub vae_batch: usize,
    /// Denoiser widths: the input conv's, then per level (Medfusion's `hid_chs`).
    #[arg(long, default_value = "256,256,512,1024")]
    pub unet_channels: String,
    #[arg(long, default_value_t = 1024)]
    pub emb_dim: usize,
    #[arg(long, default_value_t = 32)]
    pub unet_batch: usize,
    /// Timed training steps after one warm-up.
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    /// DDIM steps per sampled batch.
    #[arg(long, default_value_t = 50)]
    pub sample_steps: usize,
    /// Images per sampled batch.
    #[arg(long, default_value_t = 8)]
    pub sample_batch: usize,
    /// Skip the autoencoder step.
    #[arg(long)]
    pub skip_vae: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn run(a: Args) -> Result<()> {
    let device = a.device.init()?;
    let vae = VaeConfig {
        channels: parse_widths(&a.vae_channels).map_err(anyhow::Error::msg)?,
        ..Default::default()
    };
    let unet = UnetConfig {
        channels: parse_widths(&a.unet_channels).map_err(anyhow::Error::msg)?,
        emb_dim: a.emb_dim,
        // Medfusion's TimeEmbbeding: the sinusoidal part is a quarter of the embedding.
        time_dim: (a.emb_dim / 4).max(4) & !1,
        ..Default::default()
    };
    if let Err(e) = vae.validate().and(unet.validate()) {
        bail!("bad configuration: {e}");
    }
    let side = a.size / vae.factor();
    if !a.size.is_multiple_of(vae.factor()) || !side.is_multiple_of(unet.size_multiple()) {
        bail!(
            "--size {} does not fit {} autoencoder stages and {} denoiser levels",
            a.size,
            vae.channels.len() - 1,
            unet.channels.len() - 1
        );
    }
    let cfg = LdmBenchConfig {
        size: a.size,
        vae,
        vae_batch: a.vae_batch,
        unet,
        unet_batch: a.unet_batch,
        steps: a.steps,
        sample_steps: a.sample_steps,
        sample_batch: a.sample_batch,
        skip_vae: a.skip_vae,
    };
    let summary = run_bench(&cfg, &device, &a.device.name(), |line| println!("{line}"));
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}
