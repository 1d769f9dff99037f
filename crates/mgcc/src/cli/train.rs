//! `mgcc train`: MGCC or one of the baselines (supervised, mean teacher, UA-MT, CCT, CPS, URPC)
//! on a split.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use mgcc_model::Backbone;
use mgcc_train::{Method, Protocol, RunOptions, TrainConfig};

use super::device::DeviceArgs;

/// Train MGCC (or a baseline) on DATA's split K; writes a run folder (config, metrics.csv, log,
/// progress.png, panels, best/last checkpoints). Precedence: flags > --config file > defaults
/// of the published code (MGCC's for mgcc, SSL4MIS's for the baselines).
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Methods (docs/methods.md): supervised, mean-teacher, ua-mt, cct, cps, urpc, mgcc.\n\nExamples:\n  mgcc train data/busi --split 1 --out runs/busi1\n  mgcc train data/busi --split 1 --out runs/sup --method supervised --labeled-fraction 0.25\n  mgcc train data/busi --split 1 --out runs/mt --method mean-teacher --backbone unet\n  mgcc train data/busi --split 1 --out runs/ref --protocol reference\n  mgcc train --resume runs/busi1"
)]
pub struct Args {
    /// Dataset folder (images/, masks/0/, NAME_train{K}.txt, NAME_val{K}.txt).
    pub data: Option<PathBuf>,
    /// Split index K (required, here or as `split = K` in --config).
    #[arg(long)]
    pub split: Option<usize>,
    /// Split name when the dataset has several (NAME_train{K}.txt).
    #[arg(long)]
    pub split_name: Option<String>,
    /// Run folder to create.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in this folder exactly where its last checkpoint left off. Only
    /// --iterations (a new total, e.g. to extend the run), --stop-after, --no-progress and the
    /// device flags may be given with it.
    #[arg(long, conflicts_with_all = ["data", "out", "config"])]
    pub resume: Option<PathBuf>,
    /// TOML file with any of the training settings (keys as in a run's config.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// supervised, mean-teacher, ua-mt, cct, cps, urpc or mgcc [default: mgcc].
    #[arg(long)]
    pub method: Option<Method>,
    /// Network: mgcc (CMU-Net style with ConvMixers) or unet (SSL4MIS's UNet) [default: mgcc].
    #[arg(long)]
    pub backbone: Option<Backbone>,
    /// default, or reference: the published MGCC code's protocol (first p·N stems labelled,
    /// rotate90/flip each with p = 0.5, validation every epoch, evaluation on the training grid).
    #[arg(long)]
    pub protocol: Option<Protocol>,
    /// Quirk of the published code: divide the normalised input by 255 a second time.
    #[arg(long)]
    pub quirk_double_scaling: bool,
    /// Share of the train list that keeps its masks [default: 0.5].
    #[arg(long)]
    pub labeled_fraction: Option<f64>,
    /// Exact number of labelled images (overrides --labeled-fraction).
    #[arg(long)]
    pub labeled_count: Option<usize>,
    /// Extra folder of unlabelled images, e.g. generated ones (repeatable).
    #[arg(long = "unlabeled-dir")]
    pub unlabeled_dirs: Vec<PathBuf>,
    /// Images per batch [default: 8].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Labelled images per batch [default: 4].
    #[arg(long)]
    pub labeled_batch: Option<usize>,
    /// Training size, a multiple of 16 [default: 256].
    #[arg(long)]
    pub size: Option<usize>,
    /// First-level network width [default: 64 for mgcc, 16 for unet].
    #[arg(long)]
    pub width: Option<usize>,
    /// Input channels, 3 or 1 [default: 3].
    #[arg(long)]
    pub in_channels: Option<usize>,
    /// Total iterations [default: 40000 x labelled share].
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Base learning rate [default: 0.01].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Maximum consistency weight C [default: 7 for mgcc, 0.1 for the other methods].
    #[arg(long)]
    pub consistency: Option<f64>,
    /// Consistency ramp-up length in iterations [default: 30000].
    #[arg(long)]
    pub rampup: Option<usize>,
    /// The ramp is stepped every N iterations [default: 150, as the published code].
    #[arg(long)]
    pub rampup_step: Option<usize>,
    /// Validate every N iterations [default: once per epoch, at most 100 times a run].
    #[arg(long)]
    pub val_every: Option<usize>,
    /// Seed of every random stream [default: 41].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Turn off the random rotation/flip augmentation.
    #[arg(long)]
    pub no_augment: bool,
    /// Stop after this many iterations in total; the run stays resumable.
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// Plain log lines instead of a progress bar.
    #[arg(long)]
    pub no_progress: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

impl Args {
    /// Resolve flags over the config file over the defaults.
    pub fn resolve(&self) -> Result<TrainConfig> {
        let mut cfg = match &self.config {
            Some(path) => TrainConfig::from_toml_file(path)?,
            None => TrainConfig::default(),
        };
        if let Some(v) = &self.data {
            cfg.data = v.clone();
        }
        if cfg.data.as_os_str().is_empty() {
            bail!("no dataset given: pass DATA (or `data = ...` in --config)");
        }
        if self.split.is_none() && !self.config_sets("split")? {
            let names = (1..=20)
                .filter(|k| {
                    mgcc_data::split::split_names(&cfg.data, *k).is_ok_and(|n| !n.is_empty())
                })
                .map(|k| k.to_string())
                .collect::<Vec<_>>();
            bail!(
                "which split? pass --split K (the dataset has splits {})",
                if names.is_empty() {
                    "none yet: make them with `mgcc split DATA`".to_string()
                } else {
                    names.join(", ")
                }
            );
        }
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field.clone() { cfg.$field = v; } )* };
        }
        set!(
            split,
            method,
            backbone,
            protocol,
            labeled_fraction,
            batch,
            labeled_batch,
            size,
            in_channels,
            lr,
            rampup,
            rampup_step,
            seed
        );
        if self.width.is_some() {
            cfg.width = self.width;
        }
        if self.consistency.is_some() {
            cfg.consistency = self.consistency;
        }
        if self.quirk_double_scaling {
            cfg.quirk_double_scaling = true;
        }
        if self.split_name.is_some() {
            cfg.split_name = self.split_name.clone();
        }
        if self.labeled_count.is_some() {
            cfg.labeled_count = self.labeled_count;
        }
        if self.iterations.is_some() {
            cfg.iterations = self.iterations;
        }
        if self.val_every.is_some() {
            cfg.val_every = self.val_every;
        }
        if !self.unlabeled_dirs.is_empty() {
            cfg.unlabeled_dirs = self.unlabeled_dirs.clone();
        }
        if self.no_augment {
            cfg.augment = false;
        }
        cfg.validate()
            .map_err(|e| anyhow::anyhow!("bad configuration: {e}"))?;
        Ok(cfg)
    }
}

impl Args {
    /// Whether the --config file sets `key` at its top level.
    fn config_sets(&self, key: &str) -> Result<bool> {
        let Some(path) = &self.config else {
            return Ok(false);
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        Ok(text
            .parse::<toml::Table>()
            .map(|t| t.contains_key(key))
            .unwrap_or(false))
    }

    /// Training flags given with --resume that a resume cannot honour.
    fn flags_resume_ignores(&self) -> Vec<&'static str> {
        let set = [
            ("--split", self.split.is_some()),
            ("--split-name", self.split_name.is_some()),
            ("--method", self.method.is_some()),
            ("--backbone", self.backbone.is_some()),
            ("--protocol", self.protocol.is_some()),
            ("--quirk-double-scaling", self.quirk_double_scaling),
            ("--labeled-fraction", self.labeled_fraction.is_some()),
            ("--labeled-count", self.labeled_count.is_some()),
            ("--unlabeled-dir", !self.unlabeled_dirs.is_empty()),
            ("--batch", self.batch.is_some()),
            ("--labeled-batch", self.labeled_batch.is_some()),
            ("--size", self.size.is_some()),
            ("--width", self.width.is_some()),
            ("--in-channels", self.in_channels.is_some()),
            ("--lr", self.lr.is_some()),
            ("--consistency", self.consistency.is_some()),
            ("--rampup", self.rampup.is_some()),
            ("--rampup-step", self.rampup_step.is_some()),
            ("--val-every", self.val_every.is_some()),
            ("--seed", self.seed.is_some()),
            ("--no-augment", self.no_augment),
        ];
        set.iter().filter(|(_, on)| *on).map(|(f, _)| *f).collect()
    }
}

pub fn run(args: Args) -> Result<()> {
    let device = args.device.init()?;
    let opts = RunOptions {
        stop_after: args.stop_after,
        progress_bar: !args.no_progress,
        quiet: false,
    };
    let outcome = if let Some(run) = &args.resume {
        let refused = args.flags_resume_ignores();
        if !refused.is_empty() {
            bail!(
                "{} cannot change a run being resumed (its settings are in {}); only --iterations, --stop-after, --no-progress and the device flags may be given with --resume",
                refused.join(", "),
                run.join("config.toml").display()
            );
        }
        let changes = mgcc_train::ResumeChanges {
            iterations: args.iterations,
        };
        mgcc_train::resume_with(run, &changes, &device.autodiff(), &opts)
            .with_context(|| format!("resuming {}", run.display()))?
    } else {
        let out = args
            .out
            .clone()
            .context("--out RUN is required (the run folder to create)")?;
        let cfg = args.resolve()?;
        mgcc_train::train(cfg, &out, &device.autodiff(), &opts)?
    };
    println!(
        "run {}: {} of {} iterations; best val IoU {} (iteration {})",
        outcome.run.display(),
        outcome.iterations_done,
        outcome.total_iterations,
        outcome.best_iou.map_or("-".into(), |v| format!("{v:.4}")),
        outcome.best_iteration.map_or("-".into(), |v| v.to_string()),
    );
    Ok(())
}
