//! CPU matmul through the `gemm` crate, which takes each operand's row and column strides as
//! they are: transposed and broadcast views multiply without a copy. `gemm` picks its kernel
//! at run time (AVX-512, AVX2+FMA, SSE, NEON), so the baseline x86-64 build still runs the
//! widest one the CPU has. Measured on the 2-core AVX-512 VM (n = 512…2048): ~2× the
//! matrixmultiply SGEMM this replaced (`cargo bench --bench matmul`).
//!
//! This is the one module with `unsafe`: `gemm::gemm` takes raw pointers. `check` below proves
//! every element each call touches lies inside its slice before the call is made.

#![allow(unsafe_code)]

use std::mem::MaybeUninit;

use gemm::Parallelism;
use rayon::prelude::*;

use super::pool;
use crate::real::Real;
use crate::storage::{MatOperand, MatmulSpec};

/// Below this many multiply-adds per matrix, batches run in parallel on rayon (each GEMM on
/// one thread); above it, `gemm`'s own threads split each GEMM, unless there are many batches
/// (conv2d's per-image GEMMs): then splitting the batch pays better.
const SMALL_GEMM: usize = 64 * 64 * 64;

/// Matrix `b` of `op` as (first element, row stride, column stride), after checking that every
/// element `[r, c]` for `r < rows, c < cols` lies inside `data` (strides are non-negative, so
/// the last element is the farthest one).
fn check<T>(
    data: &[T],
    op: &MatOperand,
    b: usize,
    rows: usize,
    cols: usize,
) -> (*const T, isize, isize) {
    let start = op.offset + b * op.batch;
    let last = start + (rows - 1) * op.row + (cols - 1) * op.col;
    // The spec was validated against the layouts when the op was built, so this cannot fail;
    // it stays as an assert because the unsafe call below relies on it.
    assert!(
        last < data.len(),
        "matmul operand out of bounds: element {last} of {}",
        data.len()
    );
    (data[start..].as_ptr(), op.row as isize, op.col as isize)
}

/// `c (m×n, contiguous) = a[b] · b[b]`, `k > 0`. `c` need not be initialised: `gemm` only
/// writes it.
fn one<T: Real>(
    a: &[T],
    b: &[T],
    spec: &MatmulSpec,
    bi: usize,
    c: &mut [MaybeUninit<T>],
    par: Parallelism,
) {
    let MatmulSpec { m, n, k, .. } = *spec;
    assert_eq!(c.len(), m * n, "matmul output chunk");
    let (pa, a_rs, a_cs) = check(a, &spec.a, bi, m, k);
    let (pb, b_rs, b_cs) = check(b, &spec.b, bi, k, n);
    // SAFETY: `check` proved that the m×k and k×n elements reached through these pointers and
    // strides lie inside `a` and `b`; `c` is exactly m×n contiguous (row stride n, column
    // stride 1) and borrowed mutably, so nothing else reads or writes it during the call.
    // With `read_dst = false`, `gemm` computes `c = beta · a·b` and never reads `c` (its
    // `alpha` would scale the old `c`), so `c` may be uninitialised; `beta = 1`. T is f32 or f64, both of which `gemm`
    // supports.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr().cast::<T>(),
            1,
            n as isize,
            false,
            pa,
            a_cs,
            a_rs,
            pb,
            b_cs,
            b_rs,
            T::zero(),
            T::one(),
            false,
            false,
            false,
            par,
        );
    }
}

// a (batch, m, k) · b (batch, k, n) -> out (batch, m, n), contiguous.
pub(super) fn matmul<T: Real>(a: &[T], b: &[T], spec: &MatmulSpec) -> Vec<T> {
    let MatmulSpec { batch, m, n, k, .. } = *spec;
    let len = batch * m * n;
    if m * n == 0 || k == 0 {
        return pool::zeroed(len); // an empty sum is zero
    }
    // Not zero-filled first: for a 512² product the memset and its page faults cost ~40 % of
    // the GEMM itself. `gemm` writes every element below; `set_len` comes after.
    let mut out = pool::with_capacity(len);
    let uninit = &mut out.spare_capacity_mut()[..len];
    let many = batch >= 4 * rayon::current_num_threads();
    if batch > 1 && (m * n * k < SMALL_GEMM || many) {
        uninit
            .par_chunks_mut(m * n)
            .enumerate()
            .for_each(|(bi, c)| one(a, b, spec, bi, c, Parallelism::None));
    } else {
        let par = Parallelism::Rayon(rayon::current_num_threads());
        uninit
            .chunks_mut(m * n)
            .enumerate()
            .for_each(|(bi, c)| one(a, b, spec, bi, c, par));
    }
    // SAFETY: the `batch` chunks of m×n above cover 0..len, and `gemm` wrote each of them.
    unsafe { out.set_len(len) };
    out
}
