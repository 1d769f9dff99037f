//! End-to-end training on small phantom data: exact resume, run-folder contents, and learning
//! to a stated quality.

use std::path::Path;
use std::sync::Mutex;

use burn::prelude::*;
use mgcc_data::phantom::{PhantomConfig, write_dataset};
use mgcc_data::{SplitOptions, write_splits};
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

/// Output of the `last` checkpoint's model on a fixed input, in validation mode.
fn last_output(run: &Path, device: &Device) -> Vec<f32> {
    let loaded = load_for_inference(run, "last", device).unwrap();
    let x = Tensor::<4>::from_data(
        TensorData::new(
            (0..3 * 32 * 32)
                .map(|i| ((i % 97) as f32 / 97.0) - 0.5)
                .collect::<Vec<_>>(),
            [1, 3, 32, 32],
        ),
        device,
    );
    loaded
        .model
        .forward(x)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
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
