//! KID and FID between two sets of feature vectors.
//!
//! * KID (Bińkowski et al. 2018, as in torch-fidelity): the unbiased estimate of the squared
//!   MMD with the polynomial kernel `k(x,y) = (x·y/d + 1)³` (`d` = feature dimension),
//!   computed on `subsets` pairs of random subsets of `m` vectors from each side (drawn
//!   without replacement), reported as mean and population standard deviation over subsets.
//!   For subsets `X` (size m) and `Y` (size n):
//!   `MMD²ᵤ = Σ_{i≠j} k(xᵢ,xⱼ)/(m(m−1)) + Σ_{i≠j} k(yᵢ,yⱼ)/(n(n−1)) − 2 Σ_{i,j} k(xᵢ,yⱼ)/(mn)`.
//! * FID (Heusel et al. 2017) of the Gaussians fitted to each set (mean, covariance with
//!   `n − 1`): `‖μ₁−μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁^{½} Σ₂ Σ₁^{½})^{½})`.

use rand::SeedableRng;
use rand::seq::index;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::eigen::{matmul, sqrtm_psd, symmetric_eigenvalues};

/// ChaCha8 stream (of the report seed) that draws the KID subsets.
pub const KID_STREAM: u64 = 0;

/// The polynomial kernel of KID: `(x·y/d + 1)³`, `d = x.len()`.
pub fn poly_kernel(x: &[f32], y: &[f32]) -> f64 {
    let d = x.len() as f64;
    let dot: f64 = x.iter().zip(y).map(|(&a, &b)| a as f64 * b as f64).sum();
    (dot / d + 1.0).powi(3)
}

/// Unbiased MMD² with [`poly_kernel`] between `x` and `y` (each at least 2 vectors).
pub fn mmd2_unbiased(x: &[&[f32]], y: &[&[f32]]) -> f64 {
    let (m, n) = (x.len(), y.len());
    assert!(m >= 2 && n >= 2, "MMD needs at least 2 vectors per side");
    let within = |s: &[&[f32]]| -> f64 {
        let mut sum = 0.0;
        for i in 0..s.len() {
            for j in i + 1..s.len() {
                sum += 2.0 * poly_kernel(s[i], s[j]);
            }
        }
        sum
    };
    let mut cross = 0.0;
    for a in x {
        for b in y {
            cross += poly_kernel(a, b);
        }
    }
    within(x) / (m * (m - 1)) as f64 + within(y) / (n * (n - 1)) as f64
        - 2.0 * cross / (m * n) as f64
}

/// KID over random subsets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KidScore {
    /// Mean of the per-subset unbiased MMD².
    pub mean: f64,
    /// Population standard deviation of the per-subset MMD².
    pub std: f64,
    /// Vectors drawn from each side per subset (after clamping to the smaller set).
    pub subset_size: usize,
    /// Number of subsets.
    pub subsets: usize,
}

/// KID between feature sets `a` and `b`: `subsets` times, draw `subset_size` vectors without
/// replacement from each side (`subset_size` clamped to `min(a.len(), b.len())`; drawn in
/// order a-then-b per subset from ChaCha8 seeded with `seed`, stream [`KID_STREAM`]) and
/// take [`mmd2_unbiased`]; mean and population std over subsets.
///
/// # Panics
/// When a set has fewer than 2 vectors or `subsets == 0`.
pub fn kid(
    a: &[Vec<f32>],
    b: &[Vec<f32>],
    subset_size: usize,
    subsets: usize,
    seed: u64,
) -> KidScore {
    assert!(subsets > 0, "KID needs at least one subset");
    let m = subset_size.min(a.len()).min(b.len());
    assert!(m >= 2, "KID needs at least 2 vectors per side");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(KID_STREAM);
    let draws: Vec<(Vec<usize>, Vec<usize>)> = (0..subsets)
        .map(|_| {
            let ia = index::sample(&mut rng, a.len(), m).into_vec();
            let ib = index::sample(&mut rng, b.len(), m).into_vec();
            (ia, ib)
        })
        .collect();
    let values: Vec<f64> = draws
        .par_iter()
        .map(|(ia, ib)| {
            let x: Vec<&[f32]> = ia.iter().map(|&i| a[i].as_slice()).collect();
            let y: Vec<&[f32]> = ib.iter().map(|&i| b[i].as_slice()).collect();
            mmd2_unbiased(&x, &y)
        })
        .collect();
    let mean = values.iter().sum::<f64>() / subsets as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / subsets as f64;
    KidScore {
        mean,
        std: var.sqrt(),
        subset_size: m,
        subsets,
    }
}

/// Mean and covariance (divisor `n − 1`, row-major `d`×`d`) of `n ≥ 2` vectors.
pub fn mean_cov(x: &[Vec<f32>]) -> (Vec<f64>, Vec<f64>) {
    let (mean, c) = centered(x);
    let d = mean.len();
    let n = x.len();
    let mut cov = vec![0.0f64; d * d];
    for i in 0..d {
        for j in i..d {
            let s: f64 = (0..n).map(|r| c[r * d + i] * c[r * d + j]).sum();
            cov[i * d + j] = s;
            cov[j * d + i] = s;
        }
    }
    (mean, cov)
}

/// Mean and the centred data scaled by `1/√(n−1)` (row-major `n`×`d`), so `Σ = AᵀA`.
fn centered(x: &[Vec<f32>]) -> (Vec<f64>, Vec<f64>) {
    let n = x.len();
    assert!(n >= 2, "covariance needs at least 2 vectors");
    let d = x[0].len();
    assert!(
        x.iter().all(|v| v.len() == d),
        "vectors of different lengths"
    );
    let mut mean = vec![0.0f64; d];
    for v in x {
        for (m, &e) in mean.iter_mut().zip(v) {
            *m += e as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let scale = 1.0 / ((n - 1) as f64).sqrt();
    let mut c = Vec::with_capacity(n * d);
    for v in x {
        c.extend(v.iter().zip(&mean).map(|(&e, m)| (e as f64 - m) * scale));
    }
    (mean, c)
}

/// Sum of √λ over the eigenvalues λ of a symmetric PSD matrix, where eigenvalues below
/// `n · 1e-15 · λ_max` (rounding noise around true zeros, whose square roots would add
/// ~1e-8·√λ_max each) count as zero.
fn trace_sqrt(a: &[f64], n: usize) -> f64 {
    let values = symmetric_eigenvalues(a, n);
    let floor = values.first().copied().unwrap_or(0.0).max(0.0) * n as f64 * 1e-15;
    values
        .iter()
        .filter(|&&l| l > floor)
        .map(|&l| l.sqrt())
        .sum()
}

/// FID from moments: `‖μ₁−μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2 Tr (Σ₁^{½} Σ₂ Σ₁^{½})^{½}` with the
/// square roots from [`symmetric_eigen`](super::eigen::symmetric_eigen) (negative eigenvalues from rounding count as zero).
pub fn fid_from_moments(mu1: &[f64], cov1: &[f64], mu2: &[f64], cov2: &[f64]) -> f64 {
    let d = mu1.len();
    assert!(mu2.len() == d && cov1.len() == d * d && cov2.len() == d * d);
    let mean_term: f64 = mu1.iter().zip(mu2).map(|(a, b)| (a - b).powi(2)).sum();
    let tr1: f64 = (0..d).map(|i| cov1[i * d + i]).sum();
    let tr2: f64 = (0..d).map(|i| cov2[i * d + i]).sum();
    let s1 = sqrtm_psd(cov1, d);
    let m = matmul(&matmul(&s1, cov2, d, d, d), &s1, d, d, d);
    mean_term + tr1 + tr2 - 2.0 * trace_sqrt(&m, d)
}

/// FID between feature sets `a` and `b` (each at least 2 vectors of equal length).
///
/// When one set has no more vectors than dimensions, the trace term is computed exactly
/// through the smaller Gram matrix instead of `d`×`d` square roots: with `Σ₁ = AᵀA`,
/// `Σ₂ = BᵀB` (centred data over `√(n−1)`), the nonzero eigenvalues of
/// `Σ₁^{½}Σ₂Σ₁^{½}` are those of `Σ₁Σ₂`, hence of `(ABᵀ)(ABᵀ)ᵀ`, so
/// `Tr(Σ₁^{½}Σ₂Σ₁^{½})^{½}` is the sum of the singular values of `ABᵀ`. Otherwise
/// [`fid_from_moments`].
pub fn fid(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    let d = a[0].len();
    if a.len().min(b.len()) > d {
        let (mu1, c1) = mean_cov(a);
        let (mu2, c2) = mean_cov(b);
        return fid_from_moments(&mu1, &c1, &mu2, &c2);
    }
    fid_gram(a, b)
}

/// The Gram-matrix route of [`fid`] (exact for any sizes; cheap when a set is small).
fn fid_gram(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    let (mu1, ca) = centered(a);
    let (mu2, cb) = centered(b);
    let d = mu1.len();
    assert_eq!(mu2.len(), d, "feature sets of different dimension");
    let (n1, n2) = (a.len(), b.len());
    let mean_term: f64 = mu1.iter().zip(&mu2).map(|(x, y)| (x - y).powi(2)).sum();
    let tr1: f64 = ca.iter().map(|v| v * v).sum();
    let tr2: f64 = cb.iter().map(|v| v * v).sum();
    // C = A Bᵀ (n1×n2)
    let c: Vec<f64> = (0..n1)
        .into_par_iter()
        .flat_map_iter(|i| {
            let ai = &ca[i * d..(i + 1) * d];
            let cb = &cb;
            (0..n2).map(move |j| {
                ai.iter()
                    .zip(&cb[j * d..(j + 1) * d])
                    .map(|(x, y)| x * y)
                    .sum::<f64>()
            })
        })
        .collect();
    // singular values of C: square roots of the eigenvalues of the smaller of CCᵀ, CᵀC
    let (g, k) = if n1 <= n2 {
        let mut ct = vec![0.0; n2 * n1];
        for i in 0..n1 {
            for j in 0..n2 {
                ct[j * n1 + i] = c[i * n2 + j];
            }
        }
        (matmul(&c, &ct, n1, n2, n1), n1)
    } else {
        let mut ct = vec![0.0; n2 * n1];
        for i in 0..n1 {
            for j in 0..n2 {
                ct[j * n1 + i] = c[i * n2 + j];
            }
        }
        (matmul(&ct, &c, n2, n1, n2), n2)
    };
    mean_term + tr1 + tr2 - 2.0 * trace_sqrt(&g, k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::eigen::symmetric_eigen;
    use rand::{Rng, SeedableRng};

    fn gaussian_set(n: usize, mean: &[f64], std: &[f64], seed: u64) -> Vec<Vec<f32>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                mean.iter()
                    .zip(std)
                    .map(|(m, s)| {
                        // Box–Muller
                        let u1: f64 = 1.0 - rng.random::<f64>();
                        let u2: f64 = rng.random();
                        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                        (m + s * z) as f32
                    })
                    .collect()
            })
            .collect()
    }

    fn diag(v: &[f64]) -> Vec<f64> {
        let d = v.len();
        let mut m = vec![0.0; d * d];
        for i in 0..d {
            m[i * d + i] = v[i];
        }
        m
    }

    fn closed_form(mu1: &[f64], var1: &[f64], mu2: &[f64], var2: &[f64]) -> f64 {
        let mean: f64 = mu1.iter().zip(mu2).map(|(a, b)| (a - b).powi(2)).sum();
        let cov: f64 = var1
            .iter()
            .zip(var2)
            .map(|(a, b)| a + b - 2.0 * (a * b).sqrt())
            .sum();
        mean + cov
    }

    #[test]
    fn fid_of_diagonal_gaussians_equals_closed_form() {
        let (mu1, var1) = (vec![0.0, 1.0, -2.0], vec![1.0, 4.0, 0.25]);
        let (mu2, var2) = (vec![1.0, 1.0, 0.0], vec![9.0, 1.0, 0.25]);
        // ‖μ₁−μ₂‖² = 1 + 0 + 4 = 5; covariance term (1+9−6) + (4+1−4) + 0 = 5
        let want = closed_form(&mu1, &var1, &mu2, &var2);
        assert!((want - 10.0).abs() < 1e-12);
        let got = fid_from_moments(&mu1, &diag(&var1), &mu2, &diag(&var2));
        assert!((got - want).abs() < 1e-10, "{got}");
    }

    #[test]
    fn fid_is_rotation_invariant_on_full_covariances() {
        // rotate both diagonal Gaussians by one orthogonal Q: FID unchanged
        let d = 6;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut r = vec![0.0; d * d];
        for i in 0..d {
            for j in i..d {
                let x: f64 = rng.random_range(-1.0..1.0);
                r[i * d + j] = x;
                r[j * d + i] = x;
            }
        }
        let q = symmetric_eigen(&r, d).vectors;
        let mut qt = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                qt[j * d + i] = q[i * d + j];
            }
        }
        let var1 = [1.0, 2.0, 3.0, 0.5, 0.1, 0.0];
        let var2 = [2.0, 2.0, 1.0, 0.5, 1.0, 0.3];
        let mu1 = [0.0, 1.0, 0.0, 0.0, 2.0, 0.0];
        let mu2 = [0.5, 1.0, 0.0, -1.0, 2.0, 0.0];
        let rot = |c: &[f64]| matmul(&matmul(&q, c, d, d, d), &qt, d, d, d);
        let rotv = |m: &[f64]| matmul(&q, m, d, d, 1);
        let got = fid_from_moments(
            &rotv(&mu1),
            &rot(&diag(&var1)),
            &rotv(&mu2),
            &rot(&diag(&var2)),
        );
        let want = closed_form(&mu1, &var1, &mu2, &var2);
        assert!((got - want).abs() < 1e-8, "{got} vs {want}");
    }

    #[test]
    fn fid_of_samples_approaches_closed_form() {
        let (mu1, s1) = (vec![0.0, 0.0, 1.0], vec![1.0, 2.0, 0.5]);
        let (mu2, s2) = (vec![1.0, 0.0, 1.0], vec![1.0, 1.0, 0.5]);
        let a = gaussian_set(20_000, &mu1, &s1, 1);
        let b = gaussian_set(20_000, &mu2, &s2, 2);
        let var = |s: &[f64]| s.iter().map(|x| x * x).collect::<Vec<_>>();
        let want = closed_form(&mu1, &var(&s1), &mu2, &var(&s2)); // 1 + (4+1−4) = 2
        let got = fid(&a, &b);
        assert!((got - want).abs() < 0.1, "{got} vs {want}");
        assert!(fid(&a, &a).abs() < 1e-9);
    }

    #[test]
    fn fid_gram_route_equals_moment_route() {
        let d = 20;
        let m: Vec<f64> = (0..d).map(|i| i as f64 * 0.1).collect();
        let s = vec![1.0; d];
        let a = gaussian_set(8, &m, &s, 5);
        let b = gaussian_set(13, &vec![0.3; d], &s, 6);
        let (mu1, c1) = mean_cov(&a);
        let (mu2, c2) = mean_cov(&b);
        let want = fid_from_moments(&mu1, &c1, &mu2, &c2);
        for got in [fid(&a, &b), fid_gram(&a, &b), fid_gram(&b, &a)] {
            assert!((got - want).abs() < 1e-8 * want.max(1.0), "{got} vs {want}");
        }
        // against itself: ~0 up to rounding (trace terms are ~20 here)
        assert!(fid(&a, &a).abs() < 1e-9, "{}", fid(&a, &a));
    }

    #[test]
    fn kid_hand_computed_and_behaviour() {
        // d = 1: k(x,y) = (xy + 1)³. X = {0, 1}, Y = {0, 2}:
        // within X: 2·k(0,1) = 2 → /2 = 1; within Y: 2·k(0,2) = 2 → 1;
        // cross: k(0,0)+k(0,2)+k(1,0)+k(1,2) = 1+1+1+27 = 30 → 2·30/4 = 15; MMD² = −13
        let x: Vec<&[f32]> = vec![&[0.0], &[1.0]];
        let y: Vec<&[f32]> = vec![&[0.0], &[2.0]];
        assert!((mmd2_unbiased(&x, &y) + 13.0).abs() < 1e-12);
        assert_eq!(poly_kernel(&[1.0, 1.0], &[2.0, 0.0]), 8.0);

        let s = vec![1.0; 8];
        let a = gaussian_set(60, &[0.0; 8], &s, 1);
        let a2 = gaussian_set(60, &[0.0; 8], &s, 2);
        let b = gaussian_set(60, &[1.0; 8], &s, 3);
        let same = kid(&a, &a2, 30, 20, 0);
        let shifted = kid(&a, &b, 30, 20, 0);
        assert!(same.mean.abs() < 0.05, "{same:?}");
        assert!(shifted.mean > 0.5, "{shifted:?}");
        assert!(shifted.mean > 10.0 * same.mean.abs());
        // identical sets, full subsets: every subset is the whole set, so no spread; the
        // unbiased estimate of a set against itself is near, not exactly, 0
        let full = kid(&a, &a, 1000, 3, 0);
        assert_eq!(full.subset_size, 60);
        assert!(full.std < 1e-12, "{full:?}");
        assert_eq!(kid(&a, &b, 30, 20, 0), shifted, "seeded");
    }
}
