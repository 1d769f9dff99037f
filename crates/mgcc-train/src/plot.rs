//! `progress.png`: losses, validation IoU/Dice and learning rate against iterations.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::error::TrainError;
use crate::history::Row;

/// DejaVu Sans, bundled so plots have text without system fonts (licence beside the file).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Register the bundled font with plotters (once per process); call before drawing text.
pub fn ensure_font() {
    REGISTER.call_once(|| {
        // Registration fails only for a malformed font, which the bundled one is not.
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Draw three stacked panels into `path` (PNG, 1000×900).
pub fn draw_progress(path: &Path, rows: &[Row]) -> Result<(), TrainError> {
    ensure_font();
    let err = |e: &dyn std::fmt::Display| TrainError::Plot {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let tmp = path.with_extension("png.tmp.png");
    {
        let root = BitMapBackend::new(&tmp, (1000, 900)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let panels = root.split_evenly((3, 1));
        let max_it = rows.last().map(|r| r.iteration).unwrap_or(1).max(1) as f64;

        let series = |f: &dyn Fn(&Row) -> Option<f64>| -> Vec<(f64, f64)> {
            rows.iter()
                .filter_map(|r| {
                    f(r).filter(|v| v.is_finite())
                        .map(|v| (r.iteration as f64, v))
                })
                .collect()
        };
        let sup = series(&|r| Some(r.sup_loss));
        let cons = series(&|r| Some(r.cons_loss * r.cons_weight));
        let iou = series(&|r| r.val.map(|v| v.iou));
        let dice = series(&|r| r.val.map(|v| v.dice));
        let lr = series(&|r| Some(r.lr));

        let ymax = |s: &[&[(f64, f64)]]| {
            s.iter()
                .flat_map(|v| v.iter().map(|p| p.1))
                .fold(0.0f64, f64::max)
                .max(1e-9)
                * 1.05
        };

        // Losses.
        let mut chart = ChartBuilder::on(&panels[0])
            .caption("training losses", ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..max_it, 0.0..ymax(&[&sup, &cons]))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("iteration")
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(LineSeries::new(smooth(&sup), &BLUE))
            .map_err(|e| err(&e))?
            .label("supervised (smoothed)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
        chart
            .draw_series(LineSeries::new(smooth(&cons), &RED))
            .map_err(|e| err(&e))?
            .label("weight x consistency (smoothed)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;

        // Validation.
        let mut chart = ChartBuilder::on(&panels[1])
            .caption("validation", ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..max_it, 0.0..1.0)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("iteration")
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(LineSeries::new(iou.clone(), &GREEN))
            .map_err(|e| err(&e))?
            .label("IoU")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN));
        chart
            .draw_series(iou.iter().map(|p| Circle::new(*p, 3, GREEN.filled())))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(LineSeries::new(dice, &MAGENTA))
            .map_err(|e| err(&e))?
            .label("Dice")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], MAGENTA));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;

        // Learning rate.
        let mut chart = ChartBuilder::on(&panels[2])
            .caption("learning rate", ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..max_it, 0.0..ymax(&[&lr]))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("iteration")
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(LineSeries::new(lr, &BLACK))
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| TrainError::io(path, e))?;
    Ok(())
}

/// Exponential moving average (α = 0.05) so that noisy per-iteration losses stay readable.
fn smooth(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len());
    let mut acc: Option<f64> = None;
    for &(x, y) in points {
        let v = match acc {
            None => y,
            Some(a) => 0.95 * a + 0.05 * y,
        };
        acc = Some(v);
        out.push((x, v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::ValRow;

    #[test]
    fn writes_a_png_of_the_stated_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("progress.png");
        let rows: Vec<Row> = (1..=20)
            .map(|i| Row {
                iteration: i,
                lr: 0.01 * (1.0 - i as f64 / 21.0),
                sup_loss: 1.0 / i as f64,
                cons_loss: 0.1,
                cons_weight: 0.5,
                val: (i % 5 == 0).then_some(ValRow {
                    iou: i as f64 / 25.0,
                    dice: i as f64 / 22.0,
                    iou_compat: 0.0,
                    dice_compat: 0.0,
                    precision: 0.0,
                    recall: 0.0,
                    hd95: 0.0,
                }),
            })
            .collect();
        draw_progress(&path, &rows).unwrap();
        let img = image::open(&path).unwrap();
        assert_eq!((img.width(), img.height()), (1000, 900));
    }

    #[test]
    fn smoothing_starts_at_the_first_value() {
        let s = smooth(&[(0.0, 1.0), (1.0, 0.0)]);
        assert_eq!(s[0].1, 1.0);
        assert!((s[1].1 - 0.95).abs() < 1e-12);
    }
}
