//! mgcc-eval: segmentation metrics (documented definitions plus the published compat mode),
//! overlays and validation panels, and evaluation reports.

pub mod evaluate;
pub mod infer;
pub mod metrics;
pub mod overlay;
pub mod predict;
pub mod report;

pub use evaluate::{EvalOptions, evaluate, evaluate_each, write_reports};
pub use infer::{InferError, InputSpec, Prediction, predict_image};
pub use predict::{PredictOptions, PredictReport, Predicted, predict};
