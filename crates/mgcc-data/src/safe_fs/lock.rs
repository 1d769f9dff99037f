//! One writer per folder: a lock file created with `O_CREAT | O_EXCL` (atomic on local and NFS
//! v3+ file systems) holding the holder's host, pid and start time.
//!
//! A lock whose holder is a dead process on this host is stale: it is taken over by renaming it
//! to a name unique to the taker (only one rename of a file can succeed), then locking afresh.
//! A lock held from another host is respected (this host cannot tell whether that process
//! lives). An unreadable lock (its holder died between creating and writing it) is stale after
//! a minute. The lock is removed when the [`FolderLock`] is dropped; after `kill -9` it stays,
//! names a dead pid, and the next writer takes it over.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// Name of the lock file inside a locked folder.
pub const LOCK_FILE: &str = ".mgcc.lock";

/// Who holds a lock.
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

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "process {} on {}", self.pid, self.host)
    }
}

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct FolderLock {
    path: PathBuf,
}

impl FolderLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// What an attempt to lock found.
#[derive(Debug)]
pub enum LockResult {
    /// Ours until the lock is dropped.
    Acquired(FolderLock),
    /// Another live process holds it.
    Held(Holder),
}

/// Try to take the lock file `path` (its folder is created).
pub fn try_lock(path: &Path) -> std::io::Result<LockResult> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    for _ in 0..3 {
        match OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(mut f) => {
                let me = serde_json::to_string(&Holder::me()).expect("serialisable");
                if let Err(e) = f.write_all(me.as_bytes()).and_then(|_| f.sync_all()) {
                    let _ = fs::remove_file(path);
                    return Err(e);
                }
                return Ok(LockResult::Acquired(FolderLock {
                    path: path.to_path_buf(),
                }));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = match read_holder(path) {
                    Some(h) => h,
                    // Being written this instant, or vanished: look again.
                    None => {
                        std::thread::sleep(Duration::from_millis(50));
                        match read_holder(path) {
                            Some(h) => h,
                            None if !path.exists() => continue,
                            None if lock_age(path).is_some_and(|a| a > UNREADABLE_STALE) => {
                                Holder {
                                    host: host_name(),
                                    pid: 0,
                                    started: 0,
                                }
                            }
                            None => {
                                return Ok(LockResult::Held(Holder {
                                    host: "?".into(),
                                    pid: 0,
                                    started: 0,
                                }));
                            }
                        }
                    }
                };
                if !holder.is_stale() {
                    return Ok(LockResult::Held(holder));
                }
                // Take over: only one process can rename the stale file away.
                let grave = path.with_extension(format!("stale.{}", std::process::id()));
                if fs::rename(path, &grave).is_ok() {
                    let _ = fs::remove_file(&grave);
                }
            }
            Err(e) => return Err(e),
        }
    }
    match read_holder(path) {
        Some(h) => Ok(LockResult::Held(h)),
        None => Err(std::io::Error::other("the lock keeps changing")),
    }
}

/// Lock the folder `dir` for writing (`DIR/.mgcc.lock`), or a clear error naming the holder.
pub fn lock_folder(dir: &Path) -> Result<FolderLock> {
    let path = dir.join(LOCK_FILE);
    match try_lock(&path).map_err(|e| DataError::io(&path, "cannot lock", e))? {
        LockResult::Acquired(lock) => Ok(lock),
        LockResult::Held(holder) => Err(DataError::Locked {
            path: dir.to_path_buf(),
            holder: holder.to_string(),
        }),
    }
}

/// An unreadable lock file older than this is stale.
const UNREADABLE_STALE: Duration = Duration::from_secs(60);

fn lock_age(path: &Path) -> Option<Duration> {
    fs::metadata(path).ok()?.modified().ok()?.elapsed().ok()
}

/// The holder recorded in a lock file, if it can be read.
pub fn read_holder(path: &Path) -> Option<Holder> {
    serde_json::from_str(&fs::read_to_string(path).ok()?).ok()
}

/// This machine's host name (`gethostname`), or `unknown`.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Whether a process with this pid exists on this machine.
pub fn process_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_excludes_others_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_folder(dir.path()).unwrap();
        let holder = read_holder(first.path()).unwrap();
        assert_eq!(holder.pid, std::process::id());
        // This process is alive, so its lock is not stale.
        let err = lock_folder(dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("process {}", std::process::id())),
            "{err}"
        );
        drop(first);
        assert!(!dir.path().join(LOCK_FILE).exists());
        lock_folder(dir.path()).unwrap();
    }

    #[test]
    fn an_empty_lock_is_respected_while_fresh_and_taken_over_when_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let lock = fs::File::create(&path).unwrap();
        assert!(matches!(try_lock(&path).unwrap(), LockResult::Held(_)));
        lock.set_modified(std::time::SystemTime::now() - Duration::from_secs(600))
            .unwrap();
        drop(lock);
        assert!(matches!(try_lock(&path).unwrap(), LockResult::Acquired(_)));
    }

    #[test]
    fn a_dead_local_holder_is_taken_over_and_a_remote_one_is_respected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        // A process that has exited: its pid is free.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = Holder {
            host: host_name(),
            pid: dead,
            started: 1,
        };
        fs::write(&path, serde_json::to_string(&stale).unwrap()).unwrap();
        let lock = try_lock(&path).unwrap();
        assert!(matches!(lock, LockResult::Acquired(_)));
        assert_eq!(read_holder(&path).unwrap().pid, std::process::id());
        drop(lock);
        let remote = Holder {
            host: "another-host-xyz".into(),
            pid: dead,
            started: 1,
        };
        fs::write(&path, serde_json::to_string(&remote).unwrap()).unwrap();
        assert!(matches!(try_lock(&path).unwrap(), LockResult::Held(h) if h == remote));
    }
}
