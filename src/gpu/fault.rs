//! GPU faults charged to the tensors they poison. A kernel that checks indices (gather,
//! index_select, one_hot, cross_entropy, nll) cannot stop the GPU, so it records the first bad
//! index in a *fault slot* of its own and writes zeros or NaN. The slot goes with the kernel's
//! output (`GpuStorage::faults`) and with everything computed from it; a readback of such a
//! tensor copies its slots beside the values and reports a recorded fault as
//! `Error::IndexOutOfRange`. A readback of an unrelated tensor, on any thread, never sees it.
//!
//! Slots live in one buffer of `SLOTS` × 8 words:
//! `[fault count, op code, offending value (f32 bits), axis size, axis, _, _, _]`.
//! A slot is freed when the last tensor holding it is dropped, but is reused only once a
//! readback has seen the GPU finish every submit that may still write it, and after it is
//! zeroed. Slot 0 is shared by launches made while every other slot is held; it is never freed,
//! and `synchronize` reports it.

use std::sync::{Arc, Mutex};

use super::context::GpuContext;
use super::params::FAULT_OPS;
use crate::error::Error;

/// Fault slots per device (32 KiB).
pub const SLOTS: u32 = 1024;
/// Bytes of one slot.
pub const SLOT_BYTES: u64 = 32;
/// The shared slot for launches made when no other is free.
pub const OVERFLOW: u32 = 0;

/// One kernel launch's fault slot; held (through an `Arc`) by every storage computed from it.
pub(crate) struct Fault {
    ctx: Arc<GpuContext>,
    pub slot: u32,
}

impl Drop for Fault {
    fn drop(&mut self) {
        if self.slot != OVERFLOW {
            self.ctx.fault_slots.retire(self.slot, self.ctx.submits());
        }
    }
}

/// Which slots are free, and which wait for the GPU before they can be.
pub(crate) struct Slots(Mutex<SlotState>);

struct SlotState {
    free: Vec<u32>,
    /// (slot, submits made when it was dropped): its last launch is in a submit at most one
    /// past that count.
    retired: Vec<(u32, u64)>,
}

impl Slots {
    pub fn new() -> Slots {
        Slots(Mutex::new(SlotState {
            free: (1..SLOTS).rev().collect(),
            retired: Vec::new(),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn retire(&self, slot: u32, submits: u64) {
        self.lock().retired.push((slot, submits));
    }

    /// A free slot, if any.
    pub fn take(&self) -> Option<u32> {
        self.lock().free.pop()
    }

    /// Called when the GPU has finished every submit up to `completed`: the retired slots
    /// whose launches are all done become free again. Returns them, for zeroing before the
    /// next submit.
    pub fn recycle(&self, completed: u64) -> Vec<u32> {
        let mut st = self.lock();
        let (done, wait): (Vec<_>, Vec<_>) = st.retired.iter().partition(|(_, s)| *s < completed);
        st.retired = wait;
        let slots: Vec<u32> = done.into_iter().map(|(slot, _)| slot).collect();
        st.free.extend(&slots);
        slots
    }
}

/// A new fault slot for one launch on `ctx`. When all are held, waits for the GPU once to
/// recycle the retired ones, and falls back to the shared overflow slot if none come free.
pub(crate) fn new_fault(ctx: &Arc<GpuContext>) -> crate::Result<Arc<Fault>> {
    let slot = match ctx.fault_slots.take() {
        Some(s) => s,
        None => {
            ctx.wait_idle()?;
            ctx.fault_slots.take().unwrap_or(OVERFLOW)
        }
    };
    Ok(Arc::new(Fault {
        ctx: ctx.clone(),
        slot,
    }))
}

/// The union of the inputs' fault lists (each fault once), for an op's output.
pub(crate) fn union<'a>(lists: impl IntoIterator<Item = &'a [Arc<Fault>]>) -> Vec<Arc<Fault>> {
    let mut out: Vec<Arc<Fault>> = Vec::new();
    for f in lists.into_iter().flatten() {
        if !out.iter().any(|o| Arc::ptr_eq(o, f)) {
            out.push(f.clone());
        }
    }
    out
}

/// The error a slot's words record, if any.
pub(crate) fn error_in(words: &[u32]) -> Option<Error> {
    (words[0] != 0).then(|| Error::IndexOutOfRange {
        op: FAULT_OPS
            .get(words[1] as usize)
            .copied()
            .unwrap_or("unknown"),
        index: f64::from(f32::from_bits(words[2])),
        axis: words[4] as usize,
        size: words[3] as usize,
    })
}
