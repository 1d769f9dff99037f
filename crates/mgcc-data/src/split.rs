//! Reproducible train/val splits written as `DIR/NAME_train{k}.txt` and `DIR/NAME_val{k}.txt`
//! (one stem per line, the format the published MGCC code reads, e.g. `busi_train1.txt`).
//!
//! Split k: sort the stems, shuffle them with `ChaCha8Rng::seed_from_u64(seeds[k-1])`, the first
//! `round(n × val_fraction)` are validation, the rest training; both lists are written sorted.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::error::{DataError, Result};
use crate::layout::{Dataset, IMAGE_EXTENSIONS, list_files};

/// Seeds of the default three splits.
pub const DEFAULT_SEEDS: [u64; 3] = [41, 64, 1337];

/// Options of [`write_splits`].
#[derive(Debug, Clone)]
pub struct SplitOptions {
    /// Number of splits k = 1..=splits.
    pub splits: usize,
    /// Validation fraction in (0, 1).
    pub val_fraction: f64,
    /// One seed per split (at least `splits`).
    pub seeds: Vec<u64>,
    /// File name prefix; default [`default_split_name`].
    pub name: Option<String>,
    /// Overwrite existing split files of the same name.
    pub force: bool,
}

impl Default for SplitOptions {
    fn default() -> Self {
        SplitOptions {
            splits: 3,
            val_fraction: 0.3,
            seeds: DEFAULT_SEEDS.to_vec(),
            name: None,
            force: false,
        }
    }
}

/// One written split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitSet {
    pub k: usize,
    pub seed: u64,
    pub train: Vec<String>,
    pub val: Vec<String>,
    pub train_path: PathBuf,
    pub val_path: PathBuf,
}

/// Lower-cased folder name with characters outside `[a-z0-9_-]` replaced by `_`, or `split`.
pub fn default_split_name(dir: &Path) -> String {
    let base = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let raw = base
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_lowercase();
    sanitise_name(&raw).unwrap_or_else(|| "split".to_owned())
}

/// `[a-z0-9_-]` with runs of other characters turned into one `_`; `None` when nothing is left.
pub fn sanitise_name(raw: &str) -> Option<String> {
    let mut out = String::new();
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_matches('_').to_owned();
    (!out.is_empty()).then_some(out)
}

/// `(train, val)` of `stems` for one seed (see the module doc); both sorted.
pub fn make_split(
    stems: &[String],
    val_fraction: f64,
    seed: u64,
) -> Result<(Vec<String>, Vec<String>)> {
    if !(val_fraction > 0.0 && val_fraction < 1.0) {
        return Err(DataError::Config(format!(
            "val fraction {val_fraction} must be in (0, 1)"
        )));
    }
    let n = stems.len();
    let n_val = (n as f64 * val_fraction).round() as usize;
    if n_val == 0 || n_val >= n {
        return Err(DataError::Config(format!(
            "{n} stems with val fraction {val_fraction} give {n_val} validation and {} training stems; both must be > 0",
            n.saturating_sub(n_val)
        )));
    }
    let mut all = stems.to_vec();
    all.sort();
    all.dedup();
    if all.len() != n {
        return Err(DataError::Config("duplicate stems".into()));
    }
    all.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut val = all[..n_val].to_vec();
    let mut train = all[n_val..].to_vec();
    val.sort();
    train.sort();
    Ok((train, val))
}

fn split_paths(dir: &Path, name: &str, k: usize) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{name}_train{k}.txt")),
        dir.join(format!("{name}_val{k}.txt")),
    )
}

fn write_list(path: &Path, stems: &[String]) -> Result<()> {
    let mut text = stems.join("\n");
    text.push('\n');
    crate::safe_fs::write_atomic(path, text.as_bytes())
}

/// Write splits 1..=splits of the dataset at `dir` (which must open as a [`Dataset`]).
/// Refuses (before writing anything) when a target file exists, unless `force` and mgcc wrote
/// it (files it did not write are never replaced; see [`crate::safe_fs::ledger`]). Each file is
/// written atomically; when one fails, the files this call wrote are removed again.
pub fn write_splits(dir: &Path, opts: &SplitOptions) -> Result<Vec<SplitSet>> {
    if opts.splits == 0 {
        return Err(DataError::Config("--splits must be at least 1".into()));
    }
    if opts.seeds.len() < opts.splits {
        return Err(DataError::Config(format!(
            "{} splits need {} seeds, got {} ({:?}); pass --seeds",
            opts.splits,
            opts.splits,
            opts.seeds.len(),
            opts.seeds
        )));
    }
    let name = match &opts.name {
        Some(n) => sanitise_name(n).filter(|s| s == n).ok_or_else(|| {
            DataError::Config(format!("split name `{n}` must be non-empty [a-z0-9_-]"))
        })?,
        None => default_split_name(dir),
    };
    let stems = Dataset::open(dir)?.stems();
    let mut sets = Vec::with_capacity(opts.splits);
    for k in 1..=opts.splits {
        let seed = opts.seeds[k - 1];
        let (train, val) = make_split(&stems, opts.val_fraction, seed)?;
        let (train_path, val_path) = split_paths(dir, &name, k);
        sets.push(SplitSet {
            k,
            seed,
            train,
            val,
            train_path,
            val_path,
        });
    }
    let paths: Vec<PathBuf> = sets
        .iter()
        .flat_map(|s| [s.train_path.clone(), s.val_path.clone()])
        .collect();
    let _lock = crate::safe_fs::lock::lock_folder(dir)?;
    let mut ledger = crate::safe_fs::Ledger::open(dir)?;
    ledger.claim(&paths, opts.force)?;
    let mut written = Vec::new();
    for (path, stems) in sets
        .iter()
        .flat_map(|s| [(&s.train_path, &s.train), (&s.val_path, &s.val)])
    {
        if let Err(e) = write_list(path, stems) {
            let _ = ledger.remove(&written);
            return Err(e);
        }
        written.push(path.clone());
    }
    ledger.complete(&paths)?;
    Ok(sets)
}

/// Names `NAME` for which `dir/NAME_train{k}.txt` exists, sorted.
pub fn split_names(dir: &Path, k: usize) -> Result<Vec<String>> {
    let suffix = format!("_train{k}.txt");
    let mut names: Vec<String> = list_files(dir)?
        .iter()
        .filter_map(|p| {
            p.file_name()?
                .to_str()?
                .strip_suffix(&suffix)
                .map(str::to_owned)
        })
        .filter(|n| !n.is_empty())
        .collect();
    names.sort();
    Ok(names)
}

/// Stems of one split file: one per line, blank lines skipped, `\r` and surrounding spaces
/// trimmed; a line naming a file with an image extension is taken as its stem when the
/// full name is not a stem. Every stem must be in `known`, with no duplicates.
fn read_list(path: &Path, known: &HashSet<String>) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| DataError::io(path, "cannot read split file", e))?;
    let mut seen = HashSet::new();
    let mut stems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let raw = line.trim();
        if raw.is_empty() {
            continue;
        }
        let stem = if known.contains(raw) {
            raw.to_owned()
        } else {
            let stripped = Path::new(raw)
                .extension()
                .and_then(|e| e.to_str())
                .filter(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
                .and_then(|_| Path::new(raw).file_stem()?.to_str())
                .filter(|s| known.contains(*s));
            match stripped {
                Some(s) => s.to_owned(),
                None => {
                    return Err(DataError::UnknownStem {
                        path: path.to_path_buf(),
                        line: line_no,
                        stem: raw.to_owned(),
                    });
                }
            }
        };
        if !seen.insert(stem.clone()) {
            return Err(DataError::BadSplit {
                path: path.to_path_buf(),
                line: line_no,
                reason: format!("stem `{stem}` listed twice"),
            });
        }
        stems.push(stem);
    }
    if stems.is_empty() {
        return Err(DataError::BadSplit {
            path: path.to_path_buf(),
            line: 1,
            reason: "no stems".into(),
        });
    }
    Ok(stems)
}

/// Read split `k` of the dataset at `dir`: `(train, val)` stems in file order.
///
/// Finds `NAME_train{k}.txt`; with `name = None` there must be exactly one such NAME (else the
/// error lists them and asks for `--split-name NAME`). Every stem must exist in the dataset and
/// train and val must not overlap.
pub fn read_split(dir: &Path, name: Option<&str>, k: usize) -> Result<(Vec<String>, Vec<String>)> {
    let names = split_names(dir, k)?;
    let name = match name {
        Some(n) if names.iter().any(|x| x == n) => n.to_owned(),
        Some(n) => {
            return Err(DataError::MissingSplit {
                dir: dir.to_path_buf(),
                pattern: format!("{n}_train{k}.txt"),
                available: names,
            });
        }
        None => match names.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(DataError::MissingSplit {
                    dir: dir.to_path_buf(),
                    pattern: format!("*_train{k}.txt (run `mgcc split`)"),
                    available: vec![],
                });
            }
            _ => {
                return Err(DataError::AmbiguousSplit {
                    dir: dir.to_path_buf(),
                    names,
                });
            }
        },
    };
    let (train_path, val_path) = split_paths(dir, &name, k);
    if !val_path.is_file() {
        return Err(DataError::MissingSplit {
            dir: dir.to_path_buf(),
            pattern: format!("{name}_val{k}.txt"),
            available: vec![],
        });
    }
    let known: HashSet<String> = Dataset::open(dir)?.stems().into_iter().collect();
    let train = read_list(&train_path, &known)?;
    let val = read_list(&val_path, &known)?;
    let train_set: HashSet<&String> = train.iter().collect();
    if let Some((i, s)) = val.iter().enumerate().find(|(_, s)| train_set.contains(s)) {
        return Err(DataError::BadSplit {
            path: val_path,
            line: i + 1,
            reason: format!("stem `{s}` is also in {}", train_path.display()),
        });
    }
    Ok((train, val))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{images_dir, mask_path};
    use crate::test_util::{write_gray, write_mask};

    fn dataset(root: &Path, n: usize) -> Vec<String> {
        let stems: Vec<String> = (0..n).map(|i| format!("case ({i})")).collect();
        for s in &stems {
            write_gray(&images_dir(root).join(format!("{s}.png")), 2, 2, 1);
            write_mask(&mask_path(root, s), 2, 2, &[]);
        }
        stems
    }

    #[test]
    fn deterministic_70_30_disjoint_covering() {
        let stems: Vec<String> = (0..20).map(|i| format!("s{i:02}")).collect();
        let (t1, v1) = make_split(&stems, 0.3, 41).unwrap();
        let mut rev = stems.clone();
        rev.reverse();
        let (t2, v2) = make_split(&rev, 0.3, 41).unwrap();
        assert_eq!((&t1, &v1), (&t2, &v2), "input order must not matter");
        assert_eq!((t1.len(), v1.len()), (14, 6));
        let mut all: Vec<String> = t1.iter().chain(&v1).cloned().collect();
        all.sort();
        assert_eq!(all, stems);
        let (_, v3) = make_split(&stems, 0.3, 64).unwrap();
        assert_ne!(v1, v3, "different seeds give different splits");
        // round(n × f): 21 × 0.3 = 6.3 → 6; 25 × 0.3 = 7.5 → 8.
        assert!(make_split(&stems[..1], 0.3, 1).is_err());
        let s25: Vec<String> = (0..25).map(|i| i.to_string()).collect();
        assert_eq!(make_split(&s25, 0.3, 1).unwrap().1.len(), 8);
    }

    #[test]
    fn writes_reads_refuses_overwrite() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("My Data(1)");
        let stems = dataset(&root, 10);
        let sets = write_splits(&root, &SplitOptions::default()).unwrap();
        assert_eq!(sets.len(), 3);
        assert!(root.join("my_data_1_train1.txt").is_file());
        assert!(root.join("my_data_1_val3.txt").is_file());
        let (train, val) = read_split(&root, None, 2).unwrap();
        assert_eq!((train.len(), val.len()), (7, 3));
        assert_eq!(train, sets[1].train);
        assert!(train.iter().all(|s| stems.contains(s)));

        let err = write_splits(&root, &SplitOptions::default()).unwrap_err();
        assert!(matches!(err, DataError::OutputExists { .. }), "{err}");
        let forced = SplitOptions {
            force: true,
            ..Default::default()
        };
        assert_eq!(
            write_splits(&root, &forced).unwrap(),
            sets,
            "same seed, same files"
        );

        // A second name makes the choice ambiguous.
        let named = SplitOptions {
            name: Some("busi".into()),
            splits: 1,
            seeds: vec![7],
            ..Default::default()
        };
        write_splits(&root, &named).unwrap();
        let err = read_split(&root, None, 1).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("busi, my_data_1") && msg.contains("--split-name NAME"),
            "{msg}"
        );
        assert!(read_split(&root, Some("busi"), 1).is_ok());
        let err = read_split(&root, Some("nope"), 1).unwrap_err();
        assert!(
            err.to_string().contains("available: busi, my_data_1"),
            "{err}"
        );
    }

    #[test]
    fn unknown_stem_and_overlap_are_errors() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        dataset(root, 4);
        std::fs::write(
            root.join("x_train1.txt"),
            "case (0)\ncase (1).png\r\n\ncase (9)\n",
        )
        .unwrap();
        std::fs::write(root.join("x_val1.txt"), "case (2)\n").unwrap();
        let err = read_split(root, None, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}:4: stem `case (9)` is not in the dataset",
                root.join("x_train1.txt").display()
            )
        );
        std::fs::write(root.join("x_train1.txt"), "case (0)\ncase (1).png\r\n").unwrap();
        let (train, _) = read_split(root, None, 1).unwrap();
        assert_eq!(train, vec!["case (0)", "case (1)"]);
        std::fs::write(root.join("x_val1.txt"), "case (1)\n").unwrap();
        let err = read_split(root, None, 1).unwrap_err();
        assert!(matches!(err, DataError::BadSplit { .. }), "{err}");
        let err = read_split(root, None, 2).unwrap_err();
        assert!(matches!(err, DataError::MissingSplit { .. }), "{err}");
    }

    #[test]
    fn seeds_and_names_validated() {
        let t = tempfile::tempdir().unwrap();
        dataset(t.path(), 4);
        let o = SplitOptions {
            splits: 4,
            ..Default::default()
        };
        assert!(matches!(
            write_splits(t.path(), &o),
            Err(DataError::Config(_))
        ));
        let o = SplitOptions {
            name: Some("a b".into()),
            ..Default::default()
        };
        assert!(matches!(
            write_splits(t.path(), &o),
            Err(DataError::Config(_))
        ));
        assert_eq!(sanitise_name("BUSI real (6)"), Some("busi_real_6".into()));
        assert_eq!(sanitise_name("..."), None);
    }
}
