//! Reading results back: the one place the GPU is waited for. A readback copies the values
//! and the fault slots it must check (`fault.rs`) into a staging buffer, submits everything
//! pending, and maps the staging buffer: blocking (`read`) or as a future that never blocks
//! the thread (`read_async`, for browsers).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};

use super::context::{lock, GpuContext};
use super::fault::{self, Check, SLOT_BYTES, SLOT_WORDS};
use crate::error::{Error, Result};

/// A readback between [`GpuContext::start_read`] and [`GpuContext::finish_read`].
struct PendingRead {
    staging: wgpu::Buffer,
    bytes: u64,
    fault_at: u64,
    /// The fault slots checked, and those copied after the values (sorted; a superset).
    slots: Vec<u32>,
    copied: Vec<u32>,
    /// The submit that carries the copy: once mapped, the GPU has finished it and every
    /// earlier one.
    submit: u64,
    mapped: Arc<(Mutex<MapState>, Condvar)>,
}

/// Filled in by the map callback, which also notifies the condvar beside it (a blocking
/// reader) and wakes `waker` (an async one).
#[derive(Default)]
struct MapState {
    result: Option<std::result::Result<(), String>>,
    waker: Option<std::task::Waker>,
}

impl GpuContext {
    /// Copies `len` f32s from `buf` (and the fault `slots` of the tensor they hold) to a
    /// staging buffer, submits all pending work, and asks for the staging buffer to be mapped.
    /// Nothing waits here: the blocking and the async read both finish with
    /// [`GpuContext::finish_read`].
    fn start_read(
        &self,
        buf: &wgpu::Buffer,
        offset: usize,
        len: usize,
        check: Check<'_>,
    ) -> Result<PendingRead> {
        self.counts[2].fetch_add(1, Ordering::Relaxed);
        let bytes = len as u64 * 4;
        let fault_at = bytes.next_multiple_of(8);
        // The slots to check are noted, and their copies recorded, under the slots' lock: none
        // of them can be freed and reused by another launch before the copies run. Unsettled
        // launches' slots are copied too, so this readback can mark the clean ones.
        let slot_state = self.fault_slots.lock();
        let checked = match check {
            Check::Faults(f) => slot_state.slots_of(f),
            Check::Nothing => Vec::new(),
        };
        let mut copied = checked.clone();
        let (unsettled, held) = slot_state.unsettled();
        copied.extend(unsettled);
        copied.sort_unstable();
        copied.dedup();
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("ferrograd readback"),
            size: (fault_at + SLOT_BYTES * copied.len() as u64).max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let submit = {
            let mut st = lock(&self.state);
            st.pass = None; // a copy cannot be recorded while a pass is open
            let enc = st
                .encoder
                .get_or_insert_with(|| self.device.create_command_encoder(&Default::default()));
            if bytes > 0 {
                enc.copy_buffer_to_buffer(buf, offset as u64 * 4, &staging, 0, bytes);
            }
            for (i, &slot) in copied.iter().enumerate() {
                let (src, dst) = (
                    u64::from(slot) * SLOT_BYTES,
                    fault_at + i as u64 * SLOT_BYTES,
                );
                enc.copy_buffer_to_buffer(&self.fault, src, &staging, dst, SLOT_BYTES);
            }
            self.submit_locked(&mut st)?
        };
        drop(slot_state);
        drop(held);
        let mapped: Arc<(Mutex<MapState>, Condvar)> = Arc::default();
        let done = mapped.clone();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let mut m = lock(&done.0);
            m.result = Some(r.map_err(|e| e.to_string()));
            done.1.notify_all(); // a blocking reader
            if let Some(w) = m.waker.take() {
                w.wake(); // an async reader (a browser's event loop, say) polls again
            }
        });
        Ok(PendingRead {
            staging,
            bytes,
            fault_at,
            slots: checked,
            copied,
            submit,
            mapped,
        })
    }

    /// Reads a mapped staging buffer: the values, or the first recorded error (a wgpu error,
    /// an out-of-range index).
    fn finish_read(&self, read: PendingRead, op: &'static str) -> Result<Vec<u32>> {
        let PendingRead {
            staging,
            bytes,
            fault_at,
            slots,
            copied,
            submit,
            mapped,
        } = read;
        let mapped = lock(&mapped.0)
            .result
            .take()
            .unwrap_or_else(|| Err("the readback was never completed".to_string()));
        self.take_error(op)?;
        mapped.map_err(|e| Error::Gpu {
            op,
            message: format!("mapping the readback buffer failed: {e}"),
        })?;
        let (values, fault) = {
            let view = staging.get_mapped_range(..).map_err(|e| Error::Gpu {
                op,
                message: format!("reading the mapped buffer failed: {e}"),
            })?;
            let values: Vec<u32> = bytemuck::pod_collect_to_vec(&view[..bytes as usize]);
            let fault: Vec<u32> = bytemuck::pod_collect_to_vec(&view[fault_at as usize..]);
            (values, fault)
        };
        staging.unmap();
        let words_of = |slot: u32| {
            let i = copied.binary_search(&slot).ok()?;
            Some(&fault[i * SLOT_WORDS..(i + 1) * SLOT_WORDS])
        };
        // The GPU has finished `submit`: slots freed before it can be zeroed and reused (the
        // writes land before the next submit, ahead of any launch that takes them), and the
        // launches it ran that recorded nothing are clean.
        let zero = |slot: u32| {
            let zeros = [0u8; SLOT_BYTES as usize];
            self.queue
                .write_buffer(&self.fault, u64::from(slot) * SLOT_BYTES, &zeros);
        };
        self.fault_slots.recycle(submit, words_of, zero);
        if let Some(e) = slots
            .iter()
            .find_map(|&s| words_of(s).and_then(fault::error_in))
        {
            return Err(e);
        }
        Ok(values)
    }

    /// `len` 32-bit words of `buf` from element `offset` (their bits: the caller knows the
    /// dtype), waiting for the GPU: the one place the blocking API waits.
    pub fn read(
        &self,
        buf: &wgpu::Buffer,
        offset: usize,
        len: usize,
        check: Check<'_>,
        op: &'static str,
    ) -> Result<Vec<u32>> {
        let pending = self.start_read(buf, offset, len, check)?;
        let poll = |kind| {
            self.device.poll(kind).map_err(|e| Error::Gpu {
                op,
                message: format!("waiting for the GPU failed: {e}"),
            })
        };
        poll(wgpu::PollType::wait_indefinitely())?;
        // The work is done, but when several threads poll, another one may be running our map
        // callback right now: wait for it (it notifies), polling again now and then in case
        // nobody else is.
        let (state, done) = &*pending.mapped;
        loop {
            let m = lock(state);
            if m.result.is_some() {
                break;
            }
            let (m, _) = done
                .wait_timeout(m, std::time::Duration::from_millis(1))
                .unwrap_or_else(|e| e.into_inner());
            if m.result.is_some() {
                break;
            }
            drop(m); // the callback takes this lock, and may run inside our poll
            poll(wgpu::PollType::Poll)?;
        }
        self.finish_read(pending, op)
    }

    /// [`GpuContext::read`] without blocking: the future is ready once the buffer is mapped.
    /// Where something else drives wgpu (a browser), the map callback wakes it; on native
    /// platforms each poll gives wgpu a non-blocking `poll` and asks to be polled again.
    pub async fn read_async(
        &self,
        buf: &wgpu::Buffer,
        offset: usize,
        len: usize,
        check: Check<'_>,
        op: &'static str,
    ) -> Result<Vec<u32>> {
        let pending = self.start_read(buf, offset, len, check)?;
        std::future::poll_fn(|cx| {
            {
                let mut m = lock(&pending.mapped.0);
                if m.result.is_some() {
                    return std::task::Poll::Ready(());
                }
                m.waker = Some(cx.waker().clone());
            }
            let _ = self.device.poll(wgpu::PollType::Poll);
            if lock(&pending.mapped.0).result.is_some() {
                return std::task::Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        })
        .await;
        self.finish_read(pending, op)
    }

    /// Waits for all recorded work; reports wgpu errors (index faults belong to the tensors
    /// they poison: `fault.rs`). Freed and clean fault slots are recycled.
    pub fn synchronize(&self) -> Result<()> {
        self.read(&self.fault, 0, 0, Check::Nothing, "synchronize")
            .map(|_| ())
    }

    /// [`GpuContext::synchronize`], for `fault.rs` when it needs slots back.
    pub fn wait_idle(&self) -> Result<()> {
        self.synchronize()
    }
}
