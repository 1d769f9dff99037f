//! A raw pointer that rayon tasks may share, each writing its own disjoint part of a buffer.

/// A raw pointer that may cross threads; each task writes a disjoint part of the buffer.
#[derive(Clone, Copy)]
pub(crate) struct SyncPtr(pub(crate) *mut f32);
// SAFETY: used only to hand disjoint output regions to rayon tasks.
unsafe impl Send for SyncPtr {}
// SAFETY: as above.
unsafe impl Sync for SyncPtr {}

impl SyncPtr {
    /// The pointer (a method, so that closures capture the whole `Send` wrapper).
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}
