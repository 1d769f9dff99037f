//! Aggregating finished runs: per-run means over cases, then mean ± sample standard
//! deviation over splits and seeds per (method, share, variant), and paired per-split
//! differences against `supervised`.
//!
//! - a run's score is the mean over its validation cases of each metric (documented
//!   definitions, and the published code's compat IoU/Dice);
//! - a group's `mean ± std` is over its runs, `std` the sample standard deviation (n − 1
//!   denominator; 0 for a single run);
//! - a paired difference compares a run with the `supervised` run of the same share, split and
//!   seed: `d = score(method) − score(supervised)`; reported as the mean and sample std of `d`
//!   and how many pairs improved (`d > 0`).

use mgcc_eval::report::CaseMetrics;
use mgcc_train::Method;

/// Metrics reported per run.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Scores {
    pub iou: f64,
    pub dice: f64,
    pub precision: f64,
    pub recall: f64,
    pub hd95: f64,
    pub iou_compat: f64,
    pub dice_compat: f64,
}

impl Scores {
    /// Mean over cases of each metric.
    pub fn of_cases(cases: &[CaseMetrics]) -> Scores {
        let n = cases.len().max(1) as f64;
        let sum = |f: fn(&CaseMetrics) -> f64| cases.iter().map(f).sum::<f64>() / n;
        Scores {
            iou: sum(|c| c.metrics.iou),
            dice: sum(|c| c.metrics.dice),
            precision: sum(|c| c.metrics.precision),
            recall: sum(|c| c.metrics.recall),
            hd95: sum(|c| c.metrics.hd95),
            iou_compat: sum(|c| c.metrics.iou_compat),
            dice_compat: sum(|c| c.metrics.dice_compat),
        }
    }
}

/// One finished run and its scores.
#[derive(Debug, Clone, PartialEq)]
pub struct RunScore {
    pub name: String,
    pub method: Method,
    /// Share label (`1/8`) and value.
    pub share: String,
    pub share_value: f64,
    pub split: usize,
    pub seed: u64,
    pub generated: bool,
    pub n_cases: usize,
    pub scores: Scores,
}

/// `mean ± std` of a list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanStd {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

/// Mean and sample standard deviation (0 for fewer than two values).
pub fn mean_std(values: &[f64]) -> MeanStd {
    let n = values.len();
    if n == 0 {
        return MeanStd {
            mean: f64::NAN,
            std: f64::NAN,
            n,
        };
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let std = if n < 2 {
        0.0
    } else {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    };
    MeanStd { mean, std, n }
}

/// A row of the main table: one method at one share (with or without generated images).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    pub method: Method,
    pub generated: bool,
    pub share: String,
    pub share_value: f64,
    pub iou: MeanStd,
    pub dice: MeanStd,
    pub hd95: MeanStd,
}

/// A row of the paired-difference table.
#[derive(Debug, Clone, PartialEq)]
pub struct PairedRow {
    pub method: Method,
    pub generated: bool,
    pub share: String,
    /// IoU difference to supervised, per pair.
    pub iou_diff: MeanStd,
    pub dice_diff: MeanStd,
    pub improved: usize,
    pub pairs: usize,
}

/// The (method, generated) variants in table order: methods as first seen in `order`, the
/// plain variant before the generated one.
fn variants(runs: &[RunScore], order: &[Method]) -> Vec<(Method, bool)> {
    let mut out = Vec::new();
    for &m in order {
        for generated in [false, true] {
            if runs
                .iter()
                .any(|r| r.method == m && r.generated == generated)
            {
                out.push((m, generated));
            }
        }
    }
    out
}

/// Shares in increasing order, by label.
fn shares(runs: &[RunScore]) -> Vec<(String, f64)> {
    let mut s: Vec<(String, f64)> = Vec::new();
    for r in runs {
        if !s.iter().any(|(l, _)| *l == r.share) {
            s.push((r.share.clone(), r.share_value));
        }
    }
    s.sort_by(|a, b| a.1.total_cmp(&b.1));
    s
}

/// Mean ± std per (share, method variant), shares ascending, methods in `order`.
pub fn group_rows(runs: &[RunScore], order: &[Method]) -> Vec<GroupRow> {
    let mut rows = Vec::new();
    for (share, value) in shares(runs) {
        for (method, generated) in variants(runs, order) {
            let group: Vec<&RunScore> = runs
                .iter()
                .filter(|r| r.share == share && r.method == method && r.generated == generated)
                .collect();
            if group.is_empty() {
                continue;
            }
            let of = |f: fn(&Scores) -> f64| {
                mean_std(&group.iter().map(|r| f(&r.scores)).collect::<Vec<_>>())
            };
            rows.push(GroupRow {
                method,
                generated,
                share: share.clone(),
                share_value: value,
                iou: of(|s| s.iou),
                dice: of(|s| s.dice),
                hd95: of(|s| s.hd95),
            });
        }
    }
    rows
}

/// Paired differences against supervised runs of the same share, split and seed.
pub fn paired_rows(runs: &[RunScore], order: &[Method]) -> Vec<PairedRow> {
    let mut rows = Vec::new();
    for (share, _) in shares(runs) {
        for (method, generated) in variants(runs, order) {
            if method == Method::Supervised {
                continue;
            }
            let mut iou = Vec::new();
            let mut dice = Vec::new();
            for r in runs
                .iter()
                .filter(|r| r.share == share && r.method == method && r.generated == generated)
            {
                if let Some(base) = runs.iter().find(|b| {
                    b.method == Method::Supervised
                        && b.share == share
                        && b.split == r.split
                        && b.seed == r.seed
                }) {
                    iou.push(r.scores.iou - base.scores.iou);
                    dice.push(r.scores.dice - base.scores.dice);
                }
            }
            if iou.is_empty() {
                continue;
            }
            rows.push(PairedRow {
                method,
                generated,
                share: share.clone(),
                improved: iou.iter().filter(|d| **d > 0.0).count(),
                pairs: iou.len(),
                iou_diff: mean_std(&iou),
                dice_diff: mean_std(&dice),
            });
        }
    }
    rows
}

/// A method variant's display name: `mgcc`, `mgcc + generated`.
pub fn variant_name(method: Method, generated: bool) -> String {
    if generated {
        format!("{method} + generated")
    } else {
        method.to_string()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn run(method: Method, share: &str, split: usize, iou: f64, hd95: f64) -> RunScore {
        RunScore {
            name: format!("{method}_{share}_split{split}"),
            method,
            share: share.into(),
            share_value: share.parse::<crate::share::Share>().unwrap().value,
            split,
            seed: 41,
            generated: false,
            n_cases: 10,
            scores: Scores {
                iou,
                dice: 2.0 * iou / (1.0 + iou),
                hd95,
                ..Default::default()
            },
        }
    }

    pub(crate) fn synthetic() -> Vec<RunScore> {
        vec![
            run(Method::Supervised, "1/4", 1, 0.60, 10.0),
            run(Method::Supervised, "1/4", 2, 0.70, 8.0),
            run(Method::Supervised, "1/4", 3, 0.65, 9.0),
            run(Method::Mgcc, "1/4", 1, 0.66, 9.0),
            run(Method::Mgcc, "1/4", 2, 0.69, 7.0),
            run(Method::Mgcc, "1/4", 3, 0.71, 8.0),
            run(Method::Supervised, "1/8", 1, 0.50, 12.0),
            run(Method::Mgcc, "1/8", 1, 0.55, 11.0),
        ]
    }

    #[test]
    fn sample_std_and_edge_cases() {
        let m = mean_std(&[0.60, 0.70, 0.65]);
        assert!((m.mean - 0.65).abs() < 1e-12);
        // Deviations −0.05, 0.05, 0: Σd² = 0.005, /(3 − 1) = 0.0025, √ = 0.05.
        assert!((m.std - 0.05).abs() < 1e-12);
        assert_eq!(mean_std(&[0.3]).std, 0.0);
        assert!(mean_std(&[]).mean.is_nan());
    }

    #[test]
    fn groups_and_paired_differences_match_hand_computation() {
        let order = [Method::Supervised, Method::Mgcc];
        let rows = group_rows(&synthetic(), &order);
        // Shares ascending: 1/8 first.
        let labels: Vec<(String, Method)> =
            rows.iter().map(|r| (r.share.clone(), r.method)).collect();
        assert_eq!(
            labels,
            vec![
                ("1/8".into(), Method::Supervised),
                ("1/8".into(), Method::Mgcc),
                ("1/4".into(), Method::Supervised),
                ("1/4".into(), Method::Mgcc)
            ]
        );
        let mgcc = &rows[3];
        // IoU 0.66, 0.69, 0.71: mean 0.6867, deviations −0.0267, 0.0033, 0.0233,
        // Σd² = 0.0012667, /2, √ = 0.025166.
        assert!((mgcc.iou.mean - 2.06 / 3.0).abs() < 1e-12);
        assert!((mgcc.iou.std - 0.025166114784235836).abs() < 1e-9);
        assert_eq!(mgcc.hd95.mean, 8.0);
        let paired = paired_rows(&synthetic(), &order);
        assert_eq!(paired.len(), 2);
        let p = &paired[1];
        // d = 0.06, −0.01, 0.06: mean 0.036667, std √((0.0233² + 0.0467² + 0.0233²)/2) = 0.040415.
        assert_eq!((p.share.as_str(), p.improved, p.pairs), ("1/4", 2, 3));
        assert!((p.iou_diff.mean - 0.11 / 3.0).abs() < 1e-12);
        assert!((p.iou_diff.std - 0.04041451884327381).abs() < 1e-9);
        assert_eq!((paired[0].improved, paired[0].pairs), (1, 1));
        assert_eq!(paired[0].iou_diff.std, 0.0);
    }
}
