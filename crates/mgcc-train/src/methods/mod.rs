//! The training methods, one file each, as SSL4MIS keeps one script per baseline. A method is
//! a loss over one batch; the run machinery (data stream, schedules, optimiser steps,
//! checkpoints, validation) is shared and lives in [`crate::learner`] and [`crate::trainer`].
//!
//! Every method minimises `total = supervised + w(t)·consistency`, with `w(t)` the ramp of
//! [`crate::schedule::consistency_weight`] up to the method's maximum weight C, and reports
//! both terms. The supervised term is the published MGCC code's BCE+Dice
//! ([`crate::loss::bce_dice`]) for every method (SSL4MIS uses 2-class CE+Dice with softmax; a
//! single sigmoid channel is the same model of a binary mask), so methods differ only in what
//! they add.

pub mod cps;
pub mod cross_consistency;
pub mod ema;
pub mod mean_teacher;
pub mod supervised;
pub mod ua_mt;
pub mod urpc;

use burn::prelude::*;

use crate::loss::bce_dice;

/// One batch and where training stands.
#[derive(Debug, Clone)]
pub struct StepInput {
    /// `B×C×S×S`, the `n_labeled` labelled images first.
    pub images: Tensor<4>,
    /// `n_labeled×1×S×S` in {0, 1}.
    pub masks: Tensor<4>,
    pub n_labeled: usize,
    /// Optimiser steps already taken (0 for the first step).
    pub t: usize,
    /// Total steps T of the run.
    pub total: usize,
    /// Consistency weight w(t) of this step.
    pub weight: f64,
}

impl StepInput {
    /// Unlabelled images in the batch.
    pub fn n_unlabeled(&self) -> usize {
        self.images.dims()[0] - self.n_labeled
    }

    /// The unlabelled images `U×C×S×S`.
    pub fn unlabeled_images(&self) -> Tensor<4> {
        self.images
            .clone()
            .narrow(0, self.n_labeled, self.n_unlabeled())
    }
}

/// The loss of one batch as scalars `[1]`: `total = supervised + weight·consistency`.
#[derive(Debug, Clone)]
pub struct MethodLoss {
    pub total: Tensor<1>,
    pub supervised: Tensor<1>,
    pub consistency: Tensor<1>,
}

impl MethodLoss {
    /// `supervised + weight·consistency`.
    pub fn new(supervised: Tensor<1>, consistency: Tensor<1>, weight: f64) -> Self {
        Self {
            total: supervised.clone() + consistency.clone().mul_scalar(weight),
            supervised,
            consistency,
        }
    }

    /// A supervised-only loss (consistency 0).
    pub fn supervised_only(supervised: Tensor<1>) -> Self {
        let zero = supervised.zeros_like();
        Self {
            total: supervised.clone(),
            supervised,
            consistency: zero,
        }
    }
}

/// Rows `[n_labeled..]` of a batch tensor.
pub fn unlabeled_part(t: Tensor<4>, n_labeled: usize) -> Tensor<4> {
    let b = t.dims()[0];
    t.narrow(0, n_labeled, b - n_labeled)
}

/// Rows `[..n_labeled]` of a batch tensor.
pub fn labeled_part(t: Tensor<4>, n_labeled: usize) -> Tensor<4> {
    t.narrow(0, 0, n_labeled)
}

/// Mean over `outputs` of BCE+Dice on the labelled rows (deep supervision of every decoder).
pub fn supervised_mean(outputs: &[Tensor<4>], masks: &Tensor<4>, n_labeled: usize) -> Tensor<1> {
    outputs
        .iter()
        .map(|o| bce_dice(labeled_part(o.clone(), n_labeled), masks.clone()))
        .reduce(|a, b| a + b)
        .expect("at least one output")
        .div_scalar(outputs.len() as f64)
}

#[cfg(test)]
pub(crate) mod test_util {
    use burn::prelude::*;

    /// A `[n, 1, 1, k]` tensor from values, on flex.
    pub fn t4(values: &[f64], shape: [usize; 4]) -> Tensor<4> {
        let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
        Tensor::from_data(TensorData::new(v, shape), &Device::flex())
    }

    pub fn sig(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    pub fn scalar(t: Tensor<1>) -> f64 {
        t.into_scalar::<f32>() as f64
    }
}
