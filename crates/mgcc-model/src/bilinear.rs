//! Bilinear 2× upsampling with aligned corners (PyTorch's `align_corners=True`, the upsampling of
//! SSL4MIS's UNet decoder): `B×C×H×W → B×C×2H×2W`.
//!
//! On flex it is burn's `interpolate`. burn-cubecl 0.22 (the GPU backends) has no backward for
//! bilinear interpolation ("Bilinear interpolation backward is not supported by JIT backend"),
//! so on every other device it is written as two products with the constant interpolation
//! matrices, `A_H · X · A_Wᵀ`, whose backward every backend has.

use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor, TensorData};

/// `B×C×H×W → B×C×2H×2W`, bilinear with aligned corners.
pub(crate) fn upsample2_bilinear(x: Tensor<4>) -> Tensor<4> {
    if mgcc_kernels::is_flex(&x.device()) {
        let [_, _, h, w] = x.dims();
        interpolate(
            x,
            InterpolateOptions::new(InterpolateMode::Bilinear)
                .with_align_corners(true)
                .with_output_size([2 * h, 2 * w]),
        )
    } else {
        upsample2_by_products(x)
    }
}

/// The interpolation matrix `A` (`2n × n`, row-major) of aligned-corner linear upsampling from
/// `n` to `2n` samples: output `i` reads source position `s = i·(n − 1)/(2n − 1)`, weight
/// `1 − frac(s)` at `⌊s⌋` and `frac(s)` at `⌊s⌋ + 1`.
fn interpolation_matrix(n: usize) -> Vec<f32> {
    let m = 2 * n;
    let mut a = vec![0f32; m * n];
    for i in 0..m {
        let s = if n > 1 {
            (i * (n - 1)) as f64 / (m - 1) as f64
        } else {
            0.0
        };
        let i0 = (s.floor() as usize).min(n - 1);
        let i1 = (i0 + 1).min(n - 1);
        let f = s - i0 as f64;
        a[i * n + i0] += (1.0 - f) as f32;
        a[i * n + i1] += f as f32;
    }
    a
}

/// [`upsample2_bilinear`] as `A_H · X · A_Wᵀ` (any backend, differentiable through matmul).
pub(crate) fn upsample2_by_products(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let device: Device = x.device();
    let a_h = Tensor::<2>::from_data(
        TensorData::new(interpolation_matrix(h), [2 * h, h]),
        &device,
    );
    let a_wt = Tensor::<2>::from_data(
        TensorData::new(interpolation_matrix(w), [2 * w, w]),
        &device,
    )
    .transpose();
    let rows = x.matmul(a_wt.unsqueeze::<4>().expand([b, c, w, 2 * w]));
    a_h.unsqueeze::<4>().expand([b, c, 2 * h, h]).matmul(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn vals(t: Tensor<4>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// A hand-computed case: `[0, 3]` upsampled to 4 samples reads positions 0, 1/3, 2/3, 1.
    #[test]
    fn products_match_hand_computation() {
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![0.0f32, 3.0], [1, 1, 1, 2]),
            &Device::flex(),
        );
        let y = vals(upsample2_by_products(x));
        let expect = [0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 3.0];
        for (a, b) in y.iter().zip(expect) {
            assert!((a - b).abs() < 1e-6, "{y:?}");
        }
    }

    /// The products equal burn's interpolate, values and gradients, on odd and even sizes.
    #[test]
    fn products_equal_burns_interpolate_with_gradients() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex().autodiff();
        device.seed(5);
        for shape in [[2, 3, 5, 7], [1, 2, 8, 8], [1, 1, 1, 3]] {
            let x =
                Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device).require_grad();
            let [b, c, h, w] = shape;
            let probe = Tensor::<4>::random([b, c, 2 * h, 2 * w], Distribution::Default, &device);
            let run = |y: Tensor<4>| {
                let g = (y.clone() * probe.clone()).sum().backward();
                (vals(y.inner()), vals(x.grad(&g).unwrap()))
            };
            let ours = run(upsample2_by_products(x.clone()));
            let burns = run(upsample2_bilinear(x.clone()));
            for (what, a, b) in [("y", &ours.0, &burns.0), ("dx", &ours.1, &burns.1)] {
                let d = a.iter().zip(b).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
                assert!(d < 1e-5, "{shape:?} {what}: {d}");
            }
        }
    }
}
