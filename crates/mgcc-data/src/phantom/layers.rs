//! Breast anatomy as depth curves: per image column, the depth (in pixels, from the top) of
//! each interface. From the transducer down: epidermis line, dermis, subcutaneous fat,
//! fibroglandular tissue, retromammary fat, pectoralis muscle.
//!
//! Every interface is `z(x) = h·(μ + a·n(x))` with `n` unit-variance 1-D smooth noise of
//! correlation length ~ `w/4` (wavy, not sinusoidal), then forced into depth order with
//! minimum gaps.

use rand::Rng;

use super::field::smooth_noise_1d;

/// Interface depths per column, each `width` long, in pixels; increasing downwards.
#[derive(Debug, Clone)]
pub struct Layers {
    /// Centre of the bright epidermis (skin entry) line.
    pub epidermis: Vec<f32>,
    /// Dermis → subcutaneous fat.
    pub dermis: Vec<f32>,
    /// Subcutaneous fat → fibroglandular tissue.
    pub fat: Vec<f32>,
    /// Fibroglandular tissue → retromammary fat.
    pub gland: Vec<f32>,
    /// Retromammary fat → pectoralis muscle (bright fascia line).
    pub muscle: Vec<f32>,
}

impl Layers {
    /// Draw a layer geometry for a `width × height` image.
    pub fn sample(rng: &mut impl Rng, width: usize, height: usize) -> Self {
        let h = height as f32;
        let w = width as f32;
        let s = (w * h).sqrt() / 256.0;
        let epi_mean = rng_range(rng, 0.012, 0.025);
        let epidermis = curve(rng, width, h, epi_mean, 0.002, w / 2.0);
        let dermis_mean = epi_mean + rng_range(rng, 0.025, 0.04);
        let dermis = curve(rng, width, h, dermis_mean, 0.004, w / 3.0);
        let fat_mean = rng_range(rng, 0.2, 0.32);
        let (fat_amp, fat_cell) = (rng_range(rng, 0.03, 0.06), w / rng_range(rng, 3.0, 6.0));
        let fat = curve(rng, width, h, fat_mean, fat_amp, fat_cell);
        let gland_mean = fat_mean + rng_range(rng, 0.38, 0.5);
        let (gland_amp, gland_cell) = (rng_range(rng, 0.03, 0.06), w / rng_range(rng, 2.5, 5.0));
        let gland = curve(rng, width, h, gland_mean, gland_amp, gland_cell);
        let retro = rng_range(rng, 0.03, 0.07);
        let muscle = curve(rng, width, h, gland_mean + retro, 0.015, w / 2.0);

        let mut layers = Layers {
            epidermis,
            dermis,
            fat,
            gland,
            muscle,
        };
        // Depth order with minimum gaps (pixels).
        let gap = (2.0 * s).max(1.0);
        for x in 0..width {
            let l = &mut layers;
            l.epidermis[x] = l.epidermis[x].max(1.0);
            l.dermis[x] = l.dermis[x].max(l.epidermis[x] + gap);
            l.fat[x] = l.fat[x].max(l.dermis[x] + 3.0 * gap);
            l.gland[x] = l.gland[x].max(l.fat[x] + 8.0 * gap);
            l.muscle[x] = l.muscle[x].max(l.gland[x] + gap);
        }
        layers
    }

    /// Deepest point of the dermis (the skin must lie above anything placed in the breast).
    pub fn skin_bottom(&self) -> f32 {
        self.dermis.iter().copied().fold(0.0, f32::max)
    }
}

/// `h·(mean + amp·n(x))` for unit-variance smooth noise `n` of correlation length `cell`.
fn curve(rng: &mut impl Rng, width: usize, h: f32, mean: f32, amp: f32, cell: f32) -> Vec<f32> {
    smooth_noise_1d(rng, width, cell)
        .into_iter()
        .map(|v| h * (mean + amp * v))
        .collect()
}

/// Uniform draw in `[lo, hi)`.
pub fn rng_range(rng: &mut impl Rng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.random::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn interfaces_are_ordered_and_inside() {
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let (w, h) = (96, 80);
            let l = Layers::sample(&mut rng, w, h);
            for x in 0..w {
                let z = [
                    l.epidermis[x],
                    l.dermis[x],
                    l.fat[x],
                    l.gland[x],
                    l.muscle[x],
                ];
                assert!(
                    z.windows(2).all(|p| p[0] < p[1]),
                    "seed {seed} x {x}: {z:?}"
                );
                assert!(z[0] >= 1.0 && z[4] < h as f32 * 1.05, "seed {seed}: {z:?}");
            }
            // the glandular layer is a substantial band
            let thick: f32 = (0..w).map(|x| l.gland[x] - l.fat[x]).sum::<f32>() / w as f32;
            assert!(thick > 0.3 * h as f32, "seed {seed}: gland {thick}");
        }
    }
}
