//! Uncertainty-rectified pyramid consistency (Luo et al. 2021), as SSL4MIS
//! `train_uncertainty_rectified_pyramid_consistency_2D.py`. The network has side outputs at
//! 1/2, 1/4 and 1/8 of the input resolution ([`mgcc_model::Heads::Pyramid`]: dropout 0.5,
//! feature dropout and feature noise before their 3×3 heads, nearest upsampling).
//!
//! With `P_i = σ(o_i)` for the four outputs (main first) and `P̄ = mean_i P_i`, on the
//! unlabelled rows:
//! - `v_i = P̄·ln(P̄/P_i) + (1 − P̄)·ln((1 − P̄)/(1 − P_i))` (the two-class KL divergence
//!   `KL(P̄ ‖ P_i)`, SSL4MIS's `KLDivLoss(log P_i, P̄)` summed over classes);
//! - `c_i = mean((P̄ − P_i)²·e^{−v_i}) / (mean(e^{−v_i}) + 10⁻⁸) + mean(v_i)`;
//! - `consistency = mean_i c_i`; `supervised` = mean over the four outputs of BCE+Dice on
//!   the labelled rows. Gradients flow through every term, `P̄` included, as in SSL4MIS.

use burn::prelude::*;
use burn::tensor::activation::{log_sigmoid, sigmoid};
use mgcc_model::{Perturbation, SegNet};

use super::{MethodLoss, StepInput, unlabeled_part};

/// Smallest probability inside a logarithm: `0·ln 0 = 0` (KLDivLoss's `xlogy` convention).
const TINY: f64 = 1e-30;

/// The loss of one batch.
pub fn loss(net: &SegNet, input: &StepInput, p: &Perturbation) -> MethodLoss {
    let outputs = net.forward_train(input.images.clone(), p);
    let sup = super::supervised_mean(&outputs, &input.masks, input.n_labeled);
    let unlabeled: Vec<Tensor<4>> = outputs
        .into_iter()
        .map(|o| unlabeled_part(o, input.n_labeled))
        .collect();
    MethodLoss::new(sup, rectified_consistency(&unlabeled), input.weight)
}

/// `mean_i c_i` over the logit maps `outputs` (see the module docs).
pub fn rectified_consistency(outputs: &[Tensor<4>]) -> Tensor<1> {
    let probs: Vec<Tensor<4>> = outputs.iter().map(|o| sigmoid(o.clone())).collect();
    let avg = probs
        .iter()
        .cloned()
        .reduce(|a, b| a + b)
        .expect("outputs")
        .div_scalar(probs.len() as f64);
    let avg_c = avg.clone().neg().add_scalar(1.0);
    let ln_avg = avg.clone().clamp_min(TINY).log();
    let ln_avg_c = avg_c.clone().clamp_min(TINY).log();
    outputs
        .iter()
        .zip(&probs)
        .map(|(o, p)| {
            let kl = avg.clone() * (ln_avg.clone() - log_sigmoid(o.clone()))
                + avg_c.clone() * (ln_avg_c.clone() - log_sigmoid(o.clone().neg()));
            let e = kl.clone().neg().exp();
            let d = avg.clone() - p.clone();
            (d.clone() * d * e.clone()).mean() / e.mean().add_scalar(1e-8) + kl.mean()
        })
        .reduce(|a, b| a + b)
        .expect("outputs")
        .div_scalar(outputs.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::test_util::{scalar, sig, t4};

    #[test]
    fn rectification_matches_hand_computation() {
        // Four outputs over two pixels.
        let logits = [[0.0, 2.0], [1.0, -1.0], [-0.5, 3.0], [2.0, 0.5]];
        let p: Vec<[f64; 2]> = logits.iter().map(|o| [sig(o[0]), sig(o[1])]).collect();
        let avg = [0, 1].map(|j| p.iter().map(|pi| pi[j]).sum::<f64>() / 4.0);
        let mut total = 0.0;
        for pi in &p {
            let v = [0, 1].map(|j| {
                avg[j] * (avg[j] / pi[j]).ln()
                    + (1.0 - avg[j]) * ((1.0 - avg[j]) / (1.0 - pi[j])).ln()
            });
            let e = v.map(|x| (-x).exp());
            let num = (0..2).map(|j| (avg[j] - pi[j]).powi(2) * e[j]).sum::<f64>() / 2.0;
            let den = (e[0] + e[1]) / 2.0 + 1e-8;
            total += num / den + (v[0] + v[1]) / 2.0;
        }
        let expect = total / 4.0;
        let outs: Vec<Tensor<4>> = logits.iter().map(|o| t4(o, [1, 1, 1, 2])).collect();
        let got = scalar(rectified_consistency(&outs));
        assert!((got - expect).abs() < 1e-6, "{got} vs {expect}");
    }

    #[test]
    fn identical_outputs_give_zero_and_saturated_ones_stay_finite() {
        let same: Vec<Tensor<4>> = (0..4).map(|_| t4(&[0.3, -2.0], [1, 1, 1, 2])).collect();
        assert!(scalar(rectified_consistency(&same)).abs() < 1e-7);
        let extreme: Vec<Tensor<4>> = [120.0, -120.0, 0.0, 50.0]
            .iter()
            .map(|&v| t4(&[v, -v], [1, 1, 1, 2]))
            .collect();
        assert!(scalar(rectified_consistency(&extreme)).is_finite());
    }
}
