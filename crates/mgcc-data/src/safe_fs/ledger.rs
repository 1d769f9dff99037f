//! A folder's record of the files mgcc wrote into it, `DIR/.mgcc-written.json`.
//!
//! Commands that write into a folder the user names (predict, evaluate, split, phantom,
//! import-busi) list their output files here *before* writing them, as incomplete, and mark
//! them complete when the invocation succeeds. The rules ([`Ledger::claim`]):
//! - a file that does not exist may be written;
//! - an existing file that is not in the ledger was not written by mgcc: it is never replaced,
//!   whatever the flags;
//! - an existing file from an invocation that did not finish (failed, or killed) may be
//!   replaced by the rerun;
//! - an existing complete output is replaced only with `--force`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::atomic::{TMP_SUFFIX, write_atomic};
use super::lock::process_alive;
use crate::error::{DataError, Result};

/// Name of the ledger file.
pub const LEDGER_FILE: &str = ".mgcc-written.json";

/// One recorded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Whether the invocation that wrote it finished successfully.
    pub complete: bool,
}

/// The ledger of one folder.
#[derive(Debug, Clone)]
pub struct Ledger {
    dir: PathBuf,
    files: BTreeMap<String, Entry>,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    files: BTreeMap<String, Entry>,
}

impl Ledger {
    /// The ledger of `dir` (empty when the folder or its ledger does not exist). Temporary files
    /// of dead writers in `dir` and its sub-folders that hold recorded files are removed.
    pub fn open(dir: &Path) -> Result<Ledger> {
        let path = dir.join(LEDGER_FILE);
        let files = match std::fs::read_to_string(&path) {
            Ok(text) => {
                serde_json::from_str::<OnDisk>(&text)
                    .map_err(|e| DataError::BadLedger {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?
                    .files
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(DataError::io(&path, "cannot read", e)),
        };
        let ledger = Ledger {
            dir: dir.to_path_buf(),
            files,
        };
        ledger.sweep_temporaries();
        Ok(ledger)
    }

    /// Whether `dir` has a ledger (mgcc wrote into it).
    pub fn exists(dir: &Path) -> bool {
        dir.join(LEDGER_FILE).is_file()
    }

    /// The entry of `path` (a path inside the folder), if recorded.
    pub fn entry(&self, path: &Path) -> Option<Entry> {
        self.files.get(&self.rel(path)).copied()
    }

    /// Recorded files, relative to the folder.
    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// Check that every path of `paths` may be written (see the module doc), naming every file
    /// that may not; then record them all as incomplete.
    pub fn claim(&mut self, paths: &[PathBuf], force: bool) -> Result<()> {
        let mut foreign = Vec::new();
        let mut finished = Vec::new();
        for p in paths {
            if std::fs::symlink_metadata(p).is_err() {
                continue;
            }
            match self.entry(p) {
                None => foreign.push(p.clone()),
                Some(Entry { complete: true }) if !force => finished.push(p.clone()),
                Some(_) => {}
            }
        }
        if !foreign.is_empty() {
            return Err(DataError::NotWrittenByMgcc {
                count: foreign.len(),
                paths: foreign.into_iter().take(5).collect(),
            });
        }
        if let Some(path) = finished.into_iter().next() {
            return Err(DataError::OutputExists {
                path,
                non_empty: false,
            });
        }
        for p in paths {
            self.files.insert(self.rel(p), Entry { complete: false });
        }
        self.save()
    }

    /// Mark `paths` complete (the invocation that wrote them succeeded).
    pub fn complete(&mut self, paths: &[PathBuf]) -> Result<()> {
        for p in paths {
            if let Some(e) = self.files.get_mut(&self.rel(p)) {
                e.complete = true;
            }
        }
        self.save()
    }

    /// Record `paths` as complete without the claim's checks (a folder built from scratch).
    pub fn record_complete(&mut self, paths: &[PathBuf]) -> Result<()> {
        for p in paths {
            self.files.insert(self.rel(p), Entry { complete: true });
        }
        self.save()
    }

    /// Forget `paths` and delete those that exist (undo of a failed invocation's claim).
    pub fn remove(&mut self, paths: &[PathBuf]) -> Result<()> {
        for p in paths {
            if self.files.remove(&self.rel(p)).is_some() {
                let _ = std::fs::remove_file(p);
            }
        }
        self.save()
    }

    fn save(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(&OnDisk {
            files: self.files.clone(),
        })
        .expect("serialisable");
        write_atomic(&self.dir.join(LEDGER_FILE), text.as_bytes())
    }

    fn rel(&self, path: &Path) -> String {
        let rel = path.strip_prefix(&self.dir).unwrap_or(path);
        rel.to_string_lossy().replace('\\', "/")
    }

    /// Remove `.NAME.PID.mgcc-tmp` files of dead processes.
    fn sweep_temporaries(&self) {
        let mut dirs: Vec<PathBuf> = vec![self.dir.clone()];
        for rel in self.files.keys() {
            if let Some(parent) = Path::new(rel)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                let d = self.dir.join(parent);
                if !dirs.contains(&d) {
                    dirs.push(d);
                }
            }
        }
        for d in dirs {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = tmp_pid(&name)
                    && !process_alive(pid)
                {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

/// The pid of a temporary name `.NAME.PID.mgcc-tmp`.
fn tmp_pid(name: &str) -> Option<u32> {
    let rest = name.strip_suffix(&format!(".{TMP_SUFFIX}"))?;
    rest.rsplit('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn foreign_files_are_never_claimed_and_finished_ones_need_force() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let mine = d.join("a.png");
        let theirs = d.join("b.png");
        fs::write(&theirs, "user's").unwrap();
        let mut l = Ledger::open(d).unwrap();
        let err = l.claim(&[mine.clone(), theirs.clone()], true).unwrap_err();
        assert!(
            matches!(err, DataError::NotWrittenByMgcc { count: 1, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("b.png"), "{err}");
        assert!(!Ledger::exists(d), "a refused claim records nothing");

        l.claim(std::slice::from_ref(&mine), false).unwrap();
        fs::write(&mine, "mask").unwrap();
        // Not completed (the invocation failed or was killed): a rerun may replace it.
        let mut again = Ledger::open(d).unwrap();
        again.claim(std::slice::from_ref(&mine), false).unwrap();
        again.complete(std::slice::from_ref(&mine)).unwrap();
        let mut third = Ledger::open(d).unwrap();
        let err = third.claim(std::slice::from_ref(&mine), false).unwrap_err();
        assert!(matches!(err, DataError::OutputExists { .. }), "{err}");
        third.claim(std::slice::from_ref(&mine), true).unwrap();
        assert_eq!(fs::read_to_string(&theirs).unwrap(), "user's");
    }

    #[test]
    fn remove_deletes_only_recorded_files_and_dead_temporaries_are_swept() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let mut l = Ledger::open(d).unwrap();
        let a = d.join("sub/a.png");
        l.claim(std::slice::from_ref(&a), false).unwrap();
        fs::create_dir_all(d.join("sub")).unwrap();
        fs::write(&a, "x").unwrap();
        let other = d.join("sub/keep.txt");
        fs::write(&other, "y").unwrap();
        l.remove(&[a.clone(), other.clone()]).unwrap();
        assert!(!a.exists() && other.exists());

        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let tmp = d.join(format!(".a.png.{dead}.{TMP_SUFFIX}"));
        let live = d.join(format!(".a.png.{}.{TMP_SUFFIX}", std::process::id()));
        fs::write(&tmp, "half").unwrap();
        fs::write(&live, "being written").unwrap();
        Ledger::open(d).unwrap();
        assert!(!tmp.exists() && live.exists());
    }

    #[test]
    fn a_corrupt_ledger_is_an_error_naming_it() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join(LEDGER_FILE), "{").unwrap();
        let err = Ledger::open(t.path()).unwrap_err();
        assert!(err.to_string().contains(LEDGER_FILE), "{err}");
    }
}
