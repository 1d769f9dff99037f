//! `mgcc split DIR`: write reproducible train/val split files NAME_train{k}.txt, NAME_val{k}.txt.

use std::path::PathBuf;

use mgcc_data::split::{DEFAULT_SEEDS, SplitOptions, write_splits};

#[derive(clap::Args)]
pub struct Args {
    /// Dataset folder; the split files are written here.
    pub dir: PathBuf,
    /// Number of splits (k = 1..=splits).
    #[arg(long, default_value_t = 3)]
    pub splits: usize,
    /// Fraction of stems for validation (count = round(n × fraction)).
    #[arg(long, default_value_t = 0.3)]
    pub val_fraction: f64,
    /// One seed per split (ChaCha8 shuffle of the sorted stems).
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_SEEDS)]
    pub seeds: Vec<u64>,
    /// File name prefix [a-z0-9_-]; default: the folder name lower-cased, or `split`.
    #[arg(long)]
    pub name: Option<String>,
    /// Overwrite split files of the same name that mgcc wrote (hand-made ones are never
    /// overwritten).
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let opts = SplitOptions {
        splits: args.splits,
        val_fraction: args.val_fraction,
        seeds: args.seeds,
        name: args.name,
        force: args.force,
    };
    for s in write_splits(&args.dir, &opts)? {
        println!(
            "split {} (seed {}): {} train -> {}, {} val -> {}",
            s.k,
            s.seed,
            s.train.len(),
            s.train_path.display(),
            s.val.len(),
            s.val_path.display()
        );
    }
    Ok(())
}
