//! `mgcc`: semi-supervised ultrasound lesion segmentation (MGCC, Tang et al. 2023).
//!
//! One subcommand per stage, each in its own file under `cli/`; they parse arguments and call
//! the library crates, with no logic of their own.

mod cli;

/// glibc's allocator with transparent huge pages for large tensors (see the type's docs).
#[global_allocator]
static ALLOCATOR: mgcc_kernels::allocator::TensorAllocator =
    mgcc_kernels::allocator::TensorAllocator;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "mgcc", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole workflow on built-in phantom data (phantom, check, split, train, evaluate, overlays).
    Demo(cli::demo::Args),
    /// Make a procedural B-mode phantom dataset with exact lesion masks.
    Phantom(cli::phantom::Args),
    /// Convert the original Kaggle BUSI release into the MGCC layout.
    ImportBusi(cli::import_busi::Args),
    /// Verify a dataset folder and report every problem by file name.
    Check(cli::check::Args),
    /// Write reproducible train/val split files (NAME_train{k}.txt, NAME_val{k}.txt).
    Split(cli::split::Args),
    /// Train MGCC or a baseline (supervised, mean-teacher, ua-mt, cct, cps, urpc) on a split; resumable.
    Train(cli::train::Args),
    /// Metrics of a trained run on labelled images (per-case CSV and summary.json).
    Evaluate(cli::evaluate::Args),
    /// Masks, probability maps and overlays for new images.
    Predict(cli::predict::Args),
    /// Make a run from a PyTorch MGCC state dict (.pth or .safetensors) for evaluate/predict.
    ImportTorch(cli::interop::ImportArgs),
    /// Write a run's weights with the published PyTorch code's names (safetensors) or its
    /// inference network as an ONNX graph.
    Export(cli::interop::ExportArgs),
    /// Time one training step and one inference forward (JSON lines, as the PyTorch yardstick).
    Bench(cli::bench::Args),
    /// Measure data-loader throughput (images/s) with augmentation on.
    BenchLoader(cli::bench_loader::Args),
    /// The whole method on a split: autoencoder, denoiser, generation, report, MGCC, evaluation.
    Pipeline(cli::pipeline::Args),
    /// Generation stage: latent diffusion (train-vae, train, generate, report, bench).
    #[command(subcommand)]
    Ldm(cli::ldm::Command),
    /// The comparison table: methods × labelled shares × splits × seeds (run, slurm, report).
    #[command(subcommand)]
    Experiment(cli::experiment::Command),
}

fn main() {
    // Before any thread starts: keep freed tensor memory mapped (see the function's docs).
    mgcc_kernels::allocator::tune_for_tensors();
    cli::init_logging();
    let cli = Cli::parse();
    // A bad MGCC_SIMD (unknown, or a level this CPU lacks) stops here, before any work.
    if let Err(e) = mgcc_kernels::simd_level() {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
    let result = match cli.command {
        Command::Demo(args) => cli::demo::run(args),
        Command::Evaluate(args) => cli::evaluate::run(args),
        Command::Predict(args) => cli::predict::run(args),
        Command::Phantom(args) => cli::phantom::run(args),
        Command::ImportBusi(args) => cli::import_busi::run(args),
        Command::Check(args) => cli::check::run(args),
        Command::Split(args) => cli::split::run(args),
        Command::Train(args) => cli::train::run(args),
        Command::ImportTorch(args) => cli::interop::run_import(args),
        Command::Export(args) => cli::interop::run_export(args),
        Command::Bench(args) => cli::bench::run(args),
        Command::BenchLoader(args) => cli::bench_loader::run(args),
        Command::Ldm(cmd) => cli::ldm::run(cmd),
        Command::Pipeline(args) => cli::pipeline::run(args),
        Command::Experiment(cmd) => cli::experiment::run(cmd),
    };
    if let Err(err) = result {
        eprintln!("error: {}", error_chain(&err));
        std::process::exit(1);
    }
}

/// The error and its causes joined by ": ", leaving out a cause whose text the message already
/// holds (typed errors print their I/O source themselves, so it would appear twice).
fn error_chain(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}
