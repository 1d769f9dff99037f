//! The training loop: data → step → history/validation/checkpoints, with exact resume.
//!
//! Every random stream is a pure function of the config's seed and the iteration: the labelled
//! subset (seed), the batch order and augmentation (seed, iteration; see the loader), the weight
//! initialisation (seed) and the perturbations of step t (the device RNG re-seeded with
//! `step_seed(seed, t)` before each step). So stopping after N steps and resuming gives exactly
//! the weights of an uninterrupted run on the CPU.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use mgcc_data::{
    AugmentPolicy, Batch, Channels, EvalSample, LoaderConfig, TwoStreamLoader, load_eval_samples,
};
use mgcc_eval::metrics::{self, MetricSummary, SegMetrics};
use mgcc_model::SegNet;

use crate::checkpoint::{self, MODEL_FILE, TrainState};
use crate::config::{Protocol, TrainConfig};
use crate::error::TrainError;
use crate::history::{History, Row, ValRow};
pub use crate::learner::optimizer;
use crate::learner::{Learner, method_weight, save_net};
use crate::methods::StepInput;
use crate::run::{RunFiles, labeled_subset};
use crate::schedule::poly_lr;
use crate::{panel, plot};

/// How this invocation runs (not part of the saved config).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop after this many iterations in total (the run stays resumable), e.g. to time-box.
    pub stop_after: Option<usize>,
    /// Show a progress bar (when stderr is a terminal) rather than plain log lines.
    pub progress_bar: bool,
    /// Print nothing but errors.
    pub quiet: bool,
}

/// What a finished (or stopped) run reached.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    pub run: PathBuf,
    pub iterations_done: usize,
    pub total_iterations: usize,
    pub best_iou: Option<f64>,
    pub best_iteration: Option<usize>,
    pub last_validation: Option<MetricSummary>,
}

/// Seed of the device RNG for step `t` (SplitMix64 of seed and t), so that the perturbations of
/// each step are reproducible without storing RNG state.
pub fn step_seed(seed: u64, t: usize) -> u64 {
    let mut z = seed ^ (t as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Start a new run in `run` and train it. `run` must be absent, an empty folder, or hold
/// nothing but a lock (a folder holding other files is refused, an existing run too: resume
/// it). The folder is locked for this process; every file the run will read is checked first
/// (as `mgcc check` does); if the run fails before its first checkpoint, the folder is removed
/// again (or emptied, when it existed), so the same command can simply be rerun.
pub fn train(
    cfg: TrainConfig,
    run: &Path,
    device: &Device,
    opts: &RunOptions,
) -> Result<TrainOutcome, TrainError> {
    cfg.validate().map_err(TrainError::Invalid)?;
    let cfg = cfg.as_stored();
    RunFiles::ensure_new(run)?;
    let existed = run.exists();
    std::fs::create_dir_all(run).map_err(|e| TrainError::io(run, e))?;
    let started = (|| {
        let lock = mgcc_data::safe_fs::lock::lock_folder(run)?;
        // Another process may have started the same run between the check and the lock.
        RunFiles::ensure_new(run)?;
        let prepared = prepare(&cfg)?;
        let files = RunFiles::create(run, &cfg)?;
        Ok::<_, TrainError>((lock, prepared, files))
    })();
    let result = match started {
        Ok((_lock, prepared, files)) => run_loop(cfg, files, prepared, device, opts, None),
        Err(e) => Err(e),
    };
    if let Err(e) = &result
        && !matches!(
            e,
            TrainError::RunExists { .. }
                | TrainError::NotARunFolder { .. }
                | TrainError::Data(mgcc_data::DataError::Locked { .. })
        )
        && checkpoint::find(run, "last").is_none()
    {
        // Nothing worth keeping: leave the folder as it was found.
        RunFiles::remove_unfinished(run, existed);
    }
    result
}

/// What `--resume` may change in a run.
#[derive(Debug, Clone, Default)]
pub struct ResumeChanges {
    /// New total number of iterations (at least the iterations done): extends (or shortens) the
    /// run. The poly learning-rate schedule follows the new total from the next iteration on.
    pub iterations: Option<usize>,
}

/// Continue the run in `run` exactly where its last checkpoint left off.
pub fn resume(run: &Path, device: &Device, opts: &RunOptions) -> Result<TrainOutcome, TrainError> {
    resume_with(run, &ResumeChanges::default(), device, opts)
}

/// [`resume`], applying `changes` first (recorded in the run's config.toml and log).
pub fn resume_with(
    run: &Path,
    changes: &ResumeChanges,
    device: &Device,
    opts: &RunOptions,
) -> Result<TrainOutcome, TrainError> {
    let (_, _) = RunFiles::open(run)?;
    let _lock = mgcc_data::safe_fs::lock::lock_folder(run)?;
    let (files, mut cfg) = RunFiles::open(run)?;
    let state = match checkpoint::find(run, "last") {
        Some(dir) => Some((dir.clone(), checkpoint::load_state::<TrainState>(&dir)?)),
        None => None,
    };
    let prepared = prepare(&cfg)?;
    if let Some(n) = changes.iterations {
        let done = state.as_ref().map_or(0, |(_, s)| s.iteration);
        if n < done.max(1) {
            return Err(TrainError::Invalid(format!(
                "--iterations {n}: the run has already done {done} iterations; give at least {}",
                done.max(1)
            )));
        }
        if n != prepared.total {
            files.log(&format!(
                "iterations changed from {} to {n} at iteration {done}",
                prepared.total
            ))?;
            cfg.iterations = Some(n);
            files.rewrite_config(&cfg)?;
            return run_loop(
                cfg,
                files,
                Prepared {
                    total: n,
                    ..prepared
                },
                device,
                opts,
                state,
            );
        }
    }
    run_loop(cfg, files, prepared, device, opts, state)
}

/// Everything a run reads from the dataset, resolved before training starts.
struct Prepared {
    labeled: Vec<String>,
    labeled_samples: Vec<mgcc_data::Sample>,
    unlabeled_paths: Vec<PathBuf>,
    val_samples: Vec<EvalSample>,
    total: usize,
    channels: Channels,
    val_every: usize,
}

fn prepare(cfg: &TrainConfig) -> Result<Prepared, TrainError> {
    let data = mgcc_data::Dataset::open(&cfg.data)?;
    let (train_stems, val_stems) =
        mgcc_data::read_split(&cfg.data, cfg.split_name.as_deref(), cfg.split)?;
    let (labeled, unlabeled_stems) = labeled_subset(&train_stems, cfg)?;
    let labeled_samples = data.select(&labeled)?;
    let mut unlabeled_paths: Vec<PathBuf> = Vec::new();
    if cfg.method.uses_unlabeled() {
        unlabeled_paths.extend(data.select(&unlabeled_stems)?.into_iter().map(|s| s.image));
        for dir in &cfg.unlabeled_dirs {
            unlabeled_paths.extend(mgcc_data::unlabeled_images(dir)?);
        }
        if unlabeled_paths.is_empty() {
            return Err(TrainError::Invalid(format!(
                "method {} needs unlabelled images: every train image is labelled and no --unlabeled-dir was given",
                cfg.method
            )));
        }
    }
    // Every file the run will read, checked as `mgcc check` does, all problems at once.
    let val_list = data.select(&val_stems)?;
    let mut to_check = labeled_samples.clone();
    to_check.extend(val_list.iter().cloned());
    if cfg.method.uses_unlabeled() {
        to_check.extend(data.select(&unlabeled_stems)?);
    }
    let extra: Vec<PathBuf> = unlabeled_paths
        .iter()
        .filter(|p| !to_check.iter().any(|s| &s.image == *p))
        .cloned()
        .collect();
    let mut problems: Vec<mgcc_data::Problem> = Vec::new();
    if let Err(mgcc_data::DataError::Invalid { problems: p }) =
        mgcc_data::validate_samples(&to_check)
    {
        problems.extend(p);
    }
    if let Err(mgcc_data::DataError::Invalid { problems: p }) = mgcc_data::validate_images(&extra) {
        problems.extend(p);
    }
    if !problems.is_empty() {
        return Err(mgcc_data::DataError::Invalid { problems }.into());
    }
    let total = cfg.total_iterations(labeled.len(), train_stems.len());
    let channels = if cfg.in_channels == 1 {
        Channels::One
    } else {
        Channels::Three
    };
    let epoch_len = (labeled.len() / cfg.labeled_batch).max(1);
    let val_every = cfg.val_every.unwrap_or(match cfg.protocol {
        Protocol::Default => epoch_len.max(total.div_ceil(100)),
        Protocol::Reference => epoch_len,
    });

    let val_samples = load_eval_samples(&val_list, cfg.size as u32, channels)?;
    Ok(Prepared {
        labeled,
        labeled_samples,
        unlabeled_paths,
        val_samples,
        total,
        channels,
        val_every,
    })
}

fn run_loop(
    cfg: TrainConfig,
    files: RunFiles,
    prepared: Prepared,
    device: &Device,
    opts: &RunOptions,
    resume_from: Option<(PathBuf, TrainState)>,
) -> Result<TrainOutcome, TrainError> {
    let Prepared {
        labeled,
        labeled_samples,
        unlabeled_paths,
        val_samples,
        total,
        channels,
        val_every,
    } = prepared;
    files.write_labeled(&labeled)?;

    // Networks and optimisers: fresh from the seed, or from the last checkpoint.
    let mut learner = Learner::new(&cfg, device);
    let mut state = TrainState {
        iteration: 0,
        best_iou: None,
        best_iteration: None,
    };
    let mut history;
    if let Some((dir, saved)) = resume_from {
        learner = learner.load(&dir)?;
        history = History::resume(&files.metrics_csv(), saved.iteration)?;
        state = saved;
        files.log(&format!(
            "resumed at iteration {} of {}",
            state.iteration, total
        ))?;
    } else {
        history = History::create(&files.metrics_csv())?;
        files.log(&format!(
            "new run: method {} on the {} backbone; {} labelled, {} unlabelled, {} val images; {} iterations; validation every {}",
            cfg.method,
            cfg.backbone.name(),
            labeled.len(),
            unlabeled_paths.len(),
            val_samples.len(),
            total,
            val_every
        ))?;
    }

    let end = opts.stop_after.map_or(total, |s| s.min(total));
    let mut outcome = TrainOutcome {
        run: files.root.clone(),
        iterations_done: state.iteration,
        total_iterations: total,
        best_iou: state.best_iou,
        best_iteration: state.best_iteration,
        last_validation: None,
    };
    if state.iteration >= end {
        return Ok(outcome);
    }

    let mut loader = TwoStreamLoader::new(
        labeled_samples,
        unlabeled_paths,
        LoaderConfig {
            size: cfg.size as u32,
            channels,
            labeled_batch: cfg.labeled_batch,
            unlabeled_batch: cfg.unlabeled_batch(),
            augment: if cfg.augment {
                match cfg.protocol {
                    Protocol::Default => AugmentPolicy::Dihedral,
                    Protocol::Reference => AugmentPolicy::Albumentations,
                }
            } else {
                AugmentPolicy::None
            },
            seed: cfg.seed,
            cache: cfg.cache,
            prefetch: cfg.prefetch,
            start_iteration: state.iteration as u64,
        },
    )?;

    let input_scale = cfg.input_scale();
    let bar = progress_bar(opts, state.iteration, end);
    let started = Instant::now();
    let first = state.iteration;
    for t in state.iteration..end {
        let batch: Batch = loader.next_batch()?;
        let (images, masks) = batch_tensors(&batch, cfg.size, device);
        let lr = poly_lr(t, cfg.lr, total, cfg.lr_power);
        let weight = method_weight(&cfg, t);
        device.seed(step_seed(cfg.seed, t));
        let input = StepInput {
            images: scale_input(images, input_scale),
            masks,
            n_labeled: batch.n_labeled,
            t,
            total,
            weight,
        };
        let (next, losses) = learner.step(input, lr);
        learner = next;
        if !losses.total.is_finite() {
            history.flush()?;
            files.log(&format!(
                "non-finite loss {} at iteration {}",
                losses.total,
                t + 1
            ))?;
            return Err(TrainError::NonFinite {
                iteration: t + 1,
                value: losses.total,
                run: files.root.clone(),
            });
        }
        state.iteration = t + 1;
        history.push(Row {
            iteration: t + 1,
            lr,
            sup_loss: losses.supervised as f64,
            cons_loss: losses.consistency as f64,
            cons_weight: weight,
            val: None,
        });
        if let Some(bar) = &bar {
            bar.set_position((t + 1) as u64);
            bar.set_message(format!("loss {:.4}", losses.total));
        }

        let validate_now = state.iteration.is_multiple_of(val_every) || state.iteration == end;
        if validate_now {
            let valid = learner.net().valid();
            let (per_case, probs) = validate(&valid, &val_samples, input_scale, device);
            let summary = MetricSummary::from_metrics(&per_case)
                .map_err(|e| TrainError::Invalid(format!("validation: {e}")))?;
            let val = ValRow {
                iou: summary.mean.iou,
                dice: summary.mean.dice,
                iou_compat: summary.mean.iou_compat,
                dice_compat: summary.mean.dice_compat,
                precision: summary.mean.precision,
                recall: summary.mean.recall,
                hd95: summary.mean.hd95,
            };
            history.set_last_val(val);
            history.flush()?;
            let improved = state.best_iou.is_none_or(|b| val.iou > b);
            if improved {
                state.best_iou = Some(val.iou);
                state.best_iteration = Some(state.iteration);
                checkpoint::save_with(
                    &files.root,
                    "best",
                    |dir| save_net(&valid, &dir.join(MODEL_FILE)),
                    &state,
                )?;
            }
            checkpoint::save_with(&files.root, "last", |dir| learner.save(dir, true), &state)?;
            plot::draw_progress(&files.progress_png(), &history.rows)?;
            let panel_path = files.panel_png(state.iteration);
            panel::write_val_panel(&panel_path, &val_samples, &probs, cfg.panel_cases, channels)?;
            let line = format!(
                "iter {}/{} lr {:.5} sup {:.4} cons {:.4} (w {:.3}) | val IoU {:.4} Dice {:.4} (compat {:.4}/{:.4}) HD95 {:.1}{} | {:.2} s/it",
                state.iteration,
                total,
                lr,
                losses.supervised,
                losses.consistency,
                weight,
                val.iou,
                val.dice,
                val.iou_compat,
                val.dice_compat,
                val.hd95,
                if improved { " *best*" } else { "" },
                started.elapsed().as_secs_f64() / (state.iteration - first) as f64,
            );
            files.log(&line)?;
            match &bar {
                Some(bar) => bar.println(&line),
                None if !opts.quiet => eprintln!("{line}"),
                None => {}
            }
            outcome.last_validation = Some(summary);
        }
    }
    history.flush()?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    outcome.iterations_done = state.iteration;
    outcome.best_iou = state.best_iou;
    outcome.best_iteration = state.best_iteration;
    files.log(&format!(
        "stopped at iteration {} of {}; best val IoU {:?} at {:?}",
        state.iteration, total, state.best_iou, state.best_iteration
    ))?;
    Ok(outcome)
}

fn progress_bar(opts: &RunOptions, start: usize, end: usize) -> Option<ProgressBar> {
    if opts.quiet || !opts.progress_bar || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(end as u64);
    bar.set_position(start as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    Some(bar)
}

/// Host batch → device tensors: images B×C×S×S and masks L×1×S×S.
pub fn batch_tensors(batch: &Batch, size: usize, device: &Device) -> (Tensor<4>, Tensor<4>) {
    let b = batch.n_labeled + batch.n_unlabeled;
    let images = Tensor::from_data(
        TensorData::new(batch.images.clone(), [b, batch.channels, size, size]),
        device,
    );
    let masks = Tensor::from_data(
        TensorData::new(batch.masks.clone(), [batch.n_labeled, 1, size, size]),
        device,
    );
    (images, masks)
}

/// `x · scale` (the published code's double scaling), `x` itself when `scale` is 1.
pub fn scale_input(x: Tensor<4>, scale: f32) -> Tensor<4> {
    if scale == 1.0 { x } else { x.mul_scalar(scale) }
}

/// Run the (validation-mode) network on each sample at batch 1, inputs multiplied by
/// `input_scale`; per-case metrics and probability maps (S×S, row-major) at the training size.
pub fn validate(
    model: &SegNet,
    samples: &[EvalSample],
    input_scale: f32,
    device: &Device,
) -> (Vec<SegMetrics>, Vec<Vec<f32>>) {
    let mut metrics_out = Vec::with_capacity(samples.len());
    let mut probs_out = Vec::with_capacity(samples.len());
    for s in samples {
        let x = Tensor::<4>::from_data(
            TensorData::new(s.image.clone(), [1, s.channels, s.size, s.size]),
            device,
        );
        let prob = model.predict(scale_input(x, input_scale));
        let prob: Vec<f32> = prob.into_data().try_to_vec::<f32>().unwrap_or_default();
        let gt: Vec<bool> = s.mask.iter().map(|&v| v > 0.5).collect();
        // Lengths agree by construction (both size × size), so this cannot fail.
        if let Ok(m) = metrics::compute(&prob, &gt, s.size, s.size) {
            metrics_out.push(m);
        }
        probs_out.push(prob);
    }
    (metrics_out, probs_out)
}
