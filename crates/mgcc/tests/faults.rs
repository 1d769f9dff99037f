//! The fault-injection suite (docs/reliability.md): every command that reads user files, run
//! as a user would on broken input, under kill -9, on a full disk and with concurrent writers.
//!
//! Each case checks: the exit status; no panic; one clear message naming the file at fault;
//! no input file changed (checksums of the input tree before and after); no partial output
//! left; and, after the fault is removed, that the same command (or `--resume`) succeeds.
//! Each test prints how many cases it tried per command.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{mgcc, p, phantoms_with_split, text};

// ---------------------------------------------------------------- running and checking

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
    phantoms_with_split(dir, &["--n", &n.to_string(), "--size", "32"]);
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

/// `ldm train-vae DATA --out OUT` at a tiny size.
fn vae_args<'a>(
    data: &'a Path,
    out: &'a Path,
    iterations: &'a str,
    val_every: &'a str,
) -> Vec<&'a str> {
    vec![
        "ldm",
        "train-vae",
        p(data),
        "--out",
        p(out),
        "--size",
        "16",
        "--channels",
        "8,8",
        "--latent-channels",
        "4",
        "--batch",
        "2",
        "--iterations",
        iterations,
        "--val-every",
        val_every,
        "--threads",
        "1",
        "--no-progress",
    ]
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
                    let vargs = vae_args(&data, &vae, "1", "1");
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

    // A duplicated stem: check warns and names the file used; train uses that file; predict
    // (whose outputs would collide) predicts one and names the other.
    let dup = data.join("images/phantom_0001.jpg");
    image::open(data.join("images/phantom_0001.png"))
        .unwrap()
        .save(&dup)
        .unwrap();
    case(
        &mut tally,
        &["check", p(&data)],
        true,
        &["phantom_0001", "also has"],
        &[&data],
    );
    let dup_run = tmp.path().join("dup");
    case(
        &mut tally,
        &train_args(&data, &dup_run, &[]),
        true,
        &[],
        &[&data],
    );
    let images = data.join("images");
    let dup_pred = tmp.path().join("dup-pred");
    let args = ["predict", p(&run), p(&images), p(&dup_pred)];
    case(
        &mut tally,
        &args,
        false,
        &["phantom_0001.jpg", "skipped"],
        &[&data],
    );
    fs::remove_file(&dup).unwrap();

    // A corrupt image in an --unlabeled-dir is refused like one in the dataset.
    let extra = tmp.path().join("extra");
    fs::create_dir(&extra).unwrap();
    fs::copy(data.join("images/phantom_0002.png"), extra.join("g1.png")).unwrap();
    fs::write(extra.join("g2.png"), b"\x89PNG half").unwrap();
    let r2 = tmp.path().join("r2");
    let args = train_args(&data, &r2, &["--unlabeled-dir", p(&extra)]);
    case(&mut tally, &args, false, &["g2.png"], &[&data, &extra]);
    assert!(!r2.exists());
    // A missing --config file is named.
    let mut args = train_args(&data, &r2, &[]);
    let missing_cfg = tmp.path().join("nope.toml");
    args.extend(["--config", p(&missing_cfg)]);
    case(&mut tally, &args, false, &["nope.toml"], &[&data]);

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
    let args = vae_args(&imgs_only, &vae, "1", "1");
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

// ---------------------------------------------------------------- concurrency

fn spawn(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_mgcc"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mgcc")
}

fn wait_for(path: &Path, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Every concurrent writer either succeeds or fails cleanly naming the holder (or the output
/// that now exists); the result is one whole output.
fn all_ok_or_refused(children: Vec<std::process::Child>, allowed: &[&str]) -> usize {
    let mut succeeded = 0;
    for c in children {
        let o = c.wait_with_output().unwrap();
        let t = text(&o);
        assert!(!t.contains("panicked"), "{t}");
        if o.status.success() {
            succeeded += 1;
        } else {
            assert!(
                allowed.iter().any(|a| t.contains(a)),
                "unexpected failure:\n{t}"
            );
        }
    }
    succeeded
}

/// One writer per folder: a second `train --resume` of a running run is refused naming the
/// holder; of 5 `train` into one new folder exactly one trains; 5 predict, phantom and split
/// writers leave one whole output.
#[test]
fn one_writer_per_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    dataset(&data, 8);
    let mut tally = Tally::default();

    // Two resumes at once.
    let run = tmp.path().join("run");
    let long = ["--iterations", "60", "--val-every", "20"];
    let mut args = train_args(&data, &run, &[]);
    args.truncate(args.len() - TRAIN.len());
    args.extend([
        "--size",
        "16",
        "--width",
        "4",
        "--batch",
        "2",
        "--labeled-batch",
        "1",
    ]);
    args.extend(["--labeled-count", "2", "--threads", "1", "--no-progress"]);
    args.extend(long);
    args.extend(["--stop-after", "1"]);
    ok(mgcc(&args));
    let resume = [
        "train",
        "--resume",
        p(&run),
        "--threads",
        "1",
        "--no-progress",
    ];
    let first = spawn(&resume);
    assert!(wait_for(&run.join(".mgcc.lock"), Duration::from_secs(20)));
    let second = case(
        &mut tally,
        &resume,
        false,
        &["in use by process", "one writer"],
        &[],
    );
    drop(second);
    assert_eq!(all_ok_or_refused(vec![first], &[]), 1);
    assert_eq!(metrics_rows(&run), 60, "one writer: every iteration once");
    assert!(!run.join(".mgcc.lock").exists(), "the lock is released");

    // Five trainings into one new folder.
    let new = tmp.path().join("new");
    let args = train_args(&data, &new, &[]);
    let children: Vec<_> = (0..5).map(|_| spawn(&args)).collect();
    tally.0.entry("train".into()).and_modify(|n| *n += 5);
    let n = all_ok_or_refused(children, &["in use by", "already holds a run"]);
    assert_eq!(n, 1, "exactly one of five trains");
    assert_eq!(metrics_rows(&new), 2);

    // Five predictions into one folder (--force: each may replace the others' files).
    let images = data.join("images");
    let pred = tmp.path().join("pred");
    let args = [
        "predict",
        p(&new),
        p(&images),
        p(&pred),
        "--force",
        "--threads",
        "1",
    ];
    let children: Vec<_> = (0..5).map(|_| spawn(&args)).collect();
    tally.0.insert("predict".into(), 5);
    assert!(all_ok_or_refused(children, &["in use by"]) >= 1);
    for e in fs::read_dir(&pred).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.contains("mgcc-tmp") && name != ".mgcc.lock",
            "left {name}"
        );
        if name.ends_with(".png") {
            image::open(&path).unwrap();
        }
    }

    // Five phantoms into one folder, and five splits of one dataset.
    let ph = tmp.path().join("ph");
    let args = ["phantom", p(&ph), "--n", "20", "--size", "32"];
    let children: Vec<_> = (0..5).map(|_| spawn(&args)).collect();
    tally.0.insert("phantom".into(), 5);
    assert!(all_ok_or_refused(children, &["in use by", "already exists"]) >= 1);
    case(&mut tally, &["check", p(&ph)], true, &["pairs: 20"], &[]);
    let leftovers: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".ph."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let args = [
        "split",
        p(&ph),
        "--splits",
        "2",
        "--seeds",
        "1,2",
        "--force",
    ];
    let children: Vec<_> = (0..5).map(|_| spawn(&args)).collect();
    tally.0.insert("split".into(), 5);
    assert!(all_ok_or_refused(children, &["in use by"]) >= 1);
    let val = fs::read_to_string(ph.join("ph_val2.txt")).unwrap();
    let train = fs::read_to_string(ph.join("ph_train2.txt")).unwrap();
    assert_eq!(
        val.lines().count() + train.lines().count(),
        20,
        "{val}{train}"
    );
    tally.print("concurrency");
}

// ---------------------------------------------------------------- kill -9

/// Start `args`, kill -9 it after `after`, wait for it; whether the kill hit it (false: it had
/// finished).
fn kill_after(args: &[&str], after: Duration) -> bool {
    let mut child = spawn(args);
    std::thread::sleep(after);
    let _ = child.kill();
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(9)
}

/// kill -9 at a range of points in train, ldm train-vae, ldm generate, phantom, import-busi
/// and predict: the folder is either untouched or resumable, and the rerun (or `--resume`)
/// completes with a whole result.
#[test]
fn kill_9_at_random_points_then_rerun() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    dataset(&data, 8);
    let mut tally = Tally::default();
    let mut hits = Tally::default();
    // Points spread over each command's run (a fixed pseudo-random draw, so failures repeat).
    let mut state = 0x2545_f491_u64;
    let mut draw = |max_ms: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        Duration::from_millis(5 + state % max_ms)
    };

    for i in 0..4 {
        let run = tmp.path().join(format!("train{i}"));
        let mut args = train_args(&data, &run, &[]);
        let k = args.iter().position(|a| *a == "--iterations").unwrap();
        args[k + 1] = "30";
        let k = args.iter().position(|a| *a == "--val-every").unwrap();
        args[k + 1] = "5";
        if kill_after(&args, draw(1500)) {
            hits.add("train");
        }
        tally.add("train");
        if run.join("config.toml").exists() {
            let resume = [
                "train",
                "--resume",
                p(&run),
                "--threads",
                "1",
                "--no-progress",
            ];
            case(&mut tally, &resume, true, &["30 of 30"], &[&data]);
        } else {
            assert!(!run.exists() || fs::read_dir(&run).unwrap().count() <= 1);
            case(&mut tally, &args, true, &["30 of 30"], &[&data]);
        }
        assert_eq!(metrics_rows(&run), 30);
    }

    for i in 0..3 {
        let ph = tmp.path().join(format!("ph{i}"));
        let args = ["phantom", p(&ph), "--n", "150", "--size", "64"];
        if kill_after(&args, draw(400)) {
            hits.add("phantom");
        }
        tally.add("phantom");
        if ph.exists() {
            // Complete (it finished before the kill) or absent, never half.
            case(&mut tally, &["check", p(&ph)], true, &["pairs: 150"], &[]);
        } else {
            case(&mut tally, &args, true, &[], &[]);
        }
        let stray: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            // A dead holder's lock may remain (taken over by the next writer); a staging
            // folder may not, once the target exists or the rerun has run.
            .filter(|n| n.starts_with(&format!(".ph{i}.")) && !n.ends_with("mgcc-lock"))
            .collect();
        assert!(stray.is_empty(), "staging folders left: {stray:?}");
    }

    let busi = tmp.path().join("busi");
    fake_busi(&busi, 150);
    for i in 0..2 {
        let out = tmp.path().join(format!("imp{i}"));
        let args = ["import-busi", p(&busi), p(&out)];
        if kill_after(&args, draw(300)) {
            hits.add("import-busi");
        }
        tally.add("import-busi");
        if out.exists() {
            case(&mut tally, &["check", p(&out)], true, &[], &[]);
        } else {
            case(&mut tally, &args, true, &[], &[&busi]);
            case(&mut tally, &["check", p(&out)], true, &[], &[]);
        }
    }

    let run = tmp.path().join("train0");
    let many = tmp.path().join("many");
    fs::create_dir(&many).unwrap();
    for i in 0..200 {
        let from = data
            .join("images")
            .join(format!("phantom_{:04}.png", i % 8 + 1));
        fs::copy(from, many.join(format!("scan{i:03}.png"))).unwrap();
    }
    for i in 0..3 {
        let pred = tmp.path().join(format!("pred{i}"));
        let args = [
            "predict",
            p(&run),
            p(&many),
            p(&pred),
            "--overlay",
            "--threads",
            "1",
        ];
        let killed = kill_after(&args, draw(400));
        if killed {
            hits.add("predict");
        }
        tally.add("predict");
        if killed {
            // Whatever the kill left, the same command completes without --force.
            case(&mut tally, &args, true, &["200 masks"], &[&many]);
        }
        for e in fs::read_dir(&pred).unwrap() {
            let path = e.unwrap().path();
            if path.extension().is_some_and(|x| x == "png") {
                image::open(&path).unwrap();
            }
        }
    }

    let vae = tmp.path().join("vae");
    let vargs = vae_args(&data, &vae, "30", "5");
    if kill_after(&vargs, draw(1500)) {
        hits.add("ldm train-vae");
    }
    tally.add("ldm train-vae");
    if vae.join("config.toml").exists() {
        let resume = [
            "ldm",
            "train-vae",
            "--resume",
            p(&vae),
            "--threads",
            "1",
            "--no-progress",
        ];
        case(&mut tally, &resume, true, &[], &[&data]);
    } else {
        case(&mut tally, &vargs, true, &[], &[&data]);
    }
    assert_eq!(metrics_rows(&vae), 30);

    let ldm = tmp.path().join("ldm");
    let largs = [
        "ldm",
        "train",
        p(&data),
        "--vae",
        p(&vae),
        "--out",
        p(&ldm),
        "--channels",
        "8,8",
        "--batch",
        "2",
        "--iterations",
        "2",
        "--val-every",
        "2",
        "--threads",
        "1",
        "--no-progress",
    ];
    ok(mgcc(&largs));
    let gen_dir = tmp.path().join("gen");
    let gargs = [
        "ldm",
        "generate",
        p(&ldm),
        "--n",
        "40",
        "--out",
        p(&gen_dir),
        "--steps",
        "4",
        "--batch",
        "2",
        "--threads",
        "1",
    ];
    // Killed at a point within an uninterrupted generation's time (measured on another folder).
    let reference = tmp.path().join("gen-ref");
    let mut timed = gargs;
    timed[6] = p(&reference);
    let started = Instant::now();
    ok(mgcc(&timed));
    let full = started.elapsed().as_millis() as u64;
    if kill_after(&gargs, draw(full.max(10) * 8 / 10)) {
        hits.add("ldm generate");
    }
    tally.add("ldm generate");
    case(&mut tally, &gargs, true, &[], &[&ldm.join("checkpoints")]);
    let pngs: Vec<_> = fs::read_dir(&gen_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    assert_eq!(pngs.len(), 40);
    for p in pngs {
        image::open(&p).unwrap();
    }
    tally.print("kill -9");
    hits.print("kill -9, kills that hit a running process");
}

// ---------------------------------------------------------------- import-busi

fn gray(path: &Path, w: u32, h: u32, v: u8) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::GrayImage::from_pixel(w, h, image::Luma([v]))
        .save(path)
        .unwrap();
}

fn mask(path: &Path, w: u32, h: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::GrayImage::from_fn(w, h, |x, y| {
        image::Luma([if x < w / 2 && y < h / 2 { 255 } else { 0 }])
    })
    .save(path)
    .unwrap();
}

/// A Kaggle-layout BUSI release with `n` benign and `n / 2` malignant images (one with a
/// second mask) and two normal ones.
fn fake_busi(root: &Path, n: usize) {
    for i in 1..=n {
        gray(
            &root.join(format!("benign/benign ({i}).png")),
            24,
            20,
            i as u8,
        );
        mask(&root.join(format!("benign/benign ({i})_mask.png")), 24, 20);
    }
    for i in 1..=n / 2 {
        gray(
            &root.join(format!("malignant/malignant ({i}).png")),
            20,
            24,
            100,
        );
        mask(
            &root.join(format!("malignant/malignant ({i})_mask.png")),
            20,
            24,
        );
    }
    mask(&root.join("malignant/malignant (1)_mask_1.png"), 20, 24);
    for i in 1..=2 {
        gray(&root.join(format!("normal/normal ({i}).png")), 16, 16, 50);
        mask(&root.join(format!("normal/normal ({i})_mask.png")), 16, 16);
    }
}

/// import-busi checks every file first and names every bad one; nothing is written unless
/// everything is good; the rerun after the fix succeeds.
#[test]
fn import_busi_is_all_or_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("Dataset_BUSI_with_GT");
    fake_busi(&src, 6);
    let out = tmp.path().join("busi");
    let mut tally = Tally::default();
    type Plant = fn(&Path);
    let faults: Vec<(&str, Plant, Vec<&str>)> = vec![
        (
            "corrupt image",
            |s| fs::write(s.join("benign/benign (2).png"), b"nope").unwrap(),
            vec!["benign (2).png"],
        ),
        (
            "truncated mask",
            |s| {
                let f = s.join("benign/benign (3)_mask.png");
                let x = fs::read(&f).unwrap();
                fs::write(&f, &x[..x.len() / 2]).unwrap();
            },
            vec!["benign (3)_mask.png"],
        ),
        (
            "non-binary mask",
            |s| {
                image::GrayImage::from_fn(20, 24, |x, _| image::Luma([(x * 10) as u8]))
                    .save(s.join("malignant/malignant (2)_mask.png"))
                    .unwrap()
            },
            vec!["malignant (2)_mask.png", "not binary"],
        ),
        (
            "mask of another size",
            |s| mask(&s.join("malignant/malignant (1)_mask_1.png"), 5, 5),
            vec!["malignant (1)_mask_1.png", "5×5"],
        ),
        (
            "missing mask",
            |s| fs::remove_file(s.join("benign/benign (4)_mask.png")).unwrap(),
            vec!["benign (4)", "no mask"],
        ),
        (
            "orphan mask",
            |s| mask(&s.join("benign/benign (9)_mask.png"), 24, 20),
            vec!["benign (9)_mask.png"],
        ),
        (
            "duplicate stem",
            |s| gray(&s.join("benign/benign (5).bmp"), 24, 20, 1),
            vec!["benign (5)"],
        ),
        (
            "dangling link",
            |s| {
                let f = s.join("benign/benign (6).png");
                fs::remove_file(&f).unwrap();
                std::os::unix::fs::symlink("/nonexistent.png", &f).unwrap();
            },
            vec!["benign (6).png", "broken symbolic link"],
        ),
    ];
    let pristine = tmp.path().join("pristine");
    copy_tree(&src, &pristine);
    let args = ["import-busi", p(&src), p(&out)];
    for (what, plant, needles) in &faults {
        plant(&src);
        case(&mut tally, &args, false, needles, &[&src]);
        assert!(!out.exists(), "{what}: import left {}", out.display());
        fs::remove_dir_all(&src).unwrap();
        copy_tree(&pristine, &src);
    }
    // Three bad files at once: all three named, nothing written.
    for (_, plant, _) in &faults[..3] {
        plant(&src);
    }
    let all: Vec<&str> = faults[..3].iter().map(|f| f.2[0]).collect();
    case(&mut tally, &args, false, &all, &[&src]);
    assert!(!out.exists());
    fs::remove_dir_all(&src).unwrap();
    copy_tree(&pristine, &src);
    case(&mut tally, &args, true, &[], &[&src]);
    case(&mut tally, &["check", p(&out)], true, &["pairs: 9"], &[]);
    // A second import without --force is refused; with it, the earlier import is replaced.
    case(&mut tally, &args, false, &["--force"], &[&src, &out]);
    let forced = ["import-busi", p(&src), p(&out), "--force"];
    case(&mut tally, &forced, true, &[], &[&src]);
    tally.print("import-busi");
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            fs::copy(e.path(), dst).unwrap();
        }
    }
}

// ---------------------------------------------------------------- full disk

/// A small tmpfs, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        fs::create_dir_all(dir).unwrap();
        let o = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                p(dir),
            ])
            .output()
            .map_err(|e| e.to_string())?;
        if !o.status.success() {
            return Err(text(&o).trim().to_string());
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }

    /// Fill the remaining space with `filler`.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).and_then(|_| f.flush()).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).output();
    }
}

/// Files under `dir` that are empty or temporary (what a full disk must not leave).
fn debris(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if name.contains("mgcc-staging") || name.contains("mgcc-old") {
                    out.push(path.clone());
                }
                stack.push(path);
            } else if name != "filler"
                && (fs::metadata(&path).unwrap().len() == 0 || name.contains("mgcc-tmp"))
            {
                out.push(path);
            }
        }
    }
    out
}

/// A full disk (a small tmpfs) during phantom, split, predict, evaluate, import-busi and a
/// training checkpoint: a clear error naming the file, no zero-byte or temporary file left,
/// the previous checkpoint kept, and the rerun succeeds once there is space.
#[test]
fn full_disk_leaves_no_partial_output() {
    let tmp = tempfile::tempdir().unwrap();
    let probe = match Tmpfs::mount(&tmp.path().join("probe"), "64k") {
        Ok(t) => t,
        Err(e) => {
            println!("skipping the full-disk cases: cannot mount a tmpfs here ({e})");
            return;
        }
    };
    drop(probe);
    let data = tmp.path().join("data");
    dataset(&data, 8);
    let run = tmp.path().join("run");
    ok(mgcc(&train_args(&data, &run, &[])));
    let mut tally = Tally::default();
    let full = ["No space left on device"];

    // phantom: a dataset larger than the disk.
    let disk = Tmpfs::mount(&tmp.path().join("d1"), "256k").unwrap();
    let ph = disk.0.join("ph");
    let args = ["phantom", p(&ph), "--n", "100", "--size", "128"];
    case(&mut tally, &args, false, &full, &[]);
    assert!(!ph.exists());
    assert_eq!(
        fs::read_dir(&disk.0).unwrap().count(),
        0,
        "nothing left on the disk"
    );
    drop(disk);

    // split of a dataset on a full disk.
    let disk = Tmpfs::mount(&tmp.path().join("d2"), "256k").unwrap();
    let small = disk.0.join("data");
    copy_tree(&data, &small);
    for f in ["t_train1.txt", "t_val1.txt", ".mgcc-written.json"] {
        fs::remove_file(small.join(f)).unwrap();
    }
    let filler = disk.fill();
    let args = [
        "split",
        p(&small),
        "--splits",
        "1",
        "--seeds",
        "3",
        "--name",
        "t",
    ];
    case(&mut tally, &args, false, &full, &[]);
    assert!(!small.join("t_train1.txt").exists() && !small.join("t_val1.txt").exists());
    assert_eq!(debris(&disk.0), Vec::<PathBuf>::new());
    fs::remove_file(&filler).unwrap();
    case(&mut tally, &args, true, &[], &[]);

    // predict and evaluate into a full disk; the rerun needs no --force.
    let pred = disk.0.join("pred");
    let ev = disk.0.join("ev");
    let filler = disk.fill();
    let images = data.join("images");
    let pargs = [
        "predict",
        p(&run),
        p(&images),
        p(&pred),
        "--overlay",
        "--probabilities",
    ];
    let o = case(&mut tally, &pargs, false, &full, &[&data]);
    assert_eq!(text(&o).matches("os error").count(), 1, "{}", text(&o));
    let eargs = [
        "evaluate",
        p(&run),
        "--data",
        p(&data),
        "--split",
        "1",
        "--out",
        p(&ev),
        "--save-masks",
    ];
    case(&mut tally, &eargs, false, &full, &[&data]);
    assert_eq!(debris(&disk.0), Vec::<PathBuf>::new());
    fs::remove_file(&filler).unwrap();
    fs::remove_dir_all(&small).unwrap();
    case(&mut tally, &pargs, true, &["8 masks"], &[&data]);
    case(&mut tally, &eargs, true, &[], &[&data]);
    drop(disk);

    // import-busi into a full disk.
    let busi = tmp.path().join("busi");
    fake_busi(&busi, 20);
    let disk = Tmpfs::mount(&tmp.path().join("d3"), "1m").unwrap();
    let filler = disk.fill();
    let out = disk.0.join("busi");
    let args = ["import-busi", p(&busi), p(&out)];
    case(&mut tally, &args, false, &full, &[&busi]);
    assert!(!out.exists());
    assert_eq!(debris(&disk.0), Vec::<PathBuf>::new());
    fs::remove_file(&filler).unwrap();
    case(&mut tally, &args, true, &[], &[&busi]);
    drop(disk);

    // A training checkpoint on a full disk keeps the previous one; the run resumes after.
    let disk = Tmpfs::mount(&tmp.path().join("d4"), "32m").unwrap();
    let r = disk.0.join("run");
    ok(mgcc(&train_args(&data, &r, &[])));
    let before = snapshot(&r.join("checkpoints"));
    let filler = disk.fill();
    let resume = [
        "train",
        "--resume",
        p(&r),
        "--iterations",
        "4",
        "--threads",
        "1",
        "--no-progress",
    ];
    case(&mut tally, &resume, false, &full, &[&data]);
    assert_eq!(
        snapshot(&r.join("checkpoints")),
        before,
        "the last checkpoint is kept"
    );
    fs::remove_file(&filler).unwrap();
    case(&mut tally, &resume, true, &["4 of 4"], &[&data]);
    assert_eq!(metrics_rows(&r), 4);
    drop(disk);
    tally.print("full disk");
}
