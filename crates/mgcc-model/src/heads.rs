//! The training heads a method needs besides the main decoder ([`Heads`]), and the two
//! layouts both backbones share: CCT's auxiliary decoders on perturbed final features and
//! URPC's pyramid side outputs.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::perturbation::Perturbation;
use crate::pyramid::PyramidHeads;

/// The outputs a network has in training besides its main decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Heads {
    /// The main decoder alone (supervised, mean teacher, UA-MT, CPS).
    Single,
    /// MGCC: three auxiliary decoders fed at three depths of global context (feature dropout
    /// before the ConvMixers, dropout after the first, feature noise after the second). Only
    /// the MGCC backbone has these levels.
    #[default]
    MultiLevel,
    /// CCT (SSL4MIS `UNet_CCT`): three auxiliary decoders on the final features, perturbed by
    /// feature noise, dropout and feature dropout.
    SameLevel,
    /// URPC (SSL4MIS `UNet_URPC`): side outputs of the main decoder at 1/2, 1/4 and 1/8.
    Pyramid,
}

impl Heads {
    /// Outputs of the training path, the main one included.
    pub fn outputs(self) -> usize {
        match self {
            Heads::Single => 1,
            _ => 4,
        }
    }

    /// Auxiliary decoders this layout builds.
    pub(crate) fn aux_decoders(self) -> usize {
        match self {
            Heads::MultiLevel | Heads::SameLevel => 3,
            Heads::Single | Heads::Pyramid => 0,
        }
    }
}

/// A decoder over the five feature levels of an encoder.
pub(crate) trait LevelDecoder {
    /// `[f1…f5]` → (logits `B×1×H×W`, the decoder state after its first three levels at 1/8,
    /// 1/4 and 1/2 of the input).
    fn decode_levels(&self, feats: [Tensor<4>; 5]) -> (Tensor<4>, [Tensor<4>; 3]);

    /// The logits alone.
    fn decode(&self, feats: [Tensor<4>; 5]) -> Tensor<4> {
        self.decode_levels(feats).0
    }
}

/// The five features with `op` applied to each.
pub(crate) fn perturb_all(
    feats: &[Tensor<4>; 5],
    op: impl Fn(Tensor<4>) -> Tensor<4>,
) -> [Tensor<4>; 5] {
    feats.clone().map(op)
}

/// CCT (SSL4MIS `UNet_CCT`): `[Dec0(f), Dec1(FeatureNoise(f)), Dec2(Dropout(f)),
/// Dec3(FeatureDropout(f))]`, each perturbation applied to all five levels.
pub(crate) fn same_level<D: LevelDecoder>(
    main: &D,
    aux: &[D],
    f: [Tensor<4>; 5],
    p: &Perturbation,
) -> Vec<Tensor<4>> {
    let aux1 = aux[0].decode(perturb_all(&f, |t| p.noise(t)));
    let aux2 = aux[1].decode(perturb_all(&f, |t| p.dropout(t)));
    let aux3 = aux[2].decode(perturb_all(&f, |t| p.feature_dropout(t)));
    vec![main.decode(f), aux1, aux2, aux3]
}

/// URPC (SSL4MIS `UNet_URPC`): `[main, side 1/2, side 1/4, side 1/8]` at input size `size`.
pub(crate) fn pyramid<D: LevelDecoder>(
    main: &D,
    side: Option<&PyramidHeads>,
    f: [Tensor<4>; 5],
    p: &Perturbation,
    size: [usize; 2],
) -> Vec<Tensor<4>> {
    let (logits, levels) = main.decode_levels(f);
    let side = side.expect("pyramid heads are built with the layout");
    let [s1, s2, s3] = side.forward(levels, p, size);
    vec![logits, s1, s2, s3]
}
