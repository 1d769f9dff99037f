//! ONNX export of a network's inference path (opset 17, IR version 8), written without
//! generated code: [`proto`] encodes protobuf fields, [`model`] the ONNX messages, `builder`
//! assembles a graph and `lower_mgcc` / `lower_unet` translate the two backbones.
//!
//! The graph computes exactly what [`SegNet::forward`] computes in inference mode: the main
//! decoder only, batch norm with the running statistics, no perturbation or dropout.
//! - **Input** `image`: float32 `batch×C×height×width` (NCHW), the image as mgcc's loader
//!   normalises it (`mgcc_data::transform`); [`OnnxOptions::input_scale`] is applied inside
//!   the graph (1/255 for a run with the published code's double scaling).
//! - **Outputs** `logits` (`batch×1×height×width`, what [`SegNet::forward`] returns) and
//!   `probability` (their sigmoid).
//! - **Dimensions.** `batch` is always symbolic; height and width are symbolic unless
//!   [`OnnxOptions::spatial`] fixes them (positive multiples of 16 either way).
//! - **Weights** are float32 initializers named by their mgcc path.

mod builder;
mod lower_mgcc;
mod lower_unet;
pub mod model;
pub mod proto;
mod weights;

use crate::segnet::SegNet;
use model::{Dim, Model, ValueInfo};
use weights::Weights;

/// ONNX IR version written (ONNX 1.12, the release that introduced opset 17).
pub const IR_VERSION: i64 = 8;
/// Operator set of the default domain.
pub const OPSET: i64 = 17;
/// Name of the graph input.
pub const INPUT: &str = "image";
/// Name of the logits output.
pub const LOGITS: &str = "logits";
/// Name of the probability output (sigmoid of the logits).
pub const PROBABILITY: &str = "probability";

/// A network that cannot be lowered (a tensor missing or of an unexpected shape).
#[derive(Debug, thiserror::Error)]
#[error("ONNX export: {0}")]
pub struct OnnxError(pub String);

/// What the exported graph looks like beyond the network itself.
#[derive(Debug, Clone, PartialEq)]
pub struct OnnxOptions {
    /// Factor on the input applied first inside the graph: 1, or 1/255 for a run trained with
    /// the published code's double scaling (`TrainConfig::input_scale`).
    pub input_scale: f32,
    /// Fixed `[height, width]` of the input; `None` leaves them symbolic.
    pub spatial: Option<[usize; 2]>,
    /// Extra key–value pairs for the model's `metadata_props`.
    pub metadata: Vec<(String, String)>,
}

impl Default for OnnxOptions {
    fn default() -> Self {
        Self {
            input_scale: 1.0,
            spatial: None,
            metadata: Vec::new(),
        }
    }
}

/// The ONNX model (the bytes of an `.onnx` file) of `net`'s inference path.
pub fn to_onnx(net: &SegNet, options: &OnnxOptions) -> Result<Vec<u8>, OnnxError> {
    let (backbone, weights) = match net {
        SegNet::Mgcc(m) => ("mgcc", Weights::of(m)?),
        SegNet::Unet(u) => ("unet", Weights::of(u)?),
    };
    let mut b = builder::Builder::new(&format!("{backbone}_inference"), &weights);
    let x = if options.input_scale == 1.0 {
        INPUT.to_string()
    } else {
        let s = b.scalar(options.input_scale);
        b.binary("Mul", INPUT, &s)
    };
    match net {
        SegNet::Mgcc(_) => lower_mgcc::lower(&mut b, &weights, &x, LOGITS)?,
        SegNet::Unet(_) => lower_unet::lower(&mut b, &x, LOGITS)?,
    }
    b.op("Sigmoid", &[LOGITS], Vec::new(), Some(PROBABILITY));

    let [h, w] = match options.spatial {
        Some([h, w]) => [Dim::Fixed(h), Dim::Fixed(w)],
        None => [Dim::Symbol("height".into()), Dim::Symbol("width".into())],
    };
    let shape = |c: usize| {
        vec![
            Dim::Symbol("batch".into()),
            Dim::Fixed(c),
            h.clone(),
            w.clone(),
        ]
    };
    let value = |name: &str, c| ValueInfo {
        name: name.to_string(),
        dims: shape(c),
    };
    let graph = b.finish(
        vec![value(INPUT, net.in_channels())],
        vec![value(LOGITS, 1), value(PROBABILITY, 1)],
    );
    let mut metadata = vec![
        ("mgcc.backbone".to_string(), backbone.to_string()),
        (
            "mgcc.input_scale".to_string(),
            options.input_scale.to_string(),
        ),
    ];
    metadata.extend(options.metadata.iter().cloned());
    Ok(Model {
        ir_version: IR_VERSION,
        opset: OPSET,
        producer_name: "mgcc".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!(
            "{backbone} inference network: input `{INPUT}` float32 N×{}×H×W normalised as mgcc's \
             loader does (H, W multiples of 16); outputs `{LOGITS}` and `{PROBABILITY}` N×1×H×W",
            net.in_channels()
        ),
        metadata,
        graph,
    }
    .encode())
}
