//! Allocator settings for the CPU backend's allocation pattern.
//!
//! A training step allocates and frees hundreds of feature-map-sized tensors (megabytes each,
//! up to hundreds of megabytes for the gradients of Medfusion's denoiser). glibc serves large
//! blocks with fresh `mmap`s and unmaps them on `free`, so every step page-faults the same
//! memory in again and the kernel zeroes each 4 KiB page: ~6 % of a w16 MGCC step's CPU time,
//! and ~17 % of a Medfusion-size denoiser step, went to page faults and page clearing.
//!
//! * [`tune_for_tensors`] makes glibc serve every block from one heap (no per-block `mmap`,
//!   one arena for all threads) and keep up to 1 GiB of freed memory at the top of it, so freed
//!   tensor memory is reused instead of unmapped. With one arena per thread (glibc's default),
//!   a block freed by the thread that did not allocate it, or an inference forward run on a
//!   pool worker ([`crate::on_pool`]), fills a second heap that is faulted in and given back on
//!   its own.
//! * [`TensorAllocator`] (the `mgcc` binary's global allocator) asks for transparent huge
//!   pages on large blocks, so memory the heap does fault in comes 2 MiB at a time.
//!
//! Measured on Medfusion's sizes (`mgcc ldm bench --size 256 --unet-batch 4`, 2 threads,
//! against the previous settings, alternating): denoiser step −26 to −34 %, DDIM sampling −11
//! to −32 %, minor page faults 5.5 M → 0.2 M, peak memory 3.74 → 3.66 GiB
//! (docs/performance.md).

use std::alloc::{GlobalAlloc, Layout, System};

/// Largest mmap threshold glibc accepts on 64-bit targets (`HEAP_MAX_SIZE / 2`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Free memory at the top of the heap kept before trimming.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: i32 = 1 << 30;

/// Applies the glibc settings above (on Linux; elsewhere nothing). Returns whether they were
/// accepted. Call it once, early in `main`, before the first large allocation.
pub fn tune_for_tensors() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only changes allocator parameters; it is called before any thread
        // allocates concurrently and takes valid option/value pairs. `M_MMAP_MAX = 0` serves
        // every block from the heap; `M_ARENA_MAX = 1` makes that heap the main arena's for
        // every thread.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
                && libc::mallopt(libc::M_MMAP_MAX, 0) == 1
                && libc::mallopt(libc::M_ARENA_MAX, 1) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Blocks from this size on get transparent huge pages.
const HUGE_FROM: usize = 4 << 20;
/// Transparent huge page size (x86-64 and most aarch64 kernels).
const HUGE_PAGE: usize = 2 << 20;

/// The system allocator, with `madvise(MADV_HUGEPAGE)` on the whole 2 MiB pages inside every
/// block of at least 4 MiB (Linux; elsewhere the system allocator unchanged). The advice only
/// marks the address range; memory already faulted in is untouched. It matters where the
/// kernel's THP mode is `madvise` (Debian's default); with `always` it changes nothing, with
/// `never` the kernel ignores it.
#[derive(Debug, Default, Clone, Copy)]
pub struct TensorAllocator;

impl TensorAllocator {
    fn advise(ptr: *mut u8, size: usize) {
        if size < HUGE_FROM || ptr.is_null() {
            return;
        }
        #[cfg(target_os = "linux")]
        {
            let start = (ptr as usize).next_multiple_of(HUGE_PAGE);
            let end = (ptr as usize + size) / HUGE_PAGE * HUGE_PAGE;
            if end > start {
                // SAFETY: `[start, end)` lies inside the block just allocated; the advice
                // changes how its pages are faulted in, never their contents. A failure (THP
                // unsupported) leaves the block as it was, so the result is ignored.
                unsafe {
                    libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
                }
            }
        }
    }
}

// SAFETY: every block comes from `System` with the caller's layout and goes back to it; the
// advice does not change a block's address, size or contents.
unsafe impl GlobalAlloc for TensorAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded caller contract.
        let p = unsafe { System.alloc(layout) };
        Self::advise(p, layout.size());
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded caller contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        Self::advise(p, layout.size());
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded caller contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded caller contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        Self::advise(p, new_size);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks below and above the huge-page size round-trip their contents through alloc,
    /// realloc and dealloc.
    #[test]
    fn tensor_allocator_keeps_contents() {
        let a = TensorAllocator;
        for size in [64usize, HUGE_FROM - 8, HUGE_FROM + 3 * HUGE_PAGE + 5] {
            let layout = Layout::from_size_align(size, 64).unwrap();
            // SAFETY: non-zero size; the block is written and read within its bounds and
            // freed with the layout it has.
            unsafe {
                let p = a.alloc(layout);
                assert!(!p.is_null());
                assert_eq!(p as usize % 64, 0);
                for i in (0..size).step_by(4093) {
                    *p.add(i) = (i % 251) as u8;
                }
                let q = a.realloc(p, layout, size * 2);
                assert!(!q.is_null());
                for i in (0..size).step_by(4093) {
                    assert_eq!(*q.add(i), (i % 251) as u8, "byte {i} of {size}");
                }
                a.dealloc(q, Layout::from_size_align(size * 2, 64).unwrap());
                let z = a.alloc_zeroed(layout);
                assert!((0..size).step_by(4093).all(|i| *z.add(i) == 0));
                a.dealloc(z, layout);
            }
        }
    }
}
