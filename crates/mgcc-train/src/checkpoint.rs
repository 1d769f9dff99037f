//! Checkpoints: `RUN/checkpoints/{last,best}/` with `model.bpk` (burnpack weights and batch-norm
//! statistics), `optimizer.bpk` (SGD momentum buffers; `last` only), the files of a method's
//! other networks (`teacher.bpk`, `peer.bpk` + `peer_optimizer.bpk`; `last` only) and
//! `state.json` (iteration, best score).
//!
//! A checkpoint folder is written beside its final name and swapped in by renames, so an
//! interrupted write never leaves a half-written checkpoint: the old one stays until the new one
//! is complete (`NAME.prev` is used if a crash fell between the two renames).

use std::fs;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// Progress stored with every checkpoint; enough, with the config, to resume exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimiser steps completed.
    pub iteration: usize,
    /// Best validation IoU so far (documented definition), if validated yet.
    pub best_iou: Option<f64>,
    /// Iteration at which `best_iou` was reached.
    pub best_iteration: Option<usize>,
}

/// Weights of the (inference) network.
pub const MODEL_FILE: &str = "model.bpk";
/// Its optimiser state (`last` only).
pub const OPTIM_FILE: &str = "optimizer.bpk";
const STATE_FILE: &str = "state.json";

/// Folder of the named checkpoint (`last` or `best`) in a run.
pub fn checkpoint_dir(run: &Path, name: &str) -> PathBuf {
    run.join("checkpoints").join(name)
}

fn ckpt_err(path: &Path, message: impl ToString) -> TrainError {
    TrainError::Checkpoint {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Write a checkpoint atomically (see the module docs). `state` is any serialisable progress
/// record ([`TrainState`] for segmentation runs).
pub fn save<M: Module, S: Serialize>(
    run: &Path,
    name: &str,
    model: &M,
    optim: Option<&ModuleOptimizer>,
    state: &S,
) -> Result<(), TrainError> {
    save_with(
        run,
        name,
        |dir| {
            save_module(model, &dir.join(MODEL_FILE))?;
            if let Some(optim) = optim {
                save_optimizer(optim, &dir.join(OPTIM_FILE))?;
            }
            Ok(())
        },
        state,
    )
}

/// Write a checkpoint atomically whose files `write` puts into the folder it is given
/// (`state.json` is added). The folder is renamed into place only when `write` succeeded.
pub fn save_with<S: Serialize>(
    run: &Path,
    name: &str,
    write: impl FnOnce(&Path) -> Result<(), TrainError>,
    state: &S,
) -> Result<(), TrainError> {
    let final_dir = checkpoint_dir(run, name);
    let parent = final_dir.parent().unwrap_or(run).to_path_buf();
    fs::create_dir_all(&parent).map_err(|e| TrainError::io(&parent, e))?;
    let partial = parent.join(format!("{name}.partial"));
    let prev = parent.join(format!("{name}.prev"));
    if partial.exists() {
        fs::remove_dir_all(&partial).map_err(|e| TrainError::io(&partial, e))?;
    }
    fs::create_dir_all(&partial).map_err(|e| TrainError::io(&partial, e))?;

    let written = (|| {
        write(&partial)?;
        let state_path = partial.join(STATE_FILE);
        let json = serde_json::to_string_pretty(state).map_err(|e| ckpt_err(&state_path, e))?;
        fs::write(&state_path, json).map_err(|e| TrainError::io(&state_path, e))?;
        sync_dir_files(&partial)
    })();
    if let Err(e) = written {
        // A failed write (full disk) leaves the previous checkpoint and no half-written one.
        let _ = fs::remove_dir_all(&partial);
        return Err(e);
    }

    if final_dir.exists() {
        if prev.exists() {
            fs::remove_dir_all(&prev).map_err(|e| TrainError::io(&prev, e))?;
        }
        fs::rename(&final_dir, &prev).map_err(|e| TrainError::io(&final_dir, e))?;
    }
    fs::rename(&partial, &final_dir).map_err(|e| TrainError::io(&partial, e))?;
    if prev.exists() {
        fs::remove_dir_all(&prev).map_err(|e| TrainError::io(&prev, e))?;
    }
    Ok(())
}

/// Write a module's weights (burnpack) to `path`.
pub fn save_module<M: Module>(model: &M, path: &Path) -> Result<(), TrainError> {
    model
        .clone()
        .save_file(path)
        .map_err(|e| ckpt_err(path, format!("{e:?}")))
}

/// Write an optimiser's state (burnpack) to `path`.
pub fn save_optimizer(optim: &ModuleOptimizer, path: &Path) -> Result<(), TrainError> {
    optim
        .save(path)
        .map_err(|e| ckpt_err(path, format!("{e:?}")))
}

fn sync_dir_files(dir: &Path) -> Result<(), TrainError> {
    for entry in fs::read_dir(dir).map_err(|e| TrainError::io(dir, e))? {
        let path = entry.map_err(|e| TrainError::io(dir, e))?.path();
        let file = fs::File::open(&path).map_err(|e| TrainError::io(&path, e))?;
        file.sync_all().map_err(|e| TrainError::io(&path, e))?;
    }
    Ok(())
}

/// The folder holding a complete checkpoint of that name, if any.
pub fn find(run: &Path, name: &str) -> Option<PathBuf> {
    let dir = checkpoint_dir(run, name);
    if dir.join(STATE_FILE).is_file() {
        return Some(dir);
    }
    let prev = dir.with_file_name(format!("{name}.prev"));
    prev.join(STATE_FILE).is_file().then_some(prev)
}

/// Read the state of a checkpoint folder.
pub fn load_state<S: DeserializeOwned>(dir: &Path) -> Result<S, TrainError> {
    let path = dir.join(STATE_FILE);
    let text = fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| ckpt_err(&path, e))
}

/// Load the weights of a checkpoint folder into `model` (built from the run's config).
pub fn load_model<M: Module>(dir: &Path, model: M) -> Result<M, TrainError> {
    load_module_file(&dir.join(MODEL_FILE), model)
}

/// Load a module's weights from `path`.
pub fn load_module_file<M: Module>(path: &Path, model: M) -> Result<M, TrainError> {
    if !path.is_file() {
        return Err(ckpt_err(path, "missing model weights"));
    }
    model
        .try_load_file(path)
        .map_err(|e| ckpt_err(path, format!("{e:?}")))
}

/// Load the optimiser state of a checkpoint folder.
pub fn load_optimizer(dir: &Path, optim: ModuleOptimizer) -> Result<ModuleOptimizer, TrainError> {
    load_optimizer_file(&dir.join(OPTIM_FILE), optim)
}

/// Load an optimiser's state from `path`.
pub fn load_optimizer_file(
    path: &Path,
    optim: ModuleOptimizer,
) -> Result<ModuleOptimizer, TrainError> {
    if !path.is_file() {
        return Err(ckpt_err(path, "missing optimizer state"));
    }
    optim
        .load(path)
        .map_err(|e| ckpt_err(path, format!("{e:?}")))
}

/// Path of the weights file of a checkpoint folder (for inference).
pub fn model_file(dir: &Path) -> PathBuf {
    dir.join(MODEL_FILE)
}
