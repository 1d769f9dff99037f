//! The teacher of the mean-teacher methods: an exponential moving average of the student's
//! parameters (SSL4MIS `update_ema_variables`).
//!
//! After the student's optimiser step `t` (t = steps taken before it, 0 for the first),
//! every learnable parameter becomes `θ' ← α·θ' + (1 − α)·θ` with
//! `α = min(1 − 1/(t + 1), decay)`, so the first update copies the student (α = 0). Batch-norm
//! running statistics are not averaged: SSL4MIS averages `ema_model.parameters()`, which
//! excludes buffers, and the teacher keeps the statistics of its own forward passes.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// Field names of buffers (batch-norm running statistics), which are not averaged.
const BUFFERS: [&str; 2] = ["running_mean", "running_var"];

/// The EMA factor of step `t`: `min(1 − 1/(t + 1), decay)`.
pub fn alpha(t: usize, decay: f64) -> f64 {
    (1.0 - 1.0 / (t as f64 + 1.0)).min(decay)
}

/// `teacher ← α·teacher + (1 − α)·student` over learnable parameters; the teacher's
/// parameters stay without gradient. Both networks must have the same structure.
pub fn update<M: Module>(teacher: M, student: &M, alpha: f64) -> M {
    let mut collect = Collect::default();
    student.visit(&mut collect);
    let mut mapper = Average {
        student: collect.values.into_iter(),
        path: Vec::new(),
        alpha,
    };
    teacher.map(&mut mapper)
}

/// The student's float tensors (buffers included, to keep the two walks aligned), flattened.
#[derive(Default)]
struct Collect {
    values: Vec<Tensor<1>>,
}

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val().inner();
        let n = t.shape().num_elements();
        self.values.push(t.reshape([n]));
    }
}

struct Average {
    student: std::vec::IntoIter<Tensor<1>>,
    /// Names of the entered fields.
    path: Vec<String>,
    alpha: f64,
}

impl ModuleMapper for Average {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let student = self
            .student
            .next()
            .expect("teacher and student have the same structure");
        if self
            .path
            .last()
            .is_some_and(|n| BUFFERS.contains(&n.as_str()))
        {
            return param;
        }
        let a = self.alpha;
        param.map(|t| {
            // Average the plain values and wrap the result as a fresh leaf: an untracked
            // autodiff op would still link the teacher to the student's graph nodes, which
            // kept every step's graph (and its activations) alive.
            let autodiff = t.device().is_autodiff();
            let dims = t.dims();
            let avg = t.inner().mul_scalar(a) + student.reshape(dims).mul_scalar(1.0 - a);
            if autodiff { avg.autodiff() } else { avg }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::*;
    use mgcc_model::{Backbone, BatchNorm2d, Heads, NetConfig};

    #[test]
    fn alpha_is_the_true_average_first_then_capped() {
        assert_eq!(alpha(0, 0.99), 0.0);
        assert_eq!(alpha(1, 0.99), 0.5);
        assert!((alpha(3, 0.99) - 0.75).abs() < 1e-15);
        assert_eq!(alpha(99, 0.99), 0.99);
        assert_eq!(alpha(5000, 0.99), 0.99);
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn update_averages_parameters_but_not_running_statistics() {
        let device = Device::flex();
        let mut teacher = BatchNorm2d::new(3, &device);
        let mut student = BatchNorm2d::new(3, &device);
        let set = |v: [f32; 3]| Param::from_tensor(Tensor::<1>::from_floats(v, &device));
        teacher.gamma = set([1.0, 2.0, 3.0]);
        student.gamma = set([3.0, 2.0, 1.0]);
        teacher.beta = set([0.0, 0.0, 0.0]);
        student.beta = set([1.0, -1.0, 4.0]);
        student.running_mean =
            burn::module::RunningState::new(Tensor::from_floats([9.0, 9.0, 9.0], &device));
        let out = update(teacher, &student, 0.75);
        // 0.75·teacher + 0.25·student, by hand.
        assert_eq!(values(out.gamma.val()), vec![1.5, 2.0, 2.5]);
        assert_eq!(values(out.beta.val()), vec![0.25, -0.25, 1.0]);
        assert_eq!(values(out.running_mean.value()), vec![0.0, 0.0, 0.0]);
        assert_eq!(values(out.running_var.value()), vec![1.0, 1.0, 1.0]);
    }

    #[test]
    fn alpha_zero_copies_the_student_network() {
        let _rng = crate::test_rng_lock();
        let device = Device::flex().autodiff();
        let cfg = NetConfig {
            backbone: Backbone::Unet,
            in_channels: 1,
            width: 2,
            heads: Heads::Single,
        };
        device.seed(1);
        let student = cfg.init(&device);
        let teacher = cfg.init(&device).no_grad();
        let teacher = update(teacher, &student, alpha(0, 0.99));
        let x = Tensor::<4>::ones([1, 1, 16, 16], &device);
        let a = values(student.valid().forward(x.clone().inner()));
        let b = values(teacher.valid().forward(x.inner()));
        assert_eq!(a, b);
    }
}
