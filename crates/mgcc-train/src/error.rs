//! Errors of training, each naming the file or setting at fault.

use std::path::{Path, PathBuf};

/// What can go wrong while setting up, running or resuming a training run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: bad configuration: {message}")]
    Config { path: PathBuf, message: String },
    #[error("bad configuration: {0}")]
    Invalid(String),
    #[error(transparent)]
    Data(#[from] mgcc_data::DataError),
    #[error("{path}: cannot save or load checkpoint: {message}")]
    Checkpoint { path: PathBuf, message: String },
    #[error(
        "{path}: run folder already holds a run; resume it with --resume or choose another --out"
    )]
    RunExists { path: PathBuf },
    #[error("{path}: not an mgcc run folder (it has no config.toml; `mgcc train --out` makes one)")]
    NothingToResume { path: PathBuf },
    #[error(
        "{path}: not a folder a new run may be written into ({found}); train writes only into a new or empty folder"
    )]
    NotARunFolder { path: PathBuf, found: String },
    #[error(
        "loss became {value} at iteration {iteration}; stopped. The last good checkpoint is kept in {run}/checkpoints/last (try a lower --lr)"
    )]
    NonFinite {
        iteration: usize,
        value: f32,
        run: PathBuf,
    },
    #[error("{path}: cannot write plot: {message}")]
    Plot { path: PathBuf, message: String },
}

impl TrainError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
