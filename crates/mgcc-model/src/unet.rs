//! SSL4MIS's 2-D UNet (HiLab-git/SSL4MIS `code/networks/unet.py`), the backbone of its
//! semi-supervised baselines, with a single sigmoid output channel.
//!
//! - `ConvBlock(a→b, p)`: 3×3 conv → BN → LeakyReLU(0.01) → Dropout(p) → 3×3 conv → BN →
//!   LeakyReLU(0.01);
//! - encoder: `ConvBlock(in→w, 0.05)`, then four times 2×2 max-pool → `ConvBlock` with widths
//!   `[w, 2w, 4w, 8w, 16w]` (16…256 at the default `w = 16`) and dropout `0.1, 0.2, 0.3, 0.5`;
//! - decoder: four `UpBlock`s (1×1 conv to the skip's width → bilinear 2× upsampling with
//!   `align_corners = true` → concatenation `[skip, up]` → `ConvBlock(…, 0)`), then a 3×3 conv
//!   to one logit channel (SSL4MIS: `class_num` channels with softmax; a binary sigmoid here,
//!   as every mgcc method uses).
//!
//! Dropout acts in training mode only (autodiff device and batch norm in training mode), as
//! `nn.Dropout` after `model.train()`.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::leaky_relu;
use burn::tensor::{Device, Tensor};

use crate::batch_norm::BatchNorm2d;
use crate::encoder::{level_channels, pool2};
use crate::error::ModelError;
use crate::heads::{Heads, LevelDecoder, pyramid, same_level};
use crate::init::ConvSpec;
use crate::network::check_input_dims;
use crate::perturbation::{Perturbation, maybe_dropout};
use crate::pyramid::PyramidHeads;

/// Negative slope of `nn.LeakyReLU()`.
const LEAKY_SLOPE: f64 = 0.01;

/// Encoder dropout per level, as SSL4MIS.
pub const UNET_DROPOUT: [f64; 5] = [0.05, 0.1, 0.2, 0.3, 0.5];

/// Hyper-parameters of [`UNet`].
#[derive(Debug, Clone, PartialEq)]
pub struct UNetConfig {
    /// Input image channels.
    pub in_channels: usize,
    /// First-level channels `w` (16 in SSL4MIS).
    pub width: usize,
    /// Dropout of the five encoder blocks.
    pub dropout: [f64; 5],
    /// Training outputs besides the main decoder (`MultiLevel` needs the MGCC backbone).
    pub heads: Heads,
}

impl Default for UNetConfig {
    fn default() -> Self {
        Self {
            in_channels: 3,
            width: 16,
            dropout: UNET_DROPOUT,
            heads: Heads::Single,
        }
    }
}

impl UNetConfig {
    /// Checks the combination: the UNet has no levels of global context for MGCC's heads.
    pub fn validate(&self) -> Result<(), String> {
        if self.heads == Heads::MultiLevel {
            return Err(
                "the unet backbone has no ConvMixer levels for MGCC's multi-level heads".into(),
            );
        }
        Ok(())
    }

    /// Builds the network on `device` (weights from the device RNG).
    ///
    /// # Panics
    /// On a combination [`validate`](Self::validate) rejects.
    pub fn init(&self, device: &Device) -> UNet {
        if let Err(e) = self.validate() {
            panic!("{e}");
        }
        let c = level_channels(self.width);
        let mut encoder = vec![ConvBlock::new(
            self.in_channels,
            c[0],
            self.dropout[0],
            device,
        )];
        encoder.extend((1..5).map(|i| ConvBlock::new(c[i - 1], c[i], self.dropout[i], device)));
        let aux = match self.heads {
            Heads::SameLevel => 3,
            _ => 0,
        };
        UNet {
            encoder,
            main: UNetDecoder::new(self.width, device),
            aux: (0..aux)
                .map(|_| UNetDecoder::new(self.width, device))
                .collect(),
            side: (self.heads == Heads::Pyramid)
                .then(|| PyramidHeads::new([c[3], c[2], c[1]], device)),
            in_channels: self.in_channels,
            width: self.width,
            heads: self.heads,
        }
    }
}

/// Two 3×3 convolutions with batch norm and LeakyReLU, dropout between them.
#[derive(Module, Debug)]
pub struct ConvBlock {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    conv2: Conv2d,
    bn2: BatchNorm2d,
    #[module(skip)]
    dropout: f64,
}

impl ConvBlock {
    fn new(cin: usize, cout: usize, dropout: f64, device: &Device) -> Self {
        Self {
            conv1: ConvSpec::new(cin, cout, 3).init(device),
            bn1: BatchNorm2d::new(cout, device),
            conv2: ConvSpec::new(cout, cout, 3).init(device),
            bn2: BatchNorm2d::new(cout, device),
            dropout,
        }
    }

    /// `B×cin×H×W → B×cout×H×W`.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let device = x.device();
        let x = leaky_relu(
            crate::conv::apply_bn(&self.conv1, &self.bn1, x, false),
            LEAKY_SLOPE,
        );
        let x = if self.bn1.is_training(&device) {
            maybe_dropout(x, self.dropout)
        } else {
            x
        };
        leaky_relu(
            crate::conv::apply_bn(&self.conv2, &self.bn2, x, false),
            LEAKY_SLOPE,
        )
    }
}

/// 1×1 conv to the skip's width, bilinear 2× upsampling, concatenation, [`ConvBlock`].
#[derive(Module, Debug)]
pub struct UpBlock {
    reduce: Conv2d,
    conv: ConvBlock,
}

impl UpBlock {
    fn new(cin: usize, cskip: usize, cout: usize, device: &Device) -> Self {
        Self {
            reduce: ConvSpec::new(cin, cskip, 1).init(device),
            conv: ConvBlock::new(2 * cskip, cout, 0.0, device),
        }
    }

    /// `x: B×cin×h×w`, `skip: B×cskip×2h×2w` → `B×cout×2h×2w`.
    fn forward(&self, x: Tensor<4>, skip: Tensor<4>) -> Tensor<4> {
        let x = crate::conv::apply(&self.reduce, x);
        let up = crate::bilinear::upsample2_bilinear(x);
        self.conv
            .forward(mgcc_kernels::cat_channels(vec![skip, up]))
    }
}

/// SSL4MIS's `Decoder`: four [`UpBlock`]s and a 3×3 output convolution.
#[derive(Module, Debug)]
pub struct UNetDecoder {
    ups: Vec<UpBlock>,
    head: Conv2d,
}

impl UNetDecoder {
    fn new(width: usize, device: &Device) -> Self {
        let c = level_channels(width);
        Self {
            ups: (0..4)
                .rev()
                .map(|i| UpBlock::new(c[i + 1], c[i], c[i], device))
                .collect(),
            head: ConvSpec::new(c[0], 1, 3).init(device),
        }
    }

    /// `[x0…x4]` → (logits `B×1×H×W`, decoder state after the first three up blocks at
    /// 1/8, 1/4, 1/2 resolution).
    fn forward_with_levels(&self, feats: [Tensor<4>; 5]) -> (Tensor<4>, [Tensor<4>; 3]) {
        let [x0, x1, x2, x3, x4] = feats;
        let d8 = self.ups[0].forward(x4, x3);
        let d4 = self.ups[1].forward(d8.clone(), x2);
        let d2 = self.ups[2].forward(d4.clone(), x1);
        let d1 = self.ups[3].forward(d2.clone(), x0);
        (crate::conv::apply(&self.head, d1), [d8, d4, d2])
    }
}

impl LevelDecoder for UNetDecoder {
    fn decode_levels(&self, feats: [Tensor<4>; 5]) -> (Tensor<4>, [Tensor<4>; 3]) {
        self.forward_with_levels(feats)
    }
}

/// SSL4MIS's UNet, with CCT's auxiliary decoders or URPC's side heads when asked.
#[derive(Module, Debug)]
pub struct UNet {
    encoder: Vec<ConvBlock>,
    main: UNetDecoder,
    aux: Vec<UNetDecoder>,
    side: Option<PyramidHeads>,
    in_channels: usize,
    width: usize,
    #[module(skip)]
    heads: Heads,
}

impl UNet {
    /// Expected input channels.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// First-level width.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The training outputs this network was built with.
    pub fn heads(&self) -> Heads {
        self.heads
    }

    /// Checks an input shape `B×C×H×W`: `C = in_channels`, `H, W` positive multiples of 16.
    pub fn check_input(&self, dims: [usize; 4]) -> Result<(), ModelError> {
        check_input_dims(dims, self.in_channels)
    }

    /// `x: B×C×H×W` → `[x0…x4]`, `x_i: B×c_i×H/2^i×W/2^i`.
    fn encode(&self, x: Tensor<4>) -> [Tensor<4>; 5] {
        let x0 = self.encoder[0].forward(x);
        let x1 = self.encoder[1].forward(pool2(x0.clone()));
        let x2 = self.encoder[2].forward(pool2(x1.clone()));
        let x3 = self.encoder[3].forward(pool2(x2.clone()));
        let x4 = self.encoder[4].forward(pool2(x3.clone()));
        [x0, x1, x2, x3, x4]
    }

    /// Inference path: `x: B×C×H×W` → logits `B×1×H×W` of the main decoder.
    pub fn try_forward(&self, x: Tensor<4>) -> Result<Tensor<4>, ModelError> {
        self.check_input(x.dims())?;
        Ok(self.main.decode(self.encode(x)))
    }

    /// Training path: `[main, aux…]` as [`crate::Mgcc::forward_train_with`] describes for
    /// `Single`, `SameLevel` (`UNet_CCT`: noise, dropout, feature dropout on all five
    /// features) and `Pyramid` (`UNet_URPC`).
    pub fn try_forward_train(
        &self,
        x: Tensor<4>,
        p: &Perturbation,
    ) -> Result<Vec<Tensor<4>>, ModelError> {
        self.check_input(x.dims())?;
        let [_, _, h, w] = x.dims();
        let f = self.encode(x);
        Ok(match self.heads {
            Heads::Single | Heads::MultiLevel => vec![self.main.decode(f)],
            Heads::SameLevel => same_level(&self.main, &self.aux, f, p),
            Heads::Pyramid => pyramid(&self.main, self.side.as_ref(), f, p, [h, w]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segnet::{Backbone, NetConfig, SegNet};
    use burn::module::{ModuleVisitor, Param};
    use burn::tensor::Distribution;

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    fn net(backbone: Backbone, heads: Heads, width: usize, device: &Device) -> SegNet {
        NetConfig {
            backbone,
            in_channels: 3,
            width,
            heads,
        }
        .init(device)
    }

    /// Learnable parameters of SSL4MIS's `UNet(in_chns=3, class_num=1)`, layer by layer:
    /// `ConvBlock(a, b)` has `9ab + 9b² + 6b` (two biased 3×3 convs, two BN γ/β), the encoder
    /// 2 832 + 14 016 + 55 680 + 221 952 + 886 272 = 1 180 752, an `UpBlock(c1, c2)` `c1·c2 + c2
    /// + 27c2² + 6c2` (476 032, 119 232, 29 920, 7 536), the 3×3 output conv 145.
    const SSL4MIS_UNET_PARAMS: usize = 1_180_752 + 476_032 + 119_232 + 29_920 + 7_536 + 145;

    #[test]
    fn parameter_counts_match_ssl4mis() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        let count = |heads| net(Backbone::Unet, heads, 16, &device).num_learnable_params();
        assert_eq!(SSL4MIS_UNET_PARAMS, 1_813_617);
        assert_eq!(count(Heads::Single), SSL4MIS_UNET_PARAMS);
        // UNet_CCT: three more decoders.
        assert_eq!(count(Heads::SameLevel), SSL4MIS_UNET_PARAMS + 3 * 632_865);
        // UNet_URPC: side heads 3×3 128→1, 64→1, 32→1 (SSL4MIS also builds an unused 256→1).
        assert_eq!(
            count(Heads::Pyramid),
            SSL4MIS_UNET_PARAMS + 1153 + 577 + 289
        );
    }

    #[test]
    fn multi_level_heads_are_refused_by_name() {
        let err = UNetConfig {
            heads: Heads::MultiLevel,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("unet") && err.contains("ConvMixer"), "{err}");
    }

    #[test]
    fn every_layout_gives_outputs_at_the_input_size() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex().autodiff();
        device.seed(3);
        let x = Tensor::<4>::random([2, 3, 32, 48], Distribution::Default, &device);
        let p = Perturbation::default();
        for (backbone, heads) in [
            (Backbone::Unet, Heads::Single),
            (Backbone::Unet, Heads::SameLevel),
            (Backbone::Unet, Heads::Pyramid),
            (Backbone::Mgcc, Heads::Single),
            (Backbone::Mgcc, Heads::MultiLevel),
            (Backbone::Mgcc, Heads::SameLevel),
            (Backbone::Mgcc, Heads::Pyramid),
        ] {
            let n = net(backbone, heads, 3, &device);
            let out = n.forward_train(x.clone(), &p);
            assert_eq!(out.len(), heads.outputs(), "{backbone:?} {heads:?}");
            for o in &out {
                assert_eq!(o.dims(), [2, 1, 32, 48], "{backbone:?} {heads:?}");
            }
            assert_eq!(n.valid().forward(x.clone().inner()).dims(), [2, 1, 32, 48]);
        }
    }

    #[test]
    fn side_outputs_are_nearest_upsampled_from_their_level() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex().autodiff();
        device.seed(4);
        let x = Tensor::<4>::random([1, 3, 32, 32], Distribution::Default, &device);
        for backbone in [Backbone::Unet, Backbone::Mgcc] {
            let out = net(backbone, Heads::Pyramid, 3, &device)
                .forward_train(x.clone(), &Perturbation::default());
            // Side outputs at 1/2, 1/4, 1/8: constant over 2×2, 4×4, 8×8 blocks.
            for (k, block) in [(1, 2), (2, 4), (3, 8)] {
                let v = values(out[k].clone());
                for y in 0..32 {
                    for xx in 0..32 {
                        let anchor = (y / block * block) * 32 + xx / block * block;
                        assert_eq!(v[y * 32 + xx], v[anchor], "{backbone:?} side {k}");
                    }
                }
                // …and not constant overall.
                assert!(v.iter().any(|&a| (a - v[0]).abs() > 1e-6));
            }
        }
    }

    #[test]
    fn dropout_acts_in_training_mode_only() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex().autodiff();
        device.seed(5);
        let n = net(Backbone::Unet, Heads::Single, 4, &device);
        let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Default, &device);
        let p = Perturbation::default();
        let train = |seed| {
            device.seed(seed);
            values(n.forward_train(x.clone(), &p).swap_remove(0))
        };
        assert_eq!(train(1), train(1));
        assert_ne!(
            train(1),
            train(2),
            "encoder dropout must depend on the draw"
        );
        let eval = n.valid();
        let xe = x.clone().inner();
        device.seed(1);
        let a = values(eval.forward(xe.clone()));
        device.seed(2);
        assert_eq!(a, values(eval.forward(xe)));
    }

    /// Parameters that received no gradient, by path.
    struct Missing<'a> {
        grads: &'a burn::tensor::Gradients,
        path: Vec<String>,
        missing: Vec<String>,
    }

    impl ModuleVisitor for Missing<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let name = self.path.join(".");
            if name.ends_with("running_mean") || name.ends_with("running_var") {
                return;
            }
            let g = param.val().grad(self.grads);
            if g.is_none_or(|g| g.abs().sum().into_scalar::<f32>() == 0.0) {
                self.missing.push(name);
            }
        }
    }

    #[test]
    fn every_parameter_of_every_layout_gets_a_gradient() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex().autodiff();
        for (backbone, heads) in [
            (Backbone::Unet, Heads::SameLevel),
            (Backbone::Unet, Heads::Pyramid),
            (Backbone::Mgcc, Heads::SameLevel),
            (Backbone::Mgcc, Heads::Pyramid),
            (Backbone::Mgcc, Heads::Single),
        ] {
            device.seed(6);
            let n = net(backbone, heads, 4, &device);
            let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Default, &device);
            let loss = n
                .forward_train(x, &Perturbation::default())
                .into_iter()
                .map(|o| (o.clone() * o).mean())
                .reduce(|a, b| a + b)
                .unwrap();
            let grads = loss.backward();
            let mut v = Missing {
                grads: &grads,
                path: Vec::new(),
                missing: Vec::new(),
            };
            n.visit(&mut v);
            assert!(
                v.missing.is_empty(),
                "{backbone:?} {heads:?}: {:?}",
                v.missing
            );
        }
    }

    #[test]
    fn weights_round_trip_through_a_file() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex().autodiff();
        device.seed(8);
        let n = net(Backbone::Unet, Heads::Pyramid, 3, &device);
        let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Default, &device);
        let _ = n.forward_train(x.clone(), &Perturbation::default()); // moves running stats
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("unet.bpk");
        n.save_weights(&path).unwrap();
        let plain = Device::flex();
        device.seed(9);
        let fresh = net(Backbone::Unet, Heads::Pyramid, 3, &plain);
        let xe = x.inner();
        assert_ne!(
            values(fresh.forward(xe.clone())),
            values(n.valid().forward(xe.clone()))
        );
        let loaded = fresh.load_weights(&path).unwrap();
        assert_eq!(
            values(loaded.forward(xe.clone())),
            values(n.valid().forward(xe))
        );
        // A file of another layout does not load.
        let other = net(Backbone::Unet, Heads::SameLevel, 3, &plain);
        assert!(matches!(
            other.load_weights(&path),
            Err(ModelError::Load { .. })
        ));
    }
}
