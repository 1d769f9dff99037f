//! mgcc-data: ultrasound dataset layouts, BUSI import, integrity checks, train/val splits,
//! augmentation and the two-stream (labelled + unlabelled) batch loader. No burn dependency:
//! batches are plain `Vec<f32>` in NCHW order.

pub mod augment;
pub mod check;
pub mod error;
pub mod eval_set;
pub mod image_io;
pub mod import;
pub mod layout;
pub mod loader;
pub mod manifest;
pub mod mask;
pub mod phantom;
pub mod safe_fs;
pub mod seeding;
pub mod split;
pub mod transform;
pub mod validate;

#[cfg(test)]
pub(crate) mod test_util;

pub use augment::{Augment, AugmentPolicy, Flip};
pub use check::{CheckReport, Problem, ProblemKind, check_dataset};
pub use error::{DataError, ImageFault, Result};
pub use eval_set::{EvalSample, load_eval_samples};
pub use import::{ImportOptions, ImportSummary, import_busi};
pub use layout::{Dataset, Sample, unlabeled_images};
pub use loader::{Batch, LoaderConfig, TwoStreamLoader};
pub use manifest::ManifestRow;
pub use split::{SplitOptions, SplitSet, read_split, write_splits};
pub use transform::{Channels, preprocess_image};
pub use validate::{validate_images, validate_samples};
