//! `mgcc ldm train-vae`: train the autoencoder.
//!
//! Loss per batch of `B` images with `C·H·W` values each, as Medfusion's `VAE.rec_loss`:
//!
//! `L = (1/B)·Σ_b [ Σ_chw ℓ(x̂, x) + w_s·C·H·W·(1 − SSIM⁺_b) ] + (same at half resolution)
//!      + w_kl·KL`
//!
//! - `ℓ` is the squared error per value (`pixel_loss = "mse"`, Medfusion's script) or the
//!   absolute error (`"l1"`): summed over the image, *not* averaged, so that the KL term
//!   (`w_kl = 1e-6`, KL as in [`crate::vae::Posterior::kl`]: summed over the latent, averaged
//!   over the batch) weighs what it weighs in Medfusion — relative to a per-value mean it is
//!   `C·H·W` (196 608 at 3×256²) times weaker than the same `1e-6` on a mean;
//! - `SSIM⁺_b` is image b's SSIM of the clamped prediction with negative channel values set
//!   to 0 ([`crate::ssim::ssim_loss_per_image`]); Medfusion adds the per-image `1 − SSIM` to
//!   every value's error before the sum, hence the factor `C·H·W` (`w_s = ssim_weight`, 1);
//! - with deep supervision (default) the half-resolution head adds the same two terms against
//!   the nearest-exact half-size image (`x[…, 1::2, 1::2]`), weight 1.
//!
//! Adam (lr 1e-4, ε = 1e-8 as PyTorch). Every `val_every` iterations the held-back images are
//! reconstructed from their posterior means: PSNR and SSIM (see [`crate::ssim`]) go to
//! `metrics.csv`, the best PSNR keeps the `best` checkpoint, and a panel of originals over
//! reconstructions is written to `samples/`.
//!
//! Medfusion also adds an LPIPS (VGG) perceptual term. Pretrained VGG weights cannot be
//! fetched here and LPIPS is not implemented: `perceptual_weights` is rejected with that message.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::LdmError;
use crate::image_set::{ImageSet, ImageSource};
use crate::metrics_log::MetricsLog;
use crate::progress::{self, Panel};
use crate::run_dir::RunDir;
use crate::ssim::{psnr, ssim, ssim_loss_per_image};
use crate::train_common::{self, Progress, RunOptions, TrainState};
use crate::vae::{Decoded, Vae, VaeConfig};

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
            pixel_loss: PixelLoss::Mse,
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
    let mut optim: ModuleOptimizer = AdamConfig::new().with_epsilon(ADAM_EPSILON).init();
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
        // The step runs on a worker of the thread pool, so its kernels' parallel sections
        // start without cross-thread wake-ups (the autoencoder has no batch norm, whose
        // running statistics would depend on the thread; see `mgcc_kernels::on_pool`).
        let stepped = mgcc_kernels::on_pool(|| {
            let VaeLoss {
                total: loss,
                pixel_mean,
                ssim_mean,
            } = step_loss(&model, x, &cfg);
            let value: f32 = loss.clone().into_scalar();
            if !value.is_finite() {
                return Err(value);
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            Ok((
                value,
                pixel_mean,
                ssim_mean,
                optim.step(cfg.lr, model, grads),
            ))
        });
        let (value, pixel_mean, ssim_mean) = match stepped {
            Ok((value, pixel_mean, ssim_mean, next)) => {
                model = next;
                (value, pixel_mean, ssim_mean)
            }
            Err(value) => {
                log.flush()?;
                return Err(LdmError::NonFinite {
                    iteration: t + 1,
                    value,
                    run: dir.root.clone(),
                });
            }
        };
        state.iteration = t + 1;
        let mut row = vec![
            Some(state.iteration as f64),
            Some(value as f64),
            Some(pixel_mean),
            Some(ssim_mean),
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

/// Adam's ε (PyTorch's default; burn's is 1e-5).
pub const ADAM_EPSILON: f32 = 1e-8;

/// The weights of the autoencoder loss (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossWeights {
    pub pixel_loss: PixelLoss,
    pub ssim_weight: f64,
    pub kl_weight: f64,
}

impl VaeTrainConfig {
    /// The loss weights of this run.
    pub fn loss_weights(&self) -> LossWeights {
        LossWeights {
            pixel_loss: self.pixel_loss,
            ssim_weight: self.ssim_weight,
            kl_weight: self.kl_weight,
        }
    }
}

/// The autoencoder loss and, for the log, its full-resolution parts as means: the pixel error
/// per value and `1 − SSIM⁺` per image.
pub struct VaeLoss {
    pub total: Tensor<1>,
    pub pixel_mean: f64,
    pub ssim_mean: f64,
}

/// Medfusion's loss of a decoder output against the batch `x` (see the module docs).
pub fn vae_loss(out: Decoded, x: Tensor<4>, kl: Tensor<1>, w: &LossWeights) -> VaeLoss {
    let full = Reconstruction::of(out.image, x.clone(), w);
    // Only the full-resolution parts are read back, for the log.
    let pixel_mean = full.pixel.clone().into_scalar::<f32>() as f64 / full.values;
    let ssim_mean = full.dissim.clone().into_scalar::<f32>() as f64;
    let mut total = full.sum(w) + kl * w.kl_weight;
    if let Some(half) = out.half {
        total = total + Reconstruction::of(half, nearest_half(x), w).sum(w);
    }
    VaeLoss {
        total,
        pixel_mean,
        ssim_mean,
    }
}

/// The two reconstruction terms of one output: the pixel error summed per image and averaged
/// over the batch, and the mean `1 − SSIM⁺`, with `C·H·W` values per image.
struct Reconstruction {
    pixel: Tensor<1>,
    dissim: Tensor<1>,
    values: f64,
}

impl Reconstruction {
    fn of(y: Tensor<4>, x: Tensor<4>, w: &LossWeights) -> Self {
        let [b, c, h, wd] = y.dims();
        let diff = y.clone() - x.clone();
        let pixel = match w.pixel_loss {
            PixelLoss::L1 => diff.abs(),
            PixelLoss::Mse => diff.powi_scalar(2),
        }
        .sum()
        .div_scalar(b as f64);
        Self {
            pixel,
            dissim: ssim_loss_per_image(y, x).neg().add_scalar(1.0).mean(),
            values: (c * h * wd) as f64,
        }
    }

    /// `(1/B)·Σ_b [Σ_chw ℓ + w_s·C·H·W·(1 − SSIM⁺_b)]`.
    fn sum(self, w: &LossWeights) -> Tensor<1> {
        self.pixel + self.dissim * (w.ssim_weight * self.values)
    }
}

/// Nearest-exact 2× downsampling (PyTorch `interpolate(mode="nearest-exact")` to half size):
/// output pixel `i` reads input pixel `2i + 1`.
pub fn nearest_half(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h / 2, 2, w / 2, 2])
        .slice([0..b, 0..c, 0..h / 2, 1..2, 0..w / 2, 1..2])
        .reshape([b, c, h / 2, w / 2])
}

fn step_loss(model: &Vae, x: Tensor<4>, cfg: &VaeTrainConfig) -> VaeLoss {
    let post = model.encode(x.clone());
    let out = model.decode(post.sample());
    vae_loss(out, x, post.kl(), &cfg.loss_weights())
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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn constant(v: f32, shape: [usize; 4], device: &Device) -> Tensor<4> {
        Tensor::full(shape, v, device)
    }

    /// SSIM of constant images a, b on [0, 1]: the σ terms vanish.
    fn ssim_constant(a: f64, b: f64) -> f64 {
        (2.0 * a * b + 1e-4) / (a * a + b * b + 1e-4)
    }

    #[test]
    fn loss_weights_its_terms_as_medfusion() {
        let device = Device::flex();
        // B = 2, C = 1, 4×4 images of 0 (0.5 on [0, 1]); prediction 0.2 (0.6), half-resolution
        // prediction 0.4 (0.7) against the half-size target 0 (0.5); KL 3.
        let x = constant(0.0, [2, 1, 4, 4], &device);
        let out = Decoded {
            image: constant(0.2, [2, 1, 4, 4], &device),
            half: Some(constant(0.4, [2, 1, 2, 2], &device)),
        };
        let kl = Tensor::<1>::from_floats([3.0], &device);
        let w = LossWeights {
            pixel_loss: PixelLoss::Mse,
            ssim_weight: 1.0,
            kl_weight: 1e-6,
        };
        let loss = vae_loss(out.clone(), x.clone(), kl.clone(), &w);
        // Full: 16 values × 0.04 + 16 × (1 − SSIM) per image, averaged over the 2 images;
        // half: 4 × 0.16 + 4 × (1 − SSIM); plus 1e-6 × KL.
        let (s1, s2) = (ssim_constant(0.5, 0.6), ssim_constant(0.5, 0.7));
        let expect = 16.0 * 0.04 + 16.0 * (1.0 - s1) + 4.0 * 0.16 + 4.0 * (1.0 - s2) + 3e-6;
        let got = loss.total.into_scalar::<f32>() as f64;
        assert!((got - expect).abs() < 1e-5 * expect, "{got} vs {expect}");
        assert!((loss.pixel_mean - 0.04).abs() < 1e-6);
        assert!((loss.ssim_mean - (1.0 - s1)).abs() < 1e-6);
        // L1 per value: 0.2 and 0.4.
        let l1 = LossWeights {
            pixel_loss: PixelLoss::L1,
            ..w
        };
        let got = vae_loss(out, x, kl, &l1).total.into_scalar::<f32>() as f64;
        let expect = 16.0 * 0.2 + 16.0 * (1.0 - s1) + 4.0 * 0.4 + 4.0 * (1.0 - s2) + 3e-6;
        assert!((got - expect).abs() < 1e-5 * expect, "{got} vs {expect}");
    }

    #[test]
    fn nearest_half_reads_odd_pixels() {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(
            TensorData::new((0..16).map(|v| v as f32).collect::<Vec<_>>(), [1, 1, 4, 4]),
            &device,
        );
        let h: Vec<f32> = nearest_half(x).into_data().try_to_vec().unwrap();
        assert_eq!(h, vec![5.0, 7.0, 13.0, 15.0]);
    }
}
