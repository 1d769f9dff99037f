//! The benchmark behind `mgcc bench`: one full training step of a method (forward of every
//! network it runs, loss, backward, SGD, EMA) and one inference forward at batch 1, timed after
//! a warm-up, on random data, half of the batch labelled. For `mgcc` it mirrors
//! `shared/bench/torch_mgcc.py` (same network, same step, same consistency weight 0.5, same
//! JSON keys), for every method `tools/torch_reference/bench_methods.py`, so the two can be
//! run side by side and compared as ratios.

use std::time::Instant;

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::Distribution;
use mgcc_model::Backbone;
use serde::Serialize;

use crate::config::{MeanTeacherParams, Method, TrainConfig};
use crate::learner::Learner;
use crate::methods::StepInput;
use crate::trainer::step_seed;

/// What to time.
#[derive(Debug, Clone, Serialize)]
pub struct BenchConfig {
    pub width: usize,
    pub size: usize,
    /// Half labelled, half unlabelled (as the yardstick).
    pub batch: usize,
    /// Timed training steps after one warm-up step.
    pub steps: usize,
    /// Inference image size (default: `size`).
    pub infer_size: Option<usize>,
    /// Timed inference runs after one warm-up.
    pub infer_runs: usize,
    /// Skip the training step (inference only).
    pub skip_train: bool,
    /// The method whose step is timed.
    pub method: Method,
    /// The network family.
    pub backbone: Backbone,
}

/// The summary line (same keys as the PyTorch yardstick).
#[derive(Debug, Clone, Serialize)]
pub struct BenchSummary {
    #[serde(rename = "impl")]
    pub implementation: String,
    pub method: String,
    pub backbone: String,
    pub device: String,
    /// The CPU kernels' SIMD path (`avx512`, `avx2`, `scalar`; `null` off the flex CPU
    /// device), see `mgcc_kernels::simd_path`.
    pub simd: Option<&'static str>,
    /// Learnable parameters of the trained networks (both of CPS, the student of a teacher).
    pub params: usize,
    pub width: usize,
    pub size: usize,
    pub batch: usize,
    pub threads: usize,
    pub train_step_median_s: Option<f64>,
    pub infer_size: usize,
    pub infer_median_s: f64,
    pub peak_rss_mib: Option<f64>,
    /// The GPU adapter's name (`None` on the CPU).
    pub adapter: Option<String>,
    /// GPU memory the allocator had reserved from the device after the timed steps, MiB: at
    /// least the peak in use, since pages are kept for reuse (PyTorch's yardstick reports
    /// `torch.cuda.max_memory_allocated`, which is at most its reserved memory).
    pub gpu_reserved_mib: Option<f64>,
    /// GPU memory in use by live tensors after the timed steps, MiB.
    pub gpu_in_use_mib: Option<f64>,
}

/// Median of a non-empty list (mean of the two middle values for even lengths).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Peak resident set size of this process in MiB (Linux `VmHWM`), if known.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Run the benchmark; `emit` receives each JSON line (per-step lines, then the summary).
pub fn run(
    cfg: &BenchConfig,
    device: &Device,
    device_name: &str,
    mut emit: impl FnMut(String),
) -> BenchSummary {
    let ad = device.clone().autodiff();
    let train_cfg = TrainConfig {
        method: cfg.method,
        backbone: cfg.backbone,
        width: Some(cfg.width),
        size: cfg.size,
        batch: cfg.batch,
        labeled_batch: cfg.batch / 2,
        seed: 0,
        // Time the step with the teacher pass, as it runs after the first 1000 iterations.
        mean_teacher: MeanTeacherParams {
            consistency_start: 0,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut learner = Learner::new(&train_cfg, &ad);
    let params = learner.num_trained_params();
    let half = cfg.batch / 2;
    let x = Tensor::<4>::random(
        [cfg.batch, 3, cfg.size, cfg.size],
        Distribution::Uniform(0.0, 1.0),
        &ad,
    );
    let y = Tensor::<4>::random(
        [half, 1, cfg.size, cfg.size],
        Distribution::Uniform(0.0, 1.0),
        &ad,
    )
    .greater_elem(0.7)
    .float();
    // The yardsticks' weights: 0.5 for mgcc (torch_mgcc.py), the method's C otherwise.
    let weight = match cfg.method {
        Method::Mgcc => 0.5,
        m => m.default_consistency(),
    };

    let mut train_median = None;
    if !cfg.skip_train {
        let mut times = Vec::new();
        for i in 0..=cfg.steps {
            ad.seed(step_seed(0, i));
            let t0 = Instant::now();
            let input = StepInput {
                images: x.clone(),
                masks: y.clone(),
                n_labeled: half,
                t: i,
                total: 40000,
                weight,
            };
            let (next, losses) = learner.step(input, 0.01);
            // The step reads the losses back, which waits for the forward; wait for the
            // backward and the update too (queued on a GPU, pending running statistics on flex).
            let _ = next.net().valid();
            device
                .sync()
                .expect("the device failed while running the step");
            let dt = t0.elapsed().as_secs_f64();
            learner = next;
            if i > 0 {
                times.push(dt);
            }
            emit(
                serde_json::json!({"train_step": i, "seconds": round4(dt), "loss": losses.total})
                    .to_string(),
            );
        }
        train_median = Some(round4(median(&times)));
    }

    let valid = learner.net().valid();
    let s = cfg.infer_size.unwrap_or(cfg.size);
    let xi = Tensor::<4>::random([1, 3, s, s], Distribution::Uniform(0.0, 1.0), device);
    let mut itimes = Vec::new();
    for i in 0..=cfg.infer_runs {
        let t0 = Instant::now();
        // As predict and evaluate run it: on a worker of the CPU pool (no sigmoid, as the
        // PyTorch yardstick times the bare forward).
        let _ = mgcc_kernels::on_pool(|| valid.forward(xi.clone()).into_data());
        if i > 0 {
            itimes.push(t0.elapsed().as_secs_f64());
        }
    }
    let gpu = crate::device::gpu_memory_mib(device);
    let summary = BenchSummary {
        implementation: "mgcc-rust-burn".into(),
        method: cfg.method.name().into(),
        backbone: cfg.backbone.name().into(),
        device: device_name.into(),
        simd: mgcc_kernels::simd_path(device).map(|l| l.name()),
        params,
        width: cfg.width,
        size: cfg.size,
        batch: cfg.batch,
        threads: rayon_threads(),
        train_step_median_s: train_median,
        infer_size: s,
        infer_median_s: round4(median(&itimes)),
        peak_rss_mib: peak_rss_mib().map(|v| (v * 10.0).round() / 10.0),
        adapter: crate::device::adapter_name(device),
        gpu_reserved_mib: gpu.map(|g| g.1),
        gpu_in_use_mib: gpu.map(|g| g.0),
    };
    emit(serde_json::to_string(&summary).unwrap_or_default());
    summary
}

fn rayon_threads() -> usize {
    rayon::current_num_threads()
}

fn round4(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_lists() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn peak_rss_is_positive_on_linux() {
        assert!(peak_rss_mib().is_some_and(|v| v > 0.0));
    }
}
