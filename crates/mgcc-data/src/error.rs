//! Typed errors of the dataset layer: each names the file (or folder) and the problem in one line.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why an image file could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ImageFault {
    /// The file could not be opened or read (missing, permissions, I/O error).
    Unreadable,
    /// The bytes are not a valid image (bad signature, bad checksum, bad chunk).
    Corrupt,
    /// The file ends before the image data does.
    Truncated,
    /// A format or colour type the image crate does not decode.
    Unsupported,
}

impl fmt::Display for ImageFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ImageFault::Unreadable => "unreadable image",
            ImageFault::Corrupt => "corrupt image",
            ImageFault::Truncated => "truncated image",
            ImageFault::Unsupported => "unsupported image format",
        })
    }
}

/// Every error of `mgcc-data`.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or folder could not be read, listed or created.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// An image or mask could not be decoded.
    #[error("{}: {fault}: {detail}", path.display())]
    Image {
        path: PathBuf,
        fault: ImageFault,
        detail: String,
    },
    /// An image could not be encoded or written.
    #[error("{}: cannot write image: {detail}", path.display())]
    Encode { path: PathBuf, detail: String },
    /// A labelled image has no mask file.
    #[error("{}: image has no mask (expected {})", image.display(), expected.display())]
    MissingMask { image: PathBuf, expected: PathBuf },
    /// A mask file has no image of the same stem.
    #[error("{}: mask has no image `{stem}.{{png,jpg,jpeg,bmp}}` in {}", mask.display(), images_dir.display())]
    OrphanMask {
        mask: PathBuf,
        stem: String,
        images_dir: PathBuf,
    },
    /// Image and mask sizes differ.
    #[error(
        "{}: mask is {}×{} but image {} is {}×{}",
        mask.display(), mask_size.0, mask_size.1, image.display(), image_size.0, image_size.1
    )]
    SizeMismatch {
        image: PathBuf,
        mask: PathBuf,
        image_size: (u32, u32),
        mask_size: (u32, u32),
    },
    /// A mask has more than two distinct values, or two values of which none is 0.
    #[error("{}: mask is not binary: {count} distinct values ({})", path.display(), fmt_values(values, *count))]
    NonBinaryMask {
        path: PathBuf,
        /// The first few distinct values, ascending.
        values: Vec<u8>,
        count: usize,
    },
    /// A folder holds no usable files.
    #[error("{}: empty folder: {what}", path.display())]
    EmptyFolder { path: PathBuf, what: String },
    /// A folder that should exist does not.
    #[error("{}: missing folder: {what}", path.display())]
    MissingFolder { path: PathBuf, what: String },
    /// Refused to overwrite something that exists.
    #[error("{}: already exists{}; pass --force to overwrite", path.display(), if *non_empty { " and is not empty" } else { "" })]
    OutputExists { path: PathBuf, non_empty: bool },
    /// A split file is malformed.
    #[error("{}:{line}: bad split file: {reason}", path.display())]
    BadSplit {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// A split file names a stem the dataset does not have.
    #[error("{}:{line}: stem `{stem}` is not in the dataset", path.display())]
    UnknownStem {
        path: PathBuf,
        line: usize,
        stem: String,
    },
    /// No split file of the requested number (and name).
    #[error("{}: no split file {pattern}{}", dir.display(), available_names(available))]
    MissingSplit {
        dir: PathBuf,
        pattern: String,
        available: Vec<String>,
    },
    /// Several split names exist and none was chosen.
    #[error("{}: several split sets exist ({}); pass --split-name NAME", dir.display(), names.join(", "))]
    AmbiguousSplit { dir: PathBuf, names: Vec<String> },
    /// `manifest.csv` is malformed.
    #[error("{}:{line}: bad manifest: {reason}", path.display())]
    BadManifest {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// The source folder is not shaped like the Kaggle BUSI release.
    #[error("{}: not a BUSI release: {reason}", path.display())]
    NotBusi { path: PathBuf, reason: String },
    /// Two source files map to the same output stem.
    #[error("{}: stem `{stem}` also comes from {}", path.display(), other.display())]
    DuplicateStem {
        path: PathBuf,
        other: PathBuf,
        stem: String,
    },
    /// Files that fail the checks of `mgcc check` (every one listed, with check's message).
    #[error("{} fail{} the dataset check (as `mgcc check` reports them):\n  {}", crate::check::count(problems.len(), "file"), if problems.len() == 1 { "s" } else { "" }, problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n  "))]
    Invalid {
        problems: Vec<crate::check::Problem>,
    },
    /// Another process writes into this folder.
    #[error("{}: in use by {holder} (one writer per folder; wait for it, or stop it)", path.display())]
    Locked { path: PathBuf, holder: String },
    /// The record of the files mgcc wrote into a folder cannot be read.
    #[error("{}: unreadable record of mgcc's files: {reason} (delete it to start the folder afresh)", path.display())]
    BadLedger { path: PathBuf, reason: String },
    /// Existing files that mgcc did not write would be replaced.
    #[error("{} already exist{} and {} not written by mgcc: {}{}; mgcc never replaces them, even with --force (move them away or choose another output)",
        crate::check::count(*count, "file"), if *count == 1 { "s" } else { "" }, if *count == 1 { "was" } else { "were" },
        paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "), if *count > paths.len() { ", …" } else { "" })]
    NotWrittenByMgcc { count: usize, paths: Vec<PathBuf> },
    /// Invalid parameters (batch sizes, fractions, seeds).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The background batch producer has stopped (after an earlier error or a panic).
    #[error("data loader stopped: {0}")]
    LoaderStopped(String),
}

/// Result with [`DataError`].
pub type Result<T, E = DataError> = std::result::Result<T, E>;

impl DataError {
    /// An [`DataError::Io`] for `path`.
    pub fn io(path: &Path, action: &'static str, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }

    /// Classify an `image` crate error on `path`.
    pub fn image(path: &Path, err: image::ImageError) -> Self {
        use image::ImageError as E;
        let detail = err.to_string();
        let fault = match &err {
            E::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => ImageFault::Truncated,
            E::IoError(_) => ImageFault::Unreadable,
            E::Unsupported(_) => ImageFault::Unsupported,
            _ if looks_truncated(&detail) => ImageFault::Truncated,
            _ => ImageFault::Corrupt,
        };
        DataError::Image {
            path: path.to_path_buf(),
            fault,
            detail,
        }
    }

    /// The same error with paths under `from` (a staging folder) shown under `to` (where the
    /// file was to appear), so messages name the user's folder.
    pub fn moved(self, from: &Path, to: &Path) -> Self {
        match self {
            DataError::Io {
                path,
                action,
                source,
            } => DataError::Io {
                path: path
                    .strip_prefix(from)
                    .map(|rel| to.join(rel))
                    .unwrap_or(path),
                action,
                source,
            },
            other => other,
        }
    }

    /// The main path this error is about.
    pub fn path(&self) -> Option<&Path> {
        use DataError as D;
        match self {
            D::Io { path, .. }
            | D::Image { path, .. }
            | D::Encode { path, .. }
            | D::NonBinaryMask { path, .. }
            | D::EmptyFolder { path, .. }
            | D::MissingFolder { path, .. }
            | D::OutputExists { path, .. }
            | D::BadSplit { path, .. }
            | D::UnknownStem { path, .. }
            | D::BadManifest { path, .. }
            | D::NotBusi { path, .. }
            | D::DuplicateStem { path, .. }
            | D::Locked { path, .. }
            | D::BadLedger { path, .. } => Some(path),
            D::Invalid { problems } => problems.first().map(|p| p.path.as_path()),
            D::NotWrittenByMgcc { paths, .. } => paths.first().map(PathBuf::as_path),
            D::MissingMask { image, .. } => Some(image),
            D::OrphanMask { mask, .. } | D::SizeMismatch { mask, .. } => Some(mask),
            D::MissingSplit { dir, .. } | D::AmbiguousSplit { dir, .. } => Some(dir),
            D::Config(_) | D::LoaderStopped(_) => None,
        }
    }
}

fn looks_truncated(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    [
        "end of file",
        "eof",
        "truncated",
        "unexpected end",
        "not enough data",
    ]
    .iter()
    .any(|k| d.contains(k))
}

fn fmt_values(values: &[u8], count: usize) -> String {
    let mut s = values
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if count > values.len() {
        s.push_str(", …");
    }
    s
}

fn available_names(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(" (available: {})", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_binary_lists_first_values() {
        let e = DataError::NonBinaryMask {
            path: "m/a.png".into(),
            values: vec![0, 1, 2],
            count: 7,
        };
        assert_eq!(
            e.to_string(),
            "m/a.png: mask is not binary: 7 distinct values (0, 1, 2, …)"
        );
    }

    #[test]
    fn size_mismatch_names_both() {
        let e = DataError::SizeMismatch {
            image: "i/a.png".into(),
            mask: "m/a.png".into(),
            image_size: (4, 5),
            mask_size: (6, 7),
        };
        let s = e.to_string();
        assert!(s.contains("i/a.png") && s.contains("m/a.png"), "{s}");
        assert!(s.contains("6×7") && s.contains("4×5"), "{s}");
    }
}
