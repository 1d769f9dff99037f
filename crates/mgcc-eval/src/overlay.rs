//! Pure image helpers for visualising predictions: contour overlays, validation panels,
//! probability ↔ image conversion and bilinear resizing of probability maps.
//!
//! Masks given as [`GrayImage`] are lesion where the value is `> 127` (0/255 masks).
//! Probability maps are row-major `f32` slices of `width · height` values in `[0, 1]`.

use image::{DynamicImage, GrayImage, Luma, Rgb, RgbImage, imageops};
use thiserror::Error;

/// Colour of the predicted contour (green).
pub const PRED_COLOR: Rgb<u8> = Rgb([0, 255, 0]);
/// Colour of the ground-truth contour (magenta).
pub const GT_COLOR: Rgb<u8> = Rgb([255, 0, 255]);
/// Contour thickness in pixels (drawn inside the mask).
pub const CONTOUR_WIDTH: u32 = 2;
/// Width of the separators between panel tiles, in pixels.
pub const SEPARATOR: u32 = 2;
/// Colour of the panel separators (white).
pub const SEPARATOR_COLOR: Rgb<u8> = Rgb([255, 255, 255]);

/// Errors from overlay helpers.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum OverlayError {
    /// An image's size differs from the one it must match.
    #[error("{what} is {got_w}x{got_h} but must match {want_w}x{want_h}")]
    SizeMismatch {
        /// Which image (e.g. "prediction mask").
        what: &'static str,
        /// Expected width.
        want_w: u32,
        /// Expected height.
        want_h: u32,
        /// Actual width.
        got_w: u32,
        /// Actual height.
        got_h: u32,
    },
    /// A probability buffer does not hold `width · height` values.
    #[error("probability map has {got} values but {width}x{height} needs {expected}")]
    LengthMismatch {
        /// Its length.
        got: usize,
        /// `width · height`.
        expected: usize,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
    /// Width or height is zero.
    #[error("invalid image size {width}x{height}")]
    InvalidSize {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
    /// `panel` was given no rows.
    #[error("a panel needs at least one row")]
    EmptyPanel,
}

/// Inner contour of `mask` (lesion `> 127`) of thickness `width`: mask pixels within `width`
/// 4-connected erosion steps of the background (pixels outside the image count as background),
/// i.e. `mask XOR erodeʷⁱᵈᵗʰ(mask)`. Row-major, one `bool` per pixel.
pub fn contour(mask: &GrayImage, width: u32) -> Vec<bool> {
    let (w, h) = (mask.width() as usize, mask.height() as usize);
    let inside: Vec<bool> = mask.pixels().map(|p| p.0[0] > 127).collect();
    let mut eroded = inside.clone();
    for _ in 0..width {
        let prev = eroded.clone();
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                eroded[i] = prev[i]
                    && x > 0
                    && x + 1 < w
                    && y > 0
                    && y + 1 < h
                    && prev[i - 1]
                    && prev[i + 1]
                    && prev[i - w]
                    && prev[i + w];
            }
        }
    }
    inside.iter().zip(&eroded).map(|(&m, &e)| m && !e).collect()
}

/// The grayscale `image` as RGB with the ground-truth contour ([`GT_COLOR`]) and the predicted
/// contour ([`PRED_COLOR`], drawn last so it wins where they overlap), each [`CONTOUR_WIDTH`] px.
/// Masks must have the image's size.
pub fn contour_overlay(
    image: &DynamicImage,
    pred_mask: &GrayImage,
    gt_mask: Option<&GrayImage>,
) -> Result<RgbImage, OverlayError> {
    let (w, h) = (image.width(), image.height());
    check_size("prediction mask", pred_mask, w, h)?;
    if let Some(gt) = gt_mask {
        check_size("ground-truth mask", gt, w, h)?;
    }
    let mut out = gray_to_rgb(&image.to_luma8());
    let mut paint = |mask: &GrayImage, color: Rgb<u8>| {
        for (p, on) in out.pixels_mut().zip(contour(mask, CONTOUR_WIDTH)) {
            if on {
                *p = color;
            }
        }
    };
    if let Some(gt) = gt_mask {
        paint(gt, GT_COLOR);
    }
    paint(pred_mask, PRED_COLOR);
    Ok(out)
}

/// A grid with one row per case: `image | prediction | ground truth`, separated by
/// [`SEPARATOR`]-px white lines. Every tile has the size of the first row's image; other tiles
/// are resized to it (bilinear). Output size: `3·tw + 2·s` × `n·th + (n − 1)·s`.
pub fn panel(rows: &[(GrayImage, GrayImage, GrayImage)]) -> Result<RgbImage, OverlayError> {
    let first = rows.first().ok_or(OverlayError::EmptyPanel)?;
    let (tw, th) = first.0.dimensions();
    if tw == 0 || th == 0 {
        return Err(OverlayError::InvalidSize {
            width: tw,
            height: th,
        });
    }
    let n = rows.len() as u32;
    let mut out = RgbImage::from_pixel(
        3 * tw + 2 * SEPARATOR,
        n * th + (n - 1) * SEPARATOR,
        SEPARATOR_COLOR,
    );
    for (r, (image, pred, gt)) in rows.iter().enumerate() {
        for (c, tile) in [image, pred, gt].into_iter().enumerate() {
            if tile.width() == 0 || tile.height() == 0 {
                return Err(OverlayError::InvalidSize {
                    width: tile.width(),
                    height: tile.height(),
                });
            }
            let tile = if tile.dimensions() == (tw, th) {
                gray_to_rgb(tile)
            } else {
                gray_to_rgb(&imageops::resize(
                    tile,
                    tw,
                    th,
                    imageops::FilterType::Triangle,
                ))
            };
            let x = c as u32 * (tw + SEPARATOR);
            let y = r as u32 * (th + SEPARATOR);
            imageops::replace(&mut out, &tile, i64::from(x), i64::from(y));
        }
    }
    Ok(out)
}

/// Probability map → 8-bit image, `round(clamp(p, 0, 1) · 255)`; `NaN` → 0.
pub fn probability_to_gray(
    prob: &[f32],
    width: u32,
    height: u32,
) -> Result<GrayImage, OverlayError> {
    check_len(prob.len(), width, height)?;
    let data = prob
        .iter()
        .map(|&p| {
            if p.is_nan() {
                0
            } else {
                (p.clamp(0.0, 1.0) * 255.0).round() as u8
            }
        })
        .collect();
    GrayImage::from_raw(width, height, data).ok_or(OverlayError::InvalidSize { width, height })
}

/// Binary mask image: 255 where `p > thr` (strict, as in the metrics), else 0.
pub fn mask_from_prob(
    prob: &[f32],
    width: u32,
    height: u32,
    thr: f32,
) -> Result<GrayImage, OverlayError> {
    check_len(prob.len(), width, height)?;
    let data = prob
        .iter()
        .map(|&p| if p > thr { 255 } else { 0 })
        .collect();
    GrayImage::from_raw(width, height, data).ok_or(OverlayError::InvalidSize { width, height })
}

/// Bilinear resize of a probability map with pixel-centre alignment (like PyTorch
/// `align_corners=False` / OpenCV `INTER_LINEAR`): output pixel `x` samples the source at
/// `sx = (x + 0.5)·w/new_w − 0.5`, clamped to `[0, w − 1]` (same for `y`). Same size → identity.
pub fn resize_prob(
    prob: &[f32],
    width: u32,
    height: u32,
    new_width: u32,
    new_height: u32,
) -> Result<Vec<f32>, OverlayError> {
    check_len(prob.len(), width, height)?;
    if new_width == 0 || new_height == 0 {
        return Err(OverlayError::InvalidSize {
            width: new_width,
            height: new_height,
        });
    }
    let (w, h) = (width as usize, height as usize);
    // For each output coordinate: lower source index, upper source index, weight of the upper.
    let taps = |n_src: usize, n_dst: u32| -> Vec<(usize, usize, f32)> {
        let scale = n_src as f64 / f64::from(n_dst);
        (0..n_dst)
            .map(|d| {
                let s = ((f64::from(d) + 0.5) * scale - 0.5).clamp(0.0, (n_src - 1) as f64);
                let lo = s.floor() as usize;
                let hi = (lo + 1).min(n_src - 1);
                (lo, hi, (s - lo as f64) as f32)
            })
            .collect()
    };
    let xs = taps(w, new_width);
    let ys = taps(h, new_height);
    let mut out = Vec::with_capacity(xs.len() * ys.len());
    for &(y0, y1, ty) in &ys {
        let (r0, r1) = (&prob[y0 * w..(y0 + 1) * w], &prob[y1 * w..(y1 + 1) * w]);
        for &(x0, x1, tx) in &xs {
            let top = r0[x0] + tx * (r0[x1] - r0[x0]);
            let bottom = r1[x0] + tx * (r1[x1] - r1[x0]);
            out.push(top + ty * (bottom - top));
        }
    }
    Ok(out)
}

fn gray_to_rgb(img: &GrayImage) -> RgbImage {
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let Luma([v]) = *img.get_pixel(x, y);
        Rgb([v, v, v])
    })
}

fn check_size(what: &'static str, img: &GrayImage, w: u32, h: u32) -> Result<(), OverlayError> {
    if img.dimensions() != (w, h) {
        return Err(OverlayError::SizeMismatch {
            what,
            want_w: w,
            want_h: h,
            got_w: img.width(),
            got_h: img.height(),
        });
    }
    Ok(())
}

fn check_len(got: usize, width: u32, height: u32) -> Result<(), OverlayError> {
    if width == 0 || height == 0 {
        return Err(OverlayError::InvalidSize { width, height });
    }
    let expected = width as usize * height as usize;
    if got != expected {
        return Err(OverlayError::LengthMismatch {
            got,
            expected,
            width,
            height,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square_mask(w: u32, h: u32, x0: u32, y0: u32, side: u32) -> GrayImage {
        GrayImage::from_fn(w, h, |x, y| {
            let inside = x >= x0 && x < x0 + side && y >= y0 && y < y0 + side;
            Luma([if inside { 255 } else { 0 }])
        })
    }

    #[test]
    fn contour_lies_on_mask_boundary() {
        let m = square_mask(16, 16, 3, 4, 8);
        let c = contour(&m, 2);
        for (i, &on) in c.iter().enumerate() {
            let (x, y) = (i as i64 % 16, i as i64 / 16);
            let inside = |x: i64, y: i64| (3..11).contains(&x) && (4..12).contains(&y);
            // Distance (in 4-steps) to the nearest outside pixel along rows/columns.
            let depth = (x - 3).min(10 - x).min(y - 4).min(11 - y);
            assert_eq!(on, inside(x, y) && depth < 2, "pixel ({x}, {y})");
        }
        // 8x8 square: 64 − 4x4 interior = 48 contour pixels.
        assert_eq!(c.iter().filter(|&&b| b).count(), 48);
    }

    #[test]
    fn overlay_colours_contours_and_keeps_image_elsewhere() {
        let img = DynamicImage::ImageLuma8(GrayImage::from_pixel(12, 12, Luma([90])));
        let pred = square_mask(12, 12, 1, 1, 6);
        let gt = square_mask(12, 12, 5, 5, 6);
        let out = contour_overlay(&img, &pred, Some(&gt)).unwrap();
        assert_eq!(out.dimensions(), (12, 12));
        let pc = contour(&pred, CONTOUR_WIDTH);
        let gc = contour(&gt, CONTOUR_WIDTH);
        for (i, p) in out.pixels().enumerate() {
            let expected = if pc[i] {
                PRED_COLOR
            } else if gc[i] {
                GT_COLOR
            } else {
                Rgb([90, 90, 90])
            };
            assert_eq!(*p, expected, "pixel {i}");
        }
        let wrong = square_mask(11, 12, 0, 0, 1);
        assert!(matches!(
            contour_overlay(&img, &wrong, None),
            Err(OverlayError::SizeMismatch {
                what: "prediction mask",
                ..
            })
        ));
    }

    #[test]
    fn panel_dimensions_and_layout() {
        let a = GrayImage::from_pixel(10, 8, Luma([10]));
        let b = GrayImage::from_pixel(10, 8, Luma([20]));
        let c = GrayImage::from_pixel(5, 4, Luma([30])); // resized to 10x8
        let rows = vec![(a.clone(), b.clone(), c.clone()), (a, b, c)];
        let p = panel(&rows).unwrap();
        assert_eq!(p.dimensions(), (3 * 10 + 2 * SEPARATOR, 2 * 8 + SEPARATOR));
        assert_eq!(*p.get_pixel(0, 0), Rgb([10, 10, 10]));
        assert_eq!(*p.get_pixel(10, 0), SEPARATOR_COLOR);
        assert_eq!(*p.get_pixel(10 + SEPARATOR, 0), Rgb([20, 20, 20]));
        assert_eq!(
            *p.get_pixel(2 * (10 + SEPARATOR) + 9, 8 + SEPARATOR + 7),
            Rgb([30, 30, 30])
        );
        assert_eq!(*p.get_pixel(0, 8), SEPARATOR_COLOR);
        assert_eq!(panel(&[]), Err(OverlayError::EmptyPanel));
    }

    #[test]
    fn probability_and_mask_images() {
        let prob = [0.0, 0.5, 0.5001, 1.2, -1.0, f32::NAN];
        let g = probability_to_gray(&prob, 3, 2).unwrap();
        assert_eq!(g.as_raw(), &vec![0, 128, 128, 255, 0, 0]);
        let m = mask_from_prob(&prob, 3, 2, 0.5).unwrap();
        assert_eq!(m.as_raw(), &vec![0, 0, 255, 255, 0, 0]);
        assert!(matches!(
            mask_from_prob(&prob, 2, 2, 0.5),
            Err(OverlayError::LengthMismatch {
                got: 6,
                expected: 4,
                ..
            })
        ));
    }

    #[test]
    fn resize_identity() {
        let prob: Vec<f32> = (0..35).map(|i| i as f32 / 35.0).collect();
        assert_eq!(resize_prob(&prob, 7, 5, 7, 5).unwrap(), prob);
    }

    #[test]
    fn resize_known_values() {
        // Upsample 2x1 → 4x1: source x = -0.25→0, 0.25, 0.75, 1.25→1.
        let up = resize_prob(&[0.0, 1.0], 2, 1, 4, 1).unwrap();
        assert_eq!(up, vec![0.0, 0.25, 0.75, 1.0]);
        // Downsample 4x4 → 2x2: samples at 0.5, 2.5 average 2x2 blocks.
        let prob: Vec<f32> = (0..16).map(|i| i as f32).collect();
        let down = resize_prob(&prob, 4, 4, 2, 2).unwrap();
        assert_eq!(down, vec![2.5, 4.5, 10.5, 12.5]);
        // 1x1 source broadcasts.
        assert_eq!(resize_prob(&[0.3], 1, 1, 2, 3).unwrap(), vec![0.3; 6]);
        assert!(resize_prob(&[0.3], 1, 1, 0, 3).is_err());
    }
}
