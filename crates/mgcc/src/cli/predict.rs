//! `mgcc predict`: masks (and optional probability maps and overlays) for new images.

use std::path::PathBuf;

use anyhow::{Result, bail};
use mgcc_eval::{PredictOptions, predict};

use super::device::DeviceArgs;
use super::run_args::{CheckpointArgs, load};

/// Predict a lesion mask for every image of INPUT (a folder, flat or with images/, or one
/// file) into OUTPUT: OUTPUT/STEM.png (0/255, the image's own size), optionally
/// OUTPUT/probabilities/STEM.png and OUTPUT/overlays/STEM.png (contour on the image).
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  mgcc predict runs/busi1 new_scans/ predictions/ --overlay --probabilities"
)]
pub struct Args {
    /// Run folder made by `mgcc train`.
    pub run: PathBuf,
    /// Image file or folder.
    pub input: PathBuf,
    /// Output folder.
    pub output: PathBuf,
    /// Also write the image with the predicted contour.
    #[arg(long)]
    pub overlay: bool,
    /// Also write 8-bit probability maps.
    #[arg(long)]
    pub probabilities: bool,
    /// Replace outputs that an earlier `mgcc predict` wrote (files mgcc did not write are
    /// never replaced; an output folder that is or contains INPUT is refused).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub ckpt: CheckpointArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn run(args: Args) -> Result<()> {
    let device = args.device.init()?;
    let (loaded, spec) = load(&args.run, &args.ckpt.checkpoint, &device)?;
    let opts = PredictOptions {
        overlay: args.overlay,
        probabilities: args.probabilities,
        force: args.force,
    };
    let report = predict(
        &loaded.model,
        spec,
        &args.input,
        &args.output,
        &device,
        &opts,
    )?;
    for p in &report.done {
        println!(
            "{}  lesion {:.1}% of the image",
            p.mask.display(),
            100.0 * p.lesion_fraction
        );
    }
    println!("{} masks in {}", report.done.len(), args.output.display());
    if !report.failed.is_empty() {
        for p in &report.failed {
            eprintln!("  {p}");
        }
        bail!(
            "{} could not be predicted (listed above); the other masks were written",
            mgcc_data::check::count(report.failed.len(), "input")
        );
    }
    Ok(())
}
