//! GPU faults charged to the tensors they poison. A kernel that checks indices (gather,
//! index_select, one_hot, cross_entropy, nll) cannot stop the GPU, so it records the first bad
//! index in a *fault slot* of its own and writes zeros or NaN. The slot goes with the kernel's
//! output (`GpuStorage::faults`) and with everything computed from it; a readback of such a
//! tensor reports a recorded fault as `Error::IndexOutOfRange`. A readback of an unrelated
//! tensor, on any thread, never sees it.
//!
//! Slots live in one buffer of `SLOTS` × 8 words (2 MiB):
//! `[fault count, op code, offending value (f32 bits), axis size, axis, _, _, _]`.
//! A readback copies the slots of the tensor it reads and of every launch not yet settled.
//! Once the GPU has run a launch, a readback that finds its slot clean marks the fault clean:
//! its slot is freed at once and tensors computed from it stop carrying it, so a training loop,
//! whose parameters are computed from every step's loss, does not pile up faults. A slot freed
//! by dropped tensors is zeroed and reused once a readback has seen the GPU finish every submit
//! that could still write it. Should every slot be held (65,535 unsettled launches or poisoned
//! tensors alive), the next checking op is an error saying so, never a shared slot that could
//! charge a fault to the wrong tensor.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::params::FAULT_OPS;
use crate::error::Error;

/// Fault slots per device (2 MiB).
pub const SLOTS: u32 = 1 << 16;
/// Bytes of one slot.
pub const SLOT_BYTES: u64 = 32;
/// Words of one slot.
pub const SLOT_WORDS: usize = (SLOT_BYTES / 4) as usize;
/// A fault's slot once it is known clean (and freed).
const CLEAN: u32 = u32::MAX;

/// One kernel launch's fault slot; held (through an `Arc`) by every storage computed from it.
pub(crate) struct Fault {
    slots: Arc<Slots>,
    slot: AtomicU32,
    /// Submits made by the time the launch was recorded (`NOT_YET` before): it is in a submit
    /// at most one past this count.
    launched: AtomicU64,
}

const NOT_YET: u64 = u64::MAX;

impl Fault {
    /// The slot's first word, for the kernel's parameters.
    pub fn base(&self) -> u32 {
        self.slot.load(Ordering::Relaxed) * SLOT_WORDS as u32
    }

    fn is_clean(&self) -> bool {
        self.slot.load(Ordering::Relaxed) == CLEAN
    }

    /// Called once the launch that writes this slot is recorded: from then on a readback that
    /// sees the GPU past it may settle it (before, a readback could find the slot clean only
    /// because the launch had not run).
    pub fn recorded(&self) {
        let now = self.slots.submits();
        let _ = self
            .launched
            .compare_exchange(NOT_YET, now, Ordering::Relaxed, Ordering::Relaxed);
    }
}

impl Drop for Fault {
    fn drop(&mut self) {
        let slot = self.slot.swap(CLEAN, Ordering::Relaxed);
        if slot != CLEAN {
            self.slots.retire(slot, self.slots.submits());
        }
    }
}

/// Which slots are free, which wait for the GPU before they can be, and the faults not yet
/// known clean; with the context's counters, to read how many submits have been made.
pub(crate) struct Slots {
    state: Mutex<SlotState>,
    /// `GpuContext::counts`: submits, dispatches, readbacks.
    counts: Arc<[AtomicU64; 3]>,
}

pub(crate) struct SlotState {
    free: Vec<u32>,
    /// (slot, submits made when it was dropped): its last launch is in a submit at most one
    /// past that count.
    retired: Vec<(u32, u64)>,
    live: Vec<Weak<Fault>>,
}

impl Slots {
    pub fn new(counts: Arc<[AtomicU64; 3]>) -> Slots {
        Slots {
            state: Mutex::new(SlotState {
                free: (0..SLOTS).rev().collect(),
                retired: Vec::new(),
                live: Vec::new(),
            }),
            counts,
        }
    }

    /// Submits made so far.
    fn submits(&self) -> u64 {
        self.counts[0].load(Ordering::Relaxed)
    }

    /// Held by a readback while it notes which slots to check and records its copy, so no
    /// slot it notes is freed and reused before the copy runs.
    pub fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Slots not free.
    pub fn held(&self) -> u64 {
        u64::from(SLOTS) - self.lock().free.len() as u64
    }

    fn retire(&self, slot: u32, submits: u64) {
        self.lock().retired.push((slot, submits));
    }

    /// After a readback saw the GPU finish every submit up to `completed`, with `words(slot)`
    /// the words it copied of a slot (`None` if it copied none): frees the retired slots whose
    /// launches are all done, each zeroed by `zero` first (queued under the lock, so it lands
    /// before any launch that takes the slot next), and the slots of finished launches that
    /// recorded nothing (marking those faults clean; their slots are zero already).
    pub fn recycle<'w>(
        &self,
        completed: u64,
        words: impl Fn(u32) -> Option<&'w [u32]>,
        zero: impl Fn(u32),
    ) {
        // Faults upgraded here are dropped after the lock: dropping the last handle retires
        // its slot, which takes the lock.
        let mut held: Vec<Arc<Fault>> = Vec::new();
        let mut st = self.lock();
        let (done, wait): (Vec<_>, Vec<_>) = st.retired.iter().partition(|(_, s)| *s < completed);
        st.retired = wait;
        for (slot, _) in done {
            zero(slot);
            st.free.push(slot);
        }
        let mut live = std::mem::take(&mut st.live);
        live.retain(|w| {
            let Some(f) = w.upgrade() else {
                return false;
            };
            let launched = f.launched.load(Ordering::Relaxed);
            let slot = f.slot.load(Ordering::Relaxed);
            let keep = if launched == NOT_YET || launched >= completed {
                true // may not have run yet
            } else if let Some(w) = words(slot) {
                if w[0] == 0
                    && f.slot
                        .compare_exchange(slot, CLEAN, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    st.free.push(slot);
                }
                false // settled: clean, or a fault for good
            } else {
                slot != CLEAN // not copied by this readback: the next one checks it
            };
            held.push(f);
            keep
        });
        st.live = live;
        drop(st);
        drop(held);
    }
}

impl SlotState {
    /// The slots of `faults` a readback must check (clean ones have none).
    pub fn slots_of(&self, faults: &[Arc<Fault>]) -> Vec<u32> {
        faults
            .iter()
            .map(|f| f.slot.load(Ordering::Relaxed))
            .filter(|&s| s != CLEAN)
            .collect()
    }

    /// The slots of launches not yet settled, which a readback copies to settle them, and
    /// their faults: the caller drops those after releasing the lock (dropping the last
    /// handle retires a slot, which takes the lock).
    pub fn unsettled(&self) -> (Vec<u32>, Vec<Arc<Fault>>) {
        let faults: Vec<Arc<Fault>> = self.live.iter().filter_map(Weak::upgrade).collect();
        let slots = faults
            .iter()
            .map(|f| f.slot.load(Ordering::Relaxed))
            .filter(|&s| s != CLEAN)
            .collect();
        (slots, faults)
    }
}

/// What a readback checks for faults.
pub(crate) enum Check<'a> {
    /// The faults of the tensor read.
    Faults(&'a [Arc<Fault>]),
    /// Nothing (a wait for the GPU).
    Nothing,
}

impl Slots {
    /// A fault for a launch of `op` in a free slot, or `None` when all are held.
    pub fn take(self: &Arc<Self>) -> Option<Arc<Fault>> {
        let slot = self.lock().free.pop()?;
        let fault = Arc::new(Fault {
            slots: self.clone(),
            slot: AtomicU32::new(slot),
            launched: AtomicU64::new(NOT_YET),
        });
        self.lock().live.push(Arc::downgrade(&fault));
        Some(fault)
    }
}

/// The union of the inputs' fault lists (each fault once, clean ones dropped), for an op's
/// output.
pub(crate) fn union<'a>(lists: impl IntoIterator<Item = &'a [Arc<Fault>]>) -> Vec<Arc<Fault>> {
    let mut out: Vec<Arc<Fault>> = Vec::new();
    for f in lists.into_iter().flatten() {
        if !f.is_clean() && !out.iter().any(|o| Arc::ptr_eq(o, f)) {
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
        index: f64::from(words[2] as i32), // the offending I32 index
        axis: words[4] as usize,
        size: words[3] as usize,
    })
}
