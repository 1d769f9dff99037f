//! `mgcc experiment run|slurm|report`: the comparison table (methods × labelled shares ×
//! splits × seeds, with and without generated images) in one resumable command, spread over
//! processes, machines or a SLURM array, and its report.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use mgcc_experiment::report;
use mgcc_experiment::share::parse_list;
use mgcc_experiment::slurm::{SlurmOptions, shard_from_env, write_script};
use mgcc_experiment::{ExecOptions, Plan, PlanSpec, Share};
use mgcc_model::Backbone;
use mgcc_train::{Method, Protocol, TrainConfig};

use super::device::DeviceArgs;

/// The experiment's subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Plan, train and evaluate every run (skipping finished ones, resuming partial ones), then
    /// write the report. Rerun the same command to continue.
    #[command(
        after_help = "Examples:\n  mgcc experiment run data/busi --out exp/busi\n  mgcc experiment run data/phantoms --out exp/cpu --labeled 1/8,1/4 --config examples/experiments/phantom-cpu.toml\n  mgcc experiment run data/busi --out exp/busi --shard 0/4   # one of four processes"
    )]
    Run(RunArgs),
    /// Write EXP/submit.sbatch, a SLURM array job running `experiment run --shard slurm`.
    #[command(
        after_help = "Example:\n  mgcc experiment slurm data/busi --out /shared/exp/busi --partition gpu --gres gpu:1 --time 24:00 --array-parallel 8 --submit"
    )]
    Slurm(SlurmArgs),
    /// Write results.csv, results.md, iou_vs_labels.{png,svg} and report.html of EXP.
    Report(ReportArgs),
}

/// The flags that define the plan (they must be the same on every rerun).
#[derive(clap::Args, Debug, Clone)]
pub struct PlanArgs {
    /// Dataset folder with split files (`mgcc split`).
    pub data: PathBuf,
    /// Experiment folder (plan.json, runs/, report).
    #[arg(long)]
    pub out: PathBuf,
    /// Split indices.
    #[arg(long, default_value = "1,2,3")]
    pub splits: String,
    /// Labelled shares, as fractions or decimals.
    #[arg(long, default_value = "1/8,1/4,1/2")]
    pub labeled: String,
    /// Methods, in table order.
    #[arg(
        long,
        default_value = "supervised,mean-teacher,ua-mt,cct,cps,urpc,mgcc"
    )]
    pub methods: String,
    /// Folder of generated images: adds a with-generated-images variant of each
    /// semi-supervised method. `{split}` in the path is replaced by the split index, so each
    /// split can use its own generator (runs/gen{split}/generated).
    #[arg(long)]
    pub generated: Option<PathBuf>,
    /// Training seeds.
    #[arg(long, default_value = "41")]
    pub seeds: String,
    /// TOML file with training settings shared by every run (keys as in a run's config.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// default, or reference (the published MGCC code's protocol).
    #[arg(long)]
    pub protocol: Option<Protocol>,
    /// mgcc or unet.
    #[arg(long)]
    pub backbone: Option<Backbone>,
    /// Split name when the dataset has several.
    #[arg(long)]
    pub split_name: Option<String>,
}

impl PlanArgs {
    /// The plan's spec from the flags.
    pub fn spec(&self) -> Result<PlanSpec> {
        let mut base = match &self.config {
            Some(path) => TrainConfig::from_toml_file(path)?,
            None => TrainConfig::default(),
        };
        if let Some(p) = self.protocol {
            base.protocol = p;
        }
        if let Some(b) = self.backbone {
            base.backbone = b;
        }
        if self.split_name.is_some() {
            base.split_name = self.split_name.clone();
        }
        let list = |what: &str, s: &str| -> Result<Vec<usize>> {
            s.split(',')
                .filter(|p| !p.trim().is_empty())
                .map(|p| {
                    p.trim()
                        .parse()
                        .map_err(|_| anyhow::anyhow!("--{what}: '{p}' is not a number"))
                })
                .collect()
        };
        Ok(PlanSpec {
            data: self.data.clone(),
            splits: list("splits", &self.splits)?,
            labeled: parse_list::<Share>(&self.labeled).map_err(anyhow::Error::msg)?,
            methods: parse_list::<Method>(&self.methods).map_err(anyhow::Error::msg)?,
            generated: self.generated.clone(),
            seeds: list("seeds", &self.seeds)?
                .into_iter()
                .map(|s| s as u64)
                .collect(),
            base,
        })
    }

    /// The same flags as words, to run the plan again (inside a SLURM task).
    pub fn to_args(&self) -> Vec<String> {
        let mut a = vec![
            self.data.display().to_string(),
            "--out".into(),
            self.out.display().to_string(),
            "--splits".into(),
            self.splits.clone(),
            "--labeled".into(),
            self.labeled.clone(),
            "--methods".into(),
            self.methods.clone(),
            "--seeds".into(),
            self.seeds.clone(),
        ];
        let mut opt = |flag: &str, v: Option<String>| {
            if let Some(v) = v {
                a.push(flag.into());
                a.push(v);
            }
        };
        opt(
            "--generated",
            self.generated.as_ref().map(|p| p.display().to_string()),
        );
        opt(
            "--config",
            self.config.as_ref().map(|p| p.display().to_string()),
        );
        opt("--protocol", self.protocol.map(|p| p.name().into()));
        opt("--backbone", self.backbone.map(|b| b.name().into()));
        opt("--split-name", self.split_name.clone());
        a
    }

    /// Plan and write (or check) `EXP/plan.json`.
    fn plan(&self) -> Result<Plan> {
        let plan = self.spec()?.plan()?;
        plan.write_or_check(&self.out)?;
        Ok(plan)
    }
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Run only the runs with plan index ≡ I mod N (`I/N`, I = 0..N−1), or `slurm` for this
    /// array task's share.
    #[arg(long)]
    pub shard: Option<String>,
    /// Retry runs recorded as failed.
    #[arg(long)]
    pub retry_failed: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

#[derive(clap::Args, Debug)]
pub struct SlurmArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// SLURM partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// Generic resources per task, e.g. gpu:1.
    #[arg(long)]
    pub gres: Option<String>,
    /// Time limit per task (HH:MM or any `sbatch --time` value).
    #[arg(long)]
    pub time: Option<String>,
    /// At most this many tasks at once.
    #[arg(long)]
    pub array_parallel: Option<usize>,
    /// Array tasks [default: one per planned run].
    #[arg(long)]
    pub tasks: Option<usize>,
    /// CPUs per task.
    #[arg(long)]
    pub cpus_per_task: Option<usize>,
    /// Device of the tasks (cpu, wgpu[:N], vulkan[:N], cuda[:N]; see `mgcc train --help`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Run `sbatch EXP/submit.sbatch` now.
    #[arg(long)]
    pub submit: bool,
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Experiment folder.
    pub exp: PathBuf,
}

fn parse_shard(s: Option<&str>) -> Result<(usize, usize)> {
    match s {
        None => Ok((0, 1)),
        Some("slurm") => shard_from_env(|k| std::env::var(k).ok()).map_err(anyhow::Error::msg),
        Some(s) => {
            let (i, n) = s
                .split_once('/')
                .with_context(|| format!("--shard {s}: expected I/N or slurm"))?;
            let i: usize = i
                .trim()
                .parse()
                .with_context(|| format!("--shard {s}: bad I"))?;
            let n: usize = n
                .trim()
                .parse()
                .with_context(|| format!("--shard {s}: bad N"))?;
            if n == 0 || i >= n {
                bail!("--shard {s}: need 0 <= I < N");
            }
            Ok((i, n))
        }
    }
}

pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Run(args) => run_plan(args),
        Command::Slurm(args) => slurm(args),
        Command::Report(args) => {
            let plan = Plan::load(&args.exp)?;
            let files = report::write(&args.exp, &plan)?;
            print_report(&files);
            Ok(())
        }
    }
}

fn print_report(files: &report::ReportFiles) {
    println!(
        "report of {} finished runs ({} missing): {}, {}, {}, {}",
        files.finished,
        files.missing,
        files.markdown.display(),
        files.csv.display(),
        files.png.display(),
        files.html.display()
    );
}

fn run_plan(args: RunArgs) -> Result<()> {
    let shard = parse_shard(args.shard.as_deref())?;
    let plan = args.plan.plan()?;
    let exp = &args.plan.out;
    let device = args.device.init()?;
    eprintln!(
        "experiment {}: {} runs planned; this process: shard {}/{} ({} runs)",
        exp.display(),
        plan.runs.len(),
        shard.0,
        shard.1,
        plan.shard(shard.0, shard.1).len()
    );
    let summary = mgcc_experiment::execute(
        exp,
        &plan,
        &device,
        &ExecOptions {
            shard,
            retry_failed: args.retry_failed,
        },
        |line| eprintln!("{line}"),
    )?;
    let report_started = std::time::Instant::now();
    let files = report::write(exp, &plan)?;
    print_report(&files);
    if summary.run_seconds > 0.0 {
        let overhead =
            summary.total_seconds - summary.run_seconds + report_started.elapsed().as_secs_f64();
        eprintln!(
            "experiment layer (plan, claims, report): {overhead:.2} s, {:.2}% of the {:.1} s of training and evaluation",
            100.0 * overhead / summary.run_seconds,
            summary.run_seconds
        );
    }
    eprintln!(
        "trained {}, already finished {}, held by other processes {}, failed {}, skipped after an earlier failure {}",
        summary.trained.len(),
        summary.already_finished,
        summary.held_elsewhere.len(),
        summary.failed.len(),
        summary.skipped_failed.len()
    );
    let failed: Vec<&str> = summary
        .failed
        .iter()
        .map(|(n, _)| n.as_str())
        .chain(summary.skipped_failed.iter().map(String::as_str))
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} run(s) failed: {} (see EXP/runs/NAME.failed.json; --retry-failed tries them again)",
            failed.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

fn slurm(args: SlurmArgs) -> Result<()> {
    let plan = args.plan.plan()?;
    let exp = &args.plan.out;
    let exe = std::env::current_exe().context("locating the mgcc binary")?;
    let mut command = vec![exe.display().to_string(), "experiment".into(), "run".into()];
    command.extend(args.plan.to_args());
    command.extend([
        "--device".into(),
        args.device.clone(),
        "--shard".into(),
        "slurm".into(),
    ]);
    let name = exp
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "exp".into());
    let opts = SlurmOptions {
        tasks: args.tasks.unwrap_or(plan.runs.len()),
        parallel: args.array_parallel,
        partition: args.partition.clone(),
        gres: args.gres.clone(),
        time: args.time.clone(),
        cpus_per_task: args.cpus_per_task,
        job_name: format!("mgcc-{name}"),
        chdir: std::env::current_dir().ok(),
    };
    let script = write_script(exp, &command, &opts)?;
    println!(
        "wrote {} ({} array tasks for {} runs)",
        script.display(),
        opts.tasks,
        plan.runs.len()
    );
    println!("submit with:\n  sbatch {}", script.display());
    if args.submit {
        let out = std::process::Command::new("sbatch")
            .arg(&script)
            .output()
            .context("running sbatch (is SLURM installed on this machine?)")?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            bail!(
                "sbatch failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    Ok(())
}
