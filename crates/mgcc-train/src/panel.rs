//! The validation panel written at each validation: image | prediction | ground truth for the
//! first few validation cases, at the training size.

use std::path::Path;

use image::GrayImage;
use mgcc_data::transform::{IMAGENET_MEAN, IMAGENET_STD};
use mgcc_data::{Channels, EvalSample};
use mgcc_eval::overlay::{mask_from_prob, panel};

use crate::error::TrainError;

/// Undo the input normalisation of the first channel for display.
fn display_image(s: &EvalSample, channels: Channels) -> GrayImage {
    let (mean, std) = match channels {
        Channels::Three => (IMAGENET_MEAN[0], IMAGENET_STD[0]),
        Channels::One => (0.5, 0.5),
    };
    let plane = &s.image[..s.size * s.size];
    let data = plane
        .iter()
        .map(|&v| ((v * std + mean).clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    GrayImage::from_raw(s.size as u32, s.size as u32, data).unwrap_or_default()
}

/// Write the panel of the first `cases` samples (with their probability maps) to `path`.
pub fn write_val_panel(
    path: &Path,
    samples: &[EvalSample],
    probs: &[Vec<f32>],
    cases: usize,
    channels: Channels,
) -> Result<(), TrainError> {
    let plot_err = |m: String| TrainError::Plot {
        path: path.to_path_buf(),
        message: m,
    };
    let mut rows = Vec::new();
    for (s, p) in samples.iter().zip(probs).take(cases) {
        let side = s.size as u32;
        let pred = mask_from_prob(p, side, side, 0.5).map_err(|e| plot_err(e.to_string()))?;
        let gt_data = s
            .mask
            .iter()
            .map(|&v| if v > 0.5 { 255 } else { 0 })
            .collect();
        let gt = GrayImage::from_raw(side, side, gt_data).unwrap_or_default();
        rows.push((display_image(s, channels), pred, gt));
    }
    if rows.is_empty() {
        return Ok(());
    }
    let img = panel(&rows).map_err(|e| plot_err(e.to_string()))?;
    img.save(path).map_err(|e| plot_err(e.to_string()))
}
