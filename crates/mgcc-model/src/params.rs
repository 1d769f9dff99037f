//! Counting learnable parameters.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// Field names of buffers that `Module::num_params` counts but no optimiser updates.
const BUFFERS: [&str; 2] = ["running_mean", "running_var"];

/// Sums the sizes of a module's float parameters except those stored in `running_mean` /
/// `running_var` fields (batch-norm running statistics).
pub fn num_learnable_params<M: Module>(module: &M) -> usize {
    let mut counter = Counter::default();
    module.visit(&mut counter);
    counter.learnable
}

#[derive(Default)]
struct Counter {
    /// For each entered field: whether it is a buffer.
    in_buffer: Vec<bool>,
    learnable: usize,
}

impl ModuleVisitor for Counter {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.in_buffer.push(BUFFERS.contains(&name));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.in_buffer.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if !self.in_buffer.last().copied().unwrap_or(false) {
            self.learnable += param.lazy_shape().num_elements();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch_norm::BatchNorm2d;
    use burn::tensor::Device;

    #[test]
    fn batch_norm_counts_only_gamma_and_beta() {
        let bn = BatchNorm2d::new(7, &Device::flex());
        assert_eq!(num_learnable_params(&bn), 14);
        assert_eq!(bn.num_params(), 28);
    }
}
