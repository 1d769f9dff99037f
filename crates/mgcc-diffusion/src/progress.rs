//! `progress.png` of the generation-stage runs: stacked panels of named series against
//! iterations (bundled font from mgcc-train, so no system fonts are needed).

use std::path::Path;

use plotters::prelude::*;

use crate::error::LdmError;

/// One panel: a title and `(label, points)` series; optionally a log-scaled y axis.
pub struct Panel<'a> {
    pub title: &'a str,
    pub series: Vec<(&'a str, Vec<(f64, f64)>)>,
    pub log_y: bool,
}

const COLORS: [RGBColor; 4] = [BLUE, RED, GREEN, MAGENTA];

/// Draw the panels stacked into a 1000-px-wide PNG, written atomically.
pub fn draw(path: &Path, panels: &[Panel]) -> Result<(), LdmError> {
    mgcc_train::plot::ensure_font();
    let err = |e: &dyn std::fmt::Display| LdmError::Image {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let tmp = path.with_extension("tmp.png");
    {
        let root =
            BitMapBackend::new(&tmp, (1000, 300 * panels.len().max(1) as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let areas = root.split_evenly((panels.len().max(1), 1));
        for (panel, area) in panels.iter().zip(areas.iter()) {
            let pts = panel.series.iter().flat_map(|s| s.1.iter());
            let (mut x1, mut y0, mut y1) = (1.0f64, f64::MAX, f64::MIN);
            for &(x, y) in pts {
                let y = if panel.log_y { y.max(1e-12).log10() } else { y };
                x1 = x1.max(x);
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
            if y0 > y1 {
                (y0, y1) = (0.0, 1.0);
            }
            let pad = ((y1 - y0) * 0.05).max(1e-9);
            let mut chart = ChartBuilder::on(area)
                .caption(
                    if panel.log_y {
                        format!("{} (log10)", panel.title)
                    } else {
                        panel.title.to_string()
                    },
                    ("sans-serif", 18),
                )
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..x1, (y0 - pad)..(y1 + pad))
                .map_err(|e| err(&e))?;
            chart
                .configure_mesh()
                .x_desc("iteration")
                .draw()
                .map_err(|e| err(&e))?;
            for (i, (label, points)) in panel.series.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                let pts: Vec<(f64, f64)> = points
                    .iter()
                    .map(|&(x, y)| (x, if panel.log_y { y.max(1e-12).log10() } else { y }))
                    .collect();
                chart
                    .draw_series(LineSeries::new(pts, &color))
                    .map_err(|e| err(&e))?
                    .label(*label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| LdmError::io(path, e))
}
