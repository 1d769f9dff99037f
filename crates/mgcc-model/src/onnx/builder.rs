//! Building an ONNX graph layer by layer: fresh value names, weights added as initializers
//! under their mgcc path, shared scalar constants, and the operations both networks use
//! (convolution, inference batch norm, activations, pooling, 2× resizing, concatenation).

use std::collections::{BTreeSet, HashMap};

use super::OnnxError;
use super::model::{AttrValue, Graph, Initializer, Node, ValueInfo};
use super::weights::Weights;

/// PyTorch's and burn's batch-norm ε (`crate::batch_norm`).
const BN_EPSILON: f32 = 1e-5;

/// A graph under construction over the tensors of one network.
pub struct Builder<'w> {
    weights: &'w Weights,
    graph: Graph,
    added: BTreeSet<String>,
    constants: HashMap<u32, String>,
    counter: usize,
}

/// Attributes in the form [`Builder::op`] takes.
type Attrs = Vec<(&'static str, AttrValue)>;

impl<'w> Builder<'w> {
    /// An empty graph named `name` reading weights from `weights`.
    pub fn new(name: &str, weights: &'w Weights) -> Self {
        Self {
            weights,
            graph: Graph {
                name: name.to_string(),
                ..Graph::default()
            },
            added: BTreeSet::new(),
            constants: HashMap::new(),
            counter: 0,
        }
    }

    /// Appends a node `op(inputs)` with one output, named `output` or a fresh name.
    pub fn op(
        &mut self,
        op: &str,
        inputs: &[&str],
        attributes: Attrs,
        output: Option<&str>,
    ) -> String {
        self.counter += 1;
        let name = format!("{op}_{}", self.counter);
        let out = output.map_or_else(|| name.clone(), str::to_string);
        self.graph.nodes.push(Node {
            op_type: op.to_string(),
            name,
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: vec![out.clone()],
            attributes: attributes
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        });
        out
    }

    /// The network tensor `path` as an initializer (added once); its value name is `path`.
    pub fn param(&mut self, path: &str) -> Result<String, OnnxError> {
        if self.added.insert(path.to_string()) {
            let (dims, data) = self.weights.get(path)?;
            self.graph.initializers.push(Initializer {
                name: path.to_string(),
                dims: dims.to_vec(),
                data: data.to_vec(),
            });
        }
        Ok(path.to_string())
    }

    /// A float32 initializer of any shape, under a fresh name.
    pub fn constant(&mut self, stem: &str, dims: Vec<usize>, data: Vec<f32>) -> String {
        self.counter += 1;
        let name = format!("{stem}_{}", self.counter);
        self.graph.initializers.push(Initializer {
            name: name.clone(),
            dims,
            data,
        });
        name
    }

    /// A float32 scalar constant, shared by every use of the same value.
    pub fn scalar(&mut self, v: f32) -> String {
        if let Some(name) = self.constants.get(&v.to_bits()) {
            return name.clone();
        }
        let name = self.constant("const", Vec::new(), vec![v]);
        self.constants.insert(v.to_bits(), name.clone());
        name
    }

    /// The convolution `prefix.{weight,bias}`, stride 1, "same" padding `dilation·(k/2)`.
    pub fn conv(
        &mut self,
        x: &str,
        prefix: &str,
        dilation: usize,
        groups: usize,
    ) -> Result<String, OnnxError> {
        self.conv_as(x, prefix, dilation, groups, None)
    }

    /// [`conv`](Self::conv) with its output named `output` (a fresh name when `None`).
    pub fn conv_as(
        &mut self,
        x: &str,
        prefix: &str,
        dilation: usize,
        groups: usize,
        output: Option<&str>,
    ) -> Result<String, OnnxError> {
        let w = format!("{prefix}.weight");
        let k = match self.weights.get(&w)?.0 {
            [_, _, kh, kw] if kh == kw => *kh as i64,
            other => return Err(OnnxError(format!("`{w}` has shape {other:?}"))),
        };
        let (w, b) = (self.param(&w)?, self.param(&format!("{prefix}.bias"))?);
        let (d, pad) = (dilation as i64, (dilation as i64) * (k / 2));
        Ok(self.op(
            "Conv",
            &[x, &w, &b],
            vec![
                ("kernel_shape", AttrValue::Ints(vec![k, k])),
                ("dilations", AttrValue::Ints(vec![d, d])),
                ("strides", AttrValue::Ints(vec![1, 1])),
                ("pads", AttrValue::Ints(vec![pad; 4])),
                ("group", AttrValue::Int(groups as i64)),
            ],
            output,
        ))
    }

    /// Inference batch norm with the running statistics of `prefix`
    /// (`gamma`, `beta`, `running_mean`, `running_var`).
    pub fn batch_norm(&mut self, x: &str, prefix: &str) -> Result<String, OnnxError> {
        let mut inputs = vec![x.to_string()];
        for leaf in ["gamma", "beta", "running_mean", "running_var"] {
            inputs.push(self.param(&format!("{prefix}.{leaf}"))?);
        }
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        Ok(self.op(
            "BatchNormalization",
            &inputs,
            vec![("epsilon", AttrValue::Float(BN_EPSILON))],
            None,
        ))
    }

    /// `conv` then `batch_norm`, then ReLU when `relu`.
    pub fn conv_bn(
        &mut self,
        x: &str,
        conv: &str,
        bn: &str,
        dilation: usize,
        relu: bool,
    ) -> Result<String, OnnxError> {
        let y = self.conv(x, conv, dilation, 1)?;
        let y = self.batch_norm(&y, bn)?;
        Ok(if relu { self.unary("Relu", &y) } else { y })
    }

    /// A one-input operation without attributes (`Relu`, `Sigmoid`, `Erf`).
    pub fn unary(&mut self, op: &str, x: &str) -> String {
        self.op(op, &[x], Vec::new(), None)
    }

    /// A two-input operation without attributes (`Add`, `Mul`, `Div`).
    pub fn binary(&mut self, op: &str, a: &str, b: &str) -> String {
        self.op(op, &[a, b], Vec::new(), None)
    }

    /// `LeakyRelu` with negative slope `alpha`.
    pub fn leaky_relu(&mut self, x: &str, alpha: f32) -> String {
        self.op(
            "LeakyRelu",
            &[x],
            vec![("alpha", AttrValue::Float(alpha))],
            None,
        )
    }

    /// Exact (erf) GELU, `0.5·x·(1 + erf(x/√2))` (opset 17 has no `Gelu`).
    pub fn gelu(&mut self, x: &str) -> String {
        let inv_sqrt2 = self.scalar(std::f32::consts::FRAC_1_SQRT_2);
        let (one, half) = (self.scalar(1.0), self.scalar(0.5));
        let scaled = self.binary("Mul", x, &inv_sqrt2);
        let erf = self.unary("Erf", &scaled);
        let one_plus = self.binary("Add", &erf, &one);
        let half_x = self.binary("Mul", x, &half);
        self.binary("Mul", &half_x, &one_plus)
    }

    /// Concatenation along the channel axis.
    pub fn concat(&mut self, parts: &[&str]) -> String {
        self.op("Concat", parts, vec![("axis", AttrValue::Int(1))], None)
    }

    /// 2×2 max-pool, stride 2.
    pub fn max_pool2(&mut self, x: &str) -> String {
        self.op(
            "MaxPool",
            &[x],
            vec![
                ("kernel_shape", AttrValue::Ints(vec![2, 2])),
                ("strides", AttrValue::Ints(vec![2, 2])),
            ],
            None,
        )
    }

    /// 2× upsampling: nearest (`out[i] = in[⌊i/2⌋]`), or bilinear with `align_corners`
    /// (PyTorch's `align_corners=True`).
    pub fn upsample2(&mut self, x: &str, bilinear_aligned: bool) -> String {
        let scales = self.constant("scales", vec![4], vec![1.0, 1.0, 2.0, 2.0]);
        let attrs = if bilinear_aligned {
            vec![
                ("mode", AttrValue::Str("linear".into())),
                (
                    "coordinate_transformation_mode",
                    AttrValue::Str("align_corners".into()),
                ),
            ]
        } else {
            vec![
                ("mode", AttrValue::Str("nearest".into())),
                (
                    "coordinate_transformation_mode",
                    AttrValue::Str("asymmetric".into()),
                ),
                ("nearest_mode", AttrValue::Str("floor".into())),
            ]
        };
        self.op("Resize", &[x, "", &scales], attrs, None)
    }

    /// The finished graph with these inputs and outputs.
    pub fn finish(mut self, inputs: Vec<ValueInfo>, outputs: Vec<ValueInfo>) -> Graph {
        self.graph.inputs = inputs;
        self.graph.outputs = outputs;
        self.graph
    }
}
