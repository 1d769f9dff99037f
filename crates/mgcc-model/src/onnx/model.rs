//! The subset of ONNX's messages (`onnx.proto`, IR version 8) the export writes, and their
//! encoding: a model holding one graph of float32 tensors, nodes with int, float, ints and
//! string attributes, and initializers as little-endian `raw_data`.

use super::proto::Message;

/// `TensorProto.DataType.FLOAT`.
const FLOAT: i64 = 1;

/// A node attribute value (`AttributeProto` with its `type`).
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Float(f32),
    Int(i64),
    Str(String),
    Ints(Vec<i64>),
}

/// A computation node (`NodeProto`); an empty input name is an omitted optional input.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub op_type: String,
    pub name: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attributes: Vec<(String, AttrValue)>,
}

/// A constant float32 tensor of the graph (`TensorProto`), row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Initializer {
    pub name: String,
    pub dims: Vec<usize>,
    pub data: Vec<f32>,
}

/// One dimension of a graph input or output: a number or a named symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    Fixed(usize),
    Symbol(String),
}

/// A float32 graph input or output (`ValueInfoProto`).
#[derive(Debug, Clone, PartialEq)]
pub struct ValueInfo {
    pub name: String,
    pub dims: Vec<Dim>,
}

/// A graph (`GraphProto`): nodes in topological order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    pub name: String,
    pub nodes: Vec<Node>,
    pub initializers: Vec<Initializer>,
    pub inputs: Vec<ValueInfo>,
    pub outputs: Vec<ValueInfo>,
}

/// A model (`ModelProto`) of the default ONNX domain.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub ir_version: i64,
    pub opset: i64,
    pub producer_name: String,
    pub producer_version: String,
    pub doc_string: String,
    /// `metadata_props`, key–value pairs.
    pub metadata: Vec<(String, String)>,
    pub graph: Graph,
}

impl AttrValue {
    fn encode(&self, name: &str) -> Message {
        // AttributeProto: name 1, f 2, i 3, s 4, ints 8, type 20.
        let mut m = Message::new();
        m.string(1, name);
        let kind = match self {
            AttrValue::Float(v) => {
                m.float(2, *v);
                1
            }
            AttrValue::Int(v) => {
                m.int(3, *v);
                2
            }
            AttrValue::Str(v) => {
                m.string(4, v);
                3
            }
            AttrValue::Ints(v) => {
                for x in v {
                    m.int(8, *x);
                }
                7
            }
        };
        m.int(20, kind);
        m
    }
}

impl Node {
    fn encode(&self) -> Message {
        // NodeProto: input 1, output 2, name 3, op_type 4, attribute 5.
        let mut m = Message::new();
        for i in &self.inputs {
            m.string(1, i);
        }
        for o in &self.outputs {
            m.string(2, o);
        }
        if !self.name.is_empty() {
            m.string(3, &self.name);
        }
        m.string(4, &self.op_type);
        for (name, value) in &self.attributes {
            m.message(5, &value.encode(name));
        }
        m
    }
}

impl Initializer {
    fn encode(&self) -> Message {
        // TensorProto: dims 1, data_type 2, name 8, raw_data 9.
        let mut m = Message::new();
        for d in &self.dims {
            m.int(1, *d as i64);
        }
        m.int(2, FLOAT);
        m.string(8, &self.name);
        let raw: Vec<u8> = self.data.iter().flat_map(|v| v.to_le_bytes()).collect();
        m.bytes(9, &raw);
        m
    }
}

impl ValueInfo {
    fn encode(&self) -> Message {
        // TensorShapeProto.Dimension: dim_value 1, dim_param 2; TensorShapeProto: dim 1;
        // TypeProto.Tensor: elem_type 1, shape 2; TypeProto: tensor_type 1;
        // ValueInfoProto: name 1, type 2.
        let mut shape = Message::new();
        for d in &self.dims {
            let mut dim = Message::new();
            match d {
                Dim::Fixed(v) => dim.int(1, *v as i64),
                Dim::Symbol(s) => dim.string(2, s),
            };
            shape.message(1, &dim);
        }
        let mut tensor = Message::new();
        tensor.int(1, FLOAT).message(2, &shape);
        let mut ty = Message::new();
        ty.message(1, &tensor);
        let mut m = Message::new();
        m.string(1, &self.name).message(2, &ty);
        m
    }
}

impl Graph {
    fn encode(&self) -> Message {
        // GraphProto: node 1, name 2, initializer 5, input 11, output 12.
        let mut m = Message::new();
        for n in &self.nodes {
            m.message(1, &n.encode());
        }
        m.string(2, &self.name);
        for t in &self.initializers {
            m.message(5, &t.encode());
        }
        for i in &self.inputs {
            m.message(11, &i.encode());
        }
        for o in &self.outputs {
            m.message(12, &o.encode());
        }
        m
    }
}

impl Model {
    /// The serialised `ModelProto`, as written to an `.onnx` file.
    pub fn encode(&self) -> Vec<u8> {
        // ModelProto: ir_version 1, producer_name 2, producer_version 3, doc_string 6,
        // graph 7, opset_import 8, metadata_props 14; OperatorSetIdProto: domain 1,
        // version 2; StringStringEntryProto: key 1, value 2.
        let mut m = Message::new();
        m.int(1, self.ir_version)
            .string(2, &self.producer_name)
            .string(3, &self.producer_version)
            .string(6, &self.doc_string)
            .message(7, &self.graph.encode());
        let mut opset = Message::new();
        opset.string(1, "").int(2, self.opset);
        m.message(8, &opset);
        for (k, v) in &self.metadata {
            let mut entry = Message::new();
            entry.string(1, k).string(2, v);
            m.message(14, &entry);
        }
        m.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> String {
        v.to_string()
    }

    #[test]
    fn node_with_attributes_by_hand() {
        let node = Node {
            op_type: s("LeakyRelu"),
            name: String::new(),
            inputs: vec![s("x")],
            outputs: vec![s("y")],
            attributes: vec![
                (s("alpha"), AttrValue::Float(0.5)),
                (s("pads"), AttrValue::Ints(vec![1, 300])),
            ],
        };
        let mut expect = vec![0x0a, 1, b'x', 0x12, 1, b'y', 0x22, 9];
        expect.extend(b"LeakyRelu");
        // attribute 5: name "alpha", f = 0.5 (0x3f000000), type FLOAT = 1 (key 20 → a0 01).
        expect.extend([0x2a, 15, 0x0a, 5]);
        expect.extend(b"alpha");
        expect.extend([0x15, 0x00, 0x00, 0x00, 0x3f, 0xa0, 0x01, 0x01]);
        // attribute: name "pads", ints 1 and 300 unpacked (key 8 << 3 = 0x40), type INTS = 7.
        expect.extend([0x2a, 14, 0x0a, 4]);
        expect.extend(b"pads");
        expect.extend([0x40, 0x01, 0x40, 0xac, 0x02, 0xa0, 0x01, 0x07]);
        assert_eq!(node.encode().into_bytes(), expect);
    }

    #[test]
    fn initializer_and_value_info_by_hand() {
        let t = Initializer {
            name: s("w"),
            dims: vec![2],
            data: vec![1.0, 2.0],
        };
        assert_eq!(
            t.encode().into_bytes(),
            [
                0x08, 0x02, // dims: 2
                0x10, 0x01, // data_type: FLOAT
                0x42, 0x01, b'w', // name
                0x4a, 0x08, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40, // raw_data
            ]
        );
        let v = ValueInfo {
            name: s("x"),
            dims: vec![Dim::Symbol(s("b")), Dim::Fixed(3)],
        };
        assert_eq!(
            v.encode().into_bytes(),
            [
                0x0a, 0x01, b'x', // name
                0x12, 0x0f, // type (15 bytes)
                0x0a, 0x0d, // tensor_type (13 bytes)
                0x08, 0x01, // elem_type FLOAT
                0x12, 0x09, // shape (9 bytes)
                0x0a, 0x03, 0x12, 0x01, b'b', // dim_param "b"
                0x0a, 0x02, 0x08, 0x03, // dim_value 3
            ]
        );
    }
}
