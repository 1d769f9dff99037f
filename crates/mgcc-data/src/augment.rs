//! Geometric augmentation applied identically to an image and its mask: a rotation by k·90°
//! (counter-clockwise, as `np.rot90`) followed by a flip, on square S×S planes.
//!
//! Destination pixel (x, y) reads source pixel `source(x, y)`: undo the flip
//! (horizontal: x ← S−1−x, vertical: y ← S−1−y), then undo k rotations, each
//! `(x, y) ← (S−1−y, x)` (one CCW turn maps source (x, y) to (y, S−1−x)).

use rand::Rng;

use crate::seeding::{Stream, derived_rng};

/// How the loader draws each slot's [`Augment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AugmentPolicy {
    /// No augmentation.
    None,
    /// mgcc's default: k ∈ {0,1,2,3} and flip ∈ {none, h, v, both}, each uniform (all 8
    /// elements of the square's symmetry group, each with probability 1/8).
    #[default]
    Dihedral,
    /// The published MGCC code's albumentations pipeline: `RandomRotate90(p = 0.5)` (k uniform
    /// in {0,1,2,3}), then `Flip(p = 0.5)` (`d` uniform in {−1, 0, 1}: both axes, vertical,
    /// horizontal), independently.
    Albumentations,
}

/// Mirror applied after the rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flip {
    None,
    /// Left–right (x ← S−1−x).
    Horizontal,
    /// Top–bottom (y ← S−1−y).
    Vertical,
    /// Both, i.e. a 180° turn.
    Both,
}

/// One geometric transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Augment {
    /// Counter-clockwise quarter turns, 0..=3.
    pub rot90: u8,
    pub flip: Flip,
}

impl Augment {
    /// No change.
    pub const IDENTITY: Augment = Augment {
        rot90: 0,
        flip: Flip::None,
    };

    /// k ∈ {0,1,2,3} and flip ∈ {none, h, v, both}, each uniform.
    pub fn random<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let rot90 = rng.random_range(0..4u8);
        let flip = match rng.random_range(0..4u8) {
            0 => Flip::None,
            1 => Flip::Horizontal,
            2 => Flip::Vertical,
            _ => Flip::Both,
        };
        Augment { rot90, flip }
    }

    /// albumentations' `RandomRotate90(p=0.5)` then `Flip(p=0.5)`.
    pub fn random_albumentations<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let rot90 = if rng.random_bool(0.5) {
            rng.random_range(0..4u8)
        } else {
            0
        };
        let flip = if rng.random_bool(0.5) {
            match rng.random_range(0..3u8) {
                0 => Flip::Both,     // d = −1
                1 => Flip::Vertical, // d = 0: cv2.flip around the x axis
                _ => Flip::Horizontal,
            }
        } else {
            Flip::None
        };
        Augment { rot90, flip }
    }

    /// The augmentation of batch slot `slot` at iteration `iteration` (pure in its arguments).
    pub fn for_slot(seed: u64, iteration: u64, slot: u64) -> Self {
        Self::for_slot_with(AugmentPolicy::Dihedral, seed, iteration, slot)
    }

    /// [`for_slot`](Self::for_slot) under `policy`.
    pub fn for_slot_with(policy: AugmentPolicy, seed: u64, iteration: u64, slot: u64) -> Self {
        let mut rng = derived_rng(seed, Stream::Augment, iteration, slot);
        match policy {
            AugmentPolicy::None => Self::IDENTITY,
            AugmentPolicy::Dihedral => Self::random(&mut rng),
            AugmentPolicy::Albumentations => Self::random_albumentations(&mut rng),
        }
    }

    /// Whether the transform leaves every square image as it is (a 180° turn followed by a
    /// flip of both axes is one).
    pub fn is_identity(&self) -> bool {
        let grid: Vec<u8> = (0..9).collect();
        self.apply(&grid, 3, 1) == grid
    }

    /// Source coordinates of destination pixel (x, y) in an S×S plane.
    #[inline]
    pub fn source(&self, mut x: usize, mut y: usize, size: usize) -> (usize, usize) {
        let m = size - 1;
        match self.flip {
            Flip::None => {}
            Flip::Horizontal => x = m - x,
            Flip::Vertical => y = m - y,
            Flip::Both => (x, y) = (m - x, m - y),
        }
        for _ in 0..self.rot90 {
            (x, y) = (m - y, x);
        }
        (x, y)
    }

    /// Transform an interleaved S×S image with `channels` values per pixel.
    pub fn apply<T: Copy>(&self, src: &[T], size: usize, channels: usize) -> Vec<T> {
        if *self == Self::IDENTITY {
            return src.to_vec();
        }
        let mut out = Vec::with_capacity(src.len());
        for y in 0..size {
            for x in 0..size {
                let (sx, sy) = self.source(x, y, size);
                let i = (sy * size + sx) * channels;
                out.extend_from_slice(&src[i..i + channels]);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Row-major 3×3 with values 0..9.
    fn grid() -> Vec<u8> {
        (0..9).collect()
    }

    #[test]
    fn rot90_matches_numpy() {
        // np.rot90([[0,1,2],[3,4,5],[6,7,8]]) = [[2,5,8],[1,4,7],[0,3,6]]
        let a = Augment {
            rot90: 1,
            flip: Flip::None,
        };
        assert_eq!(a.apply(&grid(), 3, 1), vec![2, 5, 8, 1, 4, 7, 0, 3, 6]);
        let a2 = Augment {
            rot90: 2,
            flip: Flip::None,
        };
        assert_eq!(a2.apply(&grid(), 3, 1), vec![8, 7, 6, 5, 4, 3, 2, 1, 0]);
        let both = Augment {
            rot90: 0,
            flip: Flip::Both,
        };
        assert_eq!(both.apply(&grid(), 3, 1), a2.apply(&grid(), 3, 1));
    }

    #[test]
    fn flips_after_rotation() {
        let h = Augment {
            rot90: 0,
            flip: Flip::Horizontal,
        };
        assert_eq!(h.apply(&grid(), 3, 1), vec![2, 1, 0, 5, 4, 3, 8, 7, 6]);
        let v = Augment {
            rot90: 0,
            flip: Flip::Vertical,
        };
        assert_eq!(v.apply(&grid(), 3, 1), vec![6, 7, 8, 3, 4, 5, 0, 1, 2]);
        // rot90 then horizontal flip = transpose.
        let t = Augment {
            rot90: 1,
            flip: Flip::Horizontal,
        };
        assert_eq!(t.apply(&grid(), 3, 1), vec![8, 5, 2, 7, 4, 1, 6, 3, 0]);
    }

    #[test]
    fn interleaved_channels_move_together() {
        let src: Vec<u8> = (0..12).collect(); // 2×2 × 3 channels
        let a = Augment {
            rot90: 1,
            flip: Flip::None,
        };
        assert_eq!(
            a.apply(&src, 2, 3),
            vec![3, 4, 5, 9, 10, 11, 0, 1, 2, 6, 7, 8]
        );
    }

    #[test]
    fn albumentations_policy_matches_its_distribution() {
        // Over many draws: P(rotation applied) = 1/2 with k uniform, P(flip) = 1/2 with d
        // uniform over 3; identity = (1/2 + 1/2·1/4)·1/2 (neither changes anything) plus
        // 1/2·1/4·1/2·1/3 (k = 2 then both axes, also the identity) = 0.3125 + 0.0208 = 1/3.
        let n = 30_000u64;
        let (mut rotated, mut flipped, mut unchanged, mut untouched) = (0, 0, 0, 0);
        let mut counts = std::collections::HashMap::new();
        for t in 0..n {
            let a = Augment::for_slot_with(AugmentPolicy::Albumentations, 3, t, 0);
            rotated += u64::from(a.rot90 != 0);
            flipped += u64::from(a.flip != Flip::None);
            untouched += u64::from(a == Augment::IDENTITY);
            unchanged += u64::from(a.is_identity());
            *counts.entry(a).or_insert(0u64) += 1;
        }
        let share = |k: u64| k as f64 / n as f64;
        // Standard deviation of a share near 1/3 over 30 000 draws ≈ 0.0027.
        assert!(
            (share(rotated) - 0.375).abs() < 0.012,
            "rotated {}",
            share(rotated)
        );
        assert!(
            (share(flipped) - 0.5).abs() < 0.012,
            "flipped {}",
            share(flipped)
        );
        assert!(
            (share(untouched) - 0.3125).abs() < 0.012,
            "untouched {}",
            share(untouched)
        );
        assert!(
            (share(unchanged) - 1.0 / 3.0).abs() < 0.012,
            "unchanged {}",
            share(unchanged)
        );
        // k = 1, both axes: (1/2·1/4)·(1/2·1/3) = 1/48.
        let k1_both = counts[&Augment {
            rot90: 1,
            flip: Flip::Both,
        }];
        assert!((share(k1_both) - 1.0 / 48.0).abs() < 0.004);
        // The default policy is uniform over 16 (rot, flip) pairs: identity 2/16.
        let dihedral_identity = (0..n)
            .filter(|&t| Augment::for_slot(3, t, 0).is_identity())
            .count() as u64;
        assert!((share(dihedral_identity) - 0.125).abs() < 0.012);
        assert_eq!(
            Augment::for_slot_with(AugmentPolicy::None, 3, 7, 0),
            Augment::IDENTITY
        );
    }

    #[test]
    fn for_slot_is_pure_and_covers_all() {
        assert_eq!(Augment::for_slot(5, 10, 2), Augment::for_slot(5, 10, 2));
        let mut seen = std::collections::HashSet::new();
        for t in 0..200 {
            seen.insert(Augment::for_slot(5, t, 0));
        }
        assert_eq!(seen.len(), 16, "all 4×4 combinations are drawn");
    }
}
