//! Weights in and out of PyTorch: an MGCC network to a safetensors file with the published
//! code's parameter names (it loads into that code's `MGCC` class with `strict=True`), and a
//! PyTorch state dict (`.safetensors`, or a `.pth`/`.pt` pickle, with or without the `module.`
//! prefix of `DataParallel`) into an MGCC network. Names are in [`crate::torch_names`].

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::module::Module;
use burn::store::{ModuleSnapshot, ModuleStore, PytorchStore, SafetensorsStore};
use burn::tensor::{DType, TensorData};

use crate::error::ModelError;
use crate::network::{Mgcc, MgccConfig};
use crate::torch_names::{is_batch_counter, torch_name};

/// A PyTorch state dict read from a file: tensors by name, `module.` prefixes removed.
pub struct TorchState {
    tensors: BTreeMap<String, TensorData>,
}

fn load_err(path: &Path, message: impl ToString) -> ModelError {
    ModelError::Load {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

impl TorchState {
    /// Read `path`: `.safetensors`, or a PyTorch pickle (`.pth`, `.pt`, `.bin`; a checkpoint
    /// dict holding the weights under `state_dict` or `model` works too).
    pub fn read(path: &Path) -> Result<Self, ModelError> {
        if !path.is_file() {
            return Err(load_err(path, "no such file"));
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let raw = if ext == "safetensors" {
            // Names as written: no renumbering of Sequential indices.
            let mut store = SafetensorsStore::from_file(path).map_indices_contiguous(false);
            collect_all(&mut store, path)?
        } else {
            let mut found = None;
            for key in [None, Some("state_dict"), Some("model")] {
                let mut store = PytorchStore::from_file(path).map_indices_contiguous(false);
                if let Some(k) = key {
                    store = store.with_top_level_key(k);
                }
                if let Ok(t) = collect_all(&mut store, path)
                    && t.keys()
                        .any(|k| k.strip_prefix("module.").unwrap_or(k) == "Conv1.conv.0.weight")
                {
                    found = Some(t);
                    break;
                }
            }
            found.ok_or_else(|| {
                load_err(
                    path,
                    "not a PyTorch state dict of the MGCC network (no `Conv1.` tensors at the top level or under `state_dict`/`model`)",
                )
            })?
        };
        let tensors = raw
            .into_iter()
            .map(|(k, v)| {
                (
                    k.strip_prefix("module.").map(str::to_string).unwrap_or(k),
                    v,
                )
            })
            .collect();
        Ok(Self { tensors })
    }

    /// The tensor `name`.
    pub fn get(&self, name: &str) -> Option<&TensorData> {
        self.tensors.get(name)
    }

    /// Keep only the tensors whose name passes `keep`.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.tensors.retain(|k, _| keep(k));
    }

    /// Tensor names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The network these weights fit: width from `Conv1.conv.0.weight` (`width×in×3×3`), input
    /// channels likewise, ConvMixer depths from the `ConvMixer{s}.block.{l}` names, kernel from
    /// the depthwise weights.
    pub fn infer_config(&self, path: &Path) -> Result<MgccConfig, ModelError> {
        let first = self.tensors.get("Conv1.conv.0.weight").ok_or_else(|| {
            load_err(
                path,
                "no tensor `Conv1.conv.0.weight`: not the MGCC network",
            )
        })?;
        let [width, in_channels, ..] = first.shape()[..] else {
            return Err(load_err(path, "`Conv1.conv.0.weight` is not 4-D"));
        };
        let mut depths = [0usize; 3];
        let mut kernel = None;
        for name in self.tensors.keys() {
            for (s, depth) in depths.iter_mut().enumerate() {
                let prefix = format!("ConvMixer{}.block.", s + 1);
                if let Some(rest) = name.strip_prefix(&prefix)
                    && let Some(l) = rest.split('.').next().and_then(|l| l.parse::<usize>().ok())
                {
                    *depth = (*depth).max(l + 1);
                    if rest.ends_with("0.fn.0.weight") {
                        kernel = self.tensors[name].shape().last().copied();
                    }
                }
            }
        }
        Ok(MgccConfig::new()
            .with_width(width)
            .with_in_channels(in_channels)
            .with_mixer_depths(depths)
            .with_kernel_size(kernel.unwrap_or(7)))
    }

    /// Load these weights into `net` (built for the right config): every tensor of `net` must
    /// be present with the same shape; a tensor `net` does not have is an error too (other than
    /// batch-norm step counters). The first mismatch is named.
    pub fn apply_to(&self, net: Mgcc, path: &Path) -> Result<Mgcc, ModelError> {
        let mut net = net;
        let targets = net.collect(None, None, false);
        let mut wanted: HashMap<String, String> = HashMap::new();
        let mut tensors = Vec::with_capacity(targets.len());
        for t in &targets {
            let name = torch_name(&t.name).ok_or_else(|| {
                load_err(
                    path,
                    format!("mgcc tensor `{}` has no PyTorch name", t.name),
                )
            })?;
            let data = self.tensors.get(&name).ok_or_else(|| {
                load_err(path, format!("missing tensor `{name}` (mgcc `{}`)", t.name))
            })?;
            let expected: Vec<usize> = t.shape.to_vec();
            if data.shape().to_vec() != expected {
                return Err(load_err(
                    path,
                    format!(
                        "tensor `{name}` has shape {:?}, the network needs {:?}",
                        data.shape().to_vec(),
                        expected
                    ),
                ));
            }
            let data = data.clone().convert_dtype(DType::F32);
            tensors.push(burn::store::bridge::from_data(data, t.name.clone(), None));
            wanted.insert(name, t.name.clone());
        }
        if let Some(extra) = self
            .tensors
            .keys()
            .find(|k| !wanted.contains_key(*k) && !is_batch_counter(k))
        {
            return Err(load_err(
                path,
                format!("tensor `{extra}` is not part of this MGCC network"),
            ));
        }
        let result = net.apply(tensors, None, None, false);
        if let Some(e) = result.errors.first() {
            return Err(load_err(path, format!("{e:?}")));
        }
        if let Some((missing, _)) = result.missing.first() {
            return Err(load_err(path, format!("tensor `{missing}` was not set")));
        }
        Ok(net)
    }
}

fn collect_all<S: ModuleStore>(
    store: &mut S,
    path: &Path,
) -> Result<BTreeMap<String, TensorData>, ModelError>
where
    S::Error: std::fmt::Debug,
{
    let all = store
        .get_all_tensors()
        .map_err(|e| load_err(path, format!("{e:?}")))?;
    let mut out = BTreeMap::new();
    for (name, t) in all {
        let data = burn::store::bridge::to_data(t)
            .map_err(|e| load_err(path, format!("{name}: {e:?}")))?;
        out.insert(name.clone(), data);
    }
    Ok(out)
}

impl Mgcc {
    /// Write every tensor to `path` as safetensors under the published code's names, plus a
    /// zero `num_batches_tracked` (int64) per batch norm, so `MGCC(...).load_state_dict(...,
    /// strict=True)` accepts the file.
    pub fn export_safetensors(&self, path: &Path) -> Result<(), ModelError> {
        let save_err = |message: String| ModelError::Save {
            path: path.to_path_buf(),
            message,
        };
        let mut out: Vec<(String, TensorData)> = Vec::new();
        let mut counters = std::collections::BTreeSet::new();
        for t in self.valid().collect(None, None, false) {
            let name = torch_name(&t.name)
                .ok_or_else(|| save_err(format!("mgcc tensor `{}` has no PyTorch name", t.name)))?;
            if let Some(prefix) = name.strip_suffix(".running_var") {
                counters.insert(format!("{prefix}.num_batches_tracked"));
            }
            let data = burn::store::bridge::to_data(&t).map_err(|e| save_err(format!("{e:?}")))?;
            out.push((name, data.convert_dtype(DType::F32)));
        }
        for c in counters {
            out.push((c, TensorData::new(vec![0i64], Vec::<usize>::new())));
        }
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = out
            .iter()
            .map(|(name, data)| {
                let dtype = match data.dtype() {
                    DType::I64 => safetensors::Dtype::I64,
                    _ => safetensors::Dtype::F32,
                };
                let view = safetensors::tensor::TensorView::new(
                    dtype,
                    data.shape().to_vec(),
                    data.as_bytes(),
                )
                .map_err(|e| save_err(format!("{name}: {e}")))?;
                Ok((name.clone(), view))
            })
            .collect::<Result<_, ModelError>>()?;
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), "pt".to_string());
        meta.insert("producer".to_string(), "mgcc".to_string());
        let bytes =
            safetensors::serialize(views, Some(meta)).map_err(|e| save_err(e.to_string()))?;
        let tmp = path.with_extension("safetensors.partial");
        std::fs::write(&tmp, &bytes)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                save_err(e.to_string())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, Tensor};

    fn max_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }

    #[test]
    fn export_then_import_gives_the_same_network_and_checks_names_and_shapes() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex().autodiff();
        device.seed(11);
        let cfg = MgccConfig::new()
            .with_width(2)
            .with_mixer_depths([1, 2, 1])
            .with_kernel_size(3);
        let net = cfg.init(&device);
        let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Default, &device);
        let _ = net.forward_train(x.clone()); // running statistics move off 0/1
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.safetensors");
        net.export_safetensors(&file).unwrap();

        let state = TorchState::read(&file).unwrap();
        assert!(
            state
                .names()
                .any(|n| n == "main_decoder.msag1.voteConv.1.num_batches_tracked")
        );
        let inferred = state.infer_config(&file).unwrap();
        assert_eq!(
            (
                inferred.width,
                inferred.in_channels,
                inferred.mixer_depths,
                inferred.kernel_size
            ),
            (2, 3, [1, 2, 1], 3)
        );
        let plain = Device::flex();
        let back = state.apply_to(inferred.init(&plain), &file).unwrap();
        let xe = x.inner();
        assert_eq!(
            max_diff(net.valid().forward(xe.clone()), back.forward(xe)),
            0.0
        );

        // Another width: the first mismatching tensor is named with both shapes.
        let err = state
            .apply_to(cfg.clone().with_width(4).init(&plain), &file)
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("Conv1.conv.0.weight")
                && err.to_string().contains("[2, 3, 3, 3]"),
            "{err}"
        );
        // Deeper mixers than the file: the missing tensor is named.
        let err = state
            .apply_to(cfg.with_mixer_depths([2, 2, 1]).init(&plain), &file)
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("missing tensor `ConvMixer1.block.1."),
            "{err}"
        );
    }
}
