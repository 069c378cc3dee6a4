//! Launchers for normalisation and its gradient (`shaders/norm.wgsl`): one workgroup per
//! statistics group.

use super::spec::NormSpec;
use crate::error::Result;
use crate::gpu::kernels::bind::norm;
use crate::gpu::kernels::Kernel;
use crate::gpu::params::{u32_of, wgsl_struct};
use crate::gpu::storage::GpuStorage;

wgsl_struct! {
    /// `shaders/norm.wgsl` `Params`.
    pub struct NormParams for [Norm] {
        pub outer: u32,
        pub groups: u32,
        pub inner: u32,
        pub count: u32,
        pub eps: f32,
        pub _pad: [u32; 3],
    }
}

impl NormParams {
    pub fn new(op: &'static str, s: &NormSpec) -> Result<Self> {
        u32_of(op, s.numel())?;
        Ok(NormParams {
            outer: u32_of(op, s.outer)?,
            groups: u32_of(op, s.groups)?,
            inner: u32_of(op, s.inner)?,
            count: u32_of(op, s.count())?,
            eps: s.eps,
            _pad: [0; 3],
        })
    }
}

pub(crate) fn normalize(x: &GpuStorage, spec: &NormSpec) -> Result<(GpuStorage, GpuStorage)> {
    let (ctx, op) = (x.context(), "normalize");
    let out = GpuStorage::alloc(ctx, op, spec.numel())?;
    let stats = GpuStorage::alloc(ctx, op, 2 * spec.groups)?;
    let params = NormParams::new(op, spec)?;
    let bindings = [
        (norm::OUT, out.buffer()),
        (norm::X, x.buffer()),
        (norm::STATS, stats.buffer()),
    ];
    // One workgroup per group.
    ctx.dispatch(Kernel::NormForward, 0, &params, &bindings, spec.groups, op)?;
    Ok((out, stats))
}

pub(crate) fn normalize_backward(
    xhat: &GpuStorage,
    g: &GpuStorage,
    stats: &GpuStorage,
    spec: &NormSpec,
) -> Result<GpuStorage> {
    let (ctx, op) = (xhat.context(), "normalize_backward");
    let out = GpuStorage::alloc(ctx, op, spec.numel())?;
    let params = NormParams::new(op, spec)?;
    let bindings = [
        (norm::OUT, out.buffer()),
        (norm::X, xhat.buffer()),
        (norm::G, g.buffer()),
        (norm::SAVED, stats.buffer()),
    ];
    ctx.dispatch(Kernel::NormBackward, 0, &params, &bindings, spec.groups, op)?;
    Ok(out)
}
