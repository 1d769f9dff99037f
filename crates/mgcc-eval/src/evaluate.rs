//! `mgcc evaluate`: metrics of a trained model on labelled images, per case and summarised.
//!
//! By default metrics are computed at each image's own resolution (the probability map is
//! resized back bilinearly, then thresholded), as a clinician would read the mask. With
//! `at_train_size` they are computed on the S×S grid with the mask resized by nearest
//! neighbour, as the published code does, for comparison with the paper.

use std::path::{Path, PathBuf};

use burn::prelude::Device;
use mgcc_data::check::Problem;
use mgcc_data::mask::{binarize, read_mask_levels};
use mgcc_data::safe_fs::save_png_atomic;
use mgcc_data::transform::resize_mask;
use mgcc_data::validate::sample_problems;
use mgcc_data::{Sample, image_io::read_image};
use mgcc_model::SegNet;
use serde_json::Value;

use crate::infer::{InferError, InputSpec, predict_image};
use crate::metrics::{self, MetricSummary};
use crate::overlay::mask_from_prob;
use crate::report::{CaseMetrics, write_cases_csv, write_summary_json};

/// Options of an evaluation.
#[derive(Debug, Clone, Default)]
pub struct EvalOptions {
    /// Compute metrics on the training grid (published protocol) instead of the image's own size.
    pub at_train_size: bool,
    /// Write each predicted mask (0/255 PNG at the image's size) into this folder.
    pub save_masks: Option<PathBuf>,
}

/// Evaluate `model` on `samples`; returns per-case metrics in the order given. The first bad
/// file (see [`evaluate_each`]) is an error.
pub fn evaluate(
    model: &SegNet,
    spec: InputSpec,
    samples: &[Sample],
    device: &Device,
    opts: &EvalOptions,
) -> Result<Vec<CaseMetrics>, InferError> {
    let (cases, failed) = evaluate_each(model, spec, samples, device, opts)?;
    match failed.into_iter().next() {
        Some(p) => Err(InferError::file(&p.path, p.message)),
        None => Ok(cases),
    }
}

/// Evaluate every sample that passes the checks of `mgcc check` (image and mask decode, same
/// size, binary mask); the others are returned as problems, with check's message, in order.
pub fn evaluate_each(
    model: &SegNet,
    spec: InputSpec,
    samples: &[Sample],
    device: &Device,
    opts: &EvalOptions,
) -> Result<(Vec<CaseMetrics>, Vec<Problem>), InferError> {
    if let Some(dir) = &opts.save_masks {
        std::fs::create_dir_all(dir).map_err(|e| InferError::file(dir, e))?;
    }
    let mut out = Vec::with_capacity(samples.len());
    let mut failed = Vec::new();
    for sample in samples {
        let problems = sample_problems(sample);
        if !problems.is_empty() {
            failed.extend(problems);
            continue;
        }
        let image = read_image(&sample.image)?;
        let levels = read_mask_levels(&sample.mask)?;
        let pred = predict_image(model, spec, &image, device)?;
        let m = if opts.at_train_size {
            let s = spec.size;
            let gt: Vec<bool> = resize_mask(&binarize(&levels), s as u32)
                .iter()
                .map(|&v| v > 0)
                .collect();
            metrics::compute(&pred.at_train_size, &gt, s, s)
        } else {
            let gt: Vec<bool> = binarize(&levels).as_raw().iter().map(|&v| v > 0).collect();
            metrics::compute(
                &pred.at_image_size,
                &gt,
                pred.width as usize,
                pred.height as usize,
            )
        }
        .map_err(|e| InferError::file(&sample.image, e))?;
        if let Some(dir) = &opts.save_masks {
            let path = dir.join(format!("{}.png", sample.stem));
            let mask = mask_from_prob(
                &pred.at_image_size,
                pred.width,
                pred.height,
                metrics::THRESHOLD,
            )
            .map_err(|e| InferError::file(&path, e))?;
            save_png_atomic(&path, &image::DynamicImage::ImageLuma8(mask))?;
        }
        out.push(CaseMetrics {
            case: sample.stem.clone(),
            metrics: m,
        });
    }
    Ok((out, failed))
}

/// Write `cases.csv` and `summary.json` into `dir`; returns the summary.
pub fn write_reports(
    dir: &Path,
    cases: &[CaseMetrics],
    meta: Value,
) -> Result<MetricSummary, InferError> {
    std::fs::create_dir_all(dir).map_err(|e| InferError::file(dir, e))?;
    let per_case: Vec<_> = cases.iter().map(|c| c.metrics).collect();
    let summary =
        MetricSummary::from_metrics(&per_case).map_err(|e| InferError::Other(e.to_string()))?;
    let csv = dir.join("cases.csv");
    write_cases_csv(&csv, cases).map_err(|e| InferError::file(&csv, e))?;
    let json = dir.join("summary.json");
    write_summary_json(&json, &summary, meta).map_err(|e| InferError::file(&json, e))?;
    Ok(summary)
}
