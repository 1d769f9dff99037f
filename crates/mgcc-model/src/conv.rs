//! Applying a `Conv2d` module through `mgcc_kernels::conv2d` (fast on flex, burn's op elsewhere).
//!
//! Same options as `Conv2d::forward`: stride, dilation, groups and explicit padding
//! `(top, left, bottom, right)`; the model only builds explicit paddings.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
use burn::tensor::ops::ConvOptions;

/// `conv.forward(x)`, computed by the flex fast path when `x` lives on flex.
pub fn apply(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let PaddingConfig2d::Explicit(top, left, bottom, right) = conv.padding else {
        return conv.forward(x);
    };
    let options = ConvOptions::new_with_padding(
        conv.stride,
        [(top, bottom), (left, right)],
        conv.dilation,
        conv.groups,
    );
    mgcc_kernels::conv2d(
        x,
        conv.weight.val(),
        conv.bias.as_ref().map(|b| b.val()),
        options,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::ConvSpec;
    use burn::tensor::{Device, Distribution};

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    fn assert_close(a: Vec<f32>, b: Vec<f32>, what: &str) {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
        let err = a
            .iter()
            .zip(&b)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            err / scale < 1e-4,
            "{what}: max error {err} (scale {scale})"
        );
    }

    /// Forward values and gradients of x, weight and bias equal burn's own `Conv2d` path.
    #[test]
    fn fast_path_matches_burn_forward_and_gradients() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex().autodiff();
        device.seed(11);
        assert!(
            mgcc_kernels::is_flex(&device),
            "the fast path must be exercised"
        );
        let specs = [
            ConvSpec::new(3, 5, 3),
            ConvSpec::new(4, 4, 3).dilated(2),
            ConvSpec::new(6, 3, 1),
            ConvSpec::new(4, 4, 7).grouped(4),
        ];
        for (i, spec) in specs.into_iter().enumerate() {
            for batch in [1, 3] {
                let conv = spec.init(&device);
                let x = Tensor::<4>::random(
                    [batch, spec.cin, 9, 7],
                    Distribution::Normal(0.0, 1.0),
                    &device,
                )
                .require_grad();
                let probe =
                    Tensor::<4>::random([batch, spec.cout, 9, 7], Distribution::Default, &device);
                let grads_of = |y: Tensor<4>| {
                    let g = (y * probe.clone()).sum().backward();
                    (
                        values(x.grad(&g).unwrap()),
                        values(conv.weight.val().grad(&g).unwrap()),
                        values(conv.bias.as_ref().unwrap().val().grad(&g).unwrap()),
                    )
                };
                let fast = apply(&conv, x.clone());
                let slow = conv.forward(x.clone());
                assert_close(values(fast.clone()), values(slow.clone()), "forward");
                let (fx, fw, fb) = grads_of(fast);
                let (sx, sw, sb) = grads_of(slow);
                let what = format!("spec {i} batch {batch}");
                assert_close(fx, sx, &format!("{what} dx"));
                assert_close(fw, sw, &format!("{what} dw"));
                assert_close(fb, sb, &format!("{what} db"));
            }
        }
    }
}
