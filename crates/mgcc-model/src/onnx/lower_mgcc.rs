//! The MGCC inference path ([`crate::Mgcc::forward`]) as ONNX operations: encoder, the three
//! ConvMixer stages on the bottleneck, the main attention-gated decoder and its 1×1 head.
//! Auxiliary decoders and side heads are training-only and left out.

use super::OnnxError;
use super::builder::Builder;
use super::weights::Weights;

/// Layers per ConvMixer stage, read from the tensor names.
fn mixer_depths(w: &Weights) -> [usize; 3] {
    std::array::from_fn(|s| {
        (0..)
            .take_while(|l| w.has(&format!("mixers.{s}.layers.{l}.depthwise.weight")))
            .count()
    })
}

/// `DoubleConv` at `prefix`: (3×3 conv → BN → ReLU) twice.
fn double_conv(b: &mut Builder, x: &str, prefix: &str) -> Result<String, OnnxError> {
    let y = b.conv_bn(
        x,
        &format!("{prefix}.conv1"),
        &format!("{prefix}.bn1"),
        1,
        true,
    )?;
    b.conv_bn(
        &y,
        &format!("{prefix}.conv2"),
        &format!("{prefix}.bn2"),
        1,
        true,
    )
}

/// `MixerLayer` at `prefix` on `channels` channels:
/// `y = x + BN(GELU(DWConv(x)))`, `out = BN(GELU(Conv1×1(y)))`.
fn mixer_layer(
    b: &mut Builder,
    x: &str,
    prefix: &str,
    channels: usize,
) -> Result<String, OnnxError> {
    let d = b.conv(x, &format!("{prefix}.depthwise"), 1, channels)?;
    let d = b.gelu(&d);
    let d = b.batch_norm(&d, &format!("{prefix}.depthwise_bn"))?;
    let y = b.binary("Add", x, &d);
    let p = b.conv(&y, &format!("{prefix}.pointwise"), 1, 1)?;
    let p = b.gelu(&p);
    b.batch_norm(&p, &format!("{prefix}.pointwise_bn"))
}

/// `MultiScaleGate` at `prefix`: `x + x·σ(BN(Conv1×1(cat[ReLU BN Conv1×1 x, ReLU BN Conv3×3
/// x, ReLU BN Conv3×3,dil 2 x]))))`.
fn gate(b: &mut Builder, x: &str, prefix: &str) -> Result<String, OnnxError> {
    let branch = |b: &mut Builder, name: &str, dilation| {
        b.conv_bn(
            x,
            &format!("{prefix}.{name}.conv"),
            &format!("{prefix}.{name}.bn"),
            dilation,
            true,
        )
    };
    let point = branch(b, "point", 1)?;
    let local = branch(b, "local", 1)?;
    let wide = branch(b, "wide", 2)?;
    let a = b.concat(&[&point, &local, &wide]);
    let z = b.conv_bn(
        &a,
        &format!("{prefix}.vote.conv"),
        &format!("{prefix}.vote.bn"),
        1,
        false,
    )?;
    let g = b.unary("Sigmoid", &z);
    let xg = b.binary("Mul", x, &g);
    Ok(b.binary("Add", x, &xg))
}

/// Appends the MGCC inference network from `x` to a logits value named `logits`.
pub fn lower(b: &mut Builder, w: &Weights, x: &str, logits: &str) -> Result<(), OnnxError> {
    // Encoder.
    let mut feats = vec![double_conv(b, x, "encoder.levels.0")?];
    for i in 1..5 {
        let pooled = b.max_pool2(&feats[i - 1]);
        feats.push(double_conv(b, &pooled, &format!("encoder.levels.{i}"))?);
    }
    // ConvMixer stages on the bottleneck.
    let channels = w.get("encoder.levels.4.conv2.weight")?.0[0];
    let mut d = feats[4].clone();
    for (s, depth) in mixer_depths(w).into_iter().enumerate() {
        for l in 0..depth {
            d = mixer_layer(b, &d, &format!("mixers.{s}.layers.{l}"), channels)?;
        }
    }
    // Main decoder.
    for i in (0..4).rev() {
        let gated = gate(b, &feats[i], &format!("main.gates.{i}"))?;
        let up = b.upsample2(&d, false);
        let up = b.conv_bn(
            &up,
            &format!("main.ups.{i}.conv"),
            &format!("main.ups.{i}.bn"),
            1,
            true,
        )?;
        let cat = b.concat(&[&gated, &up]);
        d = double_conv(b, &cat, &format!("main.fuse.{i}"))?;
    }
    b.conv_as(&d, "main.head", 1, 1, Some(logits))?;
    Ok(())
}
