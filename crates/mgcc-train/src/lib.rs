//! Semi-supervised training: MGCC and the standard baselines (supervised, mean teacher, UA-MT,
//! CCT, CPS, URPC) in one trainer — losses, schedules, the loop, checkpoints with exact resume,
//! the run folder, and the benchmark of a training step.

pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod device;
pub mod error;
pub mod history;
pub mod learner;
pub mod loss;
pub mod methods;
pub mod panel;
pub mod plot;
pub mod run;
pub mod schedule;
pub mod trainer;

pub use config::{Method, Protocol, TrainConfig};
pub use error::TrainError;
pub use trainer::{ResumeChanges, RunOptions, TrainOutcome, resume, resume_with, train};

/// burn's flex backend has one process-wide RNG; unit tests that seed it take turns.
#[cfg(test)]
pub(crate) fn test_rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
