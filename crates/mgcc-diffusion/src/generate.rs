//! `mgcc ldm generate`: sample images from a trained denoiser into a folder that
//! `mgcc train --unlabeled-dir` reads directly.
//!
//! Image `i` is `gen_{i:05}.png` (8-bit gray, the autoencoder's image size), generated from seed
//! `step_seed(seed, i)`, so it does not depend on the batch size or on which images were
//! generated before: an interrupted generation resumes by skipping files that exist (each is
//! written under a temporary name and renamed). `generation.json` records the settings; a
//! folder generated with other settings is refused rather than mixed. `manifest.csv` lists
//! file, seed, class, sampler, steps, eta and guidance per image.
//!
//! With `decode_noise` the denoiser is skipped: latents `z ~ N(0, I)/scale` are decoded directly
//! — the baseline against which the report judges the generated images.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::error::LdmError;
use crate::image_grid::{plane_image, save_png};
use crate::ldm_train::{decode_planes, load_ldm};
use crate::run_dir::write_atomic;
use crate::sampler::{self, SamplerConfig};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenerateOptions {
    pub n: usize,
    pub sampler: SamplerConfig,
    /// Class name (None: unconditional, the "no class" token).
    pub class: Option<String>,
    pub seed: u64,
    pub batch: usize,
    /// Decode Gaussian latents without the denoiser (the report's baseline).
    pub decode_noise: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            n: 100,
            sampler: SamplerConfig::default(),
            class: None,
            seed: 0,
            batch: 8,
            decode_noise: false,
        }
    }
}

/// Settings that must agree to add images to an existing folder (everything but `n`/`batch`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Settings {
    run: PathBuf,
    sampler: SamplerConfig,
    class: Option<String>,
    seed: u64,
    decode_noise: bool,
}

/// What a generation call did.
#[derive(Debug, Clone)]
pub struct GenerateSummary {
    pub out: PathBuf,
    pub generated: usize,
    pub skipped: usize,
    pub seconds: f64,
    /// Images per second over the images generated now.
    pub images_per_second: f64,
}

/// File name of image `i`.
pub fn file_name(i: usize) -> String {
    format!("gen_{i:05}.png")
}

/// Generate `opts.n` images from the denoiser run `run` into `out`.
pub fn generate(
    run: &Path,
    out: &Path,
    opts: &GenerateOptions,
    device: &Device,
) -> Result<GenerateSummary, LdmError> {
    if opts.n == 0 || opts.batch == 0 || opts.sampler.steps == 0 {
        return Err(LdmError::Invalid(
            "--n, --batch and --steps must be positive".into(),
        ));
    }
    let ldm = load_ldm(run, device)?;
    let class = match &opts.class {
        Some(name) => Some(
            ldm.config
                .classes
                .iter()
                .position(|c| c == name)
                .ok_or_else(|| {
                    LdmError::Invalid(if ldm.config.classes.is_empty() {
                        format!(
                            "--class {name}: the denoiser in {} is not class-conditioned",
                            run.display()
                        )
                    } else {
                        format!(
                            "--class {name}: unknown class; the denoiser knows {}",
                            ldm.config.classes.join(", ")
                        )
                    })
                })?,
        ),
        None => None,
    };
    std::fs::create_dir_all(out).map_err(|e| LdmError::io(out, e))?;
    let settings = Settings {
        run: std::fs::canonicalize(run).unwrap_or_else(|_| run.to_path_buf()),
        sampler: opts.sampler.clone(),
        class: opts.class.clone(),
        seed: opts.seed,
        decode_noise: opts.decode_noise,
    };
    let settings_path = out.join("generation.json");
    if settings_path.is_file() {
        let text =
            std::fs::read_to_string(&settings_path).map_err(|e| LdmError::io(&settings_path, e))?;
        let old: Settings = serde_json::from_str(&text).map_err(|e| LdmError::Config {
            path: settings_path.clone(),
            message: e.to_string(),
        })?;
        if old != settings {
            return Err(LdmError::Invalid(format!(
                "{}: this folder holds images generated with other settings ({}); choose another --out",
                out.display(),
                text.replace('\n', " ")
            )));
        }
    } else if std::fs::read_dir(out)
        .map_err(|e| LdmError::io(out, e))?
        .next()
        .is_some()
    {
        return Err(LdmError::Invalid(format!(
            "{}: folder is not empty and holds no generation.json; choose an empty or new --out",
            out.display()
        )));
    }
    let json = serde_json::to_string_pretty(&settings).unwrap_or_default();
    write_atomic(&settings_path, json.as_bytes())?;

    let todo: Vec<usize> = (0..opts.n)
        .filter(|&i| !out.join(file_name(i)).is_file())
        .collect();
    let skipped = opts.n - todo.len();
    let started = Instant::now();
    let size = ldm.info.image_size;
    for chunk in todo.chunks(opts.batch) {
        let seeds: Vec<u64> = chunk
            .iter()
            .map(|&i| mgcc_train::trainer::step_seed(opts.seed, i))
            .collect();
        let z = if opts.decode_noise {
            gaussian(&seeds, ldm.info.shape, device)
        } else {
            let classes = class.map(|c| vec![c; seeds.len()]);
            sampler::sample(
                &ldm.unet,
                &ldm.schedule,
                &opts.sampler,
                ldm.info.shape,
                &seeds,
                classes.as_deref(),
                device,
            )
        };
        let planes = decode_planes(&ldm.vae, z, &ldm.info);
        for (&i, plane) in chunk.iter().zip(&planes) {
            save_png(&out.join(file_name(i)), &plane_image(plane, size))?;
        }
        tracing::info!(
            "generated {} of {}",
            chunk.last().map_or(0, |i| i + 1),
            opts.n
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    write_manifest(out, opts)?;
    Ok(GenerateSummary {
        out: out.to_path_buf(),
        generated: todo.len(),
        skipped,
        seconds,
        images_per_second: if seconds > 0.0 {
            todo.len() as f64 / seconds
        } else {
            0.0
        },
    })
}

/// Standard-normal latents, one ChaCha8 stream per seed (as the sampler's start noise).
fn gaussian(seeds: &[u64], shape: [usize; 3], device: &Device) -> Tensor<4> {
    let n: usize = shape.iter().product();
    let mut data = Vec::with_capacity(n * seeds.len());
    for &s in seeds {
        let mut rng = ChaCha8Rng::seed_from_u64(s);
        data.extend((0..n).map(|_| {
            let v: f64 = StandardNormal.sample(&mut rng);
            v as f32
        }));
    }
    let [c, h, w] = shape;
    Tensor::from_data(TensorData::new(data, [seeds.len(), c, h, w]), device)
}

fn write_manifest(out: &Path, opts: &GenerateOptions) -> Result<(), LdmError> {
    let mut text = String::from("file,seed,class,sampler,steps,eta,guidance\n");
    let sampler = if opts.decode_noise {
        "decoded-noise".to_string()
    } else {
        format!("{:?}", opts.sampler.kind).to_lowercase()
    };
    let n_files = (0..)
        .take_while(|&i| out.join(file_name(i)).is_file())
        .count()
        .max(opts.n);
    for i in 0..n_files {
        if !out.join(file_name(i)).is_file() {
            continue;
        }
        text.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            file_name(i),
            mgcc_train::trainer::step_seed(opts.seed, i),
            opts.class.as_deref().unwrap_or(""),
            sampler,
            opts.sampler.steps,
            opts.sampler.eta,
            opts.sampler.guidance
        ));
    }
    write_atomic(&out.join("manifest.csv"), text.as_bytes())
}
