//! `mgcc ldm bench`: time an autoencoder training step, a denoiser training step and DDIM
//! sampling (denoiser steps + decoding) on random data, after one warm-up each; report
//! learnable parameter counts and peak memory. Each timed step waits for the device
//! (`Device::sync`), so queued GPU work is included.

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use serde::Serialize;

use crate::ldm_train::{LatentInfo, NoiseLoss, decode_planes, noise_loss};
use crate::sampler::{SamplerConfig, sample};
use crate::schedule::ScheduleConfig;
use crate::unet::UnetConfig;
use crate::vae::VaeConfig;
use crate::vae_train::{ADAM_EPSILON, LossWeights, PixelLoss, vae_loss};

/// What to time.
#[derive(Debug, Clone, Serialize)]
pub struct LdmBenchConfig {
    pub size: usize,
    pub vae: VaeConfig,
    pub vae_batch: usize,
    pub unet: UnetConfig,
    pub unet_batch: usize,
    pub steps: usize,
    /// DDIM steps per image and images per sampling batch.
    pub sample_steps: usize,
    pub sample_batch: usize,
    pub skip_vae: bool,
}

/// The summary line.
#[derive(Debug, Clone, Serialize)]
pub struct LdmBenchSummary {
    pub device: String,
    /// The CPU kernels' SIMD path (`avx512`, `avx2`, `scalar`; `null` off the flex CPU
    /// device), see `mgcc_kernels::simd_path`.
    pub simd: Option<&'static str>,
    pub threads: usize,
    pub size: usize,
    pub latent: [usize; 3],
    pub vae_params: usize,
    pub unet_params: usize,
    pub vae_batch: usize,
    pub vae_step_median_s: Option<f64>,
    pub unet_batch: usize,
    pub unet_step_median_s: f64,
    pub sample_steps: usize,
    pub sample_batch: usize,
    pub sample_batch_s: f64,
    pub images_per_s: f64,
    pub peak_rss_mib: Option<f64>,
    /// The GPU adapter's name (`None` on the CPU).
    pub adapter: Option<String>,
    /// GPU memory the allocator had reserved after the three timings, MiB (at least the peak
    /// in use; see `mgcc_train::bench::BenchSummary`).
    pub gpu_reserved_mib: Option<f64>,
}

fn timed(mut f: impl FnMut(), runs: usize) -> f64 {
    f();
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let t0 = Instant::now();
        f();
        times.push(t0.elapsed().as_secs_f64());
    }
    mgcc_train::bench::median(&times)
}

/// Run the benchmark; `emit` receives JSON lines (per-part, then the summary).
pub fn run(
    cfg: &LdmBenchConfig,
    device: &Device,
    device_name: &str,
    mut emit: impl FnMut(String),
) -> LdmBenchSummary {
    let ad = device.clone().autodiff();
    ad.seed(0);
    let side = cfg.size / cfg.vae.factor();
    let latent = [cfg.vae.latent_channels, side, side];
    let unet_cfg = UnetConfig {
        latent_channels: cfg.vae.latent_channels,
        ..cfg.unet.clone()
    };

    // Held in an `Option` so each step moves the model into the optimizer, as the trainers do:
    // a clone would keep every old parameter alive until the step returns.
    let mut vae = Some(cfg.vae.init(&ad));
    let vae_params = vae.as_ref().map_or(0, |m| m.num_params());
    let mut vae_median = None;
    if !cfg.skip_vae {
        let mut optim = AdamConfig::new().with_epsilon(ADAM_EPSILON).init();
        let weights = LossWeights {
            pixel_loss: PixelLoss::Mse,
            ssim_weight: 1.0,
            kl_weight: 1e-6,
        };
        let x = Tensor::<4>::random(
            [cfg.vae_batch, cfg.vae.in_channels, cfg.size, cfg.size],
            Distribution::Uniform(-1.0, 1.0),
            &ad,
        );
        let m = timed(
            || {
                let model = vae.take().expect("the model is put back after each step");
                // On a pool worker, as the trainers run it.
                vae = Some(mgcc_kernels::on_pool(|| {
                    let post = model.encode(x.clone());
                    let out = model.decode(post.sample());
                    let loss = vae_loss(out, x.clone(), post.kl(), &weights).total;
                    let _: f32 = loss.clone().into_scalar();
                    let grads = GradientsParams::from_grads(loss.backward(), &model);
                    optim.step(1e-4, model, grads)
                }));
                ad.sync().expect("the device failed while running the step");
            },
            cfg.steps,
        );
        emit(format!("{{\"part\":\"vae_step\",\"median_s\":{m}}}"));
        vae_median = Some(m);
    }

    let mut unet = Some(unet_cfg.init(&ad));
    let unet_params = unet.as_ref().map_or(0, |m| m.num_params());
    let schedule = ScheduleConfig::default().build();
    let mut optim = AdamWConfig::new()
        .with_weight_decay(0.01)
        .with_epsilon(ADAM_EPSILON)
        .init();
    let [c, h, w] = latent;
    let x0 = Tensor::<4>::random(
        [cfg.unet_batch, c, h, w],
        Distribution::Normal(0.0, 1.0),
        &ad,
    );
    let ts: Vec<usize> = (0..cfg.unet_batch)
        .map(|i| (i * 997) % schedule.len())
        .collect();
    let tf: Vec<f32> = ts.iter().map(|&t| t as f32).collect();
    let unet_median = timed(
        || {
            let noise = Tensor::<4>::random(x0.dims(), Distribution::Normal(0.0, 1.0), &ad);
            let xt = schedule.q_sample(x0.clone(), noise.clone(), &ts);
            let model = unet.take().expect("the model is put back after each step");
            // On a pool worker, as the trainer runs it.
            unet = Some(mgcc_kernels::on_pool(|| {
                let loss = noise_loss(model.forward(xt, &tf, None), noise, NoiseLoss::L1);
                let _: f32 = loss.clone().into_scalar();
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                optim.step(1e-4, model, grads)
            }));
            ad.sync().expect("the device failed while running the step");
        },
        cfg.steps,
    );
    emit(format!(
        "{{\"part\":\"unet_step\",\"median_s\":{unet_median}}}"
    ));

    let unet_valid = unet.expect("trained above").valid();
    let vae_valid = vae.expect("trained above").valid();
    let info = LatentInfo {
        scale: 1.0,
        shape: latent,
        image_size: cfg.size,
        images: 0,
    };
    let sampler_cfg = SamplerConfig {
        steps: cfg.sample_steps,
        ..Default::default()
    };
    let seeds: Vec<u64> = (0..cfg.sample_batch as u64).collect();
    let sample_s = timed(
        || {
            let z = sample(
                &unet_valid,
                &schedule,
                &sampler_cfg,
                latent,
                &seeds,
                None,
                device,
            );
            let planes = decode_planes(&vae_valid, z, &info);
            assert_eq!(planes.len(), seeds.len());
        },
        1,
    );
    emit(format!("{{\"part\":\"sample\",\"batch_s\":{sample_s}}}"));
    LdmBenchSummary {
        device: device_name.to_string(),
        simd: mgcc_kernels::simd_path(device).map(|l| l.name()),
        threads: rayon::current_num_threads(),
        size: cfg.size,
        latent,
        vae_params,
        unet_params,
        vae_batch: cfg.vae_batch,
        vae_step_median_s: vae_median,
        unet_batch: cfg.unet_batch,
        unet_step_median_s: unet_median,
        sample_steps: cfg.sample_steps,
        sample_batch: cfg.sample_batch,
        sample_batch_s: sample_s,
        images_per_s: cfg.sample_batch as f64 / sample_s,
        peak_rss_mib: mgcc_train::bench::peak_rss_mib(),
        adapter: mgcc_train::device::adapter_name(device),
        gpu_reserved_mib: mgcc_train::device::gpu_memory_mib(device).map(|g| g.1),
    }
}
