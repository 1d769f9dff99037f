//! `mgcc check DIR`: verify a dataset and print every problem by file name; fails on errors.

use std::path::PathBuf;

use mgcc_data::check_dataset;

#[derive(clap::Args)]
pub struct Args {
    /// Dataset folder (DIR/images, DIR/masks/0).
    pub dir: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let report = check_dataset(&args.dir);
    println!("{report}");
    if !report.is_ok() {
        anyhow::bail!(
            "{}: {} (listed above)",
            args.dir.display(),
            mgcc_data::check::count(report.errors.len(), "error")
        );
    }
    Ok(())
}
