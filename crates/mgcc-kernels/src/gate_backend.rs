//! The `fast_sigmoid_gate` backend extension: `x + x·sigmoid(z)` (the attention gate's output)
//! as one parallel elementwise pass on flex instead of three serial burn ops, and on
//! autodiff-over-flex with its own backward (one parallel pass instead of about six serial ones):
//! `∂/∂x = 1 + σ(z)`, `∂/∂z = x·σ(z)·(1 − σ(z))`. The sigmoid is the vectorised one of
//! [`crate::vector_math`].

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::ActivationOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex, TensorMetadata, backend_extension};
use burn::tensor::{DType, TensorData};
use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::vector_math::{per_level, sigmoid};

/// Backends that provide MGCC's fused gate output.
#[backend_extension(Autodiff, Flex)]
pub trait FastGateBackend: burn::backend::Backend {
    /// `x + x·sigmoid(z)` for tensors of the same shape.
    fn fast_sigmoid_gate(x: FloatTensor<Self>, z: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// Values per parallel task.
const CHUNK: usize = 1 << 14;

#[inline(always)]
fn gate_body(xs: &[f32], zs: &[f32], out: &mut [MaybeUninit<f32>]) {
    for ((o, &x), &z) in out.iter_mut().zip(xs).zip(zs) {
        o.write(x + x * sigmoid(z));
    }
}

per_level! {
    /// `x + x·σ(z)` over one chunk, vectorised for `level`.
    fn gate_chunk(xs: &[f32], zs: &[f32], out: &mut [MaybeUninit<f32>]) = gate_body;
}

#[inline(always)]
fn gate_backward_body(
    xs: &[f32],
    zs: &[f32],
    dys: &[f32],
    dxs: &mut [MaybeUninit<f32>],
    dzs: &mut [MaybeUninit<f32>],
) {
    for ((((dx, dz), &x), &z), &g) in dxs.iter_mut().zip(dzs).zip(xs).zip(zs).zip(dys) {
        let s = sigmoid(z);
        dx.write(g * (1.0 + s));
        dz.write(g * x * s * (1.0 - s));
    }
}

per_level! {
    /// Gradients of `x + x·σ(z)` over one chunk, vectorised for `level`.
    fn gate_backward_chunk(
        xs: &[f32],
        zs: &[f32],
        dys: &[f32],
        dxs: &mut [MaybeUninit<f32>],
        dzs: &mut [MaybeUninit<f32>]
    ) = gate_backward_body;
}

/// `x + x·σ(z)` elementwise, `σ(z) = 1/(1 + e^{−z})`.
pub fn sigmoid_gate(x: &[f32], z: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), z.len());
    let level = crate::simd::level();
    let mut y: Vec<f32> = Vec::with_capacity(x.len());
    y.spare_capacity_mut()[..x.len()]
        .par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(z.par_chunks(CHUNK)))
        .for_each(|(out, (xs, zs))| gate_chunk(level, xs, zs, out));
    // SAFETY: the chunks above cover all `x.len()` values.
    unsafe { y.set_len(x.len()) };
    y
}

/// Gradients of `y = x + x·σ(z)` given `dy`: `(dx, dz) = (dy·(1 + σ), dy·x·σ·(1 − σ))`.
pub fn sigmoid_gate_backward(x: &[f32], z: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    assert!(x.len() == z.len() && x.len() == dy.len());
    let level = crate::simd::level();
    let n = x.len();
    let (mut dx, mut dz): (Vec<f32>, Vec<f32>) = (Vec::with_capacity(n), Vec::with_capacity(n));
    dx.spare_capacity_mut()[..n]
        .par_chunks_mut(CHUNK)
        .zip(dz.spare_capacity_mut()[..n].par_chunks_mut(CHUNK))
        .zip(
            x.par_chunks(CHUNK)
                .zip(z.par_chunks(CHUNK))
                .zip(dy.par_chunks(CHUNK)),
        )
        .for_each(|((dxs, dzs), ((xs, zs), dys))| {
            gate_backward_chunk(level, xs, zs, dys, dxs, dzs)
        });
    // SAFETY: the chunks above cover all `n` values of both vectors.
    unsafe {
        dx.set_len(n);
        dz.set_len(n);
    }
    (dx, dz)
}

fn is_fused(x: &FloatTensor<Flex>, z: &FloatTensor<Flex>) -> bool {
    x.dtype() == DType::F32 && z.dtype() == DType::F32 && x.shape() == z.shape()
}

fn composed<B: burn::backend::Backend>(x: FloatTensor<B>, z: FloatTensor<B>) -> FloatTensor<B> {
    let g = <B as ActivationOps<B>>::sigmoid(z);
    B::float_add(x.clone(), B::float_mul(x, g))
}

impl FastGateBackend for Flex {
    fn fast_sigmoid_gate(x: FloatTensor<Self>, z: FloatTensor<Self>) -> FloatTensor<Self> {
        if !is_fused(&x, &z) {
            return composed::<Flex>(x, z);
        }
        let shape = x.shape();
        let (x, z) = (x.to_contiguous(), z.to_contiguous());
        let y = sigmoid_gate(
            x.as_slice::<f32>().unwrap_or_default(),
            z.as_slice::<f32>().unwrap_or_default(),
        );
        FloatTensor::<Flex>::from_data(TensorData::new(y, shape))
    }
}

/// Backward step of [`FastGateBackend::fast_sigmoid_gate`] on autodiff-over-flex.
#[derive(Debug)]
struct SigmoidGateBackward;

impl Backward<Flex, 2> for SigmoidGateBackward {
    /// Checkpointed `x` and `z`.
    type State = (
        burn::backend::autodiff::NodeId,
        burn::backend::autodiff::NodeId,
    );

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_z] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x_id, z_id) = ops.state;
        let x: FloatTensor<Flex> = checkpointer.retrieve_node_output(x_id);
        let z: FloatTensor<Flex> = checkpointer.retrieve_node_output(z_id);
        let shape = x.shape();
        let (dx, dz) = if is_fused(&x, &z) && dy.dtype() == DType::F32 {
            let (x, z, dy) = (x.to_contiguous(), z.to_contiguous(), dy.to_contiguous());
            let (dx, dz) = sigmoid_gate_backward(
                x.as_slice::<f32>().unwrap_or_default(),
                z.as_slice::<f32>().unwrap_or_default(),
                dy.as_slice::<f32>().unwrap_or_default(),
            );
            (
                FloatTensor::<Flex>::from_data(TensorData::new(dx, shape.clone())),
                FloatTensor::<Flex>::from_data(TensorData::new(dz, shape)),
            )
        } else {
            use burn::backend::ops::FloatTensorOps;
            let s = <Flex as ActivationOps<Flex>>::sigmoid(z);
            let dx = Flex::float_add(dy.clone(), Flex::float_mul(dy.clone(), s.clone()));
            let ds = Flex::float_mul(dy, x);
            let dz = <Flex as ActivationOps<Flex>>::sigmoid_backward(s, ds);
            (dx, dz)
        };
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_z {
            grads.register::<Flex>(node.id, dz);
        }
    }
}

impl<C: CheckpointStrategy> FastGateBackend for Autodiff<Flex, C> {
    fn fast_sigmoid_gate(x: FloatTensor<Self>, z: FloatTensor<Self>) -> FloatTensor<Self> {
        match SigmoidGateBackward
            .prepare::<C>([x.node(), z.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&z));
                let y = Flex::fast_sigmoid_gate(x.into_primitive(), z.into_primitive());
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::fast_sigmoid_gate(
                x.into_primitive(),
                z.into_primitive(),
            )),
        }
    }
}
