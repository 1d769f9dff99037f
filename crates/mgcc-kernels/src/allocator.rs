//! Allocator settings for the CPU backend's allocation pattern.
//!
//! A training step allocates and frees hundreds of feature-map-sized tensors (megabytes each).
//! glibc serves such sizes with fresh `mmap`s and unmaps them on `free`, so every step
//! page-faults the same memory in again (the kernel zeroes each page: ~6 % of a w16 training
//! step's CPU time went to page faults and page clearing). Raising the mmap threshold to its
//! maximum and the trim threshold keeps freed memory in the heap for reuse. Peak memory is
//! unchanged; memory freed after the peak is returned later.

/// Largest mmap threshold glibc accepts on 64-bit targets (`HEAP_MAX_SIZE / 2`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Free memory at the top of the heap kept before trimming.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: i32 = 1 << 30;

/// Applies the settings above (glibc on Linux; elsewhere nothing). Returns whether they were
/// accepted. Call it once, early in `main`, before the first large allocation.
pub fn tune_for_tensors() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only changes allocator parameters; it is called before any thread
        // allocates concurrently and takes valid option/value pairs.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
