//! `mgcc bench`: time one MGCC training step and one inference forward (JSON lines, same keys
//! as the PyTorch yardstick `shared/bench/torch_mgcc.py`).

use anyhow::Result;
use mgcc_train::bench::{BenchConfig, run as run_bench};

use super::device::DeviceArgs;

/// Time a full semi-supervised training step (four decoders, loss, backward, SGD) and a batch-1
/// inference forward after a warm-up. The last JSON line is the summary: params,
/// train_step_median_s, infer_median_s, peak_rss_mib.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Side by side with PyTorch on the same machine:\n  mgcc bench --width 16 --size 128 --batch 8 --threads 2\n  python3 shared/bench/torch_mgcc.py --width 16 --size 128 --batch 8 --threads 2"
)]
pub struct Args {
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
    let device = args.device.init()?;
    let cfg = BenchConfig {
        width: args.width,
        size: args.size,
        batch: args.batch,
        steps: args.steps,
        infer_size: args.infer_size,
        infer_runs: args.infer_runs,
        skip_train: args.infer_only,
    };
    run_bench(&cfg, &device, &args.device.name(), |line| {
        println!("{line}")
    });
    Ok(())
}
