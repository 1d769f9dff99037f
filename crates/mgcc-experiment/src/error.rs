//! Errors of the experiment layer, each naming the file or setting at fault.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bad experiment: {0}")]
    Invalid(String),
    #[error("{path} holds a different plan; use another --out or the same flags. Differences:\n  {}", differences.join("\n  "))]
    PlanMismatch {
        path: PathBuf,
        differences: Vec<String>,
    },
    #[error("{path}: unreadable: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error(transparent)]
    Train(#[from] mgcc_train::TrainError),
    #[error(transparent)]
    Data(#[from] mgcc_data::DataError),
    #[error(transparent)]
    Infer(#[from] mgcc_eval::InferError),
    #[error(transparent)]
    Report(#[from] mgcc_eval::report::ReportError),
    #[error("{path}: cannot draw: {message}")]
    Plot { path: PathBuf, message: String },
}

impl ExperimentError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ExperimentError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
