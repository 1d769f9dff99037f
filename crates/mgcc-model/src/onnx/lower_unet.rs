//! SSL4MIS's UNet inference path ([`crate::UNet`] in eval mode: dropout off) as ONNX
//! operations: five `ConvBlock`s with 2×2 max-pooling, four up blocks (1×1 conv, bilinear 2×
//! upsampling with aligned corners, concatenation with the skip) and a 3×3 head.

use super::OnnxError;
use super::builder::Builder;

/// SSL4MIS's `nn.LeakyReLU()` slope (`crate::unet`).
const LEAKY_SLOPE: f32 = 0.01;

/// `ConvBlock` at `prefix`: (3×3 conv → BN → LeakyReLU) twice (its dropout is training-only).
fn conv_block(b: &mut Builder, x: &str, prefix: &str) -> Result<String, OnnxError> {
    let mut y = x.to_string();
    for k in 1..=2 {
        y = b.conv_bn(
            &y,
            &format!("{prefix}.conv{k}"),
            &format!("{prefix}.bn{k}"),
            1,
            false,
        )?;
        y = b.leaky_relu(&y, LEAKY_SLOPE);
    }
    Ok(y)
}

/// Appends the UNet inference network from `x` to a logits value named `logits`.
pub fn lower(b: &mut Builder, x: &str, logits: &str) -> Result<(), OnnxError> {
    let mut feats = vec![conv_block(b, x, "encoder.0")?];
    for i in 1..5 {
        let pooled = b.max_pool2(&feats[i - 1]);
        feats.push(conv_block(b, &pooled, &format!("encoder.{i}"))?);
    }
    let mut d = feats[4].clone();
    for (k, skip) in feats[..4].iter().rev().enumerate() {
        let reduced = b.conv(&d, &format!("main.ups.{k}.reduce"), 1, 1)?;
        let up = b.upsample2(&reduced, true);
        let cat = b.concat(&[skip, &up]);
        d = conv_block(b, &cat, &format!("main.ups.{k}.conv"))?;
    }
    b.conv_as(&d, "main.head", 1, 1, Some(logits))?;
    Ok(())
}
