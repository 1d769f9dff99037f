//! The generation stage as a user runs it, on a tiny phantom set: train-vae → train → generate
//! → report, resuming and skipping behave, and bad input is refused with a readable message.

mod common;

use std::path::Path;
use std::process::Output;

use common::{assert_clean_failure, mgcc, p, text};

fn ok(out: Output) -> String {
    let all = text(&out);
    assert!(out.status.success(), "command failed:\n{all}");
    all
}

fn fails(out: Output, needles: &[&str]) {
    assert_clean_failure(&out, needles);
}

#[test]
fn vae_ldm_generate_report_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    ok(mgcc(&[
        "phantom",
        p(&data),
        "--n",
        "12",
        "--size",
        "32",
        "--seed",
        "1",
    ]));
    let vae = tmp.path().join("vae");
    let common = [
        "--size",
        "16",
        "--channels",
        "8,8",
        "--latent-channels",
        "4",
        "--batch",
        "4",
        "--val-every",
        "2",
        "--no-progress",
        "--threads",
        "2",
    ];
    // Stop after 2 of 4 iterations, then resume to the end.
    let mut args = vec![
        "ldm",
        "train-vae",
        p(&data),
        "--out",
        p(&vae),
        "--iterations",
        "4",
        "--stop-after",
        "2",
    ];
    args.extend(common);
    ok(mgcc(&args));
    assert!(vae.join("checkpoints/last/state.json").is_file());
    ok(mgcc(&[
        "ldm",
        "train-vae",
        "--resume",
        p(&vae),
        "--threads",
        "2",
        "--no-progress",
    ]));
    let metrics = std::fs::read_to_string(vae.join("metrics.csv")).unwrap();
    assert_eq!(
        metrics.lines().count(),
        5,
        "header + 4 iterations:\n{metrics}"
    );
    for f in [
        "config.toml",
        "progress.png",
        "train.log",
        "samples/iter_000004.png",
    ] {
        assert!(vae.join(f).is_file(), "missing {f}");
    }
    // A second run into the same folder is refused.
    let mut again = vec!["ldm", "train-vae", p(&data), "--out", p(&vae)];
    again.extend(common);
    fails(mgcc(&again), &["already holds a run"]);

    let ldm = tmp.path().join("ldm");
    ok(mgcc(&[
        "ldm",
        "train",
        p(&data),
        "--vae",
        p(&vae),
        "--out",
        p(&ldm),
        "--channels",
        "8,16",
        "--time-dim",
        "8",
        "--emb-dim",
        "16",
        "--batch",
        "4",
        "--iterations",
        "3",
        "--val-every",
        "3",
        "--sample-steps",
        "2",
        "--timesteps",
        "50",
        "--no-progress",
        "--threads",
        "2",
    ]));
    let config = std::fs::read_to_string(ldm.join("config.toml")).unwrap();
    assert!(
        config.contains("benign") && config.contains("malignant"),
        "classes from the manifest:\n{config}"
    );
    assert!(ldm.join("latents.json").is_file());

    let gen_dir = tmp.path().join("gen");
    let out = ok(mgcc(&[
        "ldm",
        "generate",
        p(&ldm),
        "--n",
        "3",
        "--out",
        p(&gen_dir),
        "--steps",
        "3",
        "--threads",
        "2",
    ]));
    assert!(out.contains("3 images generated"), "{out}");
    let img = image::open(gen_dir.join("gen_00002.png")).unwrap();
    assert_eq!((img.width(), img.height()), (16, 16));
    // Rerun with more images: the first three are skipped; class-conditioned generation too.
    let out = ok(mgcc(&[
        "ldm",
        "generate",
        p(&ldm),
        "--n",
        "5",
        "--out",
        p(&gen_dir),
        "--steps",
        "3",
        "--threads",
        "2",
    ]));
    assert!(out.contains("2 images generated, 3 already there"), "{out}");
    let manifest = std::fs::read_to_string(gen_dir.join("manifest.csv")).unwrap();
    assert_eq!(manifest.lines().count(), 6);
    // Other settings into the same folder are refused; unknown classes are named.
    fails(
        mgcc(&[
            "ldm",
            "generate",
            p(&ldm),
            "--n",
            "5",
            "--out",
            p(&gen_dir),
            "--steps",
            "4",
        ]),
        &["other settings"],
    );
    fails(
        mgcc(&[
            "ldm",
            "generate",
            p(&ldm),
            "--n",
            "1",
            "--out",
            p(&tmp.path().join("g2")),
            "--class",
            "cyst",
        ]),
        &["cyst", "benign"],
    );
    ok(mgcc(&[
        "ldm",
        "generate",
        p(&ldm),
        "--n",
        "2",
        "--out",
        p(&tmp.path().join("g3")),
        "--class",
        "malignant",
        "--guidance",
        "2",
        "--steps",
        "2",
        "--sampler",
        "ddpm",
    ]));

    let report = tmp.path().join("report");
    let out = ok(mgcc(&[
        "ldm",
        "report",
        p(&gen_dir),
        "--real",
        p(&data),
        "--out",
        p(&report),
        "--size",
        "16",
    ]));
    assert!(out.contains("near_copy_share"), "{out}");
    for f in [
        "grid.png",
        "real_grid.png",
        "nearest.csv",
        "nearest_pairs.png",
        "report.json",
    ] {
        assert!(report.join(f).is_file(), "missing {f}");
    }
    // The generated folder is a valid --unlabeled-dir (manifest and settings files are ignored).
    let listed = mgcc_data_images(&gen_dir);
    assert_eq!(listed, 5);
}

fn mgcc_data_images(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let p = e.as_ref().unwrap().path();
            p.is_file() && p.extension().is_some_and(|x| x == "png")
        })
        .count()
}

#[test]
fn bad_ldm_inputs_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    fails(
        mgcc(&[
            "ldm",
            "train-vae",
            p(&empty),
            "--out",
            p(&tmp.path().join("v")),
        ]),
        &["empty"],
    );
    assert!(!tmp.path().join("v").join("config.toml").exists());
    fails(
        mgcc(&[
            "ldm",
            "train-vae",
            p(&empty),
            "--out",
            p(&tmp.path().join("v")),
            "--perceptual-weights",
            "vgg.pth",
        ]),
        &["LPIPS", "not implemented"],
    );
    fails(
        mgcc(&[
            "ldm",
            "train-vae",
            p(&empty),
            "--out",
            p(&tmp.path().join("v")),
            "--size",
            "30",
        ]),
        &["size 30"],
    );
    fails(
        mgcc(&[
            "ldm",
            "train",
            p(&empty),
            "--vae",
            p(&tmp.path().join("novae")),
            "--out",
            p(&tmp.path().join("l")),
        ]),
        &["novae"],
    );
    fails(
        mgcc(&[
            "ldm",
            "generate",
            p(&tmp.path().join("nold")),
            "--n",
            "2",
            "--out",
            p(&tmp.path().join("g")),
        ]),
        &["nold"],
    );
}

#[test]
fn pipeline_runs_every_stage_and_a_rerun_skips_them() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    ok(mgcc(&[
        "phantom",
        p(&data),
        "--n",
        "14",
        "--size",
        "32",
        "--seed",
        "4",
    ]));
    ok(mgcc(&[
        "split",
        p(&data),
        "--splits",
        "1",
        "--seeds",
        "41",
        "--name",
        "ph",
    ]));
    let cfg = tmp.path().join("pipeline.toml");
    std::fs::write(
        &cfg,
        r#"
[vae]
size = 16
iterations = 2
batch = 2
val_every = 2
[vae.vae]
in_channels = 3
channels = [8, 8]
latent_channels = 4
groups = 4
deep_supervision = false

[ldm]
iterations = 2
batch = 4
val_every = 2
sample_steps = 2
[ldm.unet]
latent_channels = 4
channels = [8, 16]
blocks = 1
time_dim = 8
emb_dim = 16
num_classes = 0
attention = false
groups = 4

[generate]
n = 4
batch = 4
[generate.sampler]
steps = 2

[mgcc]
size = 16
width = 4
iterations = 2
batch = 4
labeled_batch = 2
val_every = 2
"#,
    )
    .unwrap();
    let out = tmp.path().join("pipe");
    let args = [
        "pipeline",
        p(&data),
        "--split",
        "1",
        "--out",
        p(&out),
        "--config",
        p(&cfg),
        "--threads",
        "2",
    ];
    let first = ok(mgcc(&args));
    assert!(first.contains("evaluation on"), "{first}");
    for f in [
        "pipeline.toml",
        "vae/checkpoints/best/model.bpk",
        "ldm/latents.json",
        "generated/gen_00003.png",
        "generated/report/report.json",
        "mgcc/eval/summary.json",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let labeled_cfg = std::fs::read_to_string(out.join("mgcc/config.toml")).unwrap();
    assert!(
        labeled_cfg.contains("generated"),
        "generated images are an unlabelled folder:\n{labeled_cfg}"
    );
    let second = ok(mgcc(&args));
    assert!(
        second.contains("autoencoder: done") && second.contains("latent denoiser: done"),
        "{second}"
    );
    assert!(second.contains("0 new, 4 already there"), "{second}");
}
