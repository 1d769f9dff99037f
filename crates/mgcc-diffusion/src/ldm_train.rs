//! `mgcc ldm train`: train the latent denoiser on the autoencoder's latents.
//!
//! Before training, every image (and its mirror image when `flip` is on) is encoded once to its
//! posterior mean μ and standard deviation σ. With `latent_scaling` (default; a deviation from
//! Medfusion, which trains on raw latents, taken from Stable Diffusion) the latent scale is
//! `1/std` of the training latents, `std² = Var(μ) + mean(σ²)` (the variance of `z = μ + σ·ε`
//! over images and noise); without it the scale is 1. It is stored in `RUN/latents.json` with
//! the class names. A step draws `z = μ + σ·ε`, `x₀ = scale·z`, `t ~ U{0..T−1}`, ε ~ N(0, I),
//! `x_t = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε`, and minimises `L1(ε̂, ε)` (or MSE). With class conditioning
//! the class is dropped (classifier-free guidance training) with probability `class_drop`: for
//! the whole batch at once (`class_drop_mode = "batch"`, Medfusion's), or per sample
//! (`"sample"`). AdamW (ε = 1e-8 as PyTorch); optional EMA of the weights, which is then what
//! sampling uses.
//!
//! Every `val_every` iterations: the denoising loss of the sampling weights on a fixed
//! evaluation set (held-back images when `holdout_fraction > 0`, else the training latents)
//! at 8 fixed timesteps with fixed noise (`eval_loss`, lower is better; `best` keeps the lowest),
//! checkpoints, and a grid of images generated with DDIM from fixed seeds in `samples/`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::error::LdmError;
use crate::image_set::{ImageSet, ImageSource};
use crate::metrics_log::MetricsLog;
use crate::progress::{self, Panel};
use crate::run_dir::{self, RunDir};
use crate::sampler::{self, SamplerConfig};
use crate::schedule::{NoiseSchedule, ScheduleConfig};
use crate::train_common::{self, Progress, RunOptions, TrainState};
use crate::unet::{Unet, UnetConfig};
use crate::vae::Vae;
use crate::vae_train::load_vae;

/// Regression loss on the noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoiseLoss {
    L1,
    Mse,
}

/// How classifier-free guidance training drops the class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassDrop {
    /// One draw per batch: the whole batch is unconditional with probability `class_drop`
    /// (Medfusion).
    Batch,
    /// One draw per sample.
    Sample,
}

impl std::str::FromStr for ClassDrop {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "batch" => Ok(Self::Batch),
            "sample" => Ok(Self::Sample),
            other => Err(format!(
                "unknown class drop mode {other:?} (expected batch or sample)"
            )),
        }
    }
}

/// Everything `ldm train` reads (saved as the run's `config.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LdmTrainConfig {
    pub data: PathBuf,
    pub split: Option<usize>,
    pub split_name: Option<String>,
    /// Run folder of the trained autoencoder.
    pub vae_run: PathBuf,
    pub unet: UnetConfig,
    pub schedule: ScheduleConfig,
    pub iterations: usize,
    pub batch: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub seed: u64,
    pub loss: NoiseLoss,
    /// Condition on the dataset's classes (from its manifest) when it has them.
    pub class_conditioning: bool,
    /// Probability of dropping the class during training (classifier-free guidance).
    pub class_drop: f64,
    /// Whether a drop is drawn per batch (Medfusion) or per sample.
    pub class_drop_mode: ClassDrop,
    /// Scale latents to unit standard deviation (Stable Diffusion's practice; Medfusion uses
    /// raw latents: `false`).
    pub latent_scaling: bool,
    /// Class names, in index order (filled in from the data when the run starts).
    pub classes: Vec<String>,
    /// EMA decay of the sampling weights (none: sample with the trained weights).
    pub ema_decay: Option<f64>,
    /// Share of images held back for the evaluation loss (0: evaluate on training latents).
    pub holdout_fraction: f64,
    pub val_every: usize,
    /// DDIM steps of the sample grid written at each validation.
    pub sample_steps: usize,
    /// Encode mirror images too (horizontal flip augmentation).
    pub flip: bool,
}

impl Default for LdmTrainConfig {
    fn default() -> Self {
        Self {
            data: PathBuf::new(),
            split: None,
            split_name: None,
            vae_run: PathBuf::new(),
            unet: UnetConfig::default(),
            schedule: ScheduleConfig::default(),
            iterations: 20000,
            batch: 32,
            lr: 1e-4,
            weight_decay: 1e-2,
            seed: 41,
            loss: NoiseLoss::L1,
            class_conditioning: true,
            class_drop: 0.5,
            class_drop_mode: ClassDrop::Batch,
            latent_scaling: true,
            classes: Vec::new(),
            ema_decay: None,
            holdout_fraction: 0.0,
            val_every: 500,
            sample_steps: 50,
            flip: true,
        }
    }
}

impl LdmTrainConfig {
    /// Check the settings; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        self.unet.validate()?;
        self.schedule.validate()?;
        if self.iterations == 0 || self.batch == 0 || self.val_every == 0 || self.sample_steps == 0
        {
            return Err("iterations, batch, val_every and sample_steps must be positive".into());
        }
        if self.lr.is_nan() || self.lr <= 0.0 || self.weight_decay < 0.0 {
            return Err("need lr > 0 and weight_decay ≥ 0".into());
        }
        if !(0.0..=1.0).contains(&self.class_drop) || !(0.0..1.0).contains(&self.holdout_fraction) {
            return Err("class_drop must be in [0, 1] and holdout_fraction in [0, 1)".into());
        }
        if let Some(d) = self.ema_decay
            && !(0.0..1.0).contains(&d)
        {
            return Err(format!("ema_decay must be in [0, 1), got {d}"));
        }
        Ok(())
    }
}

/// Measured with the run: the latent scale and what the latents hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatentInfo {
    /// `x₀ = scale·z`.
    pub scale: f64,
    /// Latent shape `[L, h, w]`.
    pub shape: [usize; 3],
    /// Image size of the autoencoder.
    pub image_size: usize,
    /// Training images (before mirroring).
    pub images: usize,
}

const LATENT_FILE: &str = "latents.json";
const EMA: &str = "ema";

/// Encoded images: posterior means and standard deviations, flattened `[L·h·w]` each, with the
/// class index (or `None`).
struct Latents {
    mean: Vec<Vec<f32>>,
    std: Vec<Vec<f32>>,
    class: Vec<Option<usize>>,
}

fn encode_all(
    vae: &Vae,
    set: &ImageSet,
    channels: usize,
    flip: bool,
    classes: &[String],
    device: &Device,
) -> Latents {
    let mut out = Latents {
        mean: Vec::new(),
        std: Vec::new(),
        class: Vec::new(),
    };
    for i in 0..set.len() {
        let class = set.classes[i]
            .as_ref()
            .and_then(|c| classes.iter().position(|n| n == c));
        let flips: &[bool] = if flip { &[false, true] } else { &[false] };
        for &f in flips {
            let post = vae.encode(set.tensor(&[(i, f)], channels, device));
            out.mean
                .push(post.mean.into_data().try_to_vec().unwrap_or_default());
            let std = (post.logvar * 0.5).exp();
            out.std
                .push(std.into_data().try_to_vec().unwrap_or_default());
            out.class.push(class);
        }
    }
    out
}

/// `1/√(Var(μ) + mean(σ²))` over all elements of all latents.
fn latent_scale(l: &Latents) -> f64 {
    let n: usize = l.mean.iter().map(Vec::len).sum();
    let mean: f64 = l.mean.iter().flatten().map(|&v| v as f64).sum::<f64>() / n as f64;
    let var_mu: f64 = l
        .mean
        .iter()
        .flatten()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n as f64;
    let mean_var: f64 = l
        .std
        .iter()
        .flatten()
        .map(|&s| (s as f64).powi(2))
        .sum::<f64>()
        / n as f64;
    1.0 / (var_mu + mean_var).max(1e-12).sqrt()
}

const COLUMNS: [&str; 3] = ["iteration", "loss", "eval_loss"];

/// A trained denoiser with everything sampling needs.
pub struct LoadedLdm {
    pub unet: Unet,
    pub vae: Vae,
    pub schedule: NoiseSchedule,
    pub info: LatentInfo,
    pub config: LdmTrainConfig,
    pub vae_channels: usize,
}

/// Load a denoiser run (`best` checkpoint: the sampling weights) and its autoencoder.
pub fn load_ldm(run: &Path, device: &Device) -> Result<LoadedLdm, LdmError> {
    let (_, config) = RunDir::open::<LdmTrainConfig>(run)?;
    let info: LatentInfo = read_json(&run.join(LATENT_FILE))?;
    let dir = mgcc_train::checkpoint::find(run, "best").ok_or_else(|| LdmError::Checkpoint {
        path: run.to_path_buf(),
        message: "no checkpoint yet: train the denoiser first".into(),
    })?;
    let unet = mgcc_train::checkpoint::load_model(&dir, config.unet.init(device))?;
    let (vae, vae_cfg) = load_vae(&config.vae_run, device)?;
    Ok(LoadedLdm {
        unet,
        vae,
        schedule: config.schedule.build(),
        info,
        vae_channels: vae_cfg.vae.in_channels,
        config,
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, LdmError> {
    let text = std::fs::read_to_string(path).map_err(|e| LdmError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| LdmError::Config {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Train a new denoiser in `run` (or continue it when `cfg` is `None`).
pub fn train_ldm(
    cfg: Option<LdmTrainConfig>,
    run: &Path,
    device: &Device,
    opts: &RunOptions,
) -> Result<train_common::Outcome, LdmError> {
    // Resolve what depends on the data before the run folder exists.
    let cfg = match cfg {
        Some(mut cfg) => {
            cfg.validate().map_err(LdmError::Invalid)?;
            RunDir::ensure_new(run)?;
            // Stored absolute, so that `--resume` works from any folder.
            cfg.data = mgcc_data::safe_fs::paths::resolve(&cfg.data);
            cfg.vae_run = mgcc_data::safe_fs::paths::resolve(&cfg.vae_run);
            let (vae, vae_cfg) = load_vae(&cfg.vae_run, device)?;
            drop(vae);
            cfg.unet.latent_channels = vae_cfg.vae.latent_channels;
            let side = vae_cfg.size / vae_cfg.vae.factor();
            if !side.is_multiple_of(cfg.unet.size_multiple()) {
                return Err(LdmError::Invalid(format!(
                    "latent side {side} is not divisible by {} (2^(unet levels − 1)): use fewer unet levels",
                    cfg.unet.size_multiple()
                )));
            }
            let set = load_images(&cfg, vae_cfg.size)?;
            cfg.classes = if cfg.class_conditioning {
                set.class_names()
            } else {
                Vec::new()
            };
            cfg.unet.num_classes = cfg.classes.len();
            Some(cfg)
        }
        None => None,
    };
    let (dir, cfg, state) =
        train_common::start_or_resume(cfg, run, |c: &LdmTrainConfig| c.validate())?;
    let (vae, vae_cfg) = load_vae(&cfg.vae_run, device)?;
    let channels = vae_cfg.vae.in_channels;
    let set = load_images(&cfg, vae_cfg.size)?;
    let k = (set.len() as f64 * cfg.holdout_fraction).round() as usize;
    let (train_set, held_set) = set.hold_out(k, cfg.seed);
    let latents = encode_all(&vae, &train_set, channels, cfg.flip, &cfg.classes, device);
    let held = encode_all(&vae, &held_set, channels, false, &cfg.classes, device);
    let side = vae_cfg.size / vae_cfg.vae.factor();
    let shape = [vae_cfg.vae.latent_channels, side, side];
    let info = LatentInfo {
        scale: if cfg.latent_scaling {
            latent_scale(&latents)
        } else {
            1.0
        },
        shape,
        image_size: vae_cfg.size,
        images: train_set.len(),
    };
    let info_json = serde_json::to_string_pretty(&info).unwrap_or_default();
    run_dir::write_atomic(&dir.root.join(LATENT_FILE), info_json.as_bytes())?;
    let eval = if held.mean.is_empty() {
        &latents
    } else {
        &held
    };

    let schedule = cfg.schedule.build();
    let ad = device.clone().autodiff();
    ad.seed(cfg.seed);
    let mut model: Unet = cfg.unet.init(&ad);
    let mut ema: Option<Unet> = cfg.ema_decay.map(|_| model.valid());
    let mut optim: ModuleOptimizer = AdamWConfig::new()
        .with_weight_decay(cfg.weight_decay as f32)
        .with_epsilon(crate::vae_train::ADAM_EPSILON)
        .init();
    let mut log;
    let mut state = match state {
        Some((ckpt, state)) => {
            model = mgcc_train::checkpoint::load_model(&ckpt, model)?;
            optim = mgcc_train::checkpoint::load_optimizer(&ckpt, optim)?;
            ema = match ema {
                Some(e) => Some(resume_ema(run, e, &model, state.iteration, &dir)?),
                None => None,
            };
            log = MetricsLog::resume(&dir.metrics_csv(), &COLUMNS, state.iteration)?;
            dir.log(&format!("resumed at iteration {}", state.iteration))?;
            state
        }
        None => {
            log = MetricsLog::create(&dir.metrics_csv(), &COLUMNS)?;
            dir.log(&format!(
                "new denoiser run: {} training images ({} latents with mirrors), {} held back; latent {:?}, scale {:.4}; classes {:?}; {} iterations",
                train_set.len(),
                latents.mean.len(),
                held_set.len(),
                shape,
                info.scale,
                cfg.classes,
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
    for t in state.iteration..end {
        let (x0, classes) = draw_batch(&latents, &cfg, info.scale, shape, t, &ad);
        let mut rng =
            ChaCha8Rng::seed_from_u64(mgcc_train::trainer::step_seed(cfg.seed ^ 0x7173, t));
        let steps: Vec<usize> = (0..cfg.batch)
            .map(|_| rng.random_range(0..schedule.len()))
            .collect();
        ad.seed(mgcc_train::trainer::step_seed(cfg.seed, t));
        let noise =
            Tensor::<4>::random(x0.dims(), burn::tensor::Distribution::Normal(0.0, 1.0), &ad);
        let xt = schedule.q_sample(x0, noise.clone(), &steps);
        let tf: Vec<f32> = steps.iter().map(|&s| s as f32).collect();
        // The step runs on a worker of the thread pool, so its kernels' parallel sections
        // start without cross-thread wake-ups (the denoiser has no batch norm, whose running
        // statistics would depend on the thread; see `mgcc_kernels::on_pool`).
        let stepped = mgcc_kernels::on_pool(|| {
            let pred = model.forward(xt, &tf, classes.as_deref());
            let loss = noise_loss(pred, noise, cfg.loss);
            let value: f32 = loss.clone().into_scalar();
            if !value.is_finite() {
                return Err(value);
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            Ok((value, optim.step(cfg.lr, model, grads)))
        });
        let value = match stepped {
            Ok((value, next)) => {
                model = next;
                value
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
        if let (Some(e), Some(decay)) = (ema.take(), cfg.ema_decay) {
            ema = Some(crate::ema::update(e, &model.valid(), decay));
        }
        state.iteration = t + 1;
        progress.tick(state.iteration, &format!("loss {value:.4}"));
        let mut row = vec![Some(state.iteration as f64), Some(value as f64), None];
        if state.iteration.is_multiple_of(cfg.val_every) || state.iteration == end {
            let sampling = ema.clone().unwrap_or_else(|| model.valid());
            let eval_loss = evaluate(&sampling, &schedule, eval, &cfg, &info, device);
            row[2] = Some(eval_loss);
            log.push(row);
            log.flush()?;
            let improved = state.best.is_none_or(|b| -eval_loss > b);
            if improved {
                state.best = Some(-eval_loss);
                state.best_iteration = Some(state.iteration);
                mgcc_train::checkpoint::save(&dir.root, "best", &sampling, None, &state)?;
            }
            if let Some(e) = &ema {
                mgcc_train::checkpoint::save(&dir.root, EMA, e, None, &state)?;
            }
            mgcc_train::checkpoint::save(&dir.root, "last", &model, Some(&optim), &state)?;
            let grid = sample_grid(&sampling, &vae, &schedule, &cfg, &info, device);
            crate::image_grid::write_rows(
                &dir.sample_png(state.iteration),
                &grid,
                info.image_size,
            )?;
            draw_progress(&dir, &log)?;
            let line = format!(
                "iter {}/{} loss {:.4} | eval loss {:.4}{} | {:.2} s/it",
                state.iteration,
                cfg.iterations,
                value,
                eval_loss,
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
        best: state.best.map(|b| -b),
        best_iteration: state.best_iteration,
    })
}

fn load_images(cfg: &LdmTrainConfig, size: usize) -> Result<ImageSet, LdmError> {
    ImageSet::load(
        &ImageSource {
            data: &cfg.data,
            split: cfg.split,
            split_name: cfg.split_name.as_deref(),
        },
        size as u32,
    )
}

/// The EMA weights saved at the same iteration as `last`, else a fresh copy of the model
/// (logged), e.g. after a crash between the two checkpoint writes.
fn resume_ema(
    run: &Path,
    fresh: Unet,
    model: &Unet,
    iteration: usize,
    dir: &RunDir,
) -> Result<Unet, LdmError> {
    if let Some(ckpt) = mgcc_train::checkpoint::find(run, EMA) {
        let s: TrainState = mgcc_train::checkpoint::load_state(&ckpt)?;
        if s.iteration == iteration {
            return Ok(mgcc_train::checkpoint::load_model(&ckpt, fresh)?);
        }
    }
    dir.log("EMA weights not found at the resumed iteration; restarting the EMA from the model")?;
    Ok(model.valid())
}

/// `L1` or MSE between predicted and true noise (means over all elements).
pub fn noise_loss(pred: Tensor<4>, noise: Tensor<4>, kind: NoiseLoss) -> Tensor<1> {
    match kind {
        NoiseLoss::L1 => (pred - noise).abs().mean(),
        NoiseLoss::Mse => (pred - noise).powi_scalar(2).mean(),
    }
}

/// Batch `t`: scaled latents `z = μ + σ·ε` (ε from the step's stream) and classes (dropped to
/// the "no class" token with probability `class_drop`, for the batch or per sample).
fn draw_batch(
    l: &Latents,
    cfg: &LdmTrainConfig,
    scale: f64,
    shape: [usize; 3],
    t: usize,
    device: &Device,
) -> (Tensor<4>, Option<Vec<usize>>) {
    let n = l.mean.len();
    let mut rng = ChaCha8Rng::seed_from_u64(mgcc_train::trainer::step_seed(cfg.seed ^ 0xba7c, t));
    let epoch_perm = |epoch: usize| {
        let mut p: Vec<usize> = (0..n).collect();
        rand::seq::SliceRandom::shuffle(
            p.as_mut_slice(),
            &mut ChaCha8Rng::seed_from_u64(mgcc_train::trainer::step_seed(
                cfg.seed ^ 0xe90c,
                epoch,
            )),
        );
        p
    };
    let mut cached: Option<(usize, Vec<usize>)> = None;
    let dim = l.mean[0].len();
    let mut data = Vec::with_capacity(cfg.batch * dim);
    let mut classes = Vec::with_capacity(cfg.batch);
    let batch_drop = cfg.class_drop_mode == ClassDrop::Batch && rng.random_bool(cfg.class_drop);
    for j in 0..cfg.batch {
        let p = t * cfg.batch + j;
        let epoch = p / n;
        if cached.as_ref().is_none_or(|c| c.0 != epoch) {
            cached = Some((epoch, epoch_perm(epoch)));
        }
        let i = cached.as_ref().map_or(0, |c| c.1[p % n]);
        for k in 0..dim {
            let e: f64 = StandardNormal.sample(&mut rng);
            data.push(((l.mean[i][k] as f64 + l.std[i][k] as f64 * e) * scale) as f32);
        }
        let drop = match cfg.class_drop_mode {
            ClassDrop::Batch => batch_drop,
            ClassDrop::Sample => rng.random_bool(cfg.class_drop),
        };
        classes.push(match l.class[i] {
            Some(c) if !drop => c,
            _ => cfg.classes.len(),
        });
    }
    let [c, h, w] = shape;
    let x = Tensor::from_data(TensorData::new(data, [cfg.batch, c, h, w]), device);
    (x, (!cfg.classes.is_empty()).then_some(classes))
}

/// Fixed-noise denoising loss at 8 timesteps spread over the schedule (means, no sampling of z).
fn evaluate(
    unet: &Unet,
    schedule: &NoiseSchedule,
    l: &Latents,
    cfg: &LdmTrainConfig,
    info: &LatentInfo,
    device: &Device,
) -> f64 {
    let [c, side, _] = info.shape;
    let dim = c * side * side;
    let scale = info.scale;
    let ts: Vec<usize> = (0..8).map(|i| (i * 2 + 1) * schedule.len() / 16).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(0x6576_616c);
    let mut total = 0.0;
    let mut count = 0usize;
    for (i, mean) in l.mean.iter().enumerate() {
        let x0: Vec<f32> = mean.iter().map(|&v| (v as f64 * scale) as f32).collect();
        let b = ts.len();
        let x0 = Tensor::<4>::from_data(TensorData::new(x0.repeat(b), [b, c, side, side]), device);
        let noise: Vec<f32> = (0..b * dim)
            .map(|_| {
                let v: f64 = StandardNormal.sample(&mut rng);
                v as f32
            })
            .collect();
        let noise = Tensor::<4>::from_data(TensorData::new(noise, [b, c, side, side]), device);
        let xt = schedule.q_sample(x0, noise.clone(), &ts);
        let tf: Vec<f32> = ts.iter().map(|&t| t as f32).collect();
        let classes =
            (!cfg.classes.is_empty()).then(|| vec![l.class[i].unwrap_or(cfg.classes.len()); b]);
        let pred = unet.forward(xt, &tf, classes.as_deref());
        total += noise_loss(pred, noise, cfg.loss).into_scalar::<f32>() as f64;
        count += 1;
    }
    total / count.max(1) as f64
}

/// 8 images from fixed seeds (the default sampler, DDIM), one row per class when
/// class-conditioned.
fn sample_grid(
    unet: &Unet,
    vae: &Vae,
    schedule: &NoiseSchedule,
    cfg: &LdmTrainConfig,
    info: &LatentInfo,
    device: &Device,
) -> Vec<Vec<Vec<f32>>> {
    let sampler_cfg = SamplerConfig {
        steps: cfg.sample_steps,
        ..Default::default()
    };
    let rows: Vec<Option<usize>> = if cfg.classes.is_empty() {
        vec![None]
    } else {
        (0..cfg.classes.len()).map(Some).collect()
    };
    rows.iter()
        .map(|class| {
            let seeds: Vec<u64> = (0..8).collect();
            let classes = class.map(|c| vec![c; seeds.len()]);
            let z = sampler::sample(
                unet,
                schedule,
                &sampler_cfg,
                info.shape,
                &seeds,
                classes.as_deref(),
                device,
            );
            decode_planes(vae, z, info)
        })
        .collect()
}

/// Decode scaled latents to gray planes (`[−1, 1]`, channel mean), one per image.
pub fn decode_planes(vae: &Vae, z: Tensor<4>, info: &LatentInfo) -> Vec<Vec<f32>> {
    let img = vae.decode(z / info.scale).image.clamp(-1.0, 1.0);
    let [b, _, h, w] = img.dims();
    let gray = img.mean_dim(1);
    let v: Vec<f32> = gray.into_data().try_to_vec().unwrap_or_default();
    v.chunks(h * w).take(b).map(<[f32]>::to_vec).collect()
}

fn draw_progress(dir: &RunDir, log: &MetricsLog) -> Result<(), LdmError> {
    progress::draw(
        &dir.progress_png(),
        &[
            Panel {
                title: "training loss",
                series: vec![("loss (smoothed)", train_common::smooth(&log.series("loss")))],
                log_y: true,
            },
            Panel {
                title: "evaluation loss (fixed noise, 8 timesteps)",
                series: vec![("eval loss", log.series("eval_loss"))],
                log_y: false,
            },
        ],
    )
}

/// Whether the denoiser run finished its iterations (used by the pipeline).
pub fn is_trained(run: &Path) -> bool {
    train_common::is_finished(run, |c: &LdmTrainConfig| c.iterations)
}
