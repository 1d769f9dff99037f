//! `mgcc bench`: time one training step of a method and one inference forward (JSON lines, same
//! keys as the PyTorch yardsticks `shared/bench/torch_mgcc.py` and
//! `tools/torch_reference/bench_methods.py`).

use anyhow::{Result, bail};
use mgcc_model::Backbone;
use mgcc_train::Method;
use mgcc_train::bench::{BenchConfig, run as run_bench};

use super::device::DeviceArgs;

/// Time a full training step of a method (every network it runs, loss, backward, SGD, EMA) and
/// a batch-1 inference forward after a warm-up. The last JSON line is the summary: method,
/// params, train_step_median_s, infer_median_s, peak_rss_mib.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Side by side with PyTorch on the same machine:\n  mgcc bench --width 16 --size 128 --batch 8 --threads 2\n  python3 ../shared/bench/torch_mgcc.py --width 16 --size 128 --batch 8 --threads 2\n  mgcc bench --method cps --width 16 --size 128 --batch 8 --threads 2\n  python3 tools/torch_reference/bench_methods.py --method cps --width 16 --size 128 --batch 8 --threads 2"
)]
pub struct Args {
    /// The method whose training step is timed.
    #[arg(long, default_value = "mgcc")]
    pub method: Method,
    /// Network: mgcc or unet.
    #[arg(long, default_value = "mgcc")]
    pub backbone: Backbone,
    /// First-level width of the network.
    #[arg(long, default_value_t = 16)]
    pub width: usize,
    /// Training image size.
    #[arg(long, default_value_t = 128)]
    pub size: usize,
    /// Batch (half labelled, half unlabelled).
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Timed training steps after one warm-up.
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    /// Inference image size [default: --size].
    #[arg(long)]
    pub infer_size: Option<usize>,
    /// Timed inference runs after one warm-up.
    #[arg(long, default_value_t = 5)]
    pub infer_runs: usize,
    /// Time inference only.
    #[arg(long)]
    pub infer_only: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn run(args: Args) -> Result<()> {
    if let Err(e) = args.method.check_backbone(args.backbone) {
        bail!("{e}");
    }
    if args.batch < 2 {
        bail!("--batch must be at least 2 (half labelled, half unlabelled)");
    }
    let device = args.device.init()?;
    let cfg = BenchConfig {
        width: args.width,
        size: args.size,
        batch: args.batch,
        steps: args.steps,
        infer_size: args.infer_size,
        infer_runs: args.infer_runs,
        skip_train: args.infer_only,
        method: args.method,
        backbone: args.backbone,
    };
    run_bench(&cfg, &device, &args.device.name(), |line| {
        println!("{line}")
    });
    Ok(())
}
