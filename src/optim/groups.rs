//! Param groups: parameters that step with a learning rate and weight decay of their own,
//! and each optimizer's `with_groups`.

use super::optimizers::{
    Adagrad, AdagradConfig, Adam, AdamConfig, AdamW, RmsProp, RmsPropConfig, Sgd, SgdConfig,
};
use super::{check_hyper, Core};
use crate::error::{Error, Result};
use crate::nn::Parameter;

/// Parameters with a learning rate and weight decay of their own (PyTorch's param groups):
/// fine-tune a pretrained backbone slowly and a new head fast. An optimizer built with
/// `with_groups` steps every group's parameters with its config, but a group's `lr` (relative
/// to the config's, which must then be above 0) and `weight_decay` where they are set.
/// [`Optimizer::set_lr`] (and so a schedule) moves every group's rate by the same factor, as
/// PyTorch's schedulers do.
///
/// ```
/// use ferrograd::nn::{Linear, Module};
/// use ferrograd::optim::{Adam, AdamConfig, Optimizer, ParamGroup};
/// use ferrograd::Device;
/// let dev = Device::cpu();
/// let (backbone, head) = (Linear::new(8, 8, true, &dev)?, Linear::new(8, 2, true, &dev)?);
/// let groups = vec![
///     ParamGroup::new(backbone.parameters()).lr(1e-4),
///     ParamGroup::new(head.parameters()), // the config's 1e-3
/// ];
/// let mut opt = Adam::with_groups(groups, AdamConfig::default())?;
/// opt.set_lr(5e-4)?; // the backbone now steps at 5e-5
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct ParamGroup {
    /// The group's parameters.
    pub params: Vec<Parameter>,
    /// Its learning rate at the start (`None`: the config's).
    pub lr: Option<f32>,
    /// Its weight decay (`None`: the config's).
    pub weight_decay: Option<f32>,
}

impl ParamGroup {
    /// A group of `params` with the config's settings.
    pub fn new(params: Vec<Parameter>) -> ParamGroup {
        ParamGroup {
            params,
            lr: None,
            weight_decay: None,
        }
    }
    /// With its own learning rate.
    pub fn lr(mut self, lr: f32) -> ParamGroup {
        self.lr = Some(lr);
        self
    }
    /// With its own weight decay.
    pub fn weight_decay(mut self, weight_decay: f32) -> ParamGroup {
        self.weight_decay = Some(weight_decay);
        self
    }
}

/// A group's settings as a core applies them: its rate as a multiple of the base rate.
#[derive(Clone, Copy, Debug)]
pub(super) struct GroupSettings {
    pub lr_factor: f32,
    pub weight_decay: Option<f32>,
}

impl Default for GroupSettings {
    fn default() -> Self {
        GroupSettings {
            lr_factor: 1.0,
            weight_decay: None,
        }
    }
}

impl Core {
    /// The parameters of `groups` in order, and the core that steps them with each group's
    /// settings, from `make` (an optimizer's `new` over all the parameters).
    fn grouped<O>(
        op: &'static str,
        groups: Vec<ParamGroup>,
        make: impl FnOnce(Vec<Parameter>) -> Result<O>,
        core: impl FnOnce(&mut O) -> &mut Core,
    ) -> Result<O> {
        let sizes: Vec<usize> = groups.iter().map(|g| g.params.len()).collect();
        let settings: Vec<(Option<f32>, Option<f32>)> =
            groups.iter().map(|g| (g.lr, g.weight_decay)).collect();
        let params = groups.into_iter().flat_map(|g| g.params).collect();
        let mut o = make(params).map_err(|e| e.in_op(op))?;
        let c = core(&mut o);
        let base = c.lr;
        c.groups.clear();
        for (i, (lr, wd)) in settings.into_iter().enumerate() {
            if let Some(wd) = wd {
                check_hyper(op, "a group's weight_decay", wd, 0.0, f32::INFINITY)?;
            }
            let lr_factor = match lr {
                None => 1.0,
                Some(lr) => {
                    check_hyper(op, "a group's lr", lr, 0.0, f32::INFINITY)?;
                    if base <= 0.0 {
                        return Err(Error::invalid(
                            op,
                            format!(
                                "group {i} sets lr {lr}, which is kept as a multiple of the \
                                 config's lr: that must be above 0, found {base}"
                            ),
                        ));
                    }
                    let factor = lr / base;
                    if !factor.is_finite() {
                        return Err(Error::invalid(
                            op,
                            format!("group {i}'s lr {lr} over the config's {base} is not finite"),
                        ));
                    }
                    factor
                }
            };
            c.groups.push(GroupSettings {
                lr_factor,
                weight_decay: wd,
            });
        }
        let mut slots = c.slots.iter_mut();
        for (g, &n) in sizes.iter().enumerate() {
            for slot in slots.by_ref().take(n) {
                slot.group = g;
            }
        }
        Ok(o)
    }
}

macro_rules! with_groups {
    ($($name:ident($config:ident)),*) => {$(
        impl $name {
            /// Over `groups` of parameters, each with the settings of `cfg` but its own
            /// learning rate and weight decay where the group sets them ([`ParamGroup`]).
            ///
            /// # Errors
            /// As `new`; also a group's negative or non-finite `lr` or `weight_decay`, and a
            /// group `lr` with a config `lr` of 0 (the group's is kept as a multiple of it).
            pub fn with_groups(groups: Vec<ParamGroup>, cfg: $config) -> Result<$name> {
                let op = concat!(stringify!($name), "::with_groups");
                Core::grouped(op, groups, |p| $name::new(p, cfg), |o| &mut o.core)
            }
        }
    )*};
}

with_groups!(
    Sgd(SgdConfig),
    Adam(AdamConfig),
    AdamW(AdamConfig),
    RmsProp(RmsPropConfig),
    Adagrad(AdagradConfig)
);
