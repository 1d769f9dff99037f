//! The report of a synthetic experiment: finished runs with chosen per-case metrics, one run
//! missing. Aggregates are checked against hand-computed values, and `report.html` is rendered
//! in headless Chromium (skipped, with the reason printed, when Chromium is not installed;
//! `.ci/run` installs the Debian package `chromium` when it can).

use std::path::Path;
use std::process::Command;

use mgcc_eval::metrics::SegMetrics;
use mgcc_eval::report::{CaseMetrics, write_cases_csv};
use mgcc_experiment::{Plan, PlanSpec, report};
use mgcc_train::{Method, TrainConfig};

/// A case with IoU `iou`, Dice from it, HD95 `hd95`.
fn case(name: &str, iou: f64, hd95: f64) -> CaseMetrics {
    let dice = 2.0 * iou / (1.0 + iou);
    CaseMetrics {
        case: name.into(),
        metrics: SegMetrics::from_values([iou, dice, 0.9, 0.8, 0.99, 0.97, dice, hd95, iou, dice]),
    }
}

/// Mark a run finished with these cases.
fn finish(exp: &Path, name: &str, cases: &[CaseMetrics]) {
    let eval = exp.join("runs").join(name).join("eval");
    std::fs::create_dir_all(&eval).unwrap();
    write_cases_csv(&eval.join("cases.csv"), cases).unwrap();
    std::fs::write(eval.join("summary.json"), "{}").unwrap();
}

fn synthetic(exp: &Path) -> Plan {
    let spec = PlanSpec {
        data: "data".into(),
        splits: vec![1, 2, 3],
        labeled: vec!["1/4".parse().unwrap()],
        methods: vec![Method::Supervised, Method::Mgcc],
        generated: None,
        seeds: vec![41],
        base: TrainConfig::default(),
    };
    let plan = spec.plan().unwrap();
    plan.write_or_check(exp).unwrap();
    // supervised: run IoU 0.60, 0.70, 0.65 (cases 0.6/0.7); mgcc: 0.66, 0.69; mgcc split 3 missing.
    finish(
        exp,
        "supervised_1-4_split1_seed41",
        &[case("a", 0.6, 10.0), case("b", 0.6, 10.0)],
    );
    finish(
        exp,
        "supervised_1-4_split2_seed41",
        &[case("a", 0.7, 8.0), case("b", 0.7, 8.0)],
    );
    finish(
        exp,
        "supervised_1-4_split3_seed41",
        &[case("a", 0.6, 8.0), case("b", 0.7, 10.0)],
    );
    finish(
        exp,
        "mgcc_1-4_split1_seed41",
        &[case("a", 0.66, 9.0), case("b", 0.66, 9.0)],
    );
    finish(
        exp,
        "mgcc_1-4_split2_seed41",
        &[case("a", 0.69, 7.0), case("b", 0.69, 7.0)],
    );
    plan
}

#[test]
fn the_report_matches_hand_computed_aggregates() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path();
    let plan = synthetic(exp);
    let files = report::write(exp, &plan).unwrap();
    assert_eq!((files.finished, files.missing), (5, 1));

    let csv = std::fs::read_to_string(&files.csv).unwrap();
    assert_eq!(csv.lines().count(), 1 + 5 * 2, "{csv}");
    let row: Vec<&str> = csv
        .lines()
        .find(|l| l.starts_with("supervised_1-4_split3_seed41,") && l.contains(",documented,"))
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(
        &row[1..8],
        ["supervised", "1/4", "3", "41", "false", "documented", "2"]
    );
    // Run IoU = mean of its cases 0.6 and 0.7; HD95 of 8 and 10.
    assert!(
        (row[8].parse::<f64>().unwrap() - 0.65).abs() < 1e-12,
        "{row:?}"
    );
    assert!(
        (row[12].parse::<f64>().unwrap() - 9.0).abs() < 1e-12,
        "{row:?}"
    );

    let md = std::fs::read_to_string(&files.markdown).unwrap();
    // supervised: mean 0.65, sample std √((0.05² + 0.05² + 0)/2) = 0.05; HD95 9 ± 1.
    assert!(
        md.contains("| 1/4 | supervised | 3 | 0.6500 ± 0.0500 |"),
        "{md}"
    );
    assert!(md.contains("9.00 ± 1.00"), "{md}");
    // mgcc: 0.675 ± |0.66 − 0.69|/√2 = 0.0212, the best IoU of its share (bold).
    assert!(
        md.contains("| 1/4 | mgcc | 2 | **0.6750 ± 0.0212** |"),
        "{md}"
    );
    // Paired: d = 0.06, −0.01 → +0.0250 ± 0.0495, improved 1 of 2.
    assert!(md.contains("| 1/4 | mgcc | +0.0250 ± 0.0495 |"), "{md}");
    assert!(md.contains("| 1/2 |"), "{md}");
    assert!(md.contains("`mgcc_1-4_split3_seed41`: not started"), "{md}");

    for f in [&files.png, &files.svg, &files.html] {
        assert!(
            std::fs::metadata(f).unwrap().len() > 1000,
            "{}",
            f.display()
        );
    }
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(html.contains("<strong>0.6750 ± 0.0212</strong>"));
    // Self-contained: nothing loaded from elsewhere (the SVG's xmlns is a name, not a fetch).
    for loader in [
        "src=\"http",
        "href=\"http",
        "url(http",
        "@import",
        "<script",
        "<link",
    ] {
        assert!(!html.contains(loader), "report.html contains {loader}");
    }

    render_in_chromium(&files.html, exp);
}

/// Screenshot and DOM of the page in headless Chromium.
fn render_in_chromium(html: &Path, dir: &Path) {
    let Some(browser) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
    else {
        eprintln!(
            "SKIPPED rendering report.html: no chromium on this machine (Debian package `chromium`; .ci/run installs it when it can)"
        );
        return;
    };
    let shot = dir.join("shot.png");
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let profile = format!("--user-data-dir={}", dir.join("profile").display());
    let url = format!("file://{}", html.display());
    let out = Command::new(browser)
        .args(common)
        .arg(&profile)
        .args([
            "--window-size=900,1400",
            &format!("--screenshot={}", shot.display()),
            &url,
        ])
        .output()
        .unwrap();
    assert!(
        shot.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let img = image::open(&shot).unwrap().to_rgb8();
    let dark = img
        .pixels()
        .filter(|p| p.0.iter().all(|&c| c < 100))
        .count();
    let coloured = img
        .pixels()
        .filter(|p| p.0.iter().max().unwrap() - p.0.iter().min().unwrap() > 80)
        .count();
    // Text (dark pixels) and the plot's coloured lines are on the page.
    assert!(dark > 2000, "the page looks blank ({dark} dark pixels)");
    assert!(coloured > 200, "no coloured plot lines ({coloured} pixels)");
    let dom = Command::new(browser)
        .args(common)
        .arg(&profile)
        .args(["--dump-dom", &url])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    for cell in [
        "0.6500 ± 0.0500",
        "0.6750 ± 0.0212",
        "+0.0250 ± 0.0495",
        "mgcc_1-4_split3_seed41",
    ] {
        assert!(dom.contains(cell), "rendered page lacks {cell}");
    }
}
