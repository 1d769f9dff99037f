//! The generation stage against PyTorch: the fixture `tests/fixtures/medfusion_torch.safetensors`
//! (written by `tools/torch_reference/medfusion_fixture.py` from a transcription of Medfusion's
//! `VAE` and `unet2.UNet` at small widths, every parameter random, references in float64)
//! holds the weights under mgcc's names, inputs and Medfusion's outputs. The same weights in
//! mgcc (float32) must give:
//! - the autoencoder's moments, decoded image and half-resolution head within 1e-4 of their
//!   scale, and its training loss (Medfusion's `rec_loss` with `pytorch_msssim` and the KL
//!   term) within 1e-4 relative;
//! - the denoiser's prediction, with classes and unconditional, within 1e-4 of its scale.

use std::path::PathBuf;

use burn::module::Module;
use burn::store::ModuleSnapshot;
use burn::tensor::{DType, Device, Tensor, TensorData};
use mgcc_diffusion::unet::UnetConfig;
use mgcc_diffusion::vae::VaeConfig;
use mgcc_diffusion::vae_train::{LossWeights, PixelLoss, vae_loss};
use mgcc_model::interop::TorchState;

const TOLERANCE: f32 = 1e-4;

fn fixture() -> TorchState {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/medfusion_torch.safetensors");
    TorchState::read(&path).unwrap()
}

fn take(state: &TorchState, name: &str) -> TensorData {
    state
        .get(name)
        .unwrap_or_else(|| panic!("fixture lacks {name}"))
        .clone()
        .convert_dtype(DType::F32)
}

fn values(d: TensorData) -> Vec<f32> {
    d.convert::<f32>().try_into_vec::<f32>().unwrap()
}

/// max |a − b| / max |b|: the difference relative to the reference's scale.
fn rel_diff(a: Tensor<4>, b: &TensorData) -> f32 {
    let (a, b) = (values(a.into_data()), values(b.clone()));
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    a.iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// Set every parameter of `module` from the fixture tensor `PREFIX.NAME`, checking shapes,
/// and that the fixture has no parameter under `prefix` that the module lacks.
fn load<M: Module>(mut module: M, state: &TorchState, prefix: &str, inputs: &[&str]) -> M {
    let targets = module.collect(None, None, false);
    let mut tensors = Vec::new();
    for t in &targets {
        let name = format!("{prefix}.{}", t.name);
        let data = take(state, &name);
        assert_eq!(data.shape().to_vec(), t.shape.to_vec(), "{name}");
        tensors.push(burn::store::bridge::from_data(data, t.name.clone(), None));
    }
    let used = targets.len() + inputs.len();
    let in_file = state
        .names()
        .filter(|n| n.starts_with(&format!("{prefix}.")))
        .count();
    assert_eq!(
        used, in_file,
        "the fixture has {prefix} tensors the network lacks"
    );
    let result = module.apply(tensors, None, None, false);
    assert!(result.errors.is_empty(), "{:?}", result.errors);
    assert!(result.missing.is_empty(), "{:?}", result.missing);
    module
}

#[test]
fn autoencoder_matches_medfusion() {
    let state = fixture();
    let device = Device::flex();
    let cfg = VaeConfig {
        in_channels: 3,
        channels: vec![8, 16, 16],
        latent_channels: 4,
        groups: 8,
        deep_supervision: true,
        ..Default::default()
    };
    let io = [
        "vae.x",
        "vae.eps",
        "vae.mean",
        "vae.logvar",
        "vae.image",
        "vae.half",
        "vae.kl",
        "vae.loss",
    ];
    let vae = load(cfg.init(&device), &state, "vae", &io);
    let x = Tensor::<4>::from_data(take(&state, "vae.x"), &device);
    let eps = Tensor::<4>::from_data(take(&state, "vae.eps"), &device);
    let post = vae.encode(x.clone());
    let d_mean = rel_diff(post.mean.clone(), &take(&state, "vae.mean"));
    let d_logvar = rel_diff(post.logvar.clone(), &take(&state, "vae.logvar"));
    let z = post.mean.clone() + (post.logvar.clone() * 0.5).exp() * eps;
    let out = vae.decode(z);
    let d_image = rel_diff(out.image.clone(), &take(&state, "vae.image"));
    let d_half = rel_diff(out.half.clone().unwrap(), &take(&state, "vae.half"));
    let weights = LossWeights {
        pixel_loss: PixelLoss::Mse,
        ssim_weight: 1.0,
        kl_weight: 1e-6,
    };
    let kl: f32 = post.kl().into_scalar();
    let loss: f32 = vae_loss(out, x, post.kl(), &weights).total.into_scalar();
    let (kl_ref, loss_ref) = (
        values(take(&state, "vae.kl"))[0],
        values(take(&state, "vae.loss"))[0],
    );
    let d_kl = (kl - kl_ref).abs() / kl_ref.abs();
    let d_loss = (loss - loss_ref).abs() / loss_ref.abs();
    println!(
        "autoencoder vs Medfusion (relative): mean {d_mean:.1e} logvar {d_logvar:.1e} image {d_image:.1e} half {d_half:.1e} kl {d_kl:.1e} loss {d_loss:.1e} ({loss} vs {loss_ref})"
    );
    for (what, d) in [
        ("mean", d_mean),
        ("logvar", d_logvar),
        ("image", d_image),
        ("half", d_half),
        ("kl", d_kl),
        ("loss", d_loss),
    ] {
        assert!(d <= TOLERANCE, "{what}: {d:.2e} > {TOLERANCE:.0e}");
    }
}

#[test]
fn denoiser_matches_medfusion() {
    let state = fixture();
    let device = Device::flex();
    let cfg = UnetConfig {
        latent_channels: 4,
        channels: vec![16, 16, 32, 32],
        blocks: 2,
        time_dim: 8,
        emb_dim: 32,
        num_classes: 2,
        attention: false,
        groups: 8,
        ..Default::default()
    };
    let io = [
        "unet.x",
        "unet.t",
        "unet.classes",
        "unet.cond",
        "unet.uncond",
    ];
    let unet = load(cfg.init(&device), &state, "unet", &io);
    let x = Tensor::<4>::from_data(take(&state, "unet.x"), &device);
    let t = values(take(&state, "unet.t"));
    let classes: Vec<usize> = values(take(&state, "unet.classes"))
        .iter()
        .map(|&c| c as usize)
        .collect();
    let cond = unet.forward(x.clone(), &t, Some(&classes));
    let uncond = unet.forward(x, &t, None);
    let d_cond = rel_diff(cond, &take(&state, "unet.cond"));
    let d_uncond = rel_diff(uncond, &take(&state, "unet.uncond"));
    println!(
        "denoiser vs Medfusion (relative): with classes {d_cond:.1e}, unconditional {d_uncond:.1e}"
    );
    assert!(d_cond <= TOLERANCE, "with classes: {d_cond:.2e}");
    assert!(d_uncond <= TOLERANCE, "unconditional: {d_uncond:.2e}");
}
