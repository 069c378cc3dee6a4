//! GPU buffers pooled by size class: a dropped tensor's buffer goes back to the pool and the
//! next allocation of that class reuses it, so a training loop stops creating buffers after its
//! first step. Live and peak bytes, in all and by dtype, are counted for
//! `Device::memory_stats`.

use std::collections::HashMap;

use bytemuck::Pod;

use super::context::{lock, GpuContext};
use crate::device_info::MemoryStats;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::memory::size_class;

/// Free buffers by size class, and the counters behind `memory_stats`.
#[derive(Default)]
pub struct Pool {
    free: HashMap<u64, Vec<wgpu::Buffer>>,
    pub live_bytes: u64,
    pub peak_bytes: u64,
    pub pooled_bytes: u64,
    pub pooled_buffers: usize,
    pub created_buffers: u64,
    /// Live bytes by dtype, in the order of `DType::ALL`.
    by_dtype: [u64; DType::ALL.len()],
}

impl Pool {
    /// A free buffer of exactly `class` bytes for a tensor of `dtype`, if the pool has one.
    pub fn take(&mut self, class: u64, dtype: DType) -> Option<wgpu::Buffer> {
        let buf = self.free.get_mut(&class)?.pop()?;
        self.pooled_bytes -= class;
        self.pooled_buffers -= 1;
        self.note_live(class, dtype);
        Some(buf)
    }

    /// Records a buffer handed out (reused or freshly created) for a tensor of `dtype`.
    pub fn note_live(&mut self, class: u64, dtype: DType) {
        self.live_bytes += class;
        self.peak_bytes = self.peak_bytes.max(self.live_bytes);
        self.by_dtype[dtype.index()] += class;
    }

    /// Undoes `note_live` (a buffer that could not be created).
    pub fn unnote_live(&mut self, class: u64, dtype: DType) {
        self.live_bytes -= class;
        self.by_dtype[dtype.index()] -= class;
    }

    /// Live bytes of tensors of `dtype`.
    pub fn live_of(&self, dtype: DType) -> u64 {
        self.by_dtype[dtype.index()]
    }

    pub fn give_back(&mut self, buf: wgpu::Buffer, dtype: DType) {
        let class = buf.size();
        self.unnote_live(class, dtype);
        self.pooled_bytes += class;
        self.pooled_buffers += 1;
        self.free.entry(class).or_default().push(buf);
    }

    /// Destroys every pooled buffer (live tensors keep theirs).
    pub fn clear(&mut self) {
        self.free.clear();
        self.pooled_bytes = 0;
        self.pooled_buffers = 0;
    }
}

impl GpuContext {
    /// A buffer for `len` 32-bit words holding a tensor of `dtype`: from the pool when one of
    /// its size class is free. The flag says whether it was reused (a reused buffer may still
    /// be read by recorded commands).
    pub fn alloc_buffer(
        &self,
        op: &'static str,
        len: usize,
        dtype: DType,
    ) -> Result<(wgpu::Buffer, bool)> {
        let bytes = (len as u64).saturating_mul(4);
        let limit = self.max_tensor_bytes();
        if bytes > limit {
            return Err(Error::TooLarge {
                op,
                bytes,
                limit,
                what: "max_buffer_size",
            });
        }
        // A tensor that fits one binding gets a buffer that does too, so kernels that bind
        // whole buffers can take it.
        let cap = match bytes <= self.max_binding_bytes() {
            true => self.max_binding_bytes(),
            false => limit,
        };
        let class = size_class(bytes).min(cap).max(4);
        let cap = self.memory_limit.get(|| u64::MAX);
        {
            // Checked and reserved under one lock, so threads allocating at once cannot pass
            // the limit together.
            let mut pool = lock(&self.pool);
            let live = pool.live_bytes;
            if class > cap.saturating_sub(live) {
                return Err(Error::OutOfMemory {
                    op,
                    bytes,
                    why: format!(
                        "this GPU's tensors hold {live} bytes, and its memory limit \
                         (Device::set_memory_limit) is {cap} bytes"
                    ),
                });
            }
            if let Some(buf) = pool.take(class, dtype) {
                return Ok((buf, true));
            }
            pool.note_live(class, dtype);
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: class,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            lock(&self.pool).unnote_live(class, dtype); // the reservation, given back
            return Err(Error::Gpu {
                op,
                message: format!("allocating {class} bytes failed: {e}"),
            });
        }
        lock(&self.pool).created_buffers += 1;
        Ok((buf, false))
    }

    /// Returns the buffer of a dropped tensor of `dtype` to the pool.
    pub fn release_buffer(&self, buf: wgpu::Buffer, dtype: DType) {
        lock(&self.pool).give_back(buf, dtype);
    }

    pub fn memory_stats(&self) -> MemoryStats {
        let p = lock(&self.pool);
        MemoryStats {
            live_bytes: p.live_bytes,
            peak_bytes: p.peak_bytes,
            pooled_buffers: p.pooled_buffers,
            pooled_bytes: p.pooled_bytes,
            created_buffers: p.created_buffers,
            by_dtype: DType::ALL.map(|d| (d, p.live_of(d))),
        }
    }

    pub fn clear_pool(&self) {
        lock(&self.pool).clear();
    }

    /// Writes `data` into `buf`. `queue.write_buffer` lands at the start of the next submit, so
    /// a reused buffer is only written after the recorded commands that still read it go out.
    pub fn write<T: Pod>(&self, buf: &wgpu::Buffer, data: &[T], reused: bool) -> Result<()> {
        if reused {
            self.flush()?;
        }
        if !data.is_empty() {
            self.queue.write_buffer(buf, 0, bytemuck::cast_slice(data));
        }
        Ok(())
    }
}
