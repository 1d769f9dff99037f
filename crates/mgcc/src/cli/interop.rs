//! `mgcc import-torch` and `mgcc export`: MGCC weights in from and out to PyTorch
//! (docs/interop.md).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use mgcc_model::interop::TorchState;
use mgcc_model::{Backbone, SegNet};
use mgcc_train::checkpoint::{self, MODEL_FILE, TrainState};
use mgcc_train::learner::save_net;
use mgcc_train::run::RunFiles;
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

/// Export a run's MGCC network: `safetensors` with the published code's parameter names (it
/// loads into that code's `MGCC` class with `strict=True`). ONNX is not built yet.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  mgcc export runs/busi1 --format safetensors --out busi1.safetensors"
)]
pub struct ExportArgs {
    /// Run folder made by `mgcc train` or `mgcc import-torch`.
    pub run: PathBuf,
    /// Output format.
    #[arg(long, default_value = "safetensors", value_parser = ["safetensors"])]
    pub format: String,
    /// Output file (must not exist).
    #[arg(long)]
    pub out: PathBuf,
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
    mgcc_data::safe_fs::refuse_output_over_input(&args.out, &[&args.run])?;
    let (loaded, _) = load(&args.run, &args.ckpt.checkpoint, &device)?;
    let SegNet::Mgcc(net) = &loaded.model else {
        bail!(
            "{}: a UNet-backbone run has no PyTorch MGCC names; only MGCC-backbone runs export",
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
