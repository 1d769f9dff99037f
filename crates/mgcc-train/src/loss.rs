//! Losses of MGCC training.
//!
//! - [`bce_dice`]: the supervised loss of the published code (`BCEDiceLoss`),
//!   0.5 · mean BCE-with-logits + (1 − mean over samples of (2Σp·y + ε) / (Σp + Σy + ε)),
//!   with p = sigmoid(logits) and ε = 1e-5.
//! - [`consistency`]: mean squared difference of probabilities between the main decoder and one
//!   auxiliary decoder, mean((sigmoid(main) − sigmoid(aux))²), with gradients to both sides.

use burn::prelude::*;
use burn::tensor::activation::sigmoid;

/// Smoothing term of the soft Dice in [`bce_dice`].
pub const DICE_SMOOTH: f64 = 1e-5;

/// Numerically stable BCE with logits, element-wise:
/// max(x, 0) − x·y + log(1 + exp(−|x|)).
pub fn bce_with_logits_elementwise<const D: usize>(
    logits: Tensor<D>,
    target: Tensor<D>,
) -> Tensor<D> {
    let relu = logits.clone().clamp_min(0.0);
    let softplus_neg_abs = logits.clone().abs().neg().exp().log1p();
    relu - logits * target + softplus_neg_abs
}

/// Supervised BCE + Dice loss. `logits`, `target`: B×1×H×W (target in {0, 1}); returns a scalar.
pub fn bce_dice(logits: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    let [batch, _, _, _] = logits.dims();
    let bce = bce_with_logits_elementwise(logits.clone(), target.clone()).mean();
    let p = sigmoid(logits).reshape([batch as i32, -1]);
    let y = target.reshape([batch as i32, -1]);
    let intersection = (p.clone() * y.clone()).sum_dim(1);
    let dice = (intersection.mul_scalar(2.0).add_scalar(DICE_SMOOTH))
        / (p.sum_dim(1) + y.sum_dim(1)).add_scalar(DICE_SMOOTH);
    let dice_loss = dice.mean().neg().add_scalar(1.0);
    bce.mul_scalar(0.5) + dice_loss
}

/// Consistency between the main decoder and one auxiliary decoder on the same images:
/// mean((sigmoid(main) − sigmoid(aux))²). Both inputs are logits, B×1×H×W; returns a scalar.
pub fn consistency(main_logits: Tensor<4>, aux_logits: Tensor<4>) -> Tensor<1> {
    let diff = sigmoid(main_logits) - sigmoid(aux_logits);
    (diff.clone() * diff).mean()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t4(values: &[f32], shape: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(values.to_vec(), shape), &Device::flex())
    }

    fn sig(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    #[test]
    fn bce_dice_matches_hand_computation() {
        // Two samples of 2 pixels each.
        let logits = [2.0f64, -1.0, 0.0, 3.0];
        let target = [1.0f64, 0.0, 1.0, 1.0];
        let bce: f64 = logits
            .iter()
            .zip(&target)
            .map(|(&x, &y)| -(y * sig(x).ln() + (1.0 - y) * (1.0 - sig(x)).ln()))
            .sum::<f64>()
            / 4.0;
        let dice = |a: usize| {
            let p = [sig(logits[a]), sig(logits[a + 1])];
            let y = [target[a], target[a + 1]];
            let inter = p[0] * y[0] + p[1] * y[1];
            (2.0 * inter + 1e-5) / (p[0] + p[1] + y[0] + y[1] + 1e-5)
        };
        let expect = 0.5 * bce + 1.0 - (dice(0) + dice(2)) / 2.0;
        let got = bce_dice(
            t4(&logits.map(|v| v as f32), [2, 1, 1, 2]),
            t4(&target.map(|v| v as f32), [2, 1, 1, 2]),
        )
        .into_scalar::<f32>() as f64;
        assert!((got - expect).abs() < 1e-5, "got {got}, expected {expect}");
    }

    #[test]
    fn bce_is_stable_for_large_logits() {
        let got = bce_with_logits_elementwise(
            t4(&[100.0, -100.0], [1, 1, 1, 2]),
            t4(&[0.0, 1.0], [1, 1, 1, 2]),
        )
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
        assert!(
            (got[0] - 100.0).abs() < 1e-3 && (got[1] - 100.0).abs() < 1e-3,
            "{got:?}"
        );
    }

    #[test]
    fn perfect_prediction_has_near_zero_dice_term() {
        // Very confident correct logits: BCE ≈ 0 and Dice ≈ 1, so the loss ≈ 0.
        let got = bce_dice(
            t4(&[30.0, -30.0, 30.0, 30.0], [1, 1, 2, 2]),
            t4(&[1.0, 0.0, 1.0, 1.0], [1, 1, 2, 2]),
        )
        .into_scalar::<f32>();
        assert!(got.abs() < 1e-4, "{got}");
    }

    #[test]
    fn consistency_matches_hand_computation() {
        let a = [0.0f64, 1.0, -2.0, 0.5];
        let b = [1.0f64, 1.0, 2.0, -0.5];
        let expect: f64 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| (sig(x) - sig(y)).powi(2))
            .sum::<f64>()
            / 4.0;
        let got = consistency(
            t4(&a.map(|v| v as f32), [1, 1, 2, 2]),
            t4(&b.map(|v| v as f32), [1, 1, 2, 2]),
        )
        .into_scalar::<f32>() as f64;
        assert!((got - expect).abs() < 1e-6);
    }
}
