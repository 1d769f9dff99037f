//! Cross pseudo supervision (Chen et al. 2021), as SSL4MIS
//! `train_cross_pseudo_supervision_2D.py`: two networks of the same architecture with
//! different initialisations (two draws of the default initialisation, as SSL4MIS) and their
//! own optimisers, each supervised on the labels and by the other's hard pseudo-labels.
//!
//! - `supervised = L₁ + L₂`, each network's BCE+Dice on the labelled rows;
//! - `consistency = BCE(o₁, [σ(o₂) > τ]) + BCE(o₂, [σ(o₁) > τ])` on the unlabelled rows, mean
//!   over pixels, the pseudo-labels detached (τ = 0.5: SSL4MIS's argmax of two classes);
//! - `total = supervised + w(t)·consistency` = SSL4MIS's `model1_loss + model2_loss`; one
//!   backward pass, each optimiser steps its own network.
//!
//! The first network is the one validated, checkpointed as `best` and used for inference.

use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use mgcc_model::{Perturbation, SegNet};

use super::{MethodLoss, StepInput, labeled_part, unlabeled_part};
use crate::loss::{bce_dice, bce_with_logits_elementwise};

/// The loss of one batch for the pair `(first, second)`.
pub fn loss(
    first: &SegNet,
    second: &SegNet,
    input: &StepInput,
    threshold: f64,
    p: &Perturbation,
) -> MethodLoss {
    let o1 = first.forward_train(input.images.clone(), p).swap_remove(0);
    let o2 = second.forward_train(input.images.clone(), p).swap_remove(0);
    let n = input.n_labeled;
    let sup = bce_dice(labeled_part(o1.clone(), n), input.masks.clone())
        + bce_dice(labeled_part(o2.clone(), n), input.masks.clone());
    let cons = cross_pseudo_supervision(unlabeled_part(o1, n), unlabeled_part(o2, n), threshold);
    MethodLoss::new(sup, cons, input.weight)
}

/// `BCE(o₁, [σ(o₂) > τ]) + BCE(o₂, [σ(o₁) > τ])`, each the mean over pixels.
pub fn cross_pseudo_supervision(o1: Tensor<4>, o2: Tensor<4>, threshold: f64) -> Tensor<1> {
    let label = |o: &Tensor<4>| sigmoid(o.clone().detach()).greater_elem(threshold).float();
    let (y1, y2) = (label(&o1), label(&o2));
    bce_with_logits_elementwise(o1, y2).mean() + bce_with_logits_elementwise(o2, y1).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::test_util::{scalar, sig, t4};

    #[test]
    fn cross_terms_match_hand_computation() {
        let o1 = [2.0, -1.0, 0.3, -0.2];
        let o2 = [-0.5, -3.0, 1.0, 0.1];
        let bce = |x: f64, y: f64| -(y * sig(x).ln() + (1.0 - y) * (1.0 - sig(x)).ln());
        // Pseudo-labels: y1 = [1, 0, 1, 0], y2 = [0, 0, 1, 1].
        let y1 = [1.0, 0.0, 1.0, 0.0];
        let y2 = [0.0, 0.0, 1.0, 1.0];
        let term1: f64 = (0..4).map(|i| bce(o1[i], y2[i])).sum::<f64>() / 4.0;
        let term2: f64 = (0..4).map(|i| bce(o2[i], y1[i])).sum::<f64>() / 4.0;
        let got = scalar(cross_pseudo_supervision(
            t4(&o1, [2, 1, 1, 2]),
            t4(&o2, [2, 1, 1, 2]),
            0.5,
        ));
        assert!((got - (term1 + term2)).abs() < 1e-5, "{got}");
    }

    #[test]
    fn pseudo_labels_carry_no_gradient() {
        let device = Device::flex().autodiff();
        let v = |x: [f32; 2]| Tensor::<1>::from_floats(x, &device).reshape([1, 1, 1, 2]);
        let o1 = v([2.0, -1.0]).require_grad();
        let o2 = v([-0.5, 3.0]).require_grad();
        let grads = cross_pseudo_supervision(o1.clone(), o2.clone(), 0.5).backward();
        // d/do₁ of mean BCE(o₁, y₂) = (σ(o₁) − y₂)/2, with y₂ = [0, 1] constant.
        let g1: Vec<f32> = o1.grad(&grads).unwrap().into_data().try_to_vec().unwrap();
        let expect = [(sig(2.0) - 0.0) / 2.0, (sig(-1.0) - 1.0) / 2.0];
        for (g, e) in g1.iter().zip(expect) {
            assert!((*g as f64 - e).abs() < 1e-6, "{g1:?}");
        }
    }
}
