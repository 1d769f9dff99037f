//! Reverse diffusion: DDPM ancestral sampling and DDIM (Song et al. 2021), both on a subset of
//! `steps` timesteps spread evenly over `[0, T)`, with classifier-free guidance.
//!
//! At each visited step `t` (previous visited step `t'`, `ᾱ_{t'} = 1` after the last) the model's
//! noise prediction ε gives `x̂₀ = (x_t − √(1 − ᾱ_t)·ε)/√ᾱ_t`, and
//!
//! - DDIM: `x_{t'} = √ᾱ_{t'}·x̂₀ + √(1 − ᾱ_{t'} − σ²)·ε + σ·z`,
//!   `σ = η·√((1 − ᾱ_{t'})/(1 − ᾱ_t))·√(1 − ᾱ_t/ᾱ_{t'})` (η = 0: deterministic);
//! - DDPM: the Gaussian posterior `q(x_{t'} | x_t, x̂₀)` of the respaced chain,
//!   `β' = 1 − ᾱ_t/ᾱ_{t'}`, mean `√ᾱ_{t'}·β'/(1 − ᾱ_t)·x̂₀ + √(1 − β')·(1 − ᾱ_{t'})/(1 − ᾱ_t)·x_t`,
//!   variance `β'·(1 − ᾱ_{t'})/(1 − ᾱ_t)` (with all T steps: Ho et al.'s sampler).
//!
//! Guidance: `ε = ε_uncond + s·(ε_cond − ε_uncond)` (s = 1: the conditional model alone).
//!
//! Defaults as Medfusion's sampling: DDIM with η = 1 and no clamping of `x̂₀`.
//! `clip_x0 = Some(c)` clamps `x̂₀` to `[−c, c]` and recomputes ε from the clamped value (as
//! diffusers' `clip_sample`): at the first steps of a schedule whose `ᾱ` reaches almost 0 (the
//! cosine schedule's last `ᾱ` is ~1e-9) dividing by `√ᾱ_t` amplifies the model's error by
//! orders of magnitude; with scaled latents a bound of 5 leaves real latents alone.
//!
//! The visited timesteps are Medfusion's: `⌊i·(T − 1)/(steps − 1)⌋`, `i = 0..steps`, visited in
//! descending order (`torch.linspace(0, T − 1, steps, dtype=long)`).
//!
//! Every random draw of image `i` (its start noise and the noise of each step) comes from its own
//! ChaCha8 stream seeded with `seeds[i]`, so an image depends only on its seed — not on the batch
//! it was generated in — which makes generation resumable image by image.

use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::schedule::NoiseSchedule;
use crate::unet::Unet;

/// Which reverse process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SamplerKind {
    Ddpm,
    Ddim,
}

impl std::str::FromStr for SamplerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ddpm" => Ok(Self::Ddpm),
            "ddim" => Ok(Self::Ddim),
            other => Err(format!("unknown sampler {other:?} (expected ddim or ddpm)")),
        }
    }
}

/// Sampling settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplerConfig {
    pub kind: SamplerKind,
    /// Visited timesteps (≤ T).
    pub steps: usize,
    /// DDIM stochasticity η (ignored by DDPM).
    pub eta: f64,
    /// Classifier-free guidance scale s.
    pub guidance: f64,
    /// Bound on the predicted clean latent (see the module docs); `None`: no clamping.
    pub clip_x0: Option<f64>,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            kind: SamplerKind::Ddim,
            steps: 50,
            eta: 1.0,
            guidance: 1.0,
            clip_x0: None,
        }
    }
}

/// The visited timesteps, descending: `⌊i·(T − 1)/(steps − 1)⌋` for `i = steps − 1 … 0`
/// (Medfusion's truncating `linspace`), duplicates removed.
pub fn timesteps(total: usize, steps: usize) -> Vec<usize> {
    let steps = steps.clamp(1, total);
    if steps == 1 {
        return vec![total - 1];
    }
    let mut ts: Vec<usize> = (0..steps)
        .rev()
        .map(|i| (i * (total - 1)) / (steps - 1))
        .collect();
    ts.dedup();
    ts
}

/// Per-image Gaussian streams.
struct NoiseStreams {
    rngs: Vec<ChaCha8Rng>,
}

impl NoiseStreams {
    fn new(seeds: &[u64]) -> Self {
        Self {
            rngs: seeds
                .iter()
                .map(|&s| ChaCha8Rng::seed_from_u64(s))
                .collect(),
        }
    }

    /// One standard-normal tensor `[B, shape…]`, image `i` drawn from stream `i`.
    fn draw(&mut self, shape: [usize; 3], device: &Device) -> Tensor<4> {
        let n = shape.iter().product::<usize>();
        let mut data = Vec::with_capacity(n * self.rngs.len());
        for rng in &mut self.rngs {
            data.extend((0..n).map(|_| {
                let v: f64 = StandardNormal.sample(rng);
                v as f32
            }));
        }
        let [c, h, w] = shape;
        Tensor::from_data(TensorData::new(data, [self.rngs.len(), c, h, w]), device)
    }
}

/// The model's (guided) noise prediction at timestep `t` for the whole batch.
fn predict_eps(
    unet: &Unet,
    x: Tensor<4>,
    t: usize,
    classes: Option<&[usize]>,
    guidance: f64,
) -> Tensor<4> {
    let b = x.dims()[0];
    let tt = vec![t as f32; b];
    match classes {
        Some(c) if unet.num_classes() > 0 && guidance != 1.0 => {
            let null = vec![unet.num_classes(); b];
            let both: Vec<usize> = c.iter().copied().chain(null).collect();
            let t2 = vec![t as f32; 2 * b];
            let eps = unet.forward(Tensor::cat(vec![x.clone(), x], 0), &t2, Some(&both));
            let [cond, uncond]: [Tensor<4>; 2] = eps.chunk(2, 0).try_into().expect("2 halves");
            uncond.clone() + (cond - uncond) * guidance
        }
        _ => unet.forward(x, &tt, classes),
    }
}

/// Generate `seeds.len()` latents of shape `[L, h, w]` (in the denoiser's scaled latent space).
/// `classes`, when given, has one class index per image.
pub fn sample(
    unet: &Unet,
    schedule: &NoiseSchedule,
    cfg: &SamplerConfig,
    shape: [usize; 3],
    seeds: &[u64],
    classes: Option<&[usize]>,
    device: &Device,
) -> Tensor<4> {
    let mut noise = NoiseStreams::new(seeds);
    let mut x = noise.draw(shape, device);
    let ts = timesteps(schedule.len(), cfg.steps);
    for (i, &t) in ts.iter().enumerate() {
        let prev = ts.get(i + 1).copied();
        // The denoiser's forward on a worker of the CPU pool (its networks have no batch
        // norm, see `mgcc_kernels::on_pool`).
        let xt = x.clone();
        let eps = mgcc_kernels::on_pool(|| predict_eps(unet, xt, t, classes, cfg.guidance));
        x = step(schedule, cfg, x, eps, t, prev, &mut || {
            noise.draw(shape, device)
        });
    }
    x
}

/// One reverse step `x_t → x_{t'}` given the noise prediction; `fresh` draws `z` when needed.
fn step(
    schedule: &NoiseSchedule,
    cfg: &SamplerConfig,
    x: Tensor<4>,
    eps: Tensor<4>,
    t: usize,
    prev: Option<usize>,
    fresh: &mut dyn FnMut() -> Tensor<4>,
) -> Tensor<4> {
    let ab_t = schedule.alpha_bar(Some(t));
    let ab_p = schedule.alpha_bar(prev);
    let mut x0 = (x.clone() - eps.clone() * (1.0 - ab_t).sqrt()) / ab_t.sqrt();
    let mut eps = eps;
    if let Some(c) = cfg.clip_x0 {
        x0 = x0.clamp(-c, c);
        eps = (x.clone() - x0.clone() * ab_t.sqrt()) / (1.0 - ab_t).sqrt();
    }
    match cfg.kind {
        SamplerKind::Ddim => {
            let sigma = cfg.eta * ((1.0 - ab_p) / (1.0 - ab_t)).sqrt() * (1.0 - ab_t / ab_p).sqrt();
            let dir = (1.0 - ab_p - sigma * sigma).max(0.0).sqrt();
            let mut next = x0 * ab_p.sqrt() + eps * dir;
            if sigma > 0.0 {
                next = next + fresh() * sigma;
            }
            next
        }
        SamplerKind::Ddpm => {
            let beta = 1.0 - ab_t / ab_p;
            let c0 = ab_p.sqrt() * beta / (1.0 - ab_t);
            let ct = (1.0 - beta).sqrt() * (1.0 - ab_p) / (1.0 - ab_t);
            let var = beta * (1.0 - ab_p) / (1.0 - ab_t);
            let mean = x0 * c0 + x * ct;
            if var > 0.0 {
                mean + fresh() * var.sqrt()
            } else {
                mean
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::ScheduleConfig;
    use crate::unet::UnetConfig;
    use burn::module::Module;

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data().try_to_vec().unwrap()
    }

    #[test]
    fn timesteps_span_the_schedule_descending() {
        assert_eq!(timesteps(1000, 5), vec![999, 749, 499, 249, 0]);
        // torch.linspace(0, 999, 50, dtype=torch.long)[:8] = [0, 20, 40, 61, 81, 101, 122, 142].
        let t50 = timesteps(1000, 50);
        assert_eq!(t50[42..], [142, 122, 101, 81, 61, 40, 20, 0]);
        assert_eq!(timesteps(10, 50), (0..10).rev().collect::<Vec<_>>());
        assert_eq!(timesteps(1000, 1), vec![999]);
    }

    fn tiny_unet(device: &Device) -> Unet {
        device.seed(5);
        let unet = UnetConfig {
            latent_channels: 2,
            channels: vec![4, 8],
            blocks: 1,
            time_dim: 4,
            emb_dim: 8,
            num_classes: 2,
            attention: false,
            groups: 2,
            layout: crate::vae::LAYOUT,
        }
        .init(device);
        // Perturb the zero-initialised output so that predictions are not all zero.
        unet.map(&mut Jitter)
    }

    struct Jitter;
    impl burn::module::ModuleMapper for Jitter {
        fn map_float<const D: usize>(
            &mut self,
            param: burn::module::Param<Tensor<D>>,
        ) -> burn::module::Param<Tensor<D>> {
            param.map(|t| {
                let noise =
                    Tensor::random(t.shape(), burn::tensor::Distribution::Default, &t.device());
                t + noise * 0.1
            })
        }
    }

    #[test]
    fn ddim_with_eta_zero_is_deterministic_per_seed_and_batch_independent() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        let unet = tiny_unet(&device);
        let sched = ScheduleConfig::default().build();
        let cfg = SamplerConfig {
            steps: 8,
            eta: 0.0,
            ..Default::default()
        };
        let a = values(sample(
            &unet,
            &sched,
            &cfg,
            [2, 4, 4],
            &[1, 2],
            None,
            &device,
        ));
        let b = values(sample(
            &unet,
            &sched,
            &cfg,
            [2, 4, 4],
            &[1, 2],
            None,
            &device,
        ));
        assert_eq!(a, b);
        let alone = values(sample(&unet, &sched, &cfg, [2, 4, 4], &[2], None, &device));
        for (x, y) in a[32..].iter().zip(&alone) {
            assert!((x - y).abs() < 1e-4, "image 2 depends on its batch");
        }
        let other = values(sample(
            &unet,
            &sched,
            &cfg,
            [2, 4, 4],
            &[3, 2],
            None,
            &device,
        ));
        assert_ne!(a[..32], other[..32]);
    }

    #[test]
    fn ddpm_step_equals_ddim_with_eta_one() {
        let device = Device::flex();
        let sched = ScheduleConfig::default().build();
        let x = Tensor::<4>::from_floats([[[[0.3, -1.2]]]], &device);
        let eps = Tensor::<4>::from_floats([[[[0.5, 0.1]]]], &device);
        let z = Tensor::<4>::from_floats([[[[-0.7, 2.0]]]], &device);
        for (t, prev) in [(999, Some(749)), (250, Some(0)), (10, None)] {
            let ddpm = SamplerConfig {
                kind: SamplerKind::Ddpm,
                ..Default::default()
            };
            let ddim = SamplerConfig {
                eta: 1.0,
                ..Default::default()
            };
            assert_eq!(ddim, SamplerConfig::default(), "Medfusion's default: η = 1");
            let a = values(step(
                &sched,
                &ddpm,
                x.clone(),
                eps.clone(),
                t,
                prev,
                &mut || z.clone(),
            ));
            let b = values(step(
                &sched,
                &ddim,
                x.clone(),
                eps.clone(),
                t,
                prev,
                &mut || z.clone(),
            ));
            for (u, v) in a.iter().zip(&b) {
                assert!((u - v).abs() < 1e-4, "t={t}: {a:?} vs {b:?}");
            }
        }
    }

    /// With the exact noise prediction of a point mass at `x0`, `ε*(x_t) = (x_t − √ᾱ_t·x0)/√(1 − ᾱ_t)`,
    /// every sampler lands on `x0` from any start, for every schedule.
    #[test]
    fn oracle_noise_prediction_recovers_the_point_mass() {
        use crate::schedule::BetaKind;
        let device = Device::flex();
        let x0 = Tensor::<4>::from_floats([[[[0.7, -0.4, 0.1]]]], &device);
        for kind in [BetaKind::ScaledLinear, BetaKind::Linear, BetaKind::Cosine] {
            let sched = ScheduleConfig {
                kind,
                ..Default::default()
            }
            .build();
            for cfg in [
                SamplerConfig {
                    steps: 20,
                    eta: 0.0,
                    ..Default::default()
                },
                SamplerConfig {
                    steps: 20,
                    eta: 1.0,
                    ..Default::default()
                },
                SamplerConfig {
                    steps: 20,
                    clip_x0: Some(5.0),
                    ..Default::default()
                },
                SamplerConfig {
                    kind: SamplerKind::Ddpm,
                    steps: 50,
                    ..Default::default()
                },
            ] {
                let mut noise = NoiseStreams::new(&[11]);
                let mut x = noise.draw([1, 1, 3], &device);
                let ts = timesteps(sched.len(), cfg.steps);
                for (i, &t) in ts.iter().enumerate() {
                    let ab = sched.alpha_bar(Some(t));
                    let eps = (x.clone() - x0.clone() * ab.sqrt()) / (1.0 - ab).sqrt();
                    x = step(&sched, &cfg, x, eps, t, ts.get(i + 1).copied(), &mut || {
                        noise.draw([1, 1, 3], &device)
                    });
                }
                for (a, b) in values(x).iter().zip(values(x0.clone())) {
                    assert!((a - b).abs() < 1e-3, "{kind:?} {cfg:?}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn last_ddim_step_returns_the_predicted_clean_latent() {
        let device = Device::flex();
        let sched = ScheduleConfig::default().build();
        let x0 = Tensor::<4>::from_floats([[[[0.25, -0.5]]]], &device);
        let eps = Tensor::<4>::from_floats([[[[1.0, -1.0]]]], &device);
        let xt = sched.q_sample(x0.clone(), eps.clone(), &[300]);
        let cfg = SamplerConfig::default();
        let out = values(step(
            &sched,
            &cfg,
            xt,
            eps,
            300,
            None,
            &mut || unreachable!(),
        ));
        for (a, b) in out.iter().zip(values(x0)) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn guidance_one_equals_the_conditional_prediction() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        let unet = tiny_unet(&device);
        let x = Tensor::<4>::random([2, 2, 4, 4], burn::tensor::Distribution::Default, &device);
        let cond = values(unet.forward(x.clone(), &[400.0, 400.0], Some(&[0, 1])));
        let unc = values(unet.forward(x.clone(), &[400.0, 400.0], None));
        let g1 = values(predict_eps(&unet, x.clone(), 400, Some(&[0, 1]), 1.0));
        let g3 = values(predict_eps(&unet, x, 400, Some(&[0, 1]), 3.0));
        for i in 0..cond.len() {
            assert!((g1[i] - cond[i]).abs() < 1e-5);
            let expect = unc[i] + 3.0 * (cond[i] - unc[i]);
            assert!((g3[i] - expect).abs() < 1e-4, "{} vs {expect}", g3[i]);
        }
    }
}
