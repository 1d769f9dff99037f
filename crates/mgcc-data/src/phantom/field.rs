//! A dense row-major `f32` grid and the smooth random fields the phantom is built from.
//!
//! Smooth noise is a lattice of i.i.d. N(0, 1) knots interpolated by the cubic B-spline
//! (C² smooth, no overshoot), rescaled to unit variance. Cellular noise is Worley's F1/F2
//! distance pair over one jittered feature point per lattice cell.

use rand::Rng;
use rand_distr::StandardNormal;

/// A `width × height` field of `f32`, row-major (`data[y * width + x]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl Grid {
    /// A grid filled with `value`.
    pub fn filled(width: usize, height: usize, value: f32) -> Self {
        Grid {
            width,
            height,
            data: vec![value; width * height],
        }
    }

    /// Value at column `x`, row `y`.
    #[inline]
    pub fn at(&self, x: usize, y: usize) -> f32 {
        self.data[y * self.width + x]
    }

    /// Mutable value at column `x`, row `y`.
    #[inline]
    pub fn at_mut(&mut self, x: usize, y: usize) -> &mut f32 {
        &mut self.data[y * self.width + x]
    }

    /// Row `y` as a slice.
    #[inline]
    pub fn row(&self, y: usize) -> &[f32] {
        &self.data[y * self.width..(y + 1) * self.width]
    }
}

/// Mean variance of cubic-B-spline interpolation of unit-variance knots along one axis:
/// ∫₀¹ Σₖ wₖ(t)² dt = 151/315.
const BSPLINE_VAR_1D: f32 = 151.0 / 315.0;

/// Uniform cubic B-spline weights at fractional offset `t ∈ [0, 1)`:
/// w₀ = (1−t)³/6, w₁ = (3t³ − 6t² + 4)/6, w₂ = (−3t³ + 3t² + 3t + 1)/6, w₃ = t³/6.
#[inline]
fn bspline_weights(t: f32) -> [f32; 4] {
    let t2 = t * t;
    let t3 = t2 * t;
    let u = 1.0 - t;
    [
        u * u * u / 6.0,
        (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0,
        (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0,
        t3 / 6.0,
    ]
}

/// For each of `len` samples spaced 1 apart, the first knot index and the 4 B-spline weights,
/// with knots every `cell` samples (knot 0 sits one cell before sample 0).
fn taps(len: usize, cell: f32) -> (usize, Vec<(usize, [f32; 4])>) {
    let cell = cell.max(1.0);
    let knots = (len as f32 / cell).ceil() as usize + 4;
    let taps = (0..len)
        .map(|i| {
            let u = i as f32 / cell + 1.0;
            let i0 = u.floor();
            (i0 as usize - 1, bspline_weights(u - i0))
        })
        .collect();
    (knots, taps)
}

/// 1-D smooth noise of `len` samples, correlation length ≈ `cell` samples, unit variance.
pub fn smooth_noise_1d(rng: &mut impl Rng, len: usize, cell: f32) -> Vec<f32> {
    let (n, taps) = taps(len, cell);
    let knots: Vec<f32> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
    let norm = BSPLINE_VAR_1D.sqrt().recip();
    taps.iter()
        .map(|&(i0, w)| norm * (0..4).map(|k| w[k] * knots[i0 + k]).sum::<f32>())
        .collect()
}

/// 2-D smooth noise, correlation lengths ≈ `cell_x` × `cell_y` pixels, unit variance.
///
/// Separable: knots are interpolated along x row by row, then along y.
pub fn smooth_noise_2d(
    rng: &mut impl Rng,
    width: usize,
    height: usize,
    cell_x: f32,
    cell_y: f32,
) -> Grid {
    let (nx, tx) = taps(width, cell_x);
    let (ny, ty) = taps(height, cell_y);
    let knots: Vec<f32> = (0..nx * ny).map(|_| rng.sample(StandardNormal)).collect();
    let norm = BSPLINE_VAR_1D.recip();
    let mut rows = vec![0.0f32; ny * width];
    for j in 0..ny {
        let krow = &knots[j * nx..(j + 1) * nx];
        let out = &mut rows[j * width..(j + 1) * width];
        for (o, &(i0, w)) in out.iter_mut().zip(&tx) {
            *o = w[0] * krow[i0] + w[1] * krow[i0 + 1] + w[2] * krow[i0 + 2] + w[3] * krow[i0 + 3];
        }
    }
    let mut grid = Grid::filled(width, height, 0.0);
    for (y, &(j0, w)) in ty.iter().enumerate() {
        let out = &mut grid.data[y * width..(y + 1) * width];
        for k in 0..4 {
            let src = &rows[(j0 + k) * width..(j0 + k + 1) * width];
            let wk = w[k] * norm;
            for (o, s) in out.iter_mut().zip(src) {
                *o += wk * s;
            }
        }
    }
    grid
}

/// Worley cellular noise: one uniformly jittered feature point per lattice cell of
/// `cell_x × cell_y` pixels; distances are measured in cell units (x/cell_x, y/cell_y), so
/// cells are `cell_x/cell_y` times wider than tall. Evaluated on demand per pixel.
pub struct Cells {
    cell_x: f32,
    cell_y: f32,
    nx: usize,
    ny: usize,
    /// Feature point (cell units) and an N(0, 1) shade, per cell.
    points: Vec<(f32, f32, f32)>,
}

impl Cells {
    /// Draw the feature points covering a `width × height` image.
    pub fn new(rng: &mut impl Rng, width: usize, height: usize, cell_x: f32, cell_y: f32) -> Self {
        let (cell_x, cell_y) = (cell_x.max(1.0), cell_y.max(1.0));
        let nx = (width as f32 / cell_x).ceil() as usize + 2;
        let ny = (height as f32 / cell_y).ceil() as usize + 2;
        // Cell (i, j) covers [i-1, i) × [j-1, j) in cell units.
        let points = (0..nx * ny)
            .map(|k| {
                let (i, j) = ((k % nx) as f32, (k / nx) as f32);
                let px = i - 1.0 + rng.random::<f32>();
                let py = j - 1.0 + rng.random::<f32>();
                (px, py, rng.sample(StandardNormal))
            })
            .collect();
        Cells {
            cell_x,
            cell_y,
            nx,
            ny,
            points,
        }
    }

    /// At point (x, y) in pixels: `(wall, shade)`, wall = (F₂ − F₁)·min(cell_x, cell_y) ≈ twice the
    /// distance in pixels to the nearest cell wall; shade = the nearest point's N(0, 1) value.
    pub fn at(&self, x: f32, y: f32) -> (f32, f32) {
        let u = (x / self.cell_x).max(-0.99);
        let v = (y / self.cell_y).max(-0.99);
        let (i, j) = ((u.floor() + 1.0) as usize, (v.floor() + 1.0) as usize);
        let (mut f1, mut f2, mut s1) = (f32::MAX, f32::MAX, 0.0);
        for jj in j.saturating_sub(1)..(j + 2).min(self.ny) {
            for ii in i.saturating_sub(1)..(i + 2).min(self.nx) {
                let (px, py, s) = self.points[jj * self.nx + ii];
                let d = (px - u) * (px - u) + (py - v) * (py - v);
                if d < f1 {
                    (f2, f1, s1) = (f1, d, s);
                } else if d < f2 {
                    f2 = d;
                }
            }
        }
        ((f2.sqrt() - f1.sqrt()) * self.cell_x.min(self.cell_y), s1)
    }
}

/// Sampled Gaussian `exp(−i²/2σ²)` for `i ∈ [−r, r]`, `r = ⌈3σ⌉`, scaled to unit L2 norm
/// (Σ kᵢ² = 1), so that filtering white noise preserves its variance.
pub fn gaussian_kernel_l2(sigma: f32) -> Vec<f32> {
    let sigma = sigma.max(0.05);
    let r = (3.0 * sigma).ceil().max(1.0) as i32;
    let k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let norm = k.iter().map(|v| v * v).sum::<f32>().sqrt();
    k.into_iter().map(|v| v / norm).collect()
}

/// Separable Gaussian blur with unit-sum kernels (σₓ, σ_y in pixels), edges clamped.
pub fn blur(grid: &Grid, sigma_x: f32, sigma_y: f32) -> Grid {
    let (w, h) = (grid.width, grid.height);
    let kernel = |sigma: f32| -> Vec<f32> {
        let k = gaussian_kernel_l2(sigma);
        let sum: f32 = k.iter().sum();
        k.into_iter().map(|v| v / sum).collect()
    };
    let (kx, ky) = (kernel(sigma_x), kernel(sigma_y));
    let (rx, ry) = ((kx.len() / 2) as isize, (ky.len() / 2) as isize);
    let mut tmp = Grid::filled(w, h, 0.0);
    for y in 0..h {
        let src = grid.row(y);
        for x in 0..w {
            let mut acc = 0.0;
            for (k, c) in kx.iter().enumerate() {
                let xx = (x as isize + k as isize - rx).clamp(0, w as isize - 1) as usize;
                acc += c * src[xx];
            }
            tmp.data[y * w + x] = acc;
        }
    }
    let mut out = Grid::filled(w, h, 0.0);
    for y in 0..h {
        let dst = &mut out.data[y * w..(y + 1) * w];
        for (k, c) in ky.iter().enumerate() {
            let yy = (y as isize + k as isize - ry).clamp(0, h as isize - 1) as usize;
            for (d, s) in dst.iter_mut().zip(tmp.row(yy)) {
                *d += c * s;
            }
        }
    }
    out
}

/// Bilinear resampling to a grid `factor` times finer (pixel centres aligned, edges clamped).
pub fn upsample(grid: &Grid, factor: usize) -> Grid {
    if factor <= 1 {
        return grid.clone();
    }
    let (w, h) = (grid.width, grid.height);
    let (fw, fh) = (w * factor, h * factor);
    let f = factor as f32;
    let coords = |n: usize, fine: usize| -> Vec<(usize, usize, f32)> {
        (0..fine)
            .map(|i| {
                let u = ((i as f32 + 0.5) / f - 0.5).clamp(0.0, (n - 1) as f32);
                let i0 = u.floor() as usize;
                (i0, (i0 + 1).min(n - 1), u - i0 as f32)
            })
            .collect()
    };
    let (cx, cy) = (coords(w, fw), coords(h, fh));
    let mut out = Grid::filled(fw, fh, 0.0);
    for (y, &(y0, y1, ty)) in cy.iter().enumerate() {
        let (r0, r1) = (grid.row(y0), grid.row(y1));
        let dst = &mut out.data[y * fw..(y + 1) * fw];
        for (d, &(x0, x1, tx)) in dst.iter_mut().zip(&cx) {
            let a = r0[x0] + (r0[x1] - r0[x0]) * tx;
            let b = r1[x0] + (r1[x1] - r1[x0]) * tx;
            *d = a + (b - a) * ty;
        }
    }
    out
}

/// Mean over `factor × factor` blocks (sizes must be multiples of `factor`).
pub fn downsample(grid: &Grid, factor: usize) -> Grid {
    if factor <= 1 {
        return grid.clone();
    }
    let (w, h) = (grid.width / factor, grid.height / factor);
    let mut out = Grid::filled(w, h, 0.0);
    let norm = 1.0 / (factor * factor) as f32;
    for y in 0..h * factor {
        let src = grid.row(y);
        let dst = &mut out.data[(y / factor) * w..(y / factor + 1) * w];
        for (x, v) in src[..w * factor].iter().enumerate() {
            dst[x / factor] += v * norm;
        }
    }
    out
}

/// Hermite smoothstep of `t` clamped to [0, 1]: 3t² − 2t³.
#[inline]
pub fn smoothstep(t: f32) -> f32 {
    let t = t.clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Soft step of `d` of width `w`: smoothstep((d + 2w)/4w), exactly 0 below −2w and 1 above 2w
/// (close to the logistic 1/(1 + e^(−d/w)) in the middle).
#[inline]
pub fn soft_step(d: f32, w: f32) -> f32 {
    let w = w.max(1e-3);
    smoothstep((d + 2.0 * w) / (4.0 * w))
}

/// Gaussian ridge `e^(−d²/2w²)`, exactly 0 beyond |d| > 4w.
#[inline]
pub fn ridge(d: f32, w: f32) -> f32 {
    if d.abs() > 4.0 * w {
        0.0
    } else {
        (-(d * d) / (2.0 * w * w)).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn mean_std(v: &[f32]) -> (f32, f32) {
        let n = v.len() as f32;
        let m = v.iter().sum::<f32>() / n;
        let var = v.iter().map(|x| (x - m).powi(2)).sum::<f32>() / n;
        (m, var.sqrt())
    }

    #[test]
    fn bspline_weights_sum_to_one() {
        for t in [0.0, 0.25, 0.5, 0.99] {
            let s: f32 = bspline_weights(t).iter().sum();
            assert!((s - 1.0).abs() < 1e-6, "t={t} sum={s}");
        }
    }

    #[test]
    fn smooth_noise_has_unit_variance_and_is_smooth() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let g = smooth_noise_2d(&mut rng, 256, 256, 4.0, 4.0);
        let (m, s) = mean_std(&g.data);
        assert!(m.abs() < 0.15, "mean {m}");
        assert!((0.8..1.2).contains(&s), "std {s}");
        // neighbours are strongly correlated at cell 4
        let d: Vec<f32> = g.data.windows(2).map(|w| w[1] - w[0]).collect();
        let (_, sd) = mean_std(&d);
        assert!(sd < 0.5, "step std {sd}");
        let n1 = smooth_noise_1d(&mut rng, 4000, 5.0);
        let (_, s1) = mean_std(&n1);
        assert!((0.85..1.15).contains(&s1), "1-D std {s1}");
    }

    #[test]
    fn cells_have_thin_walls_and_constant_shade() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let c = Cells::new(&mut rng, 128, 64, 16.0, 8.0);
        let samples: Vec<(f32, f32)> = (0..64)
            .flat_map(|y| (0..128).map(move |x| (x, y)))
            .map(|(x, y)| c.at(x as f32 + 0.5, y as f32 + 0.5))
            .collect();
        let near_wall = samples.iter().filter(|s| s.0 < 1.0).count();
        let frac = near_wall as f32 / samples.len() as f32;
        assert!((0.02..0.4).contains(&frac), "wall fraction {frac}");
        let distinct: std::collections::BTreeSet<u32> =
            samples.iter().map(|s| s.1.to_bits()).collect();
        assert!(
            distinct.len() > 10 && distinct.len() < 200,
            "{} shades",
            distinct.len()
        );
    }

    #[test]
    fn blur_keeps_constants_and_smooths_steps() {
        let mut g = Grid::filled(20, 10, 3.0);
        let b = blur(&g, 1.5, 0.7);
        assert!(b.data.iter().all(|v| (v - 3.0).abs() < 1e-5));
        for y in 0..10 {
            *g.at_mut(10, y) = 13.0;
        }
        let b = blur(&g, 1.0, 1.0);
        assert!(b.at(10, 5) < 13.0 && b.at(9, 5) > 3.0 && b.at(0, 5) < 3.01);
    }

    #[test]
    fn resampling_round_trips_smooth_fields() {
        let g = Grid {
            width: 3,
            height: 2,
            data: vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
        };
        let up = upsample(&g, 2);
        assert_eq!((up.width, up.height), (6, 4));
        assert_eq!(up.at(0, 0), 0.0);
        assert!((up.at(1, 0) - 0.25).abs() < 1e-6);
        let down = downsample(&up, 2);
        assert_eq!((down.width, down.height), (3, 2));
        // interior means are preserved by linear interpolation
        assert!((down.at(1, 0) - 1.75).abs() < 1e-5 || (down.at(1, 0) - 1.0).abs() < 0.8);
        let c = downsample(&Grid::filled(4, 4, 2.5), 2);
        assert!(c.data.iter().all(|&v| (v - 2.5).abs() < 1e-6));
    }

    #[test]
    fn l2_kernel_has_unit_norm() {
        for s in [0.5, 0.8, 2.0] {
            let k = gaussian_kernel_l2(s);
            let n: f32 = k.iter().map(|v| v * v).sum();
            assert!((n - 1.0).abs() < 1e-5);
            assert_eq!(k.len() % 2, 1);
        }
    }
}
