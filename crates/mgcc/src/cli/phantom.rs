//! `mgcc phantom OUT`: write a procedural B-mode phantom dataset with exact lesion masks.

use std::path::PathBuf;
use std::time::Instant;

use mgcc_data::phantom::{PhantomConfig, write_dataset};

#[derive(clap::Args)]
pub struct Args {
    /// Output dataset folder (`images/`, `masks/0/`, `manifest.csv`); must be absent or empty.
    pub out: PathBuf,
    /// Number of images (classes alternate benign / malignant).
    #[arg(long, default_value_t = 200)]
    pub n: usize,
    /// Side of the square images, pixels.
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    /// Image width, pixels (overrides --size).
    #[arg(long)]
    pub width: Option<usize>,
    /// Image height (depth), pixels (overrides --size).
    #[arg(long)]
    pub height: Option<usize>,
    /// Master seed; image i depends only on (seed, i).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Replace a non-empty OUT as a whole, only when mgcc wrote every file in it (an earlier
    /// phantom or import); a folder holding anything else is refused.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = PhantomConfig {
        n: args.n,
        width: args.width.unwrap_or(args.size),
        height: args.height.unwrap_or(args.size),
        seed: args.seed,
    };
    let start = Instant::now();
    // Errors name the file or folder themselves.
    let summary = write_dataset(&cfg, &args.out, args.force)?;
    tracing::info!(
        "wrote {} images {}×{} ({} benign, {} malignant; mean lesion area {:.1}%) to {} in {:.2} s",
        summary.images,
        summary.width,
        summary.height,
        summary.benign,
        summary.malignant,
        100.0 * summary.mean_lesion_fraction,
        summary.out.display(),
        start.elapsed().as_secs_f64()
    );
    if summary.removed_stale > 0 {
        tracing::info!("removed {} stale phantom files", summary.removed_stale);
    }
    Ok(())
}
