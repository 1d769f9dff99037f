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

pub use mgcc_data::safe_fs::lock::{host_name, now_secs, process_alive};
