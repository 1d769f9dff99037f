//! Resizing and normalisation of network inputs.
//!
//! Image: resize to S×S with `resize_exact(S, S, FilterType::Triangle)` (bilinear), scale to
//! [0, 1] by v/255, then per channel `x = (v/255 − mean_c) / std_c`:
//! - [`Channels::Three`]: ImageNet mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225);
//!   a grayscale image is repeated on the three channels;
//! - [`Channels::One`]: the luma, mean 0.5, std 0.5 (x ∈ [−1, 1]).
//!
//! Note: the published MGCC code divides by 255 a second time *after* this normalisation
//! (so its inputs are ≈ 0); we do not.
//!
//! Mask: levels (see [`crate::mask`]) resized with nearest neighbour, then lesion → 1, else 0.

use image::imageops::FilterType;
use image::{DynamicImage, GrayImage};

use crate::augment::Augment;

/// ImageNet channel means.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Network input channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Channels {
    /// Luma, mean 0.5 std 0.5.
    One,
    /// RGB (gray repeated), ImageNet normalisation.
    #[default]
    Three,
}

impl Channels {
    /// 1 or 3.
    pub fn count(self) -> usize {
        match self {
            Channels::One => 1,
            Channels::Three => 3,
        }
    }

    /// (mean, std) of output channel `c`.
    fn stats(self, c: usize) -> (f32, f32) {
        match self {
            Channels::One => (0.5, 0.5),
            Channels::Three => (IMAGENET_MEAN[c], IMAGENET_STD[c]),
        }
    }
}

/// A resized 8-bit S×S image, interleaved, 1 (gray) or 3 (RGB) stored channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resized {
    /// Width and height before resizing.
    pub orig: (u32, u32),
    pub size: usize,
    pub stored: usize,
    pub data: Vec<u8>,
}

/// Resize to S×S (bilinear). Gray sources stay one stored channel; with [`Channels::Three`]
/// colour sources are RGB (alpha dropped); with [`Channels::One`] everything is luma.
pub fn resize_image(img: &DynamicImage, size: u32, channels: Channels) -> Resized {
    let src = if channels == Channels::One || !img.color().has_color() {
        DynamicImage::ImageLuma8(img.to_luma8())
    } else {
        DynamicImage::ImageRgb8(img.to_rgb8())
    };
    let small = src.resize_exact(size, size, FilterType::Triangle);
    let stored = small.color().channel_count() as usize;
    Resized {
        orig: (img.width(), img.height()),
        size: size as usize,
        stored,
        data: small.into_bytes(),
    }
}

/// Write `img` transformed by `aug` and normalised into `out` (C×S×S, planar).
pub fn normalise_into(img: &Resized, channels: Channels, aug: Augment, out: &mut [f32]) {
    let s = img.size;
    let c_out = channels.count();
    debug_assert_eq!(out.len(), c_out * s * s);
    let mut scale = [0f32; 3];
    let mut shift = [0f32; 3];
    for c in 0..c_out {
        // (v/255 − mean)/std = v·scale + shift
        let (mean, std) = channels.stats(c);
        scale[c] = 1.0 / (255.0 * std);
        shift[c] = -mean / std;
    }
    for y in 0..s {
        for x in 0..s {
            let (sx, sy) = aug.source(x, y, s);
            let i = (sy * s + sx) * img.stored;
            for c in 0..c_out {
                let v = img.data[i + if img.stored == 1 { 0 } else { c }] as f32;
                out[c * s * s + y * s + x] = v * scale[c] + shift[c];
            }
        }
    }
}

/// Resize and normalise one image without augmentation: C×S×S, planar.
pub fn preprocess_image(img: &DynamicImage, size: u32, channels: Channels) -> Vec<f32> {
    let r = resize_image(img, size, channels);
    let mut out = vec![0.0; channels.count() * r.size * r.size];
    normalise_into(&r, channels, Augment::IDENTITY, &mut out);
    out
}

/// Mask levels resized (nearest) to S×S, as {0, 1} bytes.
pub fn resize_mask(levels: &GrayImage, size: u32) -> Vec<u8> {
    let small = image::imageops::resize(levels, size, size, FilterType::Nearest);
    small
        .into_raw()
        .into_iter()
        .map(|v| u8::from(v != 0))
        .collect()
}

/// A {0, 1} byte mask transformed by `aug`, as f32 into `out` (S×S).
pub fn mask_into(mask: &[u8], size: usize, aug: Augment, out: &mut [f32]) {
    for y in 0..size {
        for x in 0..size {
            let (sx, sy) = aug.source(x, y, size);
            out[y * size + x] = f32::from(mask[sy * size + sx]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Luma, Rgb, RgbImage};

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-5
    }

    #[test]
    fn gray_three_channel_imagenet_values() {
        let img = DynamicImage::ImageLuma8(GrayImage::from_pixel(5, 7, Luma([255])));
        let v = preprocess_image(&img, 4, Channels::Three);
        assert_eq!(v.len(), 3 * 16);
        for c in 0..3 {
            let want = (1.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
            assert!(
                v[c * 16..(c + 1) * 16].iter().all(|&x| close(x, want)),
                "channel {c}"
            );
        }
        let zero = DynamicImage::ImageLuma8(GrayImage::new(3, 3));
        let v = preprocess_image(&zero, 2, Channels::Three);
        assert!(
            close(v[0], -0.485 / 0.229)
                && close(v[4], -0.456 / 0.224)
                && close(v[8], -0.406 / 0.225)
        );
    }

    #[test]
    fn rgb_channels_and_one_channel() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(4, 4, Rgb([255, 0, 51])));
        let v = preprocess_image(&img, 2, Channels::Three);
        assert!(close(v[0], (1.0 - 0.485) / 0.229));
        assert!(close(v[4], (0.0 - 0.456) / 0.224));
        assert!(close(v[8], (0.2 - 0.406) / 0.225));
        let g = DynamicImage::ImageLuma8(GrayImage::from_pixel(4, 4, Luma([0])));
        assert!(
            preprocess_image(&g, 3, Channels::One)
                .iter()
                .all(|&x| close(x, -1.0))
        );
        let w = DynamicImage::ImageLuma8(GrayImage::from_pixel(4, 4, Luma([255])));
        assert!(
            preprocess_image(&w, 3, Channels::One)
                .iter()
                .all(|&x| close(x, 1.0))
        );
    }

    #[test]
    fn bilinear_resize_averages() {
        // Left half 0, right half 200, downsampled 4→2 keeps the halves apart.
        let img = GrayImage::from_fn(4, 4, |x, _| Luma([if x < 2 { 0 } else { 200 }]));
        let r = resize_image(&DynamicImage::ImageLuma8(img), 2, Channels::One);
        assert_eq!(r.stored, 1);
        assert!(r.data[0] < 60 && r.data[1] > 140, "{:?}", r.data);
    }

    #[test]
    fn mask_nearest_binary() {
        let mut m = GrayImage::new(4, 4);
        for y in 0..2 {
            for x in 0..2 {
                m.put_pixel(x, y, Luma([255]));
            }
        }
        assert_eq!(resize_mask(&m, 2), vec![1, 0, 0, 0]);
        let up = resize_mask(&m, 8);
        assert_eq!(up.iter().filter(|&&v| v == 1).count(), 16);
        assert!(up.iter().all(|&v| v <= 1));
    }
}
