//! `mgcc ldm …`: the generation stage (autoencoder, latent denoiser, sampling, quality report).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use mgcc_diffusion::generate::{GenerateOptions, generate};
use mgcc_diffusion::ldm_train::{ClassDrop, LdmTrainConfig, NoiseLoss, train_ldm};
use mgcc_diffusion::quality::{ReportOptions, quality_report};
use mgcc_diffusion::run_dir::read_toml;
use mgcc_diffusion::sampler::{SamplerConfig, SamplerKind};
use mgcc_diffusion::schedule::BetaKind;
use mgcc_diffusion::train_common::{Outcome, RunOptions};
use mgcc_diffusion::vae_train::{PixelLoss, VaeTrainConfig, train_vae};

use super::device::DeviceArgs;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Train the autoencoder (image ↔ 8-channel latent); resumable.
    TrainVae(TrainVaeArgs),
    /// Train the latent denoiser on a trained autoencoder's latents; resumable.
    Train(TrainArgs),
    /// Generate images with a trained denoiser (DDIM/DDPM, guidance); resumable.
    Generate(GenerateArgs),
    /// Quality report of generated images against the real training images.
    Report(ReportArgs),
    /// Time autoencoder and denoiser training steps and DDIM sampling (JSON lines).
    Bench(super::ldm_bench::Args),
}

pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::TrainVae(a) => run_train_vae(a),
        Command::Train(a) => run_train(a),
        Command::Generate(a) => run_generate(a),
        Command::Report(a) => run_report(a),
        Command::Bench(a) => super::ldm_bench::run(a),
    }
}

/// Options every training command shares.
#[derive(clap::Args, Debug)]
pub struct Common {
    /// Run folder to create.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in this folder where its last checkpoint left off.
    #[arg(long, conflicts_with_all = ["out", "config"])]
    pub resume: Option<PathBuf>,
    /// TOML file with any settings (keys as in a run's config.toml); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Train on the train list of split K only (so validation images never reach the generator).
    #[arg(long)]
    pub split: Option<usize>,
    /// Split name when the dataset has several.
    #[arg(long)]
    pub split_name: Option<String>,
    /// Total iterations.
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Images per batch.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Seed of every random stream [default: 41].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Validate, checkpoint and write samples every N iterations.
    #[arg(long)]
    pub val_every: Option<usize>,
    /// Turn off horizontal-flip augmentation.
    #[arg(long)]
    pub no_flip: bool,
    /// Stop after this many iterations in total; the run stays resumable.
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// Plain log lines instead of a progress bar.
    #[arg(long)]
    pub no_progress: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// The fields of a training config that [`Common`]'s flags set.
pub struct Shared<'a> {
    pub iterations: &'a mut usize,
    pub batch: &'a mut usize,
    pub lr: &'a mut f64,
    pub seed: &'a mut u64,
    pub val_every: &'a mut usize,
    pub split: &'a mut Option<usize>,
    pub split_name: &'a mut Option<String>,
    pub flip: &'a mut bool,
}

/// `dst = src` when the flag was given.
fn set<T: Clone>(src: &Option<T>, dst: &mut T) {
    if let Some(v) = src {
        *dst = v.clone();
    }
}

impl Common {
    /// Apply the shared flags over a config (flags win over the config file).
    fn apply(&self, to: Shared<'_>) {
        set(&self.iterations, to.iterations);
        set(&self.batch, to.batch);
        set(&self.lr, to.lr);
        set(&self.seed, to.seed);
        set(&self.val_every, to.val_every);
        if self.split.is_some() {
            *to.split = self.split;
            *to.split_name = self.split_name.clone();
        }
        if self.no_flip {
            *to.flip = false;
        }
    }

    fn options(&self) -> RunOptions {
        RunOptions {
            stop_after: self.stop_after,
            progress_bar: !self.no_progress,
            quiet: false,
        }
    }
}

/// Parse "64,128,256" into widths.
pub fn parse_widths(s: &str) -> Result<Vec<usize>, String> {
    s.split(',')
        .map(|v| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| format!("{s:?}: expected comma-separated widths like 64,128,256"))
        })
        .collect()
}

/// Train the Medfusion autoencoder on DATA's images. Loss as Medfusion's: squared error summed
/// over each image + C·H·W·(1 − SSIM) per image, at full and half resolution, + 1e-6·KL
/// (LPIPS is not implemented; docs/generation.md). Reports held-back PSNR/SSIM.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  mgcc ldm train-vae data/busi --split 1 --out runs/vae\n  mgcc ldm train-vae data/phantom --out runs/vae-cpu --size 64 --channels 32,64,128 --iterations 2000\n  mgcc ldm train-vae --resume runs/vae"
)]
pub struct TrainVaeArgs {
    /// Dataset (MGCC layout) or a folder of images.
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
    /// Image size, a multiple of 2^stages [default: 256].
    #[arg(long)]
    pub size: Option<usize>,
    /// Widths at full resolution and after each stride-2 stage [default: 64,128,256,512].
    #[arg(long)]
    pub channels: Option<String>,
    /// Latent channels [default: 8].
    #[arg(long)]
    pub latent_channels: Option<usize>,
    /// Image channels, 3 or 1 [default: 3].
    #[arg(long)]
    pub in_channels: Option<usize>,
    /// Leave out the half-resolution output head of the loss (Medfusion's deep supervision,
    /// on by default).
    #[arg(long)]
    pub no_deep_supervision: bool,
    /// mse or l1 [default: mse].
    #[arg(long)]
    pub pixel_loss: Option<String>,
    /// Share of images held back for PSNR/SSIM [default: 0.1].
    #[arg(long)]
    pub holdout_fraction: Option<f64>,
    /// LPIPS weights file: not implemented in this version (the option is refused).
    #[arg(long)]
    pub perceptual_weights: Option<PathBuf>,
}

fn run_train_vae(a: TrainVaeArgs) -> Result<()> {
    let device = a.common.device.init()?;
    let opts = a.common.options();
    let outcome = if let Some(run) = &a.common.resume {
        train_vae(None, run, &device, &opts)
            .with_context(|| format!("resuming {}", run.display()))?
    } else {
        let out = a
            .common
            .out
            .clone()
            .context("--out RUN is required (the run folder to create)")?;
        let mut cfg: VaeTrainConfig = match &a.common.config {
            Some(p) => read_toml(p)?,
            None => VaeTrainConfig::default(),
        };
        if let Some(d) = &a.data {
            cfg.data = d.clone();
        }
        if cfg.data.as_os_str().is_empty() {
            bail!("no dataset given: pass DATA (or `data = ...` in --config)");
        }
        let c = &a.common;
        c.apply(Shared {
            iterations: &mut cfg.iterations,
            batch: &mut cfg.batch,
            lr: &mut cfg.lr,
            seed: &mut cfg.seed,
            val_every: &mut cfg.val_every,
            split: &mut cfg.split,
            split_name: &mut cfg.split_name,
            flip: &mut cfg.flip,
        });
        set(&a.size, &mut cfg.size);
        if let Some(w) = &a.channels {
            cfg.vae.channels = parse_widths(w).map_err(anyhow::Error::msg)?;
        }
        set(&a.latent_channels, &mut cfg.vae.latent_channels);
        set(&a.in_channels, &mut cfg.vae.in_channels);
        set(&a.holdout_fraction, &mut cfg.holdout_fraction);
        if a.no_deep_supervision {
            cfg.vae.deep_supervision = false;
        }
        if let Some(p) = &a.pixel_loss {
            cfg.pixel_loss = match p.as_str() {
                "l1" => PixelLoss::L1,
                "mse" => PixelLoss::Mse,
                other => bail!("--pixel-loss {other}: expected l1 or mse"),
            };
        }
        if a.perceptual_weights.is_some() {
            cfg.perceptual_weights = a.perceptual_weights.clone();
        }
        train_vae(Some(cfg), &out, &device, &opts)?
    };
    print_outcome(&outcome, "best held-back PSNR", " dB");
    Ok(())
}

fn print_outcome(o: &Outcome, what: &str, unit: &str) {
    println!(
        "run {}: {} of {} iterations; {what} {} (iteration {})",
        o.run.display(),
        o.iterations_done,
        o.total_iterations,
        o.best.map_or("-".into(), |v| format!("{v:.4}{unit}")),
        o.best_iteration.map_or("-".into(), |v| v.to_string()),
    );
}

/// Train the latent denoiser (ε-prediction UNet on the autoencoder's 8-channel latents), class
/// conditioned when the dataset's manifest has classes.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  mgcc ldm train data/busi --split 1 --vae runs/vae --out runs/ldm\n  mgcc ldm train data/phantom --vae runs/vae-cpu --out runs/ldm-cpu --channels 64,64,128 --emb-dim 256 --batch 16 --iterations 3000\n  mgcc ldm train --resume runs/ldm"
)]
pub struct TrainArgs {
    /// Dataset (MGCC layout) or a folder of images.
    pub data: Option<PathBuf>,
    /// Run folder of the trained autoencoder.
    #[arg(long)]
    pub vae: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
    /// UNet widths: the input conv's, then per level [default: 256,256,512,1024].
    #[arg(long)]
    pub channels: Option<String>,
    /// Residual blocks per encoder level (the decoder has one more) [default: 2].
    #[arg(long)]
    pub blocks: Option<usize>,
    /// Sinusoidal time-embedding width [default: 256].
    #[arg(long)]
    pub time_dim: Option<usize>,
    /// Conditioning-vector width [default: 1024].
    #[arg(long)]
    pub emb_dim: Option<usize>,
    /// Self-attention at the lowest resolution.
    #[arg(long)]
    pub attention: bool,
    /// Noise schedule: scaled_linear, linear or cosine [default: scaled_linear].
    #[arg(long)]
    pub schedule: Option<BetaKind>,
    /// Diffusion steps T [default: 1000].
    #[arg(long)]
    pub timesteps: Option<usize>,
    /// Train unconditionally even when the dataset has classes.
    #[arg(long)]
    pub no_class: bool,
    /// Probability of dropping the class in training [default: 0.5].
    #[arg(long)]
    pub class_drop: Option<f64>,
    /// Drop the class for the whole batch (Medfusion) or per sample [default: batch].
    #[arg(long)]
    pub class_drop_mode: Option<ClassDrop>,
    /// Train on the autoencoder's raw latents, as Medfusion (default: scaled to unit standard
    /// deviation, as Stable Diffusion).
    #[arg(long)]
    pub no_latent_scaling: bool,
    /// Keep an EMA of the weights with this decay and sample with it (e.g. 0.999).
    #[arg(long)]
    pub ema_decay: Option<f64>,
    /// l1 or mse on the noise [default: l1].
    #[arg(long)]
    pub loss: Option<String>,
    /// AdamW weight decay [default: 0.01].
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Share of images held back for the evaluation loss [default: 0].
    #[arg(long)]
    pub holdout_fraction: Option<f64>,
    /// DDIM steps of the sample grid written at each validation [default: 50].
    #[arg(long)]
    pub sample_steps: Option<usize>,
}

fn run_train(a: TrainArgs) -> Result<()> {
    let device = a.common.device.init()?;
    let opts = a.common.options();
    let outcome = if let Some(run) = &a.common.resume {
        train_ldm(None, run, &device, &opts)
            .with_context(|| format!("resuming {}", run.display()))?
    } else {
        let out = a
            .common
            .out
            .clone()
            .context("--out RUN is required (the run folder to create)")?;
        let mut cfg: LdmTrainConfig = match &a.common.config {
            Some(p) => read_toml(p)?,
            None => LdmTrainConfig::default(),
        };
        if let Some(d) = &a.data {
            cfg.data = d.clone();
        }
        if let Some(v) = &a.vae {
            cfg.vae_run = v.clone();
        }
        if cfg.data.as_os_str().is_empty() {
            bail!("no dataset given: pass DATA (or `data = ...` in --config)");
        }
        if cfg.vae_run.as_os_str().is_empty() {
            bail!("no autoencoder given: pass --vae RUN_VAE (a run of `mgcc ldm train-vae`)");
        }
        let c = &a.common;
        c.apply(Shared {
            iterations: &mut cfg.iterations,
            batch: &mut cfg.batch,
            lr: &mut cfg.lr,
            seed: &mut cfg.seed,
            val_every: &mut cfg.val_every,
            split: &mut cfg.split,
            split_name: &mut cfg.split_name,
            flip: &mut cfg.flip,
        });
        if let Some(w) = &a.channels {
            cfg.unet.channels = parse_widths(w).map_err(anyhow::Error::msg)?;
        }
        set(&a.blocks, &mut cfg.unet.blocks);
        set(&a.time_dim, &mut cfg.unet.time_dim);
        set(&a.emb_dim, &mut cfg.unet.emb_dim);
        set(&a.schedule, &mut cfg.schedule.kind);
        set(&a.timesteps, &mut cfg.schedule.timesteps);
        set(&a.class_drop, &mut cfg.class_drop);
        set(&a.class_drop_mode, &mut cfg.class_drop_mode);
        if a.no_latent_scaling {
            cfg.latent_scaling = false;
        }
        set(&a.weight_decay, &mut cfg.weight_decay);
        set(&a.holdout_fraction, &mut cfg.holdout_fraction);
        set(&a.sample_steps, &mut cfg.sample_steps);
        if a.ema_decay.is_some() {
            cfg.ema_decay = a.ema_decay;
        }
        if a.attention {
            cfg.unet.attention = true;
        }
        if a.no_class {
            cfg.class_conditioning = false;
        }
        if let Some(l) = &a.loss {
            cfg.loss = match l.as_str() {
                "l1" => NoiseLoss::L1,
                "mse" => NoiseLoss::Mse,
                other => bail!("--loss {other}: expected l1 or mse"),
            };
        }
        train_ldm(Some(cfg), &out, &device, &opts)?
    };
    print_outcome(&outcome, "best evaluation loss", "");
    Ok(())
}

/// Generate images into a folder that `mgcc train --unlabeled-dir` reads. Image i depends only
/// on (seed, i): rerunning skips images that exist.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  mgcc ldm generate runs/ldm --n 500 --out gen/busi\n  mgcc ldm generate runs/ldm --n 200 --out gen/malignant --class malignant --guidance 3\n  mgcc ldm generate runs/ldm --n 100 --out gen/noise --decode-noise   # baseline for the report"
)]
pub struct GenerateArgs {
    /// Run folder of the trained denoiser.
    pub run: PathBuf,
    /// Number of images.
    #[arg(long)]
    pub n: usize,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Sampling steps.
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// ddim or ddpm.
    #[arg(long, default_value = "ddim")]
    pub sampler: SamplerKind,
    /// DDIM η (0: deterministic given the seed's start noise; 1: Medfusion's default).
    #[arg(long, default_value_t = 1.0)]
    pub eta: f64,
    /// Classifier-free guidance scale (1: conditional model alone).
    #[arg(long, default_value_t = 1.0)]
    pub guidance: f64,
    /// Clamp the predicted clean latent to ±C at each step (0: off, Medfusion's default; 5 suits
    /// scaled latents).
    #[arg(long, default_value_t = 0.0)]
    pub clip_x0: f64,
    /// Class to generate (default: unconditional).
    #[arg(long)]
    pub class: Option<String>,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Images per batch.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Decode Gaussian latents without the denoiser (the report's baseline).
    #[arg(long)]
    pub decode_noise: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

fn run_generate(a: GenerateArgs) -> Result<()> {
    let device = a.device.init()?;
    let opts = GenerateOptions {
        n: a.n,
        sampler: SamplerConfig {
            kind: a.sampler,
            steps: a.steps,
            eta: a.eta,
            guidance: a.guidance,
            clip_x0: (a.clip_x0 > 0.0).then_some(a.clip_x0),
        },
        class: a.class.clone(),
        seed: a.seed,
        batch: a.batch,
        decode_noise: a.decode_noise,
    };
    let s = generate(&a.run, &a.out, &opts, &device)?;
    println!(
        "{}: {} images generated, {} already there; {:.1} s ({:.3} images/s)",
        s.out.display(),
        s.generated,
        s.skipped,
        s.seconds,
        s.images_per_second
    );
    Ok(())
}

/// Sample grid, nearest real image of each generated one (pixels and features), near-copy share,
/// diversity, intensity-histogram distance, KID and FID in a stated (non-Inception) feature space.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  mgcc ldm report gen/busi --real data/busi --split 1 --out reports/busi"
)]
pub struct ReportArgs {
    /// Folder of generated images.
    pub generated: PathBuf,
    /// Real images: a dataset (MGCC layout) or a folder of images.
    #[arg(long)]
    pub real: PathBuf,
    /// Compare with the train list of split K only (the images the generator saw).
    #[arg(long)]
    pub split: Option<usize>,
    #[arg(long)]
    pub split_name: Option<String>,
    /// Report folder [default: GENERATED/report].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Comparison size (gray, size×size).
    #[arg(long, default_value_t = 64)]
    pub size: u32,
    /// Near-copy threshold as a share of the median real-to-real nearest distance.
    #[arg(long, default_value_t = 0.5)]
    pub near_copy_ratio: f64,
    /// Seed of the KID subsets.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Image paths of a dataset (optionally one split's train list) or a plain folder.
pub fn real_images(
    data: &Path,
    split: Option<usize>,
    split_name: Option<&str>,
) -> Result<Vec<PathBuf>> {
    if data.join("images").is_dir() && data.join("masks").is_dir() {
        let ds = mgcc_data::Dataset::open(data)?;
        let stems = match split {
            Some(k) => mgcc_data::read_split(data, split_name, k)?.0,
            None => ds.stems(),
        };
        Ok(ds.select(&stems)?.into_iter().map(|s| s.image).collect())
    } else {
        if split.is_some() {
            bail!(
                "{}: --split needs a dataset in the MGCC layout",
                data.display()
            );
        }
        Ok(mgcc_data::unlabeled_images(data)?)
    }
}

fn run_report(a: ReportArgs) -> Result<()> {
    let generated = mgcc_data::unlabeled_images(&a.generated)?;
    let real = real_images(&a.real, a.split, a.split_name.as_deref())?;
    let out = a.out.clone().unwrap_or_else(|| a.generated.join("report"));
    let opts = ReportOptions {
        size: a.size,
        near_copy_ratio: a.near_copy_ratio,
        seed: a.seed,
        ..Default::default()
    };
    let r = quality_report(&generated, &real, &out, &opts)?;
    println!("{}", serde_json::to_string_pretty(&r)?);
    println!("report written to {}", out.display());
    Ok(())
}
