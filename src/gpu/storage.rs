//! [`GpuStorage`]: a tensor's buffer on the GPU (pooled: it returns to its context's pool when
//! dropped), with the fault slots of the index kernels it was computed from.

use std::sync::Arc;

use super::context::GpuContext;
use super::fault::{self, Fault};
use crate::dtype::{not_on_gpu, DType, HostData};
use crate::error::Result;

/// A tensor buffer on the GPU, one 32-bit word per element (two per word for `F16` and
/// `BF16`, element `2k` in the low half of word `k`); returns to the pool when dropped.
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
            self.ctx.release_buffer(buf, self.dtype);
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
        let (buf, _) = ctx.alloc_buffer(op, words(len, dtype), dtype)?;
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
        GpuStorage::from_packed(ctx, op, data, data.len(), dtype)
    }

    /// A buffer of `len` elements of `dtype` packed in `data`'s words.
    fn from_packed<T: bytemuck::Pod>(
        ctx: &Arc<GpuContext>,
        op: &'static str,
        data: &[T],
        len: usize,
        dtype: DType,
    ) -> Result<GpuStorage> {
        let (buf, reused) = ctx.alloc_buffer(op, data.len(), dtype)?;
        ctx.write(&buf, data, reused)?;
        Ok(GpuStorage {
            ctx: ctx.clone(),
            buffer: Some(buf),
            len,
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
            HostData::F16(v) => {
                let packed = pack(v.iter().map(|h| h.to_bits()));
                GpuStorage::from_packed(ctx, op, &packed, v.len(), DType::F16)
            }
            HostData::BF16(v) => {
                let packed = pack(v.iter().map(|h| h.to_bits()));
                GpuStorage::from_packed(ctx, op, &packed, v.len(), DType::BF16)
            }
            HostData::F64(_) => Err(not_on_gpu(op, DType::F64)),
        }
    }

    /// Elements held (not words: a half buffer holds two per word).
    pub fn len(&self) -> usize {
        self.len
    }

    /// `n` elements of `dtype` from words read back from element `offset` on (the words of
    /// `gpu/mod.rs`'s `word_span`: for halves, the one holding element `offset` first).
    pub fn decode(dtype: DType, words: Vec<u32>, offset: usize, n: usize) -> HostData {
        // The 16-bit halves of the words, low first, from element `offset`.
        let halves = || {
            let bits = words.iter().flat_map(|w| [*w as u16, (w >> 16) as u16]);
            bits.skip(offset % 2).take(n)
        };
        match dtype {
            DType::I32 => HostData::I32(bytemuck::cast_vec(words)),
            DType::Bool => HostData::Bool(words.into_iter().map(|w| w != 0).collect()),
            DType::F16 => HostData::F16(halves().map(half::f16::from_bits).collect()),
            DType::BF16 => HostData::BF16(halves().map(half::bf16::from_bits).collect()),
            // F64 never reaches the GPU (`from_host`); the rest are f32s.
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

    /// `inherit` for a storage written in place (`Backend::write_at`).
    pub(crate) fn absorb_faults(&mut self, from: &GpuStorage) {
        self.faults = fault::union([&self.faults[..], &from.faults[..]]);
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

/// The 32-bit words a buffer of `len` elements of `dtype` takes.
pub(crate) fn words(len: usize, dtype: DType) -> usize {
    match dtype.is_half() {
        true => len.div_ceil(2),
        false => len,
    }
}

/// 16-bit values packed two to a word, the first in the low half (the last word's high half
/// is 0 for an odd count).
fn pack(bits: impl Iterator<Item = u16>) -> Vec<u32> {
    let bits: Vec<u16> = bits.collect();
    bits.chunks(2)
        .map(|p| u32::from(p[0]) | u32::from(p.get(1).copied().unwrap_or(0)) << 16)
        .collect()
}
