//! [`GpuStorage`]: a tensor's buffer on the GPU (pooled: it returns to its context's pool when
//! dropped), with the fault slots of the index kernels it was computed from.

use std::sync::Arc;

use super::context::GpuContext;
use super::fault::{self, Fault};
use crate::dtype::{not_on_gpu, DType, HostData};
use crate::error::Result;

/// A tensor buffer on the GPU, one 32-bit word per element whatever the dtype; returns to the
/// pool when dropped.
pub(crate) struct GpuStorage {
    pub(super) ctx: Arc<GpuContext>,
    buffer: Option<wgpu::Buffer>,
    len: usize,
    dtype: DType,
    /// The fault slots of the index kernels this data was computed from (`fault.rs`): a
    /// readback reports a fault recorded in any of them. Empty for almost every tensor.
    faults: Vec<Arc<Fault>>,
}

impl std::fmt::Debug for GpuStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GpuStorage({} {} on {})",
            self.len, self.dtype, self.ctx.info.name
        )
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
        GpuStorage::alloc_as(ctx, op, len, DType::F32)
    }

    /// An uninitialised buffer for `len` elements of `dtype`.
    pub fn alloc_as(
        ctx: &Arc<GpuContext>,
        op: &'static str,
        len: usize,
        dtype: DType,
    ) -> Result<GpuStorage> {
        let (buf, _) = ctx.alloc_buffer(op, len)?;
        Ok(GpuStorage {
            ctx: ctx.clone(),
            buffer: Some(buf),
            len,
            dtype,
            faults: Vec::new(),
        })
    }

    pub fn from_slice(ctx: &Arc<GpuContext>, op: &'static str, data: &[f32]) -> Result<GpuStorage> {
        GpuStorage::from_words(ctx, op, data, DType::F32)
    }

    /// A buffer holding `data`, 32-bit words read as `dtype`.
    fn from_words<T: bytemuck::Pod>(
        ctx: &Arc<GpuContext>,
        op: &'static str,
        data: &[T],
        dtype: DType,
    ) -> Result<GpuStorage> {
        let (buf, reused) = ctx.alloc_buffer(op, data.len())?;
        ctx.write(&buf, data, reused)?;
        Ok(GpuStorage {
            ctx: ctx.clone(),
            buffer: Some(buf),
            len: data.len(),
            dtype,
            faults: Vec::new(),
        })
    }

    /// A buffer holding `data` (`F64` has no GPU form: an error naming `op`).
    pub fn from_host(
        ctx: &Arc<GpuContext>,
        op: &'static str,
        data: HostData,
    ) -> Result<GpuStorage> {
        match data {
            HostData::F32(v) => GpuStorage::from_words(ctx, op, &v, DType::F32),
            HostData::I32(v) => GpuStorage::from_words(ctx, op, &v, DType::I32),
            HostData::Bool(v) => {
                let words: Vec<u32> = v.into_iter().map(u32::from).collect();
                GpuStorage::from_words(ctx, op, &words, DType::Bool)
            }
            HostData::F64(_) => Err(not_on_gpu(op, DType::F64)),
        }
    }

    /// Words read back from this storage, as its dtype.
    pub fn decode(&self, words: Vec<u32>) -> HostData {
        match self.dtype {
            DType::I32 => HostData::I32(bytemuck::cast_vec(words)),
            DType::Bool => HostData::Bool(words.into_iter().map(|w| w != 0).collect()),
            // F64 never reaches the GPU (`from_host`); every other dtype is an f32.
            _ => HostData::F32(bytemuck::cast_vec(words)),
        }
    }

    pub fn dtype(&self) -> DType {
        self.dtype
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
