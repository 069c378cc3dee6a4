//! Learning-rate schedules, as closed forms of the step count: `lr(t)` is the rate for step
//! (or epoch) `t`, counting from 0, which is what PyTorch's scheduler reports after `t` calls
//! of `scheduler.step()`. Nothing is stateful, so a schedule can be queried anywhere and a
//! restored run only needs its step count.
//!
//! ```
//! use ferrograd::optim::{CosineAnnealingLr, LinearLr, Schedule, SequentialLr};
//! // 5 steps of linear warm-up from 0.01 to 0.1, then cosine decay over 95 steps.
//! let warmup = LinearLr::new(0.1, 0.1, 1.0, 5)?;
//! let cosine = CosineAnnealingLr::new(0.1, 95, 0.0)?;
//! let sched = SequentialLr::new(vec![Box::new(warmup), Box::new(cosine)], vec![5])?;
//! assert!((sched.lr(0) - 0.01).abs() < 1e-7);
//! assert!((sched.lr(5) - 0.1).abs() < 1e-7);
//! // In a training loop: `opt.set_lr(sched.lr(step))?` before each step.
//! # Ok::<(), ferrograd::Error>(())
//! ```

use std::f64::consts::PI;

use super::{check_hyper, Optimizer};
use crate::error::{Error, Result};

/// A learning rate for each step. Set it on an optimizer with `opt.set_lr(s.lr(step))?`.
///
/// ```
/// use ferrograd::optim::{Schedule, StepLr};
/// /// A schedule of one's own: a fixed rate.
/// struct Constant(f32);
///
/// impl Schedule for Constant {
///     fn lr(&self, _step: usize) -> f32 {
///         self.0
///     }
/// }
///
/// let schedules: Vec<Box<dyn Schedule>> =
///     vec![Box::new(Constant(0.1)), Box::new(StepLr::new(0.1, 10, 0.5)?)];
/// assert_eq!(schedules[0].lr(50), 0.1);
/// assert_eq!(schedules[1].lr(10), 0.05);
/// # Ok::<(), ferrograd::Error>(())
/// ```
pub trait Schedule: Send + Sync {
    /// The learning rate for step (or epoch) `step`, counting from 0.
    fn lr(&self, step: usize) -> f32;

    /// The momentum for step `step`, for a schedule that cycles it
    /// ([`OneCycleLr::cycle_momentum`]); `None` (the default) leaves the optimizer's alone.
    fn momentum(&self, _step: usize) -> Option<f32> {
        None
    }

    /// Sets `opt`'s learning rate, and its momentum where this schedule has one, for `step`:
    /// call it before each step.
    ///
    /// # Errors
    /// As [`Optimizer::set_lr`] and [`Optimizer::set_momentum`] (an optimizer without
    /// momentum under a schedule that cycles it).
    fn apply(&self, opt: &mut dyn Optimizer, step: usize) -> Result<()> {
        opt.set_lr(self.lr(step))?;
        match self.momentum(step) {
            Some(m) => opt.set_momentum(m),
            None => Ok(()),
        }
    }
}

fn positive(op: &'static str, name: &str, v: usize) -> Result<()> {
    if v == 0 {
        return Err(Error::invalid(op, format!("{name} must be at least 1")));
    }
    Ok(())
}

/// `base_lr * gamma^floor(t / step_size)` (`torch.optim.lr_scheduler.StepLR`).
///
/// ```
/// use ferrograd::optim::{Schedule, StepLr};
/// let s = StepLr::new(1.0, 10, 0.5)?; // halve every 10 steps
/// assert_eq!([0, 9, 10, 25].map(|t| s.lr(t)), [1.0, 1.0, 0.5, 0.25]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct StepLr {
    base_lr: f32,
    step_size: usize,
    gamma: f32,
}

impl StepLr {
    /// Multiplies `base_lr` by `gamma` every `step_size` steps.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `base_lr` or `gamma` is negative or not finite, or
    /// `step_size` is 0.
    pub fn new(base_lr: f32, step_size: usize, gamma: f32) -> Result<StepLr> {
        check_hyper("StepLr::new", "base_lr", base_lr, 0.0, f32::INFINITY)?;
        positive("StepLr::new", "step_size", step_size)?;
        check_hyper("StepLr::new", "gamma", gamma, 0.0, f32::INFINITY)?;
        Ok(StepLr {
            base_lr,
            step_size,
            gamma,
        })
    }
}

impl Schedule for StepLr {
    fn lr(&self, t: usize) -> f32 {
        decayed(self.base_lr, self.gamma, t / self.step_size)
    }
}

/// `base * gamma^k` in f64, as Python's floats.
fn decayed(base: f32, gamma: f32, k: usize) -> f32 {
    (f64::from(base) * f64::from(gamma).powi(k.min(i32::MAX as usize) as i32)) as f32
}

/// `base_lr * gamma^(milestones passed)` (`MultiStepLR`); milestones must increase.
///
/// ```
/// use ferrograd::optim::{MultiStepLr, Schedule};
/// let s = MultiStepLr::new(1.0, vec![3, 5], 0.5)?;
/// assert_eq!([0, 2, 3, 4, 5, 100].map(|t| s.lr(t)), [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]);
/// assert!(MultiStepLr::new(1.0, vec![5, 3], 0.5).is_err());
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct MultiStepLr {
    base_lr: f32,
    milestones: Vec<usize>,
    gamma: f32,
}

impl MultiStepLr {
    /// Multiplies `base_lr` by `gamma` at each step of `milestones`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `base_lr` or `gamma` is negative or not finite, or
    /// `milestones` is not strictly increasing.
    pub fn new(base_lr: f32, milestones: Vec<usize>, gamma: f32) -> Result<MultiStepLr> {
        let op = "MultiStepLr::new";
        check_hyper(op, "base_lr", base_lr, 0.0, f32::INFINITY)?;
        check_hyper(op, "gamma", gamma, 0.0, f32::INFINITY)?;
        increasing(op, &milestones)?;
        Ok(MultiStepLr {
            base_lr,
            milestones,
            gamma,
        })
    }
}

fn increasing(op: &'static str, milestones: &[usize]) -> Result<()> {
    if milestones.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Error::invalid(
            op,
            format!("milestones must be strictly increasing, found {milestones:?}"),
        ));
    }
    Ok(())
}

impl Schedule for MultiStepLr {
    fn lr(&self, t: usize) -> f32 {
        let passed = self.milestones.iter().filter(|&&m| m <= t).count();
        decayed(self.base_lr, self.gamma, passed)
    }
}

/// `base_lr * gamma^t` (`ExponentialLR`).
///
/// ```
/// use ferrograd::optim::{ExponentialLr, Schedule};
/// let s = ExponentialLr::new(2.0, 0.5)?;
/// assert_eq!([0, 1, 3].map(|t| s.lr(t)), [2.0, 1.0, 0.25]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ExponentialLr {
    base_lr: f32,
    gamma: f32,
}

impl ExponentialLr {
    /// Multiplies `base_lr` by `gamma` every step.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `base_lr` or `gamma` is negative or not finite.
    pub fn new(base_lr: f32, gamma: f32) -> Result<ExponentialLr> {
        check_hyper("ExponentialLr::new", "base_lr", base_lr, 0.0, f32::INFINITY)?;
        check_hyper("ExponentialLr::new", "gamma", gamma, 0.0, f32::INFINITY)?;
        Ok(ExponentialLr { base_lr, gamma })
    }
}

impl Schedule for ExponentialLr {
    fn lr(&self, t: usize) -> f32 {
        decayed(self.base_lr, self.gamma, t)
    }
}

/// `eta_min + (base_lr - eta_min) (1 + cos(pi t / t_max)) / 2` (`CosineAnnealingLR`; past
/// `t_max` it rises again, as PyTorch's does).
///
/// ```
/// use ferrograd::optim::{CosineAnnealingLr, Schedule};
/// let s = CosineAnnealingLr::new(1.0, 10, 0.0)?;
/// assert_eq!(s.lr(0), 1.0);
/// assert!((s.lr(5) - 0.5).abs() < 1e-6); // half way down
/// assert!(s.lr(10).abs() < 1e-6 && s.lr(15) > s.lr(10)); // `eta_min`, then up again
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct CosineAnnealingLr {
    base_lr: f32,
    t_max: usize,
    eta_min: f32,
}

impl CosineAnnealingLr {
    /// Anneals from `base_lr` at step 0 to `eta_min` at step `t_max`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `base_lr` or `eta_min` is negative or not finite, or
    /// `t_max` is 0.
    pub fn new(base_lr: f32, t_max: usize, eta_min: f32) -> Result<CosineAnnealingLr> {
        let op = "CosineAnnealingLr::new";
        check_hyper(op, "base_lr", base_lr, 0.0, f32::INFINITY)?;
        positive(op, "t_max", t_max)?;
        check_hyper(op, "eta_min", eta_min, 0.0, f32::INFINITY)?;
        Ok(CosineAnnealingLr {
            base_lr,
            t_max,
            eta_min,
        })
    }
}

impl Schedule for CosineAnnealingLr {
    fn lr(&self, t: usize) -> f32 {
        let (base, min) = (f64::from(self.base_lr), f64::from(self.eta_min));
        let pct = t as f64 / self.t_max as f64;
        (min + (base - min) * (1.0 + (PI * pct).cos()) / 2.0) as f32
    }
}

/// `base_lr` times a factor moving linearly from `start_factor` to `end_factor` over
/// `total_iters` steps, then staying there (`LinearLR`): a linear warm-up.
///
/// ```
/// use ferrograd::optim::{LinearLr, Schedule};
/// let warmup = LinearLr::new(1.0, 0.25, 1.0, 3)?; // from 0.25 to 1 in 3 steps
/// assert_eq!([0, 1, 2, 3, 9].map(|t| warmup.lr(t)), [0.25, 0.5, 0.75, 1.0, 1.0]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct LinearLr {
    base_lr: f32,
    start_factor: f32,
    end_factor: f32,
    total_iters: usize,
}

impl LinearLr {
    /// Scales `base_lr` by a factor going from `start_factor` at step 0 to `end_factor` at
    /// step `total_iters`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `base_lr` is negative or not finite, a factor is
    /// outside `[0, 1]`, or `total_iters` is 0.
    pub fn new(
        base_lr: f32,
        start_factor: f32,
        end_factor: f32,
        total_iters: usize,
    ) -> Result<LinearLr> {
        let op = "LinearLr::new";
        check_hyper(op, "base_lr", base_lr, 0.0, f32::INFINITY)?;
        check_hyper(op, "start_factor", start_factor, 0.0, 1.0)?;
        check_hyper(op, "end_factor", end_factor, 0.0, 1.0)?;
        positive(op, "total_iters", total_iters)?;
        Ok(LinearLr {
            base_lr,
            start_factor,
            end_factor,
            total_iters,
        })
    }
}

impl Schedule for LinearLr {
    fn lr(&self, t: usize) -> f32 {
        let (s, e) = (f64::from(self.start_factor), f64::from(self.end_factor));
        let pct = t.min(self.total_iters) as f64 / self.total_iters as f64;
        (f64::from(self.base_lr) * (s + (e - s) * pct)) as f32
    }
}

/// The one-cycle policy (`OneCycleLR` with `anneal_strategy="cos"`, two phases): from
/// `max_lr / div_factor` up to `max_lr` over the first `pct_start` of `total_steps`, then down
/// to `max_lr / div_factor / final_div_factor`. Steps past the end keep the final rate
/// (PyTorch raises there). Momentum is cycled the other way with
/// [`OneCycleLr::cycle_momentum`] (PyTorch's default, `cycle_momentum=True`, does so from
/// 0.95 down to 0.85 and back) and set with [`Schedule::apply`].
///
/// ```
/// use ferrograd::optim::{OneCycleLr, Schedule};
/// let s = OneCycleLr::new(1.0, 100, 0.3, 25.0, 1e4)?; // PyTorch's defaults, max_lr 1
/// assert!((s.lr(0) - 0.04).abs() < 1e-6); // max_lr / div_factor
/// assert!((s.lr(29) - 1.0).abs() < 1e-6); // the peak, 30 % of the way
/// assert!((s.lr(99) - 4e-6).abs() < 1e-9); // ... / final_div_factor at the end
/// assert_eq!(s.lr(500), s.lr(99)); // and after it
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct OneCycleLr {
    max_lr: f64,
    initial: f64,
    min: f64,
    /// The step where the peak is reached, and the last step.
    peak: f64,
    last: f64,
    /// The momentum at the peak and at both ends, when cycled.
    momentum: Option<(f64, f64)>,
}

impl OneCycleLr {
    /// PyTorch's defaults are `pct_start = 0.3`, `div_factor = 25`, `final_div_factor = 1e4`.
    pub fn new(
        max_lr: f32,
        total_steps: usize,
        pct_start: f32,
        div_factor: f32,
        final_div_factor: f32,
    ) -> Result<OneCycleLr> {
        let op = "OneCycleLr::new";
        check_hyper(op, "max_lr", max_lr, 0.0, f32::INFINITY)?;
        check_hyper(op, "pct_start", pct_start, 0.0, 1.0)?;
        check_hyper(
            op,
            "div_factor",
            div_factor,
            f32::MIN_POSITIVE,
            f32::INFINITY,
        )?;
        check_hyper(
            op,
            "final_div_factor",
            final_div_factor,
            f32::MIN_POSITIVE,
            f32::INFINITY,
        )?;
        let peak = f64::from(pct_start) * total_steps as f64 - 1.0;
        let last = total_steps as f64 - 1.0;
        if total_steps < 2 || peak <= 0.0 || peak >= last {
            return Err(Error::invalid(
                op,
                format!(
                    "pct_start {pct_start} of {total_steps} steps leaves a phase empty: the warm-up \
                     needs at least 2 steps and the decay at least 1"
                ),
            ));
        }
        let initial = f64::from(max_lr) / f64::from(div_factor);
        Ok(OneCycleLr {
            max_lr: f64::from(max_lr),
            initial,
            min: initial / f64::from(final_div_factor),
            peak,
            last,
            momentum: None,
        })
    }

    /// Cycles the momentum against the rate, as PyTorch's `cycle_momentum`: from `max` down
    /// to `base` at the peak rate, then back up to `max` (SGD's and RMSprop's momentum,
    /// Adam's `beta1`). PyTorch's defaults are `base = 0.85`, `max = 0.95`.
    ///
    /// ```
    /// use ferrograd::nn::Parameter;
    /// use ferrograd::optim::{OneCycleLr, Optimizer, Schedule, Sgd, SgdConfig};
    /// use ferrograd::{Device, Tensor};
    /// let s = OneCycleLr::new(0.1, 100, 0.3, 25.0, 1e4)?.cycle_momentum(0.85, 0.95)?;
    /// assert_eq!([0, 29, 99].map(|t| s.momentum(t).unwrap()), [0.95, 0.85, 0.95]);
    /// let w = Parameter::new(Tensor::new([1.0], &Device::cpu())?);
    /// let mut opt = Sgd::new(vec![w], SgdConfig { momentum: 0.9, ..Default::default() })?;
    /// s.apply(&mut opt, 29)?; // before step 29: the rate and the momentum
    /// assert_eq!((opt.lr(), opt.momentum()), (0.1, Some(0.85)));
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// `InvalidArgument` for a momentum that is negative or not finite.
    pub fn cycle_momentum(mut self, base: f32, max: f32) -> Result<OneCycleLr> {
        let op = "OneCycleLr::cycle_momentum";
        check_hyper(op, "base_momentum", base, 0.0, f32::INFINITY)?;
        check_hyper(op, "max_momentum", max, 0.0, f32::INFINITY)?;
        self.momentum = Some((f64::from(base), f64::from(max)));
        Ok(self)
    }
}

/// Cosine interpolation from `start` (pct 0) to `end` (pct 1).
fn cos_anneal(start: f64, end: f64, pct: f64) -> f64 {
    end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0)
}

impl OneCycleLr {
    /// `start` to `mid` over the warm-up, then `mid` to `end`, cosine-annealed, at step `t`.
    fn phase(&self, t: usize, start: f64, mid: f64, end: f64) -> f32 {
        let t = (t as f64).min(self.last);
        let v = if t <= self.peak {
            cos_anneal(start, mid, t / self.peak)
        } else {
            cos_anneal(mid, end, (t - self.peak) / (self.last - self.peak))
        };
        v as f32
    }
}

impl Schedule for OneCycleLr {
    fn lr(&self, t: usize) -> f32 {
        self.phase(t, self.initial, self.max_lr, self.min)
    }

    fn momentum(&self, t: usize) -> Option<f32> {
        let (base, max) = self.momentum?;
        Some(self.phase(t, max, base, max))
    }
}

/// Runs `schedules[i]` from `milestones[i - 1]` on, each restarted at 0 (`SequentialLR`):
/// warm-up then decay.
///
/// ```
/// use ferrograd::optim::{ExponentialLr, Schedule, SequentialLr, StepLr};
/// let constant = StepLr::new(0.25, 1, 1.0)?; // gamma 1: always 0.25
/// let decay = ExponentialLr::new(1.0, 0.5)?;
/// let s = SequentialLr::new(vec![Box::new(constant), Box::new(decay)], vec![3])?;
/// assert_eq!([0, 2, 3, 4, 5].map(|t| s.lr(t)), [0.25, 0.25, 1.0, 0.5, 0.25]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
pub struct SequentialLr {
    schedules: Vec<Box<dyn Schedule>>,
    milestones: Vec<usize>,
}

impl std::fmt::Debug for SequentialLr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequentialLr")
            .field("schedules", &self.schedules.len())
            .field("milestones", &self.milestones)
            .finish()
    }
}

impl SequentialLr {
    /// Runs `schedules[0]` up to `milestones[0]`, then each next schedule from its milestone
    /// on, counting its steps from 0 there.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `schedules` is empty, there is not exactly one
    /// milestone fewer than schedules, or `milestones` is not strictly increasing.
    pub fn new(schedules: Vec<Box<dyn Schedule>>, milestones: Vec<usize>) -> Result<SequentialLr> {
        let op = "SequentialLr::new";
        if schedules.is_empty() || milestones.len() + 1 != schedules.len() {
            return Err(Error::invalid(
                op,
                format!(
                    "needs one milestone fewer than schedules, found {} schedules and {} \
                     milestones",
                    schedules.len(),
                    milestones.len()
                ),
            ));
        }
        increasing(op, &milestones)?;
        Ok(SequentialLr {
            schedules,
            milestones,
        })
    }
}

impl SequentialLr {
    /// The schedule running at step `t`, and `t` counted from its milestone.
    fn active(&self, t: usize) -> (&dyn Schedule, usize) {
        let i = self.milestones.iter().filter(|&&m| m <= t).count();
        let start = if i == 0 { 0 } else { self.milestones[i - 1] };
        (self.schedules[i].as_ref(), t - start)
    }
}

impl Schedule for SequentialLr {
    fn lr(&self, t: usize) -> f32 {
        let (s, t) = self.active(t);
        s.lr(t)
    }

    fn momentum(&self, t: usize) -> Option<f32> {
        let (s, t) = self.active(t);
        s.momentum(t)
    }
}
