//! Loading a trained run for inference (shared by evaluate and predict).

use std::path::Path;

use anyhow::{Context, Result};
use burn::prelude::Device;
use mgcc_data::Channels;
use mgcc_eval::InputSpec;
use mgcc_train::run::{LoadedRun, load_for_inference};

/// Which checkpoint of a run to use.
#[derive(clap::Args, Debug, Clone)]
pub struct CheckpointArgs {
    /// Checkpoint: best (highest validation IoU) or last.
    #[arg(long, default_value = "best", value_parser = ["best", "last"])]
    pub checkpoint: String,
}

/// Load RUN (its saved config rebuilds the model) and the input spec it was trained with.
pub fn load(run: &Path, which: &str, device: &Device) -> Result<(LoadedRun, InputSpec)> {
    let loaded = load_for_inference(run, which, device)
        .with_context(|| format!("loading run {}", run.display()))?;
    let channels = if loaded.config.in_channels == 1 {
        Channels::One
    } else {
        Channels::Three
    };
    let spec = InputSpec {
        size: loaded.config.size,
        channels,
        scale: loaded.config.input_scale(),
    };
    Ok((loaded, spec))
}
