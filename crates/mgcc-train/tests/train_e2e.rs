//! End-to-end training on small phantom data: exact resume, run-folder contents, and learning
//! to a stated quality.

use std::path::Path;
use std::sync::Mutex;

use burn::prelude::*;
use mgcc_data::phantom::{PhantomConfig, write_dataset};
use mgcc_data::{SplitOptions, write_splits};
use mgcc_model::Backbone;
use mgcc_train::config::MeanTeacherParams;
use mgcc_train::learner::{PEER_FILE, TEACHER_FILE, load_net};
use mgcc_train::run::load_for_inference;
use mgcc_train::{Method, RunOptions, TrainConfig};

fn make_data(dir: &Path, n: usize, size: usize, seed: u64) {
    write_dataset(
        &PhantomConfig {
            n,
            width: size,
            height: size,
            seed,
        },
        dir,
        false,
    )
    .unwrap();
    write_splits(
        dir,
        &SplitOptions {
            splits: 1,
            val_fraction: 0.3,
            seeds: vec![41],
            name: Some("phantom".into()),
            force: false,
        },
    )
    .unwrap();
}

/// burn's flex backend has one process-wide RNG, which the trainer re-seeds before each step;
/// training runs in parallel test threads would interleave their draws, so they take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn quiet() -> RunOptions {
    RunOptions {
        stop_after: None,
        progress_bar: false,
        quiet: true,
    }
}

/// A fixed input `1×3×32×32`.
fn probe(device: &Device) -> Tensor<4> {
    Tensor::<4>::from_data(
        TensorData::new(
            (0..3 * 32 * 32)
                .map(|i| ((i % 97) as f32 / 97.0) - 0.5)
                .collect::<Vec<_>>(),
            [1, 3, 32, 32],
        ),
        device,
    )
}

/// Output of the `last` checkpoint's model on a fixed input, in validation mode.
fn last_output(run: &Path, device: &Device) -> Vec<f32> {
    let loaded = load_for_inference(run, "last", device).unwrap();
    loaded
        .model
        .forward(probe(device))
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

/// Output of another network of the `last` checkpoint (teacher or CPS peer), if the run has it.
fn other_output(run: &Path, cfg: &TrainConfig, file: &str, device: &Device) -> Option<Vec<f32>> {
    let path = run.join("checkpoints/last").join(file);
    if !path.is_file() {
        return None;
    }
    let net = load_net(cfg.net_config().init(device), &path).unwrap();
    Some(
        net.forward(probe(device))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap(),
    )
}

#[test]
fn stop_and_resume_gives_the_same_weights_as_one_run() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_data(&data, 14, 32, 3);
    let cfg = TrainConfig {
        data: data.clone(),
        method: Method::Mgcc,
        labeled_count: Some(4),
        batch: 4,
        labeled_batch: 2,
        size: 32,
        width: Some(2),
        iterations: Some(6),
        val_every: Some(2),
        rampup: 4,
        rampup_step: 1,
        seed: 5,
        ..Default::default()
    };
    let device = Device::flex().autodiff();

    let one_go = tmp.path().join("one_go");
    let a = mgcc_train::train(cfg.clone(), &one_go, &device, &quiet()).unwrap();
    assert_eq!(a.iterations_done, 6);

    let split = tmp.path().join("split");
    let stop = RunOptions {
        stop_after: Some(4),
        ..quiet()
    };
    let b = mgcc_train::train(cfg.clone(), &split, &device, &stop).unwrap();
    assert_eq!(b.iterations_done, 4);
    let c = mgcc_train::resume(&split, &device, &quiet()).unwrap();
    assert_eq!(c.iterations_done, 6);

    let plain = Device::flex();
    assert_eq!(last_output(&one_go, &plain), last_output(&split, &plain));
    // The histories agree row for row (losses, lr, weights, validation).
    let h1 = std::fs::read_to_string(one_go.join("metrics.csv")).unwrap();
    let h2 = std::fs::read_to_string(split.join("metrics.csv")).unwrap();
    assert_eq!(h1, h2, "histories differ:\n{h1}\n---\n{h2}");
    assert_eq!(h1.lines().count(), 7);

    // A new run refuses an existing run folder.
    let err = mgcc_train::train(cfg, &one_go, &device, &quiet())
        .unwrap_err()
        .to_string();
    assert!(err.contains("already holds a run"), "{err}");

    for f in [
        "config.toml",
        "model.json",
        "labeled.txt",
        "train.log",
        "progress.png",
        "panels/iter_000006.png",
    ] {
        assert!(one_go.join(f).is_file(), "missing {f}");
    }
}

#[test]
fn every_method_resumes_exactly_on_both_backbones() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_data(&data, 14, 32, 3);
    let plain = Device::flex();
    let device = Device::flex().autodiff();
    for backbone in [Backbone::Mgcc, Backbone::Unet] {
        for method in Method::ALL {
            if method.check_backbone(backbone).is_err() {
                continue;
            }
            let name = format!("{}-{}", backbone.name(), method);
            let (batch, labeled_batch) = if method.uses_unlabeled() {
                (4, 2)
            } else {
                (2, 2)
            };
            let cfg = TrainConfig {
                data: data.clone(),
                method,
                backbone,
                labeled_count: Some(4),
                batch,
                labeled_batch,
                size: 32,
                width: Some(2),
                iterations: Some(6),
                val_every: Some(2),
                consistency: Some(1.0),
                rampup: 4,
                rampup_step: 1,
                seed: 5,
                // The mean teacher's consistency starts between the stop and the end.
                mean_teacher: MeanTeacherParams {
                    consistency_start: 3,
                    ..Default::default()
                },
                ..Default::default()
            };
            let one_go = tmp.path().join(format!("{name}-one"));
            mgcc_train::train(cfg.clone(), &one_go, &device, &quiet()).unwrap();
            let split = tmp.path().join(format!("{name}-split"));
            let stop = RunOptions {
                stop_after: Some(4),
                ..quiet()
            };
            assert_eq!(
                mgcc_train::train(cfg.clone(), &split, &device, &stop)
                    .unwrap()
                    .iterations_done,
                4
            );
            mgcc_train::resume(&split, &device, &quiet()).unwrap();
            let (a, b) = (last_output(&one_go, &plain), last_output(&split, &plain));
            assert!(a == b, "{name}: network differs by {}", max_diff(&a, &b));
            for file in [TEACHER_FILE, PEER_FILE] {
                let a = other_output(&one_go, &cfg, file, &plain);
                assert_eq!(
                    a.is_some(),
                    matches!(
                        (file, method),
                        (TEACHER_FILE, Method::MeanTeacher | Method::UaMt)
                            | (PEER_FILE, Method::Cps)
                    ),
                    "{name}: {file}"
                );
                let b = other_output(&split, &cfg, file, &plain);
                if let (Some(a), Some(b)) = (&a, &b) {
                    assert!(a == b, "{name}: {file} differs by {}", max_diff(a, b));
                }
            }
            let h1 = std::fs::read_to_string(one_go.join("metrics.csv")).unwrap();
            let h2 = std::fs::read_to_string(split.join("metrics.csv")).unwrap();
            assert_eq!(h1, h2, "{name}: histories differ");
            // The consistency term was live (except for supervised training).
            let last_cons: f64 = h1
                .lines()
                .last()
                .unwrap()
                .split(',')
                .nth(3)
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(
                last_cons > 0.0,
                method.uses_unlabeled(),
                "{name}: {last_cons}"
            );
        }
    }
}

#[test]
fn mgcc_run_on_phantoms_learns_to_segment() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_data(&data, 40, 64, 11);
    // A CPU-sized version of the method: 12 labelled + 16 unlabelled phantoms at 64×64, width 8,
    // 100 iterations at lr 0.05 (measured: best val IoU 0.66 in about 2 minutes on 2 cores).
    let cfg = TrainConfig {
        data: data.clone(),
        method: Method::Mgcc,
        labeled_count: Some(12),
        batch: 8,
        labeled_batch: 4,
        size: 64,
        width: Some(8),
        iterations: Some(100),
        lr: 0.05,
        val_every: Some(25),
        rampup: 50,
        rampup_step: 10,
        seed: 41,
        ..Default::default()
    };
    let device = Device::flex().autodiff();
    let run = tmp.path().join("run");
    let out = mgcc_train::train(cfg, &run, &device, &quiet()).unwrap();
    let best = out.best_iou.unwrap();
    eprintln!("best val IoU {best}");
    assert!(best >= 0.5, "val IoU {best} below 0.5 after 100 iterations");
}

/// A short run of `method` on the MGCC backbone with the setting of the MGCC learning test
/// below (12 labelled + 16 unlabelled phantoms at 64×64, width 8, `iterations` at lr 0.05,
/// ramp over 50 iterations); the baselines' consistency weight is raised to C = 1 and the mean
/// teacher starts at iteration 20, so the consistency term acts within the run. Returns the
/// best validation IoU.
fn short_run_best_iou(method: Method, iterations: usize) -> f64 {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_data(&data, 40, 64, 11);
    let (batch, labeled_batch) = if method.uses_unlabeled() {
        (8, 4)
    } else {
        (4, 4)
    };
    let cfg = TrainConfig {
        data: data.clone(),
        method,
        labeled_count: Some(12),
        batch,
        labeled_batch,
        size: 64,
        width: Some(8),
        iterations: Some(iterations),
        lr: 0.05,
        val_every: Some(25),
        consistency: Some(1.0),
        rampup: 50,
        rampup_step: 10,
        seed: 41,
        mean_teacher: MeanTeacherParams {
            consistency_start: 20,
            ..Default::default()
        },
        ..Default::default()
    };
    let device = Device::flex().autodiff();
    let out = mgcc_train::train(cfg, &tmp.path().join("run"), &device, &quiet()).unwrap();
    let best = out.best_iou.unwrap();
    eprintln!("{method}: best val IoU {best}");
    best
}

// Bounds: the lowest best val IoU over training seeds 41, 1, 2, 3 was supervised 0.677,
// mean-teacher 0.714, ua-mt 0.749, cps 0.605, urpc 0.719 (an untrained network: below 0.1).
// cct trains four decoders on perturbed features and its main decoder is the slowest to
// learn: at 100 iterations its supervised loss is still about 0.5 and the best IoU depends on
// the rounding of the run (seed 41: 0.446 on the AVX-512 path, 0.522 on AVX2, 0.704 scalar;
// seeds 1, 2, 3 on the three paths 0.598–0.788), so it runs 150 iterations, where the lowest
// over seeds 41, 1, 2, 3 and the three SIMD paths was 0.622 (seed 41 scalar; the others
// 0.69–0.83).

#[test]
fn supervised_run_on_phantoms_learns_to_segment() {
    let best = short_run_best_iou(Method::Supervised, 100);
    assert!(best >= 0.5, "val IoU {best} below 0.5");
}

#[test]
fn mean_teacher_run_on_phantoms_learns_to_segment() {
    let best = short_run_best_iou(Method::MeanTeacher, 100);
    assert!(best >= 0.5, "val IoU {best} below 0.5");
}

#[test]
fn ua_mt_run_on_phantoms_learns_to_segment() {
    let best = short_run_best_iou(Method::UaMt, 100);
    assert!(best >= 0.5, "val IoU {best} below 0.5");
}

#[test]
fn cct_run_on_phantoms_learns_to_segment() {
    let best = short_run_best_iou(Method::Cct, 150);
    assert!(best >= 0.5, "val IoU {best} below 0.5");
}

#[test]
fn cps_run_on_phantoms_learns_to_segment() {
    let best = short_run_best_iou(Method::Cps, 100);
    assert!(best >= 0.5, "val IoU {best} below 0.5");
}

#[test]
fn urpc_run_on_phantoms_learns_to_segment() {
    let best = short_run_best_iou(Method::Urpc, 100);
    assert!(best >= 0.5, "val IoU {best} below 0.5");
}
