//! Claiming a run: one process at a time trains a run, on one machine or on several sharing
//! the experiment folder over a network file system.
//!
//! A claim is the file `EXP/runs/NAME.lock`, created with `O_CREAT | O_EXCL` (atomic on local
//! and NFS v3+ file systems) and holding the holder's host, pid and start time. A lock whose
//! holder is a dead process on this host is stale: it is taken over by renaming it to a name
//! unique to the taker (only one rename of a file can succeed), then claiming afresh. A lock
//! held from another host is respected (this host cannot tell whether that process lives). An
//! unreadable lock (its holder died between creating and writing it) is stale after a minute.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ExperimentError;
use crate::fsutil::{host_name, now_secs, process_alive};

/// Who holds a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    /// Seconds since the Unix epoch.
    pub started: u64,
}

impl Holder {
    /// This process.
    pub fn me() -> Self {
        Holder {
            host: host_name(),
            pid: std::process::id(),
            started: now_secs(),
        }
    }

    /// Whether the holder is a process of this host that no longer exists (pid 0: a lock left
    /// unreadable by a holder that died while creating it).
    pub fn is_stale(&self) -> bool {
        self.host == host_name() && (self.pid == 0 || !process_alive(self.pid))
    }
}

/// A held claim; dropping it releases the lock.
#[derive(Debug)]
pub struct Claim {
    path: PathBuf,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// What an attempt to claim found.
#[derive(Debug)]
pub enum ClaimResult {
    /// The run is ours until the claim is dropped.
    Claimed(Claim),
    /// Another live process holds it.
    Held(Holder),
}

/// The lock file of a run folder `EXP/runs/NAME`.
pub fn lock_path(run_dir: &Path) -> PathBuf {
    run_dir.with_extension("lock")
}

/// Try to claim the run whose folder is `run_dir`.
pub fn try_claim(run_dir: &Path) -> Result<ClaimResult, ExperimentError> {
    let path = lock_path(run_dir);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| ExperimentError::io(parent, e))?;
    }
    for _ in 0..3 {
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                let me = serde_json::to_string(&Holder::me()).expect("serialisable");
                f.write_all(me.as_bytes())
                    .and_then(|_| f.sync_all())
                    .map_err(|e| ExperimentError::io(&path, e))?;
                return Ok(ClaimResult::Claimed(Claim { path }));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = match read_holder(&path) {
                    Some(h) => h,
                    // Being written this instant, or vanished: look again.
                    None => {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        match read_holder(&path) {
                            Some(h) => h,
                            None if !path.exists() => continue,
                            // Unreadable: a holder that died between creating and writing it
                            // (stale once older than a minute), or one writing it right now.
                            None if lock_age(&path).is_some_and(|a| a > UNREADABLE_STALE) => {
                                Holder {
                                    host: host_name(),
                                    pid: 0,
                                    started: 0,
                                }
                            }
                            None => {
                                return Ok(ClaimResult::Held(Holder {
                                    host: "?".into(),
                                    pid: 0,
                                    started: 0,
                                }));
                            }
                        }
                    }
                };
                if !holder.is_stale() {
                    return Ok(ClaimResult::Held(holder));
                }
                // Take over: only one process can rename the stale file away.
                let grave = path.with_extension(format!("stale.{}", std::process::id()));
                if fs::rename(&path, &grave).is_ok() {
                    let _ = fs::remove_file(&grave);
                }
            }
            Err(e) => return Err(ExperimentError::io(&path, e)),
        }
    }
    match read_holder(&path) {
        Some(h) => Ok(ClaimResult::Held(h)),
        None => Err(ExperimentError::Invalid(format!(
            "{}: cannot claim the run (the lock keeps changing)",
            path.display()
        ))),
    }
}

/// An unreadable lock file older than this is stale.
const UNREADABLE_STALE: std::time::Duration = std::time::Duration::from_secs(60);

/// Time since the lock file was last modified.
fn lock_age(path: &Path) -> Option<std::time::Duration> {
    fs::metadata(path).ok()?.modified().ok()?.elapsed().ok()
}

/// The holder recorded in a lock file, if it can be read.
pub fn read_holder(path: &Path) -> Option<Holder> {
    serde_json::from_str(&fs::read_to_string(path).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_excludes_others_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("runs/a");
        let first = match try_claim(&run).unwrap() {
            ClaimResult::Claimed(c) => c,
            ClaimResult::Held(h) => panic!("held by {h:?}"),
        };
        let holder = read_holder(&lock_path(&run)).unwrap();
        assert_eq!(holder.pid, std::process::id());
        // This process is alive, so its lock is not stale.
        assert!(matches!(try_claim(&run).unwrap(), ClaimResult::Held(_)));
        drop(first);
        assert!(!lock_path(&run).exists());
        assert!(matches!(try_claim(&run).unwrap(), ClaimResult::Claimed(_)));
    }

    #[test]
    fn an_empty_lock_is_respected_while_fresh_and_taken_over_when_old() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("runs/c");
        std::fs::create_dir_all(dir.path().join("runs")).unwrap();
        let lock = std::fs::File::create(lock_path(&run)).unwrap();
        assert!(matches!(try_claim(&run).unwrap(), ClaimResult::Held(_)));
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(600);
        lock.set_modified(old).unwrap();
        drop(lock);
        assert!(matches!(try_claim(&run).unwrap(), ClaimResult::Claimed(_)));
    }

    #[test]
    fn a_dead_local_holder_is_taken_over_and_a_remote_one_is_respected() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("runs/b");
        std::fs::create_dir_all(dir.path().join("runs")).unwrap();
        // A process that has exited: its pid is free.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = Holder {
            host: host_name(),
            pid: dead,
            started: 1,
        };
        std::fs::write(lock_path(&run), serde_json::to_string(&stale).unwrap()).unwrap();
        let claim = try_claim(&run).unwrap();
        assert!(matches!(claim, ClaimResult::Claimed(_)));
        assert_eq!(
            read_holder(&lock_path(&run)).unwrap().pid,
            std::process::id()
        );
        drop(claim);
        let remote = Holder {
            host: "another-node".into(),
            pid: dead,
            started: 1,
        };
        std::fs::write(lock_path(&run), serde_json::to_string(&remote).unwrap()).unwrap();
        match try_claim(&run).unwrap() {
            ClaimResult::Held(h) => assert_eq!(h.host, "another-node"),
            ClaimResult::Claimed(_) => panic!("a remote holder must be respected"),
        }
    }
}
