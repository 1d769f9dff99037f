//! `mgcc predict`: folder (or one file) in, one binary mask per image out, at the image's own
//! size and with its stem; optional probability maps and contour overlays.
//!
//! ```text
//! OUT/STEM.png            0/255 mask (p > 0.5)
//! OUT/probabilities/STEM.png   8-bit probability map (with --probabilities)
//! OUT/overlays/STEM.png   the image with the predicted contour in green (with --overlay)
//! ```

use std::path::{Path, PathBuf};

use burn::prelude::Device;
use mgcc_data::image_io::read_image;
use mgcc_data::layout::{image_extension_rank, stem_of};
use mgcc_data::unlabeled_images;
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

/// The images of INPUT: the file itself, or a folder's images (flat or under `images/`).
pub fn input_images(input: &Path) -> Result<Vec<PathBuf>, InferError> {
    if input.is_file() {
        if image_extension_rank(input).is_none() {
            return Err(InferError::file(input, "not a .png/.jpg/.jpeg/.bmp image"));
        }
        return Ok(vec![input.to_path_buf()]);
    }
    Ok(unlabeled_images(input)?)
}

/// Predict every image of `input` into `output`.
pub fn predict(
    model: &SegNet,
    spec: InputSpec,
    input: &Path,
    output: &Path,
    device: &Device,
    opts: &PredictOptions,
) -> Result<Vec<Predicted>, InferError> {
    let images = input_images(input)?;
    let jobs: Vec<(PathBuf, String)> = images
        .into_iter()
        .map(|p| stem_of(&p).map(|s| (p, s)))
        .collect::<Result<_, _>>()?;
    // Refuse to overwrite anything before writing the first file.
    if !opts.force {
        for (_, stem) in &jobs {
            for path in output_paths(output, stem, opts) {
                if path.exists() {
                    return Err(InferError::Exists { path });
                }
            }
        }
    }
    for sub in ["probabilities", "overlays"] {
        let want =
            (sub == "probabilities" && opts.probabilities) || (sub == "overlays" && opts.overlay);
        if want {
            let dir = output.join(sub);
            std::fs::create_dir_all(&dir).map_err(|e| InferError::file(&dir, e))?;
        }
    }
    std::fs::create_dir_all(output).map_err(|e| InferError::file(output, e))?;
    let mut done = Vec::with_capacity(jobs.len());
    for (path, stem) in jobs {
        let image = read_image(&path)?;
        let pred = predict_image(model, spec, &image, device)?;
        let mask = mask_from_prob(&pred.at_image_size, pred.width, pred.height, THRESHOLD)
            .map_err(|e| InferError::file(&path, e))?;
        let paths = output_paths(output, &stem, opts);
        mask.save(&paths[0])
            .map_err(|e| InferError::file(&paths[0], e))?;
        let mut k = 1;
        if opts.probabilities {
            let gray = probability_to_gray(&pred.at_image_size, pred.width, pred.height)
                .map_err(|e| InferError::file(&path, e))?;
            gray.save(&paths[k])
                .map_err(|e| InferError::file(&paths[k], e))?;
            k += 1;
        }
        if opts.overlay {
            let over =
                contour_overlay(&image, &mask, None).map_err(|e| InferError::file(&path, e))?;
            over.save(&paths[k])
                .map_err(|e| InferError::file(&paths[k], e))?;
        }
        let lesion = mask.as_raw().iter().filter(|&&v| v > 0).count();
        done.push(Predicted {
            stem,
            mask: paths[0].clone(),
            lesion_fraction: lesion as f64 / (pred.width as f64 * pred.height as f64),
        });
    }
    Ok(done)
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
