//! [`CpuStorage`]: a tensor's buffer on the CPU, f32 or (for gradcheck) f64, counted in the
//! live and peak bytes `Device::memory_stats` reports and recycled through `buffers.rs`.

use std::sync::atomic::Ordering;

use super::buffers::{self, LIVE, PEAK};
use super::walk::StridedWalk;
use crate::backend::Strided;
use crate::device_info::MemoryStats;
use crate::error::{Error, Result};
use crate::real::Real;
use crate::shape::Layout;

/// Runs `$body` with each storage's data bound as a slice of one precision (`f32` or `f64`,
/// the body is generic); operands of mixed precision are an error.
macro_rules! by_precision {
    ($op:expr, [$($s:expr),+], |$($v:ident),+| $body:expr) => {
        match ($($s,)+) {
            ($(CpuStorage::F32($v),)+) => $body,
            ($(CpuStorage::F64($v),)+) => $body,
            #[allow(unreachable_patterns)]
            _ => Err(Error::invalid($op, "operands of different precisions (f32 and f64)")),
        }
    };
}
pub(crate) use by_precision;

/// A CPU tensor buffer: f32, or f64 on the f64 device that `gradcheck` uses for finite
/// differences. Immutable once built; views share it through `Arc<Storage>`.
#[derive(Debug)]
pub(crate) enum CpuStorage {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// The element types a [`CpuStorage`] can hold.
pub(crate) trait CpuReal: Real {
    fn wrap(v: Vec<Self>) -> CpuStorage;
    fn view(s: &CpuStorage) -> Option<&[Self]>;
}
impl CpuReal for f32 {
    fn wrap(v: Vec<f32>) -> CpuStorage {
        CpuStorage::F32(v)
    }
    fn view(s: &CpuStorage) -> Option<&[f32]> {
        match s {
            CpuStorage::F32(v) => Some(v),
            CpuStorage::F64(_) => None,
        }
    }
}
impl CpuReal for f64 {
    fn wrap(v: Vec<f64>) -> CpuStorage {
        CpuStorage::F64(v)
    }
    fn view(s: &CpuStorage) -> Option<&[f64]> {
        match s {
            CpuStorage::F64(v) => Some(v),
            CpuStorage::F32(_) => None,
        }
    }
}

impl CpuStorage {
    pub fn new<T: CpuReal>(data: Vec<T>) -> CpuStorage {
        let s = T::wrap(data);
        let bytes = s.bytes();
        let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
        PEAK.fetch_max(live, Ordering::Relaxed);
        s
    }

    fn bytes(&self) -> u64 {
        match self {
            CpuStorage::F32(v) => v.capacity() as u64 * 4,
            CpuStorage::F64(v) => v.capacity() as u64 * 8,
        }
    }

    /// The elements of `layout` in row-major order, in f64 (for gradcheck).
    pub fn to_vec_f64(&self, layout: &Layout) -> Result<Vec<f64>> {
        self.read(layout, |v| v.to_f64())
    }

    /// The elements of `layout` in row-major order, each through `f`, in a buffer checked
    /// against the memory limit.
    pub(super) fn read<U: Real>(&self, layout: &Layout, f: impl Fn(f64) -> U) -> Result<Vec<U>> {
        let spec = Strided::new("to_vec", &[layout])?;
        let mut out = buffers::with_capacity("to_vec", spec.numel())?;
        by_precision!("to_vec", [self], |x| {
            let mut walk = StridedWalk::new(&spec, 0);
            for _ in 0..spec.numel() {
                out.push(f(x[walk.offsets[0]].to_f64()));
                walk.advance();
            }
            Ok::<_, Error>(())
        })?;
        Ok(out)
    }
}

impl Drop for CpuStorage {
    fn drop(&mut self) {
        LIVE.fetch_sub(self.bytes(), Ordering::Relaxed);
        match self {
            CpuStorage::F32(v) => buffers::give_back(std::mem::take(v)),
            CpuStorage::F64(v) => buffers::give_back(std::mem::take(v)),
        }
    }
}

/// Bytes held by CPU tensors in this process, and the buffers kept for reuse.
pub(crate) fn memory_stats() -> MemoryStats {
    let (pooled_buffers, pooled_bytes) = buffers::stats();
    MemoryStats {
        live_bytes: LIVE.load(Ordering::Relaxed),
        peak_bytes: PEAK.load(Ordering::Relaxed),
        pooled_buffers,
        pooled_bytes,
        created_buffers: buffers::CREATED.load(Ordering::Relaxed),
    }
}
