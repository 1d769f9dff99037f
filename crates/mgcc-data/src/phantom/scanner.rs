//! The imaging chain around the speckle: depth attenuation with partial time-gain
//! compensation, lateral edge fall-off, an electronic noise floor, and log compression.
//!
//! Echo gain at (x, z), dB: `G(x, z) = −α·z/H + ripple(z) − E·|2x/W − 1|⁴`, where
//! α = (1 − c)·A is what TGC (compensating a fraction c of the round-trip attenuation A)
//! leaves. The noise floor is amplified by the TGC: `N(z) = N₀ + c·A·z/H`.
//! Display: `p = 255·clamp((20·log₁₀ e − (T − D))/D, 0, 1)` with dynamic range D and top T.

use image::GrayImage;
use rand::Rng;

use super::field::{Grid, blur, downsample, smooth_noise_1d};
use super::layers::rng_range;

/// Scanner settings of one image.
#[derive(Debug, Clone)]
pub struct Scanner {
    /// Displayed dynamic range D, dB.
    pub dynamic_range_db: f32,
    /// Envelope level shown as white, T, dB (glandular tissue is 0 dB).
    pub top_db: f32,
    /// Round-trip attenuation over the full depth, A, dB.
    pub attenuation_db: f32,
    /// Fraction c of the attenuation compensated by TGC.
    pub tgc_fraction: f32,
    /// Noise floor at the transducer, N₀, dB.
    pub noise_floor_db: f32,
    /// Darkening at the lateral edges, E, dB.
    pub edge_db: f32,
    /// TGC slider ripple over depth (one sample per output row), dB.
    ripple: Vec<f32>,
}

impl Scanner {
    /// Draw settings for an image `height` rows deep.
    pub fn sample(rng: &mut impl Rng, height: usize) -> Self {
        let dynamic_range_db = rng_range(rng, 50.0, 60.0);
        // Glandular speckle (mean log-envelope −2.5 dB) lands at grey fraction g of white.
        let g = rng_range(rng, 0.42, 0.52);
        let ripple_amp = rng_range(rng, 0.5, 1.5);
        let ripple = smooth_noise_1d(rng, height, height as f32 / 4.0)
            .into_iter()
            .map(|v| ripple_amp * v)
            .collect();
        Scanner {
            dynamic_range_db,
            top_db: dynamic_range_db * (1.0 - g) - 2.5,
            attenuation_db: rng_range(rng, 30.0, 50.0),
            tgc_fraction: rng_range(rng, 0.6, 0.85),
            noise_floor_db: rng_range(rng, -62.0, -56.0),
            edge_db: rng_range(rng, 0.0, 4.0),
            ripple,
        }
    }

    /// Echo gain `G(x, z)` in dB (see module docs).
    pub fn gain_db(&self, x: usize, z: usize, width: usize, height: usize) -> f32 {
        let depth = (z as f32 + 0.5) / height as f32;
        let lateral = (2.0 * (x as f32 + 0.5) / width as f32 - 1.0).abs();
        -(1.0 - self.tgc_fraction) * self.attenuation_db * depth + self.ripple_at(depth)
            - self.edge_db * lateral.powi(4)
    }

    /// TGC ripple at fractional depth `depth ∈ [0, 1)`, dB.
    fn ripple_at(&self, depth: f32) -> f32 {
        let n = self.ripple.len();
        self.ripple[((depth * n as f32) as usize).min(n - 1)]
    }

    /// Noise floor `N(z)` in dB.
    pub fn noise_db(&self, z: usize, height: usize) -> f32 {
        let depth = (z as f32 + 0.5) / height as f32;
        self.noise_floor_db + self.tgc_fraction * self.attenuation_db * depth
    }

    /// Scatterer amplitude map: `√(10^((S+G)/10) + 10^(N/10))` for echogenicity `S` (dB).
    pub fn amplitude(&self, db: &Grid) -> Grid {
        let (w, h) = (db.width, db.height);
        let mut amp = Grid::filled(w, h, 0.0);
        for z in 0..h {
            let noise = 10f32.powf(self.noise_db(z, h) / 10.0);
            for x in 0..w {
                let i = z * w + x;
                let p = 10f32.powf((db.data[i] + self.gain_db(x, z, w, h)) / 10.0);
                amp.data[i] = (p + noise).sqrt();
            }
        }
        amp
    }

    /// Log-compress an envelope to grey levels (see module docs), average `factor × factor`
    /// blocks (display resampling of a finer acquisition grid), smooth with a Gaussian of
    /// σ = `smooth_px` output pixels (scan-conversion interpolation; 0 = none), round to 8 bits.
    pub fn compress(&self, env: &Grid, factor: usize, smooth_px: f32) -> GrayImage {
        let low = self.top_db - self.dynamic_range_db;
        let k = 255.0 / self.dynamic_range_db;
        let grey = Grid {
            width: env.width,
            height: env.height,
            data: env
                .data
                .iter()
                .map(|&e| ((20.0 * e.max(1e-12).log10() - low) * k).clamp(0.0, 255.0))
                .collect(),
        };
        let mut out = downsample(&grey, factor);
        if smooth_px > 0.0 {
            out = blur(&out, smooth_px, smooth_px);
        }
        let pixels = out.data.iter().map(|&g| g.round() as u8).collect();
        // Length is width × height by construction.
        GrayImage::from_raw(out.width as u32, out.height as u32, pixels)
            .unwrap_or_else(|| GrayImage::new(out.width as u32, out.height as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn compression_maps_range_linearly_in_db() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let sc = Scanner::sample(&mut rng, 16);
        let at = |db: f32| {
            let mut g = Grid::filled(1, 1, 0.0);
            g.data[0] = 10f32.powf(db / 20.0);
            sc.compress(&g, 1, 0.0).get_pixel(0, 0)[0]
        };
        assert_eq!(at(sc.top_db + 1.0), 255);
        assert_eq!(at(sc.top_db - sc.dynamic_range_db - 1.0), 0);
        let mid = at(sc.top_db - sc.dynamic_range_db / 2.0);
        assert!((126..=129).contains(&mid), "mid {mid}");
    }

    #[test]
    fn residual_attenuation_darkens_with_depth_and_noise_rises() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let sc = Scanner::sample(&mut rng, 100);
        let top = sc.gain_db(50, 5, 100, 100) - sc.ripple_at(0.055);
        let bottom = sc.gain_db(50, 95, 100, 100) - sc.ripple_at(0.955);
        assert!(bottom < top - 1.0, "{top} {bottom}");
        assert!(sc.noise_db(95, 100) > sc.noise_db(5, 100) + 10.0);
        assert!(sc.gain_db(0, 50, 100, 100) <= sc.gain_db(50, 50, 100, 100));
    }
}
