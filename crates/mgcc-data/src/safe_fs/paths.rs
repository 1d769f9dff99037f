//! Output paths that would overwrite an input are refused whatever the flags.

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

/// The absolute, symlink-free form of `path`; for a path that does not exist yet, its deepest
/// existing ancestor is resolved and the rest appended.
pub fn resolve(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut tail = Vec::new();
    let mut cur = abs.as_path();
    loop {
        if let Ok(real) = cur.canonicalize() {
            let mut out = real;
            for part in tail.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                tail.push(name.to_os_string());
                cur = parent;
            }
            _ => return abs,
        }
    }
}

/// Error when the output folder `output` is an input, or contains one (an input inside the
/// output could be replaced or removed by the command).
pub fn refuse_output_over_input(output: &Path, inputs: &[&Path]) -> Result<()> {
    let out = resolve(output);
    for input in inputs {
        let inp = resolve(input);
        if inp.starts_with(&out) {
            return Err(DataError::Config(format!(
                "output {} {} the input {}; choose another output folder",
                output.display(),
                if inp == out { "is" } else { "contains" },
                input.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_or_containing_output_is_refused_through_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let input = t.path().join("scans");
        std::fs::create_dir_all(input.join("images")).unwrap();
        assert!(refuse_output_over_input(&input, &[&input]).is_err());
        assert!(refuse_output_over_input(t.path(), &[&input.join("images")]).is_err());
        // An output inside the input is allowed (the input's files are not touched).
        refuse_output_over_input(&input.join("preds"), &[&input]).unwrap();
        refuse_output_over_input(&t.path().join("preds"), &[&input]).unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&input, &link).unwrap();
        let err = refuse_output_over_input(&link, &[&input]).unwrap_err();
        assert!(err.to_string().contains("is the input"), "{err}");
    }
}
