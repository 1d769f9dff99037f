//! The lesion: a star-shaped region in a rotated, anisotropically scaled frame, its exact
//! mask, and how it modulates the echogenicity map (hypoechoic interior, posterior
//! shadowing or enhancement, refraction edge shadows, echogenic halo, microcalcifications).
//!
//! Shape: in local coordinates `(u, v)` with `(a·u, b·v) = R(−φ)·(x − c)` a pixel is inside
//! iff `ρ = |(u, v)| < r(θ)`, `θ = atan2(v, u)`, where the radial function
//! `r(θ) = 1 + Σₖ cₖ cos(kθ + ψₖ) + Σⱼ ℓⱼ·max(0, 1 − |θ − θⱼ|/ωⱼ)^1.2`
//! holds low harmonics (lobulation), high harmonics (irregular margin) and spikes (spiculation).
//! The area is `a·b·π·⟨r²⟩`, which fixes the scale from the drawn equivalent radius.

use rand::Rng;
use std::f32::consts::{PI, TAU};

use super::PhantomClass;
use super::field::{Grid, smooth_noise_1d, smooth_noise_2d, smoothstep};
use super::layers::{Layers, rng_range};

/// Samples of `r(θ)` over one turn.
const N_ANGLES: usize = 720;

/// The interior is at least this much darker than the tissue it replaces, dB.
pub const MIN_CONTRAST_DB: f32 = 6.0;

/// Lesion family; benign images get a cyst or a fibroadenoma-like solid mass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LesionKind {
    /// Anechoic, oval, sharp margin, posterior enhancement.
    Cyst,
    /// Hypoechoic, oval or gently lobulated, wider than tall.
    Fibroadenoma,
    /// Hypoechoic, heterogeneous, irregular or spiculated, taller than wide, shadowing.
    Carcinoma,
}

/// One lesion: geometry in pixels and its echo parameters in dB (relative to glandular tissue).
#[derive(Debug, Clone)]
pub struct Lesion {
    /// Centre (column, row) in pixels.
    pub cx: f32,
    pub cz: f32,
    /// Lateral and axial semi-axes of the unit-radius shape before rotation, pixels.
    pub a: f32,
    pub b: f32,
    /// Rotation, radians.
    pub angle: f32,
    radial: Vec<f32>,
    /// Interior echogenicity, dB.
    pub level_db: f32,
    /// Std of the interior heterogeneity, dB.
    pub texture_db: f32,
    /// Width over which the interior fades in from the border (inside the mask only), pixels.
    pub soft_px: f32,
    /// Posterior effect at full lesion thickness: < 0 shadowing, > 0 enhancement, dB.
    pub posterior_db: f32,
    /// Refraction shadows below the lateral edges, dB (≤ 0).
    pub edge_shadow_db: f32,
    /// Echogenic rim outside the border, dB (≥ 0).
    pub halo_db: f32,
    /// Number of bright microcalcification specks inside.
    pub calcifications: usize,
}

/// The lesion rasterised: its exact mask and approximate distances to the border.
#[derive(Debug, Clone)]
pub struct Footprint {
    /// `true` inside the lesion, row-major `width × height`.
    pub mask: Vec<bool>,
    /// Distance to the border inside the lesion (pixels, radial approximation), 0 outside.
    pub inner: Grid,
    /// Distance to the border outside the lesion, `f32::INFINITY` far away.
    pub outer: Grid,
    /// Inclusive bounding box `(x0, x1, z0, z1)` of the mask.
    pub bbox: (usize, usize, usize, usize),
}

#[cfg(test)]
impl Footprint {
    /// Number of lesion pixels.
    pub fn area(&self) -> usize {
        self.mask.iter().filter(|&&m| m).count()
    }
}

impl Lesion {
    /// Draw a lesion of `class`, placed in the glandular layer, fully inside the image with a
    /// margin, with equivalent radius √(area/π) drawn in [0.08, 0.25]·min(w, h) (shrunk if needed to fit).
    pub fn sample(
        rng: &mut impl Rng,
        class: PhantomClass,
        layers: &Layers,
        width: usize,
        height: usize,
    ) -> Self {
        let (w, h) = (width as f32, height as f32);
        let side = w.min(h);
        let s = (w * h).sqrt() / 256.0;
        let kind = match class {
            PhantomClass::Benign if rng.random_bool(0.3) => LesionKind::Cyst,
            PhantomClass::Benign => LesionKind::Fibroadenoma,
            PhantomClass::Malignant => LesionKind::Carcinoma,
        };
        let radial = radial_profile(rng, kind);
        let mean_r2 = radial.iter().map(|r| r * r).sum::<f32>() / N_ANGLES as f32;
        let aspect = match kind {
            LesionKind::Cyst => rng_range(rng, 1.1, 1.6),
            LesionKind::Fibroadenoma => rng_range(rng, 1.3, 2.0),
            LesionKind::Carcinoma => 1.0 / rng_range(rng, 1.05, 1.5),
        };
        let angle = rng_range(rng, -0.3, 0.3);
        let r_eq = side * (0.08 + 0.17 * rng.random::<f32>().powf(1.2));
        let scale = r_eq / mean_r2.sqrt();

        let mut lesion = match kind {
            LesionKind::Cyst => Lesion {
                cx: 0.0,
                cz: 0.0,
                a: 0.0,
                b: 0.0,
                angle,
                radial,
                level_db: rng_range(rng, -34.0, -28.0),
                texture_db: 0.5,
                soft_px: 0.7 * s,
                posterior_db: rng_range(rng, 5.0, 10.0),
                edge_shadow_db: if rng.random_bool(0.7) {
                    rng_range(rng, -12.0, -6.0)
                } else {
                    0.0
                },
                halo_db: 0.0,
                calcifications: 0,
            },
            LesionKind::Fibroadenoma => {
                let u = rng.random::<f32>();
                Lesion {
                    cx: 0.0,
                    cz: 0.0,
                    a: 0.0,
                    b: 0.0,
                    angle,
                    radial,
                    level_db: rng_range(rng, -20.0, -13.0),
                    texture_db: rng_range(rng, 1.0, 2.0),
                    soft_px: rng_range(rng, 1.0, 2.0) * s,
                    posterior_db: if u < 0.5 {
                        rng_range(rng, 2.0, 6.0)
                    } else if u < 0.85 {
                        0.0
                    } else {
                        rng_range(rng, -6.0, -3.0)
                    },
                    edge_shadow_db: if rng.random_bool(0.5) {
                        rng_range(rng, -10.0, -5.0)
                    } else {
                        0.0
                    },
                    halo_db: 0.0,
                    calcifications: 0,
                }
            }
            LesionKind::Carcinoma => {
                let u = rng.random::<f32>();
                Lesion {
                    cx: 0.0,
                    cz: 0.0,
                    a: 0.0,
                    b: 0.0,
                    angle,
                    radial,
                    level_db: rng_range(rng, -22.0, -14.0),
                    texture_db: rng_range(rng, 2.5, 4.0),
                    soft_px: rng_range(rng, 2.0, 5.0) * s,
                    posterior_db: if u < 0.6 {
                        rng_range(rng, -12.0, -5.0)
                    } else if u < 0.9 {
                        0.0
                    } else {
                        rng_range(rng, 2.0, 4.0)
                    },
                    edge_shadow_db: if rng.random_bool(0.1) {
                        rng_range(rng, -8.0, -4.0)
                    } else {
                        0.0
                    },
                    halo_db: if rng.random_bool(0.4) {
                        rng_range(rng, 3.0, 6.0)
                    } else {
                        0.0
                    },
                    calcifications: if rng.random_bool(0.4) {
                        rng.random_range(2..9)
                    } else {
                        0
                    },
                }
            }
        };

        // Fit: shrink until the box fits between the skin and the bottom, with a margin.
        let margin = (0.03 * side).max(2.0);
        let top = layers.skin_bottom() + margin;
        let mut k = 1.0f32;
        let (mut lo_x, mut hi_x, mut lo_z, mut hi_z);
        loop {
            lesion.a = scale * k * aspect.sqrt();
            lesion.b = scale * k / aspect.sqrt();
            let (x0, x1, z0, z1) = lesion.extent();
            lo_x = margin - x0;
            hi_x = w - margin - x1;
            lo_z = top - z0;
            hi_z = h - margin - z1;
            if (lo_x <= hi_x && lo_z <= hi_z) || k < 0.05 {
                break;
            }
            k *= 0.92;
        }
        lesion.cx = rng_range(rng, lo_x, hi_x.max(lo_x));
        let col = (lesion.cx.max(0.0) as usize).min(width - 1);
        let target =
            layers.fat[col] + (layers.gland[col] - layers.fat[col]) * rng_range(rng, 0.3, 0.6);
        lesion.cz = target.clamp(lo_z, hi_z.max(lo_z));
        lesion
    }

    /// `r(θ)` by linear interpolation of the table.
    fn radius_at(&self, theta: f32) -> f32 {
        let t = theta.rem_euclid(TAU) / TAU * N_ANGLES as f32;
        let i = t.floor() as usize % N_ANGLES;
        let f = t - t.floor();
        self.radial[i] * (1.0 - f) + self.radial[(i + 1) % N_ANGLES] * f
    }

    /// Offsets `(x_min, x_max, z_min, z_max)` of the outline from the centre, pixels.
    pub fn extent(&self) -> (f32, f32, f32, f32) {
        let (sa, ca) = self.angle.sin_cos();
        let mut e = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
        for (i, r) in self.radial.iter().enumerate() {
            let th = i as f32 / N_ANGLES as f32 * TAU;
            let (lu, lv) = (self.a * r * th.cos(), self.b * r * th.sin());
            let (px, pz) = (ca * lu - sa * lv, sa * lu + ca * lv);
            e = (e.0.min(px), e.1.max(px), e.2.min(pz), e.3.max(pz));
        }
        e
    }

    /// Pixel box `(x0, x1, z0, z1)` (inclusive, clamped) around the outline, grown by `pad`.
    pub fn keep_out(&self, pad: f32, width: usize, height: usize) -> (usize, usize, usize, usize) {
        let (x0, x1, z0, z1) = self.extent();
        let clamp = |v: f32, n: usize| (v.max(0.0) as usize).min(n - 1);
        (
            clamp(self.cx + x0 - pad, width),
            clamp(self.cx + x1 + pad, width),
            clamp(self.cz + z0 - pad, height),
            clamp(self.cz + z1 + pad, height),
        )
    }

    /// Rasterise at pixel centres; `outer` is filled up to `pad` pixels around the outline.
    pub fn footprint(&self, width: usize, height: usize, pad: f32) -> Footprint {
        let mut mask = vec![false; width * height];
        let mut inner = Grid::filled(width, height, 0.0);
        let mut outer = Grid::filled(width, height, f32::INFINITY);
        let (sa, ca) = self.angle.sin_cos();
        let (bx0, bx1, bz0, bz1) = self.keep_out(pad + 1.0, width, height);
        let mut bbox = (usize::MAX, 0, usize::MAX, 0);
        for z in bz0..=bz1 {
            let dz = z as f32 + 0.5 - self.cz;
            for x in bx0..=bx1 {
                let dx = x as f32 + 0.5 - self.cx;
                let u = (ca * dx + sa * dz) / self.a;
                let v = (-sa * dx + ca * dz) / self.b;
                let rho = u.hypot(v);
                let th = v.atan2(u);
                let r = self.radius_at(th);
                let unit_px = (self.a * th.cos()).hypot(self.b * th.sin());
                let i = z * width + x;
                if rho < r {
                    mask[i] = true;
                    inner.data[i] = (r - rho) * unit_px;
                    bbox = (bbox.0.min(x), bbox.1.max(x), bbox.2.min(z), bbox.3.max(z));
                } else {
                    outer.data[i] = (rho - r) * unit_px;
                }
            }
        }
        if bbox.0 == usize::MAX {
            // Degenerate (sub-pixel) lesion: mark the centre pixel so the mask is never empty.
            let x = (self.cx.max(0.0) as usize).min(width - 1);
            let z = (self.cz.max(0.0) as usize).min(height - 1);
            mask[z * width + x] = true;
            inner.data[z * width + x] = 0.5;
            bbox = (x, x, z, z);
        }
        Footprint {
            mask,
            inner,
            outer,
            bbox,
        }
    }

    /// Modulate the tissue echogenicity `db` (dB): interior level and texture, at least
    /// [`MIN_CONTRAST_DB`] below the local tissue (inside the mask only, fading in over
    /// `soft_px` from the border: t = 0.4 + 0.6·smoothstep(d/soft)),
    /// halo outside (`halo·e^(−d/2.5s)`), microcalcifications, posterior effect
    /// (`P·smoothstep(L(x,z)/L_ref)`, L the lesion path length above (x, z) along the beam,
    /// L_ref = 0.6·max column thickness, blurred laterally) and refraction edge shadows.
    pub fn apply(&self, rng: &mut impl Rng, db: &mut Grid, fp: &Footprint) {
        let (w, h) = (db.width, db.height);
        let s = ((w * h) as f32).sqrt() / 256.0;
        let (x0, x1, z0, z1) = fp.bbox;
        let (bw, bh) = (x1 - x0 + 1, z1 - z0 + 1);
        let texture = smooth_noise_2d(rng, bw, bh, 6.0 * s.max(0.5), 4.0 * s.max(0.5));

        // Halo outside the border.
        if self.halo_db > 0.0 {
            let decay = 2.5 * s.max(0.4);
            for (i, d) in fp.outer.data.iter().enumerate() {
                if d.is_finite() {
                    db.data[i] += self.halo_db * (-d / decay).exp();
                }
            }
        }

        // Interior.
        for z in z0..=z1 {
            for x in x0..=x1 {
                let i = z * w + x;
                if !fp.mask[i] {
                    continue;
                }
                let t = 0.4 + 0.6 * smoothstep(fp.inner.data[i] / self.soft_px.max(0.3));
                // Hypoechoic means darker than the tissue it sits in, fat included.
                let inside = (self.level_db + self.texture_db * texture.at(x - x0, z - z0))
                    .min(db.data[i] - MIN_CONTRAST_DB);
                db.data[i] += t * (inside - db.data[i]);
            }
        }

        // Microcalcifications: isolated bright specks well inside.
        let deep: Vec<usize> = (0..w * h)
            .filter(|&i| fp.mask[i] && fp.inner.data[i] > 2.5 * s.max(0.5))
            .collect();
        if !deep.is_empty() {
            for _ in 0..self.calcifications {
                let i = deep[rng.random_range(0..deep.len())];
                db.data[i] = rng_range(rng, 6.0, 12.0);
            }
        }

        self.posterior(rng, db, fp, s);
        if self.edge_shadow_db < 0.0 {
            self.edge_shadows(db, fp, s);
        }
    }

    /// Posterior shadowing / enhancement from the path length through the lesion: at row z,
    /// `P·f(z)·smoothstep(L/L_ref)·(1 + 0.3·n(x))` (n: streaks, shadows only), fading below
    /// the lesion as f = e^(−Δz/0.7H) and blurred laterally with σ = 2s + 0.08·Δz (the
    /// shadow widens and softens with depth); a quarter of it shows inside the lesion.
    fn posterior(&self, rng: &mut impl Rng, db: &mut Grid, fp: &Footprint, s: f32) {
        if self.posterior_db == 0.0 {
            return;
        }
        let (w, h) = (db.width, db.height);
        let (x0, x1, z0, z1) = fp.bbox;
        let sigma0 = (2.0 * s).max(0.8);
        let sigma_max = sigma0 + 0.08 * (h - z1) as f32;
        let r = (3.0 * sigma_max).ceil() as usize;
        let (lx0, lx1) = (x0.saturating_sub(r), (x1 + r).min(w - 1));
        let cols = lx1 - lx0 + 1;
        let thickness: Vec<f32> = (lx0..=lx1)
            .map(|x| (z0..h).filter(|&z| fp.mask[z * w + x]).count() as f32)
            .collect();
        let l_ref = 0.6 * thickness.iter().copied().fold(0.0, f32::max);
        if l_ref <= 0.0 {
            return;
        }
        let streaks = smooth_noise_1d(rng, cols, 3.0 * s.max(0.5));
        let streak_amp = if self.posterior_db < 0.0 { 0.3 } else { 0.0 };
        let mut path = vec![0.0f32; cols];
        let mut effect = vec![0.0f32; cols];
        for z in z0..h {
            let below = z.saturating_sub(z1) as f32;
            let fade = (-below / (0.7 * h as f32)).exp();
            for (c, p) in path.iter_mut().enumerate() {
                let inside = fp.mask[z * w + lx0 + c];
                if inside {
                    *p += 1.0;
                }
                let share = if inside { 0.25 } else { 1.0 };
                let streak = (1.0 + streak_amp * streaks[c]).max(0.0);
                effect[c] = share * fade * streak * self.posterior_db * smoothstep(*p / l_ref);
            }
            let sigma = sigma0 + 0.08 * below;
            let kr = (3.0 * sigma).ceil() as i64;
            let kernel: Vec<f32> = (-kr..=kr)
                .map(|i| (-((i * i) as f32) / (2.0 * sigma * sigma)).exp())
                .collect();
            for c in 0..cols {
                let (mut acc, mut norm) = (0.0, 0.0);
                for (k, kv) in kernel.iter().enumerate() {
                    let j = c as i64 + k as i64 - kr;
                    norm += kv;
                    if (0..cols as i64).contains(&j) {
                        acc += kv * effect[j as usize];
                    }
                }
                db.data[z * w + lx0 + c] += acc / norm;
            }
        }
    }

    /// Thin shadows below the leftmost and rightmost points of the outline.
    fn edge_shadows(&self, db: &mut Grid, fp: &Footprint, s: f32) {
        let (w, h) = (db.width, db.height);
        let (x0, x1, z0, z1) = fp.bbox;
        let sigma = (1.2 * s).max(0.6);
        let ramp = (4.0 * s).max(1.0);
        for xe in [x0, x1] {
            let rows: Vec<usize> = (z0..=z1).filter(|&z| fp.mask[z * w + xe]).collect();
            let ze = rows.iter().sum::<usize>() as f32 / rows.len().max(1) as f32;
            let xc = xe as f32 + 0.5;
            let r = (3.0 * sigma).ceil() as usize;
            for x in xe.saturating_sub(r)..=(xe + r).min(w - 1) {
                let g = (-((x as f32 + 0.5 - xc).powi(2)) / (2.0 * sigma * sigma)).exp();
                for z in (ze as usize)..h {
                    let t = smoothstep((z as f32 - ze) / ramp);
                    db.data[z * w + x] += self.edge_shadow_db * g * t;
                }
            }
        }
    }
}

/// A uniform phase in [0, 2π).
fn phase(rng: &mut impl Rng) -> f32 {
    rng.random::<f32>() * TAU
}

/// Draw the radial function `r(θ)` (≥ 0.4) for `kind`.
fn radial_profile(rng: &mut impl Rng, kind: LesionKind) -> Vec<f32> {
    let mut harmonics: Vec<(f32, f32, f32)> = Vec::new(); // (k, amplitude, phase)
    let mut spikes: Vec<(f32, f32, f32)> = Vec::new(); // (centre, length, half-width)
    match kind {
        LesionKind::Cyst => {
            for k in 2..=3 {
                harmonics.push((k as f32, rng_range(rng, 0.0, 0.03), phase(rng)));
            }
        }
        LesionKind::Fibroadenoma => {
            let lobulated = rng.random_bool(0.5);
            let dominant = rng.random_range(3..6);
            for k in 2..=6 {
                let amp = if lobulated && k == dominant {
                    rng_range(rng, 0.06, 0.12)
                } else {
                    rng_range(rng, 0.0, 0.035) / (k as f32 - 1.0).sqrt()
                };
                harmonics.push((k as f32, amp, phase(rng)));
            }
        }
        LesionKind::Carcinoma => {
            for k in 2..=14 {
                let amp = rng_range(rng, 0.02, 0.12) / (k as f32).powf(0.7);
                harmonics.push((k as f32, amp, phase(rng)));
            }
            if rng.random_bool(0.7) {
                for _ in 0..rng.random_range(4..11) {
                    spikes.push((
                        rng.random::<f32>() * TAU,
                        rng_range(rng, 0.12, 0.4),
                        rng_range(rng, 0.07, 0.14),
                    ));
                }
            } else {
                // angular / microlobulated margin
                for k in 15..=24 {
                    harmonics.push((k as f32, rng_range(rng, 0.01, 0.03), phase(rng)));
                }
            }
        }
    }
    (0..N_ANGLES)
        .map(|i| {
            let th = i as f32 / N_ANGLES as f32 * TAU;
            let mut r = 1.0;
            for &(k, c, p) in &harmonics {
                r += c * (k * th + p).cos();
            }
            for &(c, len, half) in &spikes {
                let d = (th - c + PI).rem_euclid(TAU) - PI;
                r += len * (1.0 - d.abs() / half).max(0.0).powf(1.2);
            }
            r.max(0.4)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn draw(seed: u64, class: PhantomClass, w: usize, h: usize) -> (Lesion, Footprint) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let layers = Layers::sample(&mut rng, w, h);
        let l = Lesion::sample(&mut rng, class, &layers, w, h);
        let fp = l.footprint(w, h, 4.0);
        (l, fp)
    }

    #[test]
    fn lesion_is_inside_and_sized() {
        for seed in 0..40 {
            for class in [PhantomClass::Benign, PhantomClass::Malignant] {
                let (w, h) = (128, 112);
                let (_, fp) = draw(seed, class, w, h);
                let (x0, x1, z0, z1) = fp.bbox;
                assert!(
                    x0 > 0 && z0 > 0 && x1 < w - 1 && z1 < h - 1,
                    "{seed}: {:?}",
                    fp.bbox
                );
                let r_eq = (fp.area() as f32 / PI).sqrt() / 112.0;
                assert!(
                    (0.05..0.27).contains(&r_eq),
                    "{seed} {class:?}: r_eq {r_eq}"
                );
            }
        }
    }

    #[test]
    fn benign_is_wider_malignant_taller() {
        let (mut wide, mut tall) = (0, 0);
        for seed in 0..30 {
            let (_, fp) = draw(seed, PhantomClass::Benign, 200, 200);
            let (x0, x1, z0, z1) = fp.bbox;
            wide += usize::from(x1 - x0 > z1 - z0);
            let (_, fp) = draw(seed, PhantomClass::Malignant, 200, 200);
            let (x0, x1, z0, z1) = fp.bbox;
            tall += usize::from(z1 - z0 > x1 - x0);
        }
        assert!(wide >= 27 && tall >= 20, "wide {wide}/30, tall {tall}/30");
    }

    #[test]
    fn malignant_border_is_more_irregular() {
        // isoperimetric-like ratio: boundary pixels / sqrt(area)
        let roughness = |fp: &Footprint, w: usize| {
            let edge = (0..fp.mask.len())
                .filter(|&i| {
                    fp.mask[i]
                        && (!fp.mask[i - 1]
                            || !fp.mask[i + 1]
                            || !fp.mask[i - w]
                            || !fp.mask[i + w])
                })
                .count();
            edge as f32 / (fp.area() as f32).sqrt()
        };
        let (mut b, mut m) = (0.0, 0.0);
        for seed in 0..20 {
            b += roughness(&draw(seed, PhantomClass::Benign, 200, 200).1, 200);
            m += roughness(&draw(seed, PhantomClass::Malignant, 200, 200).1, 200);
        }
        assert!(m > 1.1 * b, "malignant {m} vs benign {b}");
    }

    #[test]
    fn interior_is_darkened_and_shadow_falls_below() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (w, h) = (96, 96);
        let layers = Layers::sample(&mut rng, w, h);
        let mut l = Lesion::sample(&mut rng, PhantomClass::Malignant, &layers, w, h);
        l.posterior_db = -10.0;
        l.halo_db = 0.0;
        l.calcifications = 0;
        let fp = l.footprint(w, h, 4.0);
        let mut db = Grid::filled(w, h, 0.0);
        l.apply(&mut rng, &mut db, &fp);
        let (x0, x1, _, z1) = fp.bbox;
        for (i, &m) in fp.mask.iter().enumerate() {
            if m {
                assert!(db.data[i] < -5.0, "inside {}", db.data[i]);
            }
        }
        let xc = (x0 + x1) / 2;
        if z1 + 2 < h {
            assert!(db.at(xc, z1 + 2) < -5.0, "below {}", db.at(xc, z1 + 2));
        }
        assert_eq!(db.at(0, 0), 0.0);
    }

    #[test]
    fn lesion_in_fat_stays_darker_than_fat() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let (w, h) = (96, 96);
        let layers = Layers::sample(&mut rng, w, h);
        let mut l = Lesion::sample(&mut rng, PhantomClass::Benign, &layers, w, h);
        (l.level_db, l.texture_db, l.posterior_db, l.edge_shadow_db) = (-10.0, 0.0, 0.0, 0.0);
        let fp = l.footprint(w, h, 4.0);
        let mut db = Grid::filled(w, h, -12.0);
        l.apply(&mut rng, &mut db, &fp);
        for (i, &m) in fp.mask.iter().enumerate() {
            if m && fp.inner.data[i] > l.soft_px {
                assert!(
                    db.data[i] <= -12.0 - MIN_CONTRAST_DB + 1e-4,
                    "{}",
                    db.data[i]
                );
            }
        }
    }
}
