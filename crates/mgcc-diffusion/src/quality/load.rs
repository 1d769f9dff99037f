//! Reading images for the report: grayscale in `[0,1]`, resized to `size`×`size`, plus the
//! intensity histogram of the image at its own resolution.

use std::path::{Path, PathBuf};

use image::imageops::{self, FilterType};
use rayon::prelude::*;

use super::error::QualityError;
use super::histogram::{BINS, bin_of};

/// One image as the report sees it.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    /// The file it was read from.
    pub path: PathBuf,
    /// Width of the file's image.
    pub width: u32,
    /// Height of the file's image.
    pub height: u32,
    /// Gray values in `[0,1]`, row-major, `size`×`size` (resized with the Triangle filter).
    pub pixels: Vec<f32>,
    /// Intensity histogram (256 bins on `[0,1]`, see [`bin_of`]) of the gray image at its own
    /// resolution, before resizing.
    pub histogram: Vec<u64>,
}

/// Reads `path`, converts it to gray f32 in `[0,1]` (the image crate's luma conversion, alpha
/// dropped), histograms it at its own resolution and resizes it to `size`×`size` with the
/// Triangle filter. Errors name the file.
pub fn load_gray(path: &Path, size: u32) -> Result<LoadedImage, QualityError> {
    let img = mgcc_data::image_io::read_image(path)?;
    let gray = img.to_luma32f();
    let (width, height) = gray.dimensions();
    let mut histogram = vec![0u64; BINS];
    for &v in gray.as_raw() {
        histogram[bin_of(v)] += 1;
    }
    let pixels = if (width, height) == (size, size) {
        gray.into_raw()
    } else {
        imageops::resize(&gray, size, size, FilterType::Triangle).into_raw()
    };
    let pixels = pixels.into_iter().map(|v| v.clamp(0.0, 1.0)).collect();
    Ok(LoadedImage {
        path: path.to_path_buf(),
        width,
        height,
        pixels,
        histogram,
    })
}

/// [`load_gray`] for every path, in parallel; the result keeps the order of `paths`, and the
/// first failing path (in list order) is the error reported.
pub fn load_images(paths: &[PathBuf], size: u32) -> Result<Vec<LoadedImage>, QualityError> {
    paths.par_iter().map(|p| load_gray(p, size)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma};

    #[test]
    fn gray_resized_and_histogrammed() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("a.png");
        let img = GrayImage::from_fn(32, 16, |x, _| Luma([if x < 16 { 0 } else { 255 }]));
        img.save(&p).unwrap();
        let li = load_gray(&p, 8).unwrap();
        assert_eq!((li.width, li.height), (32, 16));
        assert_eq!(li.pixels.len(), 64);
        assert!(li.pixels.iter().all(|v| (0.0..=1.0).contains(v)));
        assert_eq!(li.pixels[0], 0.0);
        assert_eq!(li.pixels[7], 1.0);
        assert_eq!(li.histogram[0], 256);
        assert_eq!(li.histogram[255], 256);
        assert_eq!(li.histogram.iter().sum::<u64>(), 512);
    }

    #[test]
    fn unreadable_image_names_its_path() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("broken.png");
        std::fs::write(&p, b"not a png").unwrap();
        let good = t.path().join("good.png");
        GrayImage::new(4, 4).save(&good).unwrap();
        let err = load_images(&[good, p.clone()], 4).unwrap_err();
        assert!(err.to_string().contains("broken.png"), "{err}");
    }
}
