//! Mean teacher (Tarvainen & Valpola 2017), as SSL4MIS `train_mean_teacher_2D.py`.
//!
//! The teacher is an EMA of the student ([`super::ema`]); it never receives gradients and runs
//! in training mode (batch statistics, dropout on the UNet), as SSL4MIS leaves it after
//! `create_model(ema=True)`. Per batch:
//! - teacher input = unlabelled images + `clamp(N(0, 1)·noise_std, ±noise_clip)`;
//! - `supervised` = BCE+Dice of the student on the labelled rows;
//! - `consistency` = `mean((σ(student) − σ(teacher))²)` on the unlabelled rows, 0 for
//!   `t < consistency_start` (1000), when the teacher pass is skipped (its output would be
//!   unused; in training mode it does not depend on its running statistics).

use burn::prelude::*;
use burn::tensor::Distribution;
use mgcc_model::{Perturbation, SegNet};

use super::{MethodLoss, StepInput, labeled_part, unlabeled_part};
use crate::config::MeanTeacherParams;
use crate::loss::{bce_dice, consistency};

/// `x + clamp(N(0, 1)·std, −clip, clip)`, drawn from the device RNG.
pub fn teacher_input(x: Tensor<4>, params: &MeanTeacherParams) -> Tensor<4> {
    let noise = Tensor::<4>::random(x.shape(), Distribution::Normal(0.0, 1.0), &x.device())
        .mul_scalar(params.noise_std)
        .clamp(-params.noise_clip, params.noise_clip);
    x + noise
}

/// The teacher's logits for `x` (training mode, no gradient).
pub fn teacher_logits(teacher: &SegNet, x: Tensor<4>, p: &Perturbation) -> Tensor<4> {
    teacher.forward_train(x, p).swap_remove(0).detach()
}

/// The loss of one batch.
pub fn loss(
    student: &SegNet,
    teacher: &SegNet,
    input: &StepInput,
    params: &MeanTeacherParams,
    p: &Perturbation,
) -> MethodLoss {
    // SSL4MIS draws the teacher noise before the forward passes.
    let teacher_in = (input.t >= params.consistency_start)
        .then(|| teacher_input(input.unlabeled_images(), params));
    let out = student
        .forward_train(input.images.clone(), p)
        .swap_remove(0);
    let sup = bce_dice(
        labeled_part(out.clone(), input.n_labeled),
        input.masks.clone(),
    );
    let cons = match teacher_in {
        Some(x) => consistency(
            unlabeled_part(out, input.n_labeled),
            teacher_logits(teacher, x, p),
        ),
        None => sup.zeros_like(),
    };
    MethodLoss::new(sup, cons, input.weight)
}
