//! Per-image binary segmentation metrics.
//!
//! # Binarisation
//! The network outputs logits; metrics take the **sigmoid probabilities** `p` and call a
//! pixel lesion when `p > 0.5` (strictly greater, [`THRESHOLD`]). This matches the published
//! MGCC code (`output > 0.5` on sigmoid outputs); a pixel with `p == 0.5` exactly (logit 0)
//! is background. `NaN` probabilities are background (`NaN > 0.5` is false).
//!
//! # Counts and formulas
//! With predicted set `P`, ground-truth set `G`, and over all `N = width · height` pixels:
//! `TP = |P ∩ G|`, `FP = |P \ G|`, `FN = |G \ P|`, `TN = N − TP − FP − FN`.
//!
//! - IoU (Jaccard)  `= TP / (TP + FP + FN) = |P ∩ G| / |P ∪ G|`
//! - Dice (DSC)     `= 2·TP / (2·TP + FP + FN) = 2·|P ∩ G| / (|P| + |G|)`
//! - precision      `= TP / (TP + FP)`
//! - recall (sensitivity) `= TP / (TP + FN)`
//! - specificity    `= TN / (TN + FP)`
//! - accuracy       `= (TP + TN) / N`
//! - F1             `= 2 · precision · recall / (precision + recall)` (0 when both are 0);
//!   for binary masks this equals Dice whenever both are defined.
//! - HD95 (pixels)  `= max(q95(d(∂P → ∂G)), q95(d(∂G → ∂P)))`, see below.
//!
//! # Empty-mask policy
//! - `P = G = ∅`: IoU = Dice = precision = recall = F1 = 1, HD95 = 0.
//! - exactly one of `P`, `G` empty: IoU = Dice = precision = recall = F1 = 0,
//!   HD95 = the image diagonal `√(width² + height²)` (larger than any attainable distance).
//! - `P = ∅`, `G ≠ ∅`: precision = 0 (no predicted positives); `P ≠ ∅`, `G = ∅`: recall = 0.
//! - `TN + FP = 0` (the ground truth covers the whole image): specificity = 1.
//!
//! # HD95
//! The boundary `∂A` of a mask `A` is its set of pixels with at least one 4-neighbour outside
//! `A` (pixels outside the image count as outside, i.e. `A XOR erode(A)` with a 3×3 cross and
//! zero border — as medpy computes it). `d(∂A → ∂B)` is the list of Euclidean distances (in
//! pixels) from each pixel of `∂A` to the nearest pixel of `∂B`, taken from an exact Euclidean
//! distance transform (Felzenszwalb–Huttenlocher, two separable passes, `O(N)`).
//! `q95` is the 95th percentile with numpy's default *linear* interpolation: for sorted
//! values `v₀ ≤ … ≤ v_{n−1}`, `r = 0.95·(n − 1)`, `q95 = v_⌊r⌋ + (r − ⌊r⌋)·(v_⌈r⌉ − v_⌊r⌋)`.
//! The two directed percentiles are combined with `max`, as in medpy's `hd95`.
//!
//! # Compat mode (published code)
//! `iou_compat = (|P ∩ G| + 1e-5) / (|P ∪ G| + 1e-5)` and
//! `dice_compat = 2·iou_compat / (1 + iou_compat)`, with the same `p > 0.5` binarisation, so
//! numbers compare with the paper's tables. It gives exactly 1 for two empty masks and
//! `1e-5 / (|P ∪ G| + 1e-5)` (≈ 0) when exactly one is empty. Note the compat Dice is the
//! Dice *implied by* the smoothed IoU, not a separately smoothed Dice.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Probability threshold: a pixel is lesion when `p > THRESHOLD` (strict, as in the published code).
pub const THRESHOLD: f32 = 0.5;

/// Smoothing term of the published IoU (`smooth = 1e-5`).
pub const COMPAT_SMOOTH: f64 = 1e-5;

/// Errors from metric computation.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum MetricsError {
    /// A buffer does not hold `width · height` values.
    #[error("{what} has {got} values but the image is {width}x{height} ({expected} pixels)")]
    LengthMismatch {
        /// Which buffer (e.g. "prediction").
        what: &'static str,
        /// Its length.
        got: usize,
        /// `width · height`.
        expected: usize,
        /// Image width.
        width: usize,
        /// Image height.
        height: usize,
    },
    /// Width or height is zero (or their product overflows).
    #[error("invalid image size {width}x{height}")]
    InvalidSize {
        /// Image width.
        width: usize,
        /// Image height.
        height: usize,
    },
    /// A summary was requested over zero cases.
    #[error("cannot summarise metrics over zero cases")]
    NoCases,
}

/// Confusion counts of one binary prediction against its ground truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Confusion {
    /// `|P ∩ G|`.
    pub tp: u64,
    /// `|P \ G|`.
    pub fp: u64,
    /// `|G \ P|`.
    pub fn_: u64,
    /// Pixels in neither.
    pub tn: u64,
}

impl Confusion {
    /// Counts over two equally long binary masks (caller checks lengths).
    fn count(pred: &[bool], gt: &[bool]) -> Self {
        let mut c = Confusion::default();
        for (&p, &g) in pred.iter().zip(gt) {
            match (p, g) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, true) => c.fn_ += 1,
                (false, false) => c.tn += 1,
            }
        }
        c
    }
}

/// All metrics of one image. Field meanings and policies: see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SegMetrics {
    /// Jaccard index `TP / (TP + FP + FN)`.
    pub iou: f64,
    /// Dice coefficient `2TP / (2TP + FP + FN)`.
    pub dice: f64,
    /// `TP / (TP + FP)`.
    pub precision: f64,
    /// Sensitivity `TP / (TP + FN)`.
    pub recall: f64,
    /// `TN / (TN + FP)`.
    pub specificity: f64,
    /// Pixel accuracy `(TP + TN) / N`.
    pub accuracy: f64,
    /// `2PR / (P + R)`.
    pub f1: f64,
    /// 95th-percentile symmetric Hausdorff distance in pixels (medpy definition).
    pub hd95: f64,
    /// Published-code IoU `(|P∩G| + 1e-5) / (|P∪G| + 1e-5)`.
    pub iou_compat: f64,
    /// Published-code Dice `2·iou_compat / (1 + iou_compat)`.
    pub dice_compat: f64,
}

impl SegMetrics {
    /// Field names in declaration (and CSV column) order.
    pub const FIELD_NAMES: [&'static str; 10] = [
        "iou",
        "dice",
        "precision",
        "recall",
        "specificity",
        "accuracy",
        "f1",
        "hd95",
        "iou_compat",
        "dice_compat",
    ];

    /// Values in [`Self::FIELD_NAMES`] order.
    pub fn values(&self) -> [f64; 10] {
        [
            self.iou,
            self.dice,
            self.precision,
            self.recall,
            self.specificity,
            self.accuracy,
            self.f1,
            self.hd95,
            self.iou_compat,
            self.dice_compat,
        ]
    }

    /// Inverse of [`Self::values`].
    pub fn from_values(v: [f64; 10]) -> Self {
        Self {
            iou: v[0],
            dice: v[1],
            precision: v[2],
            recall: v[3],
            specificity: v[4],
            accuracy: v[5],
            f1: v[6],
            hd95: v[7],
            iou_compat: v[8],
            dice_compat: v[9],
        }
    }
}

/// Binarises a stored mask: `v > threshold` is lesion. Use `127` for 0/255 masks (equivalent
/// to the published `mask / 255 > 0.5`) and `0` for 0/1 masks.
pub fn mask_to_bool(mask: &[u8], threshold: u8) -> Vec<bool> {
    mask.iter().map(|&v| v > threshold).collect()
}

/// Binarises sigmoid probabilities with `p > THRESHOLD`.
pub fn binarize(prob: &[f32]) -> Vec<bool> {
    prob.iter().map(|&p| p > THRESHOLD).collect()
}

/// Metrics of sigmoid probabilities `prob` (row-major, `width · height`) against the binary
/// ground truth `gt`; a pixel is predicted lesion when `p > 0.5`.
pub fn compute(
    prob: &[f32],
    gt: &[bool],
    width: usize,
    height: usize,
) -> Result<SegMetrics, MetricsError> {
    check_len("prediction", prob.len(), width, height)?;
    from_binary(&binarize(prob), gt, width, height)
}

/// Metrics of a binary prediction against a binary ground truth (row-major, `width · height`).
pub fn from_binary(
    pred: &[bool],
    gt: &[bool],
    width: usize,
    height: usize,
) -> Result<SegMetrics, MetricsError> {
    check_len("prediction", pred.len(), width, height)?;
    check_len("ground truth", gt.len(), width, height)?;
    let c = Confusion::count(pred, gt);
    let n_pred = c.tp + c.fp;
    let n_gt = c.tp + c.fn_;
    let union = c.tp + c.fp + c.fn_;
    let total = (c.tp + c.fp + c.fn_ + c.tn) as f64;
    let ratio = |num: u64, den: u64, if_zero: f64| {
        if den == 0 {
            if_zero
        } else {
            num as f64 / den as f64
        }
    };
    // Both empty → 1; otherwise the ratio (exactly one empty gives TP = 0 → 0).
    let iou = ratio(c.tp, union, 1.0);
    let dice = ratio(2 * c.tp, n_pred + n_gt, 1.0);
    let both_empty = union == 0;
    let precision = ratio(c.tp, n_pred, if both_empty { 1.0 } else { 0.0 });
    let recall = ratio(c.tp, n_gt, if both_empty { 1.0 } else { 0.0 });
    let specificity = ratio(c.tn, c.tn + c.fp, 1.0);
    let accuracy = (c.tp + c.tn) as f64 / total;
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    let iou_compat = (c.tp as f64 + COMPAT_SMOOTH) / (union as f64 + COMPAT_SMOOTH);
    let dice_compat = 2.0 * iou_compat / (1.0 + iou_compat);
    let hd95 = hd95(pred, gt, n_pred == 0, n_gt == 0, width, height);
    Ok(SegMetrics {
        iou,
        dice,
        precision,
        recall,
        specificity,
        accuracy,
        f1,
        hd95,
        iou_compat,
        dice_compat,
    })
}

fn check_len(
    what: &'static str,
    got: usize,
    width: usize,
    height: usize,
) -> Result<(), MetricsError> {
    let expected = width
        .checked_mul(height)
        .filter(|&n| n > 0)
        .ok_or(MetricsError::InvalidSize { width, height })?;
    if got != expected {
        return Err(MetricsError::LengthMismatch {
            what,
            got,
            expected,
            width,
            height,
        });
    }
    Ok(())
}

/// HD95 with the empty-mask policy; lengths already checked.
fn hd95(
    pred: &[bool],
    gt: &[bool],
    pred_empty: bool,
    gt_empty: bool,
    width: usize,
    height: usize,
) -> f64 {
    match (pred_empty, gt_empty) {
        (true, true) => return 0.0,
        (true, false) | (false, true) => return (width as f64).hypot(height as f64),
        (false, false) => {}
    }
    let bp = boundary(pred, width, height);
    let bg = boundary(gt, width, height);
    let dt_to_gt = squared_edt(&bg, width, height);
    let dt_to_pred = squared_edt(&bp, width, height);
    let directed = |from: &[bool], dt: &[f64]| -> Vec<f64> {
        from.iter()
            .zip(dt)
            .filter(|(b, _)| **b)
            .map(|(_, d)| d.sqrt())
            .collect()
    };
    let mut p_to_g = directed(&bp, &dt_to_gt);
    let mut g_to_p = directed(&bg, &dt_to_pred);
    percentile_linear(&mut p_to_g, 95.0).max(percentile_linear(&mut g_to_p, 95.0))
}

/// 4-connected inner boundary: pixels of `mask` with a 4-neighbour outside the mask or the image.
pub fn boundary(mask: &[bool], width: usize, height: usize) -> Vec<bool> {
    let mut out = vec![false; mask.len()];
    for y in 0..height {
        for x in 0..width {
            let i = y * width + x;
            if !mask[i] {
                continue;
            }
            let interior = x > 0
                && x + 1 < width
                && y > 0
                && y + 1 < height
                && mask[i - 1]
                && mask[i + 1]
                && mask[i - width]
                && mask[i + width];
            out[i] = !interior;
        }
    }
    out
}

/// Exact squared Euclidean distance from every pixel to the nearest `true` seed
/// (Felzenszwalb & Huttenlocher 2012: 1-D lower envelope of parabolas along columns, then rows).
/// Pixels get `f64::INFINITY` when there is no seed.
pub fn squared_edt(seeds: &[bool], width: usize, height: usize) -> Vec<f64> {
    let mut grid: Vec<f64> = seeds
        .iter()
        .map(|&s| if s { 0.0 } else { f64::INFINITY })
        .collect();
    let mut scratch = Envelope::default();
    let mut line_in = vec![0.0; width.max(height)];
    let mut line_out = vec![0.0; width.max(height)];
    for x in 0..width {
        for y in 0..height {
            line_in[y] = grid[y * width + x];
        }
        scratch.transform(&line_in[..height], &mut line_out[..height]);
        for y in 0..height {
            grid[y * width + x] = line_out[y];
        }
    }
    for y in 0..height {
        let row = &mut grid[y * width..(y + 1) * width];
        line_in[..width].copy_from_slice(row);
        scratch.transform(&line_in[..width], row);
    }
    grid
}

/// Reusable buffers of the 1-D distance transform.
#[derive(Default)]
struct Envelope {
    /// Apex positions of the parabolas in the lower envelope.
    v: Vec<usize>,
    /// Left boundary of each parabola's interval.
    z: Vec<f64>,
}

impl Envelope {
    /// `out[q] = min_p ((q − p)² + f[p])`; infinite `f[p]` are skipped (no precision loss).
    fn transform(&mut self, f: &[f64], out: &mut [f64]) {
        self.v.clear();
        self.z.clear();
        for (q, &fq) in f.iter().enumerate() {
            if !fq.is_finite() {
                continue;
            }
            let qf = q as f64;
            loop {
                let Some(&p) = self.v.last() else {
                    self.v.push(q);
                    self.z.push(f64::NEG_INFINITY);
                    break;
                };
                let pf = p as f64;
                let s = ((fq + qf * qf) - (f[p] + pf * pf)) / (2.0 * (qf - pf));
                // `z` always has one entry per `v` entry.
                if s <= self.z[self.z.len() - 1] {
                    self.v.pop();
                    self.z.pop();
                } else {
                    self.v.push(q);
                    self.z.push(s);
                    break;
                }
            }
        }
        if self.v.is_empty() {
            out.fill(f64::INFINITY);
            return;
        }
        let mut k = 0;
        for (q, o) in out.iter_mut().enumerate() {
            let qf = q as f64;
            while k + 1 < self.v.len() && self.z[k + 1] < qf {
                k += 1;
            }
            let p = self.v[k];
            let d = qf - p as f64;
            *o = d * d + f[p];
        }
    }
}

/// Percentile `q` (0–100) with numpy's default linear interpolation; sorts `values` in place.
/// Returns `NaN` for an empty slice.
pub fn percentile_linear(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let r = q / 100.0 * (values.len() - 1) as f64;
    let lo = r.floor() as usize;
    let hi = r.ceil() as usize;
    values[lo] + (r - lo as f64) * (values[hi] - values[lo])
}

/// Mean and sample standard deviation (`ddof = 1`; 0 when `n = 1`) of every metric over `n` cases.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// Number of cases.
    pub n: usize,
    /// Per-field mean `Σxᵢ / n`.
    pub mean: SegMetrics,
    /// Per-field sample standard deviation `√(Σ(xᵢ − x̄)² / (n − 1))`.
    pub std: SegMetrics,
}

impl MetricSummary {
    /// Summarises per-case metrics; errors on an empty slice.
    pub fn from_metrics(cases: &[SegMetrics]) -> Result<Self, MetricsError> {
        let n = cases.len();
        if n == 0 {
            return Err(MetricsError::NoCases);
        }
        let mut mean = [0.0; 10];
        for c in cases {
            for (m, v) in mean.iter_mut().zip(c.values()) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut std = [0.0; 10];
        if n > 1 {
            for c in cases {
                for ((s, v), m) in std.iter_mut().zip(c.values()).zip(mean) {
                    *s += (v - m) * (v - m);
                }
            }
            std.iter_mut()
                .for_each(|s| *s = (*s / (n - 1) as f64).sqrt());
        }
        Ok(Self {
            n,
            mean: SegMetrics::from_values(mean),
            std: SegMetrics::from_values(std),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-12;

    /// Parses an ASCII mask: `#` = lesion.
    fn mask(rows: &[&str]) -> (Vec<bool>, usize, usize) {
        let w = rows[0].len();
        let m = rows
            .iter()
            .flat_map(|r| r.chars().map(|c| c == '#'))
            .collect();
        (m, w, rows.len())
    }

    fn rect(w: usize, h: usize, x0: usize, y0: usize, rw: usize, rh: usize) -> Vec<bool> {
        (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                x >= x0 && x < x0 + rw && y >= y0 && y < y0 + rh
            })
            .collect()
    }

    #[test]
    fn confusion_metrics_on_4x4() {
        // TP = 3, FP = 1, FN = 2, TN = 10.
        let (pred, w, h) = mask(&["###.", "#...", "....", "...."]);
        let (gt, ..) = mask(&["##..", "#...", "#...", "#..."]);
        let m = from_binary(&pred, &gt, w, h).unwrap();
        assert!((m.iou - 3.0 / 6.0).abs() < EPS);
        assert!((m.dice - 6.0 / 9.0).abs() < EPS);
        assert!((m.precision - 3.0 / 4.0).abs() < EPS);
        assert!((m.recall - 3.0 / 5.0).abs() < EPS);
        assert!((m.specificity - 10.0 / 11.0).abs() < EPS);
        assert!((m.accuracy - 13.0 / 16.0).abs() < EPS);
        let f1 = 2.0 * 0.75 * 0.6 / (0.75 + 0.6);
        assert!((m.f1 - f1).abs() < EPS);
        assert!(
            (m.f1 - m.dice).abs() < EPS,
            "F1 equals Dice for binary masks"
        );
        let iou_c = (3.0 + 1e-5) / (6.0 + 1e-5);
        assert!((m.iou_compat - iou_c).abs() < EPS);
        assert!((m.dice_compat - 2.0 * iou_c / (1.0 + iou_c)).abs() < EPS);
    }

    #[test]
    fn threshold_is_strict() {
        let prob = [0.5f32, 0.500_001, 0.2, f32::NAN];
        assert_eq!(binarize(&prob), vec![false, true, false, false]);
        let gt = [true, true, false, false];
        let m = compute(&prob, &gt, 2, 2).unwrap();
        // P = {1}, G = {0, 1}: TP 1, FN 1.
        assert!((m.recall - 0.5).abs() < EPS);
        assert!((m.precision - 1.0).abs() < EPS);
    }

    #[test]
    fn both_empty_policy() {
        let z = vec![false; 25];
        let m = from_binary(&z, &z, 5, 5).unwrap();
        for v in [
            m.iou,
            m.dice,
            m.precision,
            m.recall,
            m.f1,
            m.specificity,
            m.accuracy,
        ] {
            assert_eq!(v, 1.0);
        }
        assert_eq!(m.hd95, 0.0);
        assert!((m.iou_compat - 1.0).abs() < EPS);
        assert!((m.dice_compat - 1.0).abs() < EPS);
    }

    #[test]
    fn one_empty_policy() {
        let z = vec![false; 25];
        let g = rect(5, 5, 1, 1, 2, 2); // 4 pixels
        let diag = 50f64.sqrt();
        for (p, t) in [(&z, &g), (&g, &z)] {
            let m = from_binary(p, t, 5, 5).unwrap();
            for v in [m.iou, m.dice, m.precision, m.recall, m.f1] {
                assert_eq!(v, 0.0);
            }
            assert!((m.hd95 - diag).abs() < EPS);
            assert!((m.iou_compat - 1e-5 / (4.0 + 1e-5)).abs() < EPS);
            assert!(m.dice_compat < 1e-5);
        }
        // Empty prediction: specificity 1; empty GT: 21 TN of 25 negatives.
        assert_eq!(from_binary(&z, &g, 5, 5).unwrap().specificity, 1.0);
        let m = from_binary(&g, &z, 5, 5).unwrap();
        assert!((m.specificity - 21.0 / 25.0).abs() < EPS);
    }

    #[test]
    fn full_gt_specificity_is_one() {
        let full = vec![true; 9];
        let m = from_binary(&full, &full, 3, 3).unwrap();
        assert_eq!(m.specificity, 1.0);
        assert_eq!(m.iou, 1.0);
        assert_eq!(m.hd95, 0.0);
    }

    #[test]
    fn hd95_identical_is_zero() {
        let a = rect(20, 20, 3, 4, 9, 7);
        assert_eq!(from_binary(&a, &a, 20, 20).unwrap().hd95, 0.0);
    }

    #[test]
    fn hd95_square_shifted_by_3() {
        let (w, h) = (24, 20);
        let a = rect(w, h, 2, 5, 10, 10);
        let b = rect(w, h, 5, 5, 10, 10);
        let m = from_binary(&a, &b, w, h).unwrap();
        assert!((m.hd95 - 3.0).abs() < EPS, "hd95 = {}", m.hd95);
        let b = rect(w, h, 2, 8, 10, 10);
        let m = from_binary(&a, &b, w, h).unwrap();
        assert!((m.hd95 - 3.0).abs() < EPS, "vertical hd95 = {}", m.hd95);
    }

    #[test]
    fn hd95_single_pixels_3_4_5() {
        let (w, h) = (10, 10);
        let a = rect(w, h, 1, 1, 1, 1);
        let b = rect(w, h, 4, 5, 1, 1);
        assert!((from_binary(&a, &b, w, h).unwrap().hd95 - 5.0).abs() < EPS);
    }

    #[test]
    fn hd95_is_max_of_directed_percentiles() {
        // A: 1 pixel at x=0. B: pixels at x=0 and x=8 (row image 9x1).
        // d(A→B) = [0]; d(B→A) = [0, 8] → q95 = 0.95·8 = 7.6.
        let a: Vec<bool> = (0..9).map(|x| x == 0).collect();
        let b: Vec<bool> = (0..9).map(|x| x == 0 || x == 8).collect();
        let m = from_binary(&a, &b, 9, 1).unwrap();
        assert!((m.hd95 - 7.6).abs() < EPS, "hd95 = {}", m.hd95);
    }

    #[test]
    fn percentile_matches_numpy_linear() {
        let mut v = vec![4.0, 0.0, 3.0, 1.0, 2.0];
        assert!((percentile_linear(&mut v, 95.0) - 3.8).abs() < EPS);
        assert!((percentile_linear(&mut v, 50.0) - 2.0).abs() < EPS);
        assert_eq!(percentile_linear(&mut [7.0], 95.0), 7.0);
        assert!(percentile_linear(&mut [], 95.0).is_nan());
    }

    #[test]
    fn boundary_of_square() {
        let a = rect(5, 5, 0, 0, 4, 4);
        let b = boundary(&a, 5, 5);
        // 4x4 square at the image corner: 12 boundary pixels, 4 interior.
        assert_eq!(b.iter().filter(|&&x| x).count(), 12);
        assert!(!b[5 + 1] && !b[2 * 5 + 2]);
        assert!(b[0] && b[3] && b[3 * 5 + 3]);
    }

    #[test]
    fn edt_matches_brute_force() {
        // Deterministic pseudo-random seeds (LCG), several shapes.
        let mut state = 12345u64;
        for &(w, h, density) in &[
            (13usize, 9usize, 10u64),
            (1, 17, 5),
            (31, 2, 20),
            (16, 16, 2),
        ] {
            let seeds: Vec<bool> = (0..w * h)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (state >> 33) % 100 < density
                })
                .collect();
            let dt = squared_edt(&seeds, w, h);
            for (i, &d) in dt.iter().enumerate() {
                let (x, y) = ((i % w) as f64, (i / w) as f64);
                let brute = (0..w * h)
                    .filter(|&j| seeds[j])
                    .map(|j| {
                        let (sx, sy) = ((j % w) as f64, (j / w) as f64);
                        (x - sx).powi(2) + (y - sy).powi(2)
                    })
                    .fold(f64::INFINITY, f64::min);
                assert_eq!(d, brute, "pixel {i} of {w}x{h}");
            }
        }
        assert!(
            squared_edt(&[false; 6], 3, 2)
                .iter()
                .all(|d| d.is_infinite())
        );
    }

    #[test]
    fn hd95_matches_brute_force_on_random_blobs() {
        let (w, h) = (23usize, 17usize);
        let disc = |cx: f64, cy: f64, r: f64| -> Vec<bool> {
            (0..w * h)
                .map(|i| {
                    let (x, y) = ((i % w) as f64, (i / w) as f64);
                    (x - cx).powi(2) + (y - cy).powi(2) <= r * r
                })
                .collect()
        };
        let brute_directed = |a: &[bool], b: &[bool]| -> Vec<f64> {
            let (ba, bb) = (boundary(a, w, h), boundary(b, w, h));
            (0..w * h)
                .filter(|&i| ba[i])
                .map(|i| {
                    (0..w * h)
                        .filter(|&j| bb[j])
                        .map(|j| {
                            let dx = (i % w) as f64 - (j % w) as f64;
                            let dy = (i / w) as f64 - (j / w) as f64;
                            dx.hypot(dy)
                        })
                        .fold(f64::INFINITY, f64::min)
                })
                .collect()
        };
        for (a, b) in [
            (disc(8.0, 8.0, 5.0), disc(12.5, 9.0, 6.5)),
            (disc(4.0, 4.0, 3.0), disc(18.0, 12.0, 2.0)),
            (disc(11.0, 8.0, 7.0), disc(11.0, 8.0, 3.0)),
        ] {
            let want = percentile_linear(&mut brute_directed(&a, &b), 95.0)
                .max(percentile_linear(&mut brute_directed(&b, &a), 95.0));
            let got = from_binary(&a, &b, w, h).unwrap().hd95;
            assert!((got - want).abs() < EPS, "got {got}, want {want}");
            assert!(got > 0.0);
        }
    }

    #[test]
    fn length_and_size_errors() {
        assert!(matches!(
            compute(&[0.0; 5], &[false; 4], 2, 2),
            Err(MetricsError::LengthMismatch {
                what: "prediction",
                ..
            })
        ));
        assert!(matches!(
            from_binary(&[false; 4], &[false; 3], 2, 2),
            Err(MetricsError::LengthMismatch {
                what: "ground truth",
                ..
            })
        ));
        assert!(matches!(
            from_binary(&[], &[], 0, 3),
            Err(MetricsError::InvalidSize { .. })
        ));
    }

    #[test]
    fn mask_to_bool_thresholds() {
        assert_eq!(
            mask_to_bool(&[0, 1, 127, 128, 255], 127),
            [false, false, false, true, true]
        );
        assert_eq!(mask_to_bool(&[0, 1], 0), [false, true]);
    }

    fn with_iou(iou: f64, hd95: f64) -> SegMetrics {
        let mut v = [0.5; 10];
        v[0] = iou;
        v[7] = hd95;
        SegMetrics::from_values(v)
    }

    #[test]
    fn summary_mean_and_sample_std() {
        let cases = [with_iou(0.2, 1.0), with_iou(0.4, 2.0), with_iou(0.9, 6.0)];
        let s = MetricSummary::from_metrics(&cases).unwrap();
        assert_eq!(s.n, 3);
        assert!((s.mean.iou - 0.5).abs() < EPS);
        // deviations -0.3, -0.1, 0.4 → Σ² = 0.26, /2 = 0.13.
        assert!((s.std.iou - 0.13f64.sqrt()).abs() < EPS);
        assert!((s.mean.hd95 - 3.0).abs() < EPS);
        // deviations -2, -1, 3 → Σ² = 14, /2 = 7.
        assert!((s.std.hd95 - 7f64.sqrt()).abs() < EPS);
        assert_eq!(s.std.dice, 0.0);
        let one = MetricSummary::from_metrics(&cases[..1]).unwrap();
        assert_eq!(one.std.iou, 0.0);
        assert_eq!(one.mean.iou, 0.2);
        assert_eq!(MetricSummary::from_metrics(&[]), Err(MetricsError::NoCases));
    }

    #[test]
    fn values_round_trip() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(SegMetrics::from_values(v).values(), v);
        assert_eq!(SegMetrics::from_values(v).hd95, 8.0);
    }
}
