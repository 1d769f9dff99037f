//! One optimiser step of MGCC (or of the supervised baseline): forward, loss, backward, SGD.

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use mgcc_model::Mgcc;

use crate::config::Method;
use crate::loss::{bce_dice, consistency};

/// Loss values of one step, read back from the device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepLosses {
    /// Mean over the decoders trained of BCE+Dice on the labelled half.
    pub supervised: f32,
    /// Mean over the three auxiliaries of the main-vs-auxiliary squared difference on the
    /// unlabelled half (0 for the supervised baseline).
    pub consistency: f32,
    /// supervised + weight · consistency, the loss that was minimised.
    pub total: f32,
}

/// The loss of one batch. `images`: B×C×S×S with the `n_labeled` labelled images first;
/// `masks`: n_labeled×1×S×S in {0, 1}. Returns (total, supervised, consistency) scalars.
pub fn batch_loss(
    model: &Mgcc,
    method: Method,
    images: Tensor<4>,
    masks: Tensor<4>,
    n_labeled: usize,
    cons_weight: f64,
) -> (Tensor<1>, Tensor<1>, Tensor<1>) {
    let [batch, _, _, _] = images.dims();
    match method {
        Method::Supervised => {
            let logits = model.forward(images).narrow(0, 0, n_labeled);
            let sup = bce_dice(logits, masks);
            let zero = sup.zeros_like();
            (sup.clone(), sup, zero)
        }
        Method::Mgcc => {
            let out = model.forward_train(images);
            let outputs = [
                out.main.clone(),
                out.aux[0].clone(),
                out.aux[1].clone(),
                out.aux[2].clone(),
            ];
            let sup = outputs
                .iter()
                .map(|o| bce_dice(o.clone().narrow(0, 0, n_labeled), masks.clone()))
                .reduce(|a, b| a + b)
                .expect("four outputs")
                .div_scalar(4.0);
            let n_unlabeled = batch - n_labeled;
            let cons = if n_unlabeled == 0 {
                sup.zeros_like()
            } else {
                let main_u = out.main.narrow(0, n_labeled, n_unlabeled);
                out.aux
                    .iter()
                    .map(|a| {
                        consistency(main_u.clone(), a.clone().narrow(0, n_labeled, n_unlabeled))
                    })
                    .reduce(|a, b| a + b)
                    .expect("three auxiliaries")
                    .div_scalar(3.0)
            };
            let total = sup.clone() + cons.clone().mul_scalar(cons_weight);
            (total, sup, cons)
        }
    }
}

/// Forward, backward and one SGD step at learning rate `lr`; returns the updated model.
#[allow(clippy::too_many_arguments)]
pub fn train_step(
    model: Mgcc,
    optim: &mut ModuleOptimizer,
    method: Method,
    images: Tensor<4>,
    masks: Tensor<4>,
    n_labeled: usize,
    cons_weight: f64,
    lr: f64,
) -> (Mgcc, StepLosses) {
    let (total, sup, cons) = batch_loss(&model, method, images, masks, n_labeled, cons_weight);
    let losses = StepLosses {
        supervised: sup.into_scalar::<f32>(),
        consistency: cons.into_scalar::<f32>(),
        total: total.clone().into_scalar::<f32>(),
    };
    if !losses.total.is_finite() {
        return (model, losses);
    }
    let grads = total.backward();
    let grads = GradientsParams::from_grads(grads, &model);
    let model = optim.step(lr, model, grads);
    (model, losses)
}
