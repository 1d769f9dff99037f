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
    /// Held while this process writes the run (one writer per run folder).
    pub lock: Option<std::sync::Arc<mgcc_data::safe_fs::FolderLock>>,
}

impl RunDir {
    /// Error unless a new run may be written into `root`: absent or empty (a run is refused —
    /// resume it —, a folder holding anything else too).
    pub fn ensure_new(root: &Path) -> Result<(), LdmError> {
        if root.join(CONFIG_FILE).exists() || root.join("checkpoints").exists() {
            return Err(LdmError::RunExists {
                path: root.to_path_buf(),
            });
        }
        mgcc_train::run::RunFiles::ensure_new(root)?;
        Ok(())
    }

    /// Lock the run folder for this process (see [`mgcc_data::safe_fs::lock`]).
    pub fn lock(&mut self) -> Result<(), LdmError> {
        let lock = mgcc_data::safe_fs::lock::lock_folder(&self.root)?;
        self.lock = Some(std::sync::Arc::new(lock));
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
            lock: None,
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
        let text = fs::read_to_string(&path).map_err(|e| LdmError::io(&path, e))?;
        check_layout(&path, &text)?;
        let config = parse_toml(&path, &text)?;
        fs::create_dir_all(root.join("samples")).map_err(|e| LdmError::io(root, e))?;
        Ok((
            Self {
                root: root.to_path_buf(),
                lock: None,
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
    parse_toml(path, &text)
}

/// Deserialize `text` (read from `path`); a syntax error gives its line and column.
fn parse_toml<C: DeserializeOwned>(path: &Path, text: &str) -> Result<C, LdmError> {
    toml::from_str(text).map_err(|e| LdmError::Config {
        path: path.to_path_buf(),
        message: mgcc_train::config::toml_error_message(text, &e),
    })
}

/// Refuse a run whose stored networks predate the Medfusion layout: mgcc writes every field of
/// its configs, so a stored `[vae]` or `[unet]` table without `layout` comes from an earlier
/// version (whose weights do not fit today's networks).
fn check_layout(path: &Path, text: &str) -> Result<(), LdmError> {
    let Ok(value) = text.parse::<toml::Table>() else {
        return Ok(()); // read_toml reports the syntax error with its position
    };
    for (table, what) in [("vae", "autoencoder"), ("unet", "denoiser")] {
        if let Some(t) = value.get(table).and_then(|v| v.as_table())
            && !t.contains_key("layout")
        {
            return Err(LdmError::Config {
                path: path.to_path_buf(),
                message: crate::vae::legacy_message(what, crate::vae::legacy_layout()),
            });
        }
    }
    Ok(())
}

/// Write a file through a temporary name and a rename, so readers never see half of it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LdmError> {
    Ok(mgcc_data::safe_fs::write_atomic(path, bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_the_earlier_layout_are_refused_when_opened() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path();
        let cfg = crate::vae_train::VaeTrainConfig::default();
        let text = toml::to_string(&cfg).unwrap();
        std::fs::write(run.join(CONFIG_FILE), &text).unwrap();
        RunDir::open::<crate::vae_train::VaeTrainConfig>(run).unwrap();
        // The same run as an earlier version wrote it: no `layout` key.
        let old: String = text
            .lines()
            .filter(|l| !l.starts_with("layout"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_ne!(old, text);
        std::fs::write(run.join(CONFIG_FILE), old).unwrap();
        let err = RunDir::open::<crate::vae_train::VaeTrainConfig>(run)
            .unwrap_err()
            .to_string();
        assert!(err.contains("config.toml"), "{err}");
        assert!(
            err.contains("autoencoder was trained with mgcc's earlier network layout"),
            "{err}"
        );
        // A denoiser run likewise.
        let ldm = toml::to_string(&crate::ldm_train::LdmTrainConfig::default()).unwrap();
        let old: String = ldm
            .lines()
            .filter(|l| !l.starts_with("layout"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(run.join(CONFIG_FILE), old).unwrap();
        let err = RunDir::open::<crate::ldm_train::LdmTrainConfig>(run)
            .unwrap_err()
            .to_string();
        assert!(err.contains("denoiser was trained"), "{err}");
    }
}
