//! The fused optimizer updates' launcher (`shaders/optim.wgsl`): one dispatch per parameter.

use super::spec::{OptimKind, OptimSpec};
use crate::error::Result;
use crate::gpu::grid::groups_for;
use crate::gpu::kernels::bind::optim;
use crate::gpu::kernels::Kernel;
use crate::gpu::params::{u32_of, wgsl_struct};
use crate::gpu::storage::GpuStorage;

wgsl_struct! {
    /// `shaders/optim.wgsl` `Params`.
    pub struct OptimParams for [Optim] {
        pub numel: u32,
        pub flags: u32,
        pub _pad: [u32; 2],
        pub lr: f32,
        pub weight_decay: f32,
        pub eps: f32,
        pub beta1: f32,
        pub beta2: f32,
        pub dampening: f32,
        pub bias1: f32,
        pub bias2_sqrt: f32,
    }
}

impl OptimParams {
    pub fn new(op: &'static str, s: &OptimSpec) -> Result<Self> {
        Ok(OptimParams {
            numel: u32_of(op, s.numel)?,
            flags: s.flags,
            _pad: [0; 2],
            lr: s.lr,
            weight_decay: s.weight_decay,
            eps: s.eps,
            beta1: s.beta1,
            beta2: s.beta2,
            dampening: s.dampening,
            bias1: s.bias1,
            bias2_sqrt: s.bias2_sqrt,
        })
    }
}

/// One fused optimizer update: fresh parameter and state buffers from the old ones.
pub(crate) fn optim_step(
    param: &GpuStorage,
    grad: &GpuStorage,
    state: &GpuStorage,
    spec: &OptimSpec,
    skip: Option<&GpuStorage>,
) -> Result<(GpuStorage, GpuStorage)> {
    let op = "optimizer step";
    let ctx = param.context();
    let kernel = match spec.kind {
        OptimKind::Sgd => Kernel::OptimSgd,
        OptimKind::Adam => Kernel::OptimAdam,
        OptimKind::RmsProp => Kernel::OptimRmsProp,
        OptimKind::Adagrad => Kernel::OptimAdagrad,
    };
    let new_param = GpuStorage::alloc(ctx, op, spec.numel)?;
    let new_state = GpuStorage::alloc(ctx, op, spec.numel * spec.state_rows())?;
    let bindings = [
        (optim::PARAM_OUT, new_param.buffer()),
        (optim::STATE_OUT, new_state.buffer()),
        (optim::PARAM, param.buffer()),
        (optim::GRAD, grad.buffer()),
        (optim::STATE, state.buffer()),
        // Without a flag the kernel never reads the binding: the gradient stands in.
        (optim::SKIP, skip.unwrap_or(grad).buffer()),
    ];
    let mut params = OptimParams::new(op, spec)?;
    if skip.is_some() {
        params.flags |= OptimSpec::SKIP_IF;
    }
    ctx.dispatch(kernel, 0, &params, &bindings, groups_for(spec.numel), op)?;
    Ok((new_param, new_state))
}
