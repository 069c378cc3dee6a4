//! What the CPU kernels share: the strided walk over a view, the check of an index held as a
//! float, and the size below which a loop stays on one thread.

use rayon::prelude::*;

use crate::backend::Strided;
use crate::error::{Error, Result};
use crate::real::Real;

/// Below this many elements a loop runs on the calling thread (rayon's hand-off costs more).
pub(crate) const PAR_THRESHOLD: usize = 1 << 15;

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

/// Checks an `I32` index: in `0..size`.
pub(crate) fn check_index(op: &'static str, v: i32, axis: usize, size: usize) -> Result<usize> {
    match usize::try_from(v) {
        Ok(i) if i < size => Ok(i),
        _ => Err(Error::IndexOutOfRange {
            op,
            index: f64::from(v),
            axis,
            size,
        }),
    }
}

/// Runs `f(i, chunk)` over `out.chunks_mut(size)`, in parallel when `out` is large.
pub(crate) fn for_chunks<T: Real>(
    out: &mut [T],
    size: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    if size == 0 {
        return;
    }
    if out.len() >= PAR_THRESHOLD {
        out.par_chunks_mut(size)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    } else {
        out.chunks_mut(size).enumerate().for_each(|(i, c)| f(i, c));
    }
}

/// Runs `body` compiled for the best instruction set this CPU offers (AVX-512 with pulp's
/// `x86-v4` feature, AVX2+FMA, or baseline), chosen at run time by `pulp`: the default
/// target is baseline x86-64, and CI must not depend on `-C target-cpu=native`. Mark the
/// closure `#[inline(always)]` and keep the functions it calls `#[inline(always)]`, so that
/// all of it is compiled inside pulp's function that enables the instruction set.
///
/// Why not `pulp::Arch::dispatch(closure)`: pulp calls a closure through `FnOnce`, whose shim
/// is not inlined into that function, and the loops then compiled for SSE2 whatever the CPU
/// (the fused Adam step ran 3× and softmax 4× slower). Called through `FnMut`, the closure's
/// own body is the call, and `#[inline(always)]` on it holds.
#[inline(always)]
pub(crate) fn vectorized<R>(body: impl FnMut() -> R) -> R {
    struct Body<F>(F);
    impl<R, F: FnMut() -> R> pulp::WithSimd for Body<F> {
        type Output = R;
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(mut self, _: S) -> R {
            (self.0)()
        }
    }
    pulp::Arch::new().dispatch(Body(body))
}
