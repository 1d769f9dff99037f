//! The `fast_max_pool2x2` backend extension: 2×2 max pooling with stride 2 (no padding, odd
//! trailing rows/columns dropped) of NCHW f32 tensors, parallel over planes on flex.
//!
//! burn's flex pooling always computes the argmax indices as well; inference needs only the
//! values. Autodiff backends use burn's `max_pool2d` (the model pools on autodiff only in
//! training, where the indices feed the backward pass).

use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex, TensorMetadata, backend_extension};
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

/// Backends that provide MGCC's 2×2 max pooling.
#[backend_extension(Autodiff, Flex)]
pub trait FastPoolBackend: burn::backend::Backend {
    /// `max_pool2d(x, kernel 2×2, stride 2)` for `x [B, C, H, W]` → `[B, C, H/2, W/2]`.
    fn fast_max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// 2×2 / stride-2 max pooling of `planes` planes of `h × w` values.
pub fn max_pool2x2(x: &[f32], h: usize, w: usize) -> Vec<f32> {
    let (oh, ow) = (h / 2, w / 2);
    let planes = x.len().checked_div(h * w).unwrap_or(0);
    let mut y: Vec<f32> = Vec::with_capacity(planes * oh * ow);
    if oh * ow > 0 {
        y.spare_capacity_mut()[..planes * oh * ow]
            .par_chunks_mut(oh * ow)
            .zip(x.par_chunks(h * w))
            .for_each(|(out, plane)| {
                for (r, line) in out.chunks_exact_mut(ow).enumerate() {
                    let top = &plane[2 * r * w..2 * r * w + 2 * ow];
                    let bottom = &plane[(2 * r + 1) * w..(2 * r + 1) * w + 2 * ow];
                    for ((o, t), b) in line
                        .iter_mut()
                        .zip(top.chunks_exact(2))
                        .zip(bottom.chunks_exact(2))
                    {
                        o.write(t[0].max(t[1]).max(b[0].max(b[1])));
                    }
                }
            });
    }
    // SAFETY: every output plane was written in full above.
    unsafe { y.set_len(planes * oh * ow) };
    y
}

fn burn_pool<B: ModuleOps<B> + burn::backend::Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    B::max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], false)
}

impl FastPoolBackend for Flex {
    fn fast_max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let s = x.shape();
        if x.dtype() != DType::F32 || s.num_dims() != 4 {
            return burn_pool::<Flex>(x);
        }
        let [b, c, h, w] = [s[0], s[1], s[2], s[3]];
        let x = x.to_contiguous();
        let y = max_pool2x2(x.as_slice::<f32>().unwrap_or_default(), h, w);
        FloatTensor::<Flex>::from_data(TensorData::new(y, [b, c, h / 2, w / 2]))
    }
}

impl<C: burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy> FastPoolBackend
    for Autodiff<Flex, C>
{
    fn fast_max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        burn_pool::<Self>(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_each_window_and_drops_odd_edges() {
        // One plane 3 × 5: windows over rows 0–1, columns 0–1 and 2–3.
        let x: Vec<f32> = (0..15).map(|v| ((v * 7) % 11) as f32).collect();
        let y = max_pool2x2(&x, 3, 5);
        let want: Vec<f32> = (0..2)
            .map(|j| {
                [x[2 * j], x[2 * j + 1], x[5 + 2 * j], x[5 + 2 * j + 1]]
                    .into_iter()
                    .fold(f32::MIN, f32::max)
            })
            .collect();
        assert_eq!(y, want);
    }
}
