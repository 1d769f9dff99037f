//! Background tissue echogenicity (dB relative to glandular tissue) from the layer geometry.
//!
//! Per layer: skin (bright epidermis line, grey dermis), subcutaneous fat (dark lobules
//! separated by thin bright septa/Cooper's ligaments: Worley walls), fibroglandular tissue
//! (bright and heterogeneous: fine + coarse smooth noise, thresholded horizontal streaks,
//! scattered dark fat lobules), retromammary fat, pectoralis muscle (grey with bright
//! oblique fibre striations under a bright fascia). Layers are blended with logistic steps
//! of ~1 pixel at their interfaces; interface lines are Gaussian ridges `g·e^(−d²/2w²)`.

use rand::Rng;

use super::field::{Cells, Grid, ridge, smooth_noise_1d, smooth_noise_2d, smoothstep, soft_step};
use super::layers::{Layers, rng_range};

/// Echogenicity map in dB for a `width × height` image. Dark fat lobules (look-alikes of a
/// lesion) are kept out of the pixel box `keep_out = (x0, x1, z0, z1)`.
pub fn echogenicity(
    rng: &mut impl Rng,
    layers: &Layers,
    keep_out: (usize, usize, usize, usize),
    width: usize,
    height: usize,
) -> Grid {
    let (w, h) = (width, height);
    let s = ((w * h) as f32).sqrt() / 256.0;
    let side = w.min(h) as f32;
    let fine = smooth_noise_2d(rng, w, h, 5.0 * s, 2.5 * s);
    let coarse = smooth_noise_2d(rng, w, h, 40.0 * s, 18.0 * s);
    let streak = smooth_noise_2d(rng, w, h, 40.0 * s, 1.5 * s);
    let septa_gate = smooth_noise_2d(rng, w, h, 20.0 * s, 12.0 * s);
    let (cell_x, cell_y) = (
        rng_range(rng, 40.0, 60.0) * s,
        rng_range(rng, 14.0, 20.0) * s,
    );
    let fat_cells = Cells::new(rng, w, h, cell_x, cell_y);
    let (gcell_x, gcell_y) = (
        rng_range(rng, 30.0, 50.0) * s,
        rng_range(rng, 8.0, 12.0) * s,
    );
    let gland_cells = Cells::new(rng, w, h, gcell_x, gcell_y);
    let gland_gate = smooth_noise_2d(rng, w, h, 25.0 * s, 10.0 * s);
    let fascia = smooth_noise_1d(rng, w, 20.0 * s);
    let fibre_wave = smooth_noise_1d(rng, w, 40.0 * s);
    let fibre_gate = smooth_noise_2d(rng, w, h, 30.0 * s, 4.0 * s);
    // Domain warp of the cell patterns, so that septa and laminae curve.
    let warp_x = smooth_noise_2d(rng, w, h, 24.0 * s, 16.0 * s);
    let warp_z = smooth_noise_2d(rng, w, h, 24.0 * s, 16.0 * s);
    let warp = 6.0 * s;

    let dermis_db = rng_range(rng, -5.0, -2.0);
    let fat_db = rng_range(rng, -14.0, -10.0);
    let gland_db = 0.0;
    let retro_db = rng_range(rng, -14.0, -10.0);
    let muscle_db = rng_range(rng, -10.0, -6.0);
    let period = rng_range(rng, 5.0, 9.0) * s.max(0.5);
    let slope = rng_range(rng, -0.2, 0.2);
    let streak_db = rng_range(rng, 7.0, 11.0);

    // Dark fat lobules inside the glandular layer.
    let mut lob_w = Grid::filled(w, h, 0.0);
    let mut lob_db = Grid::filled(w, h, 0.0);
    for _ in 0..rng.random_range(3..10) {
        let x = rng_range(rng, 0.0, w as f32);
        let col = (x as usize).min(w - 1);
        let z = layers.fat[col] + (layers.gland[col] - layers.fat[col]) * rng_range(rng, 0.1, 0.9);
        let a = side * rng_range(rng, 0.025, 0.065);
        let b = a * rng_range(rng, 0.4, 0.7);
        let level = rng_range(rng, -13.0, -9.0);
        let (bx0, bx1) = (
            (x - a - 2.0).max(0.0) as usize,
            ((x + a + 2.0) as usize).min(w - 1),
        );
        let (bz0, bz1) = (
            (z - b - 2.0).max(0.0) as usize,
            ((z + b + 2.0) as usize).min(h - 1),
        );
        let (kx0, kx1, kz0, kz1) = keep_out;
        if bx0 <= kx1 && kx0 <= bx1 && bz0 <= kz1 && kz0 <= bz1 {
            continue;
        }
        for zz in bz0..=bz1 {
            for xx in bx0..=bx1 {
                let q = ((xx as f32 + 0.5 - x) / a).hypot((zz as f32 + 0.5 - z) / b);
                let wt = 1.0 - smoothstep((q - 0.8) / 0.35);
                if wt > lob_w.at(xx, zz) {
                    *lob_w.at_mut(xx, zz) = wt;
                    *lob_db.at_mut(xx, zz) = level;
                }
            }
        }
    }

    let edge = 0.8 * s.max(0.5);
    let line = s.max(0.6);
    let mut db = Grid::filled(w, h, 0.0);
    for z in 0..h {
        let zf = z as f32 + 0.5;
        for x in 0..w {
            let i = z * w + x;
            let xw = x as f32 + 0.5 + warp * warp_x.data[i];
            let zw = zf + warp * warp_z.data[i];
            let f = fine.data[i];
            let (epi, der, fat, gla, mus) = (
                layers.epidermis[x],
                layers.dermis[x],
                layers.fat[x],
                layers.gland[x],
                layers.muscle[x],
            );
            // Layer k (0 near field, 1 dermis, 2 fat, 3 gland, 4 retromammary fat, 5 muscle),
            // evaluated only where it has weight.
            let fat_septa = |gain: f32| {
                let (wall, shade) = fat_cells.at(xw, zw);
                let septa = ridge(wall, 1.1 * s.max(0.5));
                let septa = if septa > 0.0 {
                    septa * smoothstep(septa_gate.data[i] + 0.5)
                } else {
                    0.0
                };
                (gain * septa, shade)
            };
            let layer = |k: usize| -> f32 {
                match k {
                    0 => -25.0,
                    1 => dermis_db + 1.5 * f,
                    2 => {
                        let (septa, shade) = fat_septa(11.0);
                        fat_db + 2.0 * shade + 1.0 * f + septa
                    }
                    3 => {
                        let (wall, shade) = gland_cells.at(xw, zw);
                        let lamina = ridge(wall, 1.0 * s.max(0.5));
                        let lamina = if lamina > 0.0 {
                            lamina * smoothstep(gland_gate.data[i] + 1.0)
                        } else {
                            0.0
                        };
                        let g = gland_db
                            + 2.5 * f
                            + 3.0 * coarse.data[i]
                            + 2.0 * shade
                            + 9.0 * lamina
                            + streak_db * (streak.data[i] - 1.2).max(0.0);
                        g + lob_w.data[i] * (lob_db.data[i] + 1.5 * f - g)
                    }
                    4 => retro_db + 1.5 * f + fat_septa(7.0).0,
                    _ => {
                        let phase =
                            (zf - mus + slope * x as f32 + 6.0 * s * fibre_wave[x]) / period;
                        let fibre = ridge((phase - phase.round()) * period, 0.9 * s.max(0.5));
                        let fibre = fibre * smoothstep(fibre_gate.data[i] + 0.7);
                        muscle_db + 1.5 * f + 8.0 * fibre
                    }
                }
            };
            let t = [
                soft_step(zf - (epi - 1.0), 0.5),
                soft_step(zf - der, edge),
                // the fat/gland interfaces interdigitate: compared at the warped depth
                soft_step(0.5 * (zf + zw) - fat, 1.5 * edge),
                soft_step(0.5 * (zf + zw) - gla, 1.5 * edge),
                soft_step(zf - mus, edge),
            ];
            // v = layer 0, then v += (layer(k+1) − v)·t[k] in depth order; start from the
            // deepest layer that is fully reached.
            let start = t.iter().rposition(|&tk| tk >= 1.0).map_or(0, |k| k + 1);
            let mut v = layer(start);
            for (k, &tk) in t.iter().enumerate().skip(start) {
                if tk > 0.0 {
                    v += (layer(k + 1) - v) * tk;
                }
            }
            v += 12.0 * ridge(zf - epi, 0.7 * line);
            v += 5.0 * ridge(zf - der, 0.9 * line);
            v += 9.0 * fascia[x].max(0.0) * ridge(0.5 * (zf + zw) - fat, 1.2 * line);
            v += 9.0 * ridge(zf - mus, 1.2 * line);
            db.data[i] = v;
        }
    }
    db
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn layers_have_their_echogenicity() {
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        let (w, h) = (128, 128);
        let layers = Layers::sample(&mut rng, w, h);
        let db = echogenicity(&mut rng, &layers, (0, 0, 0, 0), w, h);
        let band_mean = |lo: &[f32], hi: &[f32]| {
            let (mut s, mut n) = (0.0, 0);
            for x in 0..w {
                let (a, b) = ((lo[x] + 3.0) as usize, (hi[x] - 3.0).max(0.0) as usize);
                for z in a..b.min(h) {
                    s += db.at(x, z);
                    n += 1;
                }
            }
            s / n.max(1) as f32
        };
        let fat = band_mean(&layers.dermis, &layers.fat);
        let gland = band_mean(&layers.fat, &layers.gland);
        assert!(gland > fat + 5.0, "gland {gland} dB vs fat {fat} dB");
        assert!(db.data.iter().all(|v| v.is_finite()));
    }
}
