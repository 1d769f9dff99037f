//! Geometric augmentation applied identically to an image and its mask: a rotation by k·90°
//! (counter-clockwise, as `np.rot90`) followed by a flip, on square S×S planes.
//!
//! Destination pixel (x, y) reads source pixel `source(x, y)`: undo the flip
//! (horizontal: x ← S−1−x, vertical: y ← S−1−y), then undo k rotations, each
//! `(x, y) ← (S−1−y, x)` (one CCW turn maps source (x, y) to (y, S−1−x)).

use rand::Rng;

use crate::seeding::{Stream, derived_rng};

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

    /// The augmentation of batch slot `slot` at iteration `iteration` (pure in its arguments).
    pub fn for_slot(seed: u64, iteration: u64, slot: u64) -> Self {
        Self::random(&mut derived_rng(seed, Stream::Augment, iteration, slot))
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
    fn for_slot_is_pure_and_covers_all() {
        assert_eq!(Augment::for_slot(5, 10, 2), Augment::for_slot(5, 10, 2));
        let mut seen = std::collections::HashSet::new();
        for t in 0..200 {
            seen.insert(Augment::for_slot(5, t, 0));
        }
        assert_eq!(seen.len(), 16, "all 4×4 combinations are drawn");
    }
}
