//! Recycled CPU buffers. A training step allocates the same few large tensors every step
//! (conv columns, activations, their gradients), and the system allocator hands big blocks
//! back to the OS when they are freed, so every step paid again for fresh pages: the MNIST
//! CNN's CPU step spent ~35 % of its time in page faults (62.6 → 40.8 ms with the allocator
//! told to keep its memory). A dropped tensor's buffer goes into a bin keyed by its length,
//! and the next tensor of that length reuses it.
//!
//! Only buffers of at least `MIN_LEN` elements are kept (smaller ones are cheap to allocate),
//! and at most `MAX_BYTES` in all; `Device::empty_cache` frees them.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::real::Real;

/// Smallest buffer worth keeping: 64 KiB of f32, about where glibc starts to `mmap`.
const MIN_LEN: usize = 1 << 14;
/// Most bytes kept (per precision).
const MAX_BYTES: usize = 512 << 20;

/// Free buffers of one element type, by length.
#[derive(Debug)]
pub(crate) struct Bin<T> {
    free: BTreeMap<usize, Vec<Vec<T>>>,
    bytes: usize,
    buffers: usize,
}

impl<T> Bin<T> {
    /// An empty bin (`const`, for the statics in `Real::bin`).
    pub(crate) const fn new() -> Self {
        Bin {
            free: BTreeMap::new(),
            bytes: 0,
            buffers: 0,
        }
    }
}

fn lock<T>(m: &Mutex<Bin<T>>) -> std::sync::MutexGuard<'_, Bin<T>> {
    // A panic elsewhere cannot leave a bin half-updated (each update is a push or a pop and a
    // counter), so a poisoned lock is still safe to use.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A buffer of `len` zeros.
pub(crate) fn zeroed<T: Real>(len: usize) -> Vec<T> {
    match take::<T>(len) {
        Some(mut v) => {
            v.fill(T::zero());
            v
        }
        None => vec![T::zero(); len],
    }
}

/// An empty buffer with room for `len` elements, for kernels that push their output.
pub(crate) fn with_capacity<T: Real>(len: usize) -> Vec<T> {
    match take::<T>(len) {
        Some(mut v) => {
            v.clear();
            v
        }
        None => Vec::with_capacity(len),
    }
}

/// A copy of `src` in a recycled buffer when one fits.
pub(crate) fn copied<T: Real>(src: &[T]) -> Vec<T> {
    let mut v = with_capacity(src.len());
    v.extend_from_slice(src);
    v
}

fn take<T: Real>(len: usize) -> Option<Vec<T>> {
    if len < MIN_LEN {
        return None;
    }
    let mut bin = lock(T::bin());
    let v = bin.free.get_mut(&len)?.pop()?;
    bin.bytes -= len * size_of::<T>();
    bin.buffers -= 1;
    Some(v)
}

/// Keeps `v` for reuse if it is large enough and the bin has room; otherwise frees it.
pub(crate) fn give_back<T: Real>(mut v: Vec<T>) {
    // Keyed by capacity with the length set to it, so `take(len)` finds exactly `len` slots.
    let cap = v.capacity();
    if cap < MIN_LEN {
        return;
    }
    let bytes = cap * size_of::<T>();
    let mut bin = lock(T::bin());
    if bin.bytes + bytes > MAX_BYTES {
        return;
    }
    v.resize(cap, T::zero());
    bin.bytes += bytes;
    bin.buffers += 1;
    bin.free.entry(cap).or_default().push(v);
}

/// (buffers, bytes) kept, over both precisions.
pub(crate) fn stats() -> (usize, u64) {
    let (a, b) = (lock(f32::bin()), lock(f64::bin()));
    (a.buffers + b.buffers, (a.bytes + b.bytes) as u64)
}

/// Frees every kept buffer.
pub(crate) fn clear() {
    *lock(f32::bin()) = Bin::new();
    *lock(f64::bin()) = Bin::new();
}
