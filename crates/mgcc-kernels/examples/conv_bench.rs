//! Times the forward convolution (Winograd where it applies, else shifted;
//! `MGCC_DISABLE_WINOGRAD=1` forces the shifted kernel) at MGCC's w64 256² inference shapes (batch 1):
//! `cargo run --release -p mgcc-kernels --example conv_bench [threads]`.
//! GFLOP/s counts the direct convolution's multiply-adds.

use std::time::Instant;

use burn::tensor::ops::ConvOptions;
use mgcc_kernels::geometry::ConvGeometry;
use mgcc_kernels::shifted::Shifted;
use mgcc_kernels::winograd::Winograd;

mod common;
use common::cpu_seconds;

fn main() {
    let threads = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    common::setup(threads);
    // (cin, cout, size, kernel, dilation)
    let cases = [
        (64, 64, 256, 3, 1),
        (128, 64, 256, 3, 1),
        (128, 128, 128, 3, 1),
        (512, 512, 32, 3, 1),
        (512, 512, 32, 3, 2),
        (1024, 1024, 16, 3, 1),
        (2048, 1024, 16, 3, 1),
        (192, 64, 256, 1, 1),
    ];
    let mut total = 0.0;
    let only: Option<usize> = std::env::var("ONLY").ok().and_then(|v| v.parse().ok());
    for (i, (cin, cout, s, k, d)) in cases.into_iter().enumerate() {
        if only.is_some_and(|o| o != i) {
            continue;
        }
        let p = d * (k - 1) / 2;
        let opts = ConvOptions::new_with_padding([1, 1], [(p, p), (p, p)], [d, d], 1);
        let g = ConvGeometry::new([1, cin, s, s], [cout, cin, k, k], &opts);
        let sh = Shifted::new(&g).expect("shifted applies");
        let x: Vec<f32> = (0..cin * s * s).map(|i| (i % 7) as f32 * 0.1).collect();
        let w: Vec<f32> = (0..cout * cin * k * k)
            .map(|i| (i % 5) as f32 * 0.01)
            .collect();
        let b = vec![0.5f32; cout];
        let wino = Winograd::new(&g)
            .filter(|_| std::env::var(mgcc_kernels::DISABLE_WINOGRAD_ENV).is_err());
        let run = || sh.forward(&x, &w, Some(&b));
        let _ = run();
        let reps = std::env::var("REPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(8);
        let (t, c) = (Instant::now(), cpu_seconds());
        for _ in 0..reps {
            std::hint::black_box(run());
        }
        let wall = t.elapsed().as_secs_f64() / reps as f64;
        let dt = (cpu_seconds() - c) / reps as f64;
        let flop = 2.0 * (cin * cout * k * k * s * s) as f64;
        total += dt;
        println!(
            "cin {cin:5} cout {cout:5} {s:3}² k{k} d{d} {}: cpu {:7.2} ms wall {:7.2} ms  {:6.1} GFLOP/s per cpu-second",
            if wino.is_some() { "wino" } else { "dir " },
            dt * 1e3,
            wall * 1e3,
            flop / dt / 1e9
        );
    }
    println!("total cpu {:.1} ms", total * 1e3);
}
