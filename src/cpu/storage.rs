//! [`CpuStorage`]: a tensor's buffer on the CPU, one variant per dtype, counted in the live and
//! peak bytes `Device::memory_stats` reports and recycled through `buffers.rs`.

use std::sync::atomic::Ordering;

use half::{bf16, f16};

use super::buffers::{self, LIVE, PEAK};
use super::walk::StridedWalk;
use crate::backend::Strided;
use crate::device_info::MemoryStats;
use crate::dtype::{DType, HostData};
use crate::error::{Error, Result};
use crate::memory::ByDtype;
use crate::shape::Layout;

/// Runs `$body` with each storage's data bound as a slice of one float type (`f32` or `f64`,
/// the body is generic); any other mix of dtypes is an error naming them (the ops above check
/// dtypes first: this is the backstop that keeps bits of one type from being read as another).
macro_rules! by_precision {
    ($op:expr, [$($s:expr),+], |$($v:ident),+| $body:expr) => {
        match ($($s,)+) {
            ($(CpuStorage::F32($v),)+) => $body,
            ($(CpuStorage::F64($v),)+) => $body,
            #[allow(unreachable_patterns)]
            _ => Err($crate::cpu::storage::float_mismatch($op, &[$($s.dtype()),+])),
        }
    };
}

/// The error of a float-only CPU kernel handed `got`.
pub(crate) fn float_mismatch(op: &'static str, got: &[DType]) -> Error {
    Error::DType {
        op,
        got: got.to_vec(),
        expected: "float operands of one dtype",
        hint: "convert with `.to_dtype(DType::F32)`",
    }
}
pub(crate) use by_precision;

/// A CPU tensor buffer, one variant per dtype (`F64` on the f64 device that `gradcheck` uses
/// for finite differences). Immutable once built; views share it through `Arc<Storage>`.
#[derive(Debug)]
pub(crate) enum CpuStorage {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I32(Vec<i32>),
    Bool(Vec<bool>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
}

/// The element types a [`CpuStorage`] can hold.
pub(crate) trait CpuElem: buffers::Pooled {
    fn wrap(v: Vec<Self>) -> CpuStorage;
    fn view(s: &CpuStorage) -> Option<&[Self]>;
}
macro_rules! cpu_elem {
    ($t:ty, $d:ident) => {
        impl CpuElem for $t {
            fn wrap(v: Vec<$t>) -> CpuStorage {
                CpuStorage::$d(v)
            }
            fn view(s: &CpuStorage) -> Option<&[$t]> {
                match s {
                    CpuStorage::$d(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}
cpu_elem!(f32, F32);
cpu_elem!(f64, F64);
cpu_elem!(i32, I32);
cpu_elem!(bool, Bool);
cpu_elem!(f16, F16);
cpu_elem!(bf16, BF16);

impl CpuStorage {
    pub fn new<T: CpuElem>(data: Vec<T>) -> CpuStorage {
        let s = T::wrap(data);
        let bytes = s.bytes();
        BY_DTYPE.add(s.dtype(), bytes);
        let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
        PEAK.fetch_max(live, Ordering::Relaxed);
        s
    }

    /// A storage holding `data`, converted to f64 on the f64 device (`wide`).
    pub fn from_host(data: HostData, wide: bool) -> CpuStorage {
        match data {
            HostData::F32(v) if wide => CpuStorage::new(v.iter().map(|&x| f64::from(x)).collect()),
            HostData::F32(v) => CpuStorage::new(v),
            HostData::F64(v) => CpuStorage::new(v),
            HostData::I32(v) => CpuStorage::new(v),
            HostData::Bool(v) => CpuStorage::new(v),
            // Halves widen exactly on the f64 device (gradcheck computes in f64).
            HostData::F16(v) if wide => CpuStorage::new(v.iter().map(|x| x.to_f64()).collect()),
            HostData::BF16(v) if wide => CpuStorage::new(v.iter().map(|x| x.to_f64()).collect()),
            HostData::F16(v) => CpuStorage::new(v),
            HostData::BF16(v) => CpuStorage::new(v),
        }
    }

    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F64(_) => DType::F64,
            CpuStorage::I32(_) => DType::I32,
            CpuStorage::Bool(_) => DType::Bool,
            CpuStorage::F16(_) => DType::F16,
            CpuStorage::BF16(_) => DType::BF16,
        }
    }

    /// Elements held.
    pub fn len(&self) -> usize {
        match self {
            CpuStorage::F32(v) => v.len(),
            CpuStorage::F64(v) => v.len(),
            CpuStorage::I32(v) => v.len(),
            CpuStorage::Bool(v) => v.len(),
            CpuStorage::F16(v) => v.len(),
            CpuStorage::BF16(v) => v.len(),
        }
    }

    fn bytes(&self) -> u64 {
        let cap = match self {
            CpuStorage::F32(v) => v.capacity(),
            CpuStorage::F64(v) => v.capacity(),
            CpuStorage::I32(v) => v.capacity(),
            CpuStorage::Bool(v) => v.capacity(),
            CpuStorage::F16(v) => v.capacity(),
            CpuStorage::BF16(v) => v.capacity(),
        };
        cap as u64 * self.dtype().size_in_bytes() as u64
    }

    /// The elements of `layout` in row-major order, in their own dtype, in a buffer checked
    /// against the memory limit.
    pub(crate) fn read(&self, layout: &Layout) -> Result<HostData> {
        fn walk<T: CpuElem>(x: &[T], layout: &Layout) -> Result<Vec<T>> {
            let n = layout.numel();
            if layout.is_contiguous() {
                return buffers::copied("to_vec", &x[layout.offset()..layout.offset() + n]);
            }
            let spec = Strided::new("to_vec", &[layout])?;
            let mut out = buffers::with_capacity("to_vec", n)?;
            let mut walk = StridedWalk::new(&spec, 0);
            for _ in 0..n {
                out.push(x[walk.offsets[0]]);
                walk.advance();
            }
            Ok(out)
        }
        Ok(match self {
            CpuStorage::F32(x) => HostData::F32(walk(x, layout)?),
            CpuStorage::F64(x) => HostData::F64(walk(x, layout)?),
            CpuStorage::I32(x) => HostData::I32(walk(x, layout)?),
            CpuStorage::Bool(x) => HostData::Bool(walk(x, layout)?),
            CpuStorage::F16(x) => HostData::F16(walk(x, layout)?),
            CpuStorage::BF16(x) => HostData::BF16(walk(x, layout)?),
        })
    }
}

impl Drop for CpuStorage {
    fn drop(&mut self) {
        LIVE.fetch_sub(self.bytes(), Ordering::Relaxed);
        BY_DTYPE.sub(self.dtype(), self.bytes());
        match self {
            CpuStorage::F32(v) => buffers::give_back(std::mem::take(v)),
            CpuStorage::F64(v) => buffers::give_back(std::mem::take(v)),
            CpuStorage::I32(v) => buffers::give_back(std::mem::take(v)),
            CpuStorage::Bool(v) => buffers::give_back(std::mem::take(v)),
            CpuStorage::F16(v) => buffers::give_back(std::mem::take(v)),
            CpuStorage::BF16(v) => buffers::give_back(std::mem::take(v)),
        }
    }
}

/// Live bytes of CPU tensors by dtype.
static BY_DTYPE: ByDtype = ByDtype::new();

/// Bytes held by CPU tensors in this process, and the buffers kept for reuse.
pub(crate) fn memory_stats() -> MemoryStats {
    let (pooled_buffers, pooled_bytes) = buffers::stats();
    MemoryStats {
        live_bytes: LIVE.load(Ordering::Relaxed),
        peak_bytes: PEAK.load(Ordering::Relaxed),
        pooled_buffers,
        pooled_bytes,
        created_buffers: buffers::CREATED.load(Ordering::Relaxed),
        by_dtype: BY_DTYPE.read(),
    }
}
