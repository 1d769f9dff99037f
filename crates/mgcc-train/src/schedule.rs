//! Schedules that depend only on the iteration: the consistency ramp and the poly learning rate.
//!
//! `t` is always the number of optimiser steps already taken (0 for the first step), as in the
//! published training script, which reads `iter_num` before incrementing it.

/// Consistency weight of the published code: a sigmoid-shaped ramp stepped every `step` iterations.
///
/// w(t) = C · exp(−5 · (1 − min(t′, R) / R)²), with t′ = step · ⌊t / step⌋.
///
/// The published script calls `sigmoid_rampup(iter_num // 150, 200)`, which is this formula with
/// `step` = 150 and R = 200 · 150 = 30000. With R = 0 the ramp is skipped (w = C).
pub fn consistency_weight(t: usize, max_weight: f64, rampup: usize, step: usize) -> f64 {
    let step = step.max(1);
    let stepped = step * (t / step);
    max_weight * sigmoid_rampup(stepped as f64, rampup as f64)
}

/// `sigmoid_rampup(current, length)` of the published code (from Laine & Aila 2017):
/// `exp(−5·(1 − clip(current, 0, length)/length)²)`, and 1 when `length` is 0.
pub fn sigmoid_rampup(current: f64, length: f64) -> f64 {
    if length == 0.0 {
        return 1.0;
    }
    let phase = 1.0 - current.clamp(0.0, length) / length;
    (-5.0 * phase * phase).exp()
}

/// Poly learning-rate decay: lr(t) = base · (1 − t / T)^power, clamped at 0 for t ≥ T.
///
/// The published code computes this after each step for the next one, and crashes (a negative
/// base to a fractional power) when run past T; here it is clamped to 0 instead.
pub fn poly_lr(t: usize, base: f64, total: usize, power: f64) -> f64 {
    if total == 0 || t >= total {
        return 0.0;
    }
    base * (1.0 - t as f64 / total as f64).powf(power)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_starts_at_c_times_e_to_minus_5_and_reaches_c() {
        let w0 = consistency_weight(0, 7.0, 30000, 150);
        assert!((w0 - 7.0 * (-5.0f64).exp()).abs() < 1e-12);
        assert_eq!(consistency_weight(30000, 7.0, 30000, 150), 7.0);
        assert_eq!(consistency_weight(90000, 7.0, 30000, 150), 7.0);
    }

    #[test]
    fn ramp_is_stepped_every_150_iterations() {
        // t = 15149 is still in the step that starts at 15000.
        let a = consistency_weight(15000, 7.0, 30000, 150);
        let b = consistency_weight(15149, 7.0, 30000, 150);
        let c = consistency_weight(15150, 7.0, 30000, 150);
        assert_eq!(a, b);
        assert!(c > b);
        // Hand-computed: phase = 1 - 15000/30000 = 0.5 -> 7 * exp(-1.25).
        assert!((a - 7.0 * (-1.25f64).exp()).abs() < 1e-12);
    }

    #[test]
    fn ramp_matches_published_sigmoid_rampup() {
        // sigmoid_rampup(epoch, 200) = exp(-5 (1 - clip(epoch,0,200)/200)^2) with epoch = t // 150.
        for t in [0usize, 149, 150, 4499, 29999, 30000, 31000] {
            let epoch = (t / 150).min(200) as f64;
            let expect = 7.0 * (-5.0 * (1.0 - epoch / 200.0).powi(2)).exp();
            assert!(
                (consistency_weight(t, 7.0, 30000, 150) - expect).abs() < 1e-12,
                "t={t}"
            );
        }
    }

    #[test]
    fn zero_rampup_gives_full_weight() {
        assert_eq!(consistency_weight(0, 3.0, 0, 150), 3.0);
    }

    #[test]
    fn poly_lr_values() {
        assert_eq!(poly_lr(0, 0.01, 20000, 0.9), 0.01);
        let half = poly_lr(10000, 0.01, 20000, 0.9);
        assert!((half - 0.01 * 0.5f64.powf(0.9)).abs() < 1e-15);
        assert_eq!(poly_lr(20000, 0.01, 20000, 0.9), 0.0);
        assert_eq!(poly_lr(25000, 0.01, 20000, 0.9), 0.0);
        // Monotone decreasing.
        assert!(poly_lr(100, 0.01, 20000, 0.9) > poly_lr(101, 0.01, 20000, 0.9));
    }
}
