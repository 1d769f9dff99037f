//! The trainable state of a run — the network, its optimiser, and the method's other networks
//! (the EMA teacher of the mean-teacher methods, CPS's second network with its own optimiser)
//! — and one optimiser step of any method: forward, the method's loss, backward, SGD, EMA.
//!
//! Every random draw of a step comes from the device RNG, which the trainer re-seeds before
//! each step, and every network and optimiser state is checkpointed, so a resumed run of any
//! method continues with exactly the weights of an uninterrupted one.

use std::path::Path;

use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use mgcc_model::SegNet;

use crate::checkpoint::{self, MODEL_FILE, OPTIM_FILE};
use crate::config::{Method, TrainConfig};
use crate::error::TrainError;
use crate::methods::{
    MethodLoss, StepInput, cps, cross_consistency, ema, mean_teacher, supervised, ua_mt, urpc,
};
use crate::schedule::consistency_weight;

/// Weights of the mean teacher (`last` checkpoint).
pub const TEACHER_FILE: &str = "teacher.bpk";
/// Weights of CPS's second network (`last` checkpoint).
pub const PEER_FILE: &str = "peer.bpk";
/// Optimiser state of CPS's second network (`last` checkpoint).
pub const PEER_OPTIM_FILE: &str = "peer_optimizer.bpk";

/// Loss values of one step, read back from the device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepLosses {
    /// The method's supervised term (see each method).
    pub supervised: f32,
    /// The method's consistency term before weighting (0 for supervised training).
    pub consistency: f32,
    /// supervised + weight · consistency, the loss that was minimised.
    pub total: f32,
}

/// SGD with PyTorch semantics: momentum with dampening 0 (burn defaults to 0.1) and weight
/// decay added to the gradient.
pub fn optimizer(cfg: &TrainConfig) -> ModuleOptimizer {
    SgdConfig::new()
        .with_momentum(Some(MomentumConfig {
            momentum: cfg.momentum,
            dampening: 0.0,
            nesterov: false,
        }))
        .with_weight_decay(Some(WeightDecayConfig {
            penalty: cfg.weight_decay as f32,
        }))
        .init()
}

/// The consistency weight w(t) a method uses at step `t`: the ramp up to the method's maximum
/// C, 0 for supervised training and for the mean teacher before its start iteration.
pub fn method_weight(cfg: &TrainConfig, t: usize) -> f64 {
    match cfg.method {
        Method::Supervised => 0.0,
        Method::MeanTeacher if t < cfg.mean_teacher.consistency_start => 0.0,
        _ => consistency_weight(t, cfg.consistency_max(), cfg.rampup, cfg.rampup_step),
    }
}

/// CPS's second network and its optimiser.
struct Peer {
    net: SegNet,
    optim: ModuleOptimizer,
}

/// The networks and optimisers of one run.
pub struct Learner {
    cfg: TrainConfig,
    net: SegNet,
    optim: ModuleOptimizer,
    teacher: Option<SegNet>,
    peer: Option<Peer>,
}

impl Learner {
    /// Fresh networks drawn from the config's seed: the trained network first (so it is the
    /// same network as a supervised run with that seed), then the teacher (mean teacher,
    /// UA-MT; without gradients) or CPS's second network (a second draw of the same
    /// initialisation). Build on an autodiff device.
    pub fn new(cfg: &TrainConfig, device: &Device) -> Self {
        device.seed(cfg.seed);
        let net_cfg = cfg.net_config();
        let net = net_cfg.init(device);
        let teacher = matches!(cfg.method, Method::MeanTeacher | Method::UaMt)
            .then(|| net_cfg.init(device).no_grad());
        let peer = (cfg.method == Method::Cps).then(|| Peer {
            net: net_cfg.init(device),
            optim: optimizer(cfg),
        });
        Self {
            cfg: cfg.clone(),
            net,
            optim: optimizer(cfg),
            teacher,
            peer,
        }
    }

    /// The network that is validated, checkpointed as `best` and used for inference (the
    /// student of the mean teachers, the first network of CPS).
    pub fn net(&self) -> &SegNet {
        &self.net
    }

    /// The mean teacher, for methods that have one.
    pub fn teacher(&self) -> Option<&SegNet> {
        self.teacher.as_ref()
    }

    /// CPS's second network.
    pub fn peer(&self) -> Option<&SegNet> {
        self.peer.as_ref().map(|p| &p.net)
    }

    /// Learnable parameters of the trained networks (both for CPS, the student alone for the
    /// mean teachers).
    pub fn num_trained_params(&self) -> usize {
        self.net.num_learnable_params() + self.peer().map_or(0, |p| p.num_learnable_params())
    }

    /// The method's loss of one batch.
    pub fn loss(&self, input: &StepInput) -> MethodLoss {
        let c = &self.cfg;
        let p = &c.perturbation;
        let teacher = || {
            self.teacher
                .as_ref()
                .expect("mean-teacher methods have a teacher")
        };
        match c.method {
            Method::Supervised => supervised::loss(&self.net, input, p),
            Method::MeanTeacher => {
                mean_teacher::loss(&self.net, teacher(), input, &c.mean_teacher, p)
            }
            Method::UaMt => ua_mt::loss(&self.net, teacher(), input, &c.mean_teacher, &c.ua_mt, p),
            Method::Cct | Method::Mgcc => cross_consistency::loss(&self.net, input, p),
            Method::Cps => {
                let peer = self.peer.as_ref().expect("cps has a second network");
                cps::loss(&self.net, &peer.net, input, c.cps.threshold, p)
            }
            Method::Urpc => urpc::loss(&self.net, input, p),
        }
    }

    /// Forward, backward and one SGD step at learning rate `lr` for every trained network,
    /// then the teacher's EMA update. A non-finite loss leaves every network unchanged.
    pub fn step(mut self, input: StepInput, lr: f64) -> (Self, StepLosses) {
        let t = input.t;
        let loss = self.loss(&input);
        let losses = StepLosses {
            supervised: loss.supervised.into_scalar::<f32>(),
            consistency: loss.consistency.into_scalar::<f32>(),
            total: loss.total.clone().into_scalar::<f32>(),
        };
        if !losses.total.is_finite() {
            return (self, losses);
        }
        let mut grads = loss.total.backward();
        let own = GradientsParams::from_module(&mut grads, &self.net);
        self.net = self.optim.step(lr, self.net, own);
        if let Some(mut peer) = self.peer.take() {
            let theirs = GradientsParams::from_module(&mut grads, &peer.net);
            peer.net = peer.optim.step(lr, peer.net, theirs);
            self.peer = Some(peer);
        }
        if let Some(teacher) = self.teacher.take() {
            let a = ema::alpha(t, self.cfg.mean_teacher.ema_decay);
            self.teacher = Some(ema::update(teacher, &self.net, a));
        }
        (self, losses)
    }

    /// Writes the inference network into `dir`, and with `full` everything a resume needs:
    /// its optimiser, the teacher, CPS's second network and optimiser.
    pub fn save(&self, dir: &Path, full: bool) -> Result<(), TrainError> {
        save_net(&self.net, &dir.join(MODEL_FILE))?;
        if !full {
            return Ok(());
        }
        checkpoint::save_optimizer(&self.optim, &dir.join(OPTIM_FILE))?;
        if let Some(teacher) = &self.teacher {
            save_net(teacher, &dir.join(TEACHER_FILE))?;
        }
        if let Some(peer) = &self.peer {
            save_net(&peer.net, &dir.join(PEER_FILE))?;
            checkpoint::save_optimizer(&peer.optim, &dir.join(PEER_OPTIM_FILE))?;
        }
        Ok(())
    }

    /// Loads everything [`save`](Self::save) wrote with `full` from `dir`.
    pub fn load(mut self, dir: &Path) -> Result<Self, TrainError> {
        self.net = load_net(self.net, &dir.join(MODEL_FILE))?;
        self.optim = checkpoint::load_optimizer_file(&dir.join(OPTIM_FILE), self.optim)?;
        if let Some(teacher) = self.teacher.take() {
            self.teacher = Some(load_net(teacher, &dir.join(TEACHER_FILE))?.no_grad());
        }
        if let Some(mut peer) = self.peer.take() {
            peer.net = load_net(peer.net, &dir.join(PEER_FILE))?;
            peer.optim = checkpoint::load_optimizer_file(&dir.join(PEER_OPTIM_FILE), peer.optim)?;
            self.peer = Some(peer);
        }
        Ok(self)
    }
}

/// Write a network's weights, naming the file on failure.
pub fn save_net(net: &SegNet, path: &Path) -> Result<(), TrainError> {
    net.save_weights(path).map_err(|e| TrainError::Checkpoint {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Load a network's weights, naming the file on failure.
pub fn load_net(net: SegNet, path: &Path) -> Result<SegNet, TrainError> {
    if !path.is_file() {
        return Err(TrainError::Checkpoint {
            path: path.to_path_buf(),
            message: "missing model weights".into(),
        });
    }
    net.load_weights(path).map_err(|e| TrainError::Checkpoint {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{ModuleVisitor, Param};
    use burn::tensor::Distribution;
    use mgcc_model::Backbone;

    fn config(method: Method, backbone: Backbone) -> TrainConfig {
        TrainConfig {
            method,
            backbone,
            width: Some(2),
            size: 32,
            batch: 4,
            labeled_batch: 2,
            seed: 3,
            mean_teacher: crate::config::MeanTeacherParams {
                consistency_start: 0,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn input(device: &Device, t: usize) -> StepInput {
        StepInput {
            images: Tensor::random([4, 3, 32, 32], Distribution::Default, device),
            masks: Tensor::<4>::random([2, 1, 32, 32], Distribution::Default, device)
                .greater_elem(0.6)
                .float(),
            n_labeled: 2,
            t,
            total: 100,
            weight: 0.5,
        }
    }

    fn output(net: &SegNet) -> Vec<f32> {
        let x = Tensor::<4>::ones([1, 3, 32, 32], &Device::flex());
        net.valid()
            .forward(x)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    }

    /// Float parameters (buffers excluded) as flat vectors, in visit order.
    #[derive(Default)]
    struct Params {
        path: Vec<String>,
        values: Vec<Vec<f32>>,
        tracked: usize,
    }

    impl ModuleVisitor for Params {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self
                .path
                .last()
                .is_some_and(|n| n == "running_mean" || n == "running_var")
            {
                return;
            }
            let t = param.val();
            self.tracked += usize::from(t.is_require_grad());
            self.values
                .push(t.inner().into_data().try_to_vec::<f32>().unwrap());
        }
    }

    fn params(net: &SegNet) -> Params {
        let mut p = Params::default();
        net.visit(&mut p);
        p
    }

    #[test]
    fn the_teacher_never_receives_gradients() {
        let _rng = crate::test_rng_lock();
        for method in [Method::MeanTeacher, Method::UaMt] {
            let device = Device::flex().autodiff();
            let learner = Learner::new(&config(method, Backbone::Unet), &device);
            let teacher = learner.teacher().unwrap();
            assert_eq!(
                params(teacher).tracked,
                0,
                "{method}: teacher params track gradients"
            );
            let loss = learner.loss(&input(&device, 5));
            assert!(loss.consistency.clone().into_scalar::<f32>() > 0.0);
            let grads = loss.total.backward();
            struct AnyGrad<'a>(&'a burn::tensor::Gradients, usize);
            impl ModuleVisitor for AnyGrad<'_> {
                fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
                    self.1 += usize::from(p.val().grad(self.0).is_some());
                }
            }
            let mut on_teacher = AnyGrad(&grads, 0);
            teacher.visit(&mut on_teacher);
            assert_eq!(on_teacher.1, 0, "{method}");
            let mut on_student = AnyGrad(&grads, 0);
            learner.net().visit(&mut on_student);
            assert!(on_student.1 > 0, "{method}: the student must get gradients");
            // Steps keep the teacher untracked.
            let (learner, _) = learner.step(input(&device, 0), 0.01);
            let (learner, _) = learner.step(input(&device, 1), 0.01);
            assert_eq!(params(learner.teacher().unwrap()).tracked, 0, "{method}");
        }
    }

    #[test]
    fn the_teacher_follows_the_ema_of_the_student() {
        let _rng = crate::test_rng_lock();
        let device = Device::flex().autodiff();
        let learner = Learner::new(&config(Method::MeanTeacher, Backbone::Mgcc), &device);
        assert_ne!(
            params(learner.teacher().unwrap()).values,
            params(learner.net()).values,
            "teacher and student start from different draws"
        );
        // t = 0: α = 0, the teacher becomes the updated student.
        let (learner, _) = learner.step(input(&device, 0), 0.01);
        let student1 = params(learner.net()).values;
        assert_eq!(params(learner.teacher().unwrap()).values, student1);
        // t = 1: α = 0.5, the teacher is the mean of the old teacher and the new student.
        let (learner, _) = learner.step(input(&device, 1), 0.01);
        let student2 = params(learner.net()).values;
        let teacher2 = params(learner.teacher().unwrap()).values;
        for ((t, a), b) in teacher2.iter().zip(&student1).zip(&student2) {
            for ((t, a), b) in t.iter().zip(a).zip(b) {
                assert!((t - 0.5 * (a + b)).abs() <= 1e-6 * (1.0 + a.abs() + b.abs()));
            }
        }
    }

    #[test]
    fn the_two_cps_networks_stay_different_and_both_learn() {
        let _rng = crate::test_rng_lock();
        let device = Device::flex().autodiff();
        let mut learner = Learner::new(&config(Method::Cps, Backbone::Mgcc), &device);
        let (a0, b0) = (output(learner.net()), output(learner.peer().unwrap()));
        assert_ne!(a0, b0);
        for t in 0..3 {
            let (next, losses) = learner.step(input(&device, t), 0.05);
            assert!(losses.consistency > 0.0);
            learner = next;
        }
        let (a, b) = (output(learner.net()), output(learner.peer().unwrap()));
        assert_ne!(a, b, "the networks collapsed into one");
        assert_ne!(a, a0, "the first network did not move");
        assert_ne!(b, b0, "the second network did not move");
        assert_eq!(
            learner.num_trained_params(),
            2 * learner.net().num_learnable_params()
        );
    }

    #[test]
    fn mean_teacher_weight_is_zero_before_the_start_iteration() {
        let cfg = TrainConfig {
            method: Method::MeanTeacher,
            rampup: 0,
            ..Default::default()
        };
        assert_eq!(method_weight(&cfg, 999), 0.0);
        assert_eq!(method_weight(&cfg, 1000), 0.1);
        let sup = TrainConfig {
            method: Method::Supervised,
            ..cfg.clone()
        };
        assert_eq!(method_weight(&sup, 5000), 0.0);
        let mgcc = TrainConfig {
            method: Method::Mgcc,
            ..cfg
        };
        assert_eq!(method_weight(&mgcc, 0), 7.0);
    }
}
