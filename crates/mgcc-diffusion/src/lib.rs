//! Stage one of MGCC: a Medfusion-style latent diffusion model that generates synthetic
//! ultrasound images for the unlabelled stream of semi-supervised training.
//!
//! - [`vae`]: the autoencoder (image ↔ 8-channel latent at 1/8 resolution), trained by
//!   [`vae_train`] with [`ssim`] in its loss;
//! - [`unet`]: the time- (and optionally class-) conditioned latent denoiser, trained by
//!   [`ldm_train`];
//! - [`schedule`]: β/ᾱ tables; [`sampler`]: DDPM and DDIM with classifier-free guidance;
//!   [`generate`]: resumable generation into a folder of PNGs;
//! - [`quality`]: the report on generated images (nearest neighbours, diversity, KID/FID).

pub mod bench;
pub mod ema;
pub mod error;
pub mod generate;
pub mod image_grid;
pub mod image_set;
pub mod layers;
pub mod ldm_train;
pub mod metrics_log;
pub mod progress;
pub mod quality;
pub mod res_block;
pub mod run_dir;
pub mod sampler;
pub mod schedule;
pub mod ssim;
pub mod train_common;
pub mod unet;
pub mod vae;
pub mod vae_train;

pub use error::LdmError;

#[cfg(test)]
mod test_util;
