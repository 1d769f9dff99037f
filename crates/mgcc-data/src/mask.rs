//! Mask semantics: a pixel is lesion when it is opaque (alpha ≠ 0, if there is alpha) and any
//! colour channel is non-zero. Its *level* is `max(R, G, B)` (the gray value for gray masks),
//! or 0 where alpha = 0. A mask is binary when its levels are `{0}`, `{x}` or `{0, x}`.

use std::path::Path;

use image::{DynamicImage, GrayImage, Luma};

use crate::error::{DataError, Result};
use crate::image_io::read_image;

/// How many distinct values a [`DataError::NonBinaryMask`] lists.
pub const LISTED_VALUES: usize = 8;

/// Per-pixel level of a mask of any colour type (see the module doc).
pub fn mask_levels(img: &DynamicImage) -> GrayImage {
    match img {
        DynamicImage::ImageLuma8(g) => g.clone(),
        other => {
            let rgba = other.to_rgba8();
            GrayImage::from_fn(rgba.width(), rgba.height(), |x, y| {
                let [r, g, b, a] = rgba.get_pixel(x, y).0;
                Luma([if a == 0 { 0 } else { r.max(g).max(b) }])
            })
        }
    }
}

/// Decode a mask file into levels.
pub fn read_mask_levels(path: &Path) -> Result<GrayImage> {
    Ok(mask_levels(&read_image(path)?))
}

/// Count of each level, `hist[v]` = pixels with level `v`.
pub fn histogram(levels: &GrayImage) -> [u64; 256] {
    let mut h = [0u64; 256];
    for &v in levels.as_raw() {
        h[v as usize] += 1;
    }
    h
}

/// Distinct levels in ascending order.
pub fn distinct_levels(hist: &[u64; 256]) -> Vec<u8> {
    (0..=255u8).filter(|&v| hist[v as usize] > 0).collect()
}

/// `Err(NonBinaryMask)` unless the levels are `{0}`, `{x}` or `{0, x}`.
pub fn ensure_binary(path: &Path, hist: &[u64; 256]) -> Result<()> {
    let values = distinct_levels(hist);
    let binary = values.len() <= 1 || (values.len() == 2 && values[0] == 0);
    if binary {
        Ok(())
    } else {
        Err(DataError::NonBinaryMask {
            path: path.to_path_buf(),
            count: values.len(),
            values: values.into_iter().take(LISTED_VALUES).collect(),
        })
    }
}

/// Lesion map `{0, 1}` (level ≠ 0).
pub fn binarize(levels: &GrayImage) -> GrayImage {
    GrayImage::from_fn(levels.width(), levels.height(), |x, y| {
        Luma([u8::from(levels.get_pixel(x, y).0[0] != 0)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage, Rgba, RgbaImage};

    #[test]
    fn levels_of_rgb_and_rgba() {
        let mut rgb = RgbImage::new(2, 1);
        rgb.put_pixel(1, 0, Rgb([0, 0, 200]));
        let l = mask_levels(&DynamicImage::ImageRgb8(rgb));
        assert_eq!(l.as_raw(), &vec![0, 200]);

        let mut rgba = RgbaImage::from_pixel(3, 1, Rgba([255, 255, 255, 0]));
        rgba.put_pixel(1, 0, Rgba([255, 255, 255, 255]));
        rgba.put_pixel(2, 0, Rgba([0, 0, 0, 255]));
        let l = mask_levels(&DynamicImage::ImageRgba8(rgba));
        assert_eq!(l.as_raw(), &vec![0, 255, 0]);
    }

    #[test]
    fn binary_rules() {
        let p = Path::new("m.png");
        let mut h = [0u64; 256];
        h[0] = 5;
        assert!(ensure_binary(p, &h).is_ok());
        h[255] = 5;
        assert!(ensure_binary(p, &h).is_ok());
        h[128] = 1;
        let err = ensure_binary(p, &h).unwrap_err();
        assert_eq!(
            err.to_string(),
            "m.png: mask is not binary: 3 distinct values (0, 128, 255)"
        );
        let mut h2 = [0u64; 256];
        h2[1] = 3;
        h2[255] = 3;
        assert!(ensure_binary(p, &h2).is_err(), "two values without 0");
        let mut many = [1u64; 256];
        many[0] = 1;
        let err = ensure_binary(p, &many).unwrap_err();
        assert!(
            err.to_string()
                .contains("256 distinct values (0, 1, 2, 3, 4, 5, 6, 7, …)"),
            "{err}"
        );
    }

    #[test]
    fn binarize_nonzero() {
        let g = GrayImage::from_raw(3, 1, vec![0, 1, 255]).unwrap();
        assert_eq!(binarize(&g).as_raw(), &vec![0, 1, 1]);
    }
}
