//! Reading and writing image files with errors that name the file.

use std::path::Path;

use image::{DynamicImage, GrayImage, ImageReader};

use crate::error::{DataError, Result};

/// Decode `path` (format guessed from the bytes, not the extension).
pub fn read_image(path: &Path) -> Result<DynamicImage> {
    ImageReader::open(path)
        .map_err(|e| open_error(path, e))?
        .with_guessed_format()
        .map_err(|e| DataError::io(path, "cannot read image", e))?
        .decode()
        .map_err(|e| DataError::image(path, e))
}

/// The error of an image that cannot be opened; a broken symbolic link says so.
fn open_error(path: &Path, e: std::io::Error) -> DataError {
    match crate::layout::link_problem(path) {
        Some(detail) => DataError::Image {
            path: path.to_path_buf(),
            fault: crate::error::ImageFault::Unreadable,
            detail,
        },
        None => DataError::io(path, "cannot open image", e),
    }
}

/// Width and height of `path` from its header, without decoding the pixels.
pub fn image_dimensions(path: &Path) -> Result<(u32, u32)> {
    ImageReader::open(path)
        .map_err(|e| DataError::io(path, "cannot open image", e))?
        .with_guessed_format()
        .map_err(|e| DataError::io(path, "cannot read image", e))?
        .into_dimensions()
        .map_err(|e| DataError::image(path, e))
}

/// Write an 8-bit grayscale PNG atomically (see [`crate::safe_fs::atomic`]), creating the
/// parent folder.
pub fn write_png(path: &Path, img: &GrayImage) -> Result<()> {
    crate::safe_fs::save_png_atomic(path, &DynamicImage::ImageLuma8(img.clone()))
}

/// Write an 8-bit grayscale PNG, creating the parent folder.
pub fn write_gray_png(path: &Path, img: &GrayImage) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| DataError::io(parent, "cannot create folder", e))?;
    }
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| DataError::Encode {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ImageFault;
    use crate::test_util::write_gray;

    #[test]
    fn corrupt_truncated_and_missing_are_told_apart() {
        let t = tempfile::tempdir().unwrap();
        let good = t.path().join("good.png");
        write_gray(&good, 64, 64, 9);
        assert_eq!(image_dimensions(&good).unwrap(), (64, 64));
        assert_eq!(read_image(&good).unwrap().to_luma8().get_pixel(3, 3).0, [9]);

        let bytes = std::fs::read(&good).unwrap();
        let trunc = t.path().join("trunc.png");
        std::fs::write(&trunc, &bytes[..bytes.len() / 2]).unwrap();
        let err = read_image(&trunc).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Image {
                    fault: ImageFault::Truncated,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().starts_with(&trunc.display().to_string()));

        let corrupt = t.path().join("corrupt.png");
        let mut b = bytes.clone();
        b[0] = b'X';
        std::fs::write(&corrupt, &b).unwrap();
        let err = read_image(&corrupt).unwrap_err();
        assert!(matches!(err, DataError::Image { .. }), "{err}");
        assert!(err.to_string().contains("corrupt.png"));

        let err = read_image(&t.path().join("none.png")).unwrap_err();
        assert!(matches!(err, DataError::Io { .. }), "{err}");
    }
}
