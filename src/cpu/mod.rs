//! The CPU backend: the reference every GPU kernel is tested against, and the fallback where no
//! adapter exists. Loops are written to be checked by eye; large ones are split over cores with
//! rayon, and matmul goes through a GEMM crate (see `matmul.rs`).

mod elementwise;
mod matmul;
mod nn;
mod optim;
pub(crate) mod pool;
mod reduce;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::backend::{
    Backend, CrossEntropySpec, Elementwise, GatherSpec, LineSpec, MatmulSpec, NormSpec, OptimSpec,
    PoolKind, Strided, Window2d,
};
use crate::device::MemoryStats;
use crate::error::{Error, Result};
use crate::op::ReduceOp;
use crate::random::dropout_keeps;
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

/// Below this many elements a loop runs on the calling thread (rayon's hand-off costs more).
pub(crate) const PAR_THRESHOLD: usize = 1 << 15;

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

static LIVE: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);

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
    fn read<U: Real>(&self, layout: &Layout, f: impl Fn(f64) -> U) -> Result<Vec<U>> {
        let spec = Strided::new("to_vec", &[layout])?;
        let mut out = pool::with_capacity("to_vec", spec.numel())?;
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
            CpuStorage::F32(v) => pool::give_back(std::mem::take(v)),
            CpuStorage::F64(v) => pool::give_back(std::mem::take(v)),
        }
    }
}

/// Bytes held by CPU tensors in this process, and the buffers kept for reuse.
pub(crate) fn memory_stats() -> MemoryStats {
    let (pooled_buffers, pooled_bytes) = pool::stats();
    MemoryStats {
        live_bytes: LIVE.load(Ordering::Relaxed),
        peak_bytes: PEAK.load(Ordering::Relaxed),
        pooled_buffers,
        pooled_bytes,
        ..MemoryStats::default()
    }
}

/// Walks a [`Strided`] spec from flat index `start`, keeping one storage offset per operand
/// (an odometer over the collapsed shape, so the inner loop adds a stride instead of dividing).
pub(crate) struct StridedWalk<'a> {
    spec: &'a Strided,
    idx: Vec<usize>,
    pub offsets: Vec<usize>,
}

impl<'a> StridedWalk<'a> {
    pub fn new(spec: &'a Strided, start: usize) -> Self {
        let rank = spec.shape.len();
        let mut idx = vec![0; rank];
        let mut rem = start;
        for d in (0..rank).rev() {
            // An empty shape has no element to walk; `max(1)` keeps the setup from dividing by 0.
            let size = spec.shape[d].max(1);
            idx[d] = rem % size;
            rem /= size;
        }
        let offsets = (0..spec.offsets.len())
            .map(|j| {
                spec.offsets[j]
                    + (0..rank)
                        .map(|d| idx[d] * spec.strides[j][d])
                        .sum::<usize>()
            })
            .collect();
        StridedWalk { spec, idx, offsets }
    }

    /// Moves to the next element in row-major order.
    #[inline]
    pub fn advance(&mut self) {
        for d in (0..self.idx.len()).rev() {
            self.idx[d] += 1;
            if self.idx[d] < self.spec.shape[d] {
                for (o, s) in self.offsets.iter_mut().zip(&self.spec.strides) {
                    *o += s[d];
                }
                return;
            }
            self.idx[d] = 0;
            for (o, s) in self.offsets.iter_mut().zip(&self.spec.strides) {
                *o -= s[d] * (self.spec.shape[d] - 1);
            }
        }
    }
}

/// Checks an index held as a float: integral and in `0..size`.
pub(crate) fn check_index<T: Real>(
    op: &'static str,
    v: T,
    axis: usize,
    size: usize,
) -> Result<usize> {
    let v = v.to_f64();
    if v >= 0.0 && v.fract() == 0.0 && (v as usize) < size {
        Ok(v as usize)
    } else {
        Err(Error::IndexOutOfRange {
            op,
            index: v,
            axis,
            size,
        })
    }
}

/// Every storage's data as `T`, or `None` if any holds the other precision.
fn views<'a, T: CpuReal>(inputs: &[&'a CpuStorage]) -> Option<Vec<&'a [T]>> {
    inputs.iter().map(|s| T::view(s)).collect()
}

// out (index shape) = input[.., index[..], ..] along `axis`.
fn gather<T: Real>(
    input: &[T],
    index: &[T],
    spec: &GatherSpec,
    op: &'static str,
) -> Result<Vec<T>> {
    let n = spec.strided.numel();
    let mut out = pool::with_capacity(op, n)?;
    let mut walk = StridedWalk::new(&spec.strided, 0);
    for _ in 0..n {
        let i = check_index(op, index[walk.offsets[1]], spec.axis, spec.axis_size)?;
        out.push(input[walk.offsets[0] + i * spec.axis_stride]);
        walk.advance();
    }
    Ok(out)
}

// index (J) -> out (J, classes)
fn one_hot<T: Real>(index: &[T], spec: &Strided, classes: usize) -> Result<Vec<T>> {
    let n = spec.numel();
    let numel = n.saturating_mul(classes);
    let mut out = pool::zeroed("one_hot", numel)?;
    let mut walk = StridedWalk::new(spec, 0);
    for j in 0..n {
        let c = check_index("one_hot", index[walk.offsets[0]], 0, classes)?;
        out[j * classes + c] = T::one();
        walk.advance();
    }
    Ok(out)
}

/// The precision a CPU device computes in: f32, or f64 for gradcheck.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Precision {
    F32,
    F64,
}

impl Backend for CpuStorage {
    type Context = Precision;

    fn from_host(ctx: &Precision, data: Vec<f32>, _op: &'static str) -> Result<Self> {
        Ok(match ctx {
            Precision::F32 => CpuStorage::new(data),
            Precision::F64 => CpuStorage::new(data.iter().map(|&x| f64::from(x)).collect()),
        })
    }

    fn fill(ctx: &Precision, len: usize, value: f32, op: &'static str) -> Result<Self> {
        Ok(match ctx {
            Precision::F32 => {
                let mut v = pool::with_capacity(op, len)?;
                v.resize(len, value);
                CpuStorage::new(v)
            }
            Precision::F64 => {
                let mut v = pool::with_capacity(op, len)?;
                v.resize(len, f64::from(value));
                CpuStorage::new(v)
            }
        })
    }

    fn dropout_mask(
        ctx: &Precision,
        len: usize,
        key: u64,
        threshold: u32,
        scale: f32,
    ) -> Result<Self> {
        let mut v = pool::with_capacity("dropout", len)?;
        // `len` fits u32: `Tensor::dropout` checks it.
        v.extend(
            (0..len as u32).map(|i| match dropout_keeps(key, i, threshold) {
                true => scale,
                false => 0.0,
            }),
        );
        CpuStorage::from_host(ctx, v, "dropout")
    }
    fn elementwise(inputs: &[&Self], spec: &Strided, kind: Elementwise) -> Result<Self> {
        if let Some(data) = views::<f32>(inputs) {
            return Ok(CpuStorage::new(elementwise::elementwise(
                &data, spec, kind,
            )?));
        }
        match views::<f64>(inputs) {
            Some(data) => Ok(CpuStorage::new(elementwise::elementwise(
                &data, spec, kind,
            )?)),
            None => Err(Error::invalid(
                "elementwise",
                "operands of different precisions (f32 and f64)",
            )),
        }
    }

    fn matmul(a: &Self, b: &Self, bias: Option<&Self>, spec: &MatmulSpec) -> Result<Self> {
        match bias {
            None => by_precision!("matmul", [a, b], |x, y| Ok(CpuStorage::new(
                matmul::matmul(x, y, None, spec)?
            ))),
            Some(c) => by_precision!("matmul", [a, b, c], |x, y, z| Ok(CpuStorage::new(
                matmul::matmul(x, y, Some(z), spec)?
            ))),
        }
    }

    fn reduce(&self, spec: &LineSpec, op: ReduceOp) -> Result<Self> {
        by_precision!(op.name(), [self], |x| Ok(CpuStorage::new(reduce::reduce(
            x, spec, op
        )?)))
    }

    fn softmax(&self, spec: &LineSpec, log: bool) -> Result<Self> {
        by_precision!("softmax", [self], |x| Ok(CpuStorage::new(reduce::softmax(
            x, spec, log
        )?)))
    }

    fn softmax_backward(
        y: &Self,
        g: &Self,
        spec: &LineSpec,
        grad_offset: usize,
        log: bool,
    ) -> Result<Self> {
        by_precision!("softmax_backward", [y, g], |y, g| Ok(CpuStorage::new(
            reduce::softmax_backward(y, &g[grad_offset..], spec, log)?
        )))
    }

    fn gather(input: &Self, index: &Self, spec: &GatherSpec, op: &'static str) -> Result<Self> {
        by_precision!(op, [input, index], |x, i| Ok(CpuStorage::new(gather(
            x, i, spec, op
        )?)))
    }

    fn one_hot(&self, spec: &Strided, classes: usize) -> Result<Self> {
        by_precision!("one_hot", [self], |i| Ok(CpuStorage::new(one_hot(
            i, spec, classes
        )?)))
    }

    fn cat(parts: &[(&Self, Strided)], numel: usize) -> Result<Self> {
        match parts.first().map(|p| p.0) {
            Some(CpuStorage::F64(_)) => cat::<f64>(parts, numel),
            _ => cat::<f32>(parts, numel),
        }
    }

    fn unfold(&self, win: &Window2d) -> Result<Self> {
        by_precision!("unfold2d", [self], |x| Ok(CpuStorage::new(nn::unfold(
            x, win
        )?)))
    }

    fn fold(&self, win: &Window2d) -> Result<Self> {
        by_precision!("fold2d", [self], |x| Ok(CpuStorage::new(nn::fold(x, win)?)))
    }

    fn pool(&self, win: &Window2d, kind: PoolKind) -> Result<(Self, Option<Self>)> {
        by_precision!("pool2d", [self], |x| {
            let (out, arg) = nn::pool(x, win, kind)?;
            Ok((CpuStorage::new(out), arg.map(CpuStorage::new)))
        })
    }

    fn pool_backward(
        g: &Self,
        argmax: Option<&Self>,
        win: &Window2d,
        kind: PoolKind,
    ) -> Result<Self> {
        match argmax {
            Some(a) => by_precision!("pool2d_backward", [g, a], |g, a| Ok(CpuStorage::new(
                nn::pool_backward(g, Some(a), win, kind)?
            ))),
            None => by_precision!("pool2d_backward", [g], |g| Ok(CpuStorage::new(
                nn::pool_backward(g, None, win, kind)?
            ))),
        }
    }

    fn normalize(&self, spec: &NormSpec) -> Result<(Self, Self)> {
        by_precision!("normalize", [self], |x| {
            let (y, stats) = nn::normalize(x, spec)?;
            Ok((CpuStorage::new(y), CpuStorage::new(stats)))
        })
    }

    fn normalize_backward(xhat: &Self, g: &Self, stats: &Self, spec: &NormSpec) -> Result<Self> {
        by_precision!("normalize_backward", [xhat, g, stats], |y, g, s| Ok(
            CpuStorage::new(nn::normalize_backward(y, g, s, spec)?)
        ))
    }

    fn optim_step(
        param: &Self,
        grad: &Self,
        state: &Self,
        spec: &OptimSpec,
    ) -> Result<(Self, Self)> {
        by_precision!("optimizer step", [param, grad, state], |p, g, s| {
            let (p, s) = optim::step(p, g, s, spec)?;
            Ok((CpuStorage::new(p), CpuStorage::new(s)))
        })
    }

    fn cross_entropy(x: &Self, target: &Self, spec: &CrossEntropySpec) -> Result<(Self, Self)> {
        by_precision!("cross_entropy", [x, target], |x, t| {
            let (loss, lse) = reduce::cross_entropy(x, t, spec)?;
            Ok((CpuStorage::new(loss), CpuStorage::new(lse)))
        })
    }

    fn cross_entropy_backward(
        x: &Self,
        target: &Self,
        lse: &Self,
        g: &Self,
        spec: &CrossEntropySpec,
    ) -> Result<Self> {
        by_precision!("cross_entropy", [x, target, lse, g], |x, t, l, g| Ok(
            CpuStorage::new(reduce::cross_entropy_backward(x, t, l, g, spec)?)
        ))
    }

    fn to_vec(&self, layout: &Layout) -> Result<Vec<f32>> {
        let n = layout.numel();
        if let (CpuStorage::F32(v), true) = (self, layout.is_contiguous()) {
            return pool::copied("to_vec", &v[layout.offset()..layout.offset() + n]);
        }
        self.read(layout, |x| x as f32)
    }
}

// Copies each part into a fresh `numel` buffer; a part's spec walks `[dst, src]`.
fn cat<T: CpuReal>(parts: &[(&CpuStorage, Strided)], numel: usize) -> Result<CpuStorage> {
    let mut out = pool::zeroed("cat", numel)?;
    for (src, spec) in parts {
        let src: &[T] = T::view(src).ok_or_else(|| {
            Error::invalid("cat", "operands of different precisions (f32 and f64)")
        })?;
        let mut walk = StridedWalk::new(spec, 0);
        for _ in 0..spec.numel() {
            out[walk.offsets[0]] = src[walk.offsets[1]];
            walk.advance();
        }
    }
    Ok(CpuStorage::new(out))
}
