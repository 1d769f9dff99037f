//! `mgcc experiment` with real processes: several processes on one experiment folder train
//! every run exactly once, a killed process's run is resumed by the next command, a failing
//! run is recorded and does not stop the others.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn mgcc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mgcc"))
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// 16 phantoms at 32×32 with one split; a config for tiny runs.
fn setup(dir: &Path, iterations: usize) -> (PathBuf, PathBuf) {
    let data = dir.join("data");
    assert!(
        mgcc()
            .args(["phantom", p(&data), "--n", "16", "--size", "32"])
            .output()
            .unwrap()
            .status
            .success()
    );
    assert!(
        mgcc()
            .args(["split", p(&data), "--splits", "1", "--seeds", "3"])
            .output()
            .unwrap()
            .status
            .success()
    );
    let cfg = dir.join("tiny.toml");
    std::fs::write(
        &cfg,
        format!(
            "size = 32\nwidth = 2\niterations = {iterations}\nval_every = 4\nbatch = 4\nlabeled_batch = 2\n"
        ),
    )
    .unwrap();
    (data, cfg)
}

fn run_cmd(data: &Path, exp: &Path, cfg: &Path, extra: &[&str]) -> Command {
    let mut c = mgcc();
    c.args([
        "experiment",
        "run",
        p(data),
        "--out",
        p(exp),
        "--splits",
        "1",
        "--config",
        p(cfg),
        "--threads",
        "1",
    ])
    .args(extra)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c
}

/// Run folders of an experiment.
fn runs(exp: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(exp.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

fn count(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.matches(needle).count())
        .unwrap_or(0)
}

/// `n` processes started together on one plan; every run trained exactly once.
fn race(n: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let (data, cfg) = setup(tmp.path(), 6);
    let exp = tmp.path().join("exp");
    let plan = [
        "--labeled",
        "1/4,1/2",
        "--methods",
        "supervised,cps,mgcc",
        "--seeds",
        "41,42",
    ];
    let children: Vec<Child> = (0..n)
        .map(|_| run_cmd(&data, &exp, &cfg, &plan).spawn().unwrap())
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for o in &outs {
        assert!(o.status.success(), "{}", text(o));
    }
    let dirs = runs(&exp);
    assert_eq!(dirs.len(), 12, "{dirs:?}");
    for d in &dirs {
        let log = d.join("train.log");
        assert_eq!(count(&log, "new run"), 1, "{}", d.display());
        assert_eq!(count(&log, "resumed"), 0, "{}", d.display());
        assert!(d.join("eval/summary.json").is_file());
    }
    // Each run was reported done by exactly one process.
    let done: usize = outs
        .iter()
        .map(|o| text(o).matches("] done ").count())
        .sum();
    assert_eq!(done, 12);
    assert!(
        !exp.join("runs")
            .read_dir()
            .unwrap()
            .any(|e| { e.unwrap().path().extension().is_some_and(|x| x == "lock") }),
        "locks are released"
    );
    let md = std::fs::read_to_string(exp.join("results.md")).unwrap();
    assert!(md.contains("12 of 12 planned runs finished"), "{md}");
}

#[test]
fn two_processes_at_once_train_each_run_once() {
    race(2);
}

#[test]
fn five_processes_at_once_train_each_run_once() {
    race(5);
}

#[test]
fn a_killed_run_resumes_and_a_failed_run_is_recorded_without_stopping_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, cfg) = setup(tmp.path(), 400);
    let exp = tmp.path().join("exp");
    // 1/16 of 11 train images leaves fewer labelled images than the labelled batch: that run
    // fails; the 1/2 run trains long enough to be killed half-way.
    let plan = ["--labeled", "1/16,1/2", "--methods", "supervised"];
    let mut child = run_cmd(&data, &exp, &cfg, &plan).spawn().unwrap();
    let victim = exp.join("runs/supervised_1-2_split1_seed41");
    let started = Instant::now();
    while !victim.join("checkpoints/last/state.json").is_file() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: the lock stays behind, its pid dead
    child.wait().unwrap();
    assert!(victim.with_extension("lock").is_file());
    assert!(
        !victim.join("eval/summary.json").is_file(),
        "killed too late"
    );

    let out = run_cmd(&data, &exp, &cfg, &plan).output().unwrap();
    let all = text(&out);
    assert!(
        !out.status.success(),
        "a failed run makes the exit status non-zero:\n{all}"
    );
    assert!(all.contains("supervised_1-16_split1_seed41"), "{all}");
    let failed = exp.join("runs/supervised_1-16_split1_seed41.failed.json");
    let record = std::fs::read_to_string(&failed).unwrap();
    assert!(record.contains("labelled"), "{record}");
    assert_eq!(count(&victim.join("train.log"), "resumed at iteration"), 1);
    assert!(victim.join("eval/summary.json").is_file());
    let md = std::fs::read_to_string(exp.join("results.md")).unwrap();
    assert!(
        md.contains("1 of 2 planned runs finished") && md.contains("failed"),
        "{md}"
    );

    // A rerun skips the failed run (and says so); --retry-failed tries it again.
    let again = run_cmd(&data, &exp, &cfg, &plan).output().unwrap();
    assert!(!again.status.success());
    assert!(text(&again).contains("--retry-failed"), "{}", text(&again));
    assert!(!text(&again).contains("] start"), "{}", text(&again));
    let retry = run_cmd(
        &data,
        &exp,
        &cfg,
        &[&plan[..], &["--retry-failed"]].concat(),
    )
    .output()
    .unwrap();
    assert!(
        text(&retry).contains("start supervised_1-16"),
        "{}",
        text(&retry)
    );

    // A different plan into the same folder is refused, naming the flag.
    let other = run_cmd(
        &data,
        &exp,
        &cfg,
        &["--labeled", "1/2", "--methods", "supervised"],
    )
    .output()
    .unwrap();
    assert!(!other.status.success());
    assert!(
        text(&other).contains("--labeled: the plan has 1/16,1/2, this command 1/2"),
        "{}",
        text(&other)
    );
}
