//! All-or-nothing output folders (a dataset made by `phantom` or `import-busi`): the folder is
//! built beside its target under a temporary name and renamed into place when complete, so a
//! failure or a kill leaves the target as it was (absent, empty, or the previous output).

use std::fs;
use std::path::{Path, PathBuf};

use super::ledger::{LEDGER_FILE, Ledger};
use super::lock::{FolderLock, LOCK_FILE, LockResult, process_alive, try_lock};
use crate::error::{DataError, Result};

const STAGING_SUFFIX: &str = "mgcc-staging";

/// A folder being built; dropped without [`Staging::commit`], it is removed.
#[derive(Debug)]
pub struct Staging {
    target: PathBuf,
    work: PathBuf,
    done: bool,
    /// One builder per target at a time (`PARENT/.NAME.mgcc-lock`).
    _lock: FolderLock,
}

impl Staging {
    /// Start building `target`, which must be absent, an empty folder, or — with `force` — a
    /// folder every file of which mgcc wrote (its ledger lists them all; anything else in it
    /// is refused by name, whatever the flags).
    pub fn begin(target: &Path, force: bool) -> Result<Staging> {
        let parent = parent_of(target);
        fs::create_dir_all(&parent)
            .map_err(|e| DataError::io(&parent, "cannot create folder", e))?;
        let lock_file = sibling(target, "mgcc-lock");
        let lock =
            match try_lock(&lock_file).map_err(|e| DataError::io(&lock_file, "cannot lock", e))? {
                LockResult::Acquired(l) => l,
                LockResult::Held(holder) => {
                    return Err(DataError::Locked {
                        path: target.to_path_buf(),
                        holder: holder.to_string(),
                    });
                }
            };
        if target.exists() {
            if !target.is_dir() {
                return Err(DataError::io(
                    target,
                    "output is not a folder",
                    std::io::Error::from(std::io::ErrorKind::AlreadyExists),
                ));
            }
            let files = files_under(target)?;
            if !files.is_empty() {
                if !force {
                    return Err(DataError::OutputExists {
                        path: target.to_path_buf(),
                        non_empty: true,
                    });
                }
                let ledger = Ledger::open(target)?;
                let foreign: Vec<PathBuf> = files
                    .into_iter()
                    .filter(|p| ledger.entry(p).is_none())
                    .collect();
                if !foreign.is_empty() {
                    return Err(DataError::NotWrittenByMgcc {
                        count: foreign.len(),
                        paths: foreign.into_iter().take(5).collect(),
                    });
                }
            }
        }
        sweep_dead_staging(target);
        let work = sibling(target, &format!("{}.{STAGING_SUFFIX}", std::process::id()));
        if work.exists() {
            let _ = fs::remove_dir_all(&work);
        }
        fs::create_dir(&work).map_err(|e| DataError::io(&work, "cannot create folder", e))?;
        Ok(Staging {
            target: target.to_path_buf(),
            work,
            done: false,
            _lock: lock,
        })
    }

    /// The folder to write into.
    pub fn path(&self) -> &Path {
        &self.work
    }

    /// Files in the sub-folders `subdirs` of the current target that the new output does not
    /// have (what committing removes from them).
    pub fn dropped_files(&self, subdirs: &[PathBuf]) -> usize {
        let names = |d: &Path| -> std::collections::HashSet<std::ffi::OsString> {
            fs::read_dir(d)
                .map(|e| e.flatten().map(|e| e.file_name()).collect())
                .unwrap_or_default()
        };
        subdirs
            .iter()
            .map(|sub| {
                let new = names(&self.work.join(sub));
                names(&self.target.join(sub)).difference(&new).count()
            })
            .sum()
    }

    /// Record every file in a ledger and move the folder into place (replacing the previous
    /// output, if any).
    pub fn commit(mut self) -> Result<()> {
        let files = files_under(&self.work)?;
        Ledger::open(&self.work)?.record_complete(&files)?;
        let rename = |from: &Path, to: &Path| {
            fs::rename(from, to).map_err(|e| DataError::io(to, "cannot move into place", e))
        };
        if self.target.exists() {
            let old = sibling(&self.target, &format!("{}.mgcc-old", std::process::id()));
            rename(&self.target, &old)?;
            if let Err(e) = rename(&self.work, &self.target) {
                let _ = fs::rename(&old, &self.target);
                return Err(e);
            }
            let _ = fs::remove_dir_all(&old);
        } else {
            rename(&self.work, &self.target)?;
        }
        self.done = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_dir_all(&self.work);
        }
    }
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `PARENT/.NAME.TAG`.
fn sibling(target: &Path, tag: &str) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    parent_of(target).join(format!(".{name}.{tag}"))
}

/// Remove staging folders of this target left by killed processes.
fn sweep_dead_staging(target: &Path) {
    let Some(name) = target.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let prefix = format!(".{name}.");
    let Ok(entries) = fs::read_dir(parent_of(target)) else {
        return;
    };
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = n.strip_prefix(&prefix) else {
            continue;
        };
        let pid = rest
            .strip_suffix(&format!(".{STAGING_SUFFIX}"))
            .or_else(|| rest.strip_suffix(".mgcc-old"))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !process_alive(pid)
        {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Every file under `dir` (recursively, symlinks not followed), but the ledger and the lock.
pub fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = fs::read_dir(&d).map_err(|e| DataError::io(&d, "cannot list folder", e))?;
        for e in entries {
            let e = e.map_err(|err| DataError::io(&d, "cannot list folder", err))?;
            let path = e.path();
            let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if is_dir {
                stack.push(path);
            } else if d != dir || (e.file_name() != LEDGER_FILE && e.file_name() != LOCK_FILE) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_folder_appears_only_on_commit_and_replaces_only_mgcc_output() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("ds");
        {
            let s = Staging::begin(&target, false).unwrap();
            fs::write(s.path().join("a.png"), "1").unwrap();
            // Dropped without commit: nothing remains.
        }
        assert!(!target.exists());
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 0);
        let s = Staging::begin(&target, false).unwrap();
        fs::create_dir(s.path().join("images")).unwrap();
        fs::write(s.path().join("images/a.png"), "1").unwrap();
        s.commit().unwrap();
        assert!(Ledger::exists(&target));
        // Non-empty: refused without force, replaced with it.
        assert!(matches!(
            Staging::begin(&target, false).unwrap_err(),
            DataError::OutputExists { .. }
        ));
        let s = Staging::begin(&target, true).unwrap();
        fs::write(s.path().join("b.png"), "2").unwrap();
        s.commit().unwrap();
        assert!(target.join("b.png").exists() && !target.join("images/a.png").exists());
        // A file mgcc did not write blocks even --force.
        fs::write(target.join("notes.txt"), "mine").unwrap();
        let err = Staging::begin(&target, true).unwrap_err();
        assert!(err.to_string().contains("notes.txt"), "{err}");
        assert_eq!(
            fs::read_to_string(target.join("notes.txt")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn an_empty_target_folder_is_filled() {
        let t = tempfile::tempdir().unwrap();
        let s = Staging::begin(t.path(), false).unwrap();
        fs::write(s.path().join("x"), "1").unwrap();
        s.commit().unwrap();
        assert!(t.path().join("x").exists());
    }
}
