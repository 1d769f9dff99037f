//! Weights out and back in through the command line: `mgcc export` then `mgcc import-torch`
//! give a run that predicts exactly what the original predicts; a PyTorch checkpoint (the
//! committed fixture, written by PyTorch) imports and evaluates; bad files are refused by name.

mod common;

use std::path::PathBuf;

use common::{assert_clean_failure, mgcc, p, phantoms_with_split, text};

fn ok(out: std::process::Output) -> String {
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    all
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

#[test]
fn export_import_round_trip_and_pytorch_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    phantoms_with_split(&data, &["--n", "8", "--size", "32"]);
    let run = tmp.path().join("run");
    ok(mgcc(&[
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
        "--iterations",
        "2",
        "--batch",
        "2",
        "--labeled-batch",
        "1",
        "--labeled-count",
        "2",
        "--val-every",
        "2",
        "--threads",
        "1",
        "--no-progress",
    ]));
    let file = tmp.path().join("w.safetensors");
    ok(mgcc(&["export", p(&run), "--out", p(&file)]));
    // Not over an existing file.
    assert_clean_failure(
        &mgcc(&["export", p(&run), "--out", p(&file)]),
        &["already exists"],
    );

    let back = tmp.path().join("back");
    let out = ok(mgcc(&[
        "import-torch",
        p(&file),
        "--out",
        p(&back),
        "--size",
        "32",
        "--no-quirk-double-scaling",
    ]));
    assert!(out.contains("width 2"), "{out}");
    let images = data.join("images");
    let (pa, pb) = (tmp.path().join("pa"), tmp.path().join("pb"));
    ok(mgcc(&[
        "predict",
        p(&run),
        p(&images),
        p(&pa),
        "--probabilities",
    ]));
    ok(mgcc(&[
        "predict",
        p(&back),
        p(&images),
        p(&pb),
        "--probabilities",
    ]));
    let mut compared = 0;
    for e in std::fs::read_dir(pa.join("probabilities")).unwrap() {
        let name = e.unwrap().file_name();
        let a = std::fs::read(pa.join("probabilities").join(&name)).unwrap();
        let b = std::fs::read(pb.join("probabilities").join(&name)).unwrap();
        assert_eq!(a, b, "{name:?}");
        compared += 1;
    }
    assert_eq!(compared, 8);

    // A PyTorch DataParallel checkpoint (pickle, `module.` names) imports and evaluates.
    let torch_run = tmp.path().join("torch");
    let out = ok(mgcc(&[
        "import-torch",
        p(&fixture("mgcc_torch_w2_state.pth")),
        "--out",
        p(&torch_run),
        "--size",
        "32",
        "--width",
        "2",
    ]));
    assert!(out.contains("988 tensors"), "{out}");
    ok(mgcc(&[
        "evaluate",
        p(&torch_run),
        "--data",
        p(&data),
        "--split",
        "1",
        "--threads",
        "1",
    ]));

    // Refusals, each naming the problem.
    let bad = tmp.path().join("bad");
    assert_clean_failure(
        &mgcc(&[
            "import-torch",
            p(&fixture("mgcc_torch_w2_state.pth")),
            "--out",
            p(&bad),
            "--width",
            "4",
        ]),
        &["width 2", "--width 4"],
    );
    assert_clean_failure(
        &mgcc(&[
            "import-torch",
            p(&fixture("mgcc_torch_w2.safetensors")),
            "--out",
            p(&bad),
        ]),
        &["decision_margin", "is not part of this MGCC network"],
    );
    assert_clean_failure(
        &mgcc(&[
            "import-torch",
            p(&data.join("manifest.csv")),
            "--out",
            p(&bad),
        ]),
        &["manifest.csv"],
    );
    assert!(!bad.exists());
    let unet = tmp.path().join("unet");
    ok(mgcc(&[
        "train",
        p(&data),
        "--split",
        "1",
        "--out",
        p(&unet),
        "--size",
        "32",
        "--width",
        "2",
        "--iterations",
        "1",
        "--batch",
        "2",
        "--labeled-batch",
        "1",
        "--labeled-count",
        "2",
        "--val-every",
        "1",
        "--threads",
        "1",
        "--no-progress",
        "--method",
        "supervised",
        "--backbone",
        "unet",
    ]));
    assert_clean_failure(
        &mgcc(&[
            "export",
            p(&unet),
            "--out",
            p(&tmp.path().join("u.safetensors")),
        ]),
        &["UNet"],
    );
}
