//! The SIMD level of the hand-written kernels, chosen once per process.
//!
//! Detected from the CPU (AVX-512F, else AVX2 + FMA, else none) unless [`SIMD_ENV`] forces one;
//! forcing a level the CPU lacks is an error ([`simd_level`]). [`Level::Scalar`] means no
//! hand-written SIMD kernels: im2col + `gemm` and burn's own ops.

use std::fmt;
use std::sync::OnceLock;

/// Environment variable that forces the kernels' SIMD level: `avx512`, `avx2` or `scalar`.
pub const SIMD_ENV: &str = "MGCC_SIMD";

/// Which hand-written kernels run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// 16-lane AVX-512F kernels.
    Avx512,
    /// 8-lane AVX2 + FMA kernels (same algorithms as [`Level::Avx512`]).
    Avx2,
    /// No hand-written SIMD kernels (im2col + `gemm`, burn's ops).
    Scalar,
}

impl Level {
    /// The name used by [`SIMD_ENV`] and in benchmark reports.
    pub fn name(self) -> &'static str {
        match self {
            Level::Avx512 => "avx512",
            Level::Avx2 => "avx2",
            Level::Scalar => "scalar",
        }
    }

    /// Parses a [`SIMD_ENV`] value.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "avx512" => Some(Level::Avx512),
            "avx2" => Some(Level::Avx2),
            "scalar" => Some(Level::Scalar),
            _ => None,
        }
    }

    /// The CPU features this level needs that the CPU lacks (empty when it runs here).
    pub fn missing_features(self) -> Vec<&'static str> {
        #[cfg(target_arch = "x86_64")]
        {
            let need: &[&'static str] = match self {
                Level::Avx512 => &["avx512f"],
                Level::Avx2 => &["avx2", "fma"],
                Level::Scalar => &[],
            };
            need.iter().copied().filter(|f| !cpu_has(f)).collect()
        }
        #[cfg(not(target_arch = "x86_64"))]
        match self {
            Level::Scalar => Vec::new(),
            Level::Avx512 => vec!["avx512f (x86_64 only)"],
            Level::Avx2 => vec!["avx2 (x86_64 only)"],
        }
    }

    /// Whether this CPU runs the level's kernels.
    pub fn supported(self) -> bool {
        self.missing_features().is_empty()
    }

    /// The best level this CPU runs.
    pub fn detect() -> Self {
        [Level::Avx512, Level::Avx2]
            .into_iter()
            .find(|l| l.supported())
            .unwrap_or(Level::Scalar)
    }

    /// Every level this CPU runs, best first (for tests and benchmarks).
    pub fn all_supported() -> Vec<Self> {
        [Level::Avx512, Level::Avx2, Level::Scalar]
            .into_iter()
            .filter(|l| l.supported())
            .collect()
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(target_arch = "x86_64")]
fn cpu_has(feature: &str) -> bool {
    match feature {
        "avx512f" => is_x86_feature_detected!("avx512f"),
        "avx2" => is_x86_feature_detected!("avx2"),
        "fma" => is_x86_feature_detected!("fma"),
        _ => false,
    }
}

/// The level for a [`SIMD_ENV`] value (`None`: unset), checked against the CPU.
pub fn choose(forced: Option<&str>) -> Result<Level, String> {
    let Some(value) = forced.filter(|v| !v.trim().is_empty()) else {
        return Ok(Level::detect());
    };
    let level = Level::parse(value).ok_or_else(|| {
        format!("{SIMD_ENV}={value:?} is not one of \"avx512\", \"avx2\", \"scalar\"")
    })?;
    let missing = level.missing_features();
    if missing.is_empty() {
        Ok(level)
    } else {
        Err(format!(
            "{SIMD_ENV}={} needs CPU features this CPU lacks: {}",
            level.name(),
            missing.join(", ")
        ))
    }
}

/// The process's SIMD level: [`SIMD_ENV`] if set, else the best the CPU runs; an error when the
/// variable is malformed or names a level the CPU lacks. Read once; call it at start-up to
/// report a bad setting before any work starts.
pub fn simd_level() -> Result<Level, String> {
    static LEVEL: OnceLock<Result<Level, String>> = OnceLock::new();
    LEVEL
        .get_or_init(|| choose(std::env::var(SIMD_ENV).ok().as_deref()))
        .clone()
}

/// [`simd_level`] for the kernels' dispatch.
///
/// # Panics
/// When [`simd_level`] is an error (programs check it at start-up, so this is a last resort).
pub fn level() -> Level {
    simd_level().unwrap_or_else(|e| panic!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_refuses_unknown_ones() {
        for l in [Level::Avx512, Level::Avx2, Level::Scalar] {
            assert_eq!(Level::parse(l.name()), Some(l));
        }
        assert_eq!(Level::parse(" AVX2 "), Some(Level::Avx2));
        let err = choose(Some("sse9")).unwrap_err();
        assert!(err.contains(SIMD_ENV) && err.contains("sse9"), "{err}");
    }

    #[test]
    fn unset_means_the_best_supported_level() {
        assert_eq!(choose(None), Ok(Level::detect()));
        assert_eq!(choose(Some("")), Ok(Level::detect()));
        assert_eq!(Level::all_supported()[0], Level::detect());
        assert!(Level::all_supported().contains(&Level::Scalar));
        assert_eq!(choose(Some("scalar")), Ok(Level::Scalar));
    }

    #[test]
    fn forcing_a_level_follows_the_cpu() {
        for l in [Level::Avx512, Level::Avx2] {
            match choose(Some(l.name())) {
                Ok(got) => {
                    assert_eq!(got, l);
                    assert!(l.supported());
                }
                Err(e) => {
                    assert!(!l.supported());
                    assert!(e.contains(SIMD_ENV) && e.contains("lacks"), "{e}");
                }
            }
        }
    }
}
