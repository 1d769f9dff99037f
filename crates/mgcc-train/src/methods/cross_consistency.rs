//! Cross-consistency between a main decoder and three auxiliary decoders fed perturbed
//! features: the loss of MGCC (Tang et al. 2023, the published `train.py`) and of CCT (Ouali
//! et al. 2020, SSL4MIS `train_cross_consistency_training_2D.py`). The two methods differ only
//! in where the auxiliary decoders read their features ([`mgcc_model::Heads`]):
//!
//! - `mgcc`: at three depths of global context (before the ConvMixers, after the first, after
//!   the second), the main decoder after the third;
//! - `cct`: all on the final features, as `UNet_CCT`. On the MGCC backbone this is MGCC
//!   without its multi-level structure: the paper's key ablation.
//!
//! `supervised` = mean over the four decoders of BCE+Dice on the labelled rows;
//! `consistency` = mean over the three auxiliaries of `mean((σ(main) − σ(aux))²)` on the
//! unlabelled rows, with gradients to both sides (as both published scripts).

use mgcc_model::{Perturbation, SegNet};

use super::{MethodLoss, StepInput, unlabeled_part};
use crate::loss::consistency;

/// The loss of one batch.
pub fn loss(net: &SegNet, input: &StepInput, p: &Perturbation) -> MethodLoss {
    let outputs = net.forward_train(input.images.clone(), p);
    let sup = super::supervised_mean(&outputs, &input.masks, input.n_labeled);
    let cons = main_aux_consistency(&outputs, input.n_labeled);
    MethodLoss::new(sup, cons, input.weight)
}

/// Mean over `outputs[1..]` of the main-vs-auxiliary squared probability difference on the
/// unlabelled rows (0 when there are none).
pub fn main_aux_consistency(
    outputs: &[burn::tensor::Tensor<4>],
    n_labeled: usize,
) -> burn::tensor::Tensor<1> {
    let b = outputs[0].dims()[0];
    if b == n_labeled {
        return outputs[0].clone().sum().zeros_like();
    }
    let main = unlabeled_part(outputs[0].clone(), n_labeled);
    outputs[1..]
        .iter()
        .map(|a| consistency(main.clone(), unlabeled_part(a.clone(), n_labeled)))
        .reduce(|a, b| a + b)
        .expect("auxiliary outputs")
        .div_scalar((outputs.len() - 1) as f64)
}
