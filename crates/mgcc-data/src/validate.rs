//! The checks of `mgcc check`, applied by every command to the files it is about to read, so
//! that no command trains on or evaluates data that `check` rejects: every file is decoded,
//! masks must match their image's size and be binary. All problems are collected and reported
//! together, each with the message `check` prints for it.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::check::{Problem, check_stem};
use crate::error::{DataError, Result};
use crate::image_io::read_image;
use crate::layout::Sample;

/// Problems of one labelled sample (empty when it is fine).
pub fn sample_problems(sample: &Sample) -> Vec<Problem> {
    check_stem(&sample.image, Some(&sample.mask), &sample.mask).errors
}

/// Problems of one image (empty when it decodes).
pub fn image_problems(path: &Path) -> Vec<Problem> {
    match read_image(path) {
        Ok(_) => Vec::new(),
        Err(e) => vec![Problem::from_error(&e, path)],
    }
}

/// Decode every sample's image and mask; [`DataError::Invalid`] listing every problem.
pub fn validate_samples(samples: &[Sample]) -> Result<()> {
    let problems: Vec<Problem> = samples.par_iter().flat_map(sample_problems).collect();
    fail_if_any(problems)
}

/// Decode every image; [`DataError::Invalid`] listing every one that fails.
pub fn validate_images(paths: &[PathBuf]) -> Result<()> {
    let problems: Vec<Problem> = paths.par_iter().flat_map(|p| image_problems(p)).collect();
    fail_if_any(problems)
}

fn fail_if_any(mut problems: Vec<Problem>) -> Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    problems.sort_by(|a, b| a.path.cmp(&b.path));
    problems.dedup();
    Err(DataError::Invalid { problems })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::check_dataset;
    use crate::layout::{Dataset, images_dir, mask_path};
    use crate::test_util::{write_gray, write_mask};

    #[test]
    fn rejects_what_check_rejects_with_the_same_message() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        for (i, stem) in ["a", "b", "c"].iter().enumerate() {
            write_gray(
                &images_dir(root).join(format!("{stem}.png")),
                8,
                8,
                10 * i as u8,
            );
            write_mask(&mask_path(root, stem), 8, 8, &[(1, 1)]);
        }
        let ds = Dataset::open(root).unwrap();
        validate_samples(&ds.samples).unwrap();
        // A three-level mask and a truncated image.
        let levels =
            image::GrayImage::from_fn(8, 8, |x, _| image::Luma([[0, 128, 255][x as usize % 3]]));
        levels.save(mask_path(root, "b")).unwrap();
        let img = images_dir(root).join("c.png");
        let bytes = std::fs::read(&img).unwrap();
        std::fs::write(&img, &bytes[..bytes.len() / 2]).unwrap();

        let err = validate_samples(&ds.samples).unwrap_err();
        let DataError::Invalid { problems } = &err else {
            panic!("{err}")
        };
        assert_eq!(problems.len(), 2, "{err}");
        let report = check_dataset(root);
        for p in problems {
            assert!(report.errors.contains(p), "{p} is not what check says");
        }
        let text = err.to_string();
        assert!(text.starts_with("2 files fail the dataset check"), "{text}");
        assert!(
            text.contains("b.png: mask is not binary: 3 distinct values (0, 128, 255)"),
            "{text}"
        );
        assert!(validate_images(std::slice::from_ref(&img)).is_err());
        validate_images(&[images_dir(root).join("a.png")]).unwrap();
    }
}
