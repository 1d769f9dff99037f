//! The ONNX export run by a pure-Rust ONNX runtime (tract): the graph's `logits` equal
//! `SegNet::forward` to 1e-4 for both backbones, random weights and random batch-norm running
//! statistics, several batch sizes and input sizes through one loaded model, an input scale
//! inside the graph, and the published PyTorch weights of the committed fixture.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use burn::store::ModuleSnapshot;
use burn::tensor::{Device, Distribution, Tensor};
use mgcc_model::interop::TorchState;
use mgcc_model::onnx::{self, OnnxOptions, to_onnx};
use mgcc_model::{Backbone, Heads, NetConfig, SegNet};
use tract_onnx::prelude::{
    Datum, Framework, InferenceFact, InferenceModelExt, IntoRunnable, TDim, Tensor as TractTensor,
    TypedRunnableModel, tvec,
};

/// The bound of the issue: outputs equal mgcc's to 1e-4 through the ONNX runtime.
const TOLERANCE: f32 = 1e-4;

static RNG: Mutex<()> = Mutex::new(());

/// flex's RNG is process-wide: tests that seed it run one at a time.
fn rng_lock() -> MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|p| p.into_inner())
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// A network of `backbone` with training `heads`, its batch norms' γ, β, running mean and
/// running variance replaced by random values (so a batch norm lowered with the wrong
/// statistics or ε shows).
fn random_net(backbone: Backbone, heads: Heads, width: usize, seed: u64) -> SegNet {
    let device = Device::flex();
    device.seed(seed);
    let mut net = NetConfig {
        backbone,
        in_channels: 3,
        width,
        heads,
    }
    .init(&device);
    let mut fresh = Vec::new();
    for t in net.collect(None, None, false) {
        let (lo, hi) = match t.name.rsplit('.').next().unwrap() {
            "gamma" => (0.5, 1.5),
            "beta" => (-0.3, 0.3),
            "running_mean" => (-0.5, 0.5),
            "running_var" => (0.3, 2.0),
            _ => continue,
        };
        let n = t.shape.iter().product::<usize>();
        let v = Tensor::<1>::random([n], Distribution::Uniform(lo, hi), &device).into_data();
        fresh.push(burn::store::bridge::from_data(v, t.name.clone(), None));
    }
    assert!(fresh.len() > 40, "batch norms found: {}", fresh.len() / 4);
    let result = net.apply(fresh, None, None, false);
    assert!(result.errors.is_empty(), "{:?}", result.errors);
    net
}

/// The exported model, loaded and optimised by tract. The batch stays symbolic; `size` pins
/// a symbolic height and width (tract cannot prove that `2·⌊⌊h/8⌋/2⌋ = ⌊h/8⌋`, which holds
/// for the multiples of 16 the network takes, and refuses the skip concatenations otherwise).
fn runnable(bytes: &[u8], size: Option<[usize; 2]>) -> Arc<TypedRunnableModel> {
    let mut model = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .expect("tract reads the file");
    if let Some([h, w]) = size {
        let batch = TDim::Sym(model.symbols.sym("batch"));
        let shape = vec![batch, 3.into(), h.into(), w.into()];
        model = model
            .with_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), shape))
            .unwrap();
    }
    model
        .into_optimized()
        .expect("tract optimises the graph")
        .into_runnable()
        .expect("tract plans the graph")
}

/// `(logits, probability)` of the ONNX model for the input `x` of shape `dims`.
fn run_onnx(model: &Arc<TypedRunnableModel>, dims: [usize; 4], x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let input = TractTensor::from_shape(&dims, x).unwrap();
    let out = model
        .run(tvec!(input.into()))
        .expect("tract runs the graph");
    assert_eq!(out.len(), 2);
    let [b, _, h, w] = dims;
    for o in &out {
        assert_eq!(o.shape(), [b, 1, h, w]);
    }
    let get = |i: usize| -> Vec<f32> {
        out[i]
            .to_plain_array_view::<f32>()
            .unwrap()
            .iter()
            .copied()
            .collect()
    };
    (get(0), get(1))
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

/// Runs `net` and its ONNX model on random inputs of each shape; returns the largest logits
/// difference after checking it against [`TOLERANCE`] and the probability output against
/// the sigmoid of mgcc's logits.
fn compare(net: &SegNet, options: &OnnxOptions, shapes: &[[usize; 4]], what: &str) -> f32 {
    let bytes = to_onnx(net, options).unwrap();
    let device = Device::flex();
    let mut worst = 0.0f32;
    let mut loaded: Option<([usize; 2], Arc<TypedRunnableModel>)> = None;
    for &dims in shapes {
        let [_, _, h, w] = dims;
        // One loaded model per input size (one in all for a fixed-size file): the batch
        // size changes under the same model.
        if loaded.as_ref().is_none_or(|(size, _)| *size != [h, w]) {
            let pin = options.spatial.is_none().then_some([h, w]);
            loaded = Some(([h, w], runnable(&bytes, pin)));
        }
        let model = &loaded.as_ref().unwrap().1;
        let x = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &device);
        let scaled = x.clone().mul_scalar(options.input_scale);
        let logits = net.forward(scaled);
        let expect = values(logits.clone());
        let expect_prob = values(burn::tensor::activation::sigmoid(logits));
        let (got, prob) = run_onnx(model, dims, &values(x));
        let d = max_abs_diff(&got, &expect);
        let dp = max_abs_diff(&prob, &expect_prob);
        let scale = expect.iter().fold(0f32, |m, v| m.max(v.abs()));
        println!(
            "{what} {dims:?}: logits max |Δ| {d:.2e} (max |logit| {scale:.2}), probability {dp:.2e}"
        );
        assert!(scale > 1e-2, "{what}: degenerate logits");
        assert!(d <= TOLERANCE, "{what} {dims:?}: logits differ by {d:.2e}");
        assert!(
            dp <= TOLERANCE,
            "{what} {dims:?}: probability differs by {dp:.2e}"
        );
        worst = worst.max(d);
    }
    worst
}

#[test]
fn mgcc_graph_equals_forward_for_any_batch_and_size() {
    let _rng = rng_lock();
    // Auxiliary decoders present in the network and left out of the graph.
    let net = random_net(Backbone::Mgcc, Heads::MultiLevel, 4, 21);
    let shapes = [
        [2, 3, 32, 32],
        [1, 3, 32, 32],
        [3, 3, 32, 32],
        [2, 3, 16, 48],
    ];
    compare(&net, &OnnxOptions::default(), &shapes, "mgcc w4");
}

#[test]
fn unet_graph_equals_forward() {
    let _rng = rng_lock();
    let net = random_net(Backbone::Unet, Heads::Pyramid, 4, 22);
    let shapes = [[2, 3, 32, 32], [3, 3, 32, 32], [2, 3, 48, 16]];
    compare(&net, &OnnxOptions::default(), &shapes, "unet w4");
}

#[test]
fn input_scale_and_fixed_size_are_in_the_graph() {
    let _rng = rng_lock();
    let net = random_net(Backbone::Mgcc, Heads::Single, 2, 23);
    let options = OnnxOptions {
        input_scale: 1.0 / 255.0,
        spatial: Some([32, 32]),
        metadata: vec![("mgcc.train_size".into(), "32".into())],
    };
    compare(
        &net,
        &options,
        &[[2, 3, 32, 32], [1, 3, 32, 32]],
        "mgcc w2 /255",
    );

    // The file as a protobuf reader sees it.
    let bytes = to_onnx(&net, &options).unwrap();
    let proto = tract_onnx::onnx()
        .proto_model_for_read(&mut &bytes[..])
        .unwrap();
    assert_eq!(proto.ir_version, onnx::IR_VERSION);
    assert_eq!(proto.opset_import.len(), 1);
    assert_eq!(
        (
            proto.opset_import[0].domain.as_str(),
            proto.opset_import[0].version
        ),
        ("", onnx::OPSET)
    );
    let meta: Vec<(&str, &str)> = proto
        .metadata_props
        .iter()
        .map(|e| (e.key.as_str(), e.value.as_str()))
        .collect();
    assert!(meta.contains(&("mgcc.train_size", "32")), "{meta:?}");
    assert!(
        meta.contains(&("mgcc.input_scale", "0.003921569")),
        "{meta:?}"
    );
    let graph = proto.graph.unwrap();
    let dims = |v: &tract_onnx::pb::ValueInfoProto| -> Vec<String> {
        use tract_onnx::pb::tensor_shape_proto::dimension::Value;
        let Some(tract_onnx::pb::type_proto::Value::TensorType(t)) =
            v.r#type.as_ref().unwrap().value.as_ref()
        else {
            panic!("not a tensor type");
        };
        t.shape
            .as_ref()
            .unwrap()
            .dim
            .iter()
            .map(|d| match d.value.as_ref().unwrap() {
                Value::DimValue(v) => v.to_string(),
                Value::DimParam(p) => p.clone(),
            })
            .collect()
    };
    assert_eq!(graph.input.len(), 1);
    assert_eq!(graph.input[0].name, onnx::INPUT);
    assert_eq!(dims(&graph.input[0]), ["batch", "3", "32", "32"]);
    let outputs: Vec<(&str, Vec<String>)> = graph
        .output
        .iter()
        .map(|o| (o.name.as_str(), dims(o)))
        .collect();
    let out_dims = vec!["batch".to_string(), "1".into(), "32".into(), "32".into()];
    assert_eq!(
        outputs,
        [
            (onnx::LOGITS, out_dims.clone()),
            (onnx::PROBABILITY, out_dims)
        ]
    );
    // The inference path only: encoder, mixers and main decoder (named by their mgcc path),
    // besides the unnamed scalar constants and resize scales.
    let params: Vec<&str> = graph
        .initializer
        .iter()
        .map(|t| t.name.as_str())
        .filter(|n| n.contains('.'))
        .collect();
    assert!(
        params.iter().all(|n| n.starts_with("encoder.")
            || n.starts_with("mixers.")
            || n.starts_with("main."))
    );
    let count = |p: &str| params.iter().filter(|n| n.starts_with(p)).count();
    // Encoder: 5 DoubleConvs × (2 convs × 2 + 2 BNs × 4) = 60.
    assert_eq!(count("encoder."), 60);
    // Mixers: 9 layers × (2 convs × 2 + 2 BNs × 4) = 108.
    assert_eq!(count("mixers."), 108);
    // Main decoder: 4 gates × 4 × 6 + 4 ups × 6 + 4 DoubleConvs × 12 + head 2 = 170.
    assert_eq!(count("main."), 170);
    let ops = |op: &str| graph.node.iter().filter(|n| n.op_type == op).count();
    // Every conv but the head is followed by a batch norm.
    assert_eq!(ops("Conv"), 10 + 18 + 16 + 4 + 8 + 1);
    assert_eq!(ops("BatchNormalization"), ops("Conv") - 1);
    assert_eq!(ops("Erf"), 18);
    assert_eq!((ops("MaxPool"), ops("Resize")), (4, 4));
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/mgcc_torch_w2.safetensors")
}

/// The committed PyTorch fixture's weights (width 2, trained running statistics) give the
/// same outputs through ONNX as through mgcc and as PyTorch's own eval output.
#[test]
fn pytorch_fixture_weights_through_onnx() {
    let path = fixture();
    let mut state = TorchState::read(&path).unwrap();
    let x = state.get("x").unwrap().clone().convert::<f32>();
    let torch_eval = state.get("eval_main").unwrap().clone().convert::<f32>();
    let extras = [
        "x",
        "y",
        "eval_main",
        "loss",
        "torch_f32_vs_f64",
        "decision_margin",
    ];
    state.retain(|n| !n.starts_with("grad.") && !n.starts_with("train_") && !extras.contains(&n));
    let device = Device::flex();
    let cfg = state.infer_config(&path).unwrap();
    let net = SegNet::Mgcc(state.apply_to(cfg.init(&device), &path).unwrap());

    let dims: [usize; 4] = x.shape().to_vec().try_into().unwrap();
    let xs = x.clone().try_to_vec::<f32>().unwrap();
    let expect = values(net.forward(Tensor::from_data(x, &device)));
    let model = runnable(
        &to_onnx(&net, &OnnxOptions::default()).unwrap(),
        Some([dims[2], dims[3]]),
    );
    let (got, _) = run_onnx(&model, dims, &xs);
    let d = max_abs_diff(&got, &expect);
    let torch = torch_eval.try_to_vec::<f32>().unwrap();
    let dt = max_abs_diff(&got, &torch);
    let scale = torch.iter().fold(0f32, |m, v| m.max(v.abs()));
    println!(
        "fixture {dims:?}: ONNX vs mgcc max |Δ| {d:.2e}, ONNX vs PyTorch (float64) {dt:.2e}, max |logit| {scale:.2}"
    );
    assert!(d <= TOLERANCE, "ONNX vs mgcc: {d:.2e}");
    assert!(
        dt <= TOLERANCE * scale.max(1.0),
        "ONNX vs PyTorch: {dt:.2e}"
    );
}
