//! Speckle: complex Gaussian scatterers filtered by the imaging point-spread function, then
//! envelope-detected.
//!
//! Each pixel holds a scatterer `A(x, z)·n`, `n ~ CN(0, 1)` (real and imaginary parts
//! i.i.d. N(0, ½)). The baseband PSF is separable, `h = hₓ ⊗ h_z` with Gaussian profiles
//! (σₓ > σ_z: the beam is wider laterally than the pulse is long) of unit L2 norm each, so
//! for constant `A` the echo `e = h ∗ (A·n)` is again CN(0, A²) and the envelope `|e|` is
//! Rayleigh: mean `A·√π/2`, std/mean `√(4/π − 1) ≈ 0.523` (fully developed speckle).

use rand::Rng;
use rand_distr::StandardNormal;

use super::field::{Grid, gaussian_kernel_l2};

/// Gaussian point-spread function widths, in pixels (standard deviations of the amplitude).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Psf {
    pub sigma_lateral: f32,
    pub sigma_axial: f32,
}

impl Psf {
    /// The PSF for an output image of `width × height`, in its pixels: σₓ = 1.8·s,
    /// σ_z = 0.8·s with s = √(w·h)/256, floored at 0.5 and 0.35 pixel.
    pub fn for_image(width: usize, height: usize) -> Self {
        let s = ((width * height) as f32).sqrt() / 256.0;
        Psf {
            sigma_lateral: (1.8 * s).max(0.5),
            sigma_axial: (0.8 * s).max(0.35),
        }
    }

    /// The same PSF on a grid `factor` times finer.
    pub fn scaled(self, factor: usize) -> Self {
        Psf {
            sigma_lateral: self.sigma_lateral * factor as f32,
            sigma_axial: self.sigma_axial * factor as f32,
        }
    }
}

/// Envelope `|h ∗ (A·n)|` of the echo of the amplitude map `amplitude` (see module docs).
///
/// The scatterer field is drawn on a margin of one kernel radius around the image (amplitude
/// clamped to the nearest edge pixel), so the border has full speckle rather than a dark rim.
pub fn envelope(amplitude: &Grid, psf: &Psf, rng: &mut impl Rng) -> Grid {
    let (w, h) = (amplitude.width, amplitude.height);
    let kx = gaussian_kernel_l2(psf.sigma_lateral);
    let kz = gaussian_kernel_l2(psf.sigma_axial);
    let (rx, rz) = (kx.len() / 2, kz.len() / 2);
    let (pw, ph) = (w + 2 * rx, h + 2 * rz);
    let half = std::f32::consts::FRAC_1_SQRT_2;

    // Scatterers, padded: (pw × ph) complex.
    let mut re = vec![0.0f32; pw * ph];
    let mut im = vec![0.0f32; pw * ph];
    for pz in 0..ph {
        let z = pz.saturating_sub(rz).min(h - 1);
        let arow = amplitude.row(z);
        for px in 0..pw {
            let a = arow[px.saturating_sub(rx).min(w - 1)] * half;
            let i = pz * pw + px;
            re[i] = a * rng.sample::<f32, _>(StandardNormal);
            im[i] = a * rng.sample::<f32, _>(StandardNormal);
        }
    }

    // Lateral pass: (w × ph).
    let mut lre = vec![0.0f32; w * ph];
    let mut lim = vec![0.0f32; w * ph];
    for pz in 0..ph {
        let (sre, sim) = (&re[pz * pw..(pz + 1) * pw], &im[pz * pw..(pz + 1) * pw]);
        let (ore, oim) = (
            &mut lre[pz * w..(pz + 1) * w],
            &mut lim[pz * w..(pz + 1) * w],
        );
        for (k, &c) in kx.iter().enumerate() {
            for x in 0..w {
                ore[x] += c * sre[x + k];
                oim[x] += c * sim[x + k];
            }
        }
    }

    // Axial pass and envelope: (w × h).
    let mut env = Grid::filled(w, h, 0.0);
    let mut are = vec![0.0f32; w];
    let mut aim = vec![0.0f32; w];
    for z in 0..h {
        are.fill(0.0);
        aim.fill(0.0);
        for (k, &c) in kz.iter().enumerate() {
            let row = (z + k) * w;
            for x in 0..w {
                are[x] += c * lre[row + x];
                aim[x] += c * lim[row + x];
            }
        }
        for (x, o) in env.data[z * w..(z + 1) * w].iter_mut().enumerate() {
            *o = (are[x] * are[x] + aim[x] * aim[x]).sqrt();
        }
    }
    env
}

/// Spatial compounding: `√(⅟K·Σₖ eₖ²)` over `frames` independent speckle realisations
/// (steered frames decorrelate the speckle); for constant amplitude the intensity is then
/// Gamma(K)-distributed and the speckle contrast drops by ≈ √K.
pub fn compound(amplitude: &Grid, psf: &Psf, frames: usize, rng: &mut impl Rng) -> Grid {
    let frames = frames.max(1);
    let mut acc = envelope(amplitude, psf, rng);
    if frames == 1 {
        return acc;
    }
    for v in acc.data.iter_mut() {
        *v *= *v;
    }
    for _ in 1..frames {
        let e = envelope(amplitude, psf, rng);
        for (a, v) in acc.data.iter_mut().zip(&e.data) {
            *a += v * v;
        }
    }
    let norm = 1.0 / frames as f32;
    for v in acc.data.iter_mut() {
        *v = (*v * norm).sqrt();
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn homogeneous_speckle_is_rayleigh() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let amp = Grid::filled(160, 160, 2.0);
        let env = envelope(&amp, &Psf::for_image(256, 256), &mut rng);
        let n = env.data.len() as f64;
        let mean = env.data.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = env
            .data
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        let ratio = var.sqrt() / mean;
        // Rayleigh: std/mean = sqrt(4/pi - 1) = 0.5227; mean = A*sqrt(pi)/2 = 1.772.
        assert!((ratio - 0.5227).abs() < 0.03, "std/mean {ratio}");
        assert!((mean - 1.772).abs() < 0.1, "mean {mean}");
    }

    #[test]
    fn speckle_grain_is_longer_laterally_than_axially() {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let amp = Grid::filled(128, 128, 1.0);
        let env = envelope(&amp, &Psf::for_image(256, 256).scaled(2), &mut rng);
        // lag-2 autocorrelation of the envelope along x and along z
        let m = env.data.iter().sum::<f32>() / env.data.len() as f32;
        let corr = |dx: usize, dz: usize| {
            let (mut s, mut s0) = (0.0f64, 0.0f64);
            for z in 0..128 - dz {
                for x in 0..128 - dx {
                    let a = (env.at(x, z) - m) as f64;
                    s += a * (env.at(x + dx, z + dz) - m) as f64;
                    s0 += a * a;
                }
            }
            s / s0
        };
        let (cx, cz) = (corr(2, 0), corr(0, 2));
        assert!(cx > cz + 0.2, "lateral {cx} vs axial {cz}");
    }

    #[test]
    fn compounding_lowers_speckle_contrast() {
        let mut rng = ChaCha8Rng::seed_from_u64(14);
        let amp = Grid::filled(96, 96, 1.0);
        let psf = Psf::for_image(256, 256);
        let contrast = |g: &Grid| {
            let n = g.data.len() as f32;
            let m = g.data.iter().sum::<f32>() / n;
            (g.data.iter().map(|v| (v - m).powi(2)).sum::<f32>() / n).sqrt() / m
        };
        let one = contrast(&compound(&amp, &psf, 1, &mut rng));
        let three = contrast(&compound(&amp, &psf, 3, &mut rng));
        assert!((one - 0.523).abs() < 0.04, "{one}");
        assert!(three < 0.75 * one, "{three} vs {one}");
    }

    #[test]
    fn envelope_follows_amplitude() {
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        let mut amp = Grid::filled(64, 64, 1.0);
        for z in 32..64 {
            for x in 0..64 {
                *amp.at_mut(x, z) = 0.1;
            }
        }
        let env = envelope(&amp, &Psf::for_image(64, 64), &mut rng);
        let mean = |z0: usize, z1: usize| {
            (z0..z1).flat_map(|z| env.row(z).to_vec()).sum::<f32>() / ((z1 - z0) * 64) as f32
        };
        let ratio = mean(36, 64) / mean(0, 28);
        assert!((0.07..0.14).contains(&ratio), "ratio {ratio}");
    }
}
