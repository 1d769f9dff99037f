//! `mgcc experiment slurm`: an array job whose every task runs
//! `mgcc experiment run … --shard slurm`, i.e. the runs with plan index ≡ (task id − first
//! task id) mod (task count). Written to `EXP/submit.sbatch`; `--submit` hands it to `sbatch`.

use std::path::{Path, PathBuf};

use crate::error::ExperimentError;
use crate::fsutil::write_atomic;

/// Options of the array job.
#[derive(Debug, Clone, Default)]
pub struct SlurmOptions {
    /// Array tasks (default: one per planned run).
    pub tasks: usize,
    /// At most this many tasks at once (`%K`).
    pub parallel: Option<usize>,
    pub partition: Option<String>,
    /// e.g. `gpu:1`.
    pub gres: Option<String>,
    /// Wall-clock limit per task, `HH:MM` or anything `sbatch --time` takes.
    pub time: Option<String>,
    pub cpus_per_task: Option<usize>,
    pub job_name: String,
    /// Working directory of the tasks (relative paths in the command are relative to it).
    pub chdir: Option<PathBuf>,
}

/// Quote a word for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=,:@%+".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The sbatch script: `#SBATCH` lines, then `exec` of `command` (the `mgcc` binary and its
/// arguments, which must end with `--shard slurm`).
pub fn script(exp: &Path, command: &[String], o: &SlurmOptions) -> String {
    let mut s = String::from("#!/usr/bin/env bash\n");
    s.push_str(&format!(
        "#SBATCH --job-name={}\n",
        shell_quote(&o.job_name)
    ));
    let last = o.tasks.max(1) - 1;
    match o.parallel {
        Some(k) => s.push_str(&format!("#SBATCH --array=0-{last}%{k}\n")),
        None => s.push_str(&format!("#SBATCH --array=0-{last}\n")),
    }
    let logs = exp.join("slurm");
    s.push_str(&format!(
        "#SBATCH --output={}\n",
        shell_quote(&logs.join("%A_%a.out").display().to_string())
    ));
    if let Some(p) = &o.partition {
        s.push_str(&format!("#SBATCH --partition={}\n", shell_quote(p)));
    }
    if let Some(g) = &o.gres {
        s.push_str(&format!("#SBATCH --gres={}\n", shell_quote(g)));
    }
    if let Some(t) = &o.time {
        s.push_str(&format!("#SBATCH --time={}\n", shell_quote(t)));
    }
    if let Some(c) = o.cpus_per_task {
        s.push_str(&format!("#SBATCH --cpus-per-task={c}\n"));
    }
    if let Some(d) = &o.chdir {
        s.push_str(&format!(
            "#SBATCH --chdir={}\n",
            shell_quote(&d.display().to_string())
        ));
    }
    s.push_str("set -euo pipefail\n");
    s.push_str(
        "# Each task runs the plan's runs with index = (task id - first task id) mod task count.\n",
    );
    let words: Vec<String> = command.iter().map(|w| shell_quote(w)).collect();
    s.push_str(&format!("exec {}\n", words.join(" ")));
    s
}

/// Write `EXP/submit.sbatch` (and the log folder); returns its path.
pub fn write_script(
    exp: &Path,
    command: &[String],
    o: &SlurmOptions,
) -> Result<PathBuf, ExperimentError> {
    let logs = exp.join("slurm");
    std::fs::create_dir_all(&logs).map_err(|e| ExperimentError::io(&logs, e))?;
    let path = exp.join("submit.sbatch");
    write_atomic(&path, script(exp, command, o).as_bytes())?;
    Ok(path)
}

/// The shard `(I, N)` of this SLURM array task: `I = SLURM_ARRAY_TASK_ID −
/// SLURM_ARRAY_TASK_MIN`, `N = SLURM_ARRAY_TASK_COUNT`.
pub fn shard_from_env(get: impl Fn(&str) -> Option<String>) -> Result<(usize, usize), String> {
    let var = |name: &str| -> Result<usize, String> {
        let v = get(name).ok_or_else(|| {
            format!("--shard slurm: {name} is not set (is this running inside an array job?)")
        })?;
        v.trim()
            .parse()
            .map_err(|_| format!("--shard slurm: {name}={v} is not a number"))
    };
    let (id, min, count) = (
        var("SLURM_ARRAY_TASK_ID")?,
        var("SLURM_ARRAY_TASK_MIN")?,
        var("SLURM_ARRAY_TASK_COUNT")?,
    );
    if id < min || count == 0 || id - min >= count {
        return Err(format!(
            "--shard slurm: task {id} outside the array {min}..{min}+{count}"
        ));
    }
    Ok((id - min, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_has_the_array_and_quotes_its_command() {
        let cmd: Vec<String> = [
            "/opt/mgcc",
            "experiment",
            "run",
            "my data",
            "--shard",
            "slurm",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let s = script(
            Path::new("/exp"),
            &cmd,
            &SlurmOptions {
                tasks: 42,
                parallel: Some(4),
                partition: Some("gpu".into()),
                gres: Some("gpu:1".into()),
                time: Some("12:00".into()),
                job_name: "mgcc-exp".into(),
                chdir: Some("/home/me/study".into()),
                ..Default::default()
            },
        );
        for line in [
            "#SBATCH --array=0-41%4",
            "#SBATCH --partition=gpu",
            "#SBATCH --gres=gpu:1",
            "#SBATCH --time=12:00",
            "#SBATCH --output=/exp/slurm/%A_%a.out",
            "#SBATCH --chdir=/home/me/study",
            "exec /opt/mgcc experiment run 'my data' --shard slurm",
        ] {
            assert!(s.contains(line), "missing {line} in\n{s}");
        }
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn the_shard_comes_from_the_array_variables() {
        let env = |id: &'static str| {
            move |k: &str| match k {
                "SLURM_ARRAY_TASK_ID" => Some(id.to_string()),
                "SLURM_ARRAY_TASK_MIN" => Some("3".into()),
                "SLURM_ARRAY_TASK_COUNT" => Some("4".into()),
                _ => None,
            }
        };
        assert_eq!(shard_from_env(env("3")), Ok((0, 4)));
        assert_eq!(shard_from_env(env("6")), Ok((3, 4)));
        assert!(shard_from_env(env("7")).is_err());
        assert!(
            shard_from_env(|_| None)
                .unwrap_err()
                .contains("SLURM_ARRAY_TASK_ID")
        );
    }
}
