//! Errors of the generation stage, each naming the file or setting at fault.

use std::path::{Path, PathBuf};

/// What can go wrong while training, sampling or resuming.
#[derive(Debug, thiserror::Error)]
pub enum LdmError {
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
    #[error(transparent)]
    Train(#[from] mgcc_train::TrainError),
    #[error(
        "{path}: run folder already holds a run; resume it with --resume or choose another --out"
    )]
    RunExists { path: PathBuf },
    #[error("{path}: no run here (no config.toml)")]
    NoRun { path: PathBuf },
    #[error("{path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    #[error(
        "loss became {value} at iteration {iteration}; stopped. The last good checkpoint is kept in {run}/checkpoints/last (try a lower --lr)"
    )]
    NonFinite {
        iteration: usize,
        value: f32,
        run: PathBuf,
    },
    #[error("{path}: cannot write image: {message}")]
    Image { path: PathBuf, message: String },
}

impl LdmError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        LdmError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
