//! Typed errors of the model crate.

use std::path::PathBuf;

/// What can go wrong when checking inputs or saving/loading an MGCC network.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The input is not `B×C×H×W` with `H` and `W` multiples of 16 (four 2×2 poolings).
    #[error("input of {height}×{width} pixels: height and width must be positive multiples of 16")]
    InputSize {
        /// Input height.
        height: usize,
        /// Input width.
        width: usize,
    },
    /// The input channel count differs from the network's `in_channels`.
    #[error("input has {got} channels but the network expects {expected}")]
    InputChannels {
        /// Channels of the input tensor.
        got: usize,
        /// `MgccConfig::in_channels`.
        expected: usize,
    },
    /// Writing a checkpoint failed.
    #[error("cannot save model weights to {path}: {message}")]
    Save {
        /// Destination file.
        path: PathBuf,
        /// burn's description of the failure.
        message: String,
    },
    /// Reading or applying a checkpoint failed (missing file, corrupt file, shape mismatch).
    #[error("cannot load model weights from {path}: {message}")]
    Load {
        /// Source file.
        path: PathBuf,
        /// burn's description of the failure.
        message: String,
    },
}
