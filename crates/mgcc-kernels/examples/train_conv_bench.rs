//! Times the shifted convolution's three passes (forward, input gradient, weight gradient; each
//! takes the Winograd kernel where it applies, unless `MGCC_DISABLE_WINOGRAD=1`) and the
//! Winograd forward alone, at MGCC's w16 128² batch-8 training shapes or (`ldm`) the
//! CPU-preset denoiser's (`--unet-channels 64,64,128`, 16×16 latents, batch 16):
//! `cargo run --release -p mgcc-kernels --example train_conv_bench [threads] [pass|all] [mgcc|ldm]`.
//! Prints GFLOP per CPU-second (robust to other load) and wall time per pass.

use std::time::Instant;

use burn::tensor::ops::ConvOptions;
use mgcc_kernels::geometry::ConvGeometry;
use mgcc_kernels::shifted::Shifted;

mod common;
use common::cpu_seconds;

fn main() {
    let mut args = std::env::args().skip(1);
    let threads = args.next().and_then(|s| s.parse().ok()).unwrap_or(2);
    let only: Option<String> = args.next().filter(|p| p != "all");
    let ldm = args.next().is_some_and(|s| s == "ldm");
    common::setup(threads);
    // (cin, cout, size, kernel, dilation, how many such layers in one step)
    let mgcc_cases = [
        (16, 16, 128, 3, 1, 1 + 4 + 4 + 4),
        (32, 16, 128, 3, 1, 4),
        (32, 32, 64, 3, 1, 1 + 4 + 4 + 4),
        (64, 32, 64, 3, 1, 4),
        (64, 64, 32, 3, 1, 1 + 4 + 4 + 4),
        (128, 128, 16, 3, 1, 1 + 4 + 4 + 4),
        (256, 256, 8, 3, 1, 1),
        (16, 16, 128, 3, 2, 4),
        (48, 16, 128, 1, 1, 4),
    ];
    // The stride-1 convolutions of the CPU-preset denoiser (PyTorch's forward hooks count them).
    let ldm_cases = [
        (8, 64, 16, 3, 1, 1),
        (64, 64, 16, 3, 1, 8),
        (128, 64, 16, 3, 1, 3),
        (128, 64, 16, 1, 1, 3),
        (64, 64, 8, 3, 1, 1),
        (64, 128, 8, 3, 1, 1),
        (128, 128, 8, 3, 1, 9),
        (192, 64, 8, 3, 1, 1),
        (256, 128, 8, 3, 1, 2),
        (256, 128, 8, 1, 1, 2),
    ];
    let (cases, batch): (&[_], usize) = if ldm {
        (&ldm_cases, 16)
    } else {
        (&mgcc_cases, 8)
    };
    let mut totals = [0.0f64; 4];
    for &(cin, cout, s, k, d, n) in cases {
        let p = d * (k - 1) / 2;
        let opts = ConvOptions::new_with_padding([1, 1], [(p, p), (p, p)], [d, d], 1);
        let g = ConvGeometry::new([batch, cin, s, s], [cout, cin, k, k], &opts);
        let sh = Shifted::new(&g).expect("shifted applies");
        let wino = mgcc_kernels::winograd::Winograd::new(&g);
        let x: Vec<f32> = (0..batch * cin * s * s)
            .map(|i| (i % 7) as f32 * 0.1)
            .collect();
        let dy: Vec<f32> = (0..batch * cout * s * s)
            .map(|i| (i % 5) as f32 * 0.1)
            .collect();
        let w: Vec<f32> = (0..cout * cin * k * k)
            .map(|i| (i % 5) as f32 * 0.01)
            .collect();
        let b = vec![0.5f32; cout];
        let flop = 2.0 * (batch * cin * cout * k * k * s * s) as f64;
        let mut line = format!("cin {cin:4} cout {cout:4} {s:3}² k{k} d{d} ×{n:2}:");
        for (pi, name) in ["fwd", "dx", "dw", "wino"].iter().enumerate() {
            if only.as_deref().is_some_and(|o| o != *name) || (pi == 3 && wino.is_none()) {
                continue;
            }
            let run = || match pi {
                0 => std::hint::black_box(sh.forward(&x, &w, Some(&b))).len(),
                1 => std::hint::black_box(sh.input_grad(&w, &dy)).len(),
                2 => std::hint::black_box(sh.weight_grad(&x, &dy)).len(),
                _ => std::hint::black_box(
                    wino.as_ref()
                        .map(|wg| wg.forward_fused(&x, &w, Some(&b), None)),
                )
                .map_or(0, |y| y.len()),
            };
            run();
            let reps = 6;
            let (t, c) = (Instant::now(), cpu_seconds());
            for _ in 0..reps {
                run();
            }
            let wall = t.elapsed().as_secs_f64() / reps as f64;
            let cpu = (cpu_seconds() - c) / reps as f64;
            totals[pi] += wall * n as f64;
            line += &format!(
                "  {name} {:6.1} GF/cpu-s {:6.2} ms",
                flop / cpu.max(1e-9) / 1e9,
                wall * 1e3
            );
        }
        println!("{line}");
    }
    println!(
        "per step (wall, × layer counts): fwd {:.0} ms, dx {:.0} ms, dw {:.0} ms \
         (Winograd forward where it applies: {:.0} ms)",
        totals[0] * 1e3,
        totals[1] * 1e3,
        totals[2] * 1e3,
        totals[3] * 1e3
    );
}
