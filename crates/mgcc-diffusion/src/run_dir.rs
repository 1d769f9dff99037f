//! The run folder of `mgcc ldm train-vae` and `mgcc ldm train`, laid out like `mgcc train`'s:
//!
//! ```text
//! RUN/config.toml         resolved config (written before training; rebuilds the model)
//! RUN/metrics.csv         one row per iteration (see `metrics_log`)
//! RUN/train.log           plain-text log
//! RUN/progress.png        losses and validation numbers against iterations
//! RUN/samples/iter_N.png  reconstructions (autoencoder) or generated images (denoiser)
//! RUN/checkpoints/{last,best}/   written atomically (see mgcc_train::checkpoint)
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::LdmError;

pub const CONFIG_FILE: &str = "config.toml";

/// Paths of one run folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    /// Error if `root` already holds a run.
    pub fn ensure_new(root: &Path) -> Result<(), LdmError> {
        if root.join(CONFIG_FILE).exists() || root.join("checkpoints").exists() {
            return Err(LdmError::RunExists {
                path: root.to_path_buf(),
            });
        }
        Ok(())
    }

    /// Create a new run folder holding `config`; refuses one that already holds a run.
    pub fn create<C: Serialize>(root: &Path, config: &C) -> Result<Self, LdmError> {
        Self::ensure_new(root)?;
        fs::create_dir_all(root.join("samples")).map_err(|e| LdmError::io(root, e))?;
        let text = toml::to_string_pretty(config).map_err(|e| LdmError::Config {
            path: root.join(CONFIG_FILE),
            message: e.to_string(),
        })?;
        write_atomic(&root.join(CONFIG_FILE), text.as_bytes())?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// Open an existing run and read its config.
    pub fn open<C: DeserializeOwned>(root: &Path) -> Result<(Self, C), LdmError> {
        let path = root.join(CONFIG_FILE);
        if !path.is_file() {
            return Err(LdmError::NoRun {
                path: root.to_path_buf(),
            });
        }
        let config = read_toml(&path)?;
        fs::create_dir_all(root.join("samples")).map_err(|e| LdmError::io(root, e))?;
        Ok((
            Self {
                root: root.to_path_buf(),
            },
            config,
        ))
    }

    pub fn metrics_csv(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }
    pub fn progress_png(&self) -> PathBuf {
        self.root.join("progress.png")
    }
    pub fn sample_png(&self, iteration: usize) -> PathBuf {
        self.root
            .join("samples")
            .join(format!("iter_{iteration:06}.png"))
    }

    /// Append a time-stamped line to `train.log`.
    pub fn log(&self, line: &str) -> Result<(), LdmError> {
        let path = self.root.join("train.log");
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| LdmError::io(&path, e))?;
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        writeln!(file, "[{secs}] {line}").map_err(|e| LdmError::io(&path, e))?;
        tracing::debug!("{line}");
        Ok(())
    }
}

/// Read a TOML file into `C`; errors name the file.
pub fn read_toml<C: DeserializeOwned>(path: &Path) -> Result<C, LdmError> {
    let text = fs::read_to_string(path).map_err(|e| LdmError::io(path, e))?;
    toml::from_str(&text).map_err(|e| LdmError::Config {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Write a file through a temporary name and a rename, so readers never see half of it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LdmError> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).map_err(|e| LdmError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| LdmError::io(path, e))
}
