//! The MGCC network: encoder, three ConvMixer stages, a main decoder and the heads a training
//! method needs (MGCC's three auxiliary decoders at three depths of global context by default).

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::convmixer::ConvMixerStage;
use crate::decoder::Decoder;
use crate::encoder::{Encoder, level_channels};
use crate::error::ModelError;
use crate::heads::{Heads, LevelDecoder, pyramid, same_level};
use crate::perturbation::Perturbation;
use crate::pyramid::PyramidHeads;

/// Input height and width must be multiples of this (four 2×2 poolings).
pub const SIZE_MULTIPLE: usize = 16;

/// Hyper-parameters of [`Mgcc`].
#[derive(Config, Debug)]
pub struct MgccConfig {
    /// Input image channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// First-level channels `w`; levels have `[w, 2w, 4w, 8w, 16w]` (the paper uses 64).
    #[config(default = 64)]
    pub width: usize,
    /// Layers in each of the three ConvMixer stages.
    #[config(default = "[3, 3, 3]")]
    pub mixer_depths: [usize; 3],
    /// Depthwise kernel size of the ConvMixer layers (odd).
    #[config(default = 7)]
    pub kernel_size: usize,
    /// Training outputs besides the main decoder.
    #[config(default = "Heads::MultiLevel")]
    pub heads: Heads,
}

impl MgccConfig {
    /// Builds the network on `device`, weights drawn from the device RNG (seed it first for
    /// reproducibility). Build it on an autodiff device (`Device::flex().autodiff()`) to train.
    pub fn init(&self, device: &Device) -> Mgcc {
        let c = level_channels(self.width);
        Mgcc {
            encoder: Encoder::new(self.in_channels, self.width, device),
            mixers: self
                .mixer_depths
                .iter()
                .map(|&d| ConvMixerStage::new(c[4], d, self.kernel_size, device))
                .collect(),
            main: Decoder::new(self.width, device),
            aux: (0..self.heads.aux_decoders())
                .map(|_| Decoder::new(self.width, device))
                .collect(),
            side: (self.heads == Heads::Pyramid)
                .then(|| PyramidHeads::new([c[3], c[2], c[1]], device)),
            in_channels: self.in_channels,
            width: self.width,
            heads: self.heads,
        }
    }
}

/// The MGCC network (Tang et al. 2023).
///
/// Batch norm follows PyTorch: training statistics on an autodiff device, running statistics
/// after `Module::valid()` or on a plain device (see [`crate::BatchNorm2d`]).
#[derive(Module, Debug)]
pub struct Mgcc {
    encoder: Encoder,
    mixers: Vec<ConvMixerStage>,
    main: Decoder,
    aux: Vec<Decoder>,
    side: Option<PyramidHeads>,
    in_channels: usize,
    width: usize,
    #[module(skip)]
    heads: Heads,
}

/// Shape check shared by the backbones: `C = in_channels`, `H, W` positive multiples of 16.
pub(crate) fn check_input_dims(dims: [usize; 4], in_channels: usize) -> Result<(), ModelError> {
    let [_, c, h, w] = dims;
    if c != in_channels {
        return Err(ModelError::InputChannels {
            got: c,
            expected: in_channels,
        });
    }
    if h == 0 || w == 0 || h % SIZE_MULTIPLE != 0 || w % SIZE_MULTIPLE != 0 {
        return Err(ModelError::InputSize {
            height: h,
            width: w,
        });
    }
    Ok(())
}

impl Mgcc {
    /// First-level width `w`.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Expected input channels.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// The training outputs this network was built with.
    pub fn heads(&self) -> Heads {
        self.heads
    }

    /// Checks an input shape `B×C×H×W`: `C = in_channels`, `H, W` positive multiples of 16.
    pub fn check_input(&self, dims: [usize; 4]) -> Result<(), ModelError> {
        check_input_dims(dims, self.in_channels)
    }

    /// Encoder features with the three mixers applied to the bottleneck.
    fn features(&self, x: Tensor<4>) -> [Tensor<4>; 5] {
        let [f1, f2, f3, f4, f5] = self.encoder.forward(x);
        let f5 = self.mixers.iter().fold(f5, |f, m| m.forward(f));
        [f1, f2, f3, f4, f5]
    }

    /// Inference path: encoder, mixers 1–3 on `f5`, main decoder.
    /// `x: B×C×H×W` (H, W multiples of 16) → logits `B×1×H×W`.
    ///
    /// # Panics
    /// On an input [`check_input`](Self::check_input) rejects; use
    /// [`try_forward`](Self::try_forward) for a typed error.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.try_forward(x).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`forward`](Self::forward) returning an error for a bad input shape.
    pub fn try_forward(&self, x: Tensor<4>) -> Result<Tensor<4>, ModelError> {
        self.check_input(x.dims())?;
        Ok(self.main.forward(self.features(x)))
    }

    /// Training path with the default [`Perturbation`]; see
    /// [`forward_train_with`](Self::forward_train_with).
    pub fn forward_train(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        self.forward_train_with(x, &Perturbation::default())
    }

    /// Training path. `x: B×C×H×W` → `[main, aux…]`, logits `B×1×H×W` each, by [`Heads`]:
    /// - `Single`: `[main]`;
    /// - `MultiLevel` (MGCC): `aux1 = Dec1(FeatureDropout(f1…f5))`; `f5 ← Mixer1(f5)`;
    ///   `aux2 = Dec2(Dropout(f1…f5))`; `f5 ← Mixer2(f5)`; `aux3 = Dec3(FeatureNoise(f1…f5))`;
    ///   `f5 ← Mixer3(f5)`; `main = Dec0(f1…f5)`;
    /// - `SameLevel` (CCT): `f` after all mixers, `main = Dec0(f)`, `aux1 = Dec1(FeatureNoise(f))`,
    ///   `aux2 = Dec2(Dropout(f))`, `aux3 = Dec3(FeatureDropout(f))`;
    /// - `Pyramid` (URPC): `[main, side 1/2, side 1/4, side 1/8]` (see [`PyramidHeads`]).
    ///
    /// # Panics
    /// On an input [`check_input`](Self::check_input) rejects; use
    /// [`try_forward_train`](Self::try_forward_train) for a typed error.
    pub fn forward_train_with(&self, x: Tensor<4>, p: &Perturbation) -> Vec<Tensor<4>> {
        self.try_forward_train(x, p)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`forward_train_with`](Self::forward_train_with) returning an error for a bad input shape.
    pub fn try_forward_train(
        &self,
        x: Tensor<4>,
        p: &Perturbation,
    ) -> Result<Vec<Tensor<4>>, ModelError> {
        self.check_input(x.dims())?;
        let [_, _, h, w] = x.dims();
        match self.heads {
            Heads::Single => Ok(vec![self.main.forward(self.features(x))]),
            Heads::MultiLevel => Ok(self.multi_level(x, p)),
            Heads::SameLevel => Ok(same_level(&self.main, &self.aux, self.features(x), p)),
            Heads::Pyramid => Ok(pyramid(
                &self.main,
                self.side.as_ref(),
                self.features(x),
                p,
                [h, w],
            )),
        }
    }

    /// MGCC's multi-level path (see [`forward_train_with`](Self::forward_train_with)).
    fn multi_level(&self, x: Tensor<4>, p: &Perturbation) -> Vec<Tensor<4>> {
        let [f1, f2, f3, f4, f5] = self.encoder.forward(x);
        let skips = [f1, f2, f3, f4];
        let perturbed = |f5: &Tensor<4>, op: &dyn Fn(Tensor<4>) -> Tensor<4>| -> [Tensor<4>; 5] {
            let [a, b, c, d] = skips.clone().map(op);
            [a, b, c, d, op(f5.clone())]
        };
        let aux1 = self.aux[0].forward(perturbed(&f5, &|t| p.feature_dropout(t)));
        let f5 = self.mixers[0].forward(f5);
        let aux2 = self.aux[1].forward(perturbed(&f5, &|t| p.dropout(t)));
        let f5 = self.mixers[1].forward(f5);
        let aux3 = self.aux[2].forward(perturbed(&f5, &|t| p.noise(t)));
        let f5 = self.mixers[2].forward(f5);
        let [f1, f2, f3, f4] = skips;
        let main = self.main.forward([f1, f2, f3, f4, f5]);
        vec![main, aux1, aux2, aux3]
    }

    /// Learnable parameters (weights, biases, BN γ/β), excluding BN running statistics, which
    /// burn's `num_params()` also counts.
    pub fn num_learnable_params(&self) -> usize {
        crate::params::num_learnable_params(self)
    }

    /// The same network without its training heads: encoder, mixers and main decoder
    /// ([`Heads::Single`]).
    pub fn into_main_path(self) -> Mgcc {
        Mgcc {
            aux: Vec::new(),
            side: None,
            heads: Heads::Single,
            ..self
        }
    }
}

impl LevelDecoder for Decoder {
    fn decode_levels(&self, feats: [Tensor<4>; 5]) -> (Tensor<4>, [Tensor<4>; 3]) {
        self.forward_with_levels(feats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{ModuleVisitor, Param};
    use burn::tensor::Distribution;
    use std::collections::BTreeMap;

    fn tiny(width: usize, device: &Device) -> Mgcc {
        device.seed(7);
        MgccConfig::new().with_width(width).init(device)
    }

    fn input(device: &Device) -> Tensor<4> {
        Tensor::random([2, 3, 32, 32], Distribution::Default, device)
    }

    fn max_abs_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }

    #[test]
    fn config_defaults_match_the_paper() {
        let _rng = crate::test_util::rng_lock();
        let c = MgccConfig::new();
        assert_eq!(
            (
                c.in_channels,
                c.width,
                c.mixer_depths,
                c.kernel_size,
                c.heads
            ),
            (3, 64, [3, 3, 3], 7, Heads::MultiLevel)
        );
    }

    #[test]
    fn both_paths_give_one_channel_logits_for_odd_widths() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex().autodiff();
        for width in [3, 5] {
            let model = tiny(width, &device);
            let x = input(&device);
            assert_eq!(model.forward(x.clone()).dims(), [2, 1, 32, 32]);
            let out = model.forward_train(x);
            assert_eq!(out.len(), 4);
            for o in &out {
                assert_eq!(o.dims(), [2, 1, 32, 32]);
            }
        }
        // Non-square input on the plain device.
        let plain = Device::flex();
        let model = tiny(3, &plain);
        let x = Tensor::random([1, 3, 16, 48], Distribution::Default, &plain);
        assert_eq!(model.forward(x).dims(), [1, 1, 16, 48]);
    }

    #[test]
    fn bad_input_shapes_are_typed_errors() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        let model = tiny(3, &device);
        let x = Tensor::<4>::zeros([1, 3, 30, 32], &device);
        assert!(matches!(
            model.try_forward(x.clone()),
            Err(ModelError::InputSize {
                height: 30,
                width: 32
            })
        ));
        assert!(matches!(
            model.try_forward_train(x, &Perturbation::default()),
            Err(ModelError::InputSize { .. })
        ));
        let gray = Tensor::<4>::zeros([1, 1, 32, 32], &device);
        let err = model.try_forward(gray).unwrap_err();
        assert!(matches!(
            err,
            ModelError::InputChannels {
                got: 1,
                expected: 3
            }
        ));
        assert!(err.to_string().contains("expects 3"));
    }

    #[test]
    fn main_output_is_unperturbed_and_aux_outputs_depend_on_the_seed() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex().autodiff();
        let model = tiny(4, &device);
        let x = input(&device);
        let inference = model.forward(x.clone());
        device.seed(1);
        let a = model.forward_train(x.clone());
        device.seed(1);
        let b = model.forward_train(x.clone());
        device.seed(2);
        let c = model.forward_train(x);
        // Main path = inference path (same batch statistics on the autodiff device).
        assert!(max_abs_diff(inference, a[0].clone()) < 1e-5);
        assert!(max_abs_diff(a[0].clone(), c[0].clone()) < 1e-5);
        for i in 1..4 {
            assert_eq!(
                max_abs_diff(a[i].clone(), b[i].clone()),
                0.0,
                "aux{i} not reproducible"
            );
            assert!(
                max_abs_diff(a[i].clone(), c[i].clone()) > 1e-4,
                "aux{i} ignores the seed"
            );
        }
    }

    #[test]
    fn eval_mode_is_deterministic_and_uses_running_stats() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex().autodiff();
        let model = tiny(3, &device);
        let x = input(&device);
        let _ = model.forward_train(x.clone()); // updates running statistics
        let eval = model.valid();
        let xe = x.clone().inner();
        let y1 = eval.forward(xe.clone());
        let y2 = eval.forward(xe.clone());
        assert_eq!(max_abs_diff(y1.clone(), y2), 0.0);
        // Training-mode BN (batch statistics) gives a different answer.
        assert!(max_abs_diff(y1, model.forward(x).inner()) > 1e-4);
    }

    #[test]
    fn same_seed_builds_the_same_network() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        let x = input(&device);
        let a = tiny(3, &device).forward(x.clone());
        let b = tiny(3, &device).forward(x.clone());
        assert_eq!(max_abs_diff(a.clone(), b), 0.0);
        device.seed(8);
        let c = MgccConfig::new().with_width(3).init(&device).forward(x);
        assert!(max_abs_diff(a, c) > 1e-6);
    }

    /// Sum of |grad| per top-level part: "encoder", "mixers.i", "main", "aux.i".
    struct GradSums<'a> {
        grads: &'a burn::tensor::Gradients,
        path: Vec<String>,
        sums: BTreeMap<String, f32>,
    }

    impl ModuleVisitor for GradSums<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let depth = if matches!(self.path[0].as_str(), "mixers" | "aux") {
                2
            } else {
                1
            };
            let key = self.path[..depth].join(".");
            let g = param
                .val()
                .grad(self.grads)
                .map(|g| g.abs().sum().into_scalar::<f32>())
                .unwrap_or(0.0);
            *self.sums.entry(key).or_insert(0.0) += g;
        }
    }

    #[test]
    fn gradients_reach_encoder_mixers_and_all_four_decoders() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex().autodiff();
        let model = tiny(4, &device);
        device.seed(3);
        let out = model.forward_train(input(&device));
        let loss = out
            .into_iter()
            .map(|o| (o.clone() * o).mean())
            .reduce(|a, b| a + b)
            .unwrap();
        let grads = loss.backward();
        let mut sums = GradSums {
            grads: &grads,
            path: Vec::new(),
            sums: BTreeMap::new(),
        };
        model.visit(&mut sums);
        let keys: Vec<&str> = sums.sums.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "aux.0", "aux.1", "aux.2", "encoder", "main", "mixers.0", "mixers.1", "mixers.2"
            ]
        );
        for (k, v) in &sums.sums {
            assert!(v.is_finite() && *v > 1e-6, "{k}: {v}");
        }
    }

    #[test]
    fn parameter_counts_match_the_pytorch_reference() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        let small = MgccConfig::new().with_width(16).init(&device);
        assert_eq!(small.num_learnable_params(), 7_749_204);
        assert_eq!(small.num_params(), 7_749_204 + 24_640);
        let paper = MgccConfig::new().init(&device);
        assert_eq!(paper.num_learnable_params(), 122_182_980);
    }
}
