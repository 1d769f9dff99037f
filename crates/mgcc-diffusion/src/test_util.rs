//! Test helpers.

use std::sync::{Mutex, MutexGuard};

static RNG: Mutex<()> = Mutex::new(());

/// Serialises tests that draw random numbers: flex's RNG is one process-wide generator, so a
/// test that seeds it and expects reproducible draws must not interleave with other draws.
pub(crate) fn rng_lock() -> MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
