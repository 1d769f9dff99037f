//! The `fast_batch_norm_train` backend extension: fused training-mode batch norm (+ ReLU) on
//! flex ([`crate::norm`]), with its own backward step on autodiff-over-flex.
//!
//! Non-f32 tensors fall back to burn's `batch_norm_train` (and `relu`).

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::{ActivationOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex, TensorMetadata, backend_extension};
use burn::tensor::TensorData;

use crate::flex_values::{is_f32, values};
use crate::norm::{self, Planes};

/// Backends that provide MGCC's fused training-mode batch norm.
#[backend_extension(Autodiff, Flex)]
pub trait FastBatchNormBackend: burn::backend::Backend {
    /// Training-mode batch norm of `x [B, C, H, W]` with batch statistics, followed by ReLU when
    /// `relu`; returns `(output, mean, biased variance)`.
    fn fast_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

fn tensor(values: Vec<f32>, shape: &[usize]) -> FloatTensor<Flex> {
    FloatTensor::<Flex>::from_data(TensorData::new(values, shape.to_vec()))
}

fn planes(x: &FloatTensor<Flex>) -> Planes {
    let s = x.shape();
    Planes {
        batch: s[0],
        channels: s[1],
        plane: s.num_elements() / (s[0] * s[1]).max(1),
    }
}

impl FastBatchNormBackend for Flex {
    fn fast_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        if !is_f32(&[&x, &gamma, &beta]) {
            let out = <Flex as ModuleOps<Flex>>::batch_norm_train(x, gamma, beta, epsilon);
            let y = if relu {
                <Flex as ActivationOps<Flex>>::relu(out.output)
            } else {
                out.output
            };
            return (y, out.mean, out.variance);
        }
        let p = planes(&x);
        let xv = values(&x);
        let (mean, var) = norm::statistics(p, &xv);
        let (scale, shift) = norm::affine(&values(&gamma), &values(&beta), &mean, &var, epsilon);
        let y = norm::apply(p, &xv, &scale, &shift, relu);
        let c = [p.channels];
        (tensor(y, &x.shape()), tensor(mean, &c), tensor(var, &c))
    }
}

/// Backward step of [`FastBatchNormBackend::fast_batch_norm_train`] on autodiff-over-flex.
#[derive(Debug)]
struct FastBatchNormBackward;

impl Backward<Flex, 3> for FastBatchNormBackward {
    /// Checkpointed x, γ, β; the batch mean and variance; ε; ReLU flag.
    type State = (
        NodeId,
        NodeId,
        NodeId,
        FloatTensor<Flex>,
        FloatTensor<Flex>,
        f64,
        bool,
    );

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x_id, gamma_id, beta_id, mean, var, eps, relu) = ops.state;
        let x: FloatTensor<Flex> = checkpointer.retrieve_node_output(x_id);
        let gamma: FloatTensor<Flex> = checkpointer.retrieve_node_output(gamma_id);
        let beta: FloatTensor<Flex> = checkpointer.retrieve_node_output(beta_id);
        let (dx, dgamma, dbeta) = if is_f32(&[&x, &gamma, &beta, &dy]) {
            let p = planes(&x);
            let (dx, dg, db) = norm::backward(
                p,
                &values(&x),
                &values(&dy),
                &values(&gamma),
                &values(&beta),
                &values(&mean),
                &values(&var),
                eps,
                relu,
            );
            let c = [p.channels];
            (tensor(dx, &x.shape()), tensor(dg, &c), tensor(db, &c))
        } else {
            let dy = if relu {
                let out = <Flex as ModuleOps<Flex>>::batch_norm_train(
                    x.clone(),
                    gamma.clone(),
                    beta,
                    eps,
                );
                <Flex as ActivationOps<Flex>>::relu_backward(
                    <Flex as ActivationOps<Flex>>::relu(out.output),
                    dy,
                )
            } else {
                dy
            };
            let b =
                <Flex as ModuleOps<Flex>>::batch_norm_train_backward(x, gamma, mean, var, eps, dy);
            (b.x_grad, b.gamma_grad, b.beta_grad)
        };
        for (node, grad) in [(node_x, dx), (node_gamma, dgamma), (node_beta, dbeta)] {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, grad);
            }
        }
    }
}

impl<C: CheckpointStrategy> FastBatchNormBackend for Autodiff<Flex, C> {
    fn fast_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        match FastBatchNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let gamma_state = prep.checkpoint(&gamma);
                let beta_state = prep.checkpoint(&beta);
                let (y, mean, var) = Flex::fast_batch_norm_train(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                    relu,
                );
                let state = (
                    x_state,
                    gamma_state,
                    beta_state,
                    mean.clone(),
                    var.clone(),
                    epsilon,
                    relu,
                );
                (
                    prep.finish(state, y),
                    FloatTensor::<Self>::new(mean),
                    FloatTensor::<Self>::new(var),
                )
            }
            OpsKind::UnTracked(prep) => {
                let (y, mean, var) = Flex::fast_batch_norm_train(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                    relu,
                );
                (
                    prep.finish(y),
                    FloatTensor::<Self>::new(mean),
                    FloatTensor::<Self>::new(var),
                )
            }
        }
    }
}
