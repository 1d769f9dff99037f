//! Supervised training on the labelled images only: BCE+Dice on the main decoder. The
//! baseline every semi-supervised method must beat (SSL4MIS `train_fully_supervised_2D.py` on
//! the labelled subset).

use mgcc_model::SegNet;

use super::{MethodLoss, StepInput};

/// The loss of one batch (which holds labelled images only).
pub fn loss(net: &SegNet, input: &StepInput, p: &mgcc_model::Perturbation) -> MethodLoss {
    let outputs = net.forward_train(input.images.clone(), p);
    MethodLoss::supervised_only(super::supervised_mean(
        &outputs[..1],
        &input.masks,
        input.n_labeled,
    ))
}
