//! Uncertainty-aware mean teacher (Yu et al. 2019), as SSL4MIS
//! `train_uncertainty_aware_mean_teacher_2D.py`: the mean teacher of [`super::mean_teacher`]
//! (same EMA and input noise), whose consistency counts only where the teacher is certain.
//!
//! - `p̄` = mean foreground probability of `T = passes` teacher passes on the unlabelled
//!   images, each with fresh input noise (run as `T/2` passes over the batch repeated twice);
//! - uncertainty `u = −[p̄·ln(p̄ + 10⁻⁶) + (1 − p̄)·ln(1 − p̄ + 10⁻⁶)]` (predictive entropy over
//!   the two classes, at most ln 2);
//! - mask `m = [u < (s + (1 − s)·r(t))·ln 2]` with `s = threshold_start` (0.75) and
//!   `r(t) = exp(−5(1 − t/T_max)²)` (`sigmoid_rampup(iter_num, max_iterations)`);
//! - `consistency = Σ m·sq / (2·Σm + 10⁻¹⁶)`, where `sq = 2·(σ(student) − σ(teacher))²` is the
//!   squared difference summed over the two classes (SSL4MIS's `softmax_mse_loss` on a
//!   2-channel softmax), with the teacher's output from one more noisy pass.
//!
//! SSL4MIS's UA-MT has no 1000-iteration gate; neither has this one.

use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use mgcc_model::{Perturbation, SegNet};

use super::mean_teacher::{teacher_input, teacher_logits};
use super::{MethodLoss, StepInput, labeled_part, unlabeled_part};
use crate::config::{MeanTeacherParams, UaMtParams};
use crate::loss::bce_dice;
use crate::schedule::sigmoid_rampup;

/// The loss of one batch.
pub fn loss(
    student: &SegNet,
    teacher: &SegNet,
    input: &StepInput,
    mt: &MeanTeacherParams,
    ua: &UaMtParams,
    p: &Perturbation,
) -> MethodLoss {
    let u = input.unlabeled_images();
    let teacher_in = teacher_input(u.clone(), mt);
    let out = student
        .forward_train(input.images.clone(), p)
        .swap_remove(0);
    let teacher_out = teacher_logits(teacher, teacher_in, p);
    let mean_prob = mean_teacher_probability(teacher, u, mt, ua.passes, p);
    let mask = certain_mask(
        mean_prob,
        threshold(input.t, input.total, ua.threshold_start),
    );
    let sup = bce_dice(
        labeled_part(out.clone(), input.n_labeled),
        input.masks.clone(),
    );
    let cons = masked_consistency(unlabeled_part(out, input.n_labeled), teacher_out, mask);
    MethodLoss::new(sup, cons, input.weight)
}

/// The uncertainty threshold at step `t` of `total`: `(s + (1 − s)·r(t))·ln 2`.
pub fn threshold(t: usize, total: usize, start: f64) -> f64 {
    (start + (1.0 - start) * sigmoid_rampup(t as f64, total as f64)) * std::f64::consts::LN_2
}

/// Mean foreground probability of `passes` noisy teacher passes over `u` (`U×C×S×S` →
/// `U×1×S×S`).
pub fn mean_teacher_probability(
    teacher: &SegNet,
    u: Tensor<4>,
    mt: &MeanTeacherParams,
    passes: usize,
    p: &Perturbation,
) -> Tensor<4> {
    let n = u.dims()[0];
    let twice = Tensor::cat(vec![u.clone(), u], 0);
    let mut sum: Option<Tensor<4>> = None;
    for _ in 0..passes / 2 {
        let prob = sigmoid(teacher_logits(teacher, teacher_input(twice.clone(), mt), p));
        let both = prob.clone().narrow(0, 0, n) + prob.narrow(0, n, n);
        sum = Some(match sum {
            Some(s) => s + both,
            None => both,
        });
    }
    sum.expect("at least two passes").div_scalar(passes as f64)
}

/// `1` where the predictive entropy of `mean_prob` is below `threshold`, else `0`.
pub fn certain_mask(mean_prob: Tensor<4>, threshold: f64) -> Tensor<4> {
    let q = mean_prob.clone().neg().add_scalar(1.0);
    let entropy = (mean_prob.clone() * mean_prob.add_scalar(1e-6).log()
        + q.clone() * q.add_scalar(1e-6).log())
    .neg();
    entropy.lower_elem(threshold).float()
}

/// `Σ m·2(σ(s) − σ(t))² / (2·Σm + 10⁻¹⁶)` over all pixels.
pub fn masked_consistency(
    student_logits: Tensor<4>,
    teacher_logits: Tensor<4>,
    mask: Tensor<4>,
) -> Tensor<1> {
    let d = sigmoid(student_logits) - sigmoid(teacher_logits);
    let two_class_sq = (d.clone() * d).mul_scalar(2.0);
    (mask.clone() * two_class_sq).sum() / mask.sum().mul_scalar(2.0).add_scalar(1e-16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::test_util::{scalar, sig, t4};

    fn entropy(p: f64) -> f64 {
        -(p * (p + 1e-6).ln() + (1.0 - p) * (1.0 - p + 1e-6).ln())
    }

    #[test]
    fn mask_keeps_pixels_whose_entropy_is_below_the_threshold() {
        let probs = [0.5, 0.9, 0.99, 0.2, 0.7, 0.05];
        let thr = threshold(0, 100, 0.75); // r(0) = e^{−5}
        let expect_thr = (0.75 + 0.25 * (-5.0f64).exp()) * std::f64::consts::LN_2;
        assert!((thr - expect_thr).abs() < 1e-12);
        let got = certain_mask(t4(&probs, [1, 1, 2, 3]), thr)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let want: Vec<f32> = probs
            .iter()
            .map(|&p| if entropy(p) < thr { 1.0 } else { 0.0 })
            .collect();
        // By hand: H(0.5)=0.693, H(0.9)=0.325, H(0.99)=0.056, H(0.2)=0.500, H(0.7)=0.611,
        // H(0.05)=0.199 against 0.5210: kept 0.9, 0.99, 0.2, 0.05.
        assert_eq!(want, vec![0.0, 1.0, 1.0, 1.0, 0.0, 1.0]);
        assert_eq!(got, want);
        // At the end of the ramp the threshold is ln 2: only p = 0.5 (H = ln 2 − ε) is close.
        assert!((threshold(100, 100, 0.75) - std::f64::consts::LN_2).abs() < 1e-12);
    }

    #[test]
    fn masked_consistency_matches_hand_computation() {
        let s = [0.0, 2.0, -1.0, 0.5];
        let t = [1.0, 2.0, 1.0, -0.5];
        let m = [1.0, 1.0, 0.0, 1.0];
        let num: f64 = (0..4)
            .map(|i| m[i] * 2.0 * (sig(s[i]) - sig(t[i])).powi(2))
            .sum();
        let expect = num / (2.0 * 3.0 + 1e-16);
        let got = scalar(masked_consistency(
            t4(&s, [1, 1, 2, 2]),
            t4(&t, [1, 1, 2, 2]),
            t4(&m, [1, 1, 2, 2]),
        ));
        assert!((got - expect).abs() < 1e-6, "{got} vs {expect}");
        // An empty mask gives 0, not NaN (the 1e-16 normaliser).
        let zero = scalar(masked_consistency(
            t4(&s, [1, 1, 2, 2]),
            t4(&t, [1, 1, 2, 2]),
            t4(&[0.0; 4], [1, 1, 2, 2]),
        ));
        assert_eq!(zero, 0.0);
    }
}
