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
    tiny_run(&data, &run, &[]);
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

/// Trains a tiny run (32², width 2, two iterations) with `extra` arguments.
fn tiny_run(data: &std::path::Path, run: &std::path::Path, extra: &[&str]) {
    let mut args = vec![
        "train",
        p(data),
        "--split",
        "1",
        "--out",
        p(run),
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
    ];
    args.extend_from_slice(extra);
    ok(mgcc(&args));
}

/// `mgcc export --format onnx` run by tract on every image at once (one batch), normalised as
/// mgcc's loader does, gives `mgcc predict`'s 8-bit probability maps: an MGCC run with the
/// published code's double scaling (applied inside the graph) and a UNet run exported with
/// symbolic height and width. Refusals name the problem.
#[test]
fn onnx_export_predicts_like_mgcc() {
    use burn::tensor::{Device, Tensor as Tensor4, TensorData};
    use tract_onnx::prelude::{
        Datum, Framework, InferenceFact, InferenceModelExt, IntoRunnable, TDim, Tensor, tvec,
    };

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    phantoms_with_split(&data, &["--n", "6", "--size", "32"]);
    let (mgcc_run, unet_run) = (tmp.path().join("mgcc"), tmp.path().join("unet"));
    tiny_run(&data, &mgcc_run, &["--quirk-double-scaling"]);
    tiny_run(
        &data,
        &unet_run,
        &["--method", "supervised", "--backbone", "unet"],
    );
    let images = data.join("images");
    let mut stems: Vec<String> = std::fs::read_dir(&images)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    stems.sort();
    assert_eq!(stems.len(), 6);
    let mut batch = Vec::new();
    for stem in &stems {
        let img = image::open(images.join(format!("{stem}.png"))).unwrap();
        batch.extend(mgcc_data::preprocess_image(
            &img,
            32,
            mgcc_data::Channels::Three,
        ));
    }

    for (run, extra, what) in [
        (&mgcc_run, None, "MGCC with double scaling"),
        (&unet_run, Some("--dynamic-size"), "UNet"),
    ] {
        let file = tmp.path().join(format!(
            "{}.onnx",
            run.file_name().unwrap().to_string_lossy()
        ));
        let mut args = vec!["export", p(run), "--format", "onnx", "--out", p(&file)];
        args.extend(extra);
        let out = ok(mgcc(&args));
        assert!(out.contains("ONNX (opset 17)"), "{out}");
        let preds = tmp.path().join(format!("pred-{what}"));
        ok(mgcc(&[
            "predict",
            p(run),
            p(&images),
            p(&preds),
            "--probabilities",
        ]));

        let mut model = tract_onnx::onnx().model_for_path(&file).unwrap();
        if extra.is_some() {
            // Symbolic height and width: pinned here (tract cannot unify them through the
            // poolings), the batch left symbolic.
            let batch = TDim::Sym(model.symbols.sym("batch"));
            let shape = vec![batch, 3.into(), 32.into(), 32.into()];
            model = model
                .with_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), shape))
                .unwrap();
        }
        let model = model.into_optimized().unwrap().into_runnable().unwrap();
        let input = Tensor::from_shape(&[stems.len(), 3, 32, 32], &batch).unwrap();
        let result = model.run(tvec!(input.into())).unwrap();
        let probs: Vec<f32> = result[1]
            .to_plain_array_view::<f32>()
            .unwrap()
            .iter()
            .copied()
            .collect();
        let logits: Vec<f32> = result[0]
            .to_plain_array_view::<f32>()
            .unwrap()
            .iter()
            .copied()
            .collect();
        // Against the run's own network, loaded as `predict` loads it, in float32.
        let device = Device::flex();
        let loaded = mgcc_train::run::load_for_inference(run, "best", &device).unwrap();
        let x = Tensor4::from_data(
            TensorData::new(batch.clone(), [stems.len(), 3, 32, 32]),
            &device,
        )
        .mul_scalar(loaded.config.input_scale());
        let expect: Vec<f32> = loaded.model.forward(x).into_data().try_to_vec().unwrap();
        let diff = logits
            .iter()
            .zip(&expect)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        let (lo, hi) = expect
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
        // Against `predict`'s 8-bit probability maps.
        let mut worst = 0i32;
        for (i, stem) in stems.iter().enumerate() {
            let png = image::open(preds.join("probabilities").join(format!("{stem}.png")))
                .unwrap()
                .to_luma8();
            for (k, v) in png.as_raw().iter().enumerate() {
                let onnx = (probs[i * 32 * 32 + k].clamp(0.0, 1.0) * 255.0).round() as i32;
                worst = worst.max((onnx - i32::from(*v)).abs());
            }
        }
        println!(
            "{what}: ONNX vs the run's network, logits max |diff| {diff:.2e} (logits {lo:.4}..{hi:.4}); vs predict's maps, worst 8-bit difference {worst}"
        );
        assert!(diff <= 1e-4, "{what}: ONNX logits differ by {diff:.2e}");
        assert!(hi - lo > 1e-4, "{what}: constant logits prove nothing");
        assert!(
            worst <= 1,
            "{what}: ONNX differs from predict by {worst}/255"
        );
    }

    // Refusals: an existing file (not mgcc's) stays as it was; flags by name.
    let theirs = tmp.path().join("theirs.onnx");
    std::fs::write(&theirs, b"someone else's model").unwrap();
    assert_clean_failure(
        &mgcc(&[
            "export",
            p(&mgcc_run),
            "--format",
            "onnx",
            "--out",
            p(&theirs),
        ]),
        &["theirs.onnx", "already exists"],
    );
    assert_eq!(std::fs::read(&theirs).unwrap(), b"someone else's model");
    let unused = tmp.path().join("unused.safetensors");
    assert_clean_failure(
        &mgcc(&[
            "export",
            p(&mgcc_run),
            "--dynamic-size",
            "--out",
            p(&unused),
        ]),
        &["--dynamic-size", "onnx"],
    );
    assert_clean_failure(
        &mgcc(&[
            "export",
            p(&mgcc_run),
            "--format",
            "tflite",
            "--out",
            p(&unused),
        ]),
        &["tflite", "onnx"],
    );
    assert!(!unused.exists());
}
