//! The fused optimizer update both backends are handed.

use crate::codes::op_codes;

/// Which fused update [`Backend::optim_step`] runs (`shaders/optim.wgsl`, `src/ops/optim/cpu.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OptimKind {
    /// State `[1, n]`: the momentum buffer.
    Sgd,
    /// State `[2, n]`: the first and second moments (Adam and AdamW); `[3, n]` with
    /// `OptimSpec::AMSGRAD`, the third row the largest second moment so far.
    Adam,
    /// State `[3, n]`: the mean square, the momentum buffer and the mean gradient.
    RmsProp,
    /// State `[1, n]`: the sum of squared gradients.
    Adagrad,
}

impl OptimKind {
    /// Rows of the state tensor.
    pub fn state_rows(self) -> usize {
        match self {
            OptimKind::Sgd | OptimKind::Adagrad => 1,
            OptimKind::Adam => 2,
            OptimKind::RmsProp => 3,
        }
    }
}

/// One optimizer step of one parameter, with this step's hyper-parameters resolved on the
/// host (bias corrections, Adagrad's decayed rate). Field meanings per kind are in
/// `shaders/optim.wgsl`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct OptimSpec {
    pub kind: OptimKind,
    pub numel: usize,
    pub lr: f32,
    pub weight_decay: f32,
    pub eps: f32,
    /// SGD and RMSprop momentum; Adam's beta1.
    pub beta1: f32,
    /// Adam's beta2; RMSprop's alpha.
    pub beta2: f32,
    pub dampening: f32,
    /// Adam: `1 - beta1^t`.
    pub bias1: f32,
    /// Adam: `sqrt(1 - beta2^t)`.
    pub bias2_sqrt: f32,
    /// `OptimSpec::NESTEROV | FIRST_STEP | DECOUPLED | CENTERED | AMSGRAD | MAXIMIZE`.
    pub flags: u32,
}

op_codes! {
    /// The bits of [`OptimSpec::flags`] (WGSL: `OPTIM_NESTEROV`, ...).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum OptimFlag("OPTIM") {
        /// SGD: Nesterov momentum.
        Nesterov = 1 => "nesterov",
        /// SGD: the momentum buffer starts as the first gradient.
        FirstStep = 2 => "first_step",
        /// AdamW: weight decay shrinks the parameter instead of adding to the gradient.
        Decoupled = 4 => "decoupled",
        /// RMSprop: divide by the variance, not the mean square.
        Centered = 8 => "centered",
        /// Skip the step (copy the parameter and state) where the `skip` flag, a `Bool`
        /// word on the device, is true (`Optimizer::skip_steps_if`).
        SkipIf = 16 => "skip_if",
        /// Adam: divide by the largest second moment so far (a third state row).
        Amsgrad = 32 => "amsgrad",
        /// Every kind: ascend the gradient (it is negated before anything else).
        Maximize = 64 => "maximize",
    }
}

impl OptimSpec {
    pub const NESTEROV: u32 = OptimFlag::Nesterov as u32;
    pub const FIRST_STEP: u32 = OptimFlag::FirstStep as u32;
    pub const DECOUPLED: u32 = OptimFlag::Decoupled as u32;
    pub const CENTERED: u32 = OptimFlag::Centered as u32;
    pub const SKIP_IF: u32 = OptimFlag::SkipIf as u32;
    pub const AMSGRAD: u32 = OptimFlag::Amsgrad as u32;
    pub const MAXIMIZE: u32 = OptimFlag::Maximize as u32;

    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// Rows of the state tensor: the kind's, plus AMSGrad's running maximum.
    pub fn state_rows(&self) -> usize {
        self.kind.state_rows()
            + usize::from(self.kind == OptimKind::Adam && self.has(Self::AMSGRAD))
    }
}
