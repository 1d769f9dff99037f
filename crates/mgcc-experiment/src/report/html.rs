//! `report.html`: one self-contained page (images embedded as data URIs, the plot inline as
//! SVG, no script, no network) with the tables, the plot, and each finished run's training
//! curves and overlays of its best and worst validation cases. Readable on a phone (fluid
//! width, tables scroll sideways) and in print (runs are not split across pages).

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mgcc_train::Method;

use super::Collected;
use super::aggregate::{group_rows, paired_rows, variant_name};
use super::markdown::{best_marks, fmt_diff, fmt_ms, one_line};
use crate::error::ExperimentError;
use crate::plan::Plan;

/// Escape text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An image file re-encoded as JPEG (quality 82) at most `max_width` pixels wide. Downscaled
/// plots have many colours and ultrasound speckle is noise: both compress poorly as PNG (a
/// 640-px training-curve plot ~280 KB as PNG against ~90 KB, a 128² overlay ~40 KB against
/// ~10 KB), and dozens of runs must stay a page a phone can open.
fn thumbnail(path: &Path, max_width: u32) -> Option<Vec<u8>> {
    let img = image::open(path).ok()?;
    let img = if img.width() > max_width {
        let h = (img.height() as u64 * max_width as u64 / img.width() as u64).max(1) as u32;
        img.resize_exact(max_width, h, image::imageops::FilterType::Triangle)
    } else {
        img
    };
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 82)
        .encode_image(&img.to_rgb8())
        .ok()?;
    Some(out)
}

/// An image file as an `<img>` with a data URI (downscaled to `max_width`), or a note when it
/// is missing.
fn image(path: &Path, alt: &str, max_width: u32) -> String {
    match thumbnail(path, max_width) {
        Some(bytes) => format!(
            "<img alt=\"{}\" src=\"data:image/jpeg;base64,{}\">",
            escape(alt),
            STANDARD.encode(bytes)
        ),
        None => format!("<p class=\"note\">({} not found)</p>", escape(alt)),
    }
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1100px;padding:0 12px 40px;color:#1b1b1b;line-height:1.45}
h1{font-size:1.5em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}h3{font-size:1.05em;margin-bottom:.3em}
.scroll{overflow-x:auto}table{border-collapse:collapse;font-variant-numeric:tabular-nums;min-width:100%}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;white-space:nowrap}th{background:#f2f2f2}
td.l,th.l{text-align:left}img,svg{max-width:100%;height:auto}.note{color:#666;font-size:.9em}
.pair{display:flex;flex-wrap:wrap;gap:8px}.pair figure{margin:0;flex:1 1 240px}.pair figcaption{font-size:.85em;color:#444}
.run{border-top:1px solid #eee;padding-top:6px}
@media print{body{max-width:none}.run{break-inside:avoid}a{color:inherit}}
";

/// The whole page.
pub fn render(
    exp: &Path,
    plan: &Plan,
    collected: &Collected,
    order: &[Method],
    svg: &str,
) -> Result<String, ExperimentError> {
    let runs = &collected.finished;
    let spec = &plan.spec;
    let base = &spec.base;
    let mut h = String::new();
    h.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>mgcc experiment {}</title><style>{STYLE}</style></head><body>\n",
        escape(&exp.display().to_string())
    ));
    h.push_str(&format!(
        "<h1>Experiment <code>{}</code></h1>\n<p>{} of {} planned runs finished. Data <code>{}</code>; \
         methods {}; labelled shares {}; splits {}; seeds {}; backbone {}, protocol {}, \
         {}² inputs, {} iterations.</p>\n",
        escape(&exp.display().to_string()),
        runs.len(),
        plan.runs.len(),
        escape(&spec.data.display().to_string()),
        escape(&spec.methods.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(", ")),
        escape(&spec.labeled.iter().map(|s| s.label.clone()).collect::<Vec<_>>().join(", ")),
        escape(&spec.splits.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")),
        escape(&spec.seeds.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")),
        base.backbone.name(),
        base.protocol.name(),
        base.size,
        base.iterations
            .map_or("40000 × share".to_string(), |n| n.to_string()),
    ));

    // Main table.
    let rows = group_rows(runs, order);
    let marks = best_marks(&rows);
    h.push_str(
        "<h2>Results</h2>\n<p class=\"note\">Mean over each run's validation images, then mean ± \
         sample std over the runs (splits × seeds) of a row; <strong>bold</strong>: best of its share.</p>\n\
         <div class=\"scroll\"><table><thead><tr><th class=\"l\">labelled</th><th class=\"l\">method</th>\
         <th>runs</th><th>IoU</th><th>Dice</th><th>HD95 (px)</th></tr></thead><tbody>\n",
    );
    for (r, m) in rows.iter().zip(&marks) {
        let cell = |v: String, best: bool| {
            if best {
                format!("<td><strong>{v}</strong></td>")
            } else {
                format!("<td>{v}</td>")
            }
        };
        h.push_str(&format!(
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td>{}{}{}</tr>\n",
            escape(&r.share),
            escape(&variant_name(r.method, r.generated)),
            r.iou.n,
            cell(fmt_ms(&r.iou, 4), m[0]),
            cell(fmt_ms(&r.dice, 4), m[1]),
            cell(fmt_ms(&r.hd95, 2), m[2]),
        ));
    }
    h.push_str("</tbody></table></div>\n");

    let paired = paired_rows(runs, order);
    if !paired.is_empty() {
        h.push_str(
            "<h2>Paired differences against supervised</h2>\n<p class=\"note\">Each run minus \
             the supervised run of the same share, split and seed.</p>\n<div class=\"scroll\"><table>\
             <thead><tr><th class=\"l\">labelled</th><th class=\"l\">method</th><th>ΔIoU</th>\
             <th>ΔDice</th><th>improved</th></tr></thead><tbody>\n",
        );
        for p in &paired {
            h.push_str(&format!(
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}/{}</td></tr>\n",
                escape(&p.share),
                escape(&variant_name(p.method, p.generated)),
                fmt_diff(&p.iou_diff),
                fmt_diff(&p.dice_diff),
                p.improved,
                p.pairs
            ));
        }
        h.push_str("</tbody></table></div>\n");
    }

    h.push_str("<h2>IoU against labelled share</h2>\n<div class=\"plot\">");
    let svg_start = svg.find("<svg").unwrap_or(0);
    h.push_str(&svg[svg_start..]);
    h.push_str("</div>\n");

    if !collected.missing.is_empty() {
        h.push_str(&format!(
            "<h2>Missing ({} runs)</h2>\n<ul>\n",
            collected.missing.len()
        ));
        for (name, state) in &collected.missing {
            h.push_str(&format!(
                "<li><code>{}</code>: {}</li>\n",
                escape(name),
                escape(&one_line(state))
            ));
        }
        h.push_str("</ul>\n");
    }

    h.push_str("<h2>Runs</h2>\n");
    for r in runs {
        let run = plan
            .runs
            .iter()
            .find(|p| p.name == r.name)
            .expect("finished runs come from the plan");
        let dir = crate::plan::Plan::run_dir(exp, run);
        let overlays = dir.join("eval").join("overlays");
        let caption = |which: &str| {
            let note =
                std::fs::read_to_string(overlays.join(format!("{which}.txt"))).unwrap_or_default();
            let mut parts = note.trim().split('\t');
            let case = parts.next().unwrap_or("").to_string();
            let iou = parts.next().unwrap_or("").to_string();
            format!(
                "{which} case <code>{}</code>, IoU {}",
                escape(&case),
                escape(&iou)
            )
        };
        h.push_str(&format!(
            "<section class=\"run\"><h3>{}</h3><p>IoU {:.4} · Dice {:.4} · HD95 {:.2} px over {} validation images</p>\n",
            escape(&r.name),
            r.scores.iou,
            r.scores.dice,
            r.scores.hd95,
            r.n_cases
        ));
        h.push_str(&image(
            &dir.join("progress.png"),
            &format!("training curves of {}", r.name),
            640,
        ));
        h.push_str("<div class=\"pair\">");
        for which in ["best", "worst"] {
            h.push_str(&format!(
                "<figure>{}<figcaption>{}</figcaption></figure>",
                image(
                    &overlays.join(format!("{which}.png")),
                    &format!("{which} case of {}", r.name),
                    360
                ),
                caption(which)
            ));
        }
        h.push_str("</div></section>\n");
    }
    h.push_str("<p class=\"note\">Overlays: ground truth in magenta, prediction in green. Written by <code>mgcc experiment report</code>.</p>\n</body></html>\n");
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_characters() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
