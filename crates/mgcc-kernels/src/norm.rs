//! Fused batch normalisation (training statistics) with an optional ReLU, on NCHW f32 slices.
//!
//! Per channel `c` over `n = B·H·W` values: `μ = Σx/n`, `σ² = Σ(x − μ)²/n` (biased),
//! `s = γ/√(σ² + ε)`, `y = x·s + (β − μ·s)`, then `max(y, 0)` when `relu` is set.
//!
//! Backward with `x̂ = (x − μ)/√(σ² + ε)` and `g = dy·[y > 0]` (or `dy` without ReLU):
//! `dβ = Σg`, `dγ = Σg·x̂`, `dx = s·(g − dβ/n − x̂·dγ/n)`.
//!
//! Sums run in 16 f32 lanes per plane, planes combined in f64, in a fixed order; work is
//! parallel over channels, so results do not depend on scheduling.

use rayon::prelude::*;

use crate::sync_ptr::SyncPtr;

/// Lane-wise sum of `f(v)` over `xs` (16 partial sums, combined in a fixed order, in f64).
#[inline]
pub fn lane_sum(xs: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut acc = [0.0f32; 16];
    let mut chunks = xs.chunks_exact(16);
    for ch in &mut chunks {
        for (a, v) in acc.iter_mut().zip(ch) {
            *a += f(*v);
        }
    }
    for (a, v) in acc.iter_mut().zip(chunks.remainder()) {
        *a += f(*v);
    }
    acc.iter().map(|v| *v as f64).sum()
}

/// Lane-wise sums of `f(x, y)` and `f(x, y)·(x − m)` over two equally long slices, in one pass.
#[inline]
fn lane_sums2(xs: &[f32], ys: &[f32], m: f32, f: impl Fn(f32, f32) -> f32) -> (f64, f64) {
    let mut a0 = [0.0f32; 16];
    let mut a1 = [0.0f32; 16];
    let mut cx = xs.chunks_exact(16);
    let mut cy = ys.chunks_exact(16);
    for (x16, y16) in (&mut cx).zip(&mut cy) {
        for l in 0..16 {
            let g = f(x16[l], y16[l]);
            a0[l] += g;
            a1[l] += g * (x16[l] - m);
        }
    }
    for (l, (x, y)) in cx.remainder().iter().zip(cy.remainder()).enumerate() {
        let g = f(*x, *y);
        a0[l] += g;
        a1[l] += g * (x - m);
    }
    let total = |a: [f32; 16]| a.iter().map(|v| *v as f64).sum::<f64>();
    (total(a0), total(a1))
}

/// Shape of an NCHW tensor seen as `batch × channels × plane`.
#[derive(Debug, Clone, Copy)]
pub struct Planes {
    pub batch: usize,
    pub channels: usize,
    pub plane: usize,
}

impl Planes {
    fn count(&self) -> usize {
        self.batch * self.plane
    }

    fn plane_of(&self, b: usize, c: usize) -> std::ops::Range<usize> {
        let s = (b * self.channels + c) * self.plane;
        s..s + self.plane
    }
}

/// Batch mean and biased variance per channel.
pub fn statistics(p: Planes, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let n = p.count() as f64;
    (0..p.channels)
        .into_par_iter()
        .map(|c| {
            let sum: f64 = (0..p.batch)
                .map(|b| lane_sum(&x[p.plane_of(b, c)], |v| v))
                .sum();
            let mean = sum / n;
            let m = mean as f32;
            let sq: f64 = (0..p.batch)
                .map(|b| {
                    lane_sum(&x[p.plane_of(b, c)], |v| {
                        let d = v - m;
                        d * d
                    })
                })
                .sum();
            (m, (sq / n) as f32)
        })
        .unzip()
}

/// Per-channel `(scale, shift)` with `y = x·scale + shift`.
pub fn affine(
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f64,
) -> (Vec<f32>, Vec<f32>) {
    gamma
        .iter()
        .zip(beta)
        .zip(mean.iter().zip(var))
        .map(|((&g, &b), (&m, &v))| {
            let s = (g as f64 / (v as f64 + eps).sqrt()) as f32;
            (s, b - m * s)
        })
        .unzip()
}

/// `y = x·scale[c] + shift[c]` (then ReLU when `relu`).
pub fn apply(p: Planes, x: &[f32], scale: &[f32], shift: &[f32], relu: bool) -> Vec<f32> {
    // Written in full by the parallel loop: no zero-fill (a serial memset) first.
    let mut y: Vec<f32> = Vec::with_capacity(x.len());
    y.spare_capacity_mut()[..x.len()]
        .par_chunks_mut(p.plane)
        .zip(x.par_chunks(p.plane))
        .enumerate()
        .for_each(|(i, (yp, xp))| {
            let c = i % p.channels;
            let (s, t) = (scale[c], shift[c]);
            if relu {
                for (o, v) in yp.iter_mut().zip(xp) {
                    o.write((v * s + t).max(0.0));
                }
            } else {
                for (o, v) in yp.iter_mut().zip(xp) {
                    o.write(v * s + t);
                }
            }
        });
    // SAFETY: the planes above cover all `x.len()` values.
    unsafe { y.set_len(x.len()) };
    y
}

/// Gradients `(dx, dγ, dβ)` of the training-mode normalisation (see the module docs).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    p: Planes,
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f64,
    relu: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (scale, shift) = affine(gamma, beta, mean, var, eps);
    let n = p.count() as f64;
    // Every value is written below (each channel task writes its planes): no zero-fill.
    let mut dx: Vec<f32> = Vec::with_capacity(x.len());
    let out = SyncPtr(dx.as_mut_ptr());
    let grads: Vec<(f32, f32)> = (0..p.channels)
        .into_par_iter()
        .map(|c| {
            let (s, t, m) = (scale[c], shift[c], mean[c]);
            let gate = |xv: f32, g: f32| if !relu || xv * s + t > 0.0 { g } else { 0.0 };
            // Σg and Σg·(x − μ)
            let (mut sg, mut sgx) = (0.0f64, 0.0f64);
            for b in 0..p.batch {
                let r = p.plane_of(b, c);
                let (a, b) = lane_sums2(&x[r.clone()], &dy[r], m, gate);
                sg += a;
                sgx += b;
            }
            let inv_std = 1.0 / (var[c] as f64 + eps).sqrt();
            let dbeta = sg;
            let dgamma = sgx * inv_std;
            // dx = s·(g − dβ/n − (x − μ)·inv_std·dγ/n)
            let k0 = (dbeta / n) as f32;
            let k1 = (inv_std * dgamma / n) as f32;
            for b in 0..p.batch {
                let r = p.plane_of(b, c);
                // SAFETY: channel `c`'s planes lie inside the reserved capacity and are written
                // by this task only.
                let dxp = unsafe {
                    std::slice::from_raw_parts_mut(
                        out.get().add(r.start).cast::<std::mem::MaybeUninit<f32>>(),
                        p.plane,
                    )
                };
                for ((d, xv), g) in dxp.iter_mut().zip(&x[r.clone()]).zip(&dy[r]) {
                    d.write(s * (gate(*xv, *g) - k0 - (xv - m) * k1));
                }
            }
            (dgamma as f32, dbeta as f32)
        })
        .collect();
    // SAFETY: the channel tasks above wrote all `B·C` planes.
    unsafe { dx.set_len(x.len()) };
    let (dgamma, dbeta) = grads.into_iter().unzip();
    (dx, dgamma, dbeta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 37 + seed * 11) % 41) as f32 - 17.0) / 6.0)
            .collect()
    }

    /// Backward against central finite differences of `L = Σ w·y` (f64 reference forward).
    #[test]
    fn backward_matches_finite_differences() {
        for relu in [false, true] {
            let p = Planes {
                batch: 2,
                channels: 3,
                plane: 5,
            };
            let len = 30;
            let x = data(len, 1);
            let w = data(len, 2);
            let gamma = vec![1.5f32, -0.7, 0.9];
            let beta = vec![0.1f32, 0.4, -0.3];
            let eps = 1e-5;
            let loss = |x: &[f64], gamma: &[f64], beta: &[f64]| -> f64 {
                let mut l = 0.0;
                for c in 0..3 {
                    let idx: Vec<usize> = (0..2).flat_map(|b| p.plane_of(b, c)).collect();
                    let m = idx.iter().map(|&i| x[i]).sum::<f64>() / 10.0;
                    let v = idx.iter().map(|&i| (x[i] - m).powi(2)).sum::<f64>() / 10.0;
                    for &i in &idx {
                        let mut y = gamma[c] * (x[i] - m) / (v + eps).sqrt() + beta[c];
                        if relu {
                            y = y.max(0.0);
                        }
                        l += w[i] as f64 * y;
                    }
                }
                l
            };
            let (mean, var) = statistics(p, &x);
            let (dx, dg, db) = backward(p, &x, &w, &gamma, &beta, &mean, &var, eps, relu);
            let xd: Vec<f64> = x.iter().map(|v| *v as f64).collect();
            let gd: Vec<f64> = gamma.iter().map(|v| *v as f64).collect();
            let bd: Vec<f64> = beta.iter().map(|v| *v as f64).collect();
            let h = 1e-4;
            let fd = |f: &dyn Fn(f64) -> f64| (f(h) - f(-h)) / (2.0 * h);
            for i in 0..len {
                let num = fd(&|e| {
                    let mut xx = xd.clone();
                    xx[i] += e;
                    loss(&xx, &gd, &bd)
                });
                assert!((dx[i] as f64 - num).abs() < 2e-3, "relu {relu} dx[{i}]");
            }
            for c in 0..3 {
                let num = fd(&|e| {
                    let mut g = gd.clone();
                    g[c] += e;
                    loss(&xd, &g, &bd)
                });
                assert!((dg[c] as f64 - num).abs() < 2e-3, "relu {relu} dgamma[{c}]");
                let num = fd(&|e| {
                    let mut b = bd.clone();
                    b[c] += e;
                    loss(&xd, &gd, &b)
                });
                assert!((db[c] as f64 - num).abs() < 2e-3, "relu {relu} dbeta[{c}]");
            }
        }
    }
}
