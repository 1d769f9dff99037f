//! Distances between images and feature vectors, nearest neighbours, the leave-one-out
//! baseline and diversity.

use rand::SeedableRng;
use rand::seq::index;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Pixel distance: root mean squared difference of two equally long gray images in `[0,1]`,
/// `√(Σ (aᵢ−bᵢ)² / N)`. Same images → 0, black against white → 1.
pub fn rmse(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "images of different sizes");
    if a.is_empty() {
        return 0.0;
    }
    (squared_distance(a, b) / a.len() as f64).sqrt()
}

/// Feature distance: Euclidean distance `√Σ (aᵢ−bᵢ)²` between two feature vectors.
pub fn euclidean(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "vectors of different lengths");
    squared_distance(a, b).sqrt()
}

/// `Σ (aᵢ−bᵢ)²`, in f32 lanes of 8 summed into f64 per chunk of 256 values.
fn squared_distance(a: &[f32], b: &[f32]) -> f64 {
    let mut total = 0.0f64;
    for (ca, cb) in a.chunks(256).zip(b.chunks(256)) {
        let mut lanes = [0.0f32; 8];
        let mut ia = ca.chunks_exact(8);
        let mut ib = cb.chunks_exact(8);
        for (x, y) in (&mut ia).zip(&mut ib) {
            for k in 0..8 {
                let d = x[k] - y[k];
                lanes[k] += d * d;
            }
        }
        let mut s: f64 = lanes.iter().map(|&v| v as f64).sum();
        for (x, y) in ia.remainder().iter().zip(ib.remainder()) {
            let d = (x - y) as f64;
            s += d * d;
        }
        total += s;
    }
    total
}

/// The nearest reference item of a query.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Nearest {
    /// Index into the reference set (the first one on ties).
    pub index: usize,
    /// Its distance.
    pub distance: f64,
}

/// For every query, the nearest item of `reference` under `dist` (in parallel over queries).
///
/// # Panics
/// When `reference` is empty.
pub fn nearest_neighbours<F>(queries: &[Vec<f32>], reference: &[Vec<f32>], dist: F) -> Vec<Nearest>
where
    F: Fn(&[f32], &[f32]) -> f64 + Sync,
{
    assert!(!reference.is_empty(), "empty reference set");
    queries
        .par_iter()
        .map(|q| nearest_of(q, reference.iter().enumerate(), &dist))
        .collect()
}

fn nearest_of<'a, F>(
    q: &[f32],
    items: impl Iterator<Item = (usize, &'a Vec<f32>)>,
    dist: &F,
) -> Nearest
where
    F: Fn(&[f32], &[f32]) -> f64,
{
    let mut best = Nearest {
        index: usize::MAX,
        distance: f64::INFINITY,
    };
    for (i, r) in items {
        let d = dist(q, r);
        if d < best.distance || best.index == usize::MAX {
            best = Nearest {
                index: i,
                distance: d,
            };
        }
    }
    best
}

/// Leave-one-out nearest neighbours within one set: for item `i`, the nearest item `j ≠ i`.
///
/// # Panics
/// When the set has fewer than 2 items.
pub fn leave_one_out_nearest<F>(set: &[Vec<f32>], dist: F) -> Vec<Nearest>
where
    F: Fn(&[f32], &[f32]) -> f64 + Sync,
{
    assert!(set.len() >= 2, "leave-one-out needs at least 2 items");
    (0..set.len())
        .into_par_iter()
        .map(|i| {
            nearest_of(
                &set[i],
                set.iter().enumerate().filter(|(j, _)| *j != i),
                &dist,
            )
        })
        .collect()
}

/// Median: the middle value, or the mean of the two middle values for an even count; NaN for
/// an empty slice.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Arithmetic mean; NaN for an empty slice.
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Diversity of one image set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Diversity {
    /// Mean pixel distance ([`rmse`]) over all unordered pairs of the images used.
    pub mean_pairwise_rmse: f64,
    /// Images used (all, or a seeded subsample of `max_images`).
    pub images_used: usize,
}

/// Mean pairwise [`rmse`] over all unordered pairs `i < j`; when the set has more than
/// `max_images` images, over a subsample of `max_images` drawn without replacement from
/// ChaCha8 seeded with `seed` on stream `stream`.
///
/// # Panics
/// When fewer than 2 images would be used.
pub fn diversity(images: &[Vec<f32>], max_images: usize, seed: u64, stream: u64) -> Diversity {
    let chosen: Vec<&Vec<f32>> = if images.len() > max_images {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        let mut idx = index::sample(&mut rng, images.len(), max_images).into_vec();
        idx.sort_unstable();
        idx.into_iter().map(|i| &images[i]).collect()
    } else {
        images.iter().collect()
    };
    let n = chosen.len();
    assert!(n >= 2, "diversity needs at least 2 images");
    let sum: f64 = (0..n)
        .into_par_iter()
        .map(|i| (i + 1..n).map(|j| rmse(chosen[i], chosen[j])).sum::<f64>())
        .sum();
    Diversity {
        mean_pairwise_rmse: sum / (n * (n - 1) / 2) as f64,
        images_used: n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rmse_and_euclidean_hand_computed() {
        assert_eq!(rmse(&[0.0; 4], &[1.0; 4]), 1.0);
        // differences 0.5, 0, 0, 0 → √(0.25/4) = 0.25
        assert!((rmse(&[0.5, 0.2, 0.3, 0.4], &[0.0, 0.2, 0.3, 0.4]) - 0.25).abs() < 1e-7);
        assert!((euclidean(&[0.0, 0.0], &[3.0, 4.0]) - 5.0).abs() < 1e-12);
        // long vectors (several chunks and a remainder)
        let a: Vec<f32> = (0..1003).map(|i| (i % 7) as f32 / 7.0).collect();
        let b: Vec<f32> = a.iter().map(|v| v + 0.1).collect();
        assert!((rmse(&a, &b) - 0.1).abs() < 1e-6);
    }

    #[test]
    fn nearest_and_leave_one_out() {
        let set = vec![vec![0.0f32], vec![0.1], vec![0.5], vec![1.0]];
        let q = vec![vec![0.45f32], vec![2.0]];
        let nn = nearest_neighbours(&q, &set, euclidean);
        assert_eq!(nn[0].index, 2);
        assert!((nn[0].distance - 0.05).abs() < 1e-6);
        assert_eq!(nn[1].index, 3);
        let loo = leave_one_out_nearest(&set, euclidean);
        let idx: Vec<usize> = loo.iter().map(|n| n.index).collect();
        assert_eq!(idx, vec![1, 0, 1, 2]);
        let d: Vec<f64> = loo.iter().map(|n| n.distance).collect();
        // 0.1, 0.1, 0.4, 0.5 → median 0.25
        assert!((median(&d) - 0.25).abs() < 1e-6);
        // ties go to the first index
        let tie = nearest_neighbours(&[vec![0.5f32]], &[vec![0.0], vec![1.0]], euclidean);
        assert_eq!(tie[0].index, 0);
    }

    #[test]
    fn median_and_mean() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(mean(&[1.0, 2.0, 6.0]), 3.0);
    }

    #[test]
    fn diversity_hand_computed_and_subsampled() {
        // black, white, black: pairs 1, 0, 1 → mean 2/3
        let s = vec![vec![0.0f32; 4], vec![1.0; 4], vec![0.0; 4]];
        let d = diversity(&s, 500, 0, 1);
        assert!((d.mean_pairwise_rmse - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(d.images_used, 3);
        let many: Vec<Vec<f32>> = (0..30).map(|i| vec![i as f32 / 30.0; 4]).collect();
        let d1 = diversity(&many, 10, 7, 1);
        assert_eq!(d1.images_used, 10);
        assert_eq!(d1, diversity(&many, 10, 7, 1));
    }
}
