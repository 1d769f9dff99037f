//! `MGCC_SIMD` as a user sets it: `mgcc bench` runs and reports each level the CPU has, and a
//! bad value stops the program with a message naming the variable.

mod common;

use std::process::{Command, Output};

use common::{assert_clean_failure, text};
use mgcc_kernels::SimdLevel;

fn bench(simd: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mgcc"));
    cmd.args([
        "bench",
        "--width",
        "4",
        "--size",
        "32",
        "--batch",
        "2",
        "--steps",
        "1",
        "--infer-runs",
        "1",
        "--threads",
        "2",
    ])
    .env("NO_COLOR", "1")
    .env_remove("MGCC_DISABLE_FAST_CONV")
    .env_remove("MGCC_CONV_IM2COL");
    match simd {
        Some(v) => cmd.env("MGCC_SIMD", v),
        None => cmd.env_remove("MGCC_SIMD"),
    };
    cmd.output().expect("run mgcc")
}

/// The `"simd"` of the summary (last) line.
fn reported(out: &Output) -> String {
    assert!(out.status.success(), "{}", text(out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().expect("a summary line");
    let v: serde_json::Value = serde_json::from_str(last).expect("JSON");
    assert!(
        v["train_step_median_s"].as_f64().is_some_and(|t| t > 0.0),
        "{v}"
    );
    v["simd"].as_str().expect("a simd key").to_string()
}

#[test]
fn bench_reports_the_simd_path_it_ran() {
    assert_eq!(reported(&bench(None)), SimdLevel::detect().name());
    let levels = SimdLevel::all_supported();
    assert!(levels.contains(&SimdLevel::Scalar));
    for level in levels {
        assert_eq!(reported(&bench(Some(level.name()))), level.name());
    }
}

#[test]
fn a_bad_or_unsupported_level_is_refused_at_start_up() {
    assert_clean_failure(&bench(Some("sse9")), &["MGCC_SIMD", "sse9"]);
    for level in [SimdLevel::Avx512, SimdLevel::Avx2] {
        if !level.supported() {
            assert_clean_failure(&bench(Some(level.name())), &["MGCC_SIMD", "lacks"]);
        }
    }
}
