//! The MGCC network (Tang et al. 2023, arXiv 2305.09447) in burn 0.22: a CMU-Net style
//! five-level encoder, three ConvMixer stages on the bottleneck, and one main plus three
//! auxiliary attention-gated decoders whose inputs are perturbed (feature dropout, dropout,
//! feature noise) for cross-consistency training. Also SSL4MIS's 2-D UNet ([`UNet`]) and the
//! training heads of the baselines ([`Heads`]), both behind one type, [`SegNet`].
//!
//! Layer order, shapes and initialisation match the PyTorch reference
//! (`shared/bench/torch_mgcc.py`): 7,749,204 learnable parameters at width 16 and
//! 122,182,980 at width 64 with 3 input channels.

mod attention_gate;
mod batch_norm;
mod bilinear;
mod checkpoint;
mod conv;
mod convmixer;
mod decoder;
mod double_conv;
mod encoder;
mod error;
mod heads;
mod init;
pub mod interop;
mod network;
pub mod onnx;
mod params;
mod perturbation;
mod pyramid;
mod segnet;
#[cfg(test)]
mod test_util;
pub mod torch_names;
mod unet;

pub use attention_gate::MultiScaleGate;
pub use batch_norm::BatchNorm2d;
pub use conv::apply as apply_conv;
pub use convmixer::{ConvMixerStage, MixerLayer};
pub use decoder::Decoder;
pub use double_conv::DoubleConv;
pub use encoder::{Encoder, level_channels};
pub use error::ModelError;
pub use heads::Heads;
pub use network::{Mgcc, MgccConfig, SIZE_MULTIPLE};
pub use params::num_learnable_params;
pub use perturbation::{
    DROPOUT_P, FEATURE_DROPOUT_GAMMA, NOISE_RANGE, Perturbation, dropout, feature_dropout,
    feature_dropout_in, feature_dropout_with_gamma, feature_noise, maybe_dropout,
};
pub use pyramid::PyramidHeads;
pub use segnet::{Backbone, NetConfig, SegNet};
pub use unet::{UNET_DROPOUT, UNet, UNetConfig};
