//! Running the `mgcc` binary in the integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Run `mgcc ARGS…` (no colour codes) and wait for it.
pub fn mgcc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mgcc"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run mgcc")
}

/// stdout then stderr.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A failure, no panic, and every needle in the output.
pub fn assert_clean_failure(out: &Output, needles: &[&str]) {
    let all = text(out);
    assert!(!out.status.success(), "expected failure:\n{all}");
    assert!(!all.contains("panicked"), "panic reached the user:\n{all}");
    for n in needles {
        assert!(all.contains(n), "missing `{n}` in:\n{all}");
    }
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `mgcc phantom DATA ARGS…` and one split named `t` (seed 3).
pub fn phantoms_with_split(data: &Path, phantom_args: &[&str]) {
    let out = mgcc(&[&["phantom", p(data)][..], phantom_args].concat());
    assert!(out.status.success(), "{}", text(&out));
    let out = mgcc(&[
        "split",
        p(data),
        "--splits",
        "1",
        "--seeds",
        "3",
        "--name",
        "t",
    ]);
    assert!(out.status.success(), "{}", text(&out));
}
