//! Exponential moving average of a model's weights, for sampling:
//! `ema ← decay·ema + (1 − decay)·model` after every optimiser step.
//!
//! Parameters are matched by their order of visit, so `ema` and `model` must have the same
//! structure (both built from the same config); ids may differ (e.g. after loading).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let v = param.val();
        let n = v.shape().num_elements();
        self.0.push(v.reshape([n]));
    }
}

struct Blend {
    params: std::vec::IntoIter<Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let other = self
            .params
            .next()
            .expect("EMA and model have the same parameters");
        let decay = self.decay;
        param.map(|t| {
            let shape = t.shape();
            let other = other.reshape(shape).to_device(&t.device());
            t * decay + other * (1.0 - decay)
        })
    }
}

/// `decay·ema + (1 − decay)·model`, parameter by parameter.
pub fn update<M: Module>(ema: M, model: &M, decay: f64) -> M {
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    ema.map(&mut Blend {
        params: collect.0.into_iter(),
        decay,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::Device;

    #[test]
    fn blends_every_parameter() {
        let _rng = crate::test_util::rng_lock();
        let device = Device::flex();
        let a: Linear = LinearConfig::new(3, 2).init(&device);
        let b: Linear = LinearConfig::new(3, 2).init(&device);
        let wa: Vec<f32> = a.weight.val().into_data().try_to_vec().unwrap();
        let wb: Vec<f32> = b.weight.val().into_data().try_to_vec().unwrap();
        let m = update(a, &b, 0.9);
        let wm: Vec<f32> = m.weight.val().into_data().try_to_vec().unwrap();
        for i in 0..wm.len() {
            assert!((wm[i] - (0.9 * wa[i] + 0.1 * wb[i])).abs() < 1e-6);
        }
    }
}
