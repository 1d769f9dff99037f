//! `mgcc bench-loader DATA`: loader throughput (images/s) with augmentation on, as JSON lines.

use std::path::PathBuf;
use std::time::Instant;

use mgcc_data::{Channels, Dataset, LoaderConfig, TwoStreamLoader};

#[derive(clap::Args)]
pub struct Args {
    /// Dataset folder (DIR/images, DIR/masks/0); all images are labelled and also used as the
    /// unlabelled stream.
    pub data: PathBuf,
    /// Network input side S.
    #[arg(long, default_value_t = 256)]
    pub size: u32,
    /// Labelled batch (the unlabelled batch is the same size unless --unlabeled-batch).
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Unlabelled images per batch (default: --batch).
    #[arg(long)]
    pub unlabeled_batch: Option<usize>,
    /// Batches to time.
    #[arg(long, default_value_t = 50)]
    pub iterations: u64,
    /// Decode every image every time instead of caching resized images.
    #[arg(long)]
    pub no_cache: bool,
    /// One input channel (luma) instead of three.
    #[arg(long)]
    pub gray: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let ds = Dataset::open(&args.data)?;
    let unlabeled: Vec<PathBuf> = ds.samples.iter().map(|s| s.image.clone()).collect();
    let cfg = LoaderConfig {
        size: args.size,
        channels: if args.gray {
            Channels::One
        } else {
            Channels::Three
        },
        labeled_batch: args.batch,
        unlabeled_batch: args.unlabeled_batch.unwrap_or(args.batch),
        augment: mgcc_data::AugmentPolicy::Dihedral,
        seed: 0,
        cache: !args.no_cache,
        prefetch: 2,
        start_iteration: 0,
    };
    let per_batch = (cfg.labeled_batch + cfg.unlabeled_batch) as f64;
    let start = Instant::now();
    let mut loader = TwoStreamLoader::new(ds.samples.clone(), unlabeled, cfg.clone())?;
    let mut images = 0.0;
    let mut first_s = 0.0;
    for i in 0..args.iterations {
        let b = loader.next_batch()?;
        images += per_batch;
        let t = start.elapsed().as_secs_f64();
        if i == 0 {
            first_s = t;
        }
        if (i + 1) % 10 == 0 || i == 0 {
            println!(
                "{}",
                serde_json::json!({
                    "iteration": b.iteration,
                    "epoch": b.epoch,
                    "elapsed_s": t,
                    "images_per_s": images / t,
                })
            );
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "data": args.data.display().to_string(),
            "samples": ds.samples.len(),
            "size": cfg.size,
            "channels": cfg.channels.count(),
            "labeled_batch": cfg.labeled_batch,
            "unlabeled_batch": cfg.unlabeled_batch,
            "iterations": args.iterations,
            "cache": cfg.cache,
            "threads": TwoStreamLoader::worker_threads(),
            "files_decoded": loader.decode_count(),
            "first_batch_s": first_s,
            "seconds": seconds,
            "images": images,
            "images_per_s": images / seconds,
        })
    );
    Ok(())
}
