//! `mgcc import-torch` and `mgcc export`: MGCC weights in from and out to PyTorch, and the
//! inference network out as ONNX (docs/interop.md).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use mgcc_model::interop::TorchState;
use mgcc_model::onnx::{self, OnnxOptions, to_onnx};
use mgcc_model::{Backbone, SegNet};
use mgcc_train::checkpoint::{self, MODEL_FILE, TrainState};
use mgcc_train::learner::save_net;
use mgcc_train::run::{LoadedRun, RunFiles};
use mgcc_train::{Method, Protocol, TrainConfig};

use super::device::DeviceArgs;
use super::run_args::{CheckpointArgs, load};

/// Make an mgcc run from a PyTorch MGCC state dict (the published code's parameter names;
/// `.pth`/`.pt` pickles, also with DataParallel's `module.` prefix or under `state_dict`, or
/// `.safetensors`), so that `mgcc evaluate` and `mgcc predict` use it. The width, input
/// channels and ConvMixer depths are read from the tensors and every name and shape is checked.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  mgcc import-torch checkpoint/busi_model.pth --out runs/published\n  mgcc predict runs/published scans/ predictions/"
)]
pub struct ImportArgs {
    /// The PyTorch file.
    pub model: PathBuf,
    /// Run folder to create (new or empty).
    #[arg(long)]
    pub out: PathBuf,
    /// Expected first-level width (16 × dim_mult; checked against the file).
    #[arg(long)]
    pub width: Option<usize>,
    /// Input size the model was trained at (inputs are resized to it).
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    /// Inputs as mgcc normalises them, without the published code's second division by 255
    /// (use for weights trained without that quirk).
    #[arg(long)]
    pub no_quirk_double_scaling: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn run_import(args: ImportArgs) -> Result<()> {
    let device = args.device.init()?;
    let state = TorchState::read(&args.model)?;
    let inferred = state.infer_config(&args.model)?;
    if let Some(w) = args.width
        && w != inferred.width
    {
        bail!(
            "{}: the weights have first-level width {} (`Conv1.conv.0.weight`), not --width {w}",
            args.model.display(),
            inferred.width
        );
    }
    if inferred.mixer_depths != [3, 3, 3] || inferred.kernel_size != 7 {
        bail!(
            "{}: ConvMixer depths {:?} and kernel {}; mgcc runs use the published (3, 3, 3) and 7",
            args.model.display(),
            inferred.mixer_depths,
            inferred.kernel_size
        );
    }
    let cfg = TrainConfig {
        method: Method::Mgcc,
        backbone: Backbone::Mgcc,
        protocol: Protocol::Reference,
        width: Some(inferred.width),
        in_channels: inferred.in_channels,
        size: args.size,
        quirk_double_scaling: !args.no_quirk_double_scaling,
        ..TrainConfig::default()
    }
    .resolved();
    cfg.validate()
        .map_err(|e| anyhow::anyhow!("bad configuration: {e}"))?;
    let SegNet::Mgcc(net) = cfg.net_config().init(&device) else {
        bail!("internal: the MGCC backbone did not build an MGCC network");
    };
    let net = SegNet::Mgcc(state.apply_to(net, &args.model)?);
    let tensors = state.names().count();

    RunFiles::ensure_new(&args.out)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create", args.out.display()))?;
    let _lock = mgcc_data::safe_fs::lock::lock_folder(&args.out)?;
    let files = RunFiles::create(&args.out, &cfg)?;
    files.log(&format!(
        "imported from {} (width {}, {} input channels, size {}, double scaling {})",
        args.model.display(),
        inferred.width,
        inferred.in_channels,
        args.size,
        cfg.quirk_double_scaling
    ))?;
    let train_state = TrainState {
        iteration: 0,
        best_iou: None,
        best_iteration: None,
    };
    checkpoint::save_with(
        &args.out,
        "best",
        |dir| save_net(&net, &dir.join(MODEL_FILE)),
        &train_state,
    )?;
    println!(
        "{}: MGCC width {}, {} input channels, {} tensors checked; run written to {} (checkpoint `best`)",
        args.model.display(),
        inferred.width,
        inferred.in_channels,
        tensors,
        args.out.display()
    );
    Ok(())
}

/// Export a run's network: `safetensors`, the MGCC weights under the published code's parameter
/// names (they load into that code's `MGCC` class with `strict=True`), or `onnx`, the inference
/// network as an ONNX graph (opset 17) with its weights.
///
/// The ONNX graph computes what `mgcc predict` computes before thresholding: input `image`,
/// float32 N×C×S×S (NCHW), the image resized to the run's size S and normalised as mgcc's
/// loader does (3 channels: v/255 with ImageNet mean and std; 1 channel: (v/255 − 0.5)/0.5);
/// the published code's second division by 255, when the run has it, is inside the graph.
/// Outputs `logits` and `probability` (sigmoid), N×1×S×S. The batch size is free; height and
/// width are fixed at S unless --dynamic-size. MGCC and UNet backbones both export.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "ONNX (opset 17): the inference network as `mgcc predict` runs it (main decoder, batch norm with running statistics); MGCC and UNet runs.\n  input  `image`: float32 N×C×S×S (NCHW), the image resized to the run's size S and normalised as mgcc's loader does (3 channels: (v/255 − ImageNet mean)/std; 1 channel: (v/255 − 0.5)/0.5); a run's double scaling (1/255) is inside the graph\n  outputs `logits` and `probability` (sigmoid): N×1×S×S\n  N is free; S is fixed unless --dynamic-size. See docs/interop.md.\n\nExamples:\n  mgcc export runs/busi1 --format safetensors --out busi1.safetensors\n  mgcc export runs/busi1 --format onnx --out busi1.onnx"
)]
pub struct ExportArgs {
    /// Run folder made by `mgcc train` or `mgcc import-torch`.
    pub run: PathBuf,
    /// Output format: safetensors (PyTorch weights) or onnx (the inference graph).
    #[arg(long, default_value = "safetensors", value_parser = ["safetensors", "onnx"])]
    pub format: String,
    /// Output file (must not exist).
    #[arg(long)]
    pub out: PathBuf,
    /// ONNX only: leave the input height and width symbolic (any multiples of 16) instead of
    /// fixing them at the run's training size.
    #[arg(long)]
    pub dynamic_size: bool,
    #[command(flatten)]
    pub ckpt: CheckpointArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn run_export(args: ExportArgs) -> Result<()> {
    let device = args.device.init()?;
    if args.out.exists() {
        bail!("{}: already exists; choose a new file", args.out.display());
    }
    if args.dynamic_size && args.format != "onnx" {
        bail!("--dynamic-size applies to --format onnx only");
    }
    mgcc_data::safe_fs::refuse_output_over_input(&args.out, &[&args.run])?;
    let (loaded, _) = load(&args.run, &args.ckpt.checkpoint, &device)?;
    if args.format == "onnx" {
        return export_onnx(&args, &loaded);
    }
    let SegNet::Mgcc(net) = &loaded.model else {
        bail!(
            "{}: a UNet-backbone run has no PyTorch MGCC names; only MGCC-backbone runs export as safetensors (--format onnx takes both)",
            args.run.display()
        );
    };
    let full = loaded.config.net_config().heads == mgcc_model::Heads::MultiLevel;
    net.export_safetensors(&args.out)?;
    println!(
        "{}: {} weights of {} ({} checkpoint){}",
        args.out.display(),
        if full { "all" } else { "main-path" },
        args.run.display(),
        args.ckpt.checkpoint,
        if full {
            ""
        } else {
            "; the published class also has auxiliary decoders, so load it with strict=False"
        }
    );
    Ok(())
}

/// `--format onnx`: the inference graph of the loaded run, written atomically.
fn export_onnx(args: &ExportArgs, loaded: &LoadedRun) -> Result<()> {
    let cfg = &loaded.config;
    let size = cfg.size;
    let normalisation = if cfg.in_channels == 1 {
        "luma: (v/255 - 0.5)/0.5"
    } else {
        "RGB: (v/255 - ImageNet mean)/ImageNet std, mean 0.485,0.456,0.406, std 0.229,0.224,0.225"
    };
    let options = OnnxOptions {
        input_scale: cfg.input_scale(),
        spatial: (!args.dynamic_size).then_some([size, size]),
        metadata: vec![
            ("mgcc.train_size".into(), size.to_string()),
            ("mgcc.input_channels".into(), cfg.in_channels.to_string()),
            ("mgcc.input_normalisation".into(), normalisation.into()),
            (
                "mgcc.quirk_double_scaling".into(),
                cfg.quirk_double_scaling.to_string(),
            ),
            ("mgcc.checkpoint".into(), args.ckpt.checkpoint.clone()),
        ],
    };
    let bytes = to_onnx(&loaded.model, &options)
        .with_context(|| format!("{}: exporting the network", args.run.display()))?;
    mgcc_data::safe_fs::atomic::write_atomic(&args.out, &bytes)?;
    let side = if args.dynamic_size {
        "H×W (multiples of 16)".to_string()
    } else {
        format!("{size}×{size}")
    };
    println!(
        "{}: ONNX (opset {}) of the {} inference network of {} ({} checkpoint), {:.1} MB; input `{}` float32 N×{}×{side} normalised ({normalisation}){}; outputs `{}` and `{}` N×1×{side}",
        args.out.display(),
        onnx::OPSET,
        cfg.backbone.name(),
        args.run.display(),
        args.ckpt.checkpoint,
        bytes.len() as f64 / 1e6,
        onnx::INPUT,
        cfg.in_channels,
        if cfg.quirk_double_scaling {
            ", divided by 255 again inside the graph"
        } else {
            ""
        },
        onnx::LOGITS,
        onnx::PROBABILITY,
    );
    Ok(())
}
