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
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};

use crate::batch_norm::BatchNorm2d;
use crate::encoder::{level_channels, pool2};
use crate::error::ModelError;
use crate::init::ConvSpec;
use crate::network::{Heads, check_input_dims, perturb_all};
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
        let [_, _, h, w] = x.dims();
        let up = interpolate(
            x,
            InterpolateOptions::new(InterpolateMode::Bilinear)
                .with_align_corners(true)
                .with_output_size([2 * h, 2 * w]),
        );
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

    fn forward(&self, feats: [Tensor<4>; 5]) -> Tensor<4> {
        self.forward_with_levels(feats).0
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
        Ok(self.main.forward(self.encode(x)))
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
            Heads::Single | Heads::MultiLevel => vec![self.main.forward(f)],
            Heads::SameLevel => {
                let main = self.main.forward(f.clone());
                let aux1 = self.aux[0].forward(perturb_all(&f, |t| p.noise(t)));
                let aux2 = self.aux[1].forward(perturb_all(&f, |t| p.dropout(t)));
                let aux3 = self.aux[2].forward(perturb_all(&f, |t| p.feature_dropout(t)));
                vec![main, aux1, aux2, aux3]
            }
            Heads::Pyramid => {
                let (main, levels) = self.main.forward_with_levels(f);
                let side = self
                    .side
                    .as_ref()
                    .expect("pyramid heads are built with the layout");
                let [s1, s2, s3] = side.forward(levels, p, [h, w]);
                vec![main, s1, s2, s3]
            }
        })
    }
}
