//! Every CPU tensor buffer comes from here: one fallible path that checks the size, the
//! memory limit and the allocation itself, so a tensor too large for the machine is an
//! `Error::TooLarge` naming the op and the bytes, never an abort.
//!
//! Buffers are also recycled. A training step allocates the same few large tensors every step
//! (conv columns, activations, their gradients), and the system allocator hands big blocks
//! back to the OS when they are freed, so every step paid again for fresh pages: the MNIST
//! CNN's CPU step spent ~35 % of its time in page faults (62.6 → 40.8 ms with the allocator
//! told to keep its memory). A dropped tensor's buffer goes into a bin keyed by its size class
//! (`memory::size_class`, as the GPU pool), and the next tensor of any length in that class
//! reuses it. Keying by class rather than exact length matters: a buffer whose length nothing
//! asks for again (a data loader's batch) would otherwise sit in the pool until the cap.
//!
//! Only buffers of at least `MIN_LEN` elements are kept (smaller ones are cheap to allocate),
//! at most `PER_CLASS` of one class and `MAX_BYTES` in all; `Device::empty_cache` frees them.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::memory::{class_below, physical_memory, size_class, Limit};

/// What a pooled buffer can hold: every CPU element type (`f32`, `f64`, `i32`, `bool`).
pub(crate) trait Pooled: Copy + Default + Send + Sync + 'static {}
impl<T: Copy + Default + Send + Sync + 'static> Pooled for T {}

/// Smallest buffer worth keeping: 64 KiB of f32, about where glibc starts to `mmap`.
const MIN_LEN: usize = 1 << 14;
/// Most bytes kept (per precision).
const MAX_BYTES: usize = 512 << 20;
/// Most buffers kept of one size class (a training step frees a few dozen of one class at
/// most; past that a class only grows with buffers nothing will ask for).
const PER_CLASS: usize = 32;

/// Bytes held by live CPU tensors (their buffers' capacity), and the most ever held: what
/// `Device::memory_stats` reports and the memory limit counts.
pub(crate) static LIVE: AtomicU64 = AtomicU64::new(0);
pub(crate) static PEAK: AtomicU64 = AtomicU64::new(0);
/// Buffers of a poolable size (`MIN_LEN` elements or more) the pool could not serve and the
/// allocator made: flat across training steps once the pool is warm.
pub(crate) static CREATED: AtomicU64 = AtomicU64::new(0);

/// The cap on live CPU tensor bytes (`Device::set_memory_limit`); physical memory by default.
static LIMIT: Limit = Limit::unset();

pub(crate) fn limit() -> u64 {
    LIMIT.get(physical_memory)
}

pub(crate) fn set_limit(bytes: Option<u64>) {
    LIMIT.set(bytes);
}

/// Free buffers of one element type, by size class.
#[derive(Debug)]
pub(crate) struct Bin<T> {
    free: BTreeMap<usize, Vec<Vec<T>>>,
    bytes: usize,
    buffers: usize,
}

impl<T> Bin<T> {
    fn new() -> Self {
        Bin {
            free: BTreeMap::new(),
            bytes: 0,
            buffers: 0,
        }
    }
}

/// A bin of any element type: what `stats` needs without knowing the type.
trait AnyBin: Any + Send {
    /// (buffers, bytes) kept.
    fn counts(&self) -> (usize, usize);
    fn as_any(&mut self) -> &mut dyn Any;
}

impl<T: Send + 'static> AnyBin for Bin<T> {
    fn counts(&self) -> (usize, usize) {
        (self.buffers, self.bytes)
    }
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
}

/// One bin per element type (f32, f64, i32, bool), made on first use and found by
/// type, so the float trait (`real.rs`) need not know the pool.
static BINS: Mutex<Vec<Box<dyn AnyBin>>> = Mutex::new(Vec::new());

fn bins() -> std::sync::MutexGuard<'static, Vec<Box<dyn AnyBin>>> {
    // A panic elsewhere cannot leave a bin half-updated (each update is a push or a pop and a
    // counter), so a poisoned lock is still safe to use.
    BINS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` on the bin of `T`s.
fn with_bin<T: Pooled, R>(f: impl FnOnce(&mut Bin<T>) -> R) -> R {
    let mut bins = bins();
    if !bins.iter_mut().any(|b| b.as_any().is::<Bin<T>>()) {
        bins.push(Box::new(Bin::<T>::new()));
    }
    match bins
        .iter_mut()
        .find_map(|b| b.as_any().downcast_mut::<Bin<T>>())
    {
        Some(bin) => f(bin),
        None => f(&mut Bin::new()), // unreachable: pushed above
    }
}

/// A buffer of `len` zeros for `op`.
pub(crate) fn zeroed<T: Pooled>(op: &'static str, len: usize) -> Result<Vec<T>> {
    let mut v = with_capacity(op, len)?;
    v.resize(len, T::default());
    Ok(v)
}

/// A buffer of `len` elements whose values are unspecified, for kernels that write every
/// element. A recycled buffer keeps its old values (only a tail past its old length is
/// zeroed), so the kernel skips a pass over memory it is about to overwrite: for a 1e6
/// element ReLU, zero-filling the output took more than half its time. Still safe Rust: the
/// old values are initialized floats, and a kernel that missed an element would give a wrong
/// value, which the both-backend tests compare.
pub(crate) fn for_overwrite<T: Pooled>(op: &'static str, len: usize) -> Result<Vec<T>> {
    let mut v = reserve(op, len, false)?;
    v.truncate(len);
    v.resize(len, T::default());
    Ok(v)
}

/// An empty buffer with room for `len` elements, for kernels that push their output.
pub(crate) fn with_capacity<T: Pooled>(op: &'static str, len: usize) -> Result<Vec<T>> {
    reserve(op, len, true)
}

/// A buffer with room for `len` elements, recycled when one fits (emptied if `clear`, else
/// holding its old values), after the memory-limit check.
fn reserve<T: Pooled>(op: &'static str, len: usize, clear: bool) -> Result<Vec<T>> {
    // A pooled length is reserved at its whole class (so the buffer serves the class when it
    // comes back); the limit counts what is reserved, as `LIVE` does.
    let cap = match len >= MIN_LEN {
        true => usize::try_from(size_class(len as u64)).unwrap_or(len),
        false => len,
    };
    let bytes = (len as u64).saturating_mul(size_of::<T>() as u64);
    let reserved = (cap as u64).saturating_mul(size_of::<T>() as u64);
    let oom = |why: String| Error::OutOfMemory { op, bytes, why };
    let limit = limit();
    let live = LIVE.load(Ordering::Relaxed);
    if reserved > limit.saturating_sub(live) {
        return Err(oom(format!(
            "CPU tensors hold {live} bytes, and the CPU memory limit is {limit} bytes (the \
             machine's memory unless set with Device::set_memory_limit)"
        )));
    }
    if let Some(mut v) = take::<T>(len) {
        if clear {
            v.clear();
        }
        return Ok(v);
    }
    let mut v = Vec::new();
    v.try_reserve_exact(cap)
        .or_else(|_| v.try_reserve_exact(len))
        .map_err(|_| oom("the system allocator refused".into()))?;
    if len >= MIN_LEN {
        CREATED.fetch_add(1, Ordering::Relaxed);
    }
    Ok(v)
}

/// A copy of `src` for `op`, in a recycled buffer when one fits.
pub(crate) fn copied<T: Pooled>(op: &'static str, src: &[T]) -> Result<Vec<T>> {
    let mut v = with_capacity(op, src.len())?;
    v.extend_from_slice(src);
    Ok(v)
}

fn take<T: Pooled>(len: usize) -> Option<Vec<T>> {
    if len < MIN_LEN {
        return None;
    }
    let class = usize::try_from(size_class(len as u64)).ok()?;
    with_bin(|bin: &mut Bin<T>| {
        let v = bin.free.get_mut(&class)?.pop()?;
        bin.bytes -= v.capacity() * size_of::<T>();
        bin.buffers -= 1;
        Some(v)
    })
}

/// Keeps `v` for reuse if it is large enough and there is room; otherwise frees it.
pub(crate) fn give_back<T: Pooled>(v: Vec<T>) {
    let cap = v.capacity();
    if cap < MIN_LEN {
        return;
    }
    // Filed under the largest class it can hold, so `take` finds room for any length of it.
    let Ok(class) = usize::try_from(class_below(cap as u64)) else {
        return;
    };
    let bytes = cap * size_of::<T>();
    with_bin(|bin: &mut Bin<T>| {
        if bin.bytes + bytes > MAX_BYTES {
            return;
        }
        let slot = bin.free.entry(class).or_default();
        if slot.len() >= PER_CLASS {
            return;
        }
        slot.push(v);
        bin.bytes += bytes;
        bin.buffers += 1;
    })
}

/// (buffers, bytes) kept, over every element type.
pub(crate) fn stats() -> (usize, u64) {
    bins().iter().fold((0, 0), |(n, bytes), b| {
        let (bn, bb) = b.counts();
        (n + bn, bytes + bb as u64)
    })
}

/// Frees every kept buffer.
pub(crate) fn clear() {
    bins().clear();
}
