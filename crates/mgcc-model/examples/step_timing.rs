//! Rough CPU timing of one MGCC training step (forward_train + backward) on flex, plus the
//! operations that dominate it. Not a benchmark suite; for orientation when optimising.
//!
//! `RAYON_NUM_THREADS=2 cargo run --release -p mgcc-model --example step_timing -- [width] [size] [batch] [steps]`

use std::time::Instant;

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::tensor::activation::{gelu, relu};
use burn::tensor::module::{batch_norm_train, interpolate};
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Distribution, Tensor};
use mgcc_model::MgccConfig;

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

/// Median seconds of `runs` calls of `f` after one warm-up.
fn median(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            secs(s)
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    let (width, size, batch, steps) = (arg(1, 16), arg(2, 128), arg(3, 8), arg(4, 3));
    let device = Device::flex().autodiff();
    device.seed(0);
    let model = MgccConfig::new().with_width(width).init(&device);
    println!(
        "width {width}, {size}x{size}, batch {batch}, {} learnable params",
        model.num_learnable_params()
    );
    let x = Tensor::<4>::random([batch, 3, size, size], Distribution::Default, &device);
    let loss_of = |outs: Vec<Tensor<4>>| {
        outs.into_iter()
            .map(|o| (o.clone() * o).mean())
            .reduce(|a, b| a + b)
            .unwrap()
    };
    let (mut fwd, mut bwd) = (Vec::new(), Vec::new());
    for step in 0..=steps {
        let t0 = Instant::now();
        let loss = loss_of(model.forward_train(x.clone()));
        let _ = loss.clone().into_scalar::<f32>();
        let f = secs(t0);
        let t1 = Instant::now();
        let grads = loss.backward();
        let b = secs(t1);
        drop(grads);
        println!("step {step}: forward_train {f:.3} s, backward {b:.3} s");
        if step > 0 {
            fwd.push(f);
            bwd.push(b);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "mean forward_train {:.3} s + backward {:.3} s = {:.3} s",
        mean(&fwd),
        mean(&bwd),
        mean(&fwd) + mean(&bwd)
    );

    // Inference path (one decoder) with and without autodiff.
    let t_ad = median(2, || {
        let _ = model.forward(x.clone()).sum().into_scalar::<f32>();
    });
    let eval = model.valid();
    let xe = x.clone().inner();
    let t_plain = median(2, || {
        let _ = eval.forward(xe.clone()).sum().into_scalar::<f32>();
    });
    println!("forward (main only): autodiff/batch-stats {t_ad:.3} s, plain/eval {t_plain:.3} s");

    // Dominant operations at level 1 (full resolution, the widest activations).
    let plain = Device::flex();
    let c = width;
    let conv = |cin: usize, cout: usize, k: usize, groups: usize, dev: &Device| {
        Conv2dConfig::new([cin, cout], [k, k])
            .with_groups(groups)
            .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
            .init(dev)
    };
    let a = Tensor::<4>::random([batch, c, size, size], Distribution::Default, &plain);
    let a2 = Tensor::<4>::random([batch, 2 * c, size, size], Distribution::Default, &plain);
    let report = |name: &str, t: f64| println!("  {name:<48} {:7.1} ms", t * 1e3);
    println!("level-1 operations ({batch}x{c}x{size}x{size}):");
    let k3 = conv(c, c, 3, 1, &plain);
    report(
        "conv3x3 c->c forward",
        median(3, || {
            let _ = k3.forward(a.clone()).sum().into_scalar::<f32>();
        }),
    );
    let k3w = conv(2 * c, c, 3, 1, &plain);
    report(
        "conv3x3 2c->c forward",
        median(3, || {
            let _ = k3w.forward(a2.clone()).sum().into_scalar::<f32>();
        }),
    );
    let k3ad = conv(2 * c, c, 3, 1, &device);
    let a2ad = a2.clone().autodiff().require_grad();
    report(
        "conv3x3 2c->c forward+backward (autodiff)",
        median(3, || {
            let _ = k3ad.forward(a2ad.clone()).sum().backward();
        }),
    );
    let k1 = conv(c, c, 1, 1, &plain);
    report(
        "conv1x1 c->c forward",
        median(3, || {
            let _ = k1.forward(a.clone()).sum().into_scalar::<f32>();
        }),
    );
    let gamma = Tensor::<1>::ones([c], &plain);
    let beta = Tensor::<1>::zeros([c], &plain);
    report(
        "batch_norm_train forward",
        median(3, || {
            let o = batch_norm_train(a.clone(), gamma.clone(), beta.clone(), 1e-5);
            let _ = o.output.sum().into_scalar::<f32>();
        }),
    );
    report(
        "relu",
        median(3, || {
            let _ = relu(a.clone()).sum().into_scalar::<f32>();
        }),
    );
    report(
        "sum (reduction alone, for reference)",
        median(3, || {
            let _ = a.clone().sum().into_scalar::<f32>();
        }),
    );
    report(
        "cat[c, c] on channels",
        median(3, || {
            let _ = Tensor::cat(vec![a.clone(), a.clone()], 1)
                .sum()
                .into_scalar::<f32>();
        }),
    );
    let half = Tensor::<4>::random(
        [batch, 2 * c, size / 2, size / 2],
        Distribution::Default,
        &plain,
    );
    report(
        "nearest 2x upsample of level 2",
        median(3, || {
            let o = interpolate(
                half.clone(),
                InterpolateOptions::new(InterpolateMode::Nearest)
                    .with_align_corners(false)
                    .with_output_size([size, size]),
            );
            let _ = o.sum().into_scalar::<f32>();
        }),
    );
    // Bottleneck ConvMixer operations.
    let s5 = size / 16;
    let b5 = Tensor::<4>::random([batch, 16 * c, s5, s5], Distribution::Default, &plain);
    let dw = conv(16 * c, 16 * c, 7, 16 * c, &plain);
    println!("bottleneck operations ({batch}x{}x{s5}x{s5}):", 16 * c);
    report(
        "depthwise 7x7 forward",
        median(3, || {
            let _ = dw.forward(b5.clone()).sum().into_scalar::<f32>();
        }),
    );
    report(
        "gelu",
        median(3, || {
            let _ = gelu(b5.clone()).sum().into_scalar::<f32>();
        }),
    );
    let _ = model.num_params();
}
