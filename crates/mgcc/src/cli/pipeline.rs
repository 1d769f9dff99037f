//! `mgcc pipeline`: the whole MGCC method on one split — autoencoder → latent denoiser →
//! generated images → quality report → semi-supervised MGCC with the generated images as
//! unlabelled data → evaluation. Every step is skipped when its output is complete and resumed
//! when it was interrupted, so rerunning the same command continues where it stopped.
//!
//! ```text
//! DIR/pipeline.toml   resolved settings ([vae], [ldm], [generate], [mgcc] sections)
//! DIR/vae/  DIR/ldm/  DIR/generated/  DIR/generated/report/  DIR/mgcc/  DIR/mgcc/eval/
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::Device;
use mgcc_diffusion::generate::{GenerateOptions, generate};
use mgcc_diffusion::ldm_train::{self, LdmTrainConfig, train_ldm};
use mgcc_diffusion::quality::{ReportOptions, quality_report};
use mgcc_diffusion::train_common::RunOptions as LdmRunOptions;
use mgcc_diffusion::vae_train::{self, VaeTrainConfig, train_vae};
use mgcc_eval::{EvalOptions, evaluate, write_reports};
use mgcc_train::{RunOptions, TrainConfig};
use serde::{Deserialize, Serialize};

use super::device::DeviceArgs;
use super::run_args::load;

/// All settings of a pipeline (each section as the matching command's config.toml).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    pub vae: VaeTrainConfig,
    pub ldm: LdmTrainConfig,
    pub generate: GenerateOptions,
    /// Skip the quality report.
    pub skip_report: bool,
    pub mgcc: TrainConfig,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            vae: VaeTrainConfig::default(),
            ldm: LdmTrainConfig::default(),
            generate: GenerateOptions {
                n: 500,
                ..Default::default()
            },
            skip_report: false,
            mgcc: TrainConfig::default(),
        }
    }
}

impl PipelineConfig {
    /// A configuration for a CPU: 64² autoencoder with two stages (16×16×8 latents), a
    /// two-level denoiser, and MGCC at width 16, 64² (a few hours on 2 cores).
    pub fn cpu() -> Self {
        let mut c = Self::default();
        c.vae.size = 64;
        c.vae.vae.channels = vec![32, 64, 128];
        c.vae.iterations = 1500;
        c.vae.lr = 1e-3;
        c.vae.val_every = 250;
        c.ldm.unet.channels = vec![64, 64, 128];
        // Medfusion's GroupNorm(32) at its widths 256–1024 puts 8–32 channels in a group; at
        // width 64 it would put 2 (which raised the demo's KID from 0.011 to 0.17). 8 groups
        // keep Medfusion's 8 channels per group at the first width.
        c.ldm.unet.groups = 8;
        c.ldm.unet.emb_dim = 256;
        c.ldm.unet.time_dim = 64;
        c.ldm.batch = 16;
        c.ldm.lr = 5e-4;
        c.ldm.iterations = 3000;
        c.ldm.val_every = 500;
        c.ldm.sample_steps = 25;
        c.generate.n = 200;
        c.generate.sampler.steps = 25;
        c.mgcc.size = 64;
        c.mgcc.width = Some(16);
        c.mgcc.iterations = Some(1000);
        c.mgcc.lr = 0.03;
        c.mgcc.rampup = 500;
        c.mgcc.rampup_step = 10;
        c.mgcc.val_every = Some(50);
        c
    }

    /// Point every stage at DIR/... and the dataset/split.
    pub fn bind(&mut self, data: &Path, split: usize, split_name: Option<&str>, dir: &Path) {
        self.vae.data = data.to_path_buf();
        self.vae.split = Some(split);
        self.vae.split_name = split_name.map(str::to_string);
        self.ldm.data = data.to_path_buf();
        self.ldm.split = Some(split);
        self.ldm.split_name = split_name.map(str::to_string);
        self.ldm.vae_run = dir.join("vae");
        self.mgcc.data = data.to_path_buf();
        self.mgcc.split = split;
        self.mgcc.split_name = split_name.map(str::to_string);
        let generated = dir.join("generated");
        if !self.mgcc.unlabeled_dirs.contains(&generated) {
            self.mgcc.unlabeled_dirs.push(generated);
        }
    }
}

/// Run the whole method (generation stage, then semi-supervised segmentation) on DATA's split K.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  mgcc pipeline data/busi --split 1 --out runs/busi-mgcc                 # paper-sized (GPU)\n  mgcc pipeline data/busi --split 1 --out runs/busi-cpu --preset cpu      # CPU-sized\n  mgcc pipeline data/busi --split 1 --out runs/x --config pipeline.toml   # sections [vae] [ldm] [generate] [mgcc]\nRerun the same command to continue an interrupted pipeline."
)]
pub struct Args {
    /// Dataset folder (MGCC layout with split files).
    pub data: PathBuf,
    /// Split index K.
    #[arg(long)]
    pub split: usize,
    /// Split name when the dataset has several.
    #[arg(long)]
    pub split_name: Option<String>,
    /// Pipeline folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Settings preset: paper (the published sizes) or cpu.
    #[arg(long, default_value = "paper")]
    pub preset: String,
    /// TOML with sections [vae] [ldm] [generate] [mgcc] (keys as in each run's config.toml);
    /// replaces the preset.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Images to generate.
    #[arg(long)]
    pub n_generated: Option<usize>,
    /// Labelled share of the train list for MGCC.
    #[arg(long)]
    pub labeled_fraction: Option<f64>,
    /// Seed of every stage.
    #[arg(long)]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn run(args: Args) -> Result<()> {
    let device = args.device.init()?;
    let saved = args.out.join("pipeline.toml");
    let cfg = if saved.is_file() {
        println!(
            "continuing the pipeline in {} (settings from pipeline.toml)",
            args.out.display()
        );
        mgcc_diffusion::run_dir::read_toml(&saved)?
    } else {
        let mut cfg = match (&args.config, args.preset.as_str()) {
            (Some(p), _) => mgcc_diffusion::run_dir::read_toml(p)?,
            (None, "paper") => PipelineConfig::default(),
            (None, "cpu") => PipelineConfig::cpu(),
            (None, other) => bail!("--preset {other}: expected paper or cpu"),
        };
        if let Some(n) = args.n_generated {
            cfg.generate.n = n;
        }
        if let Some(f) = args.labeled_fraction {
            cfg.mgcc.labeled_fraction = f;
        }
        if let Some(s) = args.seed {
            cfg.vae.seed = s;
            cfg.ldm.seed = s;
            cfg.generate.seed = s;
            cfg.mgcc.seed = s;
        }
        cfg.bind(
            &args.data,
            args.split,
            args.split_name.as_deref(),
            &args.out,
        );
        cfg.mgcc
            .validate()
            .map_err(|e| anyhow::anyhow!("bad [mgcc] configuration: {e}"))?;
        std::fs::create_dir_all(&args.out)?;
        let text = toml::to_string_pretty(&cfg)?;
        mgcc_diffusion::run_dir::write_atomic(&saved, text.as_bytes())?;
        cfg
    };
    let o = run_pipeline(&cfg, &args.out, &device, 1, 6)?;
    println!("Where everything is:");
    println!("  generated images: {}", o.generated.display());
    if let Some(r) = &o.report {
        println!("  generation quality report: {}", r.display());
    }
    println!("  MGCC run: {}", o.mgcc_run.display());
    println!("  per-case metrics and summary: {}", o.eval_dir.display());
    Ok(())
}

/// What the pipeline produced.
pub struct PipelineOutcome {
    pub mgcc_run: PathBuf,
    pub generated: PathBuf,
    pub report: Option<PathBuf>,
    pub eval_dir: PathBuf,
    pub summary: mgcc_eval::metrics::MetricSummary,
    pub best_iteration: Option<usize>,
}

/// Run (or continue) every stage; steps are printed as `[first + i/total]`.
pub fn run_pipeline(
    cfg: &PipelineConfig,
    dir: &Path,
    device: &Device,
    first: usize,
    total: usize,
) -> Result<PipelineOutcome> {
    let step = |i: usize| format!("[{}/{}]", first + i, total);
    let ldm_opts = LdmRunOptions {
        stop_after: None,
        progress_bar: true,
        quiet: false,
    };
    // Autoencoder.
    let vae_dir = dir.join("vae");
    if vae_train::is_trained(&vae_dir) {
        println!("{} autoencoder: done ({})", step(0), vae_dir.display());
    } else {
        println!(
            "{} autoencoder: {}² images, widths {:?}, {} iterations",
            step(0),
            cfg.vae.size,
            cfg.vae.vae.channels,
            cfg.vae.iterations
        );
        let fresh = (!vae_dir.join("config.toml").is_file()).then(|| cfg.vae.clone());
        let o = train_vae(fresh, &vae_dir, device, &ldm_opts).context("autoencoder stage")?;
        println!(
            "    best held-back PSNR {:.2} dB",
            o.best.unwrap_or(f64::NAN)
        );
    }
    // Denoiser.
    let ldm_dir = dir.join("ldm");
    if ldm_train::is_trained(&ldm_dir) {
        println!("{} latent denoiser: done ({})", step(1), ldm_dir.display());
    } else {
        println!(
            "{} latent denoiser: widths {:?}, batch {}, {} iterations",
            step(1),
            cfg.ldm.unet.channels,
            cfg.ldm.batch,
            cfg.ldm.iterations
        );
        let fresh = (!ldm_dir.join("config.toml").is_file()).then(|| cfg.ldm.clone());
        train_ldm(fresh, &ldm_dir, device, &ldm_opts).context("denoiser stage")?;
    }
    // Generation.
    let generated = dir.join("generated");
    let g = generate(&ldm_dir, &generated, &cfg.generate, device).context("generation stage")?;
    println!(
        "{} generated images: {} new, {} already there ({:.2} images/s) in {}",
        step(2),
        g.generated,
        g.skipped,
        g.images_per_second,
        generated.display()
    );
    // Report.
    let report_dir = generated.join("report");
    let report = if cfg.skip_report {
        None
    } else if report_dir.join("report.json").is_file() && g.generated == 0 {
        println!(
            "{} quality report: done ({})",
            step(3),
            report_dir.display()
        );
        Some(report_dir)
    } else {
        let gen_files = mgcc_data::unlabeled_images(&generated)?;
        let real =
            super::ldm::real_images(&cfg.ldm.data, cfg.ldm.split, cfg.ldm.split_name.as_deref())?;
        let r = quality_report(&gen_files, &real, &report_dir, &ReportOptions::default())?;
        println!(
            "{} quality report: near-copies {}/{} ({:.1}%), KID {:.4} ± {:.4}, FID {:.2} ({} features, not Inception: see report.json)",
            step(3),
            r.near_copy_count,
            r.n_generated,
            100.0 * r.near_copy_share,
            r.kid_mean,
            r.kid_std,
            r.fid,
            mgcc_diffusion::quality::FEATURE_SPACE
        );
        Some(report_dir)
    };
    // MGCC with the generated images as unlabelled data.
    let run = dir.join("mgcc");
    let ad = device.clone().autodiff();
    let opts = RunOptions {
        stop_after: None,
        progress_bar: true,
        quiet: false,
    };
    println!(
        "{} MGCC: width {}, {}² inputs, {:.0}% of the train images labelled, unlabelled = the rest + {} generated",
        step(4),
        cfg.mgcc.width(),
        cfg.mgcc.size,
        100.0 * cfg.mgcc.labeled_fraction,
        cfg.generate.n
    );
    let outcome = if run.join("config.toml").is_file() {
        mgcc_train::resume(&run, &ad, &opts)?
    } else {
        mgcc_train::train(cfg.mgcc.clone(), &run, &ad, &opts)?
    };
    // Evaluation of the best checkpoint on the split's val list.
    let (loaded, spec) = load(&run, "best", device)?;
    let ds = mgcc_data::Dataset::open(&cfg.mgcc.data)?;
    let (_, val) = mgcc_data::read_split(
        &cfg.mgcc.data,
        cfg.mgcc.split_name.as_deref(),
        cfg.mgcc.split,
    )?;
    let samples = ds.select(&val)?;
    let cases = evaluate(
        &loaded.model,
        spec,
        &samples,
        device,
        &EvalOptions::default(),
    )?;
    let meta = serde_json::json!({"run": run.display().to_string(), "source": "pipeline val list", "metrics_at": "image size"});
    let eval_dir = run.join("eval");
    let summary = write_reports(&eval_dir, &cases, meta)?;
    println!(
        "{} evaluation on {} val cases: IoU {:.4}  Dice {:.4}  HD95 {:.1} px (best checkpoint, iteration {})",
        step(5),
        summary.n,
        summary.mean.iou,
        summary.mean.dice,
        summary.mean.hd95,
        outcome.best_iteration.unwrap_or(0)
    );
    Ok(PipelineOutcome {
        mgcc_run: run,
        generated,
        report,
        eval_dir,
        summary,
        best_iteration: outcome.best_iteration,
    })
}
