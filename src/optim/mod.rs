//! Optimizers, gradient clipping and learning-rate schedules.
//!
//! An optimizer holds [`Parameter`] handles. Each [`Optimizer::step`] runs one fused kernel
//! per parameter tensor (`shaders/optim.wgsl`, or its CPU twin): it reads the parameter, its
//! gradient and its state, and writes a new parameter and state. Nothing goes through the
//! host, and after the first step the buffer pool serves every new buffer.
//!
//! ```
//! use ferrograd::nn::{loss, Linear, Module};
//! use ferrograd::optim::{Adam, AdamConfig, Optimizer};
//! use ferrograd::{Device, Tensor};
//! let dev = Device::cpu();
//! let model = Linear::new(3, 1, true, &dev)?;
//! let mut opt = Adam::new(model.parameters(), AdamConfig { lr: 0.05, ..Default::default() })?;
//! let x = Tensor::randn(&[16, 3], &dev)?;
//! let y = x.sum(1, true)?; // learn y = x0 + x1 + x2
//! for _ in 0..300 {
//!     let loss = loss::mse(&model.forward(&x)?, &y, loss::Reduction::Mean)?;
//!     opt.step(&loss.backward()?)?;
//! }
//! let loss = loss::mse(&model.forward(&x)?, &y, loss::Reduction::Mean)?;
//! assert!(loss.to_scalar()? < 1e-3);
//! # Ok::<(), ferrograd::Error>(())
//! ```

mod groups;
mod large;
mod lr;
mod optimizers;
mod plateau;
mod scaler;

pub use groups::ParamGroup;
pub use lr::{
    CosineAnnealingLr, ExponentialLr, LinearLr, MultiStepLr, OneCycleLr, Schedule, SequentialLr,
    StepLr,
};
pub use optimizers::{
    Adagrad, AdagradConfig, Adam, AdamConfig, AdamW, RmsProp, RmsPropConfig, Sgd, SgdConfig,
};
pub use plateau::{PlateauConfig, PlateauMode, ReduceLrOnPlateau};
pub use scaler::{GradScaler, GradScalerConfig};

use crate::autograd::Gradients;
use crate::backend::{OptimKind, OptimSpec};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::nn::Parameter;
use crate::tensor::Tensor;

/// What every optimizer does. `step` takes the gradients `backward` returned.
///
/// ```
/// use ferrograd::nn::Parameter;
/// use ferrograd::optim::{Optimizer, Sgd, SgdConfig};
/// use ferrograd::{Device, Tensor};
/// let w = Parameter::new(Tensor::new([1.0, 2.0], &Device::cpu())?);
/// let mut opt = Sgd::new(vec![w.clone()], SgdConfig { lr: 0.5, ..Default::default() })?;
/// let loss = w.value().sum_all()?; // a gradient of 1 for each element
/// opt.step(&loss.backward()?)?;
/// assert_eq!(w.value().to_vec()?, vec![0.5, 1.5]); // w - 0.5 · 1
/// opt.set_lr(0.25)?;
/// assert_eq!(opt.lr(), 0.25);
/// assert!(opt.set_lr(f32::NAN).is_err());
/// # Ok::<(), ferrograd::Error>(())
/// ```
pub trait Optimizer {
    /// Updates each trainable parameter that has a gradient in `grads`; the others (frozen,
    /// or not reached by the loss) are left alone, their state and step count unchanged.
    fn step(&mut self, grads: &Gradients) -> Result<()>;
    /// The learning rate the next step uses.
    fn lr(&self) -> f32;
    /// Sets the learning rate (what a [`Schedule`] drives).
    ///
    /// # Errors
    /// `InvalidArgument` for a rate that is NaN, infinite or negative (a schedule driven past
    /// what f32 holds, say); the rate is left unchanged then.
    fn set_lr(&mut self, lr: f32) -> Result<()>;
    /// The momentum the next step uses: SGD's and RMSprop's `momentum`, Adam's `beta1`;
    /// `None` for an optimizer without one (Adagrad).
    fn momentum(&self) -> Option<f32> {
        None
    }
    /// Sets the momentum (what [`OneCycleLr::cycle_momentum`] drives, through
    /// [`Schedule::apply`]).
    ///
    /// # Errors
    /// `InvalidArgument` for an optimizer without momentum, or a value its config would
    /// refuse (Adam's `beta1` must be in `[0, 1)`); the momentum is left unchanged then.
    fn set_momentum(&mut self, momentum: f32) -> Result<()> {
        Err(Error::invalid(
            "set_momentum",
            format!("this optimizer has no momentum to set to {momentum}"),
        ))
    }
    /// The optimizer's state, named `"{index}.{buffer}"` with PyTorch's buffer names
    /// (`"0.exp_avg"`, `"3.momentum_buffer"`) plus `"{index}.step"`, one entry per parameter
    /// that has stepped, and `"{index}.master_param"` for a half parameter (its f32 master
    /// copy; optional when loading). Tensors are shaped like their parameter; save them with
    /// [`crate::nn::save`].
    fn state_dict(&self) -> Vec<(String, Tensor)>;
    /// Restores a [`Optimizer::state_dict`] for the same parameter list. Unknown names, missing
    /// buffers and wrong shapes are all listed in one error, and nothing changes then.
    fn load_state_dict(&mut self, state: &[(String, Tensor)]) -> Result<()>;
    /// Makes the following steps conditional on `flag`, a one-element `Bool` tensor on the
    /// parameters' device: where it holds `true` a step leaves every parameter and its state
    /// as they were. The flag is read by the kernels, never by the host, so a skipped step
    /// costs no readback: what [`GradScaler`] uses for a step whose gradients overflowed.
    /// `None` makes steps unconditional again. (The step count still advances.)
    fn skip_steps_if(&mut self, flag: Option<Tensor>) -> Result<()>;
}

/// The state-dict name of a half parameter's f32 master copy (`"{index}.master_param"`).
const MASTER: &str = "master_param";

/// The largest step count a state dict may hold: saved as f32, exact up to 2^24.
const MAX_STEP: f32 = 16_777_216.0;

/// One parameter and its optimizer state: `[rows, numel]` once it has stepped.
struct Slot {
    /// Its index in `Core::groups`.
    group: usize,
    param: Parameter,
    state: Option<Tensor>,
    steps: u64,
    /// A half parameter's f32 master copy, and the id of the half value it was last rounded
    /// to: a value set from outside (a loaded checkpoint) has another id, and the master is
    /// taken from it afresh.
    master: Option<(Tensor, u64)>,
}

/// The part every optimizer shares: the slots, the learning rate and the loop over them.
pub(crate) struct Core {
    slots: Vec<Slot>,
    kind: OptimKind,
    /// The state-dict name of each state row (PyTorch's): the state is `[names.len(), n]`,
    /// `OptimSpec::state_rows` of the specs this core steps with.
    names: &'static [&'static str],
    lr: f32,
    /// The value a fresh state starts at (Adagrad's `initial_accumulator_value`).
    initial_state: f32,
    /// Steps are skipped where this `Bool` scalar is true (`Optimizer::skip_steps_if`).
    skip: Option<Tensor>,
    /// The param groups (one, with no overrides, unless built `with_groups`).
    groups: Vec<groups::GroupSettings>,
}

/// The settings and how far it got, not the state tensors (those are in `state_dict`).
impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("kind", &self.kind)
            .field("lr", &self.lr)
            .field("parameters", &self.slots.len())
            .field(
                "steps",
                &self.slots.iter().map(|s| s.steps).max().unwrap_or(0),
            )
            .field("skip_if", &self.skip.is_some())
            .finish()
    }
}

impl Core {
    pub fn new(
        params: Vec<Parameter>,
        kind: OptimKind,
        lr: f32,
        names: &'static [&'static str],
    ) -> Result<Core> {
        check_hyper("optimizer", "lr", lr, 0.0, f32::INFINITY)?;
        // A parameter listed twice would step twice (the second time against a gradient the
        // first step's new value no longer has).
        let mut seen = std::collections::HashMap::new();
        for (i, p) in params.iter().enumerate() {
            if let Some(j) = seen.insert(p.key(), i) {
                return Err(Error::invalid(
                    "optimizer",
                    format!(
                        "parameters {j} and {i} are the same parameter: list each once (in one \
                         group)"
                    ),
                ));
            }
        }
        Ok(Core {
            slots: params
                .into_iter()
                .map(|param| Slot {
                    group: 0,
                    param,
                    state: None,
                    steps: 0,
                    master: None,
                })
                .collect(),
            kind,
            names,
            lr,
            initial_state: 0.0,
            skip: None,
            groups: vec![groups::GroupSettings::default()],
        })
    }
    pub fn with_initial_state(mut self, v: f32) -> Core {
        self.initial_state = v;
        self
    }

    pub fn lr(&self) -> f32 {
        self.lr
    }

    pub fn skip_steps_if(&mut self, flag: Option<Tensor>) -> Result<()> {
        if let Some(f) = &flag {
            if f.dtype() != DType::Bool || f.numel() != 1 {
                return Err(Error::invalid(
                    "skip_steps_if",
                    format!(
                        "the flag must be one Bool element, found {} of shape {:?}",
                        f.dtype(),
                        f.shape()
                    ),
                ));
            }
        }
        self.skip = flag.map(|f| f.detach());
        Ok(())
    }

    pub fn set_lr(&mut self, lr: f32) -> Result<()> {
        check_hyper("set_lr", "the learning rate", lr, 0.0, f32::INFINITY)?;
        self.lr = lr;
        Ok(())
    }

    /// Runs the fused update on every parameter with a gradient; `spec(step)` gives the
    /// hyper-parameters for a parameter's `step`-th update (1-based) with `numel` unset.
    pub fn step(&mut self, grads: &Gradients, spec: impl Fn(u64) -> OptimSpec) -> Result<()> {
        let rows = self.names.len();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if !slot.param.is_trainable() {
                continue;
            }
            let value = slot.param.value();
            let Some(grad) = grads.get(&value) else {
                continue;
            };
            if grad.shape() != value.shape() || grad.device() != value.device() {
                return Err(Error::invalid(
                    "optimizer step",
                    format!(
                        "parameter {i} is {:?} on {} but its gradient is {:?} on {}",
                        value.shape(),
                        value.device(),
                        grad.shape(),
                        grad.device()
                    ),
                ));
            }
            let n = value.numel();
            let state = match &slot.state {
                Some(s) if s.shape() == [rows, n] && s.device() == value.device() => s.clone(),
                Some(s) => {
                    // `Parameter::set` gave the parameter a new shape (or device) after it
                    // had stepped: its state no longer lines up with it.
                    return Err(Error::invalid(
                        "optimizer step",
                        format!(
                            "parameter {i} is now {:?} on {}, but its optimizer state was \
                             built for {} elements on {}; build a new optimizer after \
                             reshaping a parameter",
                            value.shape(),
                            value.device(),
                            s.shape().get(1).copied().unwrap_or(0),
                            s.device()
                        ),
                    ));
                }
                None => Tensor::full(&[rows, n], self.initial_state, value.device())?,
            };
            let mut spec = spec(slot.steps.saturating_add(1));
            spec.numel = n;
            let group = self.groups[slot.group];
            spec.lr *= group.lr_factor;
            if let Some(wd) = group.weight_decay {
                spec.weight_decay = wd;
            }
            if slot.steps == 0 {
                spec.flags |= OptimSpec::FIRST_STEP;
            }
            // A half parameter steps its f32 master copy (small updates would round away in
            // 16 bits) and takes the result rounded; the gradient is read in the step's dtype.
            let target = match (&slot.master, value.dtype().is_half()) {
                (Some((m, id)), true) if *id == value.id() => m.clone(),
                (_, true) => value.to_dtype(DType::F32)?.detach(),
                (_, false) => value.clone(),
            };
            let grad = grad.to_dtype(target.dtype())?;
            let (p, s) = fused_update(&target, &grad, &state, &spec, self.skip.as_ref())?;
            match value.dtype().is_half() {
                true => {
                    slot.param.set(p.to_dtype(value.dtype())?);
                    slot.master = Some((p, slot.param.value().id()));
                }
                false => {
                    slot.param.set(p);
                    slot.master = None; // the parameter is no longer a half (or never was)
                }
            }
            slot.state = Some(s);
            slot.steps += 1;
        }
        Ok(())
    }

    pub fn state_dict(&self) -> Vec<(String, Tensor)> {
        let names = self.names;
        let mut out = Vec::new();
        for (i, slot) in self.slots.iter().enumerate() {
            let Some(state) = &slot.state else { continue };
            let shape = slot.param.shape();
            for (r, name) in names.iter().enumerate() {
                // A row of the contiguous state is a contiguous view: nothing is copied.
                let row = state.narrow(0, r, 1).and_then(|t| t.reshape(&shape));
                if let Ok(row) = row {
                    out.push((format!("{i}.{name}"), row));
                }
            }
            if let Ok(step) = Tensor::scalar(slot.steps as f32, state.device()) {
                out.push((format!("{i}.step"), step));
            }
            // A half parameter's f32 master copy, so a resumed run continues exactly.
            if let Some((m, id)) = &slot.master {
                if *id == slot.param.value().id() {
                    if let Ok(m) = m.reshape(&shape) {
                        out.push((format!("{i}.{MASTER}"), m));
                    }
                }
            }
        }
        out
    }

    pub fn load_state_dict(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let names = self.names;
        let stepped = self.slots.iter().filter(|s| s.state.is_some()).count();
        if state.is_empty() && stepped > 0 {
            return Err(Error::invalid(
                "load_state_dict",
                format!(
                    "the state is empty, and loading it would discard the state of {stepped} \
                     parameter(s); build a new optimizer to start afresh"
                ),
            ));
        }
        let mut problems = Vec::new();
        // Per parameter: its state rows, its step count, and (optional) its master copy.
        let mut found: Vec<Vec<Option<&Tensor>>> =
            vec![vec![None; names.len() + 2]; self.slots.len()];
        for (key, t) in state {
            let parsed = key.split_once('.').and_then(|(i, name)| {
                let i: usize = i.parse().ok()?;
                let r = match name {
                    "step" => names.len(),
                    MASTER => names.len() + 1,
                    _ => names.iter().position(|n| *n == name)?,
                };
                (i < self.slots.len()).then_some((i, r))
            });
            let Some((i, r)) = parsed else {
                problems.push(format!("{key}: unexpected (no such parameter or buffer)"));
                continue;
            };
            let want = if r == names.len() {
                Vec::new()
            } else {
                self.slots[i].param.shape()
            };
            if t.shape() != want.as_slice() {
                problems.push(format!("{key}: expected {want:?}, found {:?}", t.shape()));
            }
            found[i][r] = Some(t);
        }
        for (i, entries) in found.iter().enumerate() {
            let entries = &entries[..=names.len()]; // the master copy is optional
            let present = entries.iter().filter(|e| e.is_some()).count();
            if present != 0 && present != entries.len() {
                for (r, e) in entries.iter().enumerate() {
                    if e.is_none() {
                        let name = names.get(r).copied().unwrap_or("step");
                        problems.push(format!("{i}.{name}: missing"));
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(Error::invalid(
                "load_state_dict",
                format!("the optimizer state does not fit: {}", problems.join("; ")),
            ));
        }
        let mut restored = Vec::with_capacity(self.slots.len());
        for (slot, entries) in self.slots.iter().zip(&found) {
            if entries[0].is_none() {
                restored.push((None, 0, None));
                continue;
            }
            let dev = slot.param.value().device().clone();
            let steps = entries[names.len()].map(|t| t.to_scalar()).transpose()?;
            let steps = steps.unwrap_or(0.0);
            // Step counts are saved as f32, exact up to 2^24; past that a count is corrupt
            // (and one near u64::MAX would wrap the counter and make Adam's step NaN).
            if !(steps >= 0.0 && steps.fract() == 0.0 && steps <= MAX_STEP) {
                return Err(Error::invalid(
                    "load_state_dict",
                    format!("a step count must be a whole number in 0..={MAX_STEP}, found {steps}"),
                ));
            }
            // State and master copies are F32 whatever dtype a checkpoint kept them in.
            let f32_on = |t: &Tensor| t.detach().to_device(&dev)?.to_dtype(DType::F32);
            let rows: Vec<Tensor> = entries[..names.len()]
                .iter()
                .flatten()
                .map(|t| f32_on(t)?.reshape(&[t.numel()]))
                .collect::<Result<_>>()?;
            let rows: Vec<&Tensor> = rows.iter().collect();
            let value = slot.param.value();
            let master = match (entries[names.len() + 1], value.dtype().is_half()) {
                (Some(m), true) => Some((f32_on(m)?, value.id())),
                _ => None,
            };
            restored.push((Some(Tensor::stack(&rows, 0)?), steps as u64, master));
        }
        for (slot, (state, steps, master)) in self.slots.iter_mut().zip(restored) {
            slot.state = state;
            slot.steps = steps;
            slot.master = master;
        }
        Ok(())
    }
}

/// The new parameter and state after one fused update, or the old ones where `skip` holds
/// true (the kernel reads the flag; composed from ops past one binding, with `where_`).
fn fused_update(
    value: &Tensor,
    grad: &Tensor,
    state: &Tensor,
    spec: &OptimSpec,
    skip: Option<&Tensor>,
) -> Result<(Tensor, Tensor)> {
    let (p, g) = (value.dense()?, grad.dense()?);
    if p.past_one_binding() || state.past_one_binding() {
        let (new_p, new_s) = large::update(&p, &g, state, spec)?;
        let (new_p, new_s) = match skip {
            Some(k) => {
                let old = p.reshape(new_p.shape())?;
                (
                    Tensor::where_(k, &old, &new_p)?,
                    Tensor::where_(k, state, &new_s)?,
                )
            }
            None => (new_p, new_s),
        };
        return Ok((new_p.reshape(value.shape())?, new_s));
    }
    p.optim_step(&g, state, spec, skip)
}

/// `v` must be finite and in `lo..=hi` (`hi` may be infinite).
pub(crate) fn check_hyper(op: &'static str, name: &str, v: f32, lo: f32, hi: f32) -> Result<()> {
    if v.is_nan() || v < lo || v > hi || v == f32::INFINITY {
        let range = if hi.is_infinite() {
            format!(">= {lo}")
        } else {
            format!("in [{lo}, {hi}]")
        };
        return Err(Error::invalid(
            op,
            format!("{name} must be finite and {range}, found {v}"),
        ));
    }
    Ok(())
}

/// Scales the gradients of `params` so their global L2 norm is at most `max_norm`, as
/// `torch.nn.utils.clip_grad_norm_`: each is multiplied by `min(1, max_norm / (norm + 1e-6))`.
/// Returns the norm before clipping as a 0-D tensor. Everything stays on the device: the
/// factor is a tensor, so nothing is read back.
pub fn clip_grad_norm(
    grads: &mut Gradients,
    params: &[Parameter],
    max_norm: f32,
) -> Result<Tensor> {
    check_hyper("clip_grad_norm", "max_norm", max_norm, 0.0, f32::INFINITY)?;
    let present: Vec<(Tensor, Tensor)> = params
        .iter()
        .filter_map(|p| {
            let v = p.value();
            grads.get(&v).cloned().map(|g| (v, g))
        })
        .collect();
    let Some((first, _)) = present.first() else {
        return Err(Error::invalid(
            "clip_grad_norm",
            "none of the parameters has a gradient",
        ));
    };
    let dev = first.device().clone();
    let mut total = Tensor::zeros(&[], &dev)?;
    for (_, g) in &present {
        total = total.add(&g.square()?.sum_all()?)?;
    }
    let norm = total.sqrt()?;
    let factor = Tensor::scalar(max_norm, &dev)?
        .div(&norm.add_scalar(1e-6)?)?
        .clamp(0.0, 1.0)?;
    for (v, g) in &present {
        grads.insert(v, g.mul(&factor)?);
    }
    Ok(norm)
}

/// Clamps every gradient of `params` to `[-clip, clip]`, as `torch.nn.utils.clip_grad_value_`.
pub fn clip_grad_value(grads: &mut Gradients, params: &[Parameter], clip: f32) -> Result<()> {
    check_hyper("clip_grad_value", "clip", clip, 0.0, f32::INFINITY)?;
    for p in params {
        let v = p.value();
        if let Some(g) = grads.remove(&v) {
            grads.insert(&v, g.clamp(-clip, clip)?);
        }
    }
    Ok(())
}
