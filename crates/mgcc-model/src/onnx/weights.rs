//! A network's tensors by their mgcc path (`encoder.levels.0.conv1.weight`), as float32, read
//! once in inference mode (running statistics synchronised) for lowering to ONNX.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::store::ModuleSnapshot;
use burn::tensor::DType;

use super::OnnxError;

/// The tensors of one network: shape and row-major float32 values per path.
pub struct Weights {
    tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

impl Weights {
    /// Every tensor of `module` (its `valid()` copy: running statistics up to date).
    pub fn of<M: Module + ModuleSnapshot>(module: &M) -> Result<Self, OnnxError> {
        let mut tensors = BTreeMap::new();
        for t in module.valid().collect(None, None, false) {
            let data = burn::store::bridge::to_data(&t)
                .map_err(|e| OnnxError(format!("reading `{}`: {e:?}", t.name)))?
                .convert_dtype(DType::F32);
            let shape = data.shape().to_vec();
            let values = data
                .try_to_vec::<f32>()
                .map_err(|e| OnnxError(format!("reading `{}`: {e:?}", t.name)))?;
            tensors.insert(t.name.clone(), (shape, values));
        }
        Ok(Self { tensors })
    }

    /// Whether the tensor `path` exists.
    pub fn has(&self, path: &str) -> bool {
        self.tensors.contains_key(path)
    }

    /// Shape and values of the tensor `path`.
    pub fn get(&self, path: &str) -> Result<(&[usize], &[f32]), OnnxError> {
        self.tensors
            .get(path)
            .map(|(s, v)| (s.as_slice(), v.as_slice()))
            .ok_or_else(|| OnnxError(format!("the network has no tensor `{path}`")))
    }
}
