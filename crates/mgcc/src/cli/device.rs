//! `--device` and `--threads`: the backend is picked at run time, the model code is the same for
//! all (spellings: `mgcc_train::device`).

use anyhow::{Result, bail};
use burn::prelude::Device;

/// Compute device options shared by the subcommands that run a network.
#[derive(clap::Args, Debug, Clone)]
pub struct DeviceArgs {
    /// cpu (burn's pure-Rust flex backend with mgcc's kernels); wgpu (the best GPU; `wgpu:N` the
    /// N-th discrete GPU, `wgpu:integrated`, `wgpu:cpu` a software Vulkan driver such as
    /// lavapipe; needs a build with `--features wgpu`); vulkan[:…] (the same with SPIR-V
    /// shaders, `--features vulkan`); cuda[:N] (`--features cuda`, which downloads LLVM at
    /// build time).
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
        mgcc_train::device::parse_device(&self.device).map_err(|e| anyhow::anyhow!("--device: {e}"))
    }

    /// A short name for reports.
    pub fn name(&self) -> String {
        self.device.clone()
    }
}
