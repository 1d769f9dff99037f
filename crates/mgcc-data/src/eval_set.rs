//! Validation samples: the preprocessed image at S×S (no augmentation), the mask resized
//! (nearest) to S×S and the original size, for evaluation at batch 1.

use rayon::prelude::*;

use crate::augment::Augment;
use crate::error::Result;
use crate::layout::Sample;
use crate::loader::load_labeled;
use crate::transform::{Channels, mask_into, normalise_into};

/// One validation sample.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSample {
    pub stem: String,
    /// C×S×S, normalised as in training.
    pub image: Vec<f32>,
    /// S×S in {0, 1}.
    pub mask: Vec<f32>,
    /// Original width and height of the image.
    pub width: u32,
    pub height: u32,
    pub channels: usize,
    pub size: usize,
}

/// Load `samples` in parallel, in order; the first failing file (in order) is the error.
pub fn load_eval_samples(
    samples: &[Sample],
    size: u32,
    channels: Channels,
) -> Result<Vec<EvalSample>> {
    let loaded: Vec<Result<EvalSample>> = samples
        .par_iter()
        .map(|s| {
            let (img, mask) = load_labeled(s, size, channels)?;
            let n = img.size;
            let mut image = vec![0.0; channels.count() * n * n];
            normalise_into(&img, channels, Augment::IDENTITY, &mut image);
            let mut m = vec![0.0; n * n];
            mask_into(&mask, n, Augment::IDENTITY, &mut m);
            Ok(EvalSample {
                stem: s.stem.clone(),
                image,
                mask: m,
                width: img.orig.0,
                height: img.orig.1,
                channels: channels.count(),
                size: n,
            })
        })
        .collect();
    loaded.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DataError;
    use crate::test_util::{write_gray, write_mask};

    #[test]
    fn loads_in_order_with_original_size() {
        let t = tempfile::tempdir().unwrap();
        let mk = |name: &str, w: u32, h: u32, mw: u32| {
            let s = Sample {
                stem: name.into(),
                image: t.path().join(format!("{name}.png")),
                mask: t.path().join(format!("{name}_m.png")),
            };
            write_gray(&s.image, w, h, 255);
            write_mask(&s.mask, mw, h, &[(0, 0), (1, 0), (0, 1), (1, 1)]);
            s
        };
        let samples = vec![mk("b", 4, 4, 4), mk("a", 6, 4, 6)];
        let ev = load_eval_samples(&samples, 2, Channels::One).unwrap();
        assert_eq!(
            ev.iter().map(|e| e.stem.as_str()).collect::<Vec<_>>(),
            vec!["b", "a"]
        );
        assert_eq!(
            (ev[1].width, ev[1].height, ev[1].size, ev[1].channels),
            (6, 4, 2, 1)
        );
        assert!(ev[0].image.iter().all(|&v| (v - 1.0).abs() < 1e-6));
        assert_eq!(ev[0].mask, vec![1.0, 0.0, 0.0, 0.0]);
        let bad = vec![mk("c", 4, 4, 5)];
        let err = load_eval_samples(&bad, 2, Channels::One).unwrap_err();
        assert!(matches!(err, DataError::SizeMismatch { .. }), "{err}");
        assert!(err.to_string().contains("c_m.png"));
    }
}
