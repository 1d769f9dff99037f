//! An interrupted autoencoder or denoiser run, resumed, continues exactly: its metrics (losses
//! at full precision, validation numbers) equal those of an uninterrupted run, row for row.
//! (A stop also validates and checkpoints, so the runs stop at a validation iteration here.)

use std::path::Path;

use burn::tensor::Device;
use mgcc_data::phantom::{PhantomConfig, write_dataset};
use mgcc_diffusion::ldm_train::{LdmTrainConfig, train_ldm};
use mgcc_diffusion::train_common::RunOptions;
use mgcc_diffusion::unet::UnetConfig;
use mgcc_diffusion::vae::VaeConfig;
use mgcc_diffusion::vae_train::{VaeTrainConfig, train_vae};

fn opts(stop_after: Option<usize>) -> RunOptions {
    RunOptions {
        stop_after,
        progress_bar: false,
        quiet: true,
    }
}

fn metrics(run: &Path) -> String {
    std::fs::read_to_string(run.join("metrics.csv")).unwrap()
}

#[test]
fn autoencoder_and_denoiser_resume_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let ph = PhantomConfig {
        n: 10,
        width: 32,
        height: 32,
        seed: 2,
    };
    write_dataset(&ph, &data, false).unwrap();
    let device = Device::flex();
    let vae_cfg = VaeTrainConfig {
        data: data.clone(),
        size: 16,
        vae: VaeConfig {
            channels: vec![8, 8],
            latent_channels: 4,
            ..Default::default()
        },
        iterations: 4,
        batch: 3,
        lr: 1e-3,
        val_every: 2,
        ..Default::default()
    };
    let straight = tmp.path().join("vae_a");
    train_vae(Some(vae_cfg.clone()), &straight, &device, &opts(None)).unwrap();
    let split = tmp.path().join("vae_b");
    let o = train_vae(Some(vae_cfg), &split, &device, &opts(Some(2))).unwrap();
    assert_eq!(o.iterations_done, 2);
    train_vae(None, &split, &device, &opts(None)).unwrap();
    assert_eq!(metrics(&straight), metrics(&split));
    assert_eq!(metrics(&straight).lines().count(), 5);

    let ldm_cfg = LdmTrainConfig {
        data: data.clone(),
        vae_run: straight.clone(),
        unet: UnetConfig {
            channels: vec![8, 8, 16],
            blocks: 1,
            time_dim: 8,
            emb_dim: 16,
            groups: 4,
            ..Default::default()
        },
        iterations: 4,
        batch: 4,
        val_every: 2,
        sample_steps: 2,
        ema_decay: Some(0.9),
        ..Default::default()
    };
    let straight_ldm = tmp.path().join("ldm_a");
    train_ldm(Some(ldm_cfg.clone()), &straight_ldm, &device, &opts(None)).unwrap();
    let split_ldm = tmp.path().join("ldm_b");
    train_ldm(Some(ldm_cfg), &split_ldm, &device, &opts(Some(2))).unwrap();
    train_ldm(None, &split_ldm, &device, &opts(None)).unwrap();
    assert_eq!(metrics(&straight_ldm), metrics(&split_ldm));
    // The evaluation loss (of the EMA weights) is logged at iterations 2 and 4.
    let evals = metrics(&straight_ldm)
        .lines()
        .skip(1)
        .filter(|l| !l.ends_with(','))
        .count();
    assert_eq!(evals, 2);
}
