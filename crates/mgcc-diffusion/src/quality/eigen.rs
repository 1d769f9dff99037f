//! Symmetric eigendecomposition by cyclic Jacobi rotations (f64), and the PSD square root.

/// Eigenvalues and eigenvectors of a symmetric `n`×`n` matrix.
#[derive(Debug, Clone)]
pub struct SymmetricEigen {
    /// Matrix order.
    pub n: usize,
    /// Eigenvalues, descending.
    pub values: Vec<f64>,
    /// Row-major `n`×`n`; column `j` is the unit eigenvector of `values[j]` (empty when only
    /// eigenvalues were asked for).
    pub vectors: Vec<f64>,
}

/// Most sweeps before giving up (cyclic Jacobi converges quadratically; ~10 are typical).
const MAX_SWEEPS: usize = 100;

/// Eigendecomposition of the symmetric row-major `n`×`n` matrix `a` (only its symmetric part
/// matters; it is symmetrised first) by the cyclic Jacobi method: sweeps over all pairs
/// `p < q`, each rotation zeroing `a[p][q]`, until the off-diagonal Frobenius norm is below
/// `1e-15 ·` the matrix's Frobenius norm (or 100 sweeps); from the fifth sweep on,
/// an `a[p][q]` below the rounding of both `a[p][p]` and `a[q][q]` is set to zero
/// (Numerical Recipes' rule).
///
/// # Panics
/// When `a.len() != n * n`.
pub fn symmetric_eigen(a: &[f64], n: usize) -> SymmetricEigen {
    jacobi(a, n, true)
}

/// Eigenvalues only (descending) of a symmetric matrix, as in [`symmetric_eigen`].
pub fn symmetric_eigenvalues(a: &[f64], n: usize) -> Vec<f64> {
    jacobi(a, n, false).values
}

/// Two distinct rows `p < q` of a row-major matrix with `n` columns.
fn two_rows(m: &mut [f64], n: usize, p: usize, q: usize) -> (&mut [f64], &mut [f64]) {
    let (lo, hi) = m.split_at_mut(q * n);
    (&mut lo[p * n..(p + 1) * n], &mut hi[..n])
}

/// Rows `p`, `q` ← `(c·row_p − s·row_q, s·row_p + c·row_q)`.
fn rotate_rows(m: &mut [f64], n: usize, p: usize, q: usize, c: f64, s: f64) {
    let (rp, rq) = two_rows(m, n, p, q);
    for (x, y) in rp.iter_mut().zip(rq.iter_mut()) {
        let (a, b) = (*x, *y);
        *x = c * a - s * b;
        *y = s * a + c * b;
    }
}

fn jacobi(a: &[f64], n: usize, want_vectors: bool) -> SymmetricEigen {
    assert_eq!(a.len(), n * n, "matrix is not n x n");
    let mut m = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            m[i * n + j] = 0.5 * (a[i * n + j] + a[j * n + i]);
        }
    }
    // rows of `vt` are the eigenvectors (Vᵀ), so rotations act on contiguous rows
    let mut vt = Vec::new();
    if want_vectors {
        vt = vec![0.0f64; n * n];
        for i in 0..n {
            vt[i * n + i] = 1.0;
        }
    }
    let frob2: f64 = m.iter().map(|x| x * x).sum();
    let tol2 = frob2 * 1e-30;
    for sweep in 0..MAX_SWEEPS {
        let mut off2 = 0.0;
        for p in 0..n {
            for q in p + 1..n {
                off2 += 2.0 * m[p * n + q] * m[p * n + q];
            }
        }
        if off2 <= tol2 || off2 == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let (app, aqq) = (m[p * n + p], m[q * n + q]);
                let g = 100.0 * apq.abs();
                if sweep > 3 && app.abs() + g == app.abs() && aqq.abs() + g == aqq.abs() {
                    m[p * n + q] = 0.0;
                    m[q * n + p] = 0.0;
                    continue;
                }
                let theta = (aqq - app) / (2.0 * apq);
                let t = if theta.is_finite() {
                    theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt())
                } else {
                    0.0
                };
                if t == 0.0 {
                    // |a_pq| negligible against the diagonal gap
                    m[p * n + q] = 0.0;
                    m[q * n + p] = 0.0;
                    continue;
                }
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // M ← JᵀMJ, J the rotation in the (p,q) plane with J_pq = s, J_qp = −s. Rows
                // p, q mix (entries k ≠ p,q are then exact); columns p, q are their mirror.
                rotate_rows(&mut m, n, p, q, c, s);
                m[p * n + p] = app - t * apq;
                m[q * n + q] = aqq + t * apq;
                m[p * n + q] = 0.0;
                m[q * n + p] = 0.0;
                for k in 0..n {
                    if k != p && k != q {
                        m[k * n + p] = m[p * n + k];
                        m[k * n + q] = m[q * n + k];
                    }
                }
                // V ← VJ, i.e. Vᵀ ← JᵀVᵀ
                if want_vectors {
                    rotate_rows(&mut vt, n, p, q, c, s);
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| m[j * n + j].total_cmp(&m[i * n + i]));
    let values = order.iter().map(|&i| m[i * n + i]).collect();
    let mut vectors = Vec::new();
    if want_vectors {
        vectors = vec![0.0f64; n * n];
        for (jn, &jo) in order.iter().enumerate() {
            for k in 0..n {
                vectors[k * n + jn] = vt[jo * n + k];
            }
        }
    }
    SymmetricEigen { n, values, vectors }
}

/// Square root of a symmetric positive semi-definite matrix: `V·diag(√max(λ,0))·Vᵀ`
/// (negative eigenvalues, from rounding, count as zero).
pub fn sqrtm_psd(a: &[f64], n: usize) -> Vec<f64> {
    let e = symmetric_eigen(a, n);
    let roots: Vec<f64> = e.values.iter().map(|&l| l.max(0.0).sqrt()).collect();
    let mut out = vec![0.0f64; n * n];
    for i in 0..n {
        for j in i..n {
            let s: f64 = (0..n)
                .map(|k| e.vectors[i * n + k] * roots[k] * e.vectors[j * n + k])
                .sum();
            out[i * n + j] = s;
            out[j * n + i] = s;
        }
    }
    out
}

/// Row-major product of an `n`×`k` and a `k`×`m` matrix.
pub(crate) fn matmul(a: &[f64], b: &[f64], n: usize, k: usize, m: usize) -> Vec<f64> {
    let mut out = vec![0.0f64; n * m];
    for i in 0..n {
        let orow = &mut out[i * m..(i + 1) * m];
        for (l, &ail) in a[i * k..(i + 1) * k].iter().enumerate() {
            if ail == 0.0 {
                continue;
            }
            for (o, &blj) in orow.iter_mut().zip(&b[l * m..(l + 1) * m]) {
                *o += ail * blj;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random_symmetric(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in i..n {
                let x: f64 = rng.random_range(-1.0..1.0);
                a[i * n + j] = x;
                a[j * n + i] = x;
            }
        }
        a
    }

    #[test]
    fn jacobi_reconstructs_random_symmetric_matrix() {
        for &n in &[1usize, 2, 5, 40] {
            let a = random_symmetric(n, n as u64);
            let e = symmetric_eigen(&a, n);
            // A = V Λ Vᵀ and VᵀV = I
            for i in 0..n {
                for j in 0..n {
                    let r: f64 = (0..n)
                        .map(|k| e.vectors[i * n + k] * e.values[k] * e.vectors[j * n + k])
                        .sum();
                    assert!((r - a[i * n + j]).abs() < 1e-10, "n={n} ({i},{j})");
                    let o: f64 = (0..n)
                        .map(|k| e.vectors[k * n + i] * e.vectors[k * n + j])
                        .sum();
                    assert!((o - if i == j { 1.0 } else { 0.0 }).abs() < 1e-10);
                }
            }
            assert!(e.values.windows(2).all(|w| w[0] >= w[1]));
            let trace: f64 = (0..n).map(|i| a[i * n + i]).sum();
            assert_eq!(symmetric_eigenvalues(&a, n), e.values);
            assert!((e.values.iter().sum::<f64>() - trace).abs() < 1e-10);
        }
    }

    #[test]
    fn jacobi_hand_computed_2x2() {
        // [[2,1],[1,2]] has eigenvalues 3 and 1
        let e = symmetric_eigen(&[2.0, 1.0, 1.0, 2.0], 2);
        assert!((e.values[0] - 3.0).abs() < 1e-14);
        assert!((e.values[1] - 1.0).abs() < 1e-14);
        let e = symmetric_eigen(&[0.0; 9], 3);
        assert_eq!(e.values, vec![0.0; 3]);
    }

    #[test]
    fn sqrtm_squares_back() {
        let n = 12;
        let r = random_symmetric(n, 7);
        let a = matmul(&r, &r, n, n, n); // PSD
        let s = sqrtm_psd(&a, n);
        let ss = matmul(&s, &s, n, n, n);
        for (x, y) in ss.iter().zip(&a) {
            assert!((x - y).abs() < 1e-9);
        }
    }
}
