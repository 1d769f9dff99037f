//! Small file helpers: atomic writes and the machine's host name.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::error::ExperimentError;

/// Write through a unique temporary name, flush, rename over `path`: readers never see half a
/// file, and concurrent writers of one file never interleave.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ExperimentError> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut f = fs::File::create(&tmp).map_err(|e| ExperimentError::io(&tmp, e))?;
    f.write_all(bytes)
        .map_err(|e| ExperimentError::io(&tmp, e))?;
    f.sync_all().map_err(|e| ExperimentError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| ExperimentError::io(path, e))
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
