//! Dynamic loss scaling for `F16` training, as `torch.amp.GradScaler`: gradients of small
//! values underflow in f16 unless the loss is scaled up first and the gradients down after.
//! The scale, the overflow check and the step skip all stay on the device: nothing is read
//! back per step.

use crate::autograd::Gradients;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::ops::elementwise::op::UnaryOp;
use crate::optim::{check_hyper, Optimizer};
use crate::tensor::Tensor;

/// [`GradScaler`]'s settings; the defaults are PyTorch's.
///
/// ```
/// use ferrograd::optim::{GradScaler, GradScalerConfig};
/// use ferrograd::Device;
/// assert_eq!(GradScalerConfig::default().growth_interval, 2000);
/// let cfg = GradScalerConfig { init_scale: 1024.0, ..Default::default() };
/// let scaler = GradScaler::new(&Device::cpu(), cfg)?;
/// assert_eq!(scaler.scale_value()?, 1024.0);
/// let stuck = GradScalerConfig { growth_factor: 1.0, ..cfg }; // must be above 1
/// assert!(GradScaler::new(&Device::cpu(), stuck).is_err());
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradScalerConfig {
    /// The first scale (2^16).
    pub init_scale: f32,
    /// The scale is multiplied by this after `growth_interval` steps without an overflow (2).
    pub growth_factor: f32,
    /// ... and by this after a step whose gradients overflowed, which is skipped (0.5).
    pub backoff_factor: f32,
    /// Steps in a row without an overflow before the scale grows (2000).
    pub growth_interval: u32,
}

impl Default for GradScalerConfig {
    fn default() -> Self {
        GradScalerConfig {
            init_scale: 65_536.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
        }
    }
}

/// Scales the loss, unscales the gradients, skips a step whose gradients hold an inf or NaN
/// and adapts the scale, with the scale and the checks as tensors on the device.
///
/// ```
/// use ferrograd::nn::{loss, Linear, Module};
/// use ferrograd::optim::{Adam, AdamConfig, GradScaler, GradScalerConfig, Optimizer};
/// use ferrograd::{DType, Device, Tensor};
/// let dev = Device::cpu();
/// let model = Linear::new(3, 1, true, &dev)?;
/// model.to_dtype(DType::F16)?;
/// let mut opt = Adam::new(model.parameters(), AdamConfig { lr: 0.05, ..Default::default() })?;
/// let mut scaler = GradScaler::new(&dev, GradScalerConfig::default())?;
/// let x = Tensor::randn(&[16, 3], &dev)?;
/// let y = x.sum(1, true)?;
/// for _ in 0..100 {
///     let pred = model.forward(&x.to_dtype(DType::F16)?)?.to_dtype(DType::F32)?;
///     let l = loss::mse(&pred, &y, loss::Reduction::Mean)?; // the loss in f32
///     let mut grads = scaler.scale(&l)?.backward()?;
///     scaler.step(&mut opt, &mut grads)?; // unscales; skipped on inf/NaN
///     scaler.update()?;
/// }
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Debug)]
pub struct GradScaler {
    cfg: GradScalerConfig,
    /// `[1]` F32 on the device.
    scale: Tensor,
    /// Steps since the last overflow or growth, `[1]` F32.
    good_steps: Tensor,
    /// Whether the last unscaled gradients held an inf or NaN (`[1]` Bool).
    found_inf: Option<Tensor>,
    /// Where this step is: `scale`d, then `unscale`d (by `unscale` or `step`), `step`ped, then
    /// back to the start by `update`.
    stage: Stage,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Ready,
    Unscaled,
    Stepped,
}

impl GradScaler {
    /// # Errors
    /// `InvalidArgument` for a non-positive or non-finite `init_scale`, a `growth_factor` not
    /// above 1, a `backoff_factor` outside (0, 1) or a `growth_interval` of 0.
    pub fn new(device: &Device, cfg: GradScalerConfig) -> Result<GradScaler> {
        let op = "GradScaler::new";
        check_hyper(
            op,
            "init_scale",
            cfg.init_scale,
            f32::MIN_POSITIVE,
            f32::MAX,
        )?;
        check_hyper(op, "growth_factor", cfg.growth_factor, 1.0, f32::MAX)?;
        check_hyper(op, "backoff_factor", cfg.backoff_factor, 0.0, 1.0)?;
        if cfg.growth_factor == 1.0 || cfg.backoff_factor == 0.0 || cfg.backoff_factor == 1.0 {
            return Err(Error::invalid(
                op,
                format!(
                    "growth_factor must be above 1 and backoff_factor inside (0, 1), found {} \
                     and {}",
                    cfg.growth_factor, cfg.backoff_factor
                ),
            ));
        }
        if cfg.growth_interval == 0 {
            return Err(Error::invalid(op, "growth_interval must be at least 1"));
        }
        Ok(GradScaler {
            cfg,
            scale: Tensor::full(&[1], cfg.init_scale, device)?,
            good_steps: Tensor::zeros(&[1], device)?,
            found_inf: None,
            stage: Stage::Ready,
        })
    }

    /// `loss * scale`, in F32 (a half loss is widened first, so the product cannot overflow).
    /// Call `backward` on it.
    pub fn scale(&self, loss: &Tensor) -> Result<Tensor> {
        loss.to_dtype(DType::F32)?.mul(&self.scale.reshape(&[])?)
    }

    /// Divides every gradient in `grads` by the scale (the results are F32) and notes, on the
    /// device, whether any holds an inf or NaN (tested on each gradient's sum, so gradients
    /// whose finite elements overflow f32 when added up count as overflowed too). [`GradScaler::step`] calls it unless it was
    /// called already this step (to clip the unscaled gradients in between, say).
    ///
    /// # Errors
    /// `InvalidArgument` if this step's gradients were unscaled already (call `update()` after
    /// `step()` to start the next step).
    pub fn unscale(&mut self, grads: &mut Gradients) -> Result<()> {
        if self.stage != Stage::Ready {
            return Err(Error::invalid(
                "GradScaler::unscale",
                "the gradients of this step were unscaled already; call update() after step()",
            ));
        }
        let inv = Tensor::ones(&[1], self.scale.device())?.div(&self.scale)?;
        let mut bad: Option<Tensor> = None;
        // One sum per gradient: it is inf or NaN exactly when an element is (or when the
        // finite elements overflow f32 together, which no gradient worth stepping does).
        for g in grads.values_mut() {
            let unscaled = g.to_dtype(DType::F32)?.mul(&inv)?;
            let sum = unscaled.sum_all()?;
            bad = Some(match bad {
                Some(b) => b.add(&sum)?,
                None => sum,
            });
            *g = unscaled;
        }
        let device = self.scale.device().clone();
        let bad = match bad {
            Some(b) => b.unary(UnaryOp::IsNonFinite, "GradScaler::unscale")?,
            None => Tensor::zeros(&[], &device)?,
        };
        self.found_inf = Some(bad.gt_scalar(0.0)?.reshape(&[1])?);
        self.stage = Stage::Unscaled;
        Ok(())
    }

    /// Unscales `grads` (unless [`GradScaler::unscale`] did: pass the same gradients) and
    /// steps `opt`, which leaves every parameter and its state unchanged when a gradient
    /// overflowed: the decision is taken on the device. A skipped step still advances the
    /// optimizer's step count (the host does not know it was skipped), so Adam's bias
    /// correction after an early skip is one step ahead of PyTorch's.
    ///
    /// # Errors
    /// `InvalidArgument` for a second `step` before `update`.
    pub fn step(&mut self, opt: &mut dyn Optimizer, grads: &mut Gradients) -> Result<()> {
        match self.stage {
            Stage::Ready => self.unscale(grads)?,
            Stage::Unscaled => {}
            Stage::Stepped => {
                return Err(Error::invalid(
                    "GradScaler::step",
                    "step() was already called for this step; call update() first",
                ))
            }
        }
        opt.skip_steps_if(self.found_inf.clone())?;
        let stepped = opt.step(grads);
        opt.skip_steps_if(None)?;
        self.stage = Stage::Stepped;
        stepped
    }

    /// Adapts the scale after a step: times `backoff_factor` if it overflowed, times
    /// `growth_factor` after `growth_interval` steps in a row that did not (held below f32's
    /// largest value), else unchanged. On the device.
    ///
    /// # Errors
    /// `InvalidArgument` when no gradients were unscaled since the last update.
    pub fn update(&mut self) -> Result<()> {
        let found = match (self.stage, &self.found_inf) {
            (Stage::Unscaled | Stage::Stepped, Some(f)) => f.clone(),
            _ => {
                return Err(Error::invalid(
                    "GradScaler::update",
                    "no gradients were unscaled since the last update: call step() (or \
                     unscale()) first",
                ))
            }
        };
        self.stage = Stage::Ready;
        let c = self.cfg;
        let ok = found.logical_not()?.to_dtype(DType::F32)?;
        let good = self.good_steps.add_scalar(1.0)?.mul(&ok)?;
        let grow = good.ge_scalar(c.growth_interval as f32)?;
        let grown = self
            .scale
            .mul_scalar(c.growth_factor)?
            .minimum_scalar(f32::MAX)?;
        let kept = Tensor::where_(&grow, &grown, &self.scale)?;
        self.scale = Tensor::where_(&found, &self.scale.mul_scalar(c.backoff_factor)?, &kept)?;
        let zero = Tensor::zeros(&[1], good.device())?;
        self.good_steps = Tensor::where_(&grow, &zero, &good)?;
        Ok(())
    }

    /// The current scale (read back: for logging, not every step).
    pub fn scale_value(&self) -> Result<f32> {
        self.scale.to_scalar()
    }

    /// Whether the last unscaled gradients held an inf or NaN (read back; still there after
    /// `update`), `None` before any were.
    pub fn found_inf(&self) -> Result<Option<bool>> {
        match &self.found_inf {
            Some(f) => Ok(Some(f.to_vec_as::<bool>()?[0])),
            None => Ok(None),
        }
    }
}
