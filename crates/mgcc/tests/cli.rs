//! The `mgcc` binary as a user runs it: bad input gives one readable line naming the file and a
//! non-zero exit (never a panic), and a tiny train → evaluate → predict round trip works.

mod common;

use common::{assert_clean_failure, mgcc, p, phantoms_with_split, text};

#[test]
fn bad_inputs_fail_with_a_message_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    // A dataset folder that does not exist.
    let missing = tmp.path().join("nope");
    assert_clean_failure(&mgcc(&["check", p(&missing)]), &["nope"]);
    assert_clean_failure(
        &mgcc(&[
            "train",
            p(&missing),
            "--split",
            "1",
            "--out",
            p(&tmp.path().join("r")),
        ]),
        &["nope"],
    );

    // A config file with a misspelt key.
    let cfg = tmp.path().join("bad.toml");
    std::fs::write(&cfg, "widht = 8\n").unwrap();
    let out = mgcc(&[
        "train",
        p(&missing),
        "--split",
        "1",
        "--out",
        p(&tmp.path().join("r")),
        "--config",
        p(&cfg),
    ]);
    assert_clean_failure(&out, &["bad.toml", "widht"]);

    // A size that is not a multiple of 16.
    let data = tmp.path().join("data");
    assert!(
        mgcc(&["phantom", p(&data), "--n", "6", "--size", "32"])
            .status
            .success()
    );
    let out = mgcc(&[
        "train",
        p(&data),
        "--split",
        "1",
        "--out",
        p(&tmp.path().join("r")),
        "--size",
        "40",
    ]);
    assert_clean_failure(&out, &["multiple of 16"]);

    // No split files yet.
    let out = mgcc(&[
        "train",
        p(&data),
        "--split",
        "1",
        "--out",
        p(&tmp.path().join("r")),
    ]);
    assert_clean_failure(&out, &["train1"]);

    // A corrupt image is named by `check`.
    std::fs::write(data.join("images").join("phantom_0002.png"), b"not a png").unwrap();
    assert_clean_failure(&mgcc(&["check", p(&data)]), &["phantom_0002.png"]);

    // Predicting with a run that does not exist.
    let out = mgcc(&[
        "predict",
        p(&tmp.path().join("norun")),
        p(&data),
        p(&tmp.path().join("pred")),
    ]);
    assert_clean_failure(&out, &["norun"]);
}

#[test]
fn train_evaluate_predict_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let run = tmp.path().join("run");
    phantoms_with_split(&data, &["--n", "10", "--width", "40", "--height", "36"]);
    let out = mgcc(&[
        "train",
        p(&data),
        "--split",
        "1",
        "--out",
        p(&run),
        "--size",
        "32",
        "--width",
        "2",
        "--labeled-count",
        "4",
        "--batch",
        "4",
        "--labeled-batch",
        "2",
        "--iterations",
        "3",
        "--val-every",
        "3",
        "--no-progress",
    ]);
    assert!(out.status.success(), "{}", text(&out));

    let out = mgcc(&["evaluate", p(&run), "--data", p(&data), "--split", "1"]);
    assert!(out.status.success(), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("eval").join("summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["n_cases"], 3, "{summary}");
    let cases = std::fs::read_to_string(run.join("eval").join("cases.csv")).unwrap();
    assert_eq!(cases.lines().count(), 4);

    let pred = tmp.path().join("pred");
    let out = mgcc(&[
        "predict",
        p(&run),
        p(&data),
        p(&pred),
        "--overlay",
        "--probabilities",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let mask = image::open(pred.join("phantom_0001.png")).unwrap();
    assert_eq!(
        (mask.width(), mask.height()),
        (40, 36),
        "masks come back at the image's own size"
    );
    assert!(pred.join("overlays").join("phantom_0001.png").is_file());
    assert!(
        pred.join("probabilities")
            .join("phantom_0001.png")
            .is_file()
    );
    // Nothing is overwritten silently.
    assert_clean_failure(
        &mgcc(&["predict", p(&run), p(&data), p(&pred)]),
        &["phantom_0001.png", "--force"],
    );
    assert!(
        mgcc(&["predict", p(&run), p(&data), p(&pred), "--force"])
            .status
            .success()
    );
}

#[test]
fn a_baseline_under_the_reference_protocol_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let run = tmp.path().join("run");
    phantoms_with_split(&data, &["--n", "16", "--size", "32"]);
    // The published code's protocol with a baseline on the UNet backbone.
    let out = mgcc(&[
        "train",
        p(&data),
        "--split",
        "1",
        "--out",
        p(&run),
        "--method",
        "mean-teacher",
        "--backbone",
        "unet",
        "--protocol",
        "reference",
        "--quirk-double-scaling",
        "--labeled-fraction",
        "0.5",
        "--size",
        "32",
        "--width",
        "2",
        "--batch",
        "4",
        "--labeled-batch",
        "2",
        "--iterations",
        "6",
        "--no-progress",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    // The first ⌊0.5·N⌋ stems of the split file are labelled, in file order.
    let train_list = std::fs::read_to_string(data.join("t_train1.txt")).unwrap();
    let stems: Vec<&str> = train_list.lines().collect();
    let k = stems.len() / 2;
    let labeled = std::fs::read_to_string(run.join("labeled.txt")).unwrap();
    assert_eq!(labeled.lines().collect::<Vec<_>>(), stems[..k].to_vec());
    // Validation after every epoch (⌊k / 2⌋ iterations), not the capped default.
    let epoch = k / 2;
    let history = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let validated: Vec<usize> = history
        .lines()
        .skip(1)
        .filter(|l| !l.split(',').nth(5).unwrap().is_empty())
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    let expect: Vec<usize> = (1..=6).filter(|i| i % epoch == 0 || *i == 6).collect();
    assert_eq!(validated, expect);
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    for line in [
        "method = \"mean-teacher\"",
        "backbone = \"unet\"",
        "protocol = \"reference\"",
        "quirk_double_scaling = true",
        "width = 2",
        "consistency = 0.1",
    ] {
        assert!(config.contains(line), "missing {line} in\n{config}");
    }
    // Evaluation of a reference run is on the training grid.
    let out = mgcc(&["evaluate", p(&run), "--data", p(&data), "--split", "1"]);
    assert!(out.status.success(), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("eval").join("summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        summary["meta"]["metrics_at"], "training size 32",
        "{summary}"
    );

    // mgcc on the unet backbone is refused with the reason.
    assert_clean_failure(
        &mgcc(&[
            "train",
            p(&data),
            "--split",
            "1",
            "--out",
            p(&tmp.path().join("r2")),
            "--method",
            "mgcc",
            "--backbone",
            "unet",
        ]),
        &["mgcc backbone", "ConvMixer"],
    );
    assert_clean_failure(
        &mgcc(&["bench", "--method", "meanteacher"]),
        &["mean-teacher"],
    );
}
