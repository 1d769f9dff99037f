//! The run folder of `mgcc train`:
//!
//! ```text
//! RUN/config.toml        resolved training config (written before training; rebuilds the model)
//! RUN/model.json         the network config alone: backbone, channels, width, heads
//! RUN/labeled.txt        the stems that kept their masks (see `labeled_subset`)
//! RUN/metrics.csv        one row per iteration (see `history`)
//! RUN/train.log          plain-text log of the run
//! RUN/progress.png       losses, validation IoU/Dice and lr against iterations
//! RUN/panels/iter_N.png  image | prediction | ground truth for a few validation cases
//! RUN/checkpoints/{last,best}/
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::prelude::Device;
use mgcc_model::{NetConfig, SegNet};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint;
use crate::config::{Protocol, TrainConfig};
use crate::error::TrainError;

const CONFIG_FILE: &str = "config.toml";
const MODEL_FILE: &str = "model.json";

/// Paths of one run folder.
#[derive(Debug, Clone)]
pub struct RunFiles {
    pub root: PathBuf,
    model: NetConfig,
}

impl RunFiles {
    /// Error unless a new run may be written into `root`: absent, or a folder holding nothing
    /// but a lock file and mgcc's temporary files. A folder with a run is refused (resume it),
    /// any other file too.
    pub fn ensure_new(root: &Path) -> Result<(), TrainError> {
        if root.join(CONFIG_FILE).exists() || root.join("checkpoints").exists() {
            return Err(TrainError::RunExists {
                path: root.to_path_buf(),
            });
        }
        if root.exists() {
            if !root.is_dir() {
                return Err(TrainError::NotARunFolder {
                    path: root.to_path_buf(),
                    found: "it is a file".into(),
                });
            }
            let entries = fs::read_dir(root).map_err(|e| TrainError::io(root, e))?;
            let others: Vec<String> = entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                // The lock and mgcc's temporary files belong to a writer starting here (it
                // holds the lock, so the caller is then refused as "in use").
                .filter(|n| {
                    n != mgcc_data::safe_fs::lock::LOCK_FILE
                        && !n.ends_with(mgcc_data::safe_fs::atomic::TMP_SUFFIX)
                })
                .collect();
            if let Some(first) = others.first() {
                return Err(TrainError::NotARunFolder {
                    path: root.to_path_buf(),
                    found: format!(
                        "it holds {}{}",
                        first,
                        if others.len() > 1 {
                            format!(" and {} more", others.len() - 1)
                        } else {
                            String::new()
                        }
                    ),
                });
            }
        }
        Ok(())
    }

    /// Undo a run that failed before its first checkpoint: remove the folder when this run
    /// created it, else the run's own files (it was empty before).
    pub fn remove_unfinished(root: &Path, existed: bool) {
        if !existed {
            let _ = fs::remove_dir_all(root);
            return;
        }
        for name in [
            CONFIG_FILE,
            MODEL_FILE,
            "labeled.txt",
            "metrics.csv",
            "train.log",
            "progress.png",
        ] {
            let _ = fs::remove_file(root.join(name));
        }
        for dir in ["panels", "checkpoints"] {
            let _ = fs::remove_dir_all(root.join(dir));
        }
    }

    /// Replace the run's config.toml (a change `--resume` may make, e.g. more iterations).
    pub fn rewrite_config(&self, cfg: &TrainConfig) -> Result<(), TrainError> {
        write_atomic(&self.root.join(CONFIG_FILE), cfg.to_toml().as_bytes())
    }

    /// Create a new run folder; refuses one that already holds a run.
    pub fn create(root: &Path, cfg: &TrainConfig) -> Result<Self, TrainError> {
        Self::ensure_new(root)?;
        fs::create_dir_all(root).map_err(|e| TrainError::io(root, e))?;
        let model = cfg.net_config();
        let json = serde_json::to_string_pretty(&model).unwrap_or_default();
        // config.toml first: from then on the folder is a run (resumable).
        write_atomic(&root.join(CONFIG_FILE), cfg.to_toml().as_bytes())?;
        write_atomic(&root.join(MODEL_FILE), json.as_bytes())?;
        fs::create_dir_all(root.join("panels")).map_err(|e| TrainError::io(root, e))?;
        Ok(Self {
            root: root.to_path_buf(),
            model,
        })
    }

    /// Open an existing run folder and its resolved config.
    pub fn open(root: &Path) -> Result<(Self, TrainConfig), TrainError> {
        let path = root.join(CONFIG_FILE);
        if !path.is_file() {
            return Err(TrainError::NothingToResume {
                path: root.to_path_buf(),
            });
        }
        let cfg = TrainConfig::from_toml_file(&path)?;
        cfg.validate().map_err(|message| TrainError::Config {
            path: path.clone(),
            message,
        })?;
        let model = cfg.net_config();
        fs::create_dir_all(root.join("panels")).map_err(|e| TrainError::io(root, e))?;
        Ok((
            Self {
                root: root.to_path_buf(),
                model,
            },
            cfg,
        ))
    }

    /// The network the run trains.
    pub fn net_config(&self) -> NetConfig {
        self.model
    }
    pub fn metrics_csv(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }
    pub fn progress_png(&self) -> PathBuf {
        self.root.join("progress.png")
    }
    pub fn panel_png(&self, iteration: usize) -> PathBuf {
        self.root
            .join("panels")
            .join(format!("iter_{iteration:06}.png"))
    }

    /// Record the labelled stems (one per line).
    pub fn write_labeled(&self, stems: &[String]) -> Result<(), TrainError> {
        let mut text = stems.join("\n");
        text.push('\n');
        write_atomic(&self.root.join("labeled.txt"), text.as_bytes())
    }

    /// Append a time-stamped line to `train.log`.
    pub fn log(&self, line: &str) -> Result<(), TrainError> {
        let path = self.root.join("train.log");
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| TrainError::io(&path, e))?;
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        writeln!(file, "[{secs}] {line}").map_err(|e| TrainError::io(&path, e))?;
        tracing::debug!("{line}");
        Ok(())
    }
}

/// Write a file through a temporary name and a rename, so readers never see half of it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    Ok(mgcc_data::safe_fs::write_atomic(path, bytes)?)
}

/// The labelled subset of a train list, as (labelled, unlabelled).
///
/// - default protocol: `labeled_count` stems, or round(fraction × n) (at least 1), drawn with
///   the seed from the sorted list; both parts sorted;
/// - reference protocol (the published code): the first `labeled_count` or ⌊fraction × n⌋
///   stems in file order, the rest unlabelled, both in file order.
pub fn labeled_subset(
    train: &[String],
    cfg: &TrainConfig,
) -> Result<(Vec<String>, Vec<String>), TrainError> {
    let n = train.len();
    let k = cfg.labeled_count.unwrap_or_else(|| match cfg.protocol {
        Protocol::Default => ((n as f64 * cfg.labeled_fraction).round() as usize).max(1),
        // int(labeled_slice * total_slices) in the published train.py; the epsilon keeps
        // exact products such as 0.25 × 100 from flooring to 24.
        Protocol::Reference => (n as f64 * cfg.labeled_fraction + 1e-9).floor() as usize,
    });
    if k > n {
        return Err(TrainError::Invalid(format!(
            "labeled count {k} is larger than the train list ({n} images)"
        )));
    }
    if k < cfg.labeled_batch {
        return Err(TrainError::Invalid(format!(
            "only {k} labelled images, fewer than the labelled batch {}: lower --labeled-batch or label more",
            cfg.labeled_batch
        )));
    }
    if cfg.protocol == Protocol::Reference {
        return Ok((train[..k].to_vec(), train[k..].to_vec()));
    }
    let mut stems = train.to_vec();
    stems.sort();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x6c61_6265_6c65_6421);
    stems.shuffle(&mut rng);
    let mut labeled = stems[..k].to_vec();
    let mut unlabeled = stems[k..].to_vec();
    labeled.sort();
    unlabeled.sort();
    Ok((labeled, unlabeled))
}

/// A trained model ready for inference: rebuilt from the run's saved config, weights from the
/// `best` checkpoint (or `last` when `which` says so), in validation mode.
pub struct LoadedRun {
    pub model: SegNet,
    pub config: TrainConfig,
    pub checkpoint: PathBuf,
}

/// Load a run for evaluation or prediction.
pub fn load_for_inference(
    run: &Path,
    which: &str,
    device: &Device,
) -> Result<LoadedRun, TrainError> {
    let (files, config) = RunFiles::open(run)?;
    let dir = checkpoint::find(run, which).ok_or_else(|| TrainError::Checkpoint {
        path: checkpoint::checkpoint_dir(run, which),
        message: "no such checkpoint (has the run validated yet?)".into(),
    })?;
    let model = files.net_config().init(device);
    let model = crate::learner::load_net(model, &checkpoint::model_file(&dir))?;
    use burn::module::Module;
    Ok(LoadedRun {
        model: model.valid(),
        config,
        checkpoint: dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stems(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("case {i:03}")).collect()
    }

    #[test]
    fn labeled_subset_is_deterministic_disjoint_and_sized() {
        let cfg = TrainConfig {
            labeled_fraction: 0.25,
            ..Default::default()
        };
        let (a, b) = labeled_subset(&stems(25), &cfg).unwrap();
        assert_eq!(a.len(), 6);
        assert_eq!(b.len(), 19);
        assert!(a.iter().all(|s| !b.contains(s)));
        assert_eq!(labeled_subset(&stems(25), &cfg).unwrap().0, a);
        let other = TrainConfig {
            seed: 7,
            ..cfg.clone()
        };
        assert_ne!(labeled_subset(&stems(25), &other).unwrap().0, a);
        // Order of the input list does not matter.
        let mut rev = stems(25);
        rev.reverse();
        assert_eq!(labeled_subset(&rev, &cfg).unwrap().0, a);
    }

    #[test]
    fn reference_protocol_labels_the_first_stems_in_file_order() {
        // A train list in file order (not sorted), 27 stems: ⌊0.25 × 27⌋ = 6, where the
        // default protocol rounds to 7.
        let mut train = stems(27);
        train.reverse();
        let reference = TrainConfig {
            labeled_fraction: 0.25,
            protocol: Protocol::Reference,
            ..Default::default()
        };
        let (l, u) = labeled_subset(&train, &reference).unwrap();
        assert_eq!(l, train[..6].to_vec());
        assert_eq!(u, train[6..].to_vec());
        // The seed plays no part.
        let other_seed = TrainConfig {
            seed: 9,
            ..reference.clone()
        };
        assert_eq!(labeled_subset(&train, &other_seed).unwrap().0, l);
        // Exact products are not floored below: 0.25 × 100 = 25.
        assert_eq!(labeled_subset(&stems(100), &reference).unwrap().0.len(), 25);
        let default = TrainConfig {
            protocol: Protocol::Default,
            ..reference
        };
        assert_eq!(labeled_subset(&train, &default).unwrap().0.len(), 7);
    }

    #[test]
    fn labeled_count_overrides_fraction_and_is_checked() {
        let cfg = TrainConfig {
            labeled_count: Some(5),
            ..Default::default()
        };
        assert_eq!(labeled_subset(&stems(25), &cfg).unwrap().0.len(), 5);
        let too_many = TrainConfig {
            labeled_count: Some(30),
            ..Default::default()
        };
        assert!(labeled_subset(&stems(25), &too_many).is_err());
        let too_few = TrainConfig {
            labeled_count: Some(2),
            ..Default::default()
        };
        assert!(
            labeled_subset(&stems(25), &too_few)
                .unwrap_err()
                .to_string()
                .contains("labelled batch")
        );
    }
}
