//! Executing a plan: each process trains and evaluates the runs of its shard that are neither
//! finished, failed (unless retried) nor claimed by another live process.
//!
//! A run's state is read from the experiment folder, so any number of processes (on one
//! machine or several sharing the folder) can run the same command:
//! - finished: `runs/NAME/eval/summary.json` exists (the validation-split evaluation of its
//!   best checkpoint, written atomically after training);
//! - failed: `runs/NAME.failed.json` holds the error; skipped unless `--retry-failed`;
//! - partial: `runs/NAME/config.toml` exists; training resumes from its last checkpoint (the
//!   saved config must hash to the planned one);
//! - claimed: `runs/NAME.lock` (see [`crate::claim`]).

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::prelude::Device;
use mgcc_data::mask::read_mask_levels;
use mgcc_data::{Channels, Dataset, image_io::read_image, read_split};
use mgcc_eval::metrics::THRESHOLD;
use mgcc_eval::overlay::{contour_overlay, mask_from_prob};
use mgcc_eval::{EvalOptions, InputSpec, evaluate, predict_image, write_reports};
use mgcc_train::run::load_for_inference;
use mgcc_train::{Protocol, RunOptions, TrainConfig};
use serde::{Deserialize, Serialize};

use crate::claim::{ClaimResult, try_claim};
use crate::error::ExperimentError;
use crate::fsutil::{host_name, now_secs, write_atomic};
use crate::plan::{Plan, PlannedRun, config_hash};

/// How this process executes the plan.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// This process's shard `(i, n)`: runs with plan index ≡ i mod n.
    pub shard: (usize, usize),
    /// Retry runs recorded as failed.
    pub retry_failed: bool,
}

/// The record of a failed run, `runs/NAME.failed.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    pub error: String,
    pub host: String,
    pub pid: u32,
    pub time: u64,
}

/// Where a run stands.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    Finished,
    Failed(String),
    Partial,
    Pending,
}

/// The files of a run in the experiment folder.
pub fn run_dir(exp: &Path, run: &PlannedRun) -> PathBuf {
    Plan::run_dir(exp, run)
}

fn failed_path(dir: &Path) -> PathBuf {
    dir.with_extension("failed.json")
}

/// Where `run` stands.
pub fn run_state(exp: &Path, run: &PlannedRun) -> RunState {
    let dir = run_dir(exp, run);
    if dir.join("eval").join("summary.json").is_file() {
        return RunState::Finished;
    }
    if let Ok(text) = std::fs::read_to_string(failed_path(&dir)) {
        let error = serde_json::from_str::<Failure>(&text)
            .map(|f| f.error)
            .unwrap_or(text);
        return RunState::Failed(error);
    }
    if dir.join("config.toml").is_file() {
        RunState::Partial
    } else {
        RunState::Pending
    }
}

/// What this process did.
#[derive(Debug, Default)]
pub struct ExecSummary {
    pub trained: Vec<String>,
    pub already_finished: usize,
    pub held_elsewhere: Vec<String>,
    /// Runs that failed now, with the error.
    pub failed: Vec<(String, String)>,
    /// Runs skipped because an earlier attempt failed.
    pub skipped_failed: Vec<String>,
    /// Seconds spent training and evaluating runs.
    pub run_seconds: f64,
    /// Seconds of the whole execution (runs plus planning, state checks, claims).
    pub total_seconds: f64,
}

/// Measured seconds per iteration, per method, for the plan's ETA.
#[derive(Default)]
struct Pace {
    per_method: HashMap<String, (f64, usize)>,
}

impl Pace {
    fn record(&mut self, method: &str, secs: f64, iterations: usize) {
        let e = self
            .per_method
            .entry(method.to_string())
            .or_insert((0.0, 0));
        e.0 += secs;
        e.1 += iterations;
    }

    fn secs_per_iteration(&self, method: &str) -> Option<f64> {
        let of = |(s, n): (f64, usize)| (n > 0).then(|| s / n as f64);
        self.per_method
            .get(method)
            .copied()
            .and_then(of)
            .or_else(|| {
                let (s, n) = self
                    .per_method
                    .values()
                    .fold((0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
                of((s, n))
            })
    }
}

/// Iterations a planned run takes (its explicit count, else the published 40000 × share).
pub fn planned_iterations(cfg: &TrainConfig) -> usize {
    cfg.iterations
        .unwrap_or_else(|| ((40000.0 * cfg.labeled_fraction).round() as usize).max(1))
}

/// `1h02m`, `4m05s`, `12s`.
pub fn format_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

/// Execute this process's shard of `plan` in `exp`, printing one line per run start and
/// finish through `log`. Training runs on `device` (autodiff is added for training).
pub fn execute(
    exp: &Path,
    plan: &Plan,
    device: &Device,
    opts: &ExecOptions,
    mut log: impl FnMut(&str),
) -> Result<ExecSummary, ExperimentError> {
    let (i, n) = opts.shard;
    if n == 0 || i >= n {
        return Err(ExperimentError::Invalid(format!(
            "shard {i}/{n}: need 0 <= I < N"
        )));
    }
    let begun = Instant::now();
    let mut summary = ExecSummary::default();
    let mut pace = Pace::default();
    let shard = plan.shard(i, n);
    let total = shard.len();
    for (k, run) in shard.into_iter().enumerate() {
        let dir = run_dir(exp, run);
        match run_state(exp, run) {
            RunState::Finished => {
                summary.already_finished += 1;
                continue;
            }
            RunState::Failed(_) if !opts.retry_failed => {
                summary.skipped_failed.push(run.name.clone());
                continue;
            }
            _ => {}
        }
        let claim = match try_claim(&dir)? {
            ClaimResult::Claimed(c) => c,
            ClaimResult::Held(h) => {
                log(&format!(
                    "[{}/{total}] {} is being trained by {} (pid {}); skipped",
                    k + 1,
                    run.name,
                    h.host,
                    h.pid
                ));
                summary.held_elsewhere.push(run.name.clone());
                continue;
            }
        };
        // Another process may have finished it between the check and the claim.
        if run_state(exp, run) == RunState::Finished {
            summary.already_finished += 1;
            continue;
        }
        let _ = std::fs::remove_file(failed_path(&dir));
        let eta = plan_eta(exp, plan, &pace, n);
        log(&format!(
            "[{}/{total}] start {}{}",
            k + 1,
            run.name,
            eta.map_or(String::new(), |e| format!(
                " (plan ETA {})",
                format_duration(e)
            ))
        ));
        let started = Instant::now();
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| execute_run(exp, run, device)))
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                Err(ExperimentError::Invalid(format!("panicked: {what}")))
            });
        let secs = started.elapsed().as_secs_f64();
        summary.run_seconds += secs;
        match result {
            Ok(iou) => {
                pace.record(run.method.name(), secs, planned_iterations(&run.config));
                log(&format!(
                    "[{}/{total}] done  {} in {}: val IoU {iou:.4}",
                    k + 1,
                    run.name,
                    format_duration(secs)
                ));
                summary.trained.push(run.name.clone());
            }
            Err(e) => {
                let failure = Failure {
                    error: e.to_string(),
                    host: host_name(),
                    pid: std::process::id(),
                    time: now_secs(),
                };
                let json = serde_json::to_string_pretty(&failure).expect("serialisable");
                write_atomic(&failed_path(&dir), json.as_bytes())?;
                log(&format!("[{}/{total}] FAILED {}: {e}", k + 1, run.name));
                summary.failed.push((run.name.clone(), e.to_string()));
            }
        }
        drop(claim);
    }
    summary.total_seconds = begun.elapsed().as_secs_f64();
    Ok(summary)
}

/// Remaining time of the whole plan from the measured pace, shared by `n` parallel shards.
fn plan_eta(exp: &Path, plan: &Plan, pace: &Pace, n: usize) -> Option<f64> {
    let mut secs = 0.0;
    for run in &plan.runs {
        if matches!(
            run_state(exp, run),
            RunState::Finished | RunState::Failed(_)
        ) {
            continue;
        }
        secs +=
            pace.secs_per_iteration(run.method.name())? * planned_iterations(&run.config) as f64;
    }
    Some(secs / n as f64)
}

/// Train (or resume) one run, then evaluate its best checkpoint on the split's validation
/// images into `runs/NAME/eval/` (cases.csv, summary.json, overlays of the best and worst
/// case). Returns the mean IoU.
pub fn execute_run(exp: &Path, run: &PlannedRun, device: &Device) -> Result<f64, ExperimentError> {
    let dir = run_dir(exp, run);
    let quiet = RunOptions {
        stop_after: None,
        progress_bar: false,
        quiet: true,
    };
    let ad = device.clone().autodiff();
    let saved = dir.join("config.toml");
    if saved.is_file() {
        let cfg = TrainConfig::from_toml_file(&saved)?;
        // Compared as runs store configs (data folders absolute).
        let planned = config_hash(&run.config.as_stored());
        if config_hash(&cfg.as_stored()) != planned {
            return Err(ExperimentError::Invalid(format!(
                "{} holds a config that differs from the plan's (hash {} vs {}); move the folder away to retrain",
                saved.display(),
                config_hash(&cfg.as_stored()),
                planned
            )));
        }
        mgcc_train::resume(&dir, &ad, &quiet)?;
    } else {
        mgcc_train::train(run.config.clone(), &dir, &ad, &quiet)?;
    }
    evaluate_run(&dir, &run.config, device)
}

/// Evaluate a trained run's best checkpoint on its split's validation images.
pub fn evaluate_run(
    dir: &Path,
    cfg: &TrainConfig,
    device: &Device,
) -> Result<f64, ExperimentError> {
    let loaded = load_for_inference(dir, "best", device)?;
    let data = Dataset::open(&cfg.data)?;
    let (_, val) = read_split(&cfg.data, cfg.split_name.as_deref(), cfg.split)?;
    let samples = data.select(&val)?;
    let spec = InputSpec {
        size: cfg.size,
        channels: if cfg.in_channels == 1 {
            Channels::One
        } else {
            Channels::Three
        },
        scale: cfg.input_scale(),
    };
    let at_train_size = cfg.protocol == Protocol::Reference;
    let cases = evaluate(
        &loaded.model,
        spec,
        &samples,
        device,
        &EvalOptions {
            at_train_size,
            save_masks: None,
        },
    )?;
    // Overlays of the best and the worst case (by IoU) for the report.
    let overlays = dir.join("eval").join("overlays");
    std::fs::create_dir_all(&overlays).map_err(|e| ExperimentError::io(&overlays, e))?;
    let by_iou = |a: &&mgcc_eval::report::CaseMetrics, b: &&mgcc_eval::report::CaseMetrics| {
        a.metrics.iou.total_cmp(&b.metrics.iou)
    };
    let picks = [
        ("best", cases.iter().max_by(by_iou)),
        ("worst", cases.iter().min_by(by_iou)),
    ];
    for (label, case) in picks {
        let Some(case) = case else { continue };
        let Some(sample) = samples.iter().find(|s| s.stem == case.case) else {
            continue;
        };
        let image = read_image(&sample.image)?;
        let pred = predict_image(&loaded.model, spec, &image, device)?;
        let mask = mask_from_prob(&pred.at_image_size, pred.width, pred.height, THRESHOLD)
            .map_err(|e| ExperimentError::Invalid(e.to_string()))?;
        let gt = read_mask_levels(&sample.mask)?;
        let over = contour_overlay(&image, &mask, Some(&gt))
            .map_err(|e| ExperimentError::Invalid(e.to_string()))?;
        let path = overlays.join(format!("{label}.png"));
        over.save(&path)
            .map_err(|e| ExperimentError::Invalid(format!("{}: {e}", path.display())))?;
        let note = overlays.join(format!("{label}.txt"));
        std::fs::write(&note, format!("{}\t{:.4}\n", case.case, case.metrics.iou))
            .map_err(|e| ExperimentError::io(&note, e))?;
    }
    let meta = serde_json::json!({
        "run": dir.display().to_string(),
        "checkpoint": loaded.checkpoint.display().to_string(),
        "source": format!("validation images of split {}", cfg.split),
        "metrics_at": if at_train_size { format!("training size {}", cfg.size) } else { "image size".into() },
    });
    // summary.json last: it marks the run finished.
    let summary = write_reports(&dir.join("eval"), &cases, meta)?;
    Ok(summary.mean.iou)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(12.4), "12s");
        assert_eq!(format_duration(245.0), "4m05s");
        assert_eq!(format_duration(3720.0), "1h02m");
    }

    #[test]
    fn pace_falls_back_to_the_mean_of_measured_methods() {
        let mut p = Pace::default();
        assert_eq!(p.secs_per_iteration("cps"), None);
        p.record("mgcc", 30.0, 100);
        p.record("supervised", 10.0, 100);
        assert_eq!(p.secs_per_iteration("mgcc"), Some(0.3));
        assert_eq!(p.secs_per_iteration("cps"), Some(0.2));
    }
}
