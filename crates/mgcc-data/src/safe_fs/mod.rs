//! File-system rules every command follows, so that no command destroys a file it did not
//! create or leaves half-written output behind (docs/reliability.md):
//!
//! - [`atomic`]: every file is written through a temporary name and renamed into place;
//! - [`ledger`]: a folder's record of the files mgcc wrote there — only those may be replaced
//!   (`--force`), and outputs of an interrupted invocation may be replaced by its rerun;
//! - [`staging`]: all-or-nothing outputs (a dataset) are built in a sibling folder and renamed
//!   into place once complete;
//! - [`lock`]: one writer per folder, with a lock file naming the holder; a dead holder's lock
//!   is taken over;
//! - [`paths`]: refusing outputs that are, or contain, an input.

pub mod atomic;
pub mod ledger;
pub mod lock;
pub mod paths;
pub mod staging;

pub use atomic::{save_png_atomic, write_atomic};
pub use ledger::Ledger;
pub use lock::{FolderLock, Holder, LockResult, try_lock};
pub use paths::refuse_output_over_input;
pub use staging::Staging;
