//! Procedural breast B-mode ultrasound phantom with exact lesion masks.
//!
//! One image, from the top down: [`layers`] draws wavy tissue interfaces, [`lesion`] draws a
//! hypoechoic lesion of the image's class inside the glandular layer, [`tissue`] paints the
//! background echogenicity (dB) around it, the lesion modulates that map (interior, posterior
//! shadowing/enhancement), [`scanner`] adds attenuation, TGC and the noise floor, [`speckle`]
//! turns amplitudes into a speckle envelope through an anisotropic PSF, and the scanner
//! log-compresses it to 8 bits. The mask is exactly the lesion region of the modulation.
//!
//! Image `i` of seed `s` is drawn from `ChaCha8Rng` keyed by `s` on stream `i`, so any image
//! can be regenerated alone and the output does not depend on thread scheduling.

mod dataset;
mod field;
mod layers;
mod lesion;
mod scanner;
mod speckle;
mod tissue;

pub use dataset::{PhantomSummary, write_dataset};

use image::GrayImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[cfg(test)]
use field::Grid;
use layers::Layers;
use lesion::Lesion;
use scanner::Scanner;
use speckle::Psf;

/// The echo is simulated on a grid this many times finer than the image and the displayed
/// grey levels are block-averaged back down (fine speckle as in a resized scan).
const SUPERSAMPLE: usize = 1;

/// Spatially compounded frames per image (as on modern breast scanners).
const COMPOUND_FRAMES: usize = 3;

/// Smallest side generated; smaller requested sides are raised to this.
pub const MIN_SIDE: usize = 16;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhantomConfig {
    /// Number of images.
    pub n: usize,
    /// Image width, pixels.
    pub width: usize,
    /// Image height (depth), pixels.
    pub height: usize,
    /// Master seed.
    pub seed: u64,
}

impl Default for PhantomConfig {
    fn default() -> Self {
        PhantomConfig {
            n: 200,
            width: 256,
            height: 256,
            seed: 0,
        }
    }
}

/// Lesion family of an image (the manifest's `class`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhantomClass {
    /// Cyst or fibroadenoma-like: oval/lobulated, wider than tall, smooth, often enhancement.
    Benign,
    /// Carcinoma-like: irregular/spiculated, taller than wide, often posterior shadowing.
    Malignant,
}

impl PhantomClass {
    /// Classes alternate with the index (even: benign, odd: malignant), so any run of two or
    /// more images holds both.
    pub fn for_index(index: usize) -> Self {
        if index.is_multiple_of(2) {
            PhantomClass::Benign
        } else {
            PhantomClass::Malignant
        }
    }

    /// `benign` or `malignant`.
    pub fn as_str(self) -> &'static str {
        match self {
            PhantomClass::Benign => "benign",
            PhantomClass::Malignant => "malignant",
        }
    }
}

impl std::fmt::Display for PhantomClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One generated image with its mask.
#[derive(Debug, Clone)]
pub struct PhantomCase {
    /// `phantom_NNNN` (1-based, at least 4 digits).
    pub stem: String,
    pub class: PhantomClass,
    /// 8-bit B-mode image.
    pub image: GrayImage,
    /// Lesion mask: 255 inside, 0 outside.
    pub mask: GrayImage,
}

impl PhantomCase {
    /// Number of lesion pixels in the mask.
    pub fn lesion_pixels(&self) -> usize {
        self.mask.as_raw().iter().filter(|&&v| v > 0).count()
    }
}

/// The stem of image `index`: `phantom_{index + 1:04}`.
pub fn stem(index: usize) -> String {
    format!("phantom_{:04}", index + 1)
}

/// The generator of image `index`: ChaCha8 keyed by `seed`, stream `index`.
fn case_rng(seed: u64, index: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index as u64);
    rng
}

/// Generate image `index` of `cfg` (independent of `cfg.n`); sides below [`MIN_SIDE`] are raised.
pub fn generate_one(cfg: &PhantomConfig, index: usize) -> PhantomCase {
    let (w, h) = (cfg.width.max(MIN_SIDE), cfg.height.max(MIN_SIDE));
    let mut rng = case_rng(cfg.seed, index);
    let class = PhantomClass::for_index(index);
    let s = ((w * h) as f32).sqrt() / 256.0;

    let layers = Layers::sample(&mut rng, w, h);
    let scanner = Scanner::sample(&mut rng, h);
    let lesion = Lesion::sample(&mut rng, class, &layers, w, h);
    let footprint = lesion.footprint(w, h, 8.0 * s.max(0.5));
    let keep_out = lesion.keep_out(4.0 * s.max(0.5), w, h);
    let mut db = tissue::echogenicity(&mut rng, &layers, keep_out, w, h);
    lesion.apply(&mut rng, &mut db, &footprint);
    let amplitude = scanner.amplitude(&field::upsample(&db, SUPERSAMPLE));
    let psf = Psf::for_image(w, h).scaled(SUPERSAMPLE);
    let envelope = speckle::compound(&amplitude, &psf, COMPOUND_FRAMES, &mut rng);
    let image = scanner.compress(&envelope, SUPERSAMPLE, 0.6 * s);
    let mask_px = footprint
        .mask
        .iter()
        .map(|&m| if m { 255 } else { 0 })
        .collect();
    let mask = GrayImage::from_raw(w as u32, h as u32, mask_px)
        .unwrap_or_else(|| GrayImage::new(w as u32, h as u32));
    PhantomCase {
        stem: stem(index),
        class,
        image,
        mask,
    }
}

/// Envelope before log compression of a homogeneous region (constant amplitude `a`, on the
/// simulation grid of `width × height` pixels) through the generator's PSF of a 256² image.
#[cfg(test)]
fn homogeneous_envelope(width: usize, height: usize, a: f32, seed: u64) -> Grid {
    let mut rng = case_rng(seed, 0);
    let psf = Psf::for_image(256, 256).scaled(SUPERSAMPLE);
    speckle::envelope(&Grid::filled(width, height, a), &psf, &mut rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(w: usize, h: usize, seed: u64) -> PhantomConfig {
        PhantomConfig {
            n: 8,
            width: w,
            height: h,
            seed,
        }
    }

    #[test]
    fn same_seed_and_index_give_identical_bytes() {
        let c = cfg(64, 64, 7);
        let a = generate_one(&c, 3);
        let b = generate_one(&c, 3);
        assert_eq!(a.image.as_raw(), b.image.as_raw());
        assert_eq!(a.mask.as_raw(), b.mask.as_raw());
        assert_eq!(a.stem, "phantom_0004");
        let other = generate_one(&c, 4);
        assert_ne!(a.image.as_raw(), other.image.as_raw());
        let reseeded = generate_one(&cfg(64, 64, 8), 3);
        assert_ne!(a.image.as_raw(), reseeded.image.as_raw());
        // independent of n
        let bigger = PhantomConfig { n: 500, ..c };
        assert_eq!(generate_one(&bigger, 3).image.as_raw(), a.image.as_raw());
    }

    #[test]
    fn masks_are_binary_non_empty_and_inside() {
        for i in 0..12 {
            let c = generate_one(&cfg(64, 56, 1), i);
            assert_eq!(c.image.dimensions(), (64, 56));
            assert_eq!(c.mask.dimensions(), (64, 56));
            assert!(c.mask.as_raw().iter().all(|&v| v == 0 || v == 255));
            assert!(
                c.lesion_pixels() > 20,
                "{}: {} px",
                c.stem,
                c.lesion_pixels()
            );
            for (x, y, p) in c.mask.enumerate_pixels() {
                if x == 0 || y == 0 || x == 63 || y == 55 {
                    assert_eq!(
                        p[0], 0,
                        "{}: lesion touches the border at ({x}, {y})",
                        c.stem
                    );
                }
            }
        }
    }

    /// Mean grey inside the mask and in a ring 3..=10 pixels (Chebyshev) outside it.
    fn lesion_and_ring_means(c: &PhantomCase) -> (f32, f32) {
        let (w, h) = c.mask.dimensions();
        let (w, h) = (w as i64, h as i64);
        let m = |x: i64, y: i64| {
            x >= 0 && y >= 0 && x < w && y < h && c.mask.get_pixel(x as u32, y as u32)[0] > 0
        };
        let (mut si, mut ni, mut sr, mut nr) = (0.0, 0, 0.0, 0);
        for y in 0..h {
            for x in 0..w {
                let g = c.image.get_pixel(x as u32, y as u32)[0] as f32;
                if m(x, y) {
                    si += g;
                    ni += 1;
                    continue;
                }
                let near = |r: i64| (-r..=r).any(|dy| (-r..=r).any(|dx| m(x + dx, y + dy)));
                if near(10) && !near(2) {
                    sr += g;
                    nr += 1;
                }
            }
        }
        (si / ni.max(1) as f32, sr / nr.max(1) as f32)
    }

    #[test]
    fn lesion_is_clearly_darker_than_its_surroundings() {
        for i in 0..8 {
            let c = generate_one(&cfg(128, 128, 3), i);
            let (inside, ring) = lesion_and_ring_means(&c);
            assert!(
                inside + 25.0 < ring,
                "{} ({}): lesion {inside:.1} vs ring {ring:.1}",
                c.stem,
                c.class
            );
            // internal speckle, not flat black
            let vals: Vec<f32> = c
                .image
                .as_raw()
                .iter()
                .zip(c.mask.as_raw())
                .filter(|(_, m)| **m > 0)
                .map(|(g, _)| *g as f32)
                .collect();
            let mean = vals.iter().sum::<f32>() / vals.len() as f32;
            let sd =
                (vals.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / vals.len() as f32).sqrt();
            assert!(sd > 3.0, "{}: flat interior sd {sd}", c.stem);
        }
    }

    #[test]
    fn both_classes_alternate() {
        let classes: Vec<PhantomClass> = (0..4)
            .map(|i| generate_one(&cfg(32, 32, 0), i).class)
            .collect();
        assert_eq!(
            classes,
            [
                PhantomClass::Benign,
                PhantomClass::Malignant,
                PhantomClass::Benign,
                PhantomClass::Malignant
            ]
        );
    }

    #[test]
    fn image_statistics_are_plausible() {
        let c = generate_one(&cfg(128, 128, 5), 0);
        let px = c.image.as_raw();
        let mean = px.iter().map(|&v| v as f32).sum::<f32>() / px.len() as f32;
        assert!((40.0..160.0).contains(&mean), "mean grey {mean}");
        let saturated = px.iter().filter(|&&v| v == 255).count() as f32 / px.len() as f32;
        let black = px.iter().filter(|&&v| v == 0).count() as f32 / px.len() as f32;
        assert!(
            saturated < 0.02 && black < 0.2,
            "white {saturated} black {black}"
        );
        // the top rows hold the bright skin line
        let row_mean = |y: u32| {
            (0..128)
                .map(|x| c.image.get_pixel(x, y)[0] as f32)
                .sum::<f32>()
                / 128.0
        };
        let skin = (0..6).map(row_mean).fold(0.0, f32::max);
        assert!(skin > mean, "skin {skin} vs mean {mean}");
    }

    #[test]
    fn homogeneous_envelope_is_rayleigh() {
        let env = homogeneous_envelope(128, 128, 1.0, 9);
        let n = env.data.len() as f64;
        let mean = env.data.iter().map(|&v| v as f64).sum::<f64>() / n;
        let sd = (env
            .data
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        assert!((sd / mean - 0.5227).abs() < 0.03, "std/mean {}", sd / mean);
    }

    #[test]
    fn non_square_and_tiny_sizes_work() {
        let c = generate_one(&cfg(96, 48, 2), 1);
        assert_eq!(c.image.dimensions(), (96, 48));
        let t = generate_one(&cfg(4, 4, 2), 0);
        assert_eq!(t.image.dimensions(), (MIN_SIDE as u32, MIN_SIDE as u32));
        assert!(t.lesion_pixels() > 0);
    }

    #[test]
    fn small_images_are_fast() {
        let start = std::time::Instant::now();
        for i in 0..20 {
            let _ = generate_one(&cfg(64, 64, 0), i);
        }
        let secs = start.elapsed().as_secs_f64();
        assert!(secs < 2.0, "20 images of 64×64 took {secs:.2} s");
    }
}
