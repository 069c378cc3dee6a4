//! [`GpuStorage`]: a tensor's buffer on the GPU (pooled: it returns to its context's pool when
//! dropped), with the fault slots of the index kernels it was computed from.

use std::sync::Arc;

use super::context::GpuContext;
use super::fault::{self, Fault};
use crate::error::Result;

/// A tensor buffer on the GPU; returns to the pool when dropped.
pub(crate) struct GpuStorage {
    pub(super) ctx: Arc<GpuContext>,
    buffer: Option<wgpu::Buffer>,
    len: usize,
    /// The fault slots of the index kernels this data was computed from (`fault.rs`): a
    /// readback reports a fault recorded in any of them. Empty for almost every tensor.
    faults: Vec<Arc<Fault>>,
}

impl std::fmt::Debug for GpuStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuStorage({} f32 on {})", self.len, self.ctx.info.name)
    }
}

impl Drop for GpuStorage {
    fn drop(&mut self) {
        if let Some(buf) = self.buffer.take() {
            self.ctx.release_buffer(buf);
        }
    }
}

impl GpuStorage {
    /// An uninitialised buffer for `len` f32s (every kernel writes all of its output).
    pub fn alloc(ctx: &Arc<GpuContext>, op: &'static str, len: usize) -> Result<GpuStorage> {
        let (buf, _) = ctx.alloc_buffer(op, len)?;
        Ok(GpuStorage {
            ctx: ctx.clone(),
            buffer: Some(buf),
            len,
            faults: Vec::new(),
        })
    }

    pub fn from_slice(ctx: &Arc<GpuContext>, op: &'static str, data: &[f32]) -> Result<GpuStorage> {
        let (buf, reused) = ctx.alloc_buffer(op, data.len())?;
        ctx.write(&buf, data, reused)?;
        Ok(GpuStorage {
            ctx: ctx.clone(),
            buffer: Some(buf),
            len: data.len(),
            faults: Vec::new(),
        })
    }

    /// This output charged with every fault its `inputs` carry: a bad index upstream poisons
    /// what is computed from it.
    pub(crate) fn inherit(mut self, inputs: &[&GpuStorage]) -> GpuStorage {
        let lists = inputs.iter().map(|s| &s.faults[..]);
        self.faults = fault::union(lists.chain([&self.faults[..]]));
        self
    }

    /// A fresh fault slot for a kernel that checks indices, charged to this output; returns
    /// the slot's first word, for the kernel's parameters.
    pub(crate) fn new_fault(&mut self, op: &'static str) -> Result<u32> {
        let f = self.ctx.new_fault(op)?;
        let base = f.base();
        self.faults.push(f);
        Ok(base)
    }

    /// Marks the faults this storage's launch took as recorded (see `Fault::recorded`).
    pub(crate) fn recorded(&self) {
        self.faults.iter().for_each(|f| f.recorded());
    }

    /// What a readback of this storage checks.
    pub(crate) fn check(&self) -> fault::Check<'_> {
        fault::Check::Faults(&self.faults)
    }

    pub fn buffer(&self) -> &wgpu::Buffer {
        // Only `Drop` takes the buffer out.
        self.buffer
            .as_ref()
            .unwrap_or_else(|| unreachable!("GPU storage used after drop"))
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }
}
