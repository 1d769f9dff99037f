//! The plan of an experiment: every run's resolved config, folder name and config hash,
//! written to `EXP/plan.json` before anything trains.
//!
//! Runs are the product, in this order, of seeds × splits × labelled shares × methods ×
//! {without, with generated images}; the with-generated variant exists for the semi-supervised
//! methods when `--generated DIR` is given (supervised training reads no unlabelled images).
//! A run's folder is `EXP/runs/NAME` with `NAME = METHOD_SHARE_splitK_seedS[_gen]`
//! (`mgcc_1-8_split1_seed41_gen`), its hash the SHA-256 of its resolved `config.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mgcc_train::{Method, TrainConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ExperimentError;
use crate::share::Share;

/// The flags that define a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanSpec {
    /// Dataset folder with split files.
    pub data: PathBuf,
    /// Split indices k.
    pub splits: Vec<usize>,
    /// Labelled shares.
    pub labeled: Vec<Share>,
    /// Methods, in table order.
    pub methods: Vec<Method>,
    /// Folder of generated images (`{split}` is replaced by the split index); adds the
    /// with-generated variants.
    pub generated: Option<PathBuf>,
    /// Training seeds.
    pub seeds: Vec<u64>,
    /// Every other training setting (from `--config` and the protocol/backbone flags).
    pub base: TrainConfig,
}

/// One planned run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedRun {
    /// Position in the plan (sharding is by index).
    pub index: usize,
    /// Folder name under `EXP/runs/`.
    pub name: String,
    pub method: Method,
    pub share: Share,
    pub split: usize,
    pub seed: u64,
    /// Whether the generated images join the unlabelled stream.
    pub generated: bool,
    /// The run's full resolved training config.
    pub config: TrainConfig,
    /// First 16 hex digits of the SHA-256 of `config` as TOML.
    pub hash: String,
}

/// A plan: its spec and runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub version: u32,
    pub spec: PlanSpec,
    pub runs: Vec<PlannedRun>,
}

/// The generated-image folder of split `k`: `{split}` in the path is replaced by `k`, so each
/// split can use a generator that never saw its validation images (`runs/gen{split}/generated`).
pub fn generated_dir(template: &Path, split: usize) -> PathBuf {
    PathBuf::from(
        template
            .to_string_lossy()
            .replace("{split}", &split.to_string()),
    )
}

/// Hash of a resolved config.
pub fn config_hash(cfg: &TrainConfig) -> String {
    let digest = Sha256::digest(cfg.to_toml().as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

impl PlanSpec {
    /// Checks the flags before planning: non-empty lists, no duplicates.
    pub fn validate(&self) -> Result<(), String> {
        if self.splits.is_empty() || self.labeled.is_empty() || self.methods.is_empty() {
            return Err(
                "--splits, --labeled and --methods must each name at least one value".into(),
            );
        }
        if self.seeds.is_empty() {
            return Err("--seeds must name at least one seed".into());
        }
        let dup = |v: Vec<String>| {
            let mut s = v.clone();
            s.sort();
            s.dedup();
            s.len() != v.len()
        };
        if dup(self.methods.iter().map(|m| m.to_string()).collect())
            || dup(self.labeled.iter().map(|s| s.label.clone()).collect())
            || dup(self.splits.iter().map(|s| s.to_string()).collect())
            || dup(self.seeds.iter().map(|s| s.to_string()).collect())
        {
            return Err("a value is repeated in --splits, --labeled, --methods or --seeds".into());
        }
        Ok(())
    }

    /// The plan: every run's resolved config (validated), in the documented order.
    pub fn plan(&self) -> Result<Plan, ExperimentError> {
        self.validate().map_err(ExperimentError::Invalid)?;
        let mut runs = Vec::new();
        for &seed in &self.seeds {
            for &split in &self.splits {
                for share in &self.labeled {
                    for &method in &self.methods {
                        let variants: &[bool] =
                            if self.generated.is_some() && method.uses_unlabeled() {
                                &[false, true]
                            } else {
                                &[false]
                            };
                        for &generated in variants {
                            let mut cfg = self.base.clone();
                            cfg.data = self.data.clone();
                            cfg.split = split;
                            cfg.method = method;
                            cfg.seed = seed;
                            cfg.labeled_fraction = share.value;
                            cfg.labeled_count = None;
                            if let Some(dir) = self.generated.as_ref().filter(|_| generated) {
                                cfg.unlabeled_dirs.push(generated_dir(dir, split));
                            }
                            if !method.uses_unlabeled() {
                                // Batches of labelled images only, as `mgcc train` needs them.
                                cfg.batch = cfg.labeled_batch;
                            }
                            cfg.validate().map_err(|e| {
                                ExperimentError::Invalid(format!("{method} at {share}: {e}"))
                            })?;
                            let cfg = cfg.resolved();
                            let name = format!(
                                "{method}_{}_split{split}_seed{seed}{}",
                                share.slug(),
                                if generated { "_gen" } else { "" }
                            );
                            runs.push(PlannedRun {
                                index: runs.len(),
                                name,
                                method,
                                share: share.clone(),
                                split,
                                seed,
                                generated,
                                hash: config_hash(&cfg),
                                config: cfg,
                            });
                        }
                    }
                }
            }
        }
        Ok(Plan {
            version: 1,
            spec: self.clone(),
            runs,
        })
    }

    /// The flags as `--name → value`, to name what differs between two plans.
    fn flags(&self) -> BTreeMap<&'static str, String> {
        let join = |v: Vec<String>| v.join(",");
        let mut m = BTreeMap::new();
        m.insert("DATA", self.data.display().to_string());
        m.insert(
            "--splits",
            join(self.splits.iter().map(|s| s.to_string()).collect()),
        );
        m.insert(
            "--labeled",
            join(self.labeled.iter().map(|s| s.label.clone()).collect()),
        );
        m.insert(
            "--methods",
            join(self.methods.iter().map(|s| s.to_string()).collect()),
        );
        m.insert(
            "--generated",
            self.generated
                .as_ref()
                .map_or("(none)".into(), |p| p.display().to_string()),
        );
        m.insert(
            "--seeds",
            join(self.seeds.iter().map(|s| s.to_string()).collect()),
        );
        m
    }

    /// What differs from `other`, one readable item per flag or base-config key.
    pub fn differences(&self, other: &PlanSpec) -> Vec<String> {
        let (a, b) = (self.flags(), other.flags());
        let mut out: Vec<String> = a
            .iter()
            .filter(|(k, v)| b.get(*k) != Some(v))
            .map(|(k, v)| format!("{k}: the plan has {v}, this command {}", b[k]))
            .collect();
        if self.base != other.base {
            let ta = toml_table(&self.base);
            let tb = toml_table(&other.base);
            for key in ta
                .keys()
                .chain(tb.keys())
                .collect::<std::collections::BTreeSet<_>>()
            {
                if ta.get(key) != tb.get(key) {
                    let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "(unset)".into());
                    out.push(format!(
                        "config {key}: the plan has {}, this command {}",
                        show(ta.get(key)),
                        show(tb.get(key))
                    ));
                }
            }
        }
        out
    }
}

/// A config's TOML keys (nested tables as `table.key`) and values as text.
fn toml_table(cfg: &TrainConfig) -> BTreeMap<String, String> {
    let value: toml::Value =
        toml::from_str(&cfg.to_toml()).unwrap_or(toml::Value::Table(Default::default()));
    let mut out = BTreeMap::new();
    fn walk(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    walk("", &value, &mut out);
    out
}

impl Plan {
    /// `EXP/plan.json`.
    pub fn path(exp: &Path) -> PathBuf {
        exp.join("plan.json")
    }

    /// Read `EXP/plan.json`.
    pub fn load(exp: &Path) -> Result<Plan, ExperimentError> {
        let path = Self::path(exp);
        let text = std::fs::read_to_string(&path).map_err(|e| ExperimentError::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| ExperimentError::Corrupt {
            path,
            message: e.to_string(),
        })
    }

    /// Write this plan to `EXP/plan.json`, or check it equals the plan already there: a
    /// different plan is refused with the differences named.
    pub fn write_or_check(&self, exp: &Path) -> Result<(), ExperimentError> {
        let path = Self::path(exp);
        if path.is_file() {
            let existing = Plan::load(exp)?;
            if existing.runs == self.runs && existing.spec == self.spec {
                return Ok(());
            }
            let mut diffs = existing.spec.differences(&self.spec);
            if diffs.is_empty() {
                diffs.push("the planned runs differ (an older version of mgcc?)".into());
            }
            return Err(ExperimentError::PlanMismatch {
                path,
                differences: diffs,
            });
        }
        std::fs::create_dir_all(exp).map_err(|e| ExperimentError::io(exp, e))?;
        let json = serde_json::to_string_pretty(self).expect("a plan serialises");
        crate::fsutil::write_atomic(&path, json.as_bytes())
    }

    /// The runs of shard `i` of `n` (plan index ≡ i mod n).
    pub fn shard(&self, i: usize, n: usize) -> Vec<&PlannedRun> {
        self.runs.iter().filter(|r| r.index % n == i).collect()
    }

    /// A run's folder.
    pub fn run_dir(exp: &Path, run: &PlannedRun) -> PathBuf {
        exp.join("runs").join(&run.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec() -> PlanSpec {
        PlanSpec {
            data: "data/busi".into(),
            splits: vec![1, 2, 3],
            labeled: vec!["1/8".parse().unwrap(), "1/4".parse().unwrap()],
            methods: vec![Method::Supervised, Method::Cps, Method::Mgcc],
            generated: Some("gen{split}".into()),
            seeds: vec![41],
            base: TrainConfig::default(),
        }
    }

    #[test]
    fn the_plan_is_the_product_of_the_flags_in_a_stable_order() {
        let plan = spec().plan().unwrap();
        // 3 splits × 2 shares × (supervised + 2 methods × 2 variants) = 30.
        assert_eq!(plan.runs.len(), 30);
        assert_eq!(plan.runs[0].name, "supervised_1-8_split1_seed41");
        assert_eq!(plan.runs[1].name, "cps_1-8_split1_seed41");
        assert_eq!(plan.runs[2].name, "cps_1-8_split1_seed41_gen");
        assert_eq!(plan.runs[29].name, "mgcc_1-4_split3_seed41_gen");
        let names: std::collections::HashSet<_> = plan.runs.iter().map(|r| &r.name).collect();
        assert_eq!(names.len(), 30, "names are unique");
        for (i, r) in plan.runs.iter().enumerate() {
            assert_eq!(r.index, i);
            assert_eq!(r.config.split, r.split);
            assert_eq!(r.config.labeled_fraction, r.share.value);
            assert_eq!(r.config.unlabeled_dirs.is_empty(), !r.generated);
            if r.generated {
                let want = PathBuf::from(format!("gen{}", r.split));
                assert_eq!(
                    r.config.unlabeled_dirs,
                    vec![want],
                    "one generator per split"
                );
            }
            assert_eq!(r.config.width, Some(64), "resolved");
        }
        // The same flags give the same plan and hashes; a changed setting changes the hash.
        assert_eq!(spec().plan().unwrap(), plan);
        let mut other = spec();
        other.base.lr = 0.02;
        let other = other.plan().unwrap();
        assert_ne!(other.runs[0].hash, plan.runs[0].hash);
        // Supervised runs get labelled-only batches.
        assert_eq!(plan.runs[0].config.batch, plan.runs[0].config.labeled_batch);
    }

    #[test]
    fn shards_are_disjoint_and_cover_the_plan() {
        let plan = spec().plan().unwrap();
        for n in 1..=5 {
            let mut seen = vec![0; plan.runs.len()];
            for i in 0..n {
                for r in plan.shard(i, n) {
                    seen[r.index] += 1;
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "n = {n}: {seen:?}");
        }
    }

    #[test]
    fn a_different_plan_is_refused_with_the_changed_flags_named() {
        let dir = tempfile::tempdir().unwrap();
        let plan = spec().plan().unwrap();
        plan.write_or_check(dir.path()).unwrap();
        plan.write_or_check(dir.path()).unwrap(); // the same plan is accepted again
        let mut changed = spec();
        changed.labeled = vec!["1/4".parse().unwrap()];
        changed.base.iterations = Some(500);
        let err = changed
            .plan()
            .unwrap()
            .write_or_check(dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--labeled: the plan has 1/8,1/4, this command 1/4"),
            "{err}"
        );
        assert!(err.contains("config iterations"), "{err}");
        assert!(!err.contains("--splits"), "{err}");
    }

    #[test]
    fn an_invalid_combination_is_refused_before_anything_is_written() {
        let mut s = spec();
        s.base.backbone = mgcc_model::Backbone::Unet;
        let err = s.plan().unwrap_err().to_string();
        assert!(err.contains("mgcc") && err.contains("unet"), "{err}");
        let mut s = spec();
        s.methods = vec![Method::Cps, Method::Cps];
        assert!(s.plan().is_err());
    }
}
