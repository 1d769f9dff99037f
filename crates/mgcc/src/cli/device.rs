//! `--device cpu|vulkan|cuda` and `--threads`: the backend is picked at run time, the model code
//! is the same for all.

use anyhow::{Result, bail};
use burn::prelude::Device;

/// Compute device options shared by the subcommands that run a network.
#[derive(clap::Args, Debug, Clone)]
pub struct DeviceArgs {
    /// cpu (burn's pure-Rust flex backend), vulkan (needs a build with `--features vulkan`) or
    /// cuda (needs `--features cuda`, which downloads LLVM at build time).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// CPU threads for the cpu device and for data loading (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl DeviceArgs {
    /// Set up the thread pool and return the device.
    pub fn init(&self) -> Result<Device> {
        if let Some(n) = self.threads {
            if n == 0 {
                bail!("--threads must be at least 1");
            }
            // Fails only if the global pool was already built, which happens once per process.
            let _ = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build_global();
        }
        match self.device.as_str() {
            "cpu" | "flex" => Ok(Device::flex()),
            "vulkan" => vulkan(),
            "cuda" => cuda(),
            other => bail!("unknown --device '{other}': expected cpu, vulkan or cuda"),
        }
    }

    /// A short name for reports.
    pub fn name(&self) -> String {
        self.device.clone()
    }
}

#[cfg(feature = "vulkan")]
fn vulkan() -> Result<Device> {
    Ok(Device::vulkan(Default::default()))
}

#[cfg(not(feature = "vulkan"))]
fn vulkan() -> Result<Device> {
    bail!(
        "this mgcc was built without Vulkan support: rebuild with `cargo build --release --features vulkan`"
    )
}

#[cfg(feature = "cuda")]
fn cuda() -> Result<Device> {
    Ok(Device::cuda(0))
}

#[cfg(not(feature = "cuda"))]
fn cuda() -> Result<Device> {
    bail!(
        "this mgcc was built without CUDA support: rebuild with `cargo build --release --features cuda` (needs internet access at build time)"
    )
}
