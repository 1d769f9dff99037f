//! The images a generation-stage model trains on, held in memory as gray `S×S` planes in
//! `[−1, 1]` (`v/127.5 − 1`; colour sources are converted to luma), with their classes.
//!
//! Source: a dataset in the MGCC layout (`DATA/images/…`, classes from its manifest when there
//! is one), restricted to the train list of a split when one is named (so validation images
//! never reach the generator), or any folder of images (no classes).
//!
//! Batches are a pure function of (seed, iteration): position `p = t·B + j` takes image
//! `perm_e[p mod n]` of the seeded permutation of epoch `e = ⌊p/n⌋`, and a horizontal flip
//! drawn from the step's stream (ultrasound images are not flipped vertically: depth runs down).
//! So a resumed run sees exactly the batches of an uninterrupted one.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use image::imageops::FilterType;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::error::LdmError;

/// Where the images come from.
#[derive(Debug, Clone)]
pub struct ImageSource<'a> {
    pub data: &'a Path,
    /// Train list of split K (`NAME_train{K}.txt`), when given.
    pub split: Option<usize>,
    pub split_name: Option<&'a str>,
}

/// Loaded images.
#[derive(Debug, Clone)]
pub struct ImageSet {
    pub size: usize,
    pub paths: Vec<PathBuf>,
    /// Class per image, when the dataset has a manifest.
    pub classes: Vec<Option<String>>,
    /// Gray planes `S×S`, row-major, in `[−1, 1]`.
    pub pixels: Vec<Vec<f32>>,
}

/// Read one image file as a gray `size×size` plane in `[−1, 1]`.
pub fn load_gray(path: &Path, size: u32) -> Result<Vec<f32>, LdmError> {
    let img = mgcc_data::image_io::read_image(path)?;
    let small = img.to_luma8();
    let small = image::imageops::resize(&small, size, size, FilterType::Triangle);
    Ok(small
        .as_raw()
        .iter()
        .map(|&v| v as f32 / 127.5 - 1.0)
        .collect())
}

impl ImageSet {
    /// Load the images of `source` at `size×size`.
    pub fn load(source: &ImageSource, size: u32) -> Result<Self, LdmError> {
        let (paths, classes) = list(source)?;
        if paths.is_empty() {
            return Err(LdmError::Invalid(format!(
                "{}: no images to train on",
                source.data.display()
            )));
        }
        // Every image is read; all that fail are reported together, as `mgcc check` words them.
        let loaded: Vec<Result<Vec<f32>, LdmError>> =
            paths.par_iter().map(|p| load_gray(p, size)).collect();
        let mut pixels = Vec::with_capacity(loaded.len());
        let mut problems = Vec::new();
        for (r, path) in loaded.into_iter().zip(&paths) {
            match r {
                Ok(p) => pixels.push(p),
                Err(LdmError::Data(e)) => problems.push(mgcc_data::Problem::from_error(&e, path)),
                Err(e) => return Err(e),
            }
        }
        if !problems.is_empty() {
            return Err(mgcc_data::DataError::Invalid { problems }.into());
        }
        Ok(Self {
            size: size as usize,
            paths,
            classes,
            pixels,
        })
    }

    pub fn len(&self) -> usize {
        self.pixels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }

    /// Sorted distinct class names (empty without a manifest).
    pub fn class_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.classes.iter().flatten().cloned().collect();
        names.sort();
        names.dedup();
        names
    }

    /// Split off the last `k` images of a seeded shuffle (held back for validation).
    pub fn hold_out(mut self, k: usize, seed: u64) -> (Self, Self) {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x686f_6c64));
        let keep = self.len().saturating_sub(k);
        let take = |set: &mut Self, idx: &[usize]| Self {
            size: set.size,
            paths: idx.iter().map(|&i| set.paths[i].clone()).collect(),
            classes: idx.iter().map(|&i| set.classes[i].clone()).collect(),
            pixels: idx
                .iter()
                .map(|&i| std::mem::take(&mut set.pixels[i]))
                .collect(),
        };
        let held = take(&mut self, &order[keep..]);
        let train = take(&mut self, &order[..keep]);
        (train, held)
    }

    /// Indices and flips of batch `t` (see the module docs).
    pub fn batch_plan(&self, seed: u64, t: usize, batch: usize, flip: bool) -> Vec<(usize, bool)> {
        let n = self.len();
        let mut step_rng =
            ChaCha8Rng::seed_from_u64(mgcc_train::trainer::step_seed(seed ^ 0xf11b, t));
        let mut perm_epoch = usize::MAX;
        let mut perm: Vec<usize> = Vec::new();
        (0..batch)
            .map(|j| {
                let p = t * batch + j;
                let epoch = p / n;
                if epoch != perm_epoch {
                    perm = (0..n).collect();
                    perm.shuffle(&mut ChaCha8Rng::seed_from_u64(
                        mgcc_train::trainer::step_seed(seed ^ 0xe90c, epoch),
                    ));
                    perm_epoch = epoch;
                }
                (perm[p % n], flip && step_rng.random_bool(0.5))
            })
            .collect()
    }

    /// Tensor `[B, channels, S, S]` of the planned images (gray replicated over channels).
    pub fn tensor(&self, plan: &[(usize, bool)], channels: usize, device: &Device) -> Tensor<4> {
        let s = self.size;
        let mut data = Vec::with_capacity(plan.len() * channels * s * s);
        for &(i, flip) in plan {
            let img = &self.pixels[i];
            let plane: Vec<f32> = if flip {
                (0..s * s)
                    .map(|k| img[(k / s) * s + (s - 1 - k % s)])
                    .collect()
            } else {
                img.clone()
            };
            for _ in 0..channels {
                data.extend_from_slice(&plane);
            }
        }
        Tensor::from_data(TensorData::new(data, [plan.len(), channels, s, s]), device)
    }
}

fn list(source: &ImageSource) -> Result<(Vec<PathBuf>, Vec<Option<String>>), LdmError> {
    // Images alone (a flat folder, or images/ without masks/) are enough to learn to generate.
    let labelled = source.data.join("images").is_dir() && source.data.join("masks").is_dir();
    if !labelled {
        if source.split.is_some() {
            return Err(LdmError::Invalid(format!(
                "{}: --split needs a dataset in the MGCC layout (images/, masks/0/, split files)",
                source.data.display()
            )));
        }
        let paths = mgcc_data::unlabeled_images(source.data)?;
        let n = paths.len();
        return Ok((paths, vec![None; n]));
    }
    let data = mgcc_data::Dataset::open(source.data)?;
    let stems = match source.split {
        Some(k) => mgcc_data::read_split(source.data, source.split_name, k)?.0,
        None => data.stems(),
    };
    let samples = data.select(&stems)?;
    let classes = stems
        .iter()
        .map(|s| data.class_of(s).map(str::to_string))
        .collect();
    Ok((samples.into_iter().map(|s| s.image).collect(), classes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> ImageSet {
        ImageSet {
            size: 2,
            paths: (0..n).map(|i| PathBuf::from(format!("{i}.png"))).collect(),
            classes: vec![None; n],
            pixels: (0..n).map(|i| vec![i as f32, 0.0, 0.0, 1.0]).collect(),
        }
    }

    #[test]
    fn each_epoch_visits_every_image_once_and_plans_are_reproducible() {
        let s = set(5);
        let mut seen: Vec<usize> = (0..5)
            .flat_map(|t| s.batch_plan(7, t, 2, false))
            .map(|p| p.0)
            .collect();
        assert_eq!(s.batch_plan(7, 3, 2, true), s.batch_plan(7, 3, 2, true));
        seen.truncate(10);
        let mut first: Vec<usize> = seen[..5].to_vec();
        first.sort();
        assert_eq!(first, vec![0, 1, 2, 3, 4]);
        let mut second: Vec<usize> = seen[5..].to_vec();
        second.sort();
        assert_eq!(second, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn flip_mirrors_columns_and_channels_replicate() {
        let s = set(1);
        let t: Vec<f32> = s
            .tensor(&[(0, true)], 3, &Device::flex())
            .into_data()
            .try_to_vec()
            .unwrap();
        // [[0, 0], [0, 1]] mirrored → [[0, 0], [1, 0]], three times.
        assert_eq!(t, [0.0, 0.0, 1.0, 0.0].repeat(3));
    }

    #[test]
    fn hold_out_is_disjoint_and_seeded() {
        let (a, b) = set(10).hold_out(3, 1);
        assert_eq!((a.len(), b.len()), (7, 3));
        let mut all: Vec<_> = a.paths.iter().chain(&b.paths).cloned().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 10);
        let (_, b2) = set(10).hold_out(3, 1);
        assert_eq!(b.paths, b2.paths);
    }
}
