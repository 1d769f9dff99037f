//! `mgcc experiment report EXP`: from every finished run's evaluation (`eval/cases.csv`),
//! writes `EXP/results.csv`, `EXP/results.md`, `EXP/iou_vs_labels.{png,svg}` and the
//! self-contained `EXP/report.html`. A partial experiment reports what is finished and lists
//! what is missing.

pub mod aggregate;
pub mod html;
pub mod markdown;
pub mod plot;

use std::path::{Path, PathBuf};

use mgcc_eval::report::read_cases_csv;

use crate::error::ExperimentError;
use crate::fsutil::write_atomic;
use crate::plan::Plan;
use crate::runner::{RunState, run_dir, run_state};
use aggregate::{RunScore, Scores};

/// The finished runs of a plan, and the others with their state.
#[derive(Debug, Default)]
pub struct Collected {
    pub finished: Vec<RunScore>,
    /// (run name, "failed: …" / "partial" / "not started").
    pub missing: Vec<(String, String)>,
}

/// Read every finished run's per-case metrics.
pub fn collect(exp: &Path, plan: &Plan) -> Result<Collected, ExperimentError> {
    let mut out = Collected::default();
    for run in &plan.runs {
        match run_state(exp, run) {
            RunState::Finished => {
                let cases = read_cases_csv(&run_dir(exp, run).join("eval").join("cases.csv"))?;
                out.finished.push(RunScore {
                    name: run.name.clone(),
                    method: run.method,
                    share: run.share.label.clone(),
                    share_value: run.share.value,
                    split: run.split,
                    seed: run.seed,
                    generated: run.generated,
                    n_cases: cases.len(),
                    scores: Scores::of_cases(&cases),
                });
            }
            RunState::Failed(e) => out.missing.push((run.name.clone(), format!("failed: {e}"))),
            RunState::Partial => out.missing.push((run.name.clone(), "partial".into())),
            RunState::Pending => out.missing.push((run.name.clone(), "not started".into())),
        }
    }
    Ok(out)
}

/// `results.csv`: one row per finished run and metric set (`documented`: IoU, Dice,
/// precision, recall, HD95 as in docs/metrics.md; `compat`: the published code's IoU/Dice).
pub fn results_csv(runs: &[RunScore]) -> String {
    let mut s = String::from(
        "run,method,share,split,seed,generated,metric_set,n_cases,iou,dice,precision,recall,hd95\n",
    );
    for r in runs {
        let head = format!(
            "{},{},{},{},{},{}",
            r.name, r.method, r.share, r.split, r.seed, r.generated
        );
        let c = &r.scores;
        s.push_str(&format!(
            "{head},documented,{},{},{},{},{},{}\n",
            r.n_cases, c.iou, c.dice, c.precision, c.recall, c.hd95
        ));
        s.push_str(&format!(
            "{head},compat,{},{},{},,,\n",
            r.n_cases, c.iou_compat, c.dice_compat
        ));
    }
    s
}

/// The files a report writes.
#[derive(Debug)]
pub struct ReportFiles {
    pub csv: PathBuf,
    pub markdown: PathBuf,
    pub png: PathBuf,
    pub svg: PathBuf,
    pub html: PathBuf,
    pub finished: usize,
    pub missing: usize,
}

/// Write every report file of `exp`.
pub fn write(exp: &Path, plan: &Plan) -> Result<ReportFiles, ExperimentError> {
    let collected = collect(exp, plan)?;
    let order = &plan.spec.methods;
    let files = ReportFiles {
        csv: exp.join("results.csv"),
        markdown: exp.join("results.md"),
        png: exp.join("iou_vs_labels.png"),
        svg: exp.join("iou_vs_labels.svg"),
        html: exp.join("report.html"),
        finished: collected.finished.len(),
        missing: collected.missing.len(),
    };
    write_atomic(&files.csv, results_csv(&collected.finished).as_bytes())?;
    let md = markdown::render(plan, &collected, order);
    write_atomic(&files.markdown, md.as_bytes())?;
    let groups = aggregate::group_rows(&collected.finished, order);
    plot::write_png(&files.png, &groups)?;
    let svg = plot::render_svg(&groups)?;
    write_atomic(&files.svg, svg.as_bytes())?;
    let page = html::render(exp, plan, &collected, order, &svg)?;
    write_atomic(&files.html, page.as_bytes())?;
    Ok(files)
}
