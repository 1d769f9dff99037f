//! A small process-wide pool of f32 scratch buffers (padded images, packed weights), so that
//! every convolution neither page-faults in fresh memory nor zero-fills it. Buffers come back
//! with unspecified (initialised) contents and keep their full length, so a buffer serves any
//! later request up to that length without being re-initialised.

use std::sync::Mutex;

use rayon::prelude::*;

/// Buffers kept at most; the smallest is dropped beyond that.
const KEEP: usize = 32;
/// Bytes kept at most (large models' buffers beyond it are freed, bounding peak memory);
/// the largest buffer is dropped beyond that.
const KEEP_BYTES: usize = 256 << 20;

static POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// A buffer of **at least** `n` values with unspecified (initialised) contents; callers use
/// its first `n` values.
pub fn take(n: usize) -> Vec<f32> {
    let found = {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        let best = pool
            .iter()
            .enumerate()
            .filter(|(_, v)| v.len() >= n)
            .min_by_key(|(_, v)| v.len())
            .map(|(i, _)| i);
        best.map(|i| pool.swap_remove(i))
    };
    found.unwrap_or_else(|| {
        // A new buffer, zero-filled in parallel (large ones would otherwise be zeroed on the
        // calling thread while the pool waits).
        let mut v: Vec<f32> = Vec::with_capacity(n);
        v.spare_capacity_mut()[..n]
            .par_chunks_mut(1 << 16)
            .for_each(|c| c.fill(std::mem::MaybeUninit::new(0.0)));
        // SAFETY: the first `n` values were written just above.
        unsafe { v.set_len(n) };
        v
    })
}

/// Returns a buffer to the pool.
pub fn give(v: Vec<f32>) {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    pool.push(v);
    // Index of the shortest (`longest = false`) or longest buffer.
    let extreme = |pool: &[Vec<f32>], longest: bool| {
        let lens = pool.iter().map(Vec::len).enumerate();
        let pick = if longest {
            lens.max_by_key(|&(_, n)| n)
        } else {
            lens.min_by_key(|&(_, n)| n)
        };
        pick.map_or(0, |(i, _)| i)
    };
    if pool.len() > KEEP {
        let i = extreme(&pool, false);
        pool.swap_remove(i);
    }
    while pool.iter().map(|v| v.len() * 4).sum::<usize>() > KEEP_BYTES {
        let i = extreme(&pool, true);
        pool.swap_remove(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_buffer_serves_smaller_and_equal_requests_whole() {
        let n = 1 << 20;
        let mut a = take(n);
        assert!(a.len() >= n);
        a.fill(1.5);
        let addr = a.as_ptr() as usize;
        let len = a.len();
        give(a);
        // The pool may hold other tests' buffers: look for ours among a few takes.
        let again: Vec<Vec<f32>> = (0..KEEP + 1).map(|_| take(n / 2)).collect();
        let ours = again.iter().find(|v| v.as_ptr() as usize == addr);
        assert!(ours.is_some_and(|v| v.len() == len && v[n - 1] == 1.5));
        again.into_iter().for_each(give);
    }
}
