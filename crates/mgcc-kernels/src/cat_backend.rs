//! The `fast_cat_channels` backend extension: channel concatenation of NCHW f32 tensors copied in
//! parallel (flex's `cat` copies on the calling thread), and its backward (parallel channel
//! slices of the output gradient) on autodiff-over-flex, for two or three inputs.

use crate::flex_values::values;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex, TensorMetadata, backend_extension};
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

/// Backends that provide MGCC's parallel channel concatenation.
#[backend_extension(Autodiff, Flex)]
pub trait FastCatBackend: burn::backend::Backend {
    /// `cat([a, b], 1)` for tensors `[B, C_i, H, W]`.
    fn fast_cat2(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `cat([a, b, c], 1)` for tensors `[B, C_i, H, W]`.
    fn fast_cat3(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        c: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// Copies `blocks` blocks of `block` values from `src` (block pitch `src_pitch`, starting at
/// `src0`) into a new vector, in parallel.
fn gather(src: &[f32], src0: usize, src_pitch: usize, blocks: usize, block: usize) -> Vec<f32> {
    let mut out: Vec<f32> = Vec::with_capacity(blocks * block);
    out.spare_capacity_mut()[..blocks * block]
        .par_chunks_mut(block.max(1))
        .enumerate()
        .for_each(|(b, dst)| {
            let s = &src[src0 + b * src_pitch..src0 + b * src_pitch + block];
            for (d, v) in dst.iter_mut().zip(s) {
                d.write(*v);
            }
        });
    // SAFETY: the blocks above cover all `blocks·block` values.
    unsafe { out.set_len(blocks * block) };
    out
}

impl FastCatBackend for Flex {
    fn fast_cat2(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        cat_flex(vec![a, b])
    }

    fn fast_cat3(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        c: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        cat_flex(vec![a, b, c])
    }
}

/// Channel concatenation on flex, copied in parallel over images.
fn cat_flex(tensors: Vec<FloatTensor<Flex>>) -> FloatTensor<Flex> {
    let f32_4d = tensors
        .iter()
        .all(|t| t.dtype() == DType::F32 && t.shape().num_dims() == 4);
    if !f32_4d {
        return <Flex as FloatTensorOps<Flex>>::float_cat(tensors, 1);
    }
    let s = tensors[0].shape();
    let (batch, plane) = (s[0], s[2] * s[3]);
    let channels: Vec<usize> = tensors.iter().map(|t| t.shape()[1]).collect();
    let total: usize = channels.iter().sum();
    let parts: Vec<_> = tensors.iter().map(values).collect();
    let image = total * plane;
    let mut out: Vec<f32> = Vec::with_capacity(batch * image);
    out.spare_capacity_mut()[..batch * image]
        .par_chunks_mut(image.max(1))
        .enumerate()
        .for_each(|(b, dst)| {
            let mut at = 0;
            for (part, &c) in parts.iter().zip(&channels) {
                let n = c * plane;
                for (d, v) in dst[at..at + n].iter_mut().zip(&part[b * n..(b + 1) * n]) {
                    d.write(*v);
                }
                at += n;
            }
        });
    // SAFETY: every image block is filled by its parts, which cover all `total` channels.
    unsafe { out.set_len(batch * image) };
    FloatTensor::<Flex>::from_data(TensorData::new(out, [batch, total, s[2], s[3]]))
}

/// Backward step of [`FastCatBackend::fast_cat2`] / [`FastCatBackend::fast_cat3`].
#[derive(Debug)]
struct FastCatBackward<const N: usize>;

impl<const N: usize> Backward<Flex, N> for FastCatBackward<N> {
    /// Channels of each input.
    type State = Vec<usize>;

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let channels = ops.state;
        let s = dy.shape();
        let (batch, plane) = (s[0], s[2] * s[3]);
        let total: usize = channels.iter().sum();
        let dyv = values(&dy);
        let mut c0 = 0;
        for (node, &c) in ops.parents.iter().zip(&channels) {
            if let Some(node) = node {
                let g = gather(&dyv, c0 * plane, total * plane, batch, c * plane);
                let t = FloatTensor::<Flex>::from_data(TensorData::new(g, [batch, c, s[2], s[3]]));
                grads.register::<Flex>(node.id, t);
            }
            c0 += c;
        }
    }
}

fn tracked<C: CheckpointStrategy, const N: usize>(
    tensors: Vec<FloatTensor<Autodiff<Flex, C>>>,
) -> FloatTensor<Autodiff<Flex, C>> {
    let nodes: [_; N] = std::array::from_fn(|i| tensors[i].node());
    let channels: Vec<usize> = tensors.iter().map(|t| t.primitive().shape()[1]).collect();
    let out = cat_flex(tensors.into_iter().map(|t| t.into_primitive()).collect());
    match FastCatBackward::<N>
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(channels, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}

impl<C: CheckpointStrategy> FastCatBackend for Autodiff<Flex, C> {
    fn fast_cat2(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        tracked::<C, 2>(vec![a, b])
    }

    fn fast_cat3(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        c: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        tracked::<C, 3>(vec![a, b, c])
    }
}
