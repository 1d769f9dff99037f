//! The `fast_sigmoid_gate` backend extension: `x + x·sigmoid(z)` (the attention gate's output)
//! as one parallel elementwise pass on flex instead of three serial burn ops.
//!
//! Autodiff backends compose burn's ops (the model fuses only in inference, on plain devices).

use burn::backend::ops::ActivationOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex, TensorMetadata, backend_extension};
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

/// Backends that provide MGCC's fused gate output.
#[backend_extension(Autodiff, Flex)]
pub trait FastGateBackend: burn::backend::Backend {
    /// `x + x·sigmoid(z)` for tensors of the same shape.
    fn fast_sigmoid_gate(x: FloatTensor<Self>, z: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// Values per parallel task.
const CHUNK: usize = 1 << 14;

/// `x + x·σ(z)` elementwise, `σ(z) = 1/(1 + e^{−z})`.
pub fn sigmoid_gate(x: &[f32], z: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), z.len());
    let mut y: Vec<f32> = Vec::with_capacity(x.len());
    y.spare_capacity_mut()[..x.len()]
        .par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(z.par_chunks(CHUNK)))
        .for_each(|(out, (xs, zs))| {
            for ((o, &x), &z) in out.iter_mut().zip(xs).zip(zs) {
                o.write(x + x * (1.0 / (1.0 + (-z).exp())));
            }
        });
    // SAFETY: the chunks above cover all `x.len()` values.
    unsafe { y.set_len(x.len()) };
    y
}

fn composed<B: burn::backend::Backend>(x: FloatTensor<B>, z: FloatTensor<B>) -> FloatTensor<B> {
    let g = <B as ActivationOps<B>>::sigmoid(z);
    B::float_add(x.clone(), B::float_mul(x, g))
}

impl FastGateBackend for Flex {
    fn fast_sigmoid_gate(x: FloatTensor<Self>, z: FloatTensor<Self>) -> FloatTensor<Self> {
        if x.dtype() != DType::F32 || z.dtype() != DType::F32 || x.shape() != z.shape() {
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

impl<C: burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy> FastGateBackend
    for Autodiff<Flex, C>
{
    fn fast_sigmoid_gate(x: FloatTensor<Self>, z: FloatTensor<Self>) -> FloatTensor<Self> {
        composed::<Self>(x, z)
    }
}
