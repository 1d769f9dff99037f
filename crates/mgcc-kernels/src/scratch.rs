//! A small process-wide pool of f32 scratch buffers (padded images), so that every convolution
//! does not page-fault in fresh zeroed memory. Buffers come back with unspecified contents.

use std::sync::Mutex;

/// Buffers kept at most; the smallest is dropped beyond that.
const KEEP: usize = 32;

static POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// A buffer of length `n` with unspecified (initialised) contents.
pub fn take(n: usize) -> Vec<f32> {
    let found = {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        let best = pool
            .iter()
            .enumerate()
            .filter(|(_, v)| v.capacity() >= n)
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i);
        best.map(|i| pool.swap_remove(i))
    };
    match found {
        Some(mut v) => {
            if v.len() < n {
                // Initialised once up to the capacity, so later reuses never zero-fill again.
                v.resize(v.capacity(), 0.0);
            }
            v.truncate(n);
            v
        }
        None => vec![0.0; n],
    }
}

/// Returns a buffer to the pool.
pub fn give(v: Vec<f32>) {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    pool.push(v);
    if pool.len() > KEEP {
        let smallest = pool
            .iter()
            .enumerate()
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i)
            .unwrap_or(0);
        pool.swap_remove(smallest);
    }
}
