//! The CPU backend: the reference every GPU kernel is tested against, and the fallback where no
//! adapter exists. Loops are written to be checked by eye; large ones are split over cores with
//! rayon, and matmul goes through a GEMM crate (see `matmul.rs`).

mod matmul;
mod reduce;

use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use crate::device::MemoryStats;
use crate::error::{Error, Result};
use crate::op::UnaryOp;
use crate::shape::Layout;
use crate::storage::{Backend, Elementwise, GatherSpec, LineSpec, MatmulSpec, Strided};

/// Below this many elements a loop runs on the calling thread (rayon's hand-off costs more).
pub(crate) const PAR_THRESHOLD: usize = 1 << 15;
/// Elements per rayon task for elementwise work.
const CHUNK: usize = 1 << 14;

/// A CPU tensor buffer. Immutable once built; views share it through `Arc<Storage>`.
#[derive(Debug)]
pub(crate) struct CpuStorage(pub(crate) Vec<f32>);

static LIVE: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);

impl CpuStorage {
    pub fn new(data: Vec<f32>) -> CpuStorage {
        let bytes = data.capacity() as u64 * 4;
        let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
        PEAK.fetch_max(live, Ordering::Relaxed);
        CpuStorage(data)
    }
}

impl Drop for CpuStorage {
    fn drop(&mut self) {
        LIVE.fetch_sub(self.0.capacity() as u64 * 4, Ordering::Relaxed);
    }
}

/// Bytes held by CPU tensors in this process.
pub(crate) fn memory_stats() -> MemoryStats {
    MemoryStats {
        live_bytes: LIVE.load(Ordering::Relaxed),
        peak_bytes: PEAK.load(Ordering::Relaxed),
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
            idx[d] = rem % spec.shape[d];
            rem /= spec.shape[d];
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

/// Fills `out` (the flat output) in parallel chunks; `f(walk)` gives the value at the walk's
/// current offsets.
fn fill_strided(out: &mut [f32], spec: &Strided, f: impl Fn(&[usize]) -> f32 + Sync) {
    let run = |start: usize, chunk: &mut [f32]| {
        let mut walk = StridedWalk::new(spec, start);
        for o in chunk.iter_mut() {
            *o = f(&walk.offsets);
            walk.advance();
        }
    };
    if out.len() >= PAR_THRESHOLD {
        out.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(c, chunk)| run(c * CHUNK, chunk));
    } else {
        run(0, out);
    }
}

/// True when every operand is a dense run starting at its offset (the fast path).
fn all_dense(spec: &Strided) -> bool {
    spec.shape.len() <= 1
        && spec
            .strides
            .iter()
            .all(|s| s.first().is_none_or(|&x| x == 1))
}

/// Checks an f32 index: integral and in `0..size`.
pub(crate) fn check_index(op: &'static str, v: f32, axis: usize, size: usize) -> Result<usize> {
    if v >= 0.0 && v.fract() == 0.0 && (v as usize) < size {
        Ok(v as usize)
    } else {
        Err(Error::IndexOutOfRange {
            op,
            index: v as f64,
            axis,
            size,
        })
    }
}

impl Backend for CpuStorage {
    fn elementwise(inputs: &[&Self], spec: &Strided, kind: Elementwise) -> Result<Self> {
        let n = spec.numel();
        let mut out = vec![0.0f32; n];
        let data: Vec<&[f32]> = inputs.iter().map(|s| s.0.as_slice()).collect();
        if all_dense(spec) {
            // Contiguous operands: slice them and let the compiler vectorise.
            let src: Vec<&[f32]> = data
                .iter()
                .zip(&spec.offsets)
                .map(|(d, &o)| &d[o..o + n])
                .collect();
            let body = |start: usize, chunk: &mut [f32]| {
                let end = start + chunk.len();
                match kind {
                    Elementwise::Unary(op) => chunk
                        .iter_mut()
                        .zip(&src[0][start..end])
                        .for_each(|(o, &x)| *o = op.apply(x)),
                    Elementwise::Binary(op) => chunk
                        .iter_mut()
                        .zip(src[0][start..end].iter().zip(&src[1][start..end]))
                        .for_each(|(o, (&a, &b))| *o = op.apply(a, b)),
                    Elementwise::Where => {
                        for (i, o) in chunk.iter_mut().enumerate() {
                            let j = start + i;
                            *o = if src[0][j] != 0.0 {
                                src[1][j]
                            } else {
                                src[2][j]
                            };
                        }
                    }
                }
            };
            if n >= PAR_THRESHOLD {
                out.par_chunks_mut(CHUNK)
                    .enumerate()
                    .for_each(|(c, ch)| body(c * CHUNK, ch));
            } else {
                body(0, &mut out);
            }
        } else {
            match kind {
                Elementwise::Unary(op) => fill_strided(&mut out, spec, |o| op.apply(data[0][o[0]])),
                Elementwise::Binary(op) => {
                    fill_strided(&mut out, spec, |o| op.apply(data[0][o[0]], data[1][o[1]]))
                }
                Elementwise::Where => fill_strided(&mut out, spec, |o| {
                    if data[0][o[0]] != 0.0 {
                        data[1][o[1]]
                    } else {
                        data[2][o[2]]
                    }
                }),
            }
        }
        Ok(CpuStorage::new(out))
    }

    fn matmul(a: &Self, b: &Self, spec: &MatmulSpec) -> Result<Self> {
        Ok(CpuStorage::new(matmul::matmul(&a.0, &b.0, spec)))
    }

    fn reduce(&self, spec: &LineSpec, op: crate::op::ReduceOp) -> Result<Self> {
        Ok(CpuStorage::new(reduce::reduce(&self.0, spec, op)))
    }

    fn softmax(&self, spec: &LineSpec, log: bool) -> Result<Self> {
        Ok(CpuStorage::new(reduce::softmax(&self.0, spec, log)))
    }

    fn softmax_backward(
        y: &Self,
        g: &Self,
        spec: &LineSpec,
        grad_offset: usize,
        log: bool,
    ) -> Result<Self> {
        Ok(CpuStorage::new(reduce::softmax_backward(
            &y.0,
            &g.0[grad_offset..],
            spec,
            log,
        )))
    }

    // out (index shape) = input[.., index[..], ..] along `axis`.
    fn gather(input: &Self, index: &Self, spec: &GatherSpec, op: &'static str) -> Result<Self> {
        let n = spec.strided.numel();
        let mut out = Vec::with_capacity(n);
        let mut walk = StridedWalk::new(&spec.strided, 0);
        for _ in 0..n {
            let i = check_index(op, index.0[walk.offsets[1]], spec.axis, spec.axis_size)?;
            out.push(input.0[walk.offsets[0] + i * spec.axis_stride]);
            walk.advance();
        }
        Ok(CpuStorage::new(out))
    }

    // index (J) -> out (J, classes)
    fn one_hot(&self, spec: &Strided, classes: usize) -> Result<Self> {
        let n = spec.numel();
        let mut out = vec![0.0; n * classes];
        let mut walk = StridedWalk::new(spec, 0);
        for j in 0..n {
            let c = check_index("one_hot", self.0[walk.offsets[0]], 0, classes)?;
            out[j * classes + c] = 1.0;
            walk.advance();
        }
        Ok(CpuStorage::new(out))
    }

    fn cat(parts: &[(&Self, Strided)], numel: usize) -> Result<Self> {
        let mut out = vec![0.0; numel];
        for (src, spec) in parts {
            let mut walk = StridedWalk::new(spec, 0);
            for _ in 0..spec.numel() {
                out[walk.offsets[0]] = src.0[walk.offsets[1]];
                walk.advance();
            }
        }
        Ok(CpuStorage::new(out))
    }

    fn to_vec(&self, layout: &Layout) -> Result<Vec<f32>> {
        let n = layout.numel();
        if layout.is_contiguous() {
            return Ok(self.0[layout.offset()..layout.offset() + n].to_vec());
        }
        let spec = Strided::new("to_vec", &[layout])?;
        let mut out =
            CpuStorage::elementwise(&[self], &spec, Elementwise::Unary(UnaryOp::Identity))?;
        Ok(std::mem::take(&mut out.0))
    }
}
