//! What the autoencoder and denoiser training loops share: run start/resume, progress state
//! stored with checkpoints, the progress bar, and loss smoothing for plots.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::LdmError;
use crate::run_dir::RunDir;

/// How this invocation runs (not part of the saved config).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop after this many iterations in total (the run stays resumable).
    pub stop_after: Option<usize>,
    /// Show a progress bar when stderr is a terminal.
    pub progress_bar: bool,
    /// Print nothing but errors.
    pub quiet: bool,
}

/// Progress stored with every checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimiser steps completed.
    pub iteration: usize,
    /// Best validation score so far (PSNR for the autoencoder, lowest held-out loss negated
    /// for the denoiser: higher is better).
    pub best: Option<f64>,
    pub best_iteration: Option<usize>,
}

/// What a finished (or stopped) run reached.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub run: PathBuf,
    pub iterations_done: usize,
    pub total_iterations: usize,
    pub best: Option<f64>,
    pub best_iteration: Option<usize>,
}

/// A run folder, its config and, when resuming, the last checkpoint and its state.
pub type Started<C> = (RunDir, C, Option<(PathBuf, TrainState)>);

/// With a config: create a new run (validated first, so a bad config leaves nothing behind).
/// Without: open the run in `run` and its last checkpoint, if any.
pub fn start_or_resume<C: Serialize + DeserializeOwned>(
    cfg: Option<C>,
    run: &Path,
    validate: impl Fn(&C) -> Result<(), String>,
) -> Result<Started<C>, LdmError> {
    match cfg {
        Some(cfg) => {
            validate(&cfg).map_err(LdmError::Invalid)?;
            RunDir::ensure_new(run)?;
            std::fs::create_dir_all(run).map_err(|e| LdmError::io(run, e))?;
            let lock = mgcc_data::safe_fs::lock::lock_folder(run)?;
            // Another process may have started the same run between the check and the lock.
            RunDir::ensure_new(run)?;
            let mut dir = RunDir::create(run, &cfg)?;
            dir.lock = Some(std::sync::Arc::new(lock));
            Ok((dir, cfg, None))
        }
        None => {
            let (mut dir, cfg) = RunDir::open::<C>(run)?;
            dir.lock()?;
            validate(&cfg).map_err(|m| LdmError::Config {
                path: run.join(crate::run_dir::CONFIG_FILE),
                message: m,
            })?;
            let state = match mgcc_train::checkpoint::find(run, "last") {
                Some(ckpt) => {
                    let s = mgcc_train::checkpoint::load_state::<TrainState>(&ckpt)?;
                    Some((ckpt, s))
                }
                None => None,
            };
            Ok((dir, cfg, state))
        }
    }
}

/// Whether the run in `run` has a `last` checkpoint at its configured number of iterations
/// (`total` reads that number from the run's config).
pub fn is_finished<C: DeserializeOwned>(run: &Path, total: impl Fn(&C) -> usize) -> bool {
    let Some(dir) = mgcc_train::checkpoint::find(run, "last") else {
        return false;
    };
    let state = mgcc_train::checkpoint::load_state::<TrainState>(&dir);
    let cfg = RunDir::open::<C>(run);
    matches!((state, cfg), (Ok(s), Ok((_, c))) if s.iteration >= total(&c))
}

/// A progress bar with ETA on a terminal, plain lines otherwise.
pub struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl Progress {
    pub fn new(opts: &RunOptions, start: usize, end: usize) -> Self {
        let bar =
            (!opts.quiet && opts.progress_bar && std::io::stderr().is_terminal()).then(|| {
                let bar = ProgressBar::new(end as u64);
                bar.set_position(start as u64);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{bar:40} {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar
            });
        Self {
            bar,
            quiet: opts.quiet,
        }
    }

    pub fn tick(&self, position: usize, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_position(position as u64);
            bar.set_message(message.to_string());
        }
    }

    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None if !self.quiet => eprintln!("{line}"),
            None => {}
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Moving average over a window of 1/50 of the points (at least 1), for noisy loss curves.
pub fn smooth(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let w = (points.len() / 50).max(1);
    let mut out = Vec::with_capacity(points.len());
    let mut acc = 0.0;
    for (i, &(x, y)) in points.iter().enumerate() {
        acc += y;
        if i >= w {
            acc -= points[i - w].1;
        }
        out.push((x, acc / (i + 1).min(w) as f64));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_averages_the_trailing_window() {
        let pts: Vec<(f64, f64)> = (0..100).map(|i| (i as f64, (i % 2) as f64)).collect();
        let s = smooth(&pts);
        assert_eq!(s.len(), 100);
        assert_eq!(s[0].1, 0.0);
        assert!((s[99].1 - 0.5).abs() < 1e-12);
    }
}
