//! Errors of the quality report, each naming the file, folder or setting at fault.

use std::fmt;
use std::path::PathBuf;

/// Which of the two image sets an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSet {
    /// The generated (synthetic) images under test.
    Generated,
    /// The real (training) images they are compared with.
    Real,
}

impl fmt::Display for ImageSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ImageSet::Generated => "generated",
            ImageSet::Real => "real",
        })
    }
}

/// Everything that can go wrong while building a quality report.
#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    /// An image could not be opened or decoded; the message names the file.
    #[error(transparent)]
    Image(#[from] mgcc_data::DataError),
    /// An image set has too few images for the report (every statistic needs at least two).
    #[error(
        "{set} images: found {found}, need at least {needed} (check the {set} image folder and its file extensions)"
    )]
    TooFewImages {
        set: ImageSet,
        found: usize,
        needed: usize,
    },
    /// A report option is out of range.
    #[error("bad report option `{name}`: {detail}")]
    InvalidOption { name: &'static str, detail: String },
    /// The output folder could not be created.
    #[error("{}: cannot create output folder: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An output file could not be written (or renamed into place).
    #[error("{}: cannot write file: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An output image or JSON document could not be encoded.
    #[error("{}: cannot encode: {detail}", path.display())]
    Encode { path: PathBuf, detail: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_set_and_path() {
        let e = QualityError::TooFewImages {
            set: ImageSet::Generated,
            found: 0,
            needed: 2,
        };
        assert!(e.to_string().starts_with("generated images: found 0"));
        let e = QualityError::Write {
            path: PathBuf::from("/x/report.json"),
            source: std::io::Error::other("disk full"),
        };
        assert_eq!(
            e.to_string(),
            "/x/report.json: cannot write file: disk full"
        );
    }
}
