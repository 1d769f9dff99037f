//! Running a trained network on one image: preprocess at the training size, forward through the
//! main decoder, sigmoid, and map the probabilities back to the image's own size (bilinear).

use std::path::{Path, PathBuf};

use burn::prelude::*;
use image::DynamicImage;
use mgcc_data::{Channels, preprocess_image};
use mgcc_model::SegNet;

use crate::overlay::resize_prob;

/// What inference needs to know about the training input.
#[derive(Debug, Clone, Copy)]
pub struct InputSpec {
    /// Square size the network was trained at.
    pub size: usize,
    pub channels: Channels,
    /// Factor on the normalised input: 1, or 1/255 for a run trained with the published
    /// code's double scaling.
    pub scale: f32,
}

/// Errors of evaluation and prediction, naming the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error(transparent)]
    Data(#[from] mgcc_data::DataError),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{path} already exists; pass --force to overwrite predictions")]
    Exists { path: PathBuf },
    #[error("{0}")]
    Other(String),
}

impl InferError {
    pub(crate) fn file(path: &Path, message: impl ToString) -> Self {
        InferError::File {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }
}

/// Probability map of one image: (probabilities at the training size, S×S) and (at the image's
/// own size, W×H), both row-major.
pub struct Prediction {
    pub at_train_size: Vec<f32>,
    pub at_image_size: Vec<f32>,
    pub width: u32,
    pub height: u32,
}

/// Predict the lesion probability of `image` with a model in validation mode.
pub fn predict_image(
    model: &SegNet,
    spec: InputSpec,
    image: &DynamicImage,
    device: &Device,
) -> Result<Prediction, InferError> {
    let s = spec.size;
    let x = preprocess_image(image, s as u32, spec.channels);
    let mut x =
        Tensor::<4>::from_data(TensorData::new(x, [1, spec.channels.count(), s, s]), device);
    if spec.scale != 1.0 {
        x = x.mul_scalar(spec.scale);
    }
    let prob = model
        .predict(x)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| InferError::Other(format!("reading the prediction back: {e:?}")))?;
    let (w, h) = (image.width(), image.height());
    let native = resize_prob(&prob, s as u32, s as u32, w, h)
        .map_err(|e| InferError::Other(e.to_string()))?;
    Ok(Prediction {
        at_train_size: prob,
        at_image_size: native,
        width: w,
        height: h,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::activation::sigmoid;
    use mgcc_model::{Backbone, Heads, NetConfig};

    #[test]
    fn the_input_scale_reaches_the_network() {
        let device = Device::flex();
        device.seed(2);
        let net = NetConfig {
            backbone: Backbone::Unet,
            in_channels: 1,
            width: 2,
            heads: Heads::Single,
        }
        .init(&device);
        let image = DynamicImage::ImageLuma8(image::GrayImage::from_fn(20, 12, |x, y| {
            image::Luma([(x * 11 + y * 7) as u8])
        }));
        let spec = |scale| InputSpec {
            size: 16,
            channels: Channels::One,
            scale,
        };
        let x = preprocess_image(&image, 16, Channels::One);
        let expect = |scale: f32| -> Vec<f32> {
            let t = Tensor::<4>::from_data(TensorData::new(x.clone(), [1, 1, 16, 16]), &device);
            sigmoid(net.forward(t.mul_scalar(scale)))
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let plain = predict_image(&net, spec(1.0), &image, &device).unwrap();
        let quirk = predict_image(&net, spec(1.0 / 255.0), &image, &device).unwrap();
        assert_eq!(plain.at_train_size, expect(1.0));
        assert_eq!(quirk.at_train_size, expect(1.0 / 255.0));
        assert_ne!(plain.at_train_size, quirk.at_train_size);
        assert_eq!((quirk.width, quirk.height), (20, 12));
    }
}
