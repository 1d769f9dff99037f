//! Running a unit of tensor work on a worker of rayon's global pool.
//!
//! Every kernel spreads its work with rayon. Called from a thread outside the pool (the
//! program's main thread), each parallel section is injected into the pool's queue, the idle
//! workers are woken, and the caller sleeps until a worker wakes it again: two cross-thread
//! wake-ups per operation, which at batch-1 inference (hundreds of small operations) cost about
//! a tenth of the time. Run on a worker, the same section starts on the calling thread at once
//! and the other workers steal from it.

/// Runs `f` on a worker of rayon's global pool (directly when the caller already is one) and
/// returns its result.
///
/// Meant for inference forwards, and for training steps of networks without batch norm (the
/// autoencoder's and the denoiser's: about a tenth faster at the CPU preset). Not for:
/// * work that blocks on something that needs the pool to progress (a channel fed by a thread
///   that itself uses rayon, such as the data loader): with one worker it would never return;
/// * training steps of networks with batch norm: burn keeps a running-statistics update pending
///   per thread (`RunningState`) and merges the pending updates of different threads by
///   averaging, while successive calls here may land on different workers.
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        f()
    } else {
        rayon::scope(|_| f())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_on_a_worker_and_returns_the_value() {
        assert!(rayon::current_thread_index().is_none());
        let (inside, v) = on_pool(|| (rayon::current_thread_index(), 6 * 7));
        assert!(inside.is_some(), "f did not run on a pool worker");
        assert_eq!(v, 42);
        // Nested calls run in place.
        let nested = on_pool(|| {
            let outer = rayon::current_thread_index();
            on_pool(move || rayon::current_thread_index() == outer)
        });
        assert!(nested);
    }

    #[test]
    fn works_with_a_one_thread_pool() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let sum: u64 = pool.install(|| on_pool(|| (0..1000u64).map(|i| i * i).sum()));
        assert_eq!(sum, 332_833_500);
    }
}
