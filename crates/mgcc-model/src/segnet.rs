//! One type for every segmentation network a method trains: the MGCC network or SSL4MIS's
//! UNet, each with the training heads the method needs.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::heads::Heads;
use crate::network::{Mgcc, MgccConfig};
use crate::perturbation::Perturbation;
use crate::unet::{UNet, UNetConfig};

/// The network family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backbone {
    /// The CMU-Net-style MGCC network (encoder, three ConvMixer stages, attention-gated decoders).
    #[default]
    Mgcc,
    /// SSL4MIS's 2-D UNet (LeakyReLU, encoder dropout, bilinear upsampling).
    Unet,
}

impl Backbone {
    /// The first-level width the family is published with: 64 (MGCC paper), 16 (SSL4MIS).
    pub fn default_width(self) -> usize {
        match self {
            Backbone::Mgcc => 64,
            Backbone::Unet => 16,
        }
    }

    /// The name used on the command line and in config files.
    pub fn name(self) -> &'static str {
        match self {
            Backbone::Mgcc => "mgcc",
            Backbone::Unet => "unet",
        }
    }
}

impl std::str::FromStr for Backbone {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mgcc" => Ok(Backbone::Mgcc),
            "unet" => Ok(Backbone::Unet),
            other => Err(format!(
                "unknown backbone '{other}' (expected mgcc or unet)"
            )),
        }
    }
}

/// Everything needed to rebuild a network for inference (`RUN/model.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetConfig {
    pub backbone: Backbone,
    pub in_channels: usize,
    pub width: usize,
    pub heads: Heads,
}

impl NetConfig {
    /// Refuses a layout the backbone cannot build, by name.
    pub fn validate(&self) -> Result<(), String> {
        if self.width == 0 {
            return Err("width must be at least 1".into());
        }
        match self.backbone {
            Backbone::Mgcc => Ok(()),
            Backbone::Unet => self.unet().validate(),
        }
    }

    fn unet(&self) -> UNetConfig {
        UNetConfig {
            in_channels: self.in_channels,
            width: self.width,
            heads: self.heads,
            ..Default::default()
        }
    }

    /// Builds the network on `device`, weights from the device RNG.
    ///
    /// # Panics
    /// On a combination [`validate`](Self::validate) rejects.
    pub fn init(&self, device: &Device) -> SegNet {
        match self.backbone {
            Backbone::Mgcc => SegNet::Mgcc(
                MgccConfig::new()
                    .with_in_channels(self.in_channels)
                    .with_width(self.width)
                    .with_heads(self.heads)
                    .init(device),
            ),
            Backbone::Unet => SegNet::Unet(self.unet().init(device)),
        }
    }
}

/// A segmentation network of either backbone.
#[derive(Module, Debug)]
pub enum SegNet {
    Mgcc(Mgcc),
    Unet(UNet),
}

impl SegNet {
    /// Expected input channels.
    pub fn in_channels(&self) -> usize {
        match self {
            SegNet::Mgcc(m) => m.in_channels(),
            SegNet::Unet(u) => u.in_channels(),
        }
    }

    /// The training outputs this network was built with.
    pub fn heads(&self) -> Heads {
        match self {
            SegNet::Mgcc(m) => m.heads(),
            SegNet::Unet(u) => u.heads(),
        }
    }

    /// Checks an input shape `B×C×H×W`: `C = in_channels`, `H, W` positive multiples of 16.
    pub fn check_input(&self, dims: [usize; 4]) -> Result<(), ModelError> {
        match self {
            SegNet::Mgcc(m) => m.check_input(dims),
            SegNet::Unet(u) => u.check_input(dims),
        }
    }

    /// Inference path (main decoder): `B×C×H×W` → logits `B×1×H×W`.
    ///
    /// # Panics
    /// On an input [`check_input`](Self::check_input) rejects.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.try_forward(x).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Lesion probabilities `B×1×H×W`: the sigmoid of [`forward`](Self::forward), computed on
    /// a worker of the CPU thread pool ([`mgcc_kernels::on_pool`]), which is faster at small
    /// batches. For a network in validation mode (`valid()`), whose batch norms only read
    /// their running statistics.
    ///
    /// # Panics
    /// On an input [`check_input`](Self::check_input) rejects.
    pub fn predict(&self, x: Tensor<4>) -> Tensor<4> {
        mgcc_kernels::on_pool(|| burn::tensor::activation::sigmoid(self.forward(x)))
    }

    /// [`forward`](Self::forward) returning an error for a bad input shape.
    pub fn try_forward(&self, x: Tensor<4>) -> Result<Tensor<4>, ModelError> {
        match self {
            SegNet::Mgcc(m) => m.try_forward(x),
            SegNet::Unet(u) => u.try_forward(x),
        }
    }

    /// Training path: `[main, aux…]`, logits `B×1×H×W` each ([`Heads::outputs`] of them).
    ///
    /// # Panics
    /// On an input [`check_input`](Self::check_input) rejects.
    pub fn forward_train(&self, x: Tensor<4>, p: &Perturbation) -> Vec<Tensor<4>> {
        let out = match self {
            SegNet::Mgcc(m) => m.try_forward_train(x, p),
            SegNet::Unet(u) => u.try_forward_train(x, p),
        };
        out.unwrap_or_else(|e| panic!("{e}"))
    }

    /// Learnable parameters (batch-norm running statistics excluded).
    pub fn num_learnable_params(&self) -> usize {
        crate::params::num_learnable_params(self)
    }

    /// Writes the weights and running statistics of the inner network to `path` (burnpack).
    /// Parameter names are those of the inner network, so files written before this type
    /// existed (MGCC runs) load unchanged. Running statistics are synchronised first
    /// (`valid()`: burn keeps the latest update pending per thread), so the file reflects
    /// every step taken so far.
    pub fn save_weights(&self, path: &Path) -> Result<(), ModelError> {
        let err = |e: burn::store::RecordError| ModelError::Save {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        match self.valid() {
            SegNet::Mgcc(m) => m.save_file(path).map_err(err),
            SegNet::Unet(u) => u.save_file(path).map_err(err),
        }
    }

    /// Loads weights written by [`save_weights`](Self::save_weights) into this network.
    ///
    /// A main-path-only MGCC network ([`Heads::Single`]) also loads a file of the full network
    /// with MGCC's three auxiliary decoders, which are dropped: supervised runs of mgcc 0.1
    /// trained that network (its auxiliary decoders untouched). The file is checked strictly
    /// against the full layout, so nothing else is accepted.
    pub fn load_weights(self, path: &Path) -> Result<Self, ModelError> {
        let err = |e: burn::store::RecordError| ModelError::Load {
            path: path.to_path_buf(),
            message: shorten(&e.to_string()),
        };
        Ok(match self {
            SegNet::Mgcc(m) => match m.clone().try_load_file(path) {
                Ok(m) => SegNet::Mgcc(m),
                Err(e) if m.heads() == Heads::Single => {
                    let device = m.collect_devices(Vec::new()).into_iter().next();
                    let device = device.unwrap_or_default();
                    let full = MgccConfig::new()
                        .with_in_channels(m.in_channels())
                        .with_width(m.width())
                        .with_heads(Heads::MultiLevel)
                        .init(&device);
                    match full.try_load_file(path) {
                        Ok(full) => SegNet::Mgcc(full.into_main_path()),
                        Err(_) => return Err(err(e)),
                    }
                }
                Err(e) => return Err(err(e)),
            },
            SegNet::Unet(u) => SegNet::Unet(u.try_load_file(path).map_err(err)?),
        })
    }
}

/// A burn error message cut to its first 400 characters (a record mismatch lists every tensor).
fn shorten(message: &str) -> String {
    const MAX: usize = 400;
    match message.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}… ({} more characters)", &message[..i], message.len() - i),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn cfg(heads: Heads) -> NetConfig {
        NetConfig {
            backbone: Backbone::Mgcc,
            in_channels: 3,
            width: 2,
            heads,
        }
    }

    #[test]
    fn a_full_network_file_loads_as_its_main_path_and_nothing_else_does() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        device.seed(3);
        let full = cfg(Heads::MultiLevel).init(&device);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full.bpk");
        full.save_weights(&path).unwrap();
        let single = cfg(Heads::Single)
            .init(&device)
            .load_weights(&path)
            .unwrap();
        assert_eq!(single.heads(), Heads::Single);
        let x = Tensor::<4>::random([1, 3, 32, 32], Distribution::Default, &device);
        let a: Vec<f32> = full.forward(x.clone()).into_data().try_to_vec().unwrap();
        let b: Vec<f32> = single.forward(x).into_data().try_to_vec().unwrap();
        assert_eq!(a, b, "the main path keeps the file's weights");
        // Other layouts are still refused, with a message of bounded length.
        let pyramid = cfg(Heads::SameLevel).init(&device).save_weights(&path);
        pyramid.unwrap();
        let err = cfg(Heads::Pyramid)
            .init(&device)
            .load_weights(&path)
            .unwrap_err();
        assert!(err.to_string().len() < 700, "{}", err.to_string().len());
    }
}
