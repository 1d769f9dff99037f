//! The parameter names of the published PyTorch code (`src/network/MGCC.py` of the MGCC
//! repository) for each tensor of [`crate::Mgcc`], so that weights move both ways.
//!
//! | mgcc | PyTorch |
//! |---|---|
//! | `encoder.levels.{i}.{conv1,bn1,conv2,bn2}` | `Conv{i+1}.conv.{0,1,3,4}` |
//! | `mixers.{s}.layers.{l}.{depthwise,depthwise_bn}` | `ConvMixer{s+1}.block.{l}.0.fn.{0,2}` |
//! | `mixers.{s}.layers.{l}.{pointwise,pointwise_bn}` | `ConvMixer{s+1}.block.{l}.{1,3}` |
//! | `main.…` / `aux.{j}.…` | `main_decoder.…` / `aux_decoder{j+1}.…` |
//! | `….gates.{i}.{point,local,wide,vote}.{conv,bn}` | `….msag{i+1}.{pointwiseConv,ordinaryConv,dilationConv,voteConv}.{0,1}` |
//! | `….ups.{i}.{conv,bn}` | `….Up{i+2}.up.{1,2}` |
//! | `….fuse.{i}.{conv1,bn1,conv2,bn2}` | `….Up_conv{i+2}.conv.{0,1,3,4}` |
//! | `….head` | `….Conv_1x1` |
//!
//! Batch norm: `gamma`/`beta` are PyTorch's `weight`/`bias`; `running_mean`/`running_var` keep
//! their names; PyTorch's `num_batches_tracked` has no counterpart (written as 0 on export,
//! ignored on import). Convolution weights have the same `out×in×kh×kw` layout in both.
//!
//! The published code feeds its auxiliary decoders in another order (feature noise at the
//! first depth, feature dropout at the third) than the paper and mgcc (feature dropout first,
//! noise third; docs/methods.md); decoders are mapped by index, which leaves inference (the
//! main decoder) exactly the same.

/// The PyTorch name of the mgcc tensor `path`, or `None` for a path outside the MGCC network.
pub fn torch_name(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('.').collect();
    let idx = |s: &str| s.parse::<usize>().ok();
    match parts.as_slice() {
        ["encoder", "levels", i, sub, leaf] => {
            let pos = double_conv_index(sub)?;
            Some(format!(
                "Conv{}.conv.{pos}.{}",
                idx(i)? + 1,
                tensor_name(sub, leaf)?
            ))
        }
        ["mixers", s, "layers", l, sub, leaf] => {
            let (s, l) = (idx(s)? + 1, idx(l)?);
            let inner = match *sub {
                "depthwise" => "0.fn.0",
                "depthwise_bn" => "0.fn.2",
                "pointwise" => "1",
                "pointwise_bn" => "3",
                _ => return None,
            };
            Some(format!(
                "ConvMixer{s}.block.{l}.{inner}.{}",
                tensor_name(sub, leaf)?
            ))
        }
        ["main", rest @ ..] => decoder_name("main_decoder", rest),
        ["aux", j, rest @ ..] => decoder_name(&format!("aux_decoder{}", idx(j)? + 1), rest),
        _ => None,
    }
}

/// The names of a decoder's tensors under `prefix`.
fn decoder_name(prefix: &str, rest: &[&str]) -> Option<String> {
    let idx = |s: &str| s.parse::<usize>().ok();
    let name = match rest {
        ["gates", i, branch, kind, leaf] => {
            let conv = match *branch {
                "point" => "pointwiseConv",
                "local" => "ordinaryConv",
                "wide" => "dilationConv",
                "vote" => "voteConv",
                _ => return None,
            };
            let pos = match *kind {
                "conv" => 0,
                "bn" => 1,
                _ => return None,
            };
            format!(
                "msag{}.{conv}.{pos}.{}",
                idx(i)? + 1,
                tensor_name(kind, leaf)?
            )
        }
        ["ups", i, kind, leaf] => {
            let pos = match *kind {
                "conv" => 1,
                "bn" => 2,
                _ => return None,
            };
            format!("Up{}.up.{pos}.{}", idx(i)? + 2, tensor_name(kind, leaf)?)
        }
        ["fuse", i, sub, leaf] => format!(
            "Up_conv{}.conv.{}.{}",
            idx(i)? + 2,
            double_conv_index(sub)?,
            tensor_name(sub, leaf)?
        ),
        ["head", leaf] => format!("Conv_1x1.{}", tensor_name("head", leaf)?),
        _ => return None,
    };
    Some(format!("{prefix}.{name}"))
}

/// Position of a `DoubleConv` part in PyTorch's `conv_block` Sequential.
fn double_conv_index(sub: &str) -> Option<usize> {
    match sub {
        "conv1" => Some(0),
        "bn1" => Some(1),
        "conv2" => Some(3),
        "bn2" => Some(4),
        _ => None,
    }
}

/// The leaf name in PyTorch: batch-norm `gamma`/`beta` become `weight`/`bias`.
fn tensor_name(module: &str, leaf: &str) -> Option<&'static str> {
    let is_bn = module == "bn" || module.starts_with("bn") || module.ends_with("_bn");
    Some(match (is_bn, leaf) {
        (true, "gamma") => "weight",
        (true, "beta") => "bias",
        (true, "running_mean") => "running_mean",
        (true, "running_var") => "running_var",
        (false, "weight") => "weight",
        (false, "bias") => "bias",
        _ => return None,
    })
}

/// Whether a PyTorch name is a batch norm's step counter (no mgcc counterpart).
pub fn is_batch_counter(name: &str) -> bool {
    name.ends_with(".num_batches_tracked")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MgccConfig;
    use burn::store::ModuleSnapshot;
    use burn::tensor::Device;

    #[test]
    fn names_of_the_published_code() {
        for (mgcc, torch) in [
            ("encoder.levels.0.conv1.weight", "Conv1.conv.0.weight"),
            ("encoder.levels.4.bn2.gamma", "Conv5.conv.4.weight"),
            (
                "mixers.2.layers.1.depthwise.bias",
                "ConvMixer3.block.1.0.fn.0.bias",
            ),
            (
                "mixers.0.layers.0.depthwise_bn.running_var",
                "ConvMixer1.block.0.0.fn.2.running_var",
            ),
            (
                "mixers.0.layers.2.pointwise.weight",
                "ConvMixer1.block.2.1.weight",
            ),
            (
                "mixers.1.layers.0.pointwise_bn.beta",
                "ConvMixer2.block.0.3.bias",
            ),
            (
                "main.gates.3.vote.conv.weight",
                "main_decoder.msag4.voteConv.0.weight",
            ),
            (
                "aux.0.gates.0.wide.bn.gamma",
                "aux_decoder1.msag1.dilationConv.1.weight",
            ),
            ("aux.2.ups.3.conv.weight", "aux_decoder3.Up5.up.1.weight"),
            (
                "main.ups.0.bn.running_mean",
                "main_decoder.Up2.up.2.running_mean",
            ),
            (
                "main.fuse.3.conv2.weight",
                "main_decoder.Up_conv5.conv.3.weight",
            ),
            ("main.head.bias", "main_decoder.Conv_1x1.bias"),
        ] {
            assert_eq!(torch_name(mgcc).as_deref(), Some(torch), "{mgcc}");
        }
        assert_eq!(torch_name("main.head.gamma"), None);
        assert_eq!(torch_name("pyramid.0.weight"), None);
    }

    #[test]
    fn every_tensor_has_one_distinct_name() {
        // Building a network draws from flex's process-wide RNG: take turns with the tests
        // that seed it (an unlocked draw here made `dropout_acts_in_training_mode_only` flaky).
        let _rng = crate::test_util::rng_lock();
        let net = MgccConfig::new().with_width(2).init(&Device::flex());
        let paths: Vec<String> = net
            .collect(None, None, false)
            .into_iter()
            .map(|t| t.name)
            .collect();
        let mut names: Vec<String> = paths
            .iter()
            .map(|p| torch_name(p).unwrap_or_else(|| panic!("no name for {p}")))
            .collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), paths.len());
        // 5 encoder blocks × 12 + 3 stages × 3 layers × 12 + 4 decoders × (4 gates × 24 + 4 ups
        // × 6 + 4 fuse × 12 + 2) = 60 + 108 + 4 × 170.
        assert_eq!(paths.len(), 60 + 108 + 4 * 170);
    }
}
