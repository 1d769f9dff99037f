//! The fault-injection suite (docs/reliability.md): every command that reads user files, run
//! as a user would on broken input, under kill -9, on a full disk and with concurrent writers.
//!
//! Each case checks: the exit status; no panic; one clear message naming the file at fault;
//! no input file changed (checksums of the input tree before and after); no partial output
//! left; and, after the fault is removed, that the same command (or `--resume`) succeeds.
//! Each test prints how many cases it tried per command.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
#[allow(unused_imports)]
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- running and checking

fn mgcc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mgcc"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run mgcc")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Cases tried, per command.
#[derive(Default)]
struct Tally(BTreeMap<String, usize>);

impl Tally {
    fn add(&mut self, command: &str) {
        *self.0.entry(command.to_string()).or_default() += 1;
    }
    fn print(&self, suite: &str) {
        let total: usize = self.0.values().sum();
        let per: Vec<String> = self.0.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("fault suite `{suite}`: {total} cases ({})", per.join(", "));
    }
}

/// A checksum of every entry under `root`: file contents, link targets, permissions.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode();
            if meta.is_symlink() {
                out.insert(rel, format!("link {:?}", fs::read_link(&path).unwrap()));
            } else if meta.is_dir() {
                out.insert(rel, format!("dir {mode:o}"));
                stack.push(path);
            } else {
                let mut bytes = Vec::new();
                // Unreadable files (chmod 000 as non-root) count by size and mode.
                let _ = fs::File::open(&path).and_then(|mut f| f.read_to_end(&mut bytes));
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                bytes.hash(&mut h);
                out.insert(
                    rel,
                    format!("file {} {mode:o} {:x}", meta.len(), h.finish()),
                );
            }
        }
    }
    out
}

/// Run `args`; check the exit status, the absence of a panic, the message, and that no file
/// under `inputs` changed.
fn case(tally: &mut Tally, args: &[&str], ok: bool, needles: &[&str], inputs: &[&Path]) -> Output {
    let before: Vec<_> = inputs.iter().map(|d| snapshot(d)).collect();
    let out = mgcc(args);
    let all = text(&out);
    let name = if args[0] == "ldm" {
        format!("ldm {}", args[1])
    } else {
        args[0].to_string()
    };
    tally.add(&name);
    assert!(
        !all.contains("panicked"),
        "panic in `{}`:\n{all}",
        args.join(" ")
    );
    assert_eq!(
        out.status.success(),
        ok,
        "`{}` should {}:\n{all}",
        args.join(" "),
        if ok { "succeed" } else { "fail" }
    );
    if !ok {
        let err_lines = all.lines().filter(|l| l.starts_with("error:")).count();
        assert_eq!(err_lines, 1, "one error line expected:\n{all}");
        assert!(
            !all.contains("os error 13): Permission denied (os error"),
            "{all}"
        );
    }
    for n in needles {
        assert!(
            all.contains(n),
            "`{}`: missing `{n}` in:\n{all}",
            args.join(" ")
        );
    }
    for (d, b) in inputs.iter().zip(&before) {
        assert_eq!(
            &snapshot(d),
            b,
            "`{}` changed input {}",
            args.join(" "),
            d.display()
        );
    }
    out
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}", text(&out));
    out
}

/// A phantom dataset of `n` images (32×32) with one split named `t`.
fn dataset(dir: &Path, n: usize) {
    ok(mgcc(&[
        "phantom",
        p(dir),
        "--n",
        &n.to_string(),
        "--size",
        "32",
    ]));
    ok(mgcc(&[
        "split",
        p(dir),
        "--splits",
        "1",
        "--seeds",
        "3",
        "--name",
        "t",
    ]));
}

fn stems(dir: &Path, list: &str) -> Vec<String> {
    fs::read_to_string(dir.join(format!("t_{list}1.txt")))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

const TRAIN: [&str; 17] = [
    "--size",
    "16",
    "--width",
    "4",
    "--iterations",
    "2",
    "--batch",
    "2",
    "--labeled-batch",
    "1",
    "--labeled-count",
    "2",
    "--val-every",
    "2",
    "--threads",
    "1",
    "--no-progress",
];

fn train_args<'a>(data: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["train", p(data), "--split", "1", "--out", p(out)];
    v.extend(TRAIN);
    v.extend(extra);
    v
}

/// Whether this process can be denied reading a file (not as root).
fn permissions_apply() -> bool {
    let t = tempfile::NamedTempFile::new().unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o000)).unwrap();
    fs::read(t.path()).is_err()
}

// ---------------------------------------------------------------- file faults

/// A fault planted on one file; `undo` restores the original.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    Missing,
    Empty,
    Truncated,
    NotAnImage,
    WrongSize,
    NonBinary,
    Unreadable,
    DanglingLink,
    LoopingLink,
}

impl Fault {
    const IMAGE: [Fault; 7] = [
        Fault::Empty,
        Fault::Truncated,
        Fault::NotAnImage,
        Fault::Unreadable,
        Fault::DanglingLink,
        Fault::LoopingLink,
        Fault::Missing,
    ];
    const MASK: [Fault; 9] = [
        Fault::Empty,
        Fault::Truncated,
        Fault::NotAnImage,
        Fault::WrongSize,
        Fault::NonBinary,
        Fault::Unreadable,
        Fault::DanglingLink,
        Fault::LoopingLink,
        Fault::Missing,
    ];

    /// Plant the fault on `file`; returns the saved bytes.
    fn plant(self, file: &Path) -> Vec<u8> {
        let saved = fs::read(file).unwrap();
        let _ = fs::remove_file(file);
        match self {
            Fault::Missing => {}
            Fault::Empty => fs::write(file, b"").unwrap(),
            Fault::Truncated => fs::write(file, &saved[..saved.len() / 2]).unwrap(),
            Fault::NotAnImage => fs::write(file, b"these are notes, not a scan\n").unwrap(),
            Fault::WrongSize => image::GrayImage::new(7, 5).save(file).unwrap(),
            Fault::NonBinary => image::GrayImage::from_fn(32, 32, |x, _| {
                image::Luma([[0u8, 128, 255][x as usize % 3]])
            })
            .save(file)
            .unwrap(),
            Fault::Unreadable => {
                fs::write(file, &saved).unwrap();
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(file, fs::Permissions::from_mode(0o000)).unwrap();
            }
            Fault::DanglingLink => {
                std::os::unix::fs::symlink(file.with_extension("gone"), file).unwrap()
            }
            Fault::LoopingLink => std::os::unix::fs::symlink(file, file).unwrap(),
        }
        saved
    }

    fn undo(self, file: &Path, saved: &[u8]) {
        let _ = fs::remove_file(file);
        fs::write(file, saved).unwrap();
    }

    /// What the message says besides the file name.
    fn words(self) -> &'static str {
        match self {
            Fault::Missing => "",
            Fault::Empty | Fault::Truncated | Fault::NotAnImage => "image",
            Fault::WrongSize => "×",
            Fault::NonBinary => "not binary",
            Fault::Unreadable => "denied",
            Fault::DanglingLink => "broken symbolic link",
            Fault::LoopingLink => "loops",
        }
    }
}

/// Every image and mask fault against check, train, evaluate, predict and ldm train-vae: each
/// fails naming the file (predict and evaluate after doing every other item), changes no
/// input, leaves no output that blocks the rerun, and the rerun succeeds once the file is back.
#[test]
fn file_faults_in_every_command_that_reads_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    dataset(&data, 8);
    let run = tmp.path().join("run");
    ok(mgcc(&train_args(&data, &run, &[])));
    let train_stems = stems(&data, "train");
    let val_stems = stems(&data, "val");
    let perms = permissions_apply();
    if !perms {
        println!("skipping the unreadable-file cases: running as root, permissions do not apply");
    }
    let mut tally = Tally::default();
    let mut k = 0;
    for (is_mask, faults) in [(false, &Fault::IMAGE[..]), (true, &Fault::MASK[..])] {
        for &fault in faults {
            if fault == Fault::Unreadable && !perms {
                continue;
            }
            // Once on a stem of the train list, once on one of the val list.
            for in_val in [false, true] {
                k += 1;
                let stem = if in_val {
                    &val_stems[k % val_stems.len()]
                } else {
                    &train_stems[k % train_stems.len()]
                };
                let file = if is_mask {
                    data.join("masks/0").join(format!("{stem}.png"))
                } else {
                    data.join("images").join(format!("{stem}.png"))
                };
                let name = file.file_name().unwrap().to_str().unwrap().to_string();
                let saved = fault.plant(&file);
                let needles: Vec<&str> = [name.as_str(), fault.words()]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect();
                let what = format!("{fault:?} {}", if is_mask { "mask" } else { "image" });

                // check
                case(&mut tally, &["check", p(&data)], false, &needles, &[&data]);

                // train: no run folder left behind; rerun succeeds after the fix.
                let out = tmp.path().join(format!("t{k}"));
                let args = train_args(&data, &out, &[]);
                case(&mut tally, &args, false, &needles, &[&data]);
                assert!(!out.exists(), "{what}: train left {}", out.display());

                // evaluate: every other case evaluated, the bad one named, exit ≠ 0.
                let ev = tmp.path().join(format!("e{k}"));
                let eargs = [
                    "evaluate",
                    p(&run),
                    "--data",
                    p(&data),
                    "--split",
                    "1",
                    "--out",
                    p(&ev),
                    "--threads",
                    "1",
                ];
                if in_val && fault != Fault::Missing {
                    let out = case(
                        &mut tally,
                        &eargs,
                        false,
                        &needles,
                        &[&data, &run.join("checkpoints")],
                    );
                    let csv = fs::read_to_string(ev.join("cases.csv"))
                        .unwrap_or_else(|e| panic!("{what}: {e}\n{}", text(&out)));
                    assert_eq!(
                        csv.lines().count(),
                        val_stems.len(),
                        "{what}: header + the other cases:\n{csv}"
                    );
                } else if fault == Fault::Missing {
                    // The listing itself is broken (an orphan or missing file): nothing evaluated.
                    case(
                        &mut tally,
                        &eargs,
                        false,
                        &needles,
                        &[&data, &run.join("checkpoints")],
                    );
                    assert!(!ev.join("cases.csv").exists());
                }

                // predict (images only): the others are predicted, the bad one named.
                if !is_mask && fault != Fault::Missing {
                    let pred = tmp.path().join(format!("p{k}"));
                    let images = data.join("images");
                    let pargs = ["predict", p(&run), p(&images), p(&pred), "--threads", "1"];
                    case(
                        &mut tally,
                        &pargs,
                        false,
                        &needles,
                        &[&data, &run.join("checkpoints")],
                    );
                    let masks = fs::read_dir(&pred).unwrap().filter(|e| {
                        e.as_ref()
                            .unwrap()
                            .path()
                            .extension()
                            .is_some_and(|x| x == "png")
                    });
                    assert_eq!(masks.count(), 7, "{what}: the 7 good images are predicted");
                    fault.undo(&file, &saved);
                    // The rerun completes without --force (the first invocation did not finish).
                    case(&mut tally, &pargs, true, &[], &[&data]);
                    fault.plant(&file);
                }

                // ldm train-vae reads the images.
                if !is_mask {
                    let vae = tmp.path().join(format!("v{k}"));
                    let vargs = [
                        "ldm",
                        "train-vae",
                        p(&data),
                        "--out",
                        p(&vae),
                        "--size",
                        "16",
                        "--channels",
                        "8,8",
                        "--latent-channels",
                        "4",
                        "--batch",
                        "2",
                        "--iterations",
                        "1",
                        "--val-every",
                        "1",
                        "--threads",
                        "1",
                        "--no-progress",
                    ];
                    let vneedles: Vec<&str> = if fault == Fault::Missing {
                        vec![]
                    } else {
                        needles.clone()
                    };
                    // A missing image leaves an orphan mask: the dataset layout is refused.
                    case(&mut tally, &vargs, false, &vneedles, &[&data]);
                    assert!(
                        !vae.exists(),
                        "{what}: ldm train-vae left {}",
                        vae.display()
                    );
                }

                fault.undo(&file, &saved);
                case(&mut tally, &["check", p(&data)], true, &[], &[&data]);
                case(&mut tally, &args, true, &[], &[&data]);
                if in_val {
                    case(&mut tally, &eargs, true, &[], &[&data]);
                }
            }
        }
    }
    tally.print("file faults");
}

// ---------------------------------------------------------------- wrong successes, usability

fn metrics_rows(run: &Path) -> usize {
    fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .count()
        - 1
}

/// Flags a command cannot honour are refused (or honoured and said), nothing is chosen
/// silently, and messages are readable.
#[test]
fn no_silent_choices_and_readable_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    dataset(&data, 8);
    let mut tally = Tally::default();
    let out = tmp.path().join("r0");

    // --iterations 0 is refused; so is training without --split.
    let mut args = train_args(&data, &out, &[]);
    let i = args.iter().position(|a| *a == "--iterations").unwrap();
    args[i + 1] = "0";
    case(
        &mut tally,
        &args,
        false,
        &["iterations must be at least 1"],
        &[&data],
    );
    assert!(!out.exists());
    let mut no_split = vec!["train", p(&data), "--out", p(&out)];
    no_split.extend(TRAIN);
    case(
        &mut tally,
        &no_split,
        false,
        &["--split", "splits 1"],
        &[&data],
    );
    assert!(!out.exists());

    // A run; --resume refuses flags it cannot honour and leaves the run as it was.
    let run = tmp.path().join("run");
    ok(mgcc(&train_args(&data, &run, &[])));
    for flag in [
        ["--size", "64"],
        ["--lr", "0.5"],
        ["--split", "2"],
        ["--seed", "3"],
    ] {
        let args = [
            "train",
            "--resume",
            p(&run),
            flag[0],
            flag[1],
            "--threads",
            "1",
        ];
        case(
            &mut tally,
            &args,
            false,
            &[flag[0], "cannot change a run being resumed"],
            &[&run, &data],
        );
    }
    // Fewer iterations than done is refused; more extends the run, and the log says so.
    let args = [
        "train",
        "--resume",
        p(&run),
        "--iterations",
        "1",
        "--no-progress",
        "--threads",
        "1",
    ];
    case(
        &mut tally,
        &args,
        false,
        &["already done 2"],
        &[&run, &data],
    );
    let args = [
        "train",
        "--resume",
        p(&run),
        "--iterations",
        "4",
        "--no-progress",
        "--threads",
        "1",
    ];
    case(&mut tally, &args, true, &["4 of 4 iterations"], &[&data]);
    assert_eq!(metrics_rows(&run), 4);
    let log = fs::read_to_string(run.join("train.log")).unwrap();
    assert!(log.contains("iterations changed from 2 to 4"), "{log}");
    let cfg = fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(cfg.contains("iterations = 4"), "{cfg}");

    // The data path is stored absolute: resuming from another folder works.
    let rel = tmp.path().join("rel");
    let o = Command::new(env!("CARGO_BIN_EXE_mgcc"))
        .args(["train", "data", "--split", "1", "--out", "rel"])
        .args(TRAIN)
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let cfg = fs::read_to_string(rel.join("config.toml")).unwrap();
    assert!(
        cfg.contains(&format!(
            "data = \"{}",
            tmp.path().canonicalize().unwrap().display()
        )),
        "{cfg}"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_mgcc"))
        .args([
            "train",
            "--resume",
            p(&rel),
            "--iterations",
            "3",
            "--threads",
            "1",
            "--no-progress",
        ])
        .current_dir("/")
        .output()
        .unwrap();
    tally.add("train");
    assert!(o.status.success(), "{}", text(&o));

    // Ignored entries are all reported: a stray file and a dangling link not named like an image.
    fs::write(data.join("images/notes.txt"), "x").unwrap();
    std::os::unix::fs::symlink("/nonexistent/x", data.join("images/old.lnk")).unwrap();
    case(
        &mut tally,
        &["check", p(&data)],
        true,
        &["notes.txt", "old.lnk", "broken symbolic link"],
        &[&data],
    );
    fs::remove_file(data.join("images/notes.txt")).unwrap();
    fs::remove_file(data.join("images/old.lnk")).unwrap();

    // A TOML syntax error is located.
    let bad = tmp.path().join("bad.toml");
    fs::write(&bad, "lr = 0.01\nsize = = 3\n").unwrap();
    let o2 = tmp.path().join("r1");
    let mut args = train_args(&data, &o2, &[]);
    args.extend(["--config", p(&bad)]);
    case(&mut tally, &args, false, &["bad.toml", "line 2"], &[&data]);

    // evaluate/predict on a folder that is not a run say so.
    let args = ["evaluate", p(&data), "--data", p(&data)];
    case(
        &mut tally,
        &args,
        false,
        &["not an mgcc run folder"],
        &[&data],
    );
    let pred = tmp.path().join("pred");
    let images = data.join("images");
    let args = ["predict", p(&data), p(&images), p(&pred)];
    case(
        &mut tally,
        &args,
        false,
        &["not an mgcc run folder"],
        &[&data],
    );

    // An OS error is printed once.
    let under_file = data.join("manifest.csv").join("out");
    let args = ["predict", p(&run), p(&images), p(&under_file)];
    let o = case(&mut tally, &args, false, &["manifest.csv"], &[&data]);
    assert_eq!(text(&o).matches("os error").count(), 1, "{}", text(&o));

    // ldm train-vae accepts a folder with images/ and no masks/ (as the README says).
    let imgs_only = tmp.path().join("imgs");
    fs::create_dir_all(imgs_only.join("images")).unwrap();
    for e in fs::read_dir(data.join("images")).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), imgs_only.join("images").join(e.file_name())).unwrap();
    }
    let vae = tmp.path().join("vae");
    let args = [
        "ldm",
        "train-vae",
        p(&imgs_only),
        "--out",
        p(&vae),
        "--size",
        "16",
        "--channels",
        "8,8",
        "--latent-channels",
        "4",
        "--batch",
        "2",
        "--iterations",
        "1",
        "--val-every",
        "1",
        "--threads",
        "1",
        "--no-progress",
    ];
    case(&mut tally, &args, true, &[], &[&imgs_only]);

    // No colour codes where output is not a terminal (the log file and captured stderr).
    for f in ["train.log", "metrics.csv"] {
        let t = fs::read_to_string(run.join(f)).unwrap();
        assert!(!t.contains('\u{1b}'), "{f} has escape codes");
    }
    let o = mgcc(&[
        "phantom",
        p(&tmp.path().join("ph")),
        "--n",
        "2",
        "--size",
        "32",
    ]);
    assert!(!text(&o).contains('\u{1b}'), "{}", text(&o));
    tally.print("no silent choices");
}

// ---------------------------------------------------------------- lost files

/// No command replaces or removes a file it did not write, whatever the flags.
#[test]
fn files_mgcc_did_not_write_are_never_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    dataset(&data, 8);
    let run = tmp.path().join("run");
    ok(mgcc(&train_args(&data, &run, &[])));
    let images = data.join("images");
    let mut tally = Tally::default();

    // train --out into an unrelated folder.
    let theirs = tmp.path().join("theirs");
    fs::create_dir(&theirs).unwrap();
    fs::write(theirs.join("metrics.csv"), "my results\n").unwrap();
    let args = train_args(&data, &theirs, &[]);
    case(
        &mut tally,
        &args,
        false,
        &["theirs", "metrics.csv", "new or empty folder"],
        &[&data, &theirs],
    );
    // ... and into a file.
    let file = theirs.join("metrics.csv");
    let args = train_args(&data, &file, &[]);
    case(
        &mut tally,
        &args,
        false,
        &["metrics.csv"],
        &[&data, &theirs],
    );

    // predict over its input, or into a folder that contains it, whatever the flags.
    for out in [&images, &data, tmp.path()] {
        let args = [
            "predict",
            p(&run),
            p(&images),
            p(out),
            "--force",
            "--overlay",
        ];
        case(
            &mut tally,
            &args,
            false,
            &["choose another output folder"],
            &[&data],
        );
    }
    // A folder holding the user's file of an output's name: refused even with --force.
    let user = tmp.path().join("user");
    fs::create_dir(&user).unwrap();
    fs::write(user.join("phantom_0003.png"), "my annotation").unwrap();
    for force in [false, true] {
        let mut args = vec!["predict", p(&run), p(&images), p(&user)];
        if force {
            args.push("--force");
        }
        case(
            &mut tally,
            &args,
            false,
            &["phantom_0003.png", "not written by mgcc"],
            &[&data, &user],
        );
    }
    // mgcc's own complete outputs: replaced only with --force.
    let pred = tmp.path().join("pred");
    let args = ["predict", p(&run), p(&images), p(&pred), "--probabilities"];
    case(&mut tally, &args, true, &[], &[&data]);
    case(&mut tally, &args, false, &["--force"], &[&data, &pred]);
    let forced = [
        "predict",
        p(&run),
        p(&images),
        p(&pred),
        "--probabilities",
        "--force",
    ];
    case(&mut tally, &forced, true, &[], &[&data]);

    // evaluate --out: its own earlier files are replaced, a user's are not.
    let ev = tmp.path().join("ev");
    fs::create_dir(&ev).unwrap();
    fs::write(ev.join("cases.csv"), "mine\n").unwrap();
    let args = [
        "evaluate",
        p(&run),
        "--data",
        p(&data),
        "--split",
        "1",
        "--out",
        p(&ev),
    ];
    case(
        &mut tally,
        &args,
        false,
        &["cases.csv", "not written by mgcc"],
        &[&data, &ev],
    );
    fs::remove_file(ev.join("cases.csv")).unwrap();
    case(&mut tally, &args, true, &[], &[&data]);
    case(&mut tally, &args, true, &[], &[&data]);
    // ... and never over the run or the data.
    let args = ["evaluate", p(&run), "--data", p(&data), "--out", p(&data)];
    case(
        &mut tally,
        &args,
        false,
        &["choose another output folder"],
        &[&data],
    );

    // phantom / import-busi --force: only over a folder mgcc wrote entirely.
    fs::write(data.join("README.txt"), "notes about my scans").unwrap();
    let args = ["phantom", p(&data), "--n", "4", "--size", "32", "--force"];
    case(
        &mut tally,
        &args,
        false,
        &["README.txt", "not written by mgcc"],
        &[&data],
    );
    fs::remove_file(data.join("README.txt")).unwrap();

    // split --force: replaces split files mgcc wrote, never hand-made ones.
    let args = [
        "split",
        p(&data),
        "--splits",
        "1",
        "--seeds",
        "5",
        "--name",
        "t",
    ];
    case(
        &mut tally,
        &args,
        false,
        &["t_train1.txt", "--force"],
        &[&data],
    );
    let forced = [
        "split",
        p(&data),
        "--splits",
        "1",
        "--seeds",
        "5",
        "--name",
        "t",
        "--force",
    ];
    case(&mut tally, &forced, true, &[], &[]);
    fs::write(data.join("hand_train1.txt"), "phantom_0001\n").unwrap();
    fs::write(data.join("hand_val1.txt"), "phantom_0002\n").unwrap();
    let args = [
        "split",
        p(&data),
        "--splits",
        "1",
        "--seeds",
        "5",
        "--name",
        "hand",
        "--force",
    ];
    case(
        &mut tally,
        &args,
        false,
        &["hand_train1.txt", "not written by mgcc"],
        &[&data],
    );
    tally.print("lost files");
}
