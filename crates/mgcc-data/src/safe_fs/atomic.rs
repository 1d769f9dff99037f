//! Atomic file writes: a temporary file beside the target, flushed to disk, then renamed over
//! it. Readers see the old file or the new one, never half of one; a failed write (full disk)
//! removes its temporary file and leaves the old file as it was.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageFormat};

use crate::error::{DataError, Result};

/// Suffix of the temporary files of [`write_atomic`] (`.NAME.PID.mgcc-tmp`).
pub const TMP_SUFFIX: &str = "mgcc-tmp";

/// The temporary name used while writing `path`.
pub fn tmp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{TMP_SUFFIX}", std::process::id()))
}

/// Write `bytes` to `path` atomically, creating the parent folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| DataError::io(parent, "cannot create folder", e))?;
    }
    let tmp = tmp_path(path);
    let written = fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(DataError::io(path, "cannot write", e));
    }
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        DataError::io(path, "cannot write", e)
    })
}

/// Encode `img` as PNG in memory and write it atomically.
pub fn save_png_atomic(path: &Path, img: &DynamicImage) -> Result<()> {
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Png)
        .map_err(|e| DataError::Encode {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_and_leaves_no_temporary() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("sub/a.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1, "only the target remains");
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("a.txt");
        write_atomic(&p, b"old").unwrap();
        // The temporary name is taken by a folder: creating it fails.
        fs::create_dir(tmp_path(&p)).unwrap();
        let err = write_atomic(&p, b"new").unwrap_err();
        assert!(
            err.to_string().starts_with(&p.display().to_string()),
            "{err}"
        );
        assert_eq!(fs::read(&p).unwrap(), b"old");
    }
}
