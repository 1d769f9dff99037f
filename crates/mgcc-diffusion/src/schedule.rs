//! Noise schedules of the forward diffusion process, as host-side `f64` tables.
//!
//! Step `t ∈ [0, T)` adds noise with variance `β_t`; `α_t = 1 − β_t` and
//! `ᾱ_t = Π_{i ≤ t} α_i`, so that `x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε` in closed form.
//!
//! - `scaled_linear` (Medfusion's and Stable Diffusion's default): `√β` linear from
//!   `√β_start` to `√β_end`, squared.
//! - `linear` (Ho et al. 2020): `β` linear from `β_start` to `β_end`.
//! - `cosine` (Nichol & Dhariwal 2021): `ᾱ(t) = f(t)/f(0)`, `f(t) = cos²(((t/T) + s)/(1 + s)·π/2)`
//!   with `s = 0.008`, and `β_t = min(1 − ᾱ(t+1)/ᾱ(t), 0.999)`. Computed in floating point
//!   throughout (an integer `t/T` collapses the schedule).

use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Shape of `β_t` over the steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BetaKind {
    ScaledLinear,
    Linear,
    Cosine,
}

impl std::str::FromStr for BetaKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "scaled_linear" | "scaled-linear" => Ok(Self::ScaledLinear),
            "linear" => Ok(Self::Linear),
            "cosine" => Ok(Self::Cosine),
            other => Err(format!(
                "unknown schedule {other:?} (expected scaled_linear, linear or cosine)"
            )),
        }
    }
}

/// The small config a schedule is built from (stored with the denoiser).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub kind: BetaKind,
    /// Number of diffusion steps T.
    pub timesteps: usize,
    pub beta_start: f64,
    pub beta_end: f64,
    /// Offset `s` of the cosine schedule.
    pub cosine_s: f64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            kind: BetaKind::ScaledLinear,
            timesteps: 1000,
            beta_start: 0.002,
            beta_end: 0.02,
            cosine_s: 0.008,
        }
    }
}

/// Largest β allowed (the cosine schedule would reach 1 at the last step).
pub const MAX_BETA: f64 = 0.999;

impl ScheduleConfig {
    /// Check the numbers; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.timesteps < 2 {
            return Err(format!("timesteps must be ≥ 2, got {}", self.timesteps));
        }
        if self.kind != BetaKind::Cosine
            && !(0.0 < self.beta_start && self.beta_start <= self.beta_end && self.beta_end < 1.0)
        {
            return Err(format!(
                "need 0 < beta_start ≤ beta_end < 1, got {} and {}",
                self.beta_start, self.beta_end
            ));
        }
        if self.kind == BetaKind::Cosine && !(self.cosine_s > 0.0 && self.cosine_s < 1.0) {
            return Err(format!("cosine_s must be in (0, 1), got {}", self.cosine_s));
        }
        Ok(())
    }

    /// Build the tables.
    pub fn build(&self) -> NoiseSchedule {
        let n = self.timesteps;
        let lin = |a: f64, b: f64, i: usize| a + (b - a) * i as f64 / (n - 1) as f64;
        let betas: Vec<f64> = match self.kind {
            BetaKind::Linear => (0..n)
                .map(|i| lin(self.beta_start, self.beta_end, i))
                .collect(),
            BetaKind::ScaledLinear => (0..n)
                .map(|i| lin(self.beta_start.sqrt(), self.beta_end.sqrt(), i).powi(2))
                .collect(),
            BetaKind::Cosine => {
                let s = self.cosine_s;
                let f = |t: f64| {
                    (((t / n as f64) + s) / (1.0 + s) * std::f64::consts::FRAC_PI_2)
                        .cos()
                        .powi(2)
                };
                (0..n)
                    .map(|i| (1.0 - f((i + 1) as f64) / f(i as f64)).min(MAX_BETA))
                    .collect()
            }
        };
        NoiseSchedule::from_betas(betas)
    }
}

/// β, α and ᾱ per step.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseSchedule {
    pub betas: Vec<f64>,
    pub alphas: Vec<f64>,
    pub alpha_bars: Vec<f64>,
}

impl NoiseSchedule {
    /// Tables from given β values.
    pub fn from_betas(betas: Vec<f64>) -> Self {
        let alphas: Vec<f64> = betas.iter().map(|b| 1.0 - b).collect();
        let mut alpha_bars = Vec::with_capacity(alphas.len());
        let mut acc = 1.0;
        for a in &alphas {
            acc *= a;
            alpha_bars.push(acc);
        }
        Self {
            betas,
            alphas,
            alpha_bars,
        }
    }

    /// Number of steps T.
    pub fn len(&self) -> usize {
        self.betas.len()
    }

    /// Whether the schedule has no steps (never for a built one).
    pub fn is_empty(&self) -> bool {
        self.betas.is_empty()
    }

    /// `ᾱ_t`, with `ᾱ_{−1} = 1` for `t = None` (the clean image).
    pub fn alpha_bar(&self, t: Option<usize>) -> f64 {
        t.map_or(1.0, |t| self.alpha_bars[t])
    }

    /// Closed-form forward noising `x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε`, one `t` per sample.
    ///
    /// Shapes: `x0`, `noise` `[B, C, H, W]`; `t.len() == B`.
    pub fn q_sample(&self, x0: Tensor<4>, noise: Tensor<4>, t: &[usize]) -> Tensor<4> {
        let [b, _, _, _] = x0.dims();
        assert_eq!(t.len(), b, "one timestep per sample");
        let device = x0.device();
        let column = |f: &dyn Fn(f64) -> f64| {
            let v: Vec<f32> = t.iter().map(|&t| f(self.alpha_bars[t]) as f32).collect();
            Tensor::<4>::from_data(TensorData::new(v, [b, 1, 1, 1]), &device)
        };
        let a = column(&|ab| ab.sqrt());
        let s = column(&|ab| (1.0 - ab).sqrt());
        x0 * a + noise * s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn build(kind: BetaKind) -> NoiseSchedule {
        ScheduleConfig {
            kind,
            ..Default::default()
        }
        .build()
    }

    #[test]
    fn every_schedule_is_monotone_and_spans_clean_to_noise() {
        for kind in [BetaKind::ScaledLinear, BetaKind::Linear, BetaKind::Cosine] {
            let s = build(kind);
            assert_eq!(s.len(), 1000);
            assert!(
                s.betas.iter().all(|&b| b > 0.0 && b <= MAX_BETA),
                "{kind:?}"
            );
            assert!(
                s.alpha_bars.windows(2).all(|w| w[1] < w[0]),
                "{kind:?}: ᾱ must decrease strictly"
            );
            assert!(
                s.alpha_bars[0] > 0.99,
                "{kind:?}: ᾱ_0 = {}",
                s.alpha_bars[0]
            );
            assert!(
                s.alpha_bars[999] < 0.01,
                "{kind:?}: ᾱ_T = {}",
                s.alpha_bars[999]
            );
        }
    }

    #[test]
    fn scaled_linear_table_matches_hand_values() {
        let s = build(BetaKind::ScaledLinear);
        assert!((s.betas[0] - 0.002).abs() < 1e-15);
        assert!((s.betas[999] - 0.02).abs() < 1e-15);
        // Middle: ((√0.002 + √0.02)/2)² at t = 499.5, checked at t = 500 by the formula.
        let r = 500.0 / 999.0;
        let expect = (0.002f64.sqrt() + (0.02f64.sqrt() - 0.002f64.sqrt()) * r).powi(2);
        assert!((s.betas[500] - expect).abs() < 1e-15);
        assert!((s.alpha_bars[1] - 0.998 * (1.0 - s.betas[1])).abs() < 1e-15);
    }

    #[test]
    fn linear_and_cosine_tables_match_hand_values() {
        let l = build(BetaKind::Linear);
        assert!((l.betas[999] - 0.02).abs() < 1e-15);
        assert!((l.betas[1] - (0.002 + 0.018 / 999.0)).abs() < 1e-15);
        let c = build(BetaKind::Cosine);
        let f = |t: f64| {
            ((t / 1000.0 + 0.008) / 1.008 * std::f64::consts::FRAC_PI_2)
                .cos()
                .powi(2)
        };
        // ᾱ_t = f(t+1)/f(0) wherever β was not clipped.
        for t in [0usize, 10, 500, 900] {
            assert!(
                (c.alpha_bars[t] - f((t + 1) as f64) / f(0.0)).abs() < 1e-12,
                "t={t}"
            );
        }
        // The last β is clipped to 0.999 (f(T) = 0), not degenerate elsewhere.
        assert_eq!(c.betas[999], MAX_BETA);
        assert!(c.betas[0] < 1e-3 && c.betas[500] > c.betas[0]);
    }

    #[test]
    fn closed_form_equals_the_markov_chain() {
        // Variance of the chain x_t = √α_t x_{t-1} + √β_t ε from x_{-1} = x0 (deterministic):
        // coefficient on x0 and noise variance must be √ᾱ_t and 1 − ᾱ_t.
        let s = build(BetaKind::ScaledLinear);
        let (mut coef, mut var) = (1.0f64, 0.0f64);
        for t in 0..s.len() {
            coef *= s.alphas[t].sqrt();
            var = s.alphas[t] * var + s.betas[t];
            assert!((coef - s.alpha_bars[t].sqrt()).abs() < 1e-12);
            assert!((var - (1.0 - s.alpha_bars[t])).abs() < 1e-12);
        }
    }

    #[test]
    fn q_sample_applies_per_sample_coefficients() {
        let s = build(BetaKind::Linear);
        let device = Device::flex();
        let x0 = Tensor::<4>::ones([2, 1, 2, 2], &device);
        let eps = Tensor::<4>::ones([2, 1, 2, 2], &device).mul_scalar(2.0);
        let y: Vec<f32> = s
            .q_sample(x0, eps, &[0, 700])
            .into_data()
            .try_to_vec()
            .unwrap();
        for (i, t) in [0usize, 700].into_iter().enumerate() {
            let ab = s.alpha_bars[t];
            let expect = (ab.sqrt() + 2.0 * (1.0 - ab).sqrt()) as f32;
            for v in &y[i * 4..i * 4 + 4] {
                assert!((v - expect).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn validation_names_the_problem() {
        let bad = ScheduleConfig {
            beta_start: 0.1,
            beta_end: 0.01,
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("beta_start"));
        let short = ScheduleConfig {
            timesteps: 1,
            ..Default::default()
        };
        assert!(short.validate().unwrap_err().contains("timesteps"));
        assert!(ScheduleConfig::default().validate().is_ok());
    }
}
