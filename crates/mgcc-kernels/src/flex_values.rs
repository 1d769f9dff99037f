//! Access to the f32 values of flex tensors, shared by the backend extensions.

use std::borrow::Cow;

use burn::backend::Flex;
use burn::backend::tensor::FloatTensor;
use burn::tensor::DType;

/// The f32 values of a flex tensor in row-major order (borrowed when already contiguous).
pub(crate) fn values(t: &FloatTensor<Flex>) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(
            t.to_contiguous()
                .as_slice::<f32>()
                .unwrap_or_default()
                .to_vec(),
        ),
    }
}

/// Whether every tensor holds f32 values.
pub(crate) fn is_f32(ts: &[&FloatTensor<Flex>]) -> bool {
    ts.iter().all(|t| t.dtype() == DType::F32)
}
