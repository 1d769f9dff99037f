//! `iou_vs_labels.{png,svg}`: mean validation IoU against the labelled share, one line per
//! method (and generated-image variant), error bars ± one sample standard deviation. Shares
//! are placed at equal spacing in increasing order.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::aggregate::{GroupRow, variant_name};
use crate::error::ExperimentError;

const SIZE: (u32, u32) = (900, 560);

/// A colour per line (Tableau 10, distinguishable and readable on white).
fn colour(i: usize) -> RGBColor {
    const TABLEAU: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = TABLEAU[i % TABLEAU.len()];
    RGBColor(r, g, b)
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, rows: &[GroupRow]) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    mgcc_train::plot::ensure_font();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut shares: Vec<(String, f64)> = Vec::new();
    for r in rows {
        if !shares.iter().any(|(l, _)| *l == r.share) {
            shares.push((r.share.clone(), r.share_value));
        }
    }
    shares.sort_by(|a, b| a.1.total_cmp(&b.1));
    let x_of = |share: &str| shares.iter().position(|(l, _)| l == share).unwrap_or(0) as f64;
    let (lo, hi) =
        rows.iter()
            .filter(|r| r.iou.mean.is_finite())
            .fold((1.0f64, 0.0f64), |(lo, hi), r| {
                (
                    lo.min(r.iou.mean - r.iou.std),
                    hi.max(r.iou.mean + r.iou.std),
                )
            });
    let (lo, hi) = if lo > hi {
        (0.0, 1.0)
    } else {
        ((lo - 0.02).max(0.0), (hi + 0.02).min(1.0))
    };
    let n = shares.len().max(1) as f64;
    let labels = shares.clone();
    let mut chart = ChartBuilder::on(&root)
        .caption("Validation IoU against labelled share", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.3..(n - 0.7), lo..hi)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_labels(shares.len().max(1))
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                labels
                    .get(i as usize)
                    .map(|s| s.0.clone())
                    .unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_desc("labelled share")
        .y_desc("IoU (mean ± std)")
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| e.to_string())?;
    let mut variants: Vec<(mgcc_train::Method, bool)> = Vec::new();
    for r in rows {
        if !variants.contains(&(r.method, r.generated)) {
            variants.push((r.method, r.generated));
        }
    }
    for (i, &(method, generated)) in variants.iter().enumerate() {
        let c = colour(i);
        // Offset the lines a little so error bars do not hide each other.
        let dx = (i as f64 - (variants.len() as f64 - 1.0) / 2.0) * 0.025;
        let mut pts: Vec<(f64, f64, f64)> = rows
            .iter()
            .filter(|r| r.method == method && r.generated == generated && r.iou.mean.is_finite())
            .map(|r| (x_of(&r.share) + dx, r.iou.mean, r.iou.std))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|p| (p.0, p.1)),
                c.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(variant_name(method, generated))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3)));
        chart
            .draw_series(
                pts.iter()
                    .map(|p| ErrorBar::new_vertical(p.0, p.1 - p.2, p.1, p.1 + p.2, c.filled(), 8)),
            )
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(pts.iter().map(|p| Circle::new((p.0, p.1), 4, c.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Write the PNG (through a temporary file, renamed into place). The temporary name is unique to
/// the process and the call: several processes of one experiment finish and report at once.
pub fn write_png(path: &Path, rows: &[GroupRow]) -> Result<(), ExperimentError> {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp.{}.{call}.png", std::process::id()));
    let drawn = draw(BitMapBackend::new(&tmp, SIZE).into_drawing_area(), rows)
        .map_err(|message| ExperimentError::Plot {
            path: path.to_path_buf(),
            message,
        })
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| ExperimentError::io(path, e)));
    if drawn.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    drawn
}

/// The SVG document as text (also inlined in the HTML report).
pub fn render_svg(rows: &[GroupRow]) -> Result<String, ExperimentError> {
    let mut svg = String::new();
    draw(
        SVGBackend::with_string(&mut svg, SIZE).into_drawing_area(),
        rows,
    )
    .map_err(|message| ExperimentError::Plot {
        path: "iou_vs_labels.svg".into(),
        message,
    })?;
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writers racing on one report (the processes of an experiment finishing together) each
    /// write the PNG whole and leave no temporary file; with one shared temporary name, one
    /// writer's rename took the file from under the other (ENOENT).
    #[test]
    fn concurrent_writers_each_succeed_and_leave_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iou_vs_labels.png");
        std::thread::scope(|s| {
            let writers: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..3).try_for_each(|_| write_png(&path, &[]))))
                .collect();
            for w in writers {
                w.join().unwrap().unwrap();
            }
        });
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["iou_vs_labels.png"]);
        let png = std::fs::read(&path).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }
}
