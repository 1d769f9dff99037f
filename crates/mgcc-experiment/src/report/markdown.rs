//! `results.md`: the comparison tables as the paper prints them.

use mgcc_train::Method;

use super::Collected;
use super::aggregate::{GroupRow, MeanStd, PairedRow, group_rows, paired_rows, variant_name};
use crate::plan::Plan;

/// `0.8123 ± 0.0120`.
pub fn fmt_ms(m: &MeanStd, digits: usize) -> String {
    if m.mean.is_nan() {
        return "—".into();
    }
    format!("{:.digits$} ± {:.digits$}", m.mean, m.std)
}

/// `+0.0123 ± 0.0045`.
pub fn fmt_diff(m: &MeanStd) -> String {
    format!("{:+.4} ± {:.4}", m.mean, m.std)
}

/// For each row, which of (IoU, Dice, HD95) is the best of its share: highest IoU and Dice,
/// lowest HD95.
pub fn best_marks(rows: &[GroupRow]) -> Vec<[bool; 3]> {
    rows.iter()
        .map(|r| {
            let same: Vec<&GroupRow> = rows.iter().filter(|o| o.share == r.share).collect();
            let max = |f: fn(&GroupRow) -> f64| same.iter().map(|o| f(o)).fold(f64::MIN, f64::max);
            let min = |f: fn(&GroupRow) -> f64| same.iter().map(|o| f(o)).fold(f64::MAX, f64::min);
            [
                r.iou.mean == max(|o| o.iou.mean),
                r.dice.mean == max(|o| o.dice.mean),
                r.hd95.mean == min(|o| o.hd95.mean),
            ]
        })
        .collect()
}

/// The whole `results.md`.
pub fn render(plan: &Plan, collected: &Collected, order: &[Method]) -> String {
    let runs = &collected.finished;
    let rows = group_rows(runs, order);
    let marks = best_marks(&rows);
    let mut s = String::new();
    s.push_str("# Results\n\n");
    s.push_str(&format!(
        "{} of {} planned runs finished. Scores are the mean over each run's validation images \
         (documented metric definitions, docs/metrics.md), then mean ± sample std over the \
         runs (splits × seeds) of each row; **bold** is the best of its share.\n\n",
        runs.len(),
        plan.runs.len()
    ));
    s.push_str(
        "| labelled | method | runs | IoU | Dice | HD95 (px) |\n|---|---|---|---|---|---|\n",
    );
    for (r, m) in rows.iter().zip(&marks) {
        let cell = |v: String, best: bool| if best { format!("**{v}**") } else { v };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.share,
            variant_name(r.method, r.generated),
            r.iou.n,
            cell(fmt_ms(&r.iou, 4), m[0]),
            cell(fmt_ms(&r.dice, 4), m[1]),
            cell(fmt_ms(&r.hd95, 2), m[2]),
        ));
    }
    let paired = paired_rows(runs, order);
    if !paired.is_empty() {
        s.push_str(
            "\n## Paired differences against supervised\n\n\
             Each run minus the `supervised` run of the same share, split and seed.\n\n\
             | labelled | method | ΔIoU | ΔDice | improved |\n|---|---|---|---|---|\n",
        );
        for p in &paired {
            s.push_str(&paired_line(p));
        }
    }
    if !collected.missing.is_empty() {
        s.push_str(&format!(
            "\n## Missing ({} runs)\n\n",
            collected.missing.len()
        ));
        for (name, state) in &collected.missing {
            s.push_str(&format!("- `{name}`: {}\n", one_line(state)));
        }
    }
    s
}

fn paired_line(p: &PairedRow) -> String {
    format!(
        "| {} | {} | {} | {} | {}/{} |\n",
        p.share,
        variant_name(p.method, p.generated),
        fmt_diff(&p.iou_diff),
        fmt_diff(&p.dice_diff),
        p.improved,
        p.pairs
    )
}

/// The first line of a message (errors can span several).
pub fn one_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::aggregate::tests::synthetic;

    #[test]
    fn the_best_of_each_share_is_marked_per_column() {
        let rows = group_rows(&synthetic(), &[Method::Supervised, Method::Mgcc]);
        let marks = best_marks(&rows);
        // 1/8: mgcc best in IoU, Dice and HD95; 1/4: mgcc IoU 0.6867 > 0.65, HD95 8 < 9.
        assert_eq!(marks, vec![[false; 3], [true; 3], [false; 3], [true; 3]]);
    }
}
