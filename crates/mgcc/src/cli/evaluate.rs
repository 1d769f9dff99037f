//! `mgcc evaluate`: per-case CSV and summary.json of a trained run on labelled images.

use std::path::PathBuf;

use anyhow::{Result, bail};
use mgcc_data::{Dataset, Sample, read_split};
use mgcc_eval::{EvalOptions, evaluate_each, write_reports};

use super::device::DeviceArgs;
use super::run_args::{CheckpointArgs, load};

/// Evaluate RUN on a split's val list (--data DIR --split K), on a whole dataset (--data DIR),
/// or on --images DIR --masks DIR. Writes OUT/cases.csv and OUT/summary.json (mean and std of
/// every metric, both definitions) and optionally the predicted masks.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  mgcc evaluate runs/busi1 --data data/busi --split 1\n  mgcc evaluate runs/busi1 --images test/images --masks test/masks --out runs/busi1/test --save-masks"
)]
pub struct Args {
    /// Run folder made by `mgcc train`.
    pub run: PathBuf,
    /// Dataset folder (images/, masks/0/).
    #[arg(long, conflicts_with_all = ["images", "masks"])]
    pub data: Option<PathBuf>,
    /// Evaluate the val list of split K of --data (all images when omitted).
    #[arg(long, requires = "data")]
    pub split: Option<usize>,
    /// Split name when the dataset has several.
    #[arg(long)]
    pub split_name: Option<String>,
    /// Folder of images (with --masks).
    #[arg(long, requires = "masks")]
    pub images: Option<PathBuf>,
    /// Folder of masks named like the images, .png.
    #[arg(long, requires = "images")]
    pub masks: Option<PathBuf>,
    /// Output folder [default: RUN/eval].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write each predicted mask into OUT/masks/.
    #[arg(long)]
    pub save_masks: bool,
    /// Compute metrics on the training grid, as the published code does (default: image size;
    /// the training grid for a run trained with --protocol reference).
    #[arg(long)]
    pub at_train_size: bool,
    #[command(flatten)]
    pub ckpt: CheckpointArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn run(args: Args) -> Result<()> {
    let device = args.device.init()?;
    let (loaded, spec) = load(&args.run, &args.ckpt.checkpoint, &device)?;
    let (samples, source) = samples(&args)?;
    if samples.is_empty() {
        bail!("nothing to evaluate in {source}");
    }
    let out = args.out.clone().unwrap_or_else(|| args.run.join("eval"));
    let at_train_size =
        args.at_train_size || loaded.config.protocol == mgcc_train::Protocol::Reference;
    let opts = EvalOptions {
        at_train_size,
        save_masks: args.save_masks.then(|| out.join("masks")),
    };
    let mut inputs: Vec<&std::path::Path> = vec![&args.run];
    inputs.extend(args.data.as_deref());
    inputs.extend(args.images.as_deref());
    inputs.extend(args.masks.as_deref());
    mgcc_data::safe_fs::refuse_output_over_input(&out, &inputs)?;
    // Replaces the files of an earlier evaluation here, never a file mgcc did not write.
    let mut planned = vec![out.join("cases.csv"), out.join("summary.json")];
    if args.save_masks {
        planned.extend(
            samples
                .iter()
                .map(|s| out.join("masks").join(format!("{}.png", s.stem))),
        );
    }
    let _lock = mgcc_data::safe_fs::lock::lock_folder(&out)?;
    let mut ledger = mgcc_data::safe_fs::Ledger::open(&out)?;
    ledger.claim(&planned, true)?;
    let (cases, failed) = evaluate_each(&loaded.model, spec, &samples, &device, &opts)?;
    if cases.is_empty() {
        for p in &failed {
            eprintln!("  {p}");
        }
        bail!("no case of {source} could be evaluated (listed above)");
    }
    let meta = serde_json::json!({
        "run": args.run.display().to_string(),
        "checkpoint": loaded.checkpoint.display().to_string(),
        "source": source,
        "metrics_at": if at_train_size { format!("training size {}", spec.size) } else { "image size".into() },
        "skipped": failed.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
    });
    let summary = write_reports(&out, &cases, meta)?;
    if failed.is_empty() {
        ledger.complete(&planned)?;
    }
    let m = &summary.mean;
    let s = &summary.std;
    println!("{} cases ({source})", summary.n);
    println!(
        "  IoU  {:.4} ± {:.4}   Dice {:.4} ± {:.4}",
        m.iou, s.iou, m.dice, s.dice
    );
    println!(
        "  compat IoU {:.4}   compat Dice {:.4}",
        m.iou_compat, m.dice_compat
    );
    println!(
        "  precision {:.4}  recall {:.4}  specificity {:.4}  accuracy {:.4}",
        m.precision, m.recall, m.specificity, m.accuracy
    );
    println!("  HD95 {:.2} px", m.hd95);
    println!(
        "wrote {} and {}",
        out.join("cases.csv").display(),
        out.join("summary.json").display()
    );
    if !failed.is_empty() {
        for p in &failed {
            eprintln!("  {p}");
        }
        bail!(
            "{} of {} could not be evaluated (listed above; named under `skipped` in summary.json); the metrics cover the other {}",
            mgcc_data::check::count(failed.len(), "case"),
            samples.len(),
            cases.len()
        );
    }
    Ok(())
}

fn samples(args: &Args) -> Result<(Vec<Sample>, String)> {
    if let Some(data) = &args.data {
        let ds = Dataset::open(data)?;
        return match args.split {
            Some(k) => {
                let (_, val) = read_split(data, args.split_name.as_deref(), k)?;
                Ok((
                    ds.select(&val)?,
                    format!("{} split {k} val", data.display()),
                ))
            }
            None => Ok((
                ds.samples.clone(),
                format!("{} (all images)", data.display()),
            )),
        };
    }
    let (Some(images), Some(masks)) = (&args.images, &args.masks) else {
        bail!("give --data DIR [--split K] or --images DIR --masks DIR");
    };
    let mut out = Vec::new();
    for image in mgcc_data::unlabeled_images(images)? {
        let stem = mgcc_data::layout::stem_of(&image)?;
        // A missing mask is reported per case by the evaluation (as check reports it).
        let mask = masks.join(format!("{stem}.png"));
        out.push(Sample { stem, image, mask });
    }
    Ok((out, format!("{} + {}", images.display(), masks.display())))
}
