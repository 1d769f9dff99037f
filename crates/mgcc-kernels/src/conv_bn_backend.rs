//! The `fast_conv2d_bn_eval` backend extension: a convolution followed by an inference-mode
//! batch norm (running statistics) and an optional ReLU, as one operation.
//!
//! On flex the batch norm becomes the per-channel affine map `y = v·s + (β − μ·s)`,
//! `s = γ/√(σ² + ε)` (computed in f64), applied by the [`crate::shifted`] kernels as they store
//! each output value, so the convolution's output is written once and never re-read. Other
//! layouts (no AVX-512, strided or grouped convolutions) run the convolution and then one
//! fused affine(+ReLU) pass. Autodiff backends compose burn's ops (the model only fuses in
//! inference, on plain devices).

use burn::backend::ops::{ActivationOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex, TensorMetadata, backend_extension};
use burn::tensor::TensorData;
use burn::tensor::ops::ConvOptions;

use crate::backend::FastConvBackend;
use crate::flex_values::{is_f32, values};
use crate::geometry::ConvGeometry;
use crate::norm::{self, Planes};

/// Backends that provide MGCC's convolution + inference batch norm (+ ReLU).
#[backend_extension(Autodiff, Flex)]
pub trait FastConvBnBackend: burn::backend::Backend {
    /// `relu?(batch_norm(conv2d(x, weight, bias, options), γ, β, μ, σ², ε))` with burn's
    /// semantics for each op.
    #[allow(clippy::too_many_arguments)]
    fn fast_conv2d_bn_eval(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;
}

fn dims4(t: &FloatTensor<Flex>) -> [usize; 4] {
    let s = t.shape();
    [s[0], s[1], s[2], s[3]]
}

/// Burn's ops one after the other (any backend).
#[allow(clippy::too_many_arguments)]
fn composed<B: FastConvBackend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    bias: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    mean: FloatTensor<B>,
    var: FloatTensor<B>,
    epsilon: f64,
    relu: bool,
    options: ConvOptions<2>,
) -> FloatTensor<B> {
    let y = B::fast_conv2d(x, weight, bias, options);
    let y = <B as ModuleOps<B>>::batch_norm(y, gamma, beta, mean, var, epsilon);
    if relu {
        <B as ActivationOps<B>>::relu(y)
    } else {
        y
    }
}

impl FastConvBnBackend for Flex {
    fn fast_conv2d_bn_eval(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        if !is_f32(&[&x, &weight, &bias, &gamma, &beta, &mean, &var]) {
            return composed::<Flex>(
                x, weight, bias, gamma, beta, mean, var, epsilon, relu, options,
            );
        }
        let (scale, shift) = norm::affine(
            &values(&gamma),
            &values(&beta),
            &values(&mean),
            &values(&var),
            epsilon,
        );
        let g = ConvGeometry::new(dims4(&x), dims4(&weight), &options);
        #[cfg(target_arch = "x86_64")]
        if let Some(s) = crate::fused_shifted(&g) {
            let epilogue = crate::microkernels::Epilogue {
                scale: &scale,
                shift: &shift,
                relu,
            };
            let y = s.forward_fused(
                &values(&x),
                &values(&weight),
                Some(&values(&bias)),
                Some(epilogue),
            );
            let shape = [g.batch, g.cout, g.out_hw[0], g.out_hw[1]];
            return FloatTensor::<Flex>::from_data(TensorData::new(y, shape));
        }
        let y = Flex::fast_conv2d(x, weight, bias, options);
        let p = Planes {
            batch: g.batch,
            channels: g.cout,
            plane: g.out_plane(),
        };
        let out = norm::apply(p, &values(&y), &scale, &shift, relu);
        FloatTensor::<Flex>::from_data(TensorData::new(out, y.shape()))
    }
}

impl<C: burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy> FastConvBnBackend
    for Autodiff<Flex, C>
{
    fn fast_conv2d_bn_eval(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        composed::<Self>(
            x, weight, bias, gamma, beta, mean, var, epsilon, relu, options,
        )
    }
}
