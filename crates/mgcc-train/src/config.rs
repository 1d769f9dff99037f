//! The training configuration: every knob of a run, resolved and saved as `RUN/config.toml`
//! before training starts. Inference rebuilds the model from the saved file, never from flags.

use std::path::{Path, PathBuf};

use mgcc_model::{Backbone, Heads, NetConfig, Perturbation};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// How the network is trained. Each method is documented in `docs/methods.md` and in its
/// file under `methods/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Labelled images only, BCE+Dice on the main decoder.
    Supervised,
    /// Mean teacher (Tarvainen & Valpola 2017): consistency with an EMA teacher.
    MeanTeacher,
    /// Uncertainty-aware mean teacher (Yu et al. 2019): consistency where the teacher is sure.
    UaMt,
    /// Cross-consistency training (Ouali et al. 2020): auxiliary decoders on perturbed final
    /// features.
    Cct,
    /// Cross pseudo supervision (Chen et al. 2021): two networks teach each other.
    Cps,
    /// Uncertainty-rectified pyramid consistency (Luo et al. 2021): side outputs at three
    /// decoder levels.
    Urpc,
    /// MGCC (Tang et al. 2023): auxiliary decoders at three depths of global context.
    Mgcc,
}

impl Method {
    /// Every method, in the order of the comparison tables.
    pub const ALL: [Method; 7] = [
        Method::Supervised,
        Method::MeanTeacher,
        Method::UaMt,
        Method::Cct,
        Method::Cps,
        Method::Urpc,
        Method::Mgcc,
    ];

    /// The name on the command line and in config files.
    pub fn name(self) -> &'static str {
        match self {
            Method::Supervised => "supervised",
            Method::MeanTeacher => "mean-teacher",
            Method::UaMt => "ua-mt",
            Method::Cct => "cct",
            Method::Cps => "cps",
            Method::Urpc => "urpc",
            Method::Mgcc => "mgcc",
        }
    }

    /// The training outputs the method needs from its network.
    pub fn heads(self) -> Heads {
        match self {
            Method::Supervised | Method::MeanTeacher | Method::UaMt | Method::Cps => Heads::Single,
            Method::Cct => Heads::SameLevel,
            Method::Urpc => Heads::Pyramid,
            Method::Mgcc => Heads::MultiLevel,
        }
    }

    /// Whether batches carry unlabelled images.
    pub fn uses_unlabeled(self) -> bool {
        self != Method::Supervised
    }

    /// The published maximum consistency weight C: 7 for MGCC (its code), 0.1 for the SSL4MIS
    /// baselines, 0 for supervised training.
    pub fn default_consistency(self) -> f64 {
        match self {
            Method::Supervised => 0.0,
            Method::Mgcc => 7.0,
            _ => 0.1,
        }
    }

    /// Refuses a method the backbone cannot run, by name.
    pub fn check_backbone(self, backbone: Backbone) -> Result<(), String> {
        if self == Method::Mgcc && backbone == Backbone::Unet {
            return Err(
                "method mgcc needs the mgcc backbone: its auxiliary decoders are fed \
                 between the ConvMixer stages, which the unet backbone does not have \
                 (method cct is the same consistency on one level)"
                    .into(),
            );
        }
        Ok(())
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
                format!(
                    "unknown method '{s}' (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// Which training protocol the run follows; see `docs/methods.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// mgcc's defaults: a seeded draw of the labelled subset, uniform rotation/flip
    /// augmentation, validation once per epoch but at most 100 times a run, evaluation at
    /// each image's own size.
    #[default]
    Default,
    /// The published MGCC code's protocol: the first ⌊p·N⌋ stems of the split file are
    /// labelled, albumentations `RandomRotate90(p=0.5)` then `Flip(p=0.5)`, validation after
    /// every epoch with the best checkpoint kept, evaluation on the training grid.
    Reference,
}

impl Protocol {
    /// The name on the command line and in config files.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Default => "default",
            Protocol::Reference => "reference",
        }
    }
}

impl std::str::FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "default" => Ok(Protocol::Default),
            "reference" => Ok(Protocol::Reference),
            other => Err(format!(
                "unknown protocol '{other}' (expected default or reference)"
            )),
        }
    }
}

/// Mean-teacher settings (SSL4MIS `train_mean_teacher_2D.py`); UA-MT uses the teacher ones.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeanTeacherParams {
    /// Upper bound of the EMA factor α = min(1 − 1/(t + 1), ema_decay).
    pub ema_decay: f64,
    /// Teacher input noise: clamp(N(0, 1)·noise_std, ±noise_clip).
    pub noise_std: f64,
    pub noise_clip: f64,
    /// The consistency term is 0 before this iteration (1000 in SSL4MIS's mean teacher).
    pub consistency_start: usize,
}

impl Default for MeanTeacherParams {
    fn default() -> Self {
        Self {
            ema_decay: 0.99,
            noise_std: 0.1,
            noise_clip: 0.2,
            consistency_start: 1000,
        }
    }
}

/// UA-MT settings (SSL4MIS `train_uncertainty_aware_mean_teacher_2D.py`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UaMtParams {
    /// Noisy teacher passes T for the uncertainty (even; run two copies per forward).
    pub passes: usize,
    /// Uncertainty threshold (start + (1 − start)·ramp(t, T_max))·ln 2.
    pub threshold_start: f64,
}

impl Default for UaMtParams {
    fn default() -> Self {
        Self {
            passes: 8,
            threshold_start: 0.75,
        }
    }
}

/// CPS settings (SSL4MIS `train_cross_pseudo_supervision_2D.py`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CpsParams {
    /// A pixel's hard pseudo-label is 1 when the other network's probability exceeds this.
    pub threshold: f64,
}

impl Default for CpsParams {
    fn default() -> Self {
        Self { threshold: 0.5 }
    }
}

/// All settings of one training run. Defaults are those of the published MGCC code for
/// `mgcc`, and of SSL4MIS for the baselines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Dataset folder (`images/`, `masks/0/`, split files).
    pub data: PathBuf,
    /// Split index k: reads `NAME_train{k}.txt` and `NAME_val{k}.txt`.
    pub split: usize,
    /// Split name prefix; needed only when the dataset has several.
    pub split_name: Option<String>,
    /// Extra folders of unlabelled images (e.g. generated ones).
    pub unlabeled_dirs: Vec<PathBuf>,
    /// The training method.
    pub method: Method,
    /// The network family: `mgcc` or `unet`.
    pub backbone: Backbone,
    /// `default` or `reference` (the published MGCC code's protocol).
    pub protocol: Protocol,
    /// Share of the train list that keeps its masks (used when `labeled_count` is not set).
    pub labeled_fraction: f64,
    /// Exact number of labelled images; overrides `labeled_fraction`.
    pub labeled_count: Option<usize>,
    /// Images per batch, labelled plus unlabelled.
    pub batch: usize,
    /// Labelled images per batch (the first part of the batch).
    pub labeled_batch: usize,
    /// Training image size (square).
    pub size: usize,
    /// Input channels: 3 (grayscale repeated, ImageNet normalisation) or 1.
    pub in_channels: usize,
    /// First-level width of the network; default 64 for `mgcc` (the paper), 16 for `unet`
    /// (SSL4MIS). Resolved before the run's config.toml is written.
    pub width: Option<usize>,
    /// Total optimiser steps T; default 40000 × labelled share, as the published code.
    pub iterations: Option<usize>,
    /// Base learning rate of SGD.
    pub lr: f64,
    /// SGD momentum (dampening 0, as PyTorch).
    pub momentum: f64,
    /// Weight decay added to the gradient (PyTorch semantics).
    pub weight_decay: f64,
    /// Exponent of the poly learning-rate decay.
    pub lr_power: f64,
    /// Maximum consistency weight C; default 7 for `mgcc`, 0.1 for the other
    /// semi-supervised methods. Resolved before the run's config.toml is written.
    pub consistency: Option<f64>,
    /// Ramp-up length R in iterations.
    pub rampup: usize,
    /// The ramp is stepped every this many iterations (150 in the published code).
    pub rampup_step: usize,
    /// Validate every this many iterations; default once per epoch but at most 100 times a
    /// run (every epoch under the reference protocol).
    pub val_every: Option<usize>,
    /// Validation cases shown in the image panel written at each validation.
    pub panel_cases: usize,
    /// Seed of every random stream of the run.
    pub seed: u64,
    /// Data augmentation (random 90° rotation and flips).
    pub augment: bool,
    /// Quirk of the published code: divide the normalised input by 255 a second time.
    pub quirk_double_scaling: bool,
    /// Keep decoded, resized images in memory.
    pub cache: bool,
    /// Batches prepared ahead of the training thread.
    pub prefetch: usize,
    /// Perturbations of MGCC, CCT and URPC.
    pub perturbation: Perturbation,
    /// Mean teacher (and the teacher of UA-MT).
    pub mean_teacher: MeanTeacherParams,
    /// UA-MT.
    pub ua_mt: UaMtParams,
    /// CPS.
    pub cps: CpsParams,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            data: PathBuf::new(),
            split: 1,
            split_name: None,
            unlabeled_dirs: Vec::new(),
            method: Method::Mgcc,
            backbone: Backbone::Mgcc,
            protocol: Protocol::Default,
            labeled_fraction: 0.5,
            labeled_count: None,
            batch: 8,
            labeled_batch: 4,
            size: 256,
            in_channels: 3,
            width: None,
            iterations: None,
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 1e-4,
            lr_power: 0.9,
            consistency: None,
            rampup: 30000,
            rampup_step: 150,
            val_every: None,
            panel_cases: 4,
            seed: 41,
            augment: true,
            quirk_double_scaling: false,
            cache: true,
            prefetch: 4,
            perturbation: Perturbation::default(),
            mean_teacher: MeanTeacherParams::default(),
            ua_mt: UaMtParams::default(),
            cps: CpsParams::default(),
        }
    }
}

impl TrainConfig {
    /// Read a TOML file; unknown keys are an error that names the file.
    pub fn from_toml_file(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        toml::from_str(&text).map_err(|e| TrainError::Config {
            path: path.to_path_buf(),
            message: toml_error_message(&text, &e),
        })
    }

    /// The resolved file, as written in the run folder.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// The config as a run stores it: [`TrainConfig::resolved`], with the data folders made
    /// absolute (so that `--resume` works from any folder).
    pub fn as_stored(&self) -> TrainConfig {
        let mut cfg = self.clone().resolved();
        cfg.data = mgcc_data::safe_fs::paths::resolve(&cfg.data);
        for d in &mut cfg.unlabeled_dirs {
            *d = mgcc_data::safe_fs::paths::resolve(d);
        }
        cfg
    }

    /// Total iterations T: the explicit value or 40000 × labelled share (the published default).
    pub fn total_iterations(&self, n_labeled: usize, n_train: usize) -> usize {
        self.iterations.unwrap_or_else(|| {
            let share = if n_train == 0 {
                0.0
            } else {
                n_labeled as f64 / n_train as f64
            };
            ((40000.0 * share).round() as usize).max(1)
        })
    }

    /// Unlabelled images per batch (0 for the supervised baseline).
    pub fn unlabeled_batch(&self) -> usize {
        if self.method.uses_unlabeled() {
            self.batch - self.labeled_batch
        } else {
            0
        }
    }

    /// The first-level width: the explicit value or the backbone's published one.
    pub fn width(&self) -> usize {
        self.width.unwrap_or(self.backbone.default_width())
    }

    /// The maximum consistency weight: the explicit value or the method's published one.
    pub fn consistency_max(&self) -> f64 {
        self.consistency
            .unwrap_or(self.method.default_consistency())
    }

    /// The same config with every method- and backbone-dependent default written out, as it
    /// is saved in the run folder.
    pub fn resolved(mut self) -> Self {
        self.width = Some(self.width());
        self.consistency = Some(self.consistency_max());
        self
    }

    /// The network this config trains (the inference network of the run).
    pub fn net_config(&self) -> NetConfig {
        NetConfig {
            backbone: self.backbone,
            in_channels: self.in_channels,
            width: self.width(),
            heads: self.method.heads(),
        }
    }

    /// Factor applied to normalised inputs: 1/255 with the published code's double scaling.
    pub fn input_scale(&self) -> f32 {
        if self.quirk_double_scaling {
            1.0 / 255.0
        } else {
            1.0
        }
    }

    /// Check values that would otherwise fail deep inside training.
    pub fn validate(&self) -> Result<(), String> {
        if self.size == 0 || !self.size.is_multiple_of(16) {
            return Err(format!(
                "size must be a positive multiple of 16 (got {})",
                self.size
            ));
        }
        if self.in_channels != 1 && self.in_channels != 3 {
            return Err(format!(
                "in_channels must be 1 or 3 (got {})",
                self.in_channels
            ));
        }
        if self.width == Some(0) {
            return Err("width must be at least 1".into());
        }
        if self.iterations == Some(0) {
            return Err("iterations must be at least 1".into());
        }
        self.method.check_backbone(self.backbone)?;
        self.net_config().validate()?;
        self.perturbation.validate()?;
        let mt = &self.mean_teacher;
        if !(0.0..=1.0).contains(&mt.ema_decay) {
            return Err(format!(
                "mean_teacher.ema_decay must be in [0, 1] (got {})",
                mt.ema_decay
            ));
        }
        if !(mt.noise_std >= 0.0 && mt.noise_clip >= 0.0) {
            return Err("mean_teacher.noise_std and noise_clip must be >= 0".into());
        }
        if self.ua_mt.passes == 0 || !self.ua_mt.passes.is_multiple_of(2) {
            return Err(format!(
                "ua_mt.passes must be a positive even number (got {})",
                self.ua_mt.passes
            ));
        }
        if !(0.0..=1.0).contains(&self.ua_mt.threshold_start) {
            return Err("ua_mt.threshold_start must be in [0, 1]".into());
        }
        if !(0.0..1.0).contains(&self.cps.threshold) {
            return Err("cps.threshold must be in [0, 1)".into());
        }
        if let Some(c) = self.consistency
            && !(c >= 0.0 && c.is_finite())
        {
            return Err(format!("consistency must be >= 0 (got {c})"));
        }
        if self.labeled_batch == 0 || self.labeled_batch > self.batch {
            return Err(format!(
                "labeled_batch must be between 1 and batch (got {} of {})",
                self.labeled_batch, self.batch
            ));
        }
        if self.method.uses_unlabeled() && self.labeled_batch == self.batch {
            return Err(format!(
                "method {} needs unlabelled images in each batch: labeled_batch < batch",
                self.method
            ));
        }
        if !(self.labeled_fraction > 0.0 && self.labeled_fraction <= 1.0) {
            return Err(format!(
                "labeled_fraction must be in (0, 1] (got {})",
                self.labeled_fraction
            ));
        }
        if self.labeled_count == Some(0) {
            return Err("labeled_count must be at least 1".into());
        }
        if self.lr.is_nan() || self.lr <= 0.0 || !self.lr.is_finite() {
            return Err(format!("lr must be positive (got {})", self.lr));
        }
        if self.val_every == Some(0) {
            return Err("val_every must be at least 1".into());
        }
        Ok(())
    }
}

/// A TOML error as `line L, column C: message` (1-based, from the error's span in `text`).
pub fn toml_error_message(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim_end();
    match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trip_keeps_every_field() {
        let cfg = TrainConfig {
            data: "data/busi".into(),
            labeled_count: Some(12),
            unlabeled_dirs: vec!["gen".into()],
            method: Method::Supervised,
            ..Default::default()
        };
        let back: TrainConfig = toml::from_str(&cfg.to_toml()).unwrap();
        assert_eq!(cfg, back);
    }

    #[test]
    fn unknown_key_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "widht = 16\n").unwrap();
        let err = TrainConfig::from_toml_file(&path).unwrap_err().to_string();
        assert!(err.contains("bad.toml") && err.contains("widht"), "{err}");
    }

    #[test]
    fn default_iterations_follow_the_published_rule() {
        let cfg = TrainConfig::default();
        assert_eq!(cfg.total_iterations(50, 100), 20000);
        assert_eq!(cfg.total_iterations(25, 100), 10000);
    }

    #[test]
    fn method_names_round_trip_and_unknown_ones_list_the_choices() {
        for m in Method::ALL {
            assert_eq!(m.name().parse::<Method>().unwrap(), m);
            let cfg = TrainConfig {
                method: m,
                ..Default::default()
            };
            let back: TrainConfig = toml::from_str(&cfg.to_toml()).unwrap();
            assert_eq!(back.method, m);
        }
        let err = "mean_teacher".parse::<Method>().unwrap_err();
        assert!(
            err.contains("mean-teacher") && err.contains("urpc"),
            "{err}"
        );
    }

    #[test]
    fn mgcc_on_the_unet_backbone_is_refused_by_name() {
        let cfg = TrainConfig {
            method: Method::Mgcc,
            backbone: Backbone::Unet,
            ..Default::default()
        };
        let err = cfg.validate().unwrap_err();
        assert!(err.contains("mgcc") && err.contains("unet"), "{err}");
        for m in Method::ALL.into_iter().filter(|&m| m != Method::Mgcc) {
            let ok = TrainConfig {
                method: m,
                backbone: Backbone::Unet,
                ..Default::default()
            };
            assert!(ok.validate().is_ok(), "{m}");
        }
    }

    #[test]
    fn resolved_config_writes_out_the_method_and_backbone_defaults() {
        let cct_unet = TrainConfig {
            method: Method::Cct,
            backbone: Backbone::Unet,
            ..Default::default()
        }
        .resolved();
        assert_eq!(
            (cct_unet.width, cct_unet.consistency),
            (Some(16), Some(0.1))
        );
        let mgcc = TrainConfig::default().resolved();
        assert_eq!((mgcc.width, mgcc.consistency), (Some(64), Some(7.0)));
        let explicit = TrainConfig {
            width: Some(8),
            consistency: Some(2.0),
            ..Default::default()
        }
        .resolved();
        assert_eq!((explicit.width, explicit.consistency), (Some(8), Some(2.0)));
        assert!(cct_unet.to_toml().contains("width = 16"));
    }

    #[test]
    fn a_config_written_before_the_baselines_still_reads() {
        // config.toml of an MGCC run of the previous release (no backbone, protocol or
        // method sections).
        let old = r#"data = "d"
split = 1
unlabeled_dirs = []
method = "mgcc"
labeled_fraction = 0.25
batch = 8
labeled_batch = 4
size = 64
in_channels = 3
width = 8
iterations = 100
lr = 0.05
momentum = 0.9
weight_decay = 0.0001
lr_power = 0.9
consistency = 7.0
rampup = 50
rampup_step = 10
val_every = 25
panel_cases = 4
seed = 41
augment = true
cache = true
prefetch = 4
"#;
        let cfg: TrainConfig = toml::from_str(old).unwrap();
        assert_eq!(cfg.method, Method::Mgcc);
        assert_eq!(cfg.backbone, Backbone::Mgcc);
        assert_eq!(cfg.protocol, Protocol::Default);
        assert_eq!((cfg.width(), cfg.consistency_max()), (8, 7.0));
        assert!(cfg.validate().is_ok());
    }

    #[test]
    fn validation_rejects_bad_values() {
        let bad = TrainConfig {
            size: 100,
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("multiple of 16"));
        let bad = TrainConfig {
            labeled_batch: 8,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        assert!(TrainConfig::default().validate().is_ok());
    }
}
