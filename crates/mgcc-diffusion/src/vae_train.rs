//! `mgcc ldm train-vae`: train the autoencoder.
//!
//! Loss per batch: pixel term (`L1` mean absolute error, or `MSE`) + `ssim_weight·(1 − SSIM)` +
//! `kl_weight·KL` (KL as in [`crate::vae::Posterior::kl`]); with deep supervision the
//! half-resolution head adds `½·(pixel + ssim terms)` against the 2×2-average-pooled image.
//! Adam (lr 1e-4 by default). Every `val_every` iterations the held-back images are
//! reconstructed from their posterior means: PSNR and SSIM (see [`crate::ssim`]) go to
//! `metrics.csv`, the best PSNR keeps the `best` checkpoint, and a panel of originals over
//! reconstructions is written to `samples/`.
//!
//! Medfusion also adds an LPIPS (VGG) perceptual term. Pretrained VGG weights cannot be
//! fetched here and LPIPS is not implemented: `perceptual_weights` is rejected with that message.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::nn::pool::AvgPool2dConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::LdmError;
use crate::image_set::{ImageSet, ImageSource};
use crate::metrics_log::MetricsLog;
use crate::progress::{self, Panel};
use crate::run_dir::RunDir;
use crate::ssim::{psnr, ssim};
use crate::train_common::{self, Progress, RunOptions, TrainState};
use crate::vae::{Vae, VaeConfig};

/// Pixel reconstruction loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelLoss {
    L1,
    Mse,
}

/// Everything `train-vae` reads (saved as the run's `config.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaeTrainConfig {
    pub data: PathBuf,
    pub split: Option<usize>,
    pub split_name: Option<String>,
    pub size: usize,
    pub vae: VaeConfig,
    pub iterations: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
    /// Images held back for reconstruction metrics: this share of the images (at least 1).
    pub holdout_fraction: f64,
    pub val_every: usize,
    pub pixel_loss: PixelLoss,
    pub ssim_weight: f64,
    pub kl_weight: f64,
    /// Random horizontal flips.
    pub flip: bool,
    /// LPIPS weights file (not implemented; see the module docs).
    pub perceptual_weights: Option<PathBuf>,
}

impl Default for VaeTrainConfig {
    fn default() -> Self {
        Self {
            data: PathBuf::new(),
            split: None,
            split_name: None,
            size: 256,
            vae: VaeConfig::default(),
            iterations: 20000,
            batch: 8,
            lr: 1e-4,
            seed: 41,
            holdout_fraction: 0.1,
            val_every: 500,
            pixel_loss: PixelLoss::L1,
            ssim_weight: 1.0,
            kl_weight: 1e-6,
            flip: true,
            perceptual_weights: None,
        }
    }
}

impl VaeTrainConfig {
    /// Check the settings; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        self.vae.validate()?;
        if self.perceptual_weights.is_some() {
            return Err("perceptual_weights: the LPIPS (VGG) perceptual loss is not implemented in this version; leave it out".into());
        }
        if self.size == 0 || !self.size.is_multiple_of(self.vae.factor()) {
            return Err(format!(
                "size {} must be a positive multiple of {} (2^stages)",
                self.size,
                self.vae.factor()
            ));
        }
        if self.iterations == 0 || self.batch == 0 || self.val_every == 0 {
            return Err("iterations, batch and val_every must be positive".into());
        }
        if self.lr.is_nan() || self.lr <= 0.0 || !(0.0..1.0).contains(&self.holdout_fraction) {
            return Err("need lr > 0 and 0 ≤ holdout_fraction < 1".into());
        }
        Ok(())
    }
}

/// Files of a trained autoencoder that the denoiser needs.
pub fn vae_config_of(run: &Path) -> Result<VaeTrainConfig, LdmError> {
    Ok(RunDir::open::<VaeTrainConfig>(run)?.1)
}

/// Load a trained autoencoder (its `best` checkpoint, else `last`) for inference.
pub fn load_vae(run: &Path, device: &Device) -> Result<(Vae, VaeTrainConfig), LdmError> {
    let (_, cfg) = RunDir::open::<VaeTrainConfig>(run)?;
    let dir = mgcc_train::checkpoint::find(run, "best")
        .or_else(|| mgcc_train::checkpoint::find(run, "last"))
        .ok_or_else(|| LdmError::Checkpoint {
            path: run.to_path_buf(),
            message: "no checkpoint yet: train the autoencoder first".into(),
        })?;
    let vae = mgcc_train::checkpoint::load_model(&dir, cfg.vae.init(device))?;
    Ok((vae, cfg))
}

const COLUMNS: [&str; 6] = [
    "iteration",
    "loss",
    "pixel_loss",
    "ssim_loss",
    "val_psnr",
    "val_ssim",
];

/// Train a new autoencoder in `run` (or continue it with `resume`).
pub fn train_vae(
    cfg: Option<VaeTrainConfig>,
    run: &Path,
    device: &Device,
    opts: &RunOptions,
) -> Result<train_common::Outcome, LdmError> {
    // Read the images before creating anything, so a failed start leaves no run behind.
    let cfg = cfg.map(|mut c| {
        // Stored absolute, so that `--resume` works from any folder.
        c.data = mgcc_data::safe_fs::paths::resolve(&c.data);
        c
    });
    let preloaded = match &cfg {
        Some(c) => {
            c.validate().map_err(LdmError::Invalid)?;
            RunDir::ensure_new(run)?;
            Some(load_images(c)?)
        }
        None => None,
    };
    let (dir, cfg, state) =
        train_common::start_or_resume(cfg, run, |c: &VaeTrainConfig| c.validate())?;
    let images = match preloaded {
        Some(images) => images,
        None => load_images(&cfg)?,
    };
    let k = ((images.len() as f64 * cfg.holdout_fraction).round() as usize).max(1);
    if images.len() <= k {
        return Err(LdmError::Invalid(format!(
            "{}: {} images are too few to hold {k} back for validation",
            cfg.data.display(),
            images.len()
        )));
    }
    let (train, held) = images.hold_out(k, cfg.seed);
    let ad = device.clone().autodiff();
    ad.seed(cfg.seed);
    let mut model: Vae = cfg.vae.init(&ad);
    let mut optim: ModuleOptimizer = AdamConfig::new().init();
    let mut log;
    let mut state = match state {
        Some((ckpt, state)) => {
            model = mgcc_train::checkpoint::load_model(&ckpt, model)?;
            optim = mgcc_train::checkpoint::load_optimizer(&ckpt, optim)?;
            log = MetricsLog::resume(&dir.metrics_csv(), &COLUMNS, state.iteration)?;
            dir.log(&format!("resumed at iteration {}", state.iteration))?;
            state
        }
        None => {
            log = MetricsLog::create(&dir.metrics_csv(), &COLUMNS)?;
            dir.log(&format!(
                "new autoencoder run: {} training and {} held-back images at {}², {} iterations",
                train.len(),
                held.len(),
                cfg.size,
                cfg.iterations
            ))?;
            TrainState::default()
        }
    };
    let end = opts
        .stop_after
        .map_or(cfg.iterations, |s| s.min(cfg.iterations));
    let progress = Progress::new(opts, state.iteration, end);
    let started = Instant::now();
    let first = state.iteration;
    let channels = cfg.vae.in_channels;
    for t in state.iteration..end {
        let plan = train.batch_plan(cfg.seed, t, cfg.batch, cfg.flip);
        let x = train.tensor(&plan, channels, &ad);
        ad.seed(mgcc_train::trainer::step_seed(cfg.seed, t));
        let (loss, parts) = vae_loss(&model, x, &cfg);
        let value: f32 = loss.clone().into_scalar();
        if !value.is_finite() {
            log.flush()?;
            return Err(LdmError::NonFinite {
                iteration: t + 1,
                value,
                run: dir.root.clone(),
            });
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(cfg.lr, model, grads);
        state.iteration = t + 1;
        let mut row = vec![
            Some(state.iteration as f64),
            Some(value as f64),
            Some(parts.0),
            Some(parts.1),
            None,
            None,
        ];
        progress.tick(state.iteration, &format!("loss {value:.4}"));
        if state.iteration.is_multiple_of(cfg.val_every) || state.iteration == end {
            let valid = model.valid();
            let (p, s, panel) = reconstruct(&valid, &held, channels, device);
            row[4] = Some(p);
            row[5] = Some(s);
            log.push(row);
            log.flush()?;
            let improved = state.best.is_none_or(|b| p > b);
            if improved {
                state.best = Some(p);
                state.best_iteration = Some(state.iteration);
                mgcc_train::checkpoint::save(&dir.root, "best", &valid, None, &state)?;
            }
            mgcc_train::checkpoint::save(&dir.root, "last", &model, Some(&optim), &state)?;
            crate::image_grid::write_rows(&dir.sample_png(state.iteration), &panel, cfg.size)?;
            draw_progress(&dir, &log)?;
            let line = format!(
                "iter {}/{} loss {:.4} | held-back PSNR {:.2} dB SSIM {:.4}{} | {:.2} s/it",
                state.iteration,
                cfg.iterations,
                value,
                p,
                s,
                if improved { " *best*" } else { "" },
                started.elapsed().as_secs_f64() / (state.iteration - first) as f64
            );
            dir.log(&line)?;
            progress.println(&line);
        } else {
            log.push(row);
        }
    }
    log.flush()?;
    progress.finish();
    Ok(train_common::Outcome {
        run: dir.root.clone(),
        iterations_done: state.iteration,
        total_iterations: cfg.iterations,
        best: state.best,
        best_iteration: state.best_iteration,
    })
}

fn load_images(cfg: &VaeTrainConfig) -> Result<ImageSet, LdmError> {
    ImageSet::load(
        &ImageSource {
            data: &cfg.data,
            split: cfg.split,
            split_name: cfg.split_name.as_deref(),
        },
        cfg.size as u32,
    )
}

/// Training loss and its (pixel, 1 − SSIM) parts.
fn vae_loss(model: &Vae, x: Tensor<4>, cfg: &VaeTrainConfig) -> (Tensor<1>, (f64, f64)) {
    let post = model.encode(x.clone());
    let out = model.decode(post.sample());
    let recon = |y: Tensor<4>, x: Tensor<4>| -> (Tensor<1>, Tensor<1>) {
        let pixel = match cfg.pixel_loss {
            PixelLoss::L1 => (y.clone() - x.clone()).abs().mean(),
            PixelLoss::Mse => (y.clone() - x.clone()).powi_scalar(2).mean(),
        };
        let s = ssim(y, x).neg().add_scalar(1.0);
        (pixel, s)
    };
    let (pixel, s) = recon(out.image, x.clone());
    let parts = (
        pixel.clone().into_scalar::<f32>() as f64,
        s.clone().into_scalar::<f32>() as f64,
    );
    let mut loss = pixel + s * cfg.ssim_weight + post.kl() * cfg.kl_weight;
    if let Some(half) = out.half {
        let small = AvgPool2dConfig::new([2, 2])
            .with_strides([2, 2])
            .init()
            .forward(x);
        let (p2, s2) = recon(half, small);
        loss = loss + (p2 + s2 * cfg.ssim_weight) * 0.5;
    }
    (loss, parts)
}

/// Reconstruct held-back images from their posterior means: mean PSNR, mean SSIM, and up to
/// 8 (original, reconstruction) gray planes for the panel.
pub fn reconstruct(
    vae: &Vae,
    held: &ImageSet,
    channels: usize,
    device: &Device,
) -> (f64, f64, Vec<Vec<Vec<f32>>>) {
    let (mut psnr_sum, mut ssim_sum) = (0.0, 0.0);
    let mut originals = Vec::new();
    let mut recons = Vec::new();
    for i in 0..held.len() {
        let x = held.tensor(&[(i, false)], channels, device);
        let y = vae
            .decode(vae.encode(x.clone()).mean)
            .image
            .clamp(-1.0, 1.0);
        ssim_sum += ssim(y.clone(), x.clone()).into_scalar::<f32>() as f64;
        let xv: Vec<f32> = x.into_data().try_to_vec().unwrap_or_default();
        let yv: Vec<f32> = y.into_data().try_to_vec().unwrap_or_default();
        psnr_sum += psnr(&yv, &xv);
        if originals.len() < 8 {
            let plane = held.size * held.size;
            originals.push(xv[..plane].to_vec());
            recons.push(yv[..plane].to_vec());
        }
    }
    let n = held.len().max(1) as f64;
    (psnr_sum / n, ssim_sum / n, vec![originals, recons])
}

fn draw_progress(dir: &RunDir, log: &MetricsLog) -> Result<(), LdmError> {
    progress::draw(
        &dir.progress_png(),
        &[
            Panel {
                title: "training loss",
                series: vec![
                    ("total", train_common::smooth(&log.series("loss"))),
                    ("pixel", train_common::smooth(&log.series("pixel_loss"))),
                    ("1 - SSIM", train_common::smooth(&log.series("ssim_loss"))),
                ],
                log_y: true,
            },
            Panel {
                title: "held-back PSNR (dB)",
                series: vec![("PSNR", log.series("val_psnr"))],
                log_y: false,
            },
            Panel {
                title: "held-back SSIM",
                series: vec![("SSIM", log.series("val_ssim"))],
                log_y: false,
            },
        ],
    )
}

/// Whether the autoencoder run finished its iterations (used by the pipeline).
pub fn is_trained(run: &Path) -> bool {
    train_common::is_finished(run, |c: &VaeTrainConfig| c.iterations)
}
