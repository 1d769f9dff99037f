//! Intensity histograms and the two distances between them.
//!
//! Gray values in `[0,1]` fall into [`BINS`] = 256 equal bins: value `v` goes to bin
//! `min(floor(v·256), 255)` (8-bit values `k/255` land in bin `k`, one value per bin).
//! A set's distribution is the mean of its images' normalised histograms (every image weighs
//! the same whatever its resolution); histograms are taken at each image's own resolution.

/// Number of histogram bins on `[0,1]`.
pub const BINS: usize = 256;

/// Bin of a gray value in `[0,1]`: `min(floor(v·256), 255)`; values outside `[0,1]` (and NaN) are
/// clamped to the end bins.
pub fn bin_of(v: f32) -> usize {
    let b = (v * BINS as f32).floor();
    if b.is_nan() || b < 0.0 {
        0
    } else {
        (b as usize).min(BINS - 1)
    }
}

/// The set's pooled distribution: the mean over images of each image's normalised histogram
/// (images with no pixels are skipped). Sums to 1 unless every histogram is empty.
pub fn pooled_distribution(histograms: &[Vec<u64>]) -> Vec<f64> {
    let mut p = vec![0.0f64; BINS];
    let mut used = 0usize;
    for h in histograms {
        let total: u64 = h.iter().sum();
        if total == 0 {
            continue;
        }
        used += 1;
        for (pi, &c) in p.iter_mut().zip(h) {
            *pi += c as f64 / total as f64;
        }
    }
    if used > 0 {
        p.iter_mut().for_each(|v| *v /= used as f64);
    }
    p
}

/// 1-D Wasserstein-1 (earth mover's) distance between two distributions over the 256 bins,
/// in gray-value units: `Σ_k |CDF_p(k) − CDF_q(k)| · (1/256)` (bin centres are 1/256 apart).
/// All mass in bin 0 against all mass in bin 255 gives 255/256.
pub fn wasserstein1(p: &[f64], q: &[f64]) -> f64 {
    assert_eq!(p.len(), q.len(), "histograms of different lengths");
    let (mut cp, mut cq, mut sum) = (0.0f64, 0.0f64, 0.0f64);
    for (a, b) in p.iter().zip(q) {
        cp += a;
        cq += b;
        sum += (cp - cq).abs();
    }
    sum / p.len() as f64
}

/// Total-variation distance between two normalised histograms: `½ Σ_k |p_k − q_k|`, in `[0,1]`.
pub fn total_variation(p: &[f64], q: &[f64]) -> f64 {
    assert_eq!(p.len(), q.len(), "histograms of different lengths");
    0.5 * p.iter().zip(q).map(|(a, b)| (a - b).abs()).sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(pairs: &[(usize, u64)]) -> Vec<u64> {
        let mut h = vec![0; BINS];
        for &(b, c) in pairs {
            h[b] += c;
        }
        h
    }

    #[test]
    fn bins_of_8bit_values_are_one_to_one() {
        for k in 0..=255u32 {
            assert_eq!(bin_of(k as f32 / 255.0), k as usize);
        }
        assert_eq!(bin_of(-0.5), 0);
        assert_eq!(bin_of(2.0), 255);
        assert_eq!(bin_of(f32::NAN), 0);
    }

    #[test]
    fn pooled_weighs_images_equally() {
        // image 1: 4 pixels in bin 0; image 2: 1 pixel in bin 10 → 0.5 / 0.5
        let p = pooled_distribution(&[hist(&[(0, 4)]), hist(&[(10, 1)])]);
        assert_eq!(p[0], 0.5);
        assert_eq!(p[10], 0.5);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn wasserstein_and_tv_hand_computed() {
        let p = pooled_distribution(&[hist(&[(0, 1)])]);
        let q = pooled_distribution(&[hist(&[(255, 1)])]);
        assert!((wasserstein1(&p, &q) - 255.0 / 256.0).abs() < 1e-12);
        assert!((total_variation(&p, &q) - 1.0).abs() < 1e-12);
        assert_eq!(wasserstein1(&p, &p), 0.0);
        assert_eq!(total_variation(&p, &p), 0.0);
        // half the mass moved by 2 bins: W1 = 0.5·2/256; TV = 0.5
        let a = pooled_distribution(&[hist(&[(3, 1), (7, 1)])]);
        let b = pooled_distribution(&[hist(&[(5, 1), (7, 1)])]);
        assert!((wasserstein1(&a, &b) - 1.0 / 256.0).abs() < 1e-12);
        assert!((total_variation(&a, &b) - 0.5).abs() < 1e-12);
    }
}
