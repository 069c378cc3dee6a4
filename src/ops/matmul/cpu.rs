//! CPU matmul through the `gemm` crate, which takes each operand's row and column strides as
//! they are: transposed and broadcast views multiply without a copy. `gemm` picks its kernel
//! at run time (AVX-512, AVX2+FMA, SSE, NEON), so the baseline x86-64 build still runs the
//! widest one the CPU has. Measured on the 2-core AVX-512 VM (n = 512…2048): ~2× the
//! matrixmultiply SGEMM this replaced (`cargo bench --bench matmul`).
//!
//! This is the one module with `unsafe`: `gemm::gemm` takes raw pointers. `operand` below
//! checks that every element a call reaches lies inside its slice before the call is made.

#![allow(unsafe_code)]

use gemm::Parallelism;
use rayon::prelude::*;

use super::spec::{MatOperand, MatmulSpec};
use crate::cpu::buffers;
use crate::cpu::walk::vectorized;
use crate::error::{Error, Result};
use crate::ops::elementwise::op::UnaryOp;
use crate::ops::matmul::spec::Activation;
use crate::real::Real;

/// Below this many multiply-adds per matrix, batches run in parallel on rayon (each GEMM on
/// one thread); above it, `gemm`'s own threads split each GEMM, unless there are many batches
/// (conv2d's per-image GEMMs): then splitting the batch pays better.
const SMALL_GEMM: usize = 64 * 64 * 64;

/// Matrix `b` of `op` (`rows, cols >= 1`) as (first element, row stride, column stride), once
/// every element `[r, c]` is known to lie inside `data`: strides are non-negative, so the last
/// element is the farthest. The spec was validated against the layouts when the op was built,
/// so the error is a guard for the unsafe call, not a path user input should reach.
fn operand<T>(
    data: &[T],
    op: &MatOperand,
    b: usize,
    rows: usize,
    cols: usize,
) -> Result<(*const T, isize, isize)> {
    let start = b
        .checked_mul(op.batch)
        .and_then(|x| x.checked_add(op.offset));
    let last = start.and_then(|s| {
        let r = (rows - 1).checked_mul(op.row)?;
        let c = (cols - 1).checked_mul(op.col)?;
        s.checked_add(r)?.checked_add(c)
    });
    match (start, last) {
        (Some(start), Some(last)) if last < data.len() => {
            Ok((data[start..].as_ptr(), op.row as isize, op.col as isize))
        }
        _ => Err(Error::invalid(
            "matmul",
            format!(
                "operand {rows}×{cols} of batch {b} ({op:?}) reaches past its {} elements",
                data.len()
            ),
        )),
    }
}

/// `c (m×n, contiguous) = act(c + bias[b])`: the epilogue, run on each product while it is
/// still in cache. One pass; the activation's `match` is outside the loop so each loop is
/// the op's own straight-line code.
fn epilogue<T: Real>(c: &mut [T], bias: Option<&[T]>, spec: &MatmulSpec, bi: usize) -> Result<()> {
    let n = spec.n;
    if let (Some(data), Some(op)) = (bias, &spec.bias) {
        operand(data, op, bi, spec.m, n)?; // every index below is in bounds
        let base = op.offset + bi * op.batch;
        for (i, row) in c.chunks_mut(n).enumerate() {
            let r = base + i * op.row;
            if op.col == 1 {
                row.iter_mut()
                    .zip(&data[r..r + n])
                    .for_each(|(x, b)| *x = *x + *b);
            } else {
                row.iter_mut()
                    .enumerate()
                    .for_each(|(j, x)| *x = *x + data[r + j * op.col]);
            }
        }
    }
    activate(c, spec.act);
    Ok(())
}

/// `x = act(x)` in place, the epilogue's activation (also the CPU conv's). The `match` is
/// outside the loop, so each loop is the op's own straight-line code, compiled for the CPU's
/// instruction set (`vectorized`).
pub(crate) fn activate<T: Real>(x: &mut [T], act: Activation) {
    #[inline(always)]
    fn apply<T: Real>(x: &mut [T], op: UnaryOp) {
        vectorized(
            #[inline(always)]
            || x.iter_mut().for_each(|v| *v = op.eval(*v)),
        )
    }
    match act {
        Activation::Identity => {}
        Activation::Relu => apply(x, UnaryOp::Relu),
        Activation::Sigmoid => apply(x, UnaryOp::Sigmoid),
        Activation::Tanh => apply(x, UnaryOp::Tanh),
    }
}

/// `c (m×n, contiguous) = act(a[b] · b[b] + bias[b])`.
fn one<T: Real>(
    a: &[T],
    b: &[T],
    bias: Option<&[T]>,
    spec: &MatmulSpec,
    bi: usize,
    c: &mut [T],
    par: Parallelism,
) -> Result<()> {
    let MatmulSpec { m, n, k, .. } = *spec;
    if k == 0 {
        return epilogue(c, bias, spec, bi); // an empty sum is zero
    }
    let (pa, a_rs, a_cs) = operand(a, &spec.a, bi, m, k)?;
    let (pb, b_rs, b_cs) = operand(b, &spec.b, bi, k, n)?;
    debug_assert_eq!(c.len(), m * n);
    // SAFETY: `operand` checked that the m×k and k×n elements reached through these pointers
    // and strides lie inside `a` and `b`. `c` is an m×n chunk (row stride n, column stride 1),
    // borrowed mutably, so nothing else touches it during the call. With `read_dst = false`,
    // `gemm` computes `c = beta · a·b` (`alpha` would scale the old `c`); `beta = 1`. T is
    // f32 or f64, both of which `gemm` supports.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
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
    epilogue(c, bias, spec, bi)
}

// act(a (batch, m, k) · b (batch, k, n) + bias) -> out (batch, m, n), contiguous.
pub(crate) fn matmul<T: Real>(
    a: &[T],
    b: &[T],
    bias: Option<&[T]>,
    spec: &MatmulSpec,
) -> Result<Vec<T>> {
    let MatmulSpec { batch, m, n, k, .. } = *spec;
    // `gemm` writes every output (it does not read it); an empty sum (k = 0) is zeros.
    let mut out = match k {
        0 => buffers::zeroed("matmul", batch * m * n)?,
        _ => buffers::for_overwrite("matmul", batch * m * n)?,
    };
    if m * n == 0 {
        return Ok(out);
    }
    let many = batch >= 4 * rayon::current_num_threads();
    if batch > 1 && (m * n * k < SMALL_GEMM || many) {
        out.par_chunks_mut(m * n)
            .enumerate()
            .try_for_each(|(bi, c)| one(a, b, bias, spec, bi, c, Parallelism::None))?;
    } else {
        let par = Parallelism::Rayon(rayon::current_num_threads());
        out.chunks_mut(m * n)
            .enumerate()
            .try_for_each(|(bi, c)| one(a, b, bias, spec, bi, c, par))?;
    }
    Ok(out)
}

/// One `m×n` product into a block of `c` with strides `[row, col]`, one of them 1 (row- or
/// column-major): `c = a · b`, or `c += a · b` when `accumulate`. `a` (`m×k`) and `b` (`k×n`) are read
/// through their offsets and strides (their batch strides unused). `threads > 1` splits the
/// product over rayon's threads. For kernels that build their own products (the CPU conv).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_into<T: Real>(
    c: &mut [T],
    [c_row, c_col]: [usize; 2],
    a: (&[T], &MatOperand),
    b: (&[T], &MatOperand),
    [m, n, k]: [usize; 3],
    accumulate: bool,
    threads: usize,
) -> Result<()> {
    if m == 0 || n == 0 {
        return Ok(());
    }
    let last = (m - 1)
        .checked_mul(c_row)
        .zip((n - 1).checked_mul(c_col))
        .and_then(|(r, c)| r.checked_add(c));
    // Distinct elements must not share an address (`gemm` would race with itself), and all
    // must lie in `c`.
    let distinct = (c_col == 1 && c_row >= n) || (c_row == 1 && c_col >= m);
    if !distinct || last.is_none_or(|last| last >= c.len()) {
        return Err(Error::invalid(
            "matmul",
            format!(
                "output {m}×{n} (strides [{c_row}, {c_col}]) overlaps itself or reaches past \
                 its {} elements",
                c.len()
            ),
        ));
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                (0..n).for_each(|j| c[r * c_row + j * c_col] = T::zero());
            }
        }
        return Ok(());
    }
    let (pa, a_rs, a_cs) = operand(a.0, a.1, 0, m, k)?;
    let (pb, b_rs, b_cs) = operand(b.0, b.1, 0, k, n)?;
    let par = match threads {
        0 | 1 => Parallelism::None,
        t => Parallelism::Rayon(t),
    };
    // SAFETY: `operand` checked that the m×k and k×n elements reached through these pointers
    // and strides lie inside `a` and `b`, and the checks above that every
    // `c[r * c_row + j * c_col]` (r < m, j < n) lies inside `c`, which is borrowed mutably,
    // and that no two share an address. With `read_dst`, `gemm`
    // computes `c = alpha · c + beta · a·b` (alpha = beta = 1); without, `c = beta · a·b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_col as isize,
            c_row as isize,
            accumulate,
            pa,
            a_cs,
            a_rs,
            pb,
            b_cs,
            b_rs,
            T::one(),
            T::one(),
            false,
            false,
            false,
            par,
        );
    }
    Ok(())
}
