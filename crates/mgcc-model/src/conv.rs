//! Applying a `Conv2d` module through `mgcc_kernels::conv2d` (fast on flex, burn's op elsewhere),
//! alone or followed by a [`BatchNorm2d`] (and ReLU), fused in inference mode.
//!
//! Same options as `Conv2d::forward`: stride, dilation, groups and explicit padding
//! `(top, left, bottom, right)`; the model only builds explicit paddings.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
use burn::tensor::ops::ConvOptions;

use crate::batch_norm::{BatchNorm2d, EPSILON};

/// The `ConvOptions` of `conv`, or `None` for a padding the model never builds.
fn options(conv: &Conv2d) -> Option<ConvOptions<2>> {
    let PaddingConfig2d::Explicit(top, left, bottom, right) = conv.padding else {
        return None;
    };
    Some(ConvOptions::new_with_padding(
        conv.stride,
        [(top, bottom), (left, right)],
        conv.dilation,
        conv.groups,
    ))
}

/// `bn.forward_maybe_relu(apply(conv, x), relu)`; in inference mode one fused operation
/// (`mgcc_kernels::conv2d_bn_eval`).
pub fn apply_bn(conv: &Conv2d, bn: &BatchNorm2d, x: Tensor<4>, relu: bool) -> Tensor<4> {
    match (options(conv), bn.eval_params(&x.device())) {
        (Some(options), Some(stats)) => mgcc_kernels::conv2d_bn_eval(
            x,
            conv.weight.val(),
            conv.bias.as_ref().map(|b| b.val()),
            stats,
            EPSILON,
            relu,
            options,
        ),
        _ => bn.forward_maybe_relu(apply(conv, x), relu),
    }
}

/// `conv.forward(x)`, computed by the flex fast path when `x` lives on flex.
pub fn apply(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let Some(options) = options(conv) else {
        return conv.forward(x);
    };
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

    /// Inference-mode conv + batch norm (+ ReLU), fused on flex, equals the layers one by one.
    #[test]
    fn fused_eval_batch_norm_matches_separate_layers() {
        use burn::module::{Param, RunningState};
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        device.seed(5);
        let specs = [
            ConvSpec::new(3, 5, 3),
            ConvSpec::new(4, 6, 3).dilated(2),
            ConvSpec::new(20, 9, 1),
            ConvSpec::new(40, 6, 3),
            ConvSpec::new(4, 4, 7).grouped(4),
        ];
        for (i, spec) in specs.into_iter().enumerate() {
            let conv = spec.init(&device);
            let mut bn = BatchNorm2d::new(spec.cout, &device);
            let rand = |lo: f64, hi: f64| {
                Tensor::<1>::random([spec.cout], Distribution::Uniform(lo, hi), &device)
            };
            bn.gamma = Param::from_tensor(rand(0.5, 2.0));
            bn.beta = Param::from_tensor(rand(-1.0, 1.0));
            bn.running_mean = RunningState::new(rand(-0.5, 0.5));
            bn.running_var = RunningState::new(rand(0.2, 3.0));
            for (batch, relu) in [(1, true), (2, false)] {
                let x = Tensor::<4>::random(
                    [batch, spec.cin, 19, 23],
                    Distribution::Normal(0.0, 1.0),
                    &device,
                );
                let fused = apply_bn(&conv, &bn, x.clone(), relu);
                let separate = bn.forward_maybe_relu(conv.forward(x), relu);
                assert_close(
                    values(fused),
                    values(separate),
                    &format!("spec {i} batch {batch} relu {relu}"),
                );
            }
        }
    }
}
