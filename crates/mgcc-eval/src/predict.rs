//! `mgcc predict`: folder (or one file) in, one binary mask per image out, at the image's own
//! size and with its stem; optional probability maps and contour overlays.
//!
//! ```text
//! OUT/STEM.png            0/255 mask (p > 0.5)
//! OUT/probabilities/STEM.png   8-bit probability map (with --probabilities)
//! OUT/overlays/STEM.png   the image with the predicted contour in green (with --overlay)
//! ```

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use burn::prelude::Device;
use image::DynamicImage;
use mgcc_data::check::{Problem, ProblemKind};
use mgcc_data::image_io::read_image;
use mgcc_data::layout::{image_extension_rank, stem_of, unlabeled_listing};
use mgcc_data::safe_fs::{Ledger, refuse_output_over_input, save_png_atomic};
use mgcc_model::SegNet;

use crate::infer::{InferError, InputSpec, predict_image};
use crate::metrics::THRESHOLD;
use crate::overlay::{contour_overlay, mask_from_prob, probability_to_gray};

/// Options of a prediction run.
#[derive(Debug, Clone, Default)]
pub struct PredictOptions {
    pub overlay: bool,
    pub probabilities: bool,
    /// Overwrite existing outputs.
    pub force: bool,
}

/// One predicted image.
#[derive(Debug, Clone)]
pub struct Predicted {
    pub stem: String,
    pub mask: PathBuf,
    pub lesion_fraction: f64,
}

/// What [`predict`] did: the masks written, and every input it could not predict (each named
/// with the problem), in input order.
#[derive(Debug, Clone, Default)]
pub struct PredictReport {
    pub done: Vec<Predicted>,
    pub failed: Vec<Problem>,
}

/// An image to predict and its stem.
pub type Job = (PathBuf, String);

/// The images of INPUT: the file itself, or a folder's images (flat or under `images/`);
/// second files of one stem are problems (unreadable images fail when read).
pub fn input_images(input: &Path) -> Result<(Vec<Job>, Vec<Problem>), InferError> {
    if input.is_file() {
        if image_extension_rank(input).is_none() {
            return Err(InferError::file(input, "not a .png/.jpg/.jpeg/.bmp image"));
        }
        return Ok((vec![(input.to_path_buf(), stem_of(input)?)], Vec::new()));
    }
    let listing = unlabeled_listing(input)?;
    let mut failed: Vec<Problem> = Vec::new();
    let mut by_stem: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for p in listing.images {
        by_stem.entry(stem_of(&p)?).or_default().push(p);
    }
    let mut jobs = Vec::with_capacity(by_stem.len());
    for (stem, mut paths) in by_stem {
        paths.sort_by_key(|p| image_extension_rank(p));
        for other in &paths[1..] {
            failed.push(Problem::new(
                ProblemKind::DuplicateStem,
                other,
                format!(
                    "stem `{stem}` also has {}, whose mask is written as {stem}.png; this file is skipped",
                    paths[0].display()
                ),
            ));
        }
        jobs.push((paths.swap_remove(0), stem));
    }
    jobs.sort();
    Ok((jobs, failed))
}

/// Predict every image of `input` into `output`, writing each file atomically.
///
/// The output may not be, or contain, the input. Existing files are replaced only when mgcc
/// wrote them: with `force`, or without it when the invocation that wrote them did not finish
/// (see [`mgcc_data::safe_fs::ledger`]); a file mgcc did not write is never replaced. An image
/// that cannot be read is reported in [`PredictReport::failed`] and the others are predicted.
pub fn predict(
    model: &SegNet,
    spec: InputSpec,
    input: &Path,
    output: &Path,
    device: &Device,
    opts: &PredictOptions,
) -> Result<PredictReport, InferError> {
    refuse_output_over_input(output, &[input])?;
    let (jobs, mut failed) = input_images(input)?;
    let planned: Vec<PathBuf> = jobs
        .iter()
        .flat_map(|(_, stem)| output_paths(output, stem, opts))
        .collect();
    // One writer per output folder; refuse to replace anything before writing the first file.
    let _lock = mgcc_data::safe_fs::lock::lock_folder(output)?;
    let mut ledger = Ledger::open(output)?;
    ledger.claim(&planned, opts.force)?;
    let mut done = Vec::with_capacity(jobs.len());
    for (path, stem) in jobs {
        // Decoded once; a file that does not decode is named with check's message.
        match read_image(&path) {
            Ok(image) => done.push(predict_one(
                model, spec, &image, &path, stem, output, device, opts,
            )?),
            Err(e) => failed.push(Problem::from_error(&e, &path)),
        }
    }
    if failed.is_empty() {
        ledger.complete(&planned)?;
    }
    Ok(PredictReport { done, failed })
}

#[allow(clippy::too_many_arguments)]
fn predict_one(
    model: &SegNet,
    spec: InputSpec,
    image: &DynamicImage,
    path: &Path,
    stem: String,
    output: &Path,
    device: &Device,
    opts: &PredictOptions,
) -> Result<Predicted, InferError> {
    let pred = predict_image(model, spec, image, device)?;
    let mask = mask_from_prob(&pred.at_image_size, pred.width, pred.height, THRESHOLD)
        .map_err(|e| InferError::file(path, e))?;
    let paths = output_paths(output, &stem, opts);
    save_png_atomic(&paths[0], &DynamicImage::ImageLuma8(mask.clone()))?;
    let mut k = 1;
    if opts.probabilities {
        let gray = probability_to_gray(&pred.at_image_size, pred.width, pred.height)
            .map_err(|e| InferError::file(path, e))?;
        save_png_atomic(&paths[k], &DynamicImage::ImageLuma8(gray))?;
        k += 1;
    }
    if opts.overlay {
        let over = contour_overlay(image, &mask, None).map_err(|e| InferError::file(path, e))?;
        save_png_atomic(&paths[k], &DynamicImage::ImageRgb8(over))?;
    }
    let lesion = mask.as_raw().iter().filter(|&&v| v > 0).count();
    Ok(Predicted {
        stem,
        mask: paths[0].clone(),
        lesion_fraction: lesion as f64 / (pred.width as f64 * pred.height as f64),
    })
}

/// Output files of one stem, mask first.
fn output_paths(output: &Path, stem: &str, opts: &PredictOptions) -> Vec<PathBuf> {
    let name = format!("{stem}.png");
    let mut v = vec![output.join(&name)];
    if opts.probabilities {
        v.push(output.join("probabilities").join(&name));
    }
    if opts.overlay {
        v.push(output.join("overlays").join(&name));
    }
    v
}
