//! The `fast_conv2d` backend extension: flex runs [`crate::dense`] / [`crate::depthwise`] kernels,
//! and autodiff-over-flex records a backward step that calls them too.
//!
//! Only f32 tensors take the custom path; anything else (other dtypes, grouped convolutions that
//! are neither dense nor depthwise) goes to burn's own flex implementation.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex, TensorMetadata, backend_extension};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, TensorData};

use crate::flex_values::{is_f32, values};
use crate::geometry::ConvGeometry;
use crate::{dense, depthwise};

/// Backends that provide MGCC's fast convolution.
#[backend_extension(Autodiff, Flex)]
pub trait FastConvBackend: burn::backend::Backend {
    /// `conv2d(x, weight, bias, options)` with burn's semantics.
    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;
}

fn tensor(values: Vec<f32>, shape: [usize; 4]) -> FloatTensor<Flex> {
    FloatTensor::<Flex>::from_data(TensorData::new(values, shape))
}

fn dims4(t: &FloatTensor<Flex>) -> [usize; 4] {
    let s = t.shape();
    [s[0], s[1], s[2], s[3]]
}

fn geometry(
    x: &FloatTensor<Flex>,
    w: &FloatTensor<Flex>,
    options: &ConvOptions<2>,
) -> ConvGeometry {
    ConvGeometry::new(dims4(x), dims4(w), options)
}

/// The [`crate::shifted`] layout when it applies to `g` and is enabled.
#[cfg(target_arch = "x86_64")]
fn shifted(g: &ConvGeometry) -> Option<crate::shifted::Shifted> {
    if crate::shifted_enabled() {
        crate::shifted::Shifted::new(g)
    } else {
        None
    }
}

/// Dense (groups = 1) forward: shifted products where they apply, im2col otherwise.
fn dense_forward(g: &ConvGeometry, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if let Some(s) = shifted(g) {
        return s.forward(x, w, bias);
    }
    dense::forward(g, x, w, bias)
}

/// Dense input gradient, as [`dense_forward`].
fn dense_input_grad(g: &ConvGeometry, w: &[f32], dy: &[f32]) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if let Some(s) = shifted(g) {
        return s.input_grad(w, dy);
    }
    dense::input_grad(g, w, dy)
}

/// Dense weight gradient, as [`dense_forward`].
fn dense_weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if let Some(s) = shifted(g) {
        return s.weight_grad(x, dy);
    }
    dense::weight_grad(g, x, dy)
}

impl FastConvBackend for Flex {
    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let g = geometry(&x, &weight, &options);
        if g.groups != 1 || !is_f32(&[&x, &weight, &bias]) {
            return <Flex as ModuleOps<Flex>>::conv2d(x, weight, Some(bias), options);
        }
        let y = dense_forward(&g, &values(&x), &values(&weight), Some(&values(&bias)));
        tensor(y, [g.batch, g.cout, g.out_hw[0], g.out_hw[1]])
    }
}

/// Backward step of [`FastConvBackend::fast_conv2d`] on autodiff-over-flex.
#[derive(Debug)]
struct FastConv2dBackward;

impl Backward<Flex, 3> for FastConv2dBackward {
    type State = (NodeId, NodeId, usize, ConvOptions<2>);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w, node_b] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x_state, w_state, cout, options) = ops.state;
        let x: FloatTensor<Flex> = checkpointer.retrieve_node_output(x_state);
        let w: FloatTensor<Flex> = checkpointer.retrieve_node_output(w_state);
        let g = geometry(&x, &w, &options);
        let fast = is_f32(&[&x, &w, &dy]) && (g.groups == 1 || g.is_depthwise());
        if !fast {
            if let Some(node) = node_x {
                let dx = <Flex as ModuleOps<Flex>>::conv2d_x_backward(
                    x.clone(),
                    w.clone(),
                    dy.clone(),
                    options.clone(),
                );
                grads.register::<Flex>(node.id, dx);
            }
            if let Some(node) = node_w {
                let dw = <Flex as ModuleOps<Flex>>::conv2d_weight_backward(
                    x.clone(),
                    w.clone(),
                    dy.clone(),
                    options,
                );
                grads.register::<Flex>(node.id, dw);
            }
        } else {
            let dy_v = values(&dy);
            if let Some(node) = node_x {
                let wv = values(&w);
                let dx = if g.groups == 1 {
                    dense_input_grad(&g, &wv, &dy_v)
                } else {
                    depthwise::input_grad(&g, &wv, &dy_v)
                };
                grads.register::<Flex>(node.id, tensor(dx, dims4(&x)));
            }
            if let Some(node) = node_w {
                let xv = values(&x);
                let dw = if g.groups == 1 {
                    dense_weight_grad(&g, &xv, &dy_v)
                } else {
                    depthwise::weight_grad(&g, &xv, &dy_v)
                };
                grads.register::<Flex>(node.id, tensor(dw, dims4(&w)));
            }
        }
        if let Some(node) = node_b {
            let [b, c, h, wd] = dims4(&dy);
            let db = if dy.dtype() == DType::F32 {
                dense::bias_grad(b, c, h * wd, &values(&dy))
            } else {
                let dyv = dy
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .unwrap_or_default();
                dense::bias_grad(b, c, h * wd, &dyv)
            };
            debug_assert_eq!(db.len(), cout);
            grads.register::<Flex>(
                node.id,
                FloatTensor::<Flex>::from_data(TensorData::new(db, [cout])),
            );
        }
    }
}

impl<C: CheckpointStrategy> FastConvBackend for Autodiff<Flex, C> {
    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let cout = bias.primitive().shape()[0];
        match FastConv2dBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let w_state = prep.checkpoint(&weight);
                let y = Flex::fast_conv2d(
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                    options.clone(),
                );
                prep.finish((x_state, w_state, cout, options), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::fast_conv2d(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                options,
            )),
        }
    }
}
