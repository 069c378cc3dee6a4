//! SGD, Adam, AdamW, RMSprop and Adagrad: PyTorch's algorithms and defaults. Each is a config
//! (validated once, in `new`) over the shared [`Core`]; the arithmetic is in
//! `shaders/optim.wgsl` and `src/ops/optim/cpu.rs`.

use super::{check_hyper, Core, Optimizer};
use crate::autograd::Gradients;
use crate::backend::{OptimKind, OptimSpec};
use crate::error::{Error, Result};
use crate::nn::Parameter;
use crate::tensor::Tensor;

/// A spec with every field zero but the kind and rate.
fn spec(kind: OptimKind, lr: f32) -> OptimSpec {
    OptimSpec {
        kind,
        numel: 0,
        lr,
        weight_decay: 0.0,
        eps: 0.0,
        beta1: 0.0,
        beta2: 0.0,
        dampening: 0.0,
        bias1: 1.0,
        bias2_sqrt: 1.0,
        flags: 0,
    }
}

/// `bit` where `on`, else no flag.
fn flag(on: bool, bit: u32) -> u32 {
    if on {
        bit
    } else {
        0
    }
}

/// The learning-rate and state methods every optimizer forwards to its core.
macro_rules! forward_to_core {
    () => {
        fn lr(&self) -> f32 {
            self.core.lr()
        }
        fn set_lr(&mut self, lr: f32) -> Result<()> {
            self.core.set_lr(lr)
        }
        fn state_dict(&self) -> Vec<(String, Tensor)> {
            self.core.state_dict()
        }
        fn load_state_dict(&mut self, state: &[(String, Tensor)]) -> Result<()> {
            self.core.load_state_dict(state)
        }
        fn skip_steps_if(&mut self, flag: Option<Tensor>) -> Result<()> {
            self.core.skip_steps_if(flag)
        }
    };
}

/// `torch.optim.SGD`'s settings and defaults (`lr` has none there; 0.01 here).
///
/// ```
/// use ferrograd::optim::{Sgd, SgdConfig};
/// let cfg = SgdConfig { lr: 0.1, momentum: 0.9, nesterov: true, ..Default::default() };
/// assert_eq!((cfg.dampening, cfg.weight_decay), (0.0, 0.0));
/// assert!(Sgd::new(Vec::new(), cfg).is_ok());
/// let no_momentum = SgdConfig { nesterov: true, ..Default::default() };
/// assert!(Sgd::new(Vec::new(), no_momentum).is_err()); // Nesterov needs momentum
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate (default 0.01).
    pub lr: f32,
    /// Momentum factor: the step follows `buf = momentum * buf + (1 - dampening) * g`
    /// (default 0: no momentum).
    pub momentum: f32,
    /// Dampening of the momentum: the gradient enters the buffer scaled by `1 - dampening`
    /// (default 0).
    pub dampening: f32,
    /// L2 penalty: `weight_decay * w` is added to the gradient.
    pub weight_decay: f32,
    /// Nesterov momentum (needs `momentum > 0` and `dampening = 0`).
    pub nesterov: bool,
    /// Ascend the gradient instead of descending it (PyTorch's `maximize`; default false).
    pub maximize: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 0.01,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
        }
    }
}

/// Stochastic gradient descent with optional momentum, dampening, Nesterov and weight decay.
///
/// ```
/// use ferrograd::nn::Parameter;
/// use ferrograd::optim::{Optimizer, Sgd, SgdConfig};
/// use ferrograd::{Device, Tensor};
/// let w = Parameter::new(Tensor::new([1.0], &Device::cpu())?);
/// let cfg = SgdConfig { lr: 0.5, momentum: 0.5, ..Default::default() };
/// let mut opt = Sgd::new(vec![w.clone()], cfg)?;
/// for _ in 0..2 {
///     opt.step(&w.value().sum_all()?.backward()?)?; // gradient 1
/// }
/// // Steps of 0.5 · 1, then 0.5 · (0.5 · 1 + 1) with the momentum buffer.
/// assert_eq!(w.value().to_vec()?, vec![-0.25]);
/// let names: Vec<String> = opt.state_dict().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["0.momentum_buffer", "0.step"]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Debug)]
pub struct Sgd {
    pub(super) core: Core,
    cfg: SgdConfig,
}

impl Sgd {
    /// SGD over `params` with the settings of `cfg`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `lr`, `momentum` or `weight_decay` is negative or not
    /// finite, `dampening` is outside `[0, 1]`, or `nesterov` is set without `momentum > 0`
    /// and `dampening = 0`.
    pub fn new(params: Vec<Parameter>, cfg: SgdConfig) -> Result<Sgd> {
        Sgd::check(&cfg)?;
        Ok(Sgd {
            core: Core::new(params, OptimKind::Sgd, cfg.lr, &["momentum_buffer"])?,
            cfg,
        })
    }

    fn check(cfg: &SgdConfig) -> Result<()> {
        let op = "Sgd::new";
        check_hyper(op, "momentum", cfg.momentum, 0.0, f32::INFINITY)?;
        check_hyper(op, "dampening", cfg.dampening, 0.0, 1.0)?;
        check_hyper(op, "weight_decay", cfg.weight_decay, 0.0, f32::INFINITY)?;
        if cfg.nesterov && (cfg.momentum <= 0.0 || cfg.dampening != 0.0) {
            return Err(Error::invalid(
                op,
                format!(
                    "Nesterov momentum needs momentum > 0 and dampening 0, found momentum {} \
                     and dampening {}",
                    cfg.momentum, cfg.dampening
                ),
            ));
        }
        Ok(())
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, grads: &Gradients) -> Result<()> {
        let c = self.cfg;
        let mut s = spec(OptimKind::Sgd, self.core.lr());
        s.weight_decay = c.weight_decay;
        s.beta1 = c.momentum;
        s.dampening = c.dampening;
        s.flags = flag(c.nesterov, OptimSpec::NESTEROV) | flag(c.maximize, OptimSpec::MAXIMIZE);
        self.core.step(grads, |_| s)
    }
    fn momentum(&self) -> Option<f32> {
        Some(self.cfg.momentum)
    }
    fn set_momentum(&mut self, momentum: f32) -> Result<()> {
        let cfg = SgdConfig {
            momentum,
            ..self.cfg
        };
        Sgd::check(&cfg).map_err(|e| e.in_op("set_momentum"))?;
        self.cfg = cfg;
        Ok(())
    }
    forward_to_core!();
}

/// `torch.optim.Adam`'s settings and defaults; also AdamW's (where PyTorch's default
/// `weight_decay` is 0.01: see [`AdamConfig::adamw`]).
///
/// ```
/// use ferrograd::optim::{Adam, AdamConfig};
/// let cfg = AdamConfig { lr: 3e-4, ..Default::default() };
/// assert_eq!((cfg.beta1, cfg.beta2, cfg.weight_decay), (0.9, 0.999, 0.0));
/// assert_eq!(AdamConfig::adamw().weight_decay, 0.01);
/// let bad = AdamConfig { beta1: 1.0, ..cfg };
/// assert!(Adam::new(Vec::new(), bad).is_err()); // betas must be below 1
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate (default 1e-3).
    pub lr: f32,
    /// Coefficient of the running average of the gradient (PyTorch's `betas[0]`; default
    /// 0.9).
    pub beta1: f32,
    /// Coefficient of the running average of the squared gradient (PyTorch's `betas[1]`;
    /// default 0.999).
    pub beta2: f32,
    /// Added to the denominator for numerical stability (default 1e-8).
    pub eps: f32,
    /// Adam: L2 penalty, `weight_decay * w` added to the gradient; AdamW: decoupled decay,
    /// `w *= 1 - lr * weight_decay` (default 0; 0.01 in [`AdamConfig::adamw`]).
    pub weight_decay: f32,
    /// AMSGrad: divide by the largest second moment so far, which never shrinks (a third
    /// state row, `max_exp_avg_sq`; default false).
    pub amsgrad: bool,
    /// Ascend the gradient instead of descending it (PyTorch's `maximize`; default false).
    pub maximize: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            maximize: false,
        }
    }
}

impl AdamConfig {
    /// PyTorch's AdamW defaults: Adam's, with `weight_decay = 0.01`.
    pub fn adamw() -> AdamConfig {
        AdamConfig {
            weight_decay: 0.01,
            ..AdamConfig::default()
        }
    }

    fn check(&self, op: &'static str) -> Result<()> {
        check_hyper(op, "beta1", self.beta1, 0.0, 1.0)?;
        check_hyper(op, "beta2", self.beta2, 0.0, 1.0)?;
        if self.beta1 == 1.0 || self.beta2 == 1.0 {
            return Err(Error::invalid(
                op,
                format!(
                    "betas must be below 1 (the bias correction divides by 1 - beta^t), found \
                     ({}, {})",
                    self.beta1, self.beta2
                ),
            ));
        }
        check_hyper(op, "eps", self.eps, 0.0, f32::INFINITY)?;
        check_hyper(op, "weight_decay", self.weight_decay, 0.0, f32::INFINITY)
    }

    /// The spec for step `t` (1-based); the bias corrections in f64, as PyTorch's Python floats.
    fn spec(&self, lr: f32, t: u64, decoupled: bool) -> OptimSpec {
        let mut s = spec(OptimKind::Adam, lr);
        let t = t.min(i32::MAX as u64) as i32;
        s.beta1 = self.beta1;
        s.beta2 = self.beta2;
        s.eps = self.eps;
        s.weight_decay = self.weight_decay;
        s.bias1 = (1.0 - f64::from(self.beta1).powi(t)) as f32;
        s.bias2_sqrt = (1.0 - f64::from(self.beta2).powi(t)).sqrt() as f32;
        s.flags = flag(decoupled, OptimSpec::DECOUPLED)
            | flag(self.amsgrad, OptimSpec::AMSGRAD)
            | flag(self.maximize, OptimSpec::MAXIMIZE);
        s
    }

    /// This config with `beta1` (checked), for `Optimizer::set_momentum`.
    fn with_beta1(self, beta1: f32) -> Result<AdamConfig> {
        let cfg = AdamConfig { beta1, ..self };
        cfg.check("set_momentum")?;
        Ok(cfg)
    }

    /// The state rows' names, PyTorch's.
    fn state_names(&self) -> &'static [&'static str] {
        match self.amsgrad {
            true => &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
            false => &["exp_avg", "exp_avg_sq"],
        }
    }
}

/// Adam: bias-corrected first and second moment estimates; `weight_decay` is an L2 penalty
/// added to the gradient.
///
/// ```
/// use ferrograd::nn::Parameter;
/// use ferrograd::optim::{Adam, AdamConfig, Optimizer};
/// use ferrograd::{Device, Tensor};
/// let w = Parameter::new(Tensor::new([1.0, -1.0], &Device::cpu())?);
/// let mut opt = Adam::new(vec![w.clone()], AdamConfig { lr: 0.1, ..Default::default() })?;
/// let loss = w.value().mul_scalar(100.0)?.sum_all()?; // gradient 100 everywhere
/// opt.step(&loss.backward()?)?;
/// // Adam's first step is `lr` times the gradient's sign, whatever its size.
/// let v = w.value().to_vec()?;
/// assert!((v[0] - 0.9).abs() < 1e-5 && (v[1] + 1.1).abs() < 1e-5);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Debug)]
pub struct Adam {
    pub(super) core: Core,
    cfg: AdamConfig,
}

impl Adam {
    /// Adam over `params` with the settings of `cfg`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `lr`, `eps` or `weight_decay` is negative or not
    /// finite, or a beta is outside `[0, 1)`.
    pub fn new(params: Vec<Parameter>, cfg: AdamConfig) -> Result<Adam> {
        cfg.check("Adam::new")?;
        Ok(Adam {
            core: Core::new(params, OptimKind::Adam, cfg.lr, cfg.state_names())?,
            cfg,
        })
    }
}

impl Optimizer for Adam {
    fn step(&mut self, grads: &Gradients) -> Result<()> {
        let (cfg, lr) = (self.cfg, self.core.lr());
        self.core.step(grads, |t| cfg.spec(lr, t, false))
    }
    fn momentum(&self) -> Option<f32> {
        Some(self.cfg.beta1)
    }
    fn set_momentum(&mut self, beta1: f32) -> Result<()> {
        self.cfg = self.cfg.with_beta1(beta1)?;
        Ok(())
    }
    forward_to_core!();
}

/// AdamW: Adam with decoupled weight decay (`w *= 1 - lr * weight_decay` before the step).
/// Build its config with [`AdamConfig::adamw`] for PyTorch's defaults.
///
/// ```
/// use ferrograd::nn::Parameter;
/// use ferrograd::optim::{AdamConfig, AdamW, Optimizer};
/// use ferrograd::{Device, Tensor};
/// let w = Parameter::new(Tensor::new([2.0], &Device::cpu())?);
/// let cfg = AdamConfig { lr: 0.1, weight_decay: 0.5, ..AdamConfig::adamw() };
/// let mut opt = AdamW::new(vec![w.clone()], cfg)?;
/// let zero_grad = w.value().mul_scalar(0.0)?.sum_all()?.backward()?;
/// opt.step(&zero_grad)?;
/// // With a zero gradient only the decay acts: w · (1 - lr · weight_decay).
/// assert!((w.value().to_scalar()? - 1.9).abs() < 1e-6);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Debug)]
pub struct AdamW {
    pub(super) core: Core,
    cfg: AdamConfig,
}

impl AdamW {
    /// AdamW over `params` with the settings of `cfg` (its `weight_decay` decoupled).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `lr`, `eps` or `weight_decay` is negative or not
    /// finite, or a beta is outside `[0, 1)`.
    pub fn new(params: Vec<Parameter>, cfg: AdamConfig) -> Result<AdamW> {
        cfg.check("AdamW::new")?;
        Ok(AdamW {
            core: Core::new(params, OptimKind::Adam, cfg.lr, cfg.state_names())?,
            cfg,
        })
    }
}

impl Optimizer for AdamW {
    fn step(&mut self, grads: &Gradients) -> Result<()> {
        let (cfg, lr) = (self.cfg, self.core.lr());
        self.core.step(grads, |t| cfg.spec(lr, t, true))
    }
    fn momentum(&self) -> Option<f32> {
        Some(self.cfg.beta1)
    }
    fn set_momentum(&mut self, beta1: f32) -> Result<()> {
        self.cfg = self.cfg.with_beta1(beta1)?;
        Ok(())
    }
    forward_to_core!();
}

/// `torch.optim.RMSprop`'s settings and defaults.
///
/// ```
/// use ferrograd::optim::{RmsProp, RmsPropConfig};
/// let cfg = RmsPropConfig { momentum: 0.9, centered: true, ..Default::default() };
/// assert_eq!((cfg.lr, cfg.alpha, cfg.eps), (0.01, 0.99, 1e-8));
/// assert!(RmsProp::new(Vec::new(), cfg).is_ok());
/// assert!(RmsProp::new(Vec::new(), RmsPropConfig { alpha: 1.5, ..cfg }).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropConfig {
    /// Learning rate (default 0.01).
    pub lr: f32,
    /// Smoothing of the mean square.
    pub alpha: f32,
    /// Added to the denominator for numerical stability (default 1e-8).
    pub eps: f32,
    /// L2 penalty: `weight_decay * w` is added to the gradient (default 0).
    pub weight_decay: f32,
    /// Momentum factor of a buffer accumulating the normalised gradient (default 0: no
    /// momentum).
    pub momentum: f32,
    /// Normalise by the variance of the gradient instead of its mean square.
    pub centered: bool,
    /// Ascend the gradient instead of descending it (PyTorch's `maximize`; default false).
    pub maximize: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        RmsPropConfig {
            lr: 0.01,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
        }
    }
}

/// RMSprop: the gradient divided by a running root mean square.
///
/// ```
/// use ferrograd::nn::Parameter;
/// use ferrograd::optim::{Optimizer, RmsProp, RmsPropConfig};
/// use ferrograd::{Device, Tensor};
/// let w = Parameter::new(Tensor::new([1.0], &Device::cpu())?);
/// let mut opt = RmsProp::new(vec![w.clone()], RmsPropConfig::default())?; // lr 0.01
/// opt.step(&w.value().mul_scalar(2.0)?.sum_all()?.backward()?)?; // gradient 2
/// // The first mean square is (1 - alpha) g² = 0.01 g², so the step is lr · g / (0.1 g).
/// assert!((w.value().to_scalar()? - 0.9).abs() < 1e-5);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Debug)]
pub struct RmsProp {
    pub(super) core: Core,
    cfg: RmsPropConfig,
}

impl RmsProp {
    /// RMSprop over `params` with the settings of `cfg`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `lr`, `eps`, `weight_decay` or `momentum` is negative
    /// or not finite, or `alpha` is outside `[0, 1]`.
    pub fn new(params: Vec<Parameter>, cfg: RmsPropConfig) -> Result<RmsProp> {
        let op = "RmsProp::new";
        check_hyper(op, "alpha", cfg.alpha, 0.0, 1.0)?;
        check_hyper(op, "eps", cfg.eps, 0.0, f32::INFINITY)?;
        check_hyper(op, "weight_decay", cfg.weight_decay, 0.0, f32::INFINITY)?;
        check_hyper(op, "momentum", cfg.momentum, 0.0, f32::INFINITY)?;
        Ok(RmsProp {
            core: Core::new(
                params,
                OptimKind::RmsProp,
                cfg.lr,
                &["square_avg", "momentum_buffer", "grad_avg"],
            )?,
            cfg,
        })
    }
}

impl Optimizer for RmsProp {
    fn step(&mut self, grads: &Gradients) -> Result<()> {
        let c = self.cfg;
        let mut s = spec(OptimKind::RmsProp, self.core.lr());
        s.beta1 = c.momentum;
        s.beta2 = c.alpha;
        s.eps = c.eps;
        s.weight_decay = c.weight_decay;
        s.flags = flag(c.centered, OptimSpec::CENTERED) | flag(c.maximize, OptimSpec::MAXIMIZE);
        self.core.step(grads, |_| s)
    }
    fn momentum(&self) -> Option<f32> {
        Some(self.cfg.momentum)
    }
    fn set_momentum(&mut self, momentum: f32) -> Result<()> {
        check_hyper("set_momentum", "momentum", momentum, 0.0, f32::INFINITY)?;
        self.cfg.momentum = momentum;
        Ok(())
    }
    forward_to_core!();
}

/// `torch.optim.Adagrad`'s settings and defaults.
///
/// ```
/// use ferrograd::optim::{Adagrad, AdagradConfig};
/// let cfg = AdagradConfig { initial_accumulator_value: 0.1, ..Default::default() };
/// assert_eq!((cfg.lr, cfg.eps), (0.01, 1e-10));
/// assert!(Adagrad::new(Vec::new(), AdagradConfig { lr_decay: -1.0, ..cfg }).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradConfig {
    /// Learning rate (default 0.01).
    pub lr: f32,
    /// The rate at step t is `lr / (1 + (t - 1) lr_decay)`.
    pub lr_decay: f32,
    /// L2 penalty: `weight_decay * w` is added to the gradient (default 0).
    pub weight_decay: f32,
    /// Where the sum of squared gradients starts.
    pub initial_accumulator_value: f32,
    /// Added to the denominator for numerical stability (default 1e-10).
    pub eps: f32,
    /// Ascend the gradient instead of descending it (PyTorch's `maximize`; default false).
    pub maximize: bool,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig {
            lr: 0.01,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
        }
    }
}

/// Adagrad: each element's rate shrinks with the sum of its squared gradients.
///
/// ```
/// use ferrograd::nn::Parameter;
/// use ferrograd::optim::{Adagrad, AdagradConfig, Optimizer};
/// use ferrograd::{Device, Tensor};
/// let w = Parameter::new(Tensor::new([1.0], &Device::cpu())?);
/// let mut opt = Adagrad::new(vec![w.clone()], AdagradConfig { lr: 0.5, ..Default::default() })?;
/// for _ in 0..2 {
///     opt.step(&w.value().mul_scalar(3.0)?.sum_all()?.backward()?)?; // gradient 3
/// }
/// // Steps of 0.5 · 3 / √9, then 0.5 · 3 / √18: the rate shrinks as squares add up.
/// let expected = 1.0 - 0.5 - 0.5 / 2f32.sqrt();
/// assert!((w.value().to_scalar()? - expected).abs() < 1e-6);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Debug)]
pub struct Adagrad {
    pub(super) core: Core,
    cfg: AdagradConfig,
}

impl Adagrad {
    /// Adagrad over `params` with the settings of `cfg`, each sum of squared gradients
    /// starting at `cfg.initial_accumulator_value`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `lr`, `lr_decay`, `weight_decay`,
    /// `initial_accumulator_value` or `eps` is negative or not finite.
    pub fn new(params: Vec<Parameter>, cfg: AdagradConfig) -> Result<Adagrad> {
        let op = "Adagrad::new";
        check_hyper(op, "lr_decay", cfg.lr_decay, 0.0, f32::INFINITY)?;
        check_hyper(op, "weight_decay", cfg.weight_decay, 0.0, f32::INFINITY)?;
        let init = cfg.initial_accumulator_value;
        check_hyper(op, "initial_accumulator_value", init, 0.0, f32::INFINITY)?;
        check_hyper(op, "eps", cfg.eps, 0.0, f32::INFINITY)?;
        let core =
            Core::new(params, OptimKind::Adagrad, cfg.lr, &["sum"])?.with_initial_state(init);
        Ok(Adagrad { core, cfg })
    }
}

impl Optimizer for Adagrad {
    fn step(&mut self, grads: &Gradients) -> Result<()> {
        let (c, lr) = (self.cfg, self.core.lr());
        self.core.step(grads, |t| {
            let mut s = spec(OptimKind::Adagrad, lr / (1.0 + (t - 1) as f32 * c.lr_decay));
            s.eps = c.eps;
            s.weight_decay = c.weight_decay;
            s.flags = flag(c.maximize, OptimSpec::MAXIMIZE);
            s
        })
    }
    forward_to_core!();
}
