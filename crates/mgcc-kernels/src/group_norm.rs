//! Fused group normalisation (affine) with an optional SiLU, on NCHW f32 slices.
//!
//! The `C` channels are split into `G` groups of `C/G` consecutive channels. Per sample `b` and
//! group `g`, over its `n = (C/G)·H·W` values: `μ = Σx/n`, `σ² = Σ(x − μ)²/n` (biased),
//! `r = 1/√(σ² + ε)`, `x̂ = (x − μ)·r`, `a = γ_c·x̂ + β_c`, and `y = a·σ(a)` (SiLU) or `y = a`.
//!
//! Backward, with `g = dy·σ(a)·(1 + a·(1 − σ(a)))` (SiLU) or `g = dy`, per channel
//! `dβ_c = Σ_{b,h,w} g`, `dγ_c = Σ_{b,h,w} g·x̂`, and per group, with `d = γ_c·g`:
//! `dx = r·(d − Σd/n − x̂·Σ(d·x̂)/n)`.
//!
//! One task per (sample, group): a group's values are contiguous, so each task reads them once
//! for the statistics and once for the output (forward), or once for the sums and once for `dx`
//! (backward, `g` parked in the `dx` buffer between the two). Sums run in 16 f32 lanes per
//! channel plane, combined in f64 in a fixed order, so results do not depend on scheduling.
//! The elementwise loops, including the exponential, are branch-free arithmetic that the
//! compiler vectorises ([`crate::vector_math`]).

use rayon::prelude::*;

use crate::norm::lane_sum;
use crate::simd::Level;
use crate::sync_ptr::SyncPtr;
use crate::vector_math::{per_level, sigmoid};

/// Shape of an NCHW tensor seen as `batch × groups × (channels/groups) × plane`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Groups {
    pub batch: usize,
    pub channels: usize,
    pub groups: usize,
    pub plane: usize,
}

impl Groups {
    /// Channels per group.
    pub fn per_group(&self) -> usize {
        self.channels / self.groups
    }

    /// Values per group.
    fn count(&self) -> usize {
        self.per_group() * self.plane
    }

    /// Values of the whole tensor.
    pub fn len(&self) -> usize {
        self.batch * self.channels * self.plane
    }

    /// Whether the tensor holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `y = silu?(x·s + t)` over one channel plane.
#[inline(always)]
fn affine_act_body(xs: &[f32], ys: &mut [f32], s: f32, t: f32, silu: bool) {
    if silu {
        for (y, &x) in ys.iter_mut().zip(xs) {
            let a = x * s + t;
            *y = a * sigmoid(a);
        }
    } else {
        for (y, &x) in ys.iter_mut().zip(xs) {
            *y = x * s + t;
        }
    }
}

per_level! {
    /// `y = silu?(x·s + t)` over one channel plane, vectorised for `level`.
    fn affine_act(xs: &[f32], ys: &mut [f32], s: f32, t: f32, silu: bool) = affine_act_body;
}

/// Over one channel plane: `g = dy·silu'(a)` (or `dy`) with `x̂ = (x − μ)·r`, `a = γ·x̂ + β`,
/// written to `gs`; returns `(Σg, Σg·x̂)` through `sums`.
#[inline(always)]
fn grad_plane_body(
    xs: &[f32],
    dys: &[f32],
    gs: &mut [f32],
    [mu, r, gamma, beta]: [f32; 4],
    silu: bool,
    sums: &mut [f64; 2],
) {
    let mut s0 = [0.0f32; 16];
    let mut s1 = [0.0f32; 16];
    let n = xs.len();
    let full = n / 16 * 16;
    let step = |x: f32, dy: f32| {
        let xh = (x - mu) * r;
        let g = if silu {
            let a = gamma * xh + beta;
            let sg = sigmoid(a);
            dy * (sg * (1.0 + a * (1.0 - sg)))
        } else {
            dy
        };
        (g, xh)
    };
    for ((x16, dy16), g16) in xs[..full]
        .chunks_exact(16)
        .zip(dys[..full].chunks_exact(16))
        .zip(gs[..full].chunks_exact_mut(16))
    {
        for l in 0..16 {
            let (g, xh) = step(x16[l], dy16[l]);
            g16[l] = g;
            s0[l] += g;
            s1[l] += g * xh;
        }
    }
    for (l, ((&x, &dy), g)) in xs[full..]
        .iter()
        .zip(&dys[full..])
        .zip(&mut gs[full..])
        .enumerate()
    {
        let (gv, xh) = step(x, dy);
        *g = gv;
        s0[l] += gv;
        s1[l] += gv * xh;
    }
    let total = |a: [f32; 16]| a.iter().map(|v| *v as f64).sum::<f64>();
    *sums = [total(s0), total(s1)];
}

per_level! {
    /// [`grad_plane_body`] vectorised for `level`.
    fn grad_plane(
        xs: &[f32],
        dys: &[f32],
        gs: &mut [f32],
        consts: [f32; 4],
        silu: bool,
        sums: &mut [f64; 2]
    ) = grad_plane_body;
}

/// Over one channel plane: `dx = r·(γ·g − m₁ − x̂·m₂)` with `x̂ = (x − μ)·r`, `g` read from and
/// `dx` written to `gs`.
#[inline(always)]
fn input_grad_body(xs: &[f32], gs: &mut [f32], [mu, r, gamma, m1, m2]: [f32; 5]) {
    for (g, &x) in gs.iter_mut().zip(xs) {
        let xh = (x - mu) * r;
        *g = r * (gamma * *g - m1 - xh * m2);
    }
}

per_level! {
    /// [`input_grad_body`] vectorised for `level`.
    fn input_grad(xs: &[f32], gs: &mut [f32], consts: [f32; 5]) = input_grad_body;
}

/// Forward pass at the process's SIMD level ([`forward_at`]).
pub fn forward(
    p: Groups,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f64,
    silu: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    forward_at(crate::simd::level(), p, x, gamma, beta, eps, silu)
}

/// Forward pass: `(y, mean, rstd)` with `mean` and `rstd = 1/√(σ² + ε)` per (sample, group),
/// in `[B·G]` order, with the elementwise loops compiled for `level` (which the CPU must run).
pub fn forward_at(
    level: Level,
    p: Groups,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f64,
    silu: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), p.len());
    assert!(gamma.len() == p.channels && beta.len() == p.channels);
    assert!(p.groups > 0 && p.channels.is_multiple_of(p.groups));
    let (cg, hw, n) = (p.per_group(), p.plane, p.count());
    let mut y: Vec<f32> = Vec::with_capacity(x.len());
    let yp = SyncPtr(y.as_mut_ptr());
    let (mean, rstd): (Vec<f32>, Vec<f32>) = (0..p.batch * p.groups)
        .into_par_iter()
        .map(|bg| {
            let xs = &x[bg * n..(bg + 1) * n];
            let mu = lane_sum(xs, |v| v) / n as f64;
            let m = mu as f32;
            let var = lane_sum(xs, |v| {
                let d = v - m;
                d * d
            }) / n as f64;
            let r = 1.0 / (var + eps).sqrt();
            // SAFETY: each (sample, group) task writes only its own `n` values of `y`, which
            // has capacity for all of them.
            let ys = unsafe { std::slice::from_raw_parts_mut(yp.get().add(bg * n), n) };
            let g0 = (bg % p.groups) * cg;
            for k in 0..cg {
                let c = g0 + k;
                let s = (gamma[c] as f64 * r) as f32;
                let t = (beta[c] as f64 - mu * gamma[c] as f64 * r) as f32;
                let plane = k * hw..(k + 1) * hw;
                affine_act(level, &xs[plane.clone()], &mut ys[plane], s, t, silu);
            }
            (m, r as f32)
        })
        .unzip();
    // SAFETY: the tasks above wrote all `x.len()` values.
    unsafe { y.set_len(x.len()) };
    (y, mean, rstd)
}

/// Backward pass at the process's SIMD level ([`backward_at`]).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    p: Groups,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    rstd: &[f32],
    dy: &[f32],
    silu: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    backward_at(
        crate::simd::level(),
        p,
        x,
        gamma,
        beta,
        mean,
        rstd,
        dy,
        silu,
    )
}

/// Backward pass from the forward's input, parameters and statistics: `(dx, dγ, dβ)`, with the
/// elementwise loops compiled for `level` (which the CPU must run).
#[allow(clippy::too_many_arguments)]
pub fn backward_at(
    level: Level,
    p: Groups,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    rstd: &[f32],
    dy: &[f32],
    silu: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert!(x.len() == p.len() && dy.len() == p.len());
    assert!(gamma.len() == p.channels && beta.len() == p.channels);
    assert!(mean.len() == p.batch * p.groups && rstd.len() == mean.len());
    let (cg, hw, n) = (p.per_group(), p.plane, p.count());
    let mut dx: Vec<f32> = vec![0.0; x.len()];
    // Per (sample, channel): Σg and Σg·x̂.
    let sums: Vec<[f64; 2]> = dx
        .par_chunks_mut(n.max(1))
        .enumerate()
        .flat_map_iter(|(bg, gs)| {
            let xs = &x[bg * n..(bg + 1) * n];
            let dys = &dy[bg * n..(bg + 1) * n];
            let (mu, r) = (mean[bg], rstd[bg]);
            let g0 = (bg % p.groups) * cg;
            let mut plane_sums = vec![[0.0f64; 2]; cg];
            for (k, s) in plane_sums.iter_mut().enumerate() {
                let c = g0 + k;
                let plane = k * hw..(k + 1) * hw;
                grad_plane(
                    level,
                    &xs[plane.clone()],
                    &dys[plane.clone()],
                    &mut gs[plane],
                    [mu, r, gamma[c], beta[c]],
                    silu,
                    s,
                );
            }
            let (mut d0, mut d1) = (0.0f64, 0.0f64);
            for (k, s) in plane_sums.iter().enumerate() {
                d0 += gamma[g0 + k] as f64 * s[0];
                d1 += gamma[g0 + k] as f64 * s[1];
            }
            let (m1, m2) = ((d0 / n as f64) as f32, (d1 / n as f64) as f32);
            for k in 0..cg {
                let plane = k * hw..(k + 1) * hw;
                input_grad(
                    level,
                    &xs[plane.clone()],
                    &mut gs[plane],
                    [mu, r, gamma[g0 + k], m1, m2],
                );
            }
            plane_sums
        })
        .collect();
    let (mut dgamma, mut dbeta) = (vec![0.0f32; p.channels], vec![0.0f32; p.channels]);
    for c in 0..p.channels {
        let (mut sg, mut sgx) = (0.0f64, 0.0f64);
        for b in 0..p.batch {
            let [s0, s1] = sums[b * p.channels + c];
            sg += s0;
            sgx += s1;
        }
        dbeta[c] = sg as f32;
        dgamma[c] = sgx as f32;
    }
    (dx, dgamma, dbeta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_data::data;

    /// Straightforward f64 reference of the forward pass.
    fn reference(p: Groups, x: &[f32], gamma: &[f32], beta: &[f32], silu: bool) -> Vec<f64> {
        let (cg, hw, n) = (p.per_group(), p.plane, p.count());
        let mut y = vec![0.0f64; x.len()];
        for bg in 0..p.batch * p.groups {
            let xs = &x[bg * n..(bg + 1) * n];
            let mu = xs.iter().map(|v| *v as f64).sum::<f64>() / n as f64;
            let var = xs.iter().map(|v| (*v as f64 - mu).powi(2)).sum::<f64>() / n as f64;
            for i in 0..n {
                let c = (bg % p.groups) * cg + i / hw;
                let a =
                    gamma[c] as f64 * (xs[i] as f64 - mu) / (var + 1e-5).sqrt() + beta[c] as f64;
                y[bg * n + i] = if silu { a / (1.0 + (-a).exp()) } else { a };
            }
        }
        y
    }

    /// `L = Σ w·y` in f64 (for finite differences of the backward pass).
    fn loss(p: Groups, x: &[f32], gamma: &[f32], beta: &[f32], w: &[f32], silu: bool) -> f64 {
        reference(p, x, gamma, beta, silu)
            .iter()
            .zip(w)
            .map(|(y, w)| y * *w as f64)
            .sum()
    }

    /// Every SIMD level this CPU runs, each with and without SiLU.
    fn levels_and_silu() -> Vec<(Level, bool)> {
        Level::all_supported()
            .into_iter()
            .flat_map(|l| [(l, false), (l, true)])
            .collect()
    }

    fn case() -> (Groups, Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
        // 2 samples, 6 channels in 3 groups, 5×7 planes (not a multiple of 16).
        let p = Groups {
            batch: 2,
            channels: 6,
            groups: 3,
            plane: 35,
        };
        let x: Vec<f32> = data(p.len(), 1).iter().map(|v| v * 2.0 + 0.5).collect();
        let gamma: Vec<f32> = (0..6).map(|c| 0.5 + 0.3 * c as f32).collect();
        let beta: Vec<f32> = (0..6).map(|c| 0.2 * c as f32 - 0.5).collect();
        let w = data(p.len(), 7);
        (p, x, gamma, beta, w)
    }

    #[test]
    fn forward_matches_the_f64_reference_with_and_without_silu() {
        let (p, x, gamma, beta, _) = case();
        for (level, silu) in levels_and_silu() {
            let (y, mean, rstd) = forward_at(level, p, &x, &gamma, &beta, 1e-5, silu);
            for (a, b) in y.iter().zip(reference(p, &x, &gamma, &beta, silu)) {
                assert!((*a as f64 - b).abs() < 1e-5, "{a} vs {b} (silu {silu})");
            }
            // Group 0 of sample 0: the first 70 values.
            let mu = x[..70].iter().map(|v| *v as f64).sum::<f64>() / 70.0;
            assert!((mean[0] as f64 - mu).abs() < 1e-6);
            let var = x[..70]
                .iter()
                .map(|v| (*v as f64 - mu).powi(2))
                .sum::<f64>()
                / 70.0;
            assert!((rstd[0] as f64 - 1.0 / (var + 1e-5).sqrt()).abs() < 1e-5);
        }
    }

    #[test]
    fn backward_matches_finite_differences() {
        let (p, x, gamma, beta, w) = case();
        for (level, silu) in levels_and_silu() {
            let (_, mean, rstd) = forward_at(level, p, &x, &gamma, &beta, 1e-5, silu);
            let (dx, dgamma, dbeta) =
                backward_at(level, p, &x, &gamma, &beta, &mean, &rstd, &w, silu);
            let h = 1e-2f32;
            let fd = |f: &dyn Fn(f32) -> f64| (f(h) - f(-h)) / (2.0 * h as f64);
            for i in [0, 17, 69, 70, 200, 419] {
                let num = fd(&|d| {
                    let mut xp = x.clone();
                    xp[i] += d;
                    loss(p, &xp, &gamma, &beta, &w, silu)
                });
                assert!(
                    (dx[i] as f64 - num).abs() < 2e-3,
                    "dx[{i}] {} vs {num}",
                    dx[i]
                );
            }
            for c in 0..p.channels {
                let num = fd(&|d| {
                    let mut gp = gamma.clone();
                    gp[c] += d;
                    loss(p, &x, &gp, &beta, &w, silu)
                });
                assert!((dgamma[c] as f64 - num).abs() < 2e-3, "dγ[{c}]");
                let num = fd(&|d| {
                    let mut bp = beta.clone();
                    bp[c] += d;
                    loss(p, &x, &gamma, &bp, &w, silu)
                });
                assert!((dbeta[c] as f64 - num).abs() < 2e-3, "dβ[{c}]");
            }
        }
    }

    #[test]
    fn every_level_gives_the_same_values() {
        let (p, x, gamma, beta, w) = case();
        let run = |level| {
            let (y, mean, rstd) = forward_at(level, p, &x, &gamma, &beta, 1e-5, true);
            let grads = backward_at(level, p, &x, &gamma, &beta, &mean, &rstd, &w, true);
            (y, grads)
        };
        let scalar = run(Level::Scalar);
        for level in Level::all_supported() {
            let (y, (dx, dg, db)) = run(level);
            let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(a, b)| (a - b).abs() < 1e-6);
            assert!(close(&y, &scalar.0), "{level}: y");
            assert!(close(&dx, &scalar.1.0), "{level}: dx");
            assert!(
                close(&dg, &scalar.1.1) && close(&db, &scalar.1.2),
                "{level}: dγ, dβ"
            );
        }
    }

    #[test]
    fn one_group_per_channel_and_one_group_for_all() {
        let x = data(2 * 4 * 20, 3);
        let gamma = vec![1.0f32; 4];
        let beta = vec![0.0f32; 4];
        for groups in [1, 4] {
            let p = Groups {
                batch: 2,
                channels: 4,
                groups,
                plane: 20,
            };
            let (y, _, _) = forward(p, &x, &gamma, &beta, 1e-5, false);
            // Each group's output has mean 0 and (biased) variance ≈ 1.
            let n = p.len() / (2 * groups);
            for g in y.chunks(n) {
                let m = g.iter().map(|v| *v as f64).sum::<f64>() / n as f64;
                let v = g.iter().map(|v| (*v as f64 - m).powi(2)).sum::<f64>() / n as f64;
                assert!(m.abs() < 1e-5 && (v - 1.0).abs() < 1e-3, "mean {m} var {v}");
            }
        }
    }
}
