//! The training configuration: every knob of a run, resolved and saved as `RUN/config.toml`
//! before training starts. Inference rebuilds the model from the saved file, never from flags.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// How the network is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Supervised loss on all four decoders (labelled half) plus the ramped cross-consistency
    /// between the main and auxiliary decoders (unlabelled half).
    Mgcc,
    /// The baseline: the same network trained on the labelled images only, supervised loss on
    /// the main decoder.
    Supervised,
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mgcc" => Ok(Method::Mgcc),
            "supervised" => Ok(Method::Supervised),
            other => Err(format!(
                "unknown method '{other}' (expected mgcc or supervised)"
            )),
        }
    }
}

/// All settings of one training run. Defaults are those of the published MGCC code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Dataset folder (`images/`, `masks/0/`, split files).
    pub data: PathBuf,
    /// Split index k: reads `NAME_train{k}.txt` and `NAME_val{k}.txt`.
    pub split: usize,
    /// Split name prefix; needed only when the dataset has several.
    pub split_name: Option<String>,
    /// Extra folders of unlabelled images (e.g. generated ones).
    pub unlabeled_dirs: Vec<PathBuf>,
    /// `mgcc` or `supervised`.
    pub method: Method,
    /// Share of the train list that keeps its masks (used when `labeled_count` is not set).
    pub labeled_fraction: f64,
    /// Exact number of labelled images; overrides `labeled_fraction`.
    pub labeled_count: Option<usize>,
    /// Images per batch, labelled plus unlabelled.
    pub batch: usize,
    /// Labelled images per batch (the first part of the batch).
    pub labeled_batch: usize,
    /// Training image size (square).
    pub size: usize,
    /// Input channels: 3 (grayscale repeated, ImageNet normalisation) or 1.
    pub in_channels: usize,
    /// First-level width of the network (64 in the paper).
    pub width: usize,
    /// Total optimiser steps T; default 40000 × labelled share, as the published code.
    pub iterations: Option<usize>,
    /// Base learning rate of SGD.
    pub lr: f64,
    /// SGD momentum (dampening 0, as PyTorch).
    pub momentum: f64,
    /// Weight decay added to the gradient (PyTorch semantics).
    pub weight_decay: f64,
    /// Exponent of the poly learning-rate decay.
    pub lr_power: f64,
    /// Maximum consistency weight C.
    pub consistency: f64,
    /// Ramp-up length R in iterations.
    pub rampup: usize,
    /// The ramp is stepped every this many iterations (150 in the published code).
    pub rampup_step: usize,
    /// Validate every this many iterations; default once per epoch but at most 100 times a run.
    pub val_every: Option<usize>,
    /// Validation cases shown in the image panel written at each validation.
    pub panel_cases: usize,
    /// Seed of every random stream of the run.
    pub seed: u64,
    /// Data augmentation (random 90° rotation and flips).
    pub augment: bool,
    /// Keep decoded, resized images in memory.
    pub cache: bool,
    /// Batches prepared ahead of the training thread.
    pub prefetch: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            data: PathBuf::new(),
            split: 1,
            split_name: None,
            unlabeled_dirs: Vec::new(),
            method: Method::Mgcc,
            labeled_fraction: 0.5,
            labeled_count: None,
            batch: 8,
            labeled_batch: 4,
            size: 256,
            in_channels: 3,
            width: 64,
            iterations: None,
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 1e-4,
            lr_power: 0.9,
            consistency: 7.0,
            rampup: 30000,
            rampup_step: 150,
            val_every: None,
            panel_cases: 4,
            seed: 41,
            augment: true,
            cache: true,
            prefetch: 4,
        }
    }
}

impl TrainConfig {
    /// Read a TOML file; unknown keys are an error that names the file.
    pub fn from_toml_file(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        toml::from_str(&text).map_err(|e| TrainError::Config {
            path: path.to_path_buf(),
            message: e.message().to_string(),
        })
    }

    /// The resolved file, as written in the run folder.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Total iterations T: the explicit value or 40000 × labelled share (the published default).
    pub fn total_iterations(&self, n_labeled: usize, n_train: usize) -> usize {
        self.iterations.unwrap_or_else(|| {
            let share = if n_train == 0 {
                0.0
            } else {
                n_labeled as f64 / n_train as f64
            };
            ((40000.0 * share).round() as usize).max(1)
        })
    }

    /// Unlabelled images per batch (0 for the supervised baseline).
    pub fn unlabeled_batch(&self) -> usize {
        match self.method {
            Method::Mgcc => self.batch - self.labeled_batch,
            Method::Supervised => 0,
        }
    }

    /// Check values that would otherwise fail deep inside training.
    pub fn validate(&self) -> Result<(), String> {
        if self.size == 0 || !self.size.is_multiple_of(16) {
            return Err(format!(
                "size must be a positive multiple of 16 (got {})",
                self.size
            ));
        }
        if self.in_channels != 1 && self.in_channels != 3 {
            return Err(format!(
                "in_channels must be 1 or 3 (got {})",
                self.in_channels
            ));
        }
        if self.width == 0 {
            return Err("width must be at least 1".into());
        }
        if self.labeled_batch == 0 || self.labeled_batch > self.batch {
            return Err(format!(
                "labeled_batch must be between 1 and batch (got {} of {})",
                self.labeled_batch, self.batch
            ));
        }
        if self.method == Method::Mgcc && self.labeled_batch == self.batch {
            return Err(
                "method mgcc needs unlabelled images in each batch: labeled_batch < batch".into(),
            );
        }
        if !(self.labeled_fraction > 0.0 && self.labeled_fraction <= 1.0) {
            return Err(format!(
                "labeled_fraction must be in (0, 1] (got {})",
                self.labeled_fraction
            ));
        }
        if self.labeled_count == Some(0) {
            return Err("labeled_count must be at least 1".into());
        }
        if self.lr.is_nan() || self.lr <= 0.0 || !self.lr.is_finite() {
            return Err(format!("lr must be positive (got {})", self.lr));
        }
        if self.val_every == Some(0) {
            return Err("val_every must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trip_keeps_every_field() {
        let cfg = TrainConfig {
            data: "data/busi".into(),
            labeled_count: Some(12),
            unlabeled_dirs: vec!["gen".into()],
            method: Method::Supervised,
            ..Default::default()
        };
        let back: TrainConfig = toml::from_str(&cfg.to_toml()).unwrap();
        assert_eq!(cfg, back);
    }

    #[test]
    fn unknown_key_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "widht = 16\n").unwrap();
        let err = TrainConfig::from_toml_file(&path).unwrap_err().to_string();
        assert!(err.contains("bad.toml") && err.contains("widht"), "{err}");
    }

    #[test]
    fn default_iterations_follow_the_published_rule() {
        let cfg = TrainConfig::default();
        assert_eq!(cfg.total_iterations(50, 100), 20000);
        assert_eq!(cfg.total_iterations(25, 100), 10000);
    }

    #[test]
    fn validation_rejects_bad_values() {
        let bad = TrainConfig {
            size: 100,
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("multiple of 16"));
        let bad = TrainConfig {
            labeled_batch: 8,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        assert!(TrainConfig::default().validate().is_ok());
    }
}
