//! Semi-supervised MGCC training: losses, schedules, the loop, checkpoints with exact resume,
//! the run folder, and the benchmark of a training step.

pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod history;
pub mod loss;
pub mod panel;
pub mod plot;
pub mod run;
pub mod schedule;
pub mod step;
pub mod trainer;

pub use config::{Method, TrainConfig};
pub use error::TrainError;
pub use trainer::{RunOptions, TrainOutcome, resume, train};
