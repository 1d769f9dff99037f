//! The GPU path against the CPU path (built with `--features wgpu`; CI runs it on Mesa's software
//! Vulkan driver, lavapipe). mgcc's CPU kernels run on flex only, so on a GPU every layer goes
//! through burn's own ops: each test runs the same weights and inputs on both and bounds the
//! difference, or trains on the GPU and checks what it learned and wrote.
//!
//! The device is `MGCC_TEST_GPU` (default `wgpu:cpu`, the software adapter; `wgpu` takes the
//! best real GPU). Without a usable adapter the tests print why and pass, unless
//! `MGCC_REQUIRE_GPU=1` (set by `.ci/run` once it has installed lavapipe) makes that a failure.
//! Autotuning runs at its minimal level (`CUBECL_AUTOTUNE_LEVEL` overrides it).
//!
//! Tolerances are relative to the largest magnitude compared (`max|a − b| ≤ tol·max(1, max|a|)`):
//! the two backends sum in different orders in float32, so outputs agree to about 1e-6 of
//! their scale and one step's weight updates to about 1e-4 of the update (measured values are
//! in docs/gpu.md); the bounds leave a margin of 10× or more.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, OnceLock};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use mgcc_data::phantom::{PhantomConfig, write_dataset};
use mgcc_data::{SplitOptions, write_splits};
use mgcc_diffusion::sampler::{SamplerConfig, sample};
use mgcc_diffusion::schedule::ScheduleConfig;
use mgcc_diffusion::unet::UnetConfig;
use mgcc_diffusion::vae::VaeConfig;
use mgcc_model::{Backbone, Perturbation, SegNet};
use mgcc_train::config::MeanTeacherParams;
use mgcc_train::device::{parse_device, set_autotune_level};
use mgcc_train::learner::Learner;
use mgcc_train::methods::StepInput;
use mgcc_train::run::load_for_inference;
use mgcc_train::{Method, RunOptions, TrainConfig};

/// Outputs of one network on two devices.
const OUTPUT_TOL: f32 = 1e-4;
/// Training-mode outputs: batch statistics over 2 images of 2×2 pixels at MGCC's bottleneck
/// amplify rounding (measured 9e-5 of scale).
const TRAIN_MODE_TOL: f32 = 1e-3;

/// The GPU under test, or `None` (with the reason printed) when there is none to use.
fn gpu() -> Option<Device> {
    static GPU: OnceLock<Option<Device>> = OnceLock::new();
    GPU.get_or_init(|| {
        set_autotune_level("minimal");
        let spec = std::env::var("MGCC_TEST_GPU").unwrap_or_else(|_| "wgpu:cpu".into());
        let device = parse_device(&spec).unwrap_or_else(|e| panic!("MGCC_TEST_GPU: {e}"));
        let probe = {
            let device = device.clone();
            std::panic::catch_unwind(move || {
                Tensor::<1>::from_floats([1.0, 2.0], &device)
                    .sum()
                    .into_scalar::<f32>()
            })
        };
        match probe {
            Ok(3.0) => {
                let name = mgcc_train::device::adapter_name(&device).unwrap_or_default();
                eprintln!("GPU tests on `{spec}`: {name}");
                Some(device)
            }
            other => {
                let why = match other {
                    Ok(v) => format!("1 + 2 gave {v}"),
                    Err(_) => "no adapter could be opened (is a Vulkan driver installed? Debian: mesa-vulkan-drivers libvulkan1)".into(),
                };
                if std::env::var("MGCC_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                    panic!("MGCC_REQUIRE_GPU=1 but `{spec}` is unusable: {why}");
                }
                eprintln!("SKIPPED: GPU tests need a usable `{spec}`: {why}");
                None
            }
        }
    })
    .clone()
}

/// One test at a time: they share the adapter, and flex's process-wide RNG is re-seeded by the
/// network initialisations.
fn turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// `max|a − b|` and `max|a|`.
fn diff(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold((0.0, 0.0), |(d, m), (x, y)| {
        (d.max((x - y).abs()), m.max(x.abs()))
    })
}

fn assert_close(what: &str, cpu: &[f32], gpu: &[f32], tol: f32) -> f32 {
    let (d, scale) = diff(cpu, gpu);
    assert!(
        d.is_finite() && d <= tol * scale.max(1.0),
        "{what}: max difference {d:.3e} at scale {scale:.3e} exceeds {tol:.0e}"
    );
    eprintln!("{what}: max difference {d:.3e} (scale {scale:.3e})");
    d
}

/// Deterministic values in [lo, hi) (no RNG, so both devices get the same input).
fn pattern(n: usize, seed: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let u = ((i * 7919 + seed * 104_729) % 1009) as f32 / 1009.0;
            lo + (hi - lo) * u
        })
        .collect()
}

fn tensor(v: &[f32], shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), device)
}

/// Every float parameter (and running statistic) of a module, in visiting order.
fn params<M: Module>(m: &M) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(values(param.val()));
        }
    }
    let mut c = Collect(Vec::new());
    m.visit(&mut c);
    c.0
}

/// MGCC's network, or the UNet backbone with CCT's auxiliary decoders.
/// Adds deterministic values in ±0.2 to every parameter, so the zero-initialised output
/// layers of the generation networks carry signal.
fn scramble<M: Module>(m: M) -> M {
    struct Scramble(usize);
    impl ModuleMapper for Scramble {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            self.0 += 1;
            let seed = self.0;
            param.map(|t| {
                let (shape, device) = (t.shape(), t.device());
                let v = pattern(shape.num_elements(), seed, -0.2, 0.2);
                t + Tensor::from_data(TensorData::new(v, shape), &device)
            })
        }
    }
    m.map(&mut Scramble(0))
}

fn net_config(backbone: Backbone) -> mgcc_model::NetConfig {
    TrainConfig {
        backbone,
        method: match backbone {
            Backbone::Mgcc => Method::Mgcc,
            Backbone::Unet => Method::Cct,
        },
        width: Some(4),
        ..Default::default()
    }
    .net_config()
}

/// The network on the GPU equals the CPU's: in training mode (an autodiff device: batch
/// statistics, every decoder, perturbations off), which also updates the running statistics,
/// and then in inference mode with those statistics.
#[test]
fn network_outputs_equal_the_cpu_in_both_modes() {
    let _t = turn();
    let Some(gpu) = gpu() else { return };
    let cpu = Device::flex();
    let (cpu_ad, gpu_ad) = (cpu.clone().autodiff(), gpu.clone().autodiff());
    let x = pattern(2 * 3 * 32 * 32, 1, 0.0, 1.0);
    for backbone in [Backbone::Mgcc, Backbone::Unet] {
        cpu_ad.seed(7);
        let net: SegNet = net_config(backbone).init(&cpu_ad);
        let net_gpu = net.clone().to_device(&gpu_ad);
        let a = net.forward_train(tensor(&x, [2, 3, 32, 32], &cpu_ad), &Perturbation::none());
        let b = net_gpu.forward_train(tensor(&x, [2, 3, 32, 32], &gpu_ad), &Perturbation::none());
        assert_eq!(a.len(), b.len());
        let net = net.valid();
        let net_gpu = if backbone == Backbone::Mgcc {
            assert_eq!(a.len(), 4, "main and three auxiliary decoders");
            for (i, (a, b)) in a.into_iter().zip(b).enumerate() {
                assert_close(
                    &format!("mgcc train-mode output {i}"),
                    &values(a),
                    &values(b),
                    TRAIN_MODE_TOL,
                );
            }
            net_gpu.valid()
        } else {
            // The UNet's own encoder dropout (SSL4MIS) draws from each device's RNG, so its
            // training mode differs by design: the CPU's updated statistics are carried over.
            net.clone().to_device(&gpu)
        };
        assert_close(
            &format!("{} parameters after the pass", backbone.name()),
            &params(&net).concat(),
            &params(&net_gpu).concat(),
            OUTPUT_TOL,
        );
        let a = net.forward(tensor(&x, [2, 3, 32, 32], &cpu));
        let b = net_gpu.forward(tensor(&x, [2, 3, 32, 32], &gpu));
        assert_close(
            &format!("{} inference output", backbone.name()),
            &values(a),
            &values(b),
            OUTPUT_TOL,
        );
    }
}

/// The configuration of the step tests: deterministic (no perturbation, no teacher noise).
fn step_config(method: Method, backbone: Backbone) -> TrainConfig {
    TrainConfig {
        method,
        backbone,
        width: Some(4),
        size: 32,
        batch: 4,
        labeled_batch: 2,
        seed: 9,
        perturbation: Perturbation::none(),
        mean_teacher: MeanTeacherParams {
            noise_std: 0.0,
            consistency_start: 0,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn step_input(device: &Device) -> StepInput {
    let images = pattern(4 * 3 * 32 * 32, 2, 0.0, 1.0);
    let masks: Vec<f32> = pattern(2 * 32 * 32, 3, 0.0, 1.0)
        .into_iter()
        .map(|v| if v > 0.6 { 1.0 } else { 0.0 })
        .collect();
    StepInput {
        images: tensor(&images, [4, 3, 32, 32], device),
        masks: tensor(&masks, [2, 1, 32, 32], device),
        n_labeled: 2,
        t: 5,
        total: 100,
        weight: 0.7,
    }
}

/// Every method's training step runs on the GPU from the CPU's checkpoint: the same losses as
/// the CPU's, and every network the method trains (CPS's peer too) and the teacher's EMA moved,
/// with finite weights. The weight changes are not compared element by element: at this size
/// one step's gradients are ill-conditioned (a `1 ± 1e-6` jitter of the weights changes them on
/// the CPU alone by up to 170%), so `network_parameter_gradients_equal_the_cpu` compares
/// gradients against the CPU's own sensitivity instead.
#[test]
fn every_method_takes_the_same_training_step_as_the_cpu() {
    let _t = turn();
    let Some(gpu) = gpu() else { return };
    let cpu = Device::flex().autodiff();
    let gpu_ad = gpu.clone().autodiff();
    let tmp = tempfile::tempdir().unwrap();
    for backbone in [Backbone::Mgcc, Backbone::Unet] {
        for method in Method::ALL {
            if method.check_backbone(backbone).is_err() {
                continue;
            }
            let name = format!("{}-{}", backbone.name(), method);
            let cfg = step_config(method, backbone);
            let dir = tmp.path().join(&name);
            std::fs::create_dir_all(&dir).unwrap();
            let on_cpu = Learner::new(&cfg, &cpu);
            on_cpu.save(&dir, true).unwrap();
            let on_gpu = Learner::new(&cfg, &gpu_ad).load(&dir).unwrap();
            let before = params(on_cpu.net());
            assert_eq!(
                params(on_gpu.net()),
                before,
                "{name}: the CPU's checkpoint loads unchanged on the GPU"
            );
            let (on_cpu, l_cpu) = on_cpu.step(step_input(&cpu), 0.5);
            let (on_gpu, l_gpu) = on_gpu.step(step_input(&gpu_ad), 0.5);
            assert!(l_gpu.total.is_finite(), "{name}: GPU loss {l_gpu:?}");
            // UA-MT's uncertainty (dropout passes of the teacher) and the UNet's encoder dropout
            // draw from each device's own RNG: their losses differ by design. (The UNet's
            // bilinear upsampling has no backward in burn-cubecl: `bilinear.rs` works around it.)
            let deterministic = backbone == Backbone::Mgcc && method != Method::UaMt;
            if deterministic {
                assert_close(
                    &format!("{name} losses"),
                    &[l_cpu.supervised, l_cpu.consistency, l_cpu.total],
                    &[l_gpu.supervised, l_gpu.consistency, l_gpu.total],
                    OUTPUT_TOL,
                );
            }
            let mut nets = vec![("net", on_cpu.net(), on_gpu.net())];
            if let (Some(a), Some(b)) = (on_cpu.peer(), on_gpu.peer()) {
                nets.push(("peer", a, b));
            }
            if let (Some(a), Some(b)) = (on_cpu.teacher(), on_gpu.teacher()) {
                nets.push(("teacher", a, b));
            }
            for (which, a, b) in nets {
                let (a, b) = (params(a), params(b));
                assert_eq!(a.len(), b.len());
                let moved: Vec<f32> = a
                    .iter()
                    .zip(&before)
                    .flat_map(|(w1, w0)| w1.iter().zip(w0).map(|(x, y)| x - y))
                    .collect();
                let moved_gpu: Vec<f32> = b
                    .iter()
                    .zip(&before)
                    .flat_map(|(w1, w0)| w1.iter().zip(w0).map(|(x, y)| x - y))
                    .collect();
                let largest = |v: &[f32]| v.iter().fold(0f32, |m, v| m.max(v.abs()));
                assert!(
                    b.iter().flatten().all(|w| w.is_finite()),
                    "{name} {which}: non-finite weight after the GPU step"
                );
                assert!(
                    largest(&moved) > 1e-6,
                    "{name} {which}: the CPU step moved nothing"
                );
                assert!(
                    largest(&moved_gpu) > 0.1 * largest(&moved),
                    "{name} {which}: the GPU step moved {:.3e}, the CPU's {:.3e}",
                    largest(&moved_gpu),
                    largest(&moved)
                );
                let (d, scale) = diff(&moved, &moved_gpu);
                eprintln!("{name} {which}: weight change differs by {d:.3e} of {scale:.3e}");
            }
        }
    }
}

/// The `mgcc` binary: `MGCC_BIN` (a carried binary on a GPU machine, scripts/gpu-check.sh), else
/// this build's.
fn mgcc(args: &[&str]) -> std::process::Output {
    let bin = std::env::var("MGCC_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_mgcc").into());
    std::process::Command::new(bin)
        .args(args)
        .env("NO_COLOR", "1")
        .env(
            "CUBECL_AUTOTUNE_LEVEL",
            std::env::var("CUBECL_AUTOTUNE_LEVEL").unwrap_or_else(|_| "minimal".into()),
        )
        .output()
        .expect("run mgcc")
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn write_phantoms(dir: &Path, n: usize, size: usize) {
    write_dataset(
        &PhantomConfig {
            n,
            width: size,
            height: size,
            seed: 11,
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

fn quiet(stop_after: Option<usize>) -> RunOptions {
    RunOptions {
        stop_after,
        progress_bar: false,
        quiet: true,
    }
}

/// Logits of a run's `last` checkpoint on a fixed input, loaded onto `device`.
fn run_output(run: &Path, device: &Device) -> Vec<f32> {
    let loaded = load_for_inference(run, "last", device).unwrap();
    let x = pattern(3 * 32 * 32, 4, 0.0, 1.0);
    values(loaded.model.forward(tensor(&x, [1, 3, 32, 32], device)))
}

/// A short MGCC run on the GPU learns (its validation IoU clears the bound that the same
/// configuration clears on the CPU), resumes to the weights of an uninterrupted run, and its
/// checkpoint gives the same output on the CPU as on the GPU.
#[test]
fn a_short_gpu_run_learns_resumes_and_its_checkpoint_runs_on_the_cpu() {
    let _t = turn();
    let Some(gpu) = gpu() else { return };
    let gpu_ad = gpu.clone().autodiff();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_phantoms(&data, 24, 32);
    // On the CPU this configuration reaches a best val IoU of 0.67, 0.70, 0.59 and 0.60 with
    // seeds 41–44 (width 4 or 8 labelled images stay below 0.45).
    let cfg = TrainConfig {
        data: data.clone(),
        method: Method::Mgcc,
        labeled_count: Some(12),
        batch: 8,
        labeled_batch: 4,
        size: 32,
        width: Some(8),
        iterations: Some(60),
        lr: 0.05,
        val_every: Some(20),
        rampup: 30,
        rampup_step: 10,
        seed: 41,
        ..Default::default()
    };
    let one_go = tmp.path().join("one_go");
    let out = mgcc_train::train(cfg.clone(), &one_go, &gpu_ad, &quiet(None)).unwrap();
    let best = out.best_iou.unwrap();
    let history = std::fs::read_to_string(one_go.join("metrics.csv")).unwrap();
    eprintln!("GPU run: best val IoU {best}\n{history}");
    assert!(
        best >= 0.5,
        "val IoU {best} below 0.5 after 60 GPU iterations"
    );

    // The GPU's checkpoint on the CPU.
    assert_close(
        "GPU-trained checkpoint, CPU vs GPU",
        &run_output(&one_go, &Device::flex()),
        &run_output(&one_go, &gpu),
        OUTPUT_TOL,
    );

    // Resume, on a smaller run to spare CI's time: stop after 4 of 8 iterations, continue, and
    // compare with the run in one go.
    let small = TrainConfig {
        width: Some(4),
        iterations: Some(8),
        val_every: Some(4),
        rampup: 4,
        rampup_step: 1,
        ..cfg
    };
    let one_go = tmp.path().join("small_one_go");
    mgcc_train::train(small.clone(), &one_go, &gpu_ad, &quiet(None)).unwrap();
    let split = tmp.path().join("small_split");
    let stopped = mgcc_train::train(small, &split, &gpu_ad, &quiet(Some(4))).unwrap();
    assert_eq!(stopped.iterations_done, 4);
    let resumed = mgcc_train::resume(&split, &gpu_ad, &quiet(None)).unwrap();
    assert_eq!(resumed.iterations_done, 8);
    assert_close(
        "resumed vs one-go GPU run",
        &run_output(&one_go, &gpu),
        &run_output(&split, &gpu),
        OUTPUT_TOL,
    );
}

/// A run trained on the CPU, predicted with `mgcc predict --device wgpu:…`: the same 8-bit
/// probability maps as `--device cpu`; and `mgcc bench` on the GPU reports its adapter and
/// memory.
#[test]
fn cli_predict_and_bench_on_the_gpu() {
    let _t = turn();
    if gpu().is_none() {
        return;
    }
    let spec = std::env::var("MGCC_TEST_GPU").unwrap_or_else(|_| "wgpu:cpu".into());
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_phantoms(&data, 8, 32);
    let run = tmp.path().join("run");
    let out = mgcc(&[
        "train",
        p(&data),
        "--split",
        "1",
        "--out",
        p(&run),
        "--width",
        "2",
        "--size",
        "32",
        "--iterations",
        "4",
        "--val-every",
        "4",
        "--batch",
        "4",
        "--labeled-batch",
        "2",
        "--labeled-count",
        "4",
        "--no-progress",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let mut maps = Vec::new();
    for device in ["cpu", spec.as_str()] {
        let dir = tmp
            .path()
            .join(format!("pred-{}", device.replace(':', "-")));
        let out = mgcc(&[
            "predict",
            p(&run),
            p(&data.join("images")),
            p(&dir),
            "--probabilities",
            "--device",
            device,
        ]);
        assert!(out.status.success(), "{device}: {}", text(&out));
        let mut files: Vec<_> = std::fs::read_dir(dir.join("probabilities"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert_eq!(files.len(), 8);
        maps.push(
            files
                .iter()
                .map(|f| image::open(f).unwrap().to_luma8().into_raw())
                .collect::<Vec<_>>(),
        );
    }
    let worst = maps[0]
        .iter()
        .zip(&maps[1])
        .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)))
        .max()
        .unwrap();
    assert!(worst <= 1, "probability maps differ by {worst}/255");

    let out = mgcc(&[
        "bench",
        "--device",
        &spec,
        "--width",
        "2",
        "--size",
        "32",
        "--batch",
        "2",
        "--steps",
        "1",
        "--infer-runs",
        "1",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert!(summary["adapter"].is_string(), "{summary}");
    assert!(
        summary["gpu_reserved_mib"].as_f64().unwrap() > 0.0,
        "{summary}"
    );
    assert!(
        summary["train_step_median_s"].as_f64().unwrap() > 0.0,
        "{summary}"
    );
}

/// The generation stage: autoencoder and denoiser outputs equal the CPU's, and a DDIM sample
/// from the same seeds (its noise is drawn on the CPU) equals the CPU's within tolerance.
#[test]
fn autoencoder_denoiser_and_sampler_equal_the_cpu() {
    let _t = turn();
    let Some(gpu) = gpu() else { return };
    let cpu = Device::flex();
    cpu.seed(3);
    let vae = VaeConfig {
        channels: vec![8, 16],
        latent_channels: 2,
        groups: 4,
        ..Default::default()
    }
    .init(&cpu);
    let vae = scramble(vae);
    let vae_gpu = vae.clone().to_device(&gpu);
    let x = pattern(2 * 3 * 32 * 32, 5, -1.0, 1.0);
    let (pa, pb) = (
        vae.encode(tensor(&x, [2, 3, 32, 32], &cpu)),
        vae_gpu.encode(tensor(&x, [2, 3, 32, 32], &gpu)),
    );
    assert_close(
        "VAE mean",
        &values(pa.mean.clone()),
        &values(pb.mean),
        OUTPUT_TOL,
    );
    assert_close(
        "VAE log-variance",
        &values(pa.logvar),
        &values(pb.logvar),
        OUTPUT_TOL,
    );
    let z = values(pa.mean);
    let (da, db) = (
        vae.decode(tensor(&z, [2, 2, 16, 16], &cpu)),
        vae_gpu.decode(tensor(&z, [2, 2, 16, 16], &gpu)),
    );
    assert_close(
        "VAE decoded",
        &values(da.image),
        &values(db.image),
        OUTPUT_TOL,
    );
    assert_close(
        "VAE half-resolution head",
        &values(da.half.unwrap()),
        &values(db.half.unwrap()),
        OUTPUT_TOL,
    );

    let unet = UnetConfig {
        latent_channels: 2,
        channels: vec![16, 16, 32],
        blocks: 1,
        time_dim: 16,
        emb_dim: 32,
        num_classes: 2,
        attention: true,
        groups: 4,
        ..Default::default()
    }
    .init(&cpu);
    let unet = scramble(unet);
    let unet_gpu = unet.clone().to_device(&gpu);
    let xt = pattern(2 * 2 * 8 * 8, 6, -2.0, 2.0);
    let t = [10.0, 700.0];
    let a = unet.forward(tensor(&xt, [2, 2, 8, 8], &cpu), &t, Some(&[0, 1]));
    let b = unet_gpu.forward(tensor(&xt, [2, 2, 8, 8], &gpu), &t, Some(&[0, 1]));
    assert_close("denoiser output", &values(a), &values(b), OUTPUT_TOL);

    let schedule = ScheduleConfig::default().build();
    let sampler = SamplerConfig {
        steps: 8,
        guidance: 2.0,
        ..Default::default()
    };
    let seeds = [1, 2];
    let classes = [1, 0];
    let a = sample(
        &unet,
        &schedule,
        &sampler,
        [2, 8, 8],
        &seeds,
        Some(&classes),
        &cpu,
    );
    let b = sample(
        &unet_gpu,
        &schedule,
        &sampler,
        [2, 8, 8],
        &seeds,
        Some(&classes),
        &gpu,
    );
    // Eight steps compound the per-step rounding differences.
    assert_close(
        "DDIM sample (η = 1, guidance 2)",
        &values(a),
        &values(b),
        10.0 * OUTPUT_TOL,
    );
}

/// Each operation the networks are built of, alone (plus a conv → batch norm + ReLU → conv
/// chain): its gradients on the GPU equal the CPU's.
#[test]
fn single_operation_gradients_equal_the_cpu() {
    let _t = turn();
    let Some(gpu) = gpu() else { return };
    let devs = [Device::flex().autodiff(), gpu.clone().autodiff()];
    let xs = pattern(2 * 4 * 8 * 8, 1, -1.0, 1.0);
    let ws = pattern(4 * 4 * 9, 2, -0.5, 0.5);
    let rs = pattern(2 * 4 * 8 * 8, 3, -1.0, 1.0);
    let gam = pattern(4, 4, 0.5, 1.5);
    type F = fn(Tensor<4>, Tensor<4>, Tensor<1>) -> Tensor<4>;
    let cases: Vec<(&str, F)> = vec![
        ("conv", |x, w, _| {
            burn::tensor::module::conv2d(
                x,
                w,
                None,
                burn::tensor::ops::ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
            )
        }),
        ("bn", |x, _, g| {
            let b = g.clone() * 0.1;
            burn::tensor::module::batch_norm_train(x, g, b, 1e-5).output
        }),
        ("mgcc_bn_relu", |x, _, g| {
            let b = g.clone() * 0.1;
            mgcc_kernels::batch_norm_train(x, g, b, 1e-5, true).0
        }),
        ("maxpool", |x, _, _| {
            burn::tensor::module::max_pool2d(x, burn::tensor::ops::MaxPoolOptions::new([2, 2]))
                .repeat_dim(2, 2)
                .repeat_dim(3, 2)
        }),
        ("sigmoid", |x, _, _| burn::tensor::activation::sigmoid(x)),
        ("depthwise", |x, w, _| {
            burn::tensor::module::conv2d(
                x,
                w.narrow(1, 0, 1),
                None,
                burn::tensor::ops::ConvOptions::new([1, 1], [1, 1], [1, 1], 4),
            )
        }),
        ("mgcc_conv", |x, w, _| {
            mgcc_kernels::conv2d(
                x,
                w.clone(),
                Some(w.sum_dim(1).sum_dim(2).sum_dim(3).reshape([4])),
                burn::tensor::ops::ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
            )
        }),
        ("chain", |x, w, g| {
            let o = burn::tensor::ops::ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
            let y = burn::tensor::module::conv2d(x, w.clone(), None, o.clone());
            let y = mgcc_kernels::batch_norm_train(y, g.clone(), g.clone() * 0.1, 1e-5, true).0;
            burn::tensor::module::conv2d(y, w, None, o)
        }),
        ("cat", |x, _, _| {
            Tensor::cat(
                vec![x.clone().narrow(1, 0, 2), (x.clone() * 2.0).narrow(1, 2, 2)],
                1,
            ) * x
        }),
        ("relu", |x, _, _| burn::tensor::activation::relu(x)),
        ("mul_self", |x, _, _| x.clone() * x),
    ];
    for (name, f) in cases {
        let mut res = Vec::new();
        for d in &devs {
            let x = tensor(&xs, [2, 4, 8, 8], d).require_grad();
            let w = tensor(&ws, [4, 4, 3, 3], d).require_grad();
            let g = Tensor::<1>::from_data(TensorData::new(gam.clone(), [4]), d).require_grad();
            let y = f(x.clone(), w.clone(), g.clone());
            let loss = (y * tensor(&rs, [2, 4, 8, 8], d)).sum();
            let grads = loss.backward();
            res.push((
                x.grad(&grads).map(values).unwrap_or_default(),
                w.grad(&grads).map(values).unwrap_or_default(),
                g.grad(&grads).map(values).unwrap_or_default(),
            ));
        }
        let dx = diff(&res[0].0, &res[1].0);
        let dw = if res[0].1.len() == res[1].1.len() {
            diff(&res[0].1, &res[1].1)
        } else {
            (-1.0, -1.0)
        };
        let dg = if res[0].2.len() == res[1].2.len() {
            diff(&res[0].2, &res[1].2)
        } else {
            (-1.0, -1.0)
        };
        eprintln!(
            "{name} gradients: x {:.2e} of {:.2e}, weight {:.2e} of {:.2e}, gamma {:.2e} of {:.2e}",
            dx.0, dx.1, dw.0, dw.1, dg.0, dg.1
        );
        for (what, (d, scale)) in [("x", dx), ("weight", dw), ("gamma", dg)] {
            assert!(
                d >= 0.0 && d <= OUTPUT_TOL * scale.max(1.0),
                "{name}: {what} gradient differs by {d:.3e} at scale {scale:.3e}"
            );
        }
    }
}

/// Per-parameter gradients of the whole MGCC network (a linear loss on all four decoders' outputs,
/// training mode) on the GPU agree with the CPU's as closely as the CPU's agree with themselves
/// after a rounding-level change: each weight multiplied by a factor in `1 ± 1e-6`. The
/// network's gradients are ill-conditioned at this size (batch statistics over few pixels, ReLU
/// kinks), so a fixed tolerance would be either loose or flaky; this one scales with the CPU's
/// own sensitivity, per parameter, and a real backward bug (a missing or wrong term) exceeds
/// it by orders of magnitude.
#[test]
fn network_parameter_gradients_equal_the_cpu() {
    let _t = turn();
    let Some(gpu) = gpu() else { return };
    struct Grads<'a>(&'a GradientsParams, Vec<String>, Vec<(String, Vec<f32>)>);
    impl ModuleVisitor for Grads<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.1.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.1.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.0.get::<D>(param.id) {
                self.2.push((self.1.join("."), values(g)));
            }
        }
    }
    /// Every weight times a deterministic factor in `1 ± e`, as a new leaf.
    struct Jitter(f32, usize);
    impl ModuleMapper for Jitter {
        fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
            self.1 += 1;
            let (e, seed) = (self.0, self.1);
            p.map(|t| {
                let (shape, device) = (t.shape(), t.device());
                let v = pattern(shape.num_elements(), seed, 1.0 - e, 1.0 + e);
                (t * Tensor::from_data(TensorData::new(v, shape), &device))
                    .detach()
                    .require_grad()
            })
        }
    }
    let (cpu_ad, gpu_ad) = (Device::flex().autodiff(), gpu.clone().autodiff());
    let x = pattern(2 * 3 * 32 * 32, 1, 0.0, 1.0);
    let r = pattern(2 * 32 * 32, 5, -1.0, 1.0);
    cpu_ad.seed(7);
    let net: SegNet = net_config(Backbone::Mgcc).init(&cpu_ad);
    // The GPU's copy as training gets it: initialised there, the CPU's weights loaded.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("net.bpk");
    net.save_weights(&file).unwrap();
    let on_gpu = net_config(Backbone::Mgcc)
        .init(&gpu_ad)
        .load_weights(&file)
        .unwrap();
    let jittered = net.clone().map(&mut Jitter(1e-6, 0));
    let mut res = Vec::new();
    for (net, d) in [(net, &cpu_ad), (jittered, &cpu_ad), (on_gpu, &gpu_ad)] {
        let outs = net.forward_train(tensor(&x, [2, 3, 32, 32], d), &Perturbation::none());
        assert_eq!(outs.len(), 4);
        let loss = outs
            .into_iter()
            .map(|o| (o * tensor(&r, [2, 1, 32, 32], d)).sum())
            .reduce(|a, b| a + b)
            .unwrap();
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        let mut v = Grads(&grads, Vec::new(), Vec::new());
        net.visit(&mut v);
        res.push(v.2);
    }
    assert!(res[0].len() > 200, "{} gradients", res[0].len());
    assert!(res.iter().all(|r| r.len() == res[0].len()));
    // Float32 rounding of sums at the network's largest gradient scale: what is left of a
    // gradient whose true value is 0 (a convolution's bias in front of batch norm).
    let global = res[0]
        .iter()
        .flat_map(|(_, g)| g)
        .fold(0f32, |m, v| m.max(v.abs()));
    let floor = 1e-7 * global;
    let (mut worst, mut worst_name) = (0f32, String::new());
    let mut failed = Vec::new();
    for (((name, cpu), (_, jit)), (_, gpu)) in res[0].iter().zip(&res[1]).zip(&res[2]) {
        let (d_gpu, scale) = diff(cpu, gpu);
        let (d_jit, _) = diff(cpu, jit);
        // Ten times the CPU's own spread, plus 1e-3 of the parameter's gradient scale.
        let bound = 10.0 * d_jit + 1e-3 * scale + floor;
        if d_gpu / bound > worst {
            (worst, worst_name) = (d_gpu / bound, name.clone());
        }
        if d_gpu.is_nan() || d_gpu > bound {
            failed.push(format!(
                "{name}: GPU differs by {d_gpu:.2e}, jittered CPU by {d_jit:.2e}, scale {scale:.2e}"
            ));
        }
    }
    eprintln!(
        "{} parameter gradients: largest GPU difference / bound {worst:.2} ({worst_name})",
        res[0].len()
    );
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// The training losses' gradients with respect to the logits on the GPU equal the CPU's (to 1e-4
/// of their scale; measured ≤ 2e-7).
#[test]
fn loss_gradients_equal_the_cpu() {
    let _t = turn();
    let Some(gpu) = gpu() else { return };
    use mgcc_train::loss::{bce_dice, bce_with_logits_elementwise, consistency};
    let xs = pattern(2 * 2 * 8 * 8, 1, -3.0, 3.0);
    let ms: Vec<f32> = pattern(2 * 8 * 8, 3, 0.0, 1.0)
        .into_iter()
        .map(|v| if v > 0.6 { 1.0 } else { 0.0 })
        .collect();
    type L = fn(Tensor<4>, Tensor<4>) -> Tensor<1>;
    let cases: Vec<(&str, L)> = vec![
        ("bce_dice", |x, m| bce_dice(x.narrow(1, 0, 1), m)),
        ("bce", |x, m| {
            bce_with_logits_elementwise(x.narrow(1, 0, 1), m).mean()
        }),
        ("clamp_min", |x, _| x.clamp_min(0.0).sum()),
        ("abs", |x, _| x.abs().sum()),
        ("softplus", |x, _| x.abs().neg().exp().log1p().sum()),
        ("mean", |x, _| (x.clone() * x).mean()),
        ("narrow_batch", |x, m| {
            bce_dice(x.narrow(0, 0, 1).narrow(1, 0, 1), m.narrow(0, 0, 1))
        }),
        ("narrow_batch_sum", |x, _| {
            (x.clone().narrow(0, 1, 1) * x.narrow(0, 1, 1)).sum()
        }),
        ("consistency", |x, _| {
            consistency(x.clone().narrow(1, 0, 1), x.narrow(1, 1, 1))
        }),
    ];
    for (name, f) in cases {
        let mut res = Vec::new();
        for d in [Device::flex().autodiff(), gpu.clone().autodiff()] {
            let x = tensor(&xs, [2, 2, 8, 8], &d).require_grad();
            let m = tensor(&ms, [2, 1, 8, 8], &d);
            let grads = f(x.clone(), m).backward();
            res.push(values(x.grad(&grads).unwrap()));
        }
        let (d, scale) = diff(&res[0], &res[1]);
        assert!(
            scale > 0.0 && d <= OUTPUT_TOL * scale,
            "{name}: gradient differs by {d:.3e} at scale {scale:.3e}"
        );
        eprintln!("{name}: gradient differs by {d:.2e} of {scale:.2e}");
    }
}
