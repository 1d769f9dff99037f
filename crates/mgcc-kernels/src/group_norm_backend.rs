//! The `fast_group_norm` backend extension: fused group norm (+ SiLU) on flex
//! ([`crate::group_norm`]), with its own backward step on autodiff-over-flex.
//!
//! burn's `GroupNorm` followed by `silu` is about nine elementwise passes forward, more
//! backward, and keeps four or five full-size intermediates for the backward pass; this keeps
//! only the input and two numbers per (sample, group), and recomputes the rest.
//!
//! The kernels are f32; other dtypes are computed in f32 and cast back.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex, TensorMetadata, backend_extension};
use burn::tensor::{DType, FloatDType, TensorData};

use crate::flex_values::values;
use crate::group_norm::{self, Groups};

/// Backends that provide MGCC's fused group norm.
#[backend_extension(Autodiff, Flex)]
pub trait FastGroupNormBackend: burn::backend::Backend {
    /// Affine group norm of `x [B, C, …]` with `groups` groups (dividing `C`), biased
    /// variance and `epsilon`, followed by SiLU when `silu`.
    fn fast_group_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        epsilon: f64,
        silu: bool,
    ) -> FloatTensor<Self>;
}

fn tensor(values: Vec<f32>, shape: &[usize]) -> FloatTensor<Flex> {
    FloatTensor::<Flex>::from_data(TensorData::new(values, shape.to_vec()))
}

fn layout(x: &FloatTensor<Flex>, groups: usize) -> Groups {
    let s = x.shape();
    let (batch, channels) = (s[0], s[1]);
    Groups {
        batch,
        channels,
        groups,
        plane: s.num_elements() / (batch * channels).max(1),
    }
}

/// `t` as f32 and its original dtype.
fn as_f32(t: FloatTensor<Flex>) -> (FloatTensor<Flex>, DType) {
    let dtype = t.dtype();
    if dtype == DType::F32 {
        (t, dtype)
    } else {
        (Flex::float_cast(t, FloatDType::F32), dtype)
    }
}

/// `t` cast back to `dtype`.
fn cast_back(t: FloatTensor<Flex>, dtype: DType) -> FloatTensor<Flex> {
    if dtype == DType::F32 {
        t
    } else {
        Flex::float_cast(t, dtype.into())
    }
}

/// Forward on flex: `(y, mean, rstd)`, the statistics `[B·G]` f32.
fn forward(
    x: FloatTensor<Flex>,
    gamma: FloatTensor<Flex>,
    beta: FloatTensor<Flex>,
    groups: usize,
    epsilon: f64,
    silu: bool,
) -> (FloatTensor<Flex>, FloatTensor<Flex>, FloatTensor<Flex>) {
    let (x, dtype) = as_f32(x);
    let (gamma, beta) = (as_f32(gamma).0, as_f32(beta).0);
    let p = layout(&x, groups);
    let (y, mean, rstd) = group_norm::forward(
        p,
        &values(&x),
        &values(&gamma),
        &values(&beta),
        epsilon,
        silu,
    );
    let stats = [p.batch * p.groups];
    (
        cast_back(tensor(y, &x.shape()), dtype),
        tensor(mean, &stats),
        tensor(rstd, &stats),
    )
}

impl FastGroupNormBackend for Flex {
    fn fast_group_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        epsilon: f64,
        silu: bool,
    ) -> FloatTensor<Self> {
        forward(x, gamma, beta, groups, epsilon, silu).0
    }
}

/// Backward step of [`FastGroupNormBackend::fast_group_norm`] on autodiff-over-flex.
#[derive(Debug)]
struct FastGroupNormBackward;

impl Backward<Flex, 3> for FastGroupNormBackward {
    /// Checkpointed x, γ, β; the mean and `1/√(σ² + ε)` per (sample, group); groups; SiLU flag.
    type State = (
        NodeId,
        NodeId,
        NodeId,
        FloatTensor<Flex>,
        FloatTensor<Flex>,
        usize,
        bool,
    );

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let (dy, _) = as_f32(grads.consume::<Flex>(&ops.node));
        let (x_id, gamma_id, beta_id, mean, rstd, groups, silu) = ops.state;
        let (x, dtype) = as_f32(checkpointer.retrieve_node_output(x_id));
        let (gamma, gamma_dtype) = as_f32(checkpointer.retrieve_node_output(gamma_id));
        let (beta, beta_dtype) = as_f32(checkpointer.retrieve_node_output(beta_id));
        let p = layout(&x, groups);
        let (dx, dgamma, dbeta) = group_norm::backward(
            p,
            &values(&x),
            &values(&gamma),
            &values(&beta),
            &values(&mean),
            &values(&rstd),
            &values(&dy),
            silu,
        );
        let c = [p.channels];
        let grads_out = [
            (node_x, cast_back(tensor(dx, &x.shape()), dtype)),
            (node_gamma, cast_back(tensor(dgamma, &c), gamma_dtype)),
            (node_beta, cast_back(tensor(dbeta, &c), beta_dtype)),
        ];
        for (node, grad) in grads_out {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, grad);
            }
        }
    }
}

impl<C: CheckpointStrategy> FastGroupNormBackend for Autodiff<Flex, C> {
    fn fast_group_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        epsilon: f64,
        silu: bool,
    ) -> FloatTensor<Self> {
        match FastGroupNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let gamma_state = prep.checkpoint(&gamma);
                let beta_state = prep.checkpoint(&beta);
                let (y, mean, rstd) = forward(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    groups,
                    epsilon,
                    silu,
                );
                let state = (x_state, gamma_state, beta_state, mean, rstd, groups, silu);
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::fast_group_norm(
                x.into_primitive(),
                gamma.into_primitive(),
                beta.into_primitive(),
                groups,
                epsilon,
                silu,
            )),
        }
    }
}
