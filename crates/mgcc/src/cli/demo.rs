//! `mgcc demo`: the whole method on built-in phantom data, small enough for a laptop CPU
//! (about 10 minutes on 2 cores): phantom → check → split → autoencoder → latent denoiser →
//! generated images → quality report → MGCC with the generated images as unlabelled data →
//! evaluation → overlays. Each stage is skipped when its output already exists, so an
//! interrupted demo continues where it stopped. `--skip-generation` trains MGCC on the real
//! images only (about 5 minutes).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use mgcc_data::phantom::{PhantomConfig, write_dataset};
use mgcc_data::{Dataset, SplitOptions, check_dataset, read_split, write_splits};
use mgcc_eval::{EvalOptions, PredictOptions, evaluate, predict, write_reports};
use mgcc_train::{Method, RunOptions, TrainConfig};

use super::device::DeviceArgs;
use super::pipeline::{PipelineConfig, run_pipeline};
use super::run_args::load;

/// Run the whole method on a procedural phantom dataset and print where everything is.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder for the demo's data, run and outputs.
    #[arg(long, default_value = "mgcc-demo")]
    pub out: PathBuf,
    /// Phantom images to generate.
    #[arg(long, default_value_t = 120)]
    pub n: usize,
    /// Phantom image size (pixels, square).
    #[arg(long, default_value_t = 128)]
    pub image_size: usize,
    /// Training size.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Network width.
    #[arg(long, default_value_t = 16)]
    pub width: usize,
    /// Labelled share of the train list.
    #[arg(long, default_value_t = 0.25)]
    pub labeled_fraction: f64,
    /// Training iterations.
    #[arg(long, default_value_t = 100)]
    pub iterations: usize,
    /// Base learning rate (higher than the published 0.01, which needs thousands of iterations).
    #[arg(long, default_value_t = 0.05)]
    pub lr: f64,
    /// Autoencoder iterations.
    #[arg(long, default_value_t = 150)]
    pub vae_iterations: usize,
    /// Denoiser iterations.
    #[arg(long, default_value_t = 600)]
    pub ldm_iterations: usize,
    /// Images to generate.
    #[arg(long, default_value_t = 60)]
    pub n_generated: usize,
    /// Skip the generation stage: MGCC with the real unlabelled images only.
    #[arg(long)]
    pub skip_generation: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn run(args: Args) -> Result<()> {
    let device = args.device.init()?;
    let data = args.out.join("data");
    let started = std::time::Instant::now();
    let total = if args.skip_generation { 6 } else { 10 };

    // 1. Data.
    if data.join("manifest.csv").is_file() {
        println!("[1/{total}] phantom data: reusing {}", data.display());
    } else {
        let cfg = PhantomConfig {
            n: args.n,
            width: args.image_size,
            height: args.image_size,
            seed: 0,
        };
        let s = write_dataset(&cfg, &data, false)?;
        println!(
            "[1/{total}] phantom data: {} images ({} benign, {} malignant) in {}",
            s.images,
            s.benign,
            s.malignant,
            data.display()
        );
    }
    // 2. Check.
    let report = check_dataset(&data);
    if !report.is_ok() {
        println!("{report}");
        bail!("{}: the dataset check failed", data.display());
    }
    println!(
        "[2/{total}] check: OK ({} image/mask pairs)",
        Dataset::open(&data)?.samples.len()
    );
    // 3. Split.
    let split_name = "phantom";
    if read_split(&data, Some(split_name), 1).is_err() {
        write_splits(
            &data,
            &SplitOptions {
                splits: 1,
                val_fraction: 0.3,
                seeds: vec![41],
                name: Some(split_name.into()),
                force: false,
            },
        )?;
    }
    let (train, val) = read_split(&data, Some(split_name), 1)?;
    println!(
        "[3/{total}] split: {} train / {} val ({}_train1.txt)",
        train.len(),
        val.len(),
        split_name
    );

    // 4. MGCC (with the generation stage unless skipped); resumes an interrupted demo.
    let mgcc = TrainConfig {
        data: data.clone(),
        split: 1,
        split_name: Some(split_name.into()),
        method: Method::Mgcc,
        labeled_fraction: args.labeled_fraction,
        size: args.size,
        width: Some(args.width),
        iterations: Some(args.iterations),
        lr: args.lr,
        rampup: args.iterations / 2,
        rampup_step: 1,
        val_every: Some((args.iterations / 10).max(1)),
        ..Default::default()
    };
    let ds = Dataset::open(&data)?;
    let samples = ds.select(&val)?;
    let (run, eval_dir, summary, best_iteration, generated) = if args.skip_generation {
        let run = args.out.join("run");
        let opts = RunOptions {
            stop_after: None,
            progress_bar: true,
            quiet: false,
        };
        let ad = device.clone().autodiff();
        println!(
            "[4/{total}] training MGCC: width {}, {}x{} inputs, {} iterations, {:.0}% of the train images labelled",
            mgcc.width(),
            mgcc.size,
            mgcc.size,
            args.iterations,
            100.0 * mgcc.labeled_fraction
        );
        let outcome = if run.join("config.toml").is_file() {
            mgcc_train::resume(&run, &ad, &opts)?
        } else {
            mgcc_train::train(mgcc, &run, &ad, &opts)?
        };
        // 5. Evaluate the best checkpoint on the val list at image resolution.
        let (loaded, spec) = load(&run, "best", &device)?;
        let eval_dir = run.join("eval");
        let cases = evaluate(
            &loaded.model,
            spec,
            &samples,
            &device,
            &EvalOptions::default(),
        )?;
        let meta = serde_json::json!({"run": run.display().to_string(), "source": "demo val list", "metrics_at": "image size"});
        let summary = write_reports(&eval_dir, &cases, meta)?;
        println!("[5/{total}] evaluation: {} val cases", summary.n);
        (run, eval_dir, summary, outcome.best_iteration, None)
    } else {
        let mut cfg = PipelineConfig::cpu();
        cfg.vae.size = args.size;
        cfg.vae.iterations = args.vae_iterations;
        cfg.vae.val_every = (args.vae_iterations / 3).max(1);
        cfg.ldm.iterations = args.ldm_iterations;
        cfg.ldm.val_every = (args.ldm_iterations / 3).max(1);
        cfg.generate.n = args.n_generated;
        cfg.mgcc = mgcc;
        let dir = args.out.join("pipeline");
        cfg.bind(&data, 1, Some(split_name), &dir);
        let o = run_pipeline(&cfg, &dir, &device, 4, total)?;
        (
            o.mgcc_run,
            o.eval_dir,
            o.summary,
            o.best_iteration,
            Some(o.generated),
        )
    };

    // 6. Overlays of a few val images.
    let overlay_in = args.out.join("overlay_inputs");
    std::fs::create_dir_all(&overlay_in)?;
    for s in samples.iter().take(6) {
        let name = s.image.file_name().unwrap_or_default();
        std::fs::copy(&s.image, overlay_in.join(name))?;
    }
    let pred_dir = args.out.join("predictions");
    let popts = PredictOptions {
        overlay: true,
        probabilities: false,
        force: true,
    };
    let (loaded, spec) = load(&run, "best", &device)?;
    let report = predict(&loaded.model, spec, &overlay_in, &pred_dir, &device, &popts)?;
    if let Some(p) = report.failed.first() {
        anyhow::bail!("{p}");
    }
    println!(
        "[{total}/{total}] predictions: {} masks and overlays in {}",
        report.done.len(),
        pred_dir.display()
    );

    let m = &summary.mean;
    println!();
    println!(
        "Final val metrics (best checkpoint, iteration {}):",
        best_iteration.unwrap_or(0)
    );
    println!(
        "  IoU {:.4}  Dice {:.4}  precision {:.4}  recall {:.4}  HD95 {:.1} px",
        m.iou, m.dice, m.precision, m.recall, m.hd95
    );
    println!(
        "  (published-code definitions: IoU {:.4}, Dice {:.4})",
        m.iou_compat, m.dice_compat
    );
    println!(
        "  (compared at the images' own {0}×{0} size, so HD95 is in image pixels; the training \
         log's validation is at the {1}×{1} training size)",
        args.image_size, args.size
    );
    println!("Where everything is:");
    print_path("data (images/, masks/0/, split files)", &data);
    if let Some(g) = &generated {
        print_path("generated images", g);
        print_path("generation quality report", &g.join("report"));
        print_path("autoencoder and denoiser runs", &args.out.join("pipeline"));
    }
    print_path("run folder (config, metrics.csv, train.log)", &run);
    print_path("training curves", &run.join("progress.png"));
    print_path("validation panels", &run.join("panels"));
    print_path("per-case metrics and summary", &eval_dir);
    print_path("overlays", &pred_dir.join("overlays"));
    println!("Total time {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn print_path(what: &str, path: &Path) {
    println!("  {what}: {}", path.display());
}
