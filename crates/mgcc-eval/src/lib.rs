//! mgcc-eval: segmentation metrics (documented definitions plus the published compat mode),
//! overlays and validation panels, and evaluation reports.

pub mod metrics;
pub mod overlay;
pub mod report;
