//! Claiming a run: one process at a time trains a run, on one machine or on several sharing
//! the experiment folder over a network file system.
//!
//! A claim is the lock file `EXP/runs/NAME.lock` of [`mgcc_data::safe_fs::lock`] (created with
//! `O_CREAT | O_EXCL`, naming the holder; a dead local holder is taken over, a remote one is
//! respected, an unreadable lock is stale after a minute).

use std::path::{Path, PathBuf};

pub use mgcc_data::safe_fs::lock::{FolderLock as Claim, Holder, read_holder};
use mgcc_data::safe_fs::lock::{LockResult, try_lock};

use crate::error::ExperimentError;

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
    match try_lock(&path).map_err(|e| ExperimentError::io(&path, e))? {
        LockResult::Acquired(lock) => Ok(ClaimResult::Claimed(lock)),
        LockResult::Held(holder) => Ok(ClaimResult::Held(holder)),
    }
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
}
