//! Saving and loading network weights (burnpack files through burn 0.22's record API).

use std::path::Path;

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Device;

use crate::error::ModelError;
use crate::network::{Mgcc, MgccConfig};

impl Mgcc {
    /// Writes all parameters and batch-norm running statistics to `path` (burnpack format).
    ///
    /// Running statistics are synchronised first (burn keeps the latest update pending per
    /// thread), so the file reflects every training step taken so far.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ModelError> {
        let path = path.as_ref();
        self.valid()
            .into_record()
            .save(path)
            .map_err(|e| ModelError::Save {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
    }

    /// Builds a network from `config` on `device` and loads the weights saved at `path`.
    /// Fails if the file is missing or unreadable or its tensors do not fit `config`.
    pub fn load(
        config: &MgccConfig,
        path: impl AsRef<Path>,
        device: &Device,
    ) -> Result<Mgcc, ModelError> {
        let path = path.as_ref();
        let err = |e: burn::store::RecordError| ModelError::Load {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let record = ModuleRecord::load(path).map_err(err)?;
        config.init(device).try_load_record(record).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tensor};

    #[test]
    fn round_trip_preserves_weights_and_running_stats() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex().autodiff();
        device.seed(4);
        let config = MgccConfig::new().with_width(3);
        let model = config.init(&device);
        let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Default, &device);
        let _ = model.forward_train(x.clone()); // moves the running statistics off 0/1
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mgcc.bpk");
        model.save(&path).unwrap();

        let plain = Device::flex();
        let loaded = Mgcc::load(&config, &path, &plain).unwrap();
        let xe = x.inner();
        let expect = model.valid().forward(xe.clone());
        let got = loaded.forward(xe.clone());
        let diff: f32 = (expect.clone() - got).abs().max().into_scalar::<f32>();
        assert_eq!(diff, 0.0);
        // A freshly initialised model (untouched running stats, other weights) differs.
        let fresh: f32 = (expect - config.init(&plain).forward(xe))
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(fresh > 1e-4);
    }

    #[test]
    fn load_reports_missing_file_and_mismatched_width() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.bpk");
        let err = Mgcc::load(&MgccConfig::new().with_width(3), &missing, &device).unwrap_err();
        assert!(matches!(err, ModelError::Load { .. }));
        assert!(err.to_string().contains("none.bpk"));

        let path = dir.path().join("w3.bpk");
        MgccConfig::new()
            .with_width(3)
            .init(&device)
            .save(&path)
            .unwrap();
        let err = Mgcc::load(&MgccConfig::new().with_width(5), &path, &device).unwrap_err();
        assert!(matches!(err, ModelError::Load { .. }), "{err}");
    }
}
