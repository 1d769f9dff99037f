//! Comparison experiments: the plan of runs (methods × labelled shares × splits × seeds, with
//! and without generated images), its execution sharded over processes, machines or a SLURM
//! array with one claim per run, and the report (CSV, Markdown tables, plot, self-contained
//! HTML).

pub mod claim;
pub mod error;
pub mod fsutil;
pub mod plan;
pub mod report;
pub mod runner;
pub mod share;
pub mod slurm;

pub use error::ExperimentError;
pub use plan::{Plan, PlanSpec, PlannedRun};
pub use runner::{ExecOptions, ExecSummary, execute};
pub use share::Share;
