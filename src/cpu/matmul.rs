//! CPU matmul through ndarray's `general_mat_mul`, which hands the operands' strides straight to
//! matrixmultiply's SGEMM: transposed and broadcast views multiply without a copy.

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2, ShapeBuilder};
use rayon::prelude::*;

use crate::real::Real;
use crate::storage::{MatOperand, MatmulSpec};

/// Below this many multiply-adds per matrix, batches run in parallel on rayon (each GEMM on
/// one thread); above it, matrixmultiply's own threads split each GEMM, unless there are
/// many batches (conv2d's per-image GEMMs): then splitting the batch pays better (conv bench,
/// 64×32×14×14 layer: 10-15 % faster).
const SMALL_GEMM: usize = 64 * 64 * 64;

fn view<'a, T: Real>(
    data: &'a [T],
    op: &MatOperand,
    b: usize,
    rows: usize,
    cols: usize,
) -> ArrayView2<'a, T> {
    let start = op.offset + b * op.batch;
    // The spec was validated against the layouts, so the view always fits the slice.
    ArrayView2::from_shape((rows, cols).strides((op.row, op.col)), &data[start..])
        .unwrap_or_else(|e| unreachable!("matmul operand view out of bounds: {e}"))
}

// a (batch, m, k) · b (batch, k, n) -> out (batch, m, n), contiguous.
pub(super) fn matmul<T: Real>(a: &[T], b: &[T], spec: &MatmulSpec) -> Vec<T> {
    let MatmulSpec { batch, m, n, k, .. } = *spec;
    let mut out = vec![T::zero(); batch * m * n];
    if m * n == 0 {
        return out;
    }
    let one = |bi: usize, c: &mut [T]| {
        let mut c = ArrayViewMut2::from_shape((m, n), c)
            .unwrap_or_else(|e| unreachable!("matmul output view: {e}"));
        if k == 0 {
            return; // An empty sum is zero.
        }
        general_mat_mul(
            T::one(),
            &view(a, &spec.a, bi, m, k),
            &view(b, &spec.b, bi, k, n),
            T::zero(),
            &mut c,
        );
    };
    let many = batch >= 4 * rayon::current_num_threads();
    if batch > 1 && (m * n * k < SMALL_GEMM || many) {
        out.par_chunks_mut(m * n)
            .enumerate()
            .for_each(|(bi, c)| one(bi, c));
    } else {
        out.chunks_mut(m * n)
            .enumerate()
            .for_each(|(bi, c)| one(bi, c));
    }
    out
}
