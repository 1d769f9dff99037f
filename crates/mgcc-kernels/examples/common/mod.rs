//! Set-up and CPU-time measurement shared by the kernel benchmarks.

/// The allocator settings of the `mgcc` binary and a global rayon pool of `threads` threads.
pub fn setup(threads: usize) {
    mgcc_kernels::allocator::tune_for_tensors();
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .ok();
}

/// User + system CPU time of this process (from `/proc/self/stat`, 100 Hz ticks).
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}
