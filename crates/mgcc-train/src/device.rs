//! Compute devices by name, as `--device` spells them, and what a GPU device reports.
//!
//! | spelling | device | build |
//! |---|---|---|
//! | `cpu` (`flex`) | burn's flex backend with mgcc's CPU kernels | always |
//! | `wgpu`, `wgpu:N`, `wgpu:integrated[:N]`, `wgpu:cpu` | burn's wgpu backend, WGSL shaders, on the best GPU, the N-th discrete GPU, an integrated GPU, or a software adapter such as Mesa's lavapipe | `--features wgpu` |
//! | `vulkan`, `vulkan:N`, … | the same pinned to Vulkan with SPIR-V shaders | `--features vulkan` |
//! | `cuda`, `cuda:N` | burn's CUDA backend | `--features cuda` (downloads LLVM when built) |
//!
//! The model code is the same on every device; mgcc's own kernels run on flex only, so a GPU
//! runs burn's ops (see docs/gpu.md).

use burn::tensor::Device;
#[cfg(any(feature = "wgpu", feature = "vulkan"))]
use burn::tensor::DeviceKind;

/// The device named by `spec` (see the module docs), or why not.
pub fn parse_device(spec: &str) -> Result<Device, String> {
    let (api, rest) = match spec.split_once(':') {
        Some((api, rest)) => (api, Some(rest)),
        None => (spec, None),
    };
    match api {
        "cpu" | "flex" if rest.is_none() => Ok(Device::flex()),
        "wgpu" => wgpu(rest),
        "vulkan" => vulkan(rest),
        "cuda" => cuda(rest),
        _ => Err(format!(
            "unknown device '{spec}': expected cpu, wgpu[:N|:integrated|:cpu], vulkan[:N|:integrated|:cpu] or cuda[:N]"
        )),
    }
}

/// The adapter a wgpu/vulkan spelling selects: `None` → the best GPU (or
/// `CUBECL_WGPU_DEFAULT_DEVICE`), `N` → the N-th discrete GPU, `integrated[:N]`, `cpu`.
#[cfg(any(feature = "wgpu", feature = "vulkan"))]
fn adapter(rest: Option<&str>) -> Result<DeviceKind, String> {
    let index = |s: &str| {
        s.parse::<usize>()
            .map_err(|_| format!("'{s}' is not an adapter index"))
    };
    Ok(match rest {
        None => DeviceKind::DefaultDevice,
        Some("cpu") => DeviceKind::Cpu,
        Some("integrated") => DeviceKind::IntegratedGpu(0),
        Some(s) => match s.strip_prefix("integrated:") {
            Some(i) => DeviceKind::IntegratedGpu(index(i)?),
            None => DeviceKind::DiscreteGpu(index(s)?),
        },
    })
}

#[cfg(feature = "wgpu")]
fn wgpu(rest: Option<&str>) -> Result<Device, String> {
    Ok(Device::wgpu(adapter(rest)?))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu(_: Option<&str>) -> Result<Device, String> {
    Err("this mgcc was built without wgpu support: rebuild with `cargo build --release --features wgpu`".into())
}

#[cfg(feature = "vulkan")]
fn vulkan(rest: Option<&str>) -> Result<Device, String> {
    Ok(Device::vulkan(adapter(rest)?))
}

#[cfg(not(feature = "vulkan"))]
fn vulkan(_: Option<&str>) -> Result<Device, String> {
    Err("this mgcc was built without Vulkan (SPIR-V) support: rebuild with `cargo build --release --features vulkan`, or use `--device wgpu` of a `--features wgpu` build".into())
}

#[cfg(feature = "cuda")]
fn cuda(rest: Option<&str>) -> Result<Device, String> {
    let index = match rest {
        None => 0,
        Some(s) => s
            .parse::<usize>()
            .map_err(|_| format!("'{s}' is not a CUDA device index"))?,
    };
    Ok(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda(_: Option<&str>) -> Result<Device, String> {
    Err("this mgcc was built without CUDA support: rebuild with `cargo build --release --features cuda` (needs internet access at build time)".into())
}

/// Whether `device` is a GPU (a cubecl device), with or without autodiff.
pub fn is_gpu(device: &Device) -> bool {
    device.clone().without_autodiff() != Device::flex()
}

/// The adapter's own name (`NVIDIA H200`, `llvmpipe (LLVM 15.0.6, 256 bits)`), where the backend
/// reports one.
#[cfg(any(feature = "wgpu", feature = "vulkan", feature = "cuda"))]
pub fn adapter_name(device: &Device) -> Option<String> {
    if !is_gpu(device) {
        return None;
    }
    device.clone().without_autodiff().identity().map(|i| i.name)
}

/// The adapter's own name; `None` in a build without a GPU backend.
#[cfg(not(any(feature = "wgpu", feature = "vulkan", feature = "cuda")))]
pub fn adapter_name(_: &Device) -> Option<String> {
    None
}

/// Device memory the GPU allocator holds now, in MiB: `(in use, reserved)`. Reserved is what
/// the pools took from the device (at least the peak in use, since pages are kept for reuse).
/// `None` on the CPU.
pub fn gpu_memory_mib(device: &Device) -> Option<(f64, f64)> {
    if !is_gpu(device) {
        return None;
    }
    let usage = device.clone().without_autodiff().memory_pool_usage()?;
    let mib = |b: u64| (b as f64 / 1048576.0 * 10.0).round() / 10.0;
    Some((mib(usage.bytes_in_use), mib(usage.bytes_reserved)))
}

/// Sets cubecl's autotune level (`minimal`, `balanced`, `extensive`, `full`) for this process
/// unless `CUBECL_AUTOTUNE_LEVEL` already chooses one; must run before the first GPU device
/// is used. Returns false when the configuration was already fixed.
#[cfg(any(feature = "wgpu", feature = "vulkan", feature = "cuda"))]
pub fn set_autotune_level(level: &str) -> bool {
    use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig, autotune::AutotuneLevel};
    if std::env::var_os("CUBECL_AUTOTUNE_LEVEL").is_some() {
        return false;
    }
    let level = match level {
        "minimal" => AutotuneLevel::Minimal,
        "extensive" => AutotuneLevel::Extensive,
        "full" => AutotuneLevel::Full,
        _ => AutotuneLevel::Balanced,
    };
    let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
    config.autotune.level = level;
    CubeClRuntimeConfig::try_set(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_spellings_give_flex() {
        assert!(parse_device("cpu").unwrap() == Device::flex());
        assert!(parse_device("flex").unwrap() == Device::flex());
        assert!(!is_gpu(&Device::flex().autodiff()));
        assert_eq!(gpu_memory_mib(&Device::flex()), None);
    }

    #[test]
    fn unknown_spellings_are_refused_with_the_choices() {
        for bad in ["gpu", "cpu:1", "", "metal"] {
            let err = parse_device(bad).unwrap_err();
            assert!(err.contains("expected cpu, wgpu"), "{bad}: {err}");
        }
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn a_backend_left_out_of_the_build_says_how_to_get_it() {
        let err = parse_device("cuda:0").unwrap_err();
        assert!(err.contains("--features cuda"), "{err}");
    }

    #[cfg(any(feature = "wgpu", feature = "vulkan"))]
    #[test]
    fn adapter_spellings() {
        assert!(matches!(adapter(None), Ok(DeviceKind::DefaultDevice)));
        assert!(matches!(adapter(Some("cpu")), Ok(DeviceKind::Cpu)));
        assert!(matches!(adapter(Some("2")), Ok(DeviceKind::DiscreteGpu(2))));
        assert!(matches!(
            adapter(Some("integrated")),
            Ok(DeviceKind::IntegratedGpu(0))
        ));
        assert!(matches!(
            adapter(Some("integrated:1")),
            Ok(DeviceKind::IntegratedGpu(1))
        ));
        assert!(adapter(Some("x")).unwrap_err().contains("'x'"));
        assert!(adapter(Some("integrated:y")).unwrap_err().contains("'y'"));
    }
}
