//! CPU reductions and softmax over a contiguous `[outer, len, inner]` view. Sums accumulate in
//! f64, so the CPU result is a good reference for the GPU's f32 tree reductions.

use rayon::prelude::*;

use super::spec::LineSpec;
use crate::cpu::buffers::{self, Pooled};
use crate::cpu::walk::{vectorized, PAR_THRESHOLD};
use crate::error::Result;
use crate::ops::reduce::spec::ReduceOp;
use crate::real::Real;

/// Reduces element `x[offset + (o*len + l)*inner + i]` over `l`, for every `(o, i)`; elements
/// at flat index >= numel are skipped (a full reduction's ragged last row). Sum, max and min
/// (the arg-reductions are `arg_reduce`).
// input (outer, len, inner) -> out (outer, inner)
pub(crate) fn reduce<T: Real>(x: &[T], s: &LineSpec, op: ReduceOp) -> Result<Vec<T>> {
    if op == ReduceOp::Sum {
        let mut out = buffers::zeroed(op.name(), s.outer * s.inner)?;
        if !out.is_empty() {
            match s.inner {
                1 => sum_lines(x, s, &mut out),
                _ => sum_rows(x, s, &mut out),
            }
        }
        return Ok(out);
    }
    let want_max = op == ReduceOp::Max;
    by_line(s, op.name(), |vals| {
        best_of(vals.map(|at| x[at]), want_max, T::is_nan).map_or(T::nan(), |b| b.0)
    })
}

/// The index along `len` of each line's first maximum (`ArgMax`) or minimum, NaN winning, as
/// an `I32`.
// input (outer, len, inner) -> out (outer, inner)
pub(crate) fn arg_reduce<T: Copy + PartialOrd + Sync>(
    x: &[T],
    s: &LineSpec,
    op: ReduceOp,
    is_nan: impl Fn(T) -> bool + Sync + Copy,
) -> Result<Vec<i32>> {
    let want_max = op == ReduceOp::ArgMax;
    by_line(s, op.name(), |vals| {
        // An empty line (a zero-size axis, which the tensor ops refuse) has no index: 0.
        best_of(vals.map(|at| x[at]), want_max, is_nan).map_or(0, |b| b.1 as i32)
    })
}

/// Sum (wrapping, as the GPU's i32 adds), max or min of `I32` lines.
// input (outer, len, inner) -> out (outer, inner)
pub(crate) fn reduce_i32(x: &[i32], s: &LineSpec, op: ReduceOp) -> Result<Vec<i32>> {
    by_line(s, op.name(), |vals| match op {
        ReduceOp::Sum => vals.fold(0i32, |acc, at| acc.wrapping_add(x[at])),
        _ => {
            let want_max = op == ReduceOp::Max;
            best_of(vals.map(|at| x[at]), want_max, |_| false).map_or(0, |b| b.0)
        }
    })
}

/// The best value of `vals` and its index: the first maximum (or minimum), a NaN winning over
/// numbers (PyTorch's rules); `None` for an empty line.
fn best_of<T: Copy + PartialOrd>(
    mut vals: impl Iterator<Item = T>,
    want_max: bool,
    is_nan: impl Fn(T) -> bool,
) -> Option<(T, usize)> {
    let mut best = (vals.next()?, 0);
    for (l, v) in vals.enumerate() {
        let better =
            !is_nan(best.0) && (is_nan(v) || if want_max { v > best.0 } else { v < best.0 });
        if better {
            best = (v, l + 1);
        }
    }
    Some(best)
}

/// Runs `line(flat offsets along len)` for every output `(o, i)`, in parallel when large.
fn by_line<O: Pooled>(
    s: &LineSpec,
    op: &'static str,
    line: impl Fn(&mut dyn Iterator<Item = usize>) -> O + Sync,
) -> Result<Vec<O>> {
    let mut out = buffers::for_overwrite(op, s.outer * s.inner)?;
    if out.is_empty() {
        return Ok(out);
    }
    let at = |o: usize, i: usize| {
        (0..s.len)
            .map(move |l| (o * s.len + l) * s.inner + i)
            .take_while(|&f| f < s.numel)
            .map(|f| s.offset + f)
    };
    let fill = |o: usize, row: &mut [O]| {
        row.iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = line(&mut at(o, i)))
    };
    if s.outer * s.len * s.inner >= PAR_THRESHOLD && s.outer > 1 {
        out.par_chunks_mut(s.inner)
            .enumerate()
            .for_each(|(o, row)| fill(o, row));
    } else {
        out.chunks_mut(s.inner)
            .enumerate()
            .for_each(|(o, row)| fill(o, row));
    }
    Ok(out)
}

/// Elements per task when one line is summed in parallel. Fixed, not per thread count, so a
/// sum does not depend on the machine.
const LINE_BLOCK: usize = 1 << 16;

/// `reduce`'s sum along contiguous lines (`inner == 1`: a row sum, `sum_all`): each line in
/// blocks of `LINE_BLOCK` summed in parallel, each block with `LANES` f64 accumulators so the
/// loop vectorises, the partial sums then added in order.
// input (outer, len) -> out (outer)
fn sum_lines<T: Real>(x: &[T], s: &LineSpec, out: &mut [T]) {
    let line = |o: usize| -> T {
        // A full reduction's ragged last row stops at numel.
        let (start, end) = (o * s.len, ((o + 1) * s.len).min(s.numel));
        let v = &x[s.offset + start..s.offset + end.max(start)];
        let total = if v.len() >= 2 * LINE_BLOCK {
            let parts: Vec<f64> = v
                .par_chunks(LINE_BLOCK)
                .map(|b| {
                    vectorized(
                        #[inline(always)]
                        || sum_lanes(b),
                    )
                })
                .collect();
            parts.iter().sum()
        } else {
            vectorized(
                #[inline(always)]
                || sum_lanes(v),
            )
        };
        T::from_f64(total)
    };
    if s.outer * s.len >= PAR_THRESHOLD && s.outer > 1 {
        // Lines in tasks of about PAR_THRESHOLD elements: a task per line of 1,000 cost
        // more in hand-offs than the sums (100 such lines: 25 µs, against 5 for PyTorch).
        let per_task = (PAR_THRESHOLD / s.len.max(1)).max(1);
        out.par_chunks_mut(per_task)
            .enumerate()
            .for_each(|(t, outs)| {
                for (i, v) in outs.iter_mut().enumerate() {
                    *v = line(t * per_task + i);
                }
            });
    } else {
        out.iter_mut().enumerate().for_each(|(o, v)| *v = line(o));
    }
}

/// Interleaved accumulators of `sum_lanes`: four AVX-512 vectors of f64, so that four adds
/// are in flight (with one vector, each add waited for the last: ~2× slower).
const LANES: usize = 32;

/// The sum of `v` in f64, over `LANES` interleaved accumulators (a fixed count, so the result
/// does not depend on the CPU).
#[inline(always)]
fn sum_lanes<T: Real>(v: &[T]) -> f64 {
    let mut acc = [0f64; LANES];
    let chunks = v.chunks_exact(LANES);
    let tail: f64 = chunks.remainder().iter().map(|x| x.to_f64()).sum();
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x.to_f64();
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// Columns of elements per task in `sum_rows` (32 KiB of f64 accumulators).
const SUM_BLOCK: usize = 4096;

/// `reduce`'s sum when `inner > 1` (a sum over a leading axis: a bias gradient, a batch of
/// weight gradients): whole rows are added in `l` order into f64 accumulators, so the loads
/// are contiguous and the loop vectorises, and blocks of columns run in parallel even when
/// `outer` is 1. Each output adds the same values in the same order as the line walk above.
// input (outer, len, inner) -> out (outer, inner)
fn sum_rows<T: Real>(x: &[T], s: &LineSpec, out: &mut [T]) {
    if s.outer * s.len * s.inner >= PAR_THRESHOLD {
        out.par_chunks_mut(s.inner)
            .enumerate()
            .for_each(|(o, row)| {
                row.par_chunks_mut(SUM_BLOCK)
                    .enumerate()
                    .for_each(|(c, dst)| {
                        vectorized(
                            #[inline(always)]
                            || sum_rows_block(x, s, [o, c * SUM_BLOCK], dst),
                        )
                    })
            });
    } else {
        out.chunks_mut(s.inner).enumerate().for_each(|(o, row)| {
            row.chunks_mut(SUM_BLOCK).enumerate().for_each(|(c, dst)| {
                vectorized(
                    #[inline(always)]
                    || sum_rows_block(x, s, [o, c * SUM_BLOCK], dst),
                )
            })
        });
    }
}

/// `sum_rows` for outputs `i0..i0 + dst.len()` of outer index `o` (a function marked
/// `inline(always)`, as `vectorized` needs: a closure bound by `let` cannot be marked).
#[inline(always)]
fn sum_rows_block<T: Real>(x: &[T], s: &LineSpec, [o, i0]: [usize; 2], dst: &mut [T]) {
    let mut acc = vec![0f64; dst.len()];
    for l in 0..s.len {
        let start = (o * s.len + l) * s.inner + i0;
        // A full reduction's ragged last row: elements at flat index >= numel are skipped.
        let end = (start + dst.len()).min(s.numel);
        if start >= end {
            break;
        }
        let row = &x[s.offset + start..s.offset + end];
        acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v.to_f64());
    }
    dst.iter_mut()
        .zip(&acc)
        .for_each(|(d, &a)| *d = T::from_f64(a));
}

/// Numerically stable softmax (or log-softmax) along `len`: the line's max is subtracted
/// before `exp`, so ±1e4 inputs neither overflow nor vanish.
// input (outer, len, inner) -> out (outer, len, inner)
pub(crate) fn softmax<T: Real>(x: &[T], s: &LineSpec, log: bool) -> Result<Vec<T>> {
    let (len, inner) = (s.len, s.inner);
    let name = if log { "log_softmax" } else { "softmax" };
    let mut out = buffers::for_overwrite(name, s.outer * len * inner)?;
    let block = |o: usize, dst: &mut [T]| {
        let src = &x[s.offset + o * len * inner..][..len * inner];
        if inner == 1 {
            // A contiguous line (softmax over the last axis): loops that vectorise.
            return vectorized(
                #[inline(always)]
                || softmax_line(src, dst, log),
            );
        }
        for i in 0..inner {
            let max = (0..len)
                .map(|l| src[l * inner + i])
                .fold(T::NEG_INFINITY, T::max);
            // Each exp once: kept in `dst` while the sum builds, then scaled (or, for
            // log-softmax, replaced by z - log(sum)).
            let mut sum = 0f64;
            for l in 0..len {
                let e = (src[l * inner + i] - max).exp();
                sum += e.to_f64();
                dst[l * inner + i] = e;
            }
            if log {
                let log_sum = T::from_f64(sum.ln());
                for l in 0..len {
                    dst[l * inner + i] = src[l * inner + i] - max - log_sum;
                }
            } else {
                for l in 0..len {
                    let e = &mut dst[l * inner + i];
                    *e = T::from_f64(e.to_f64() / sum);
                }
            }
        }
    };
    for_each_block(&mut out, s, block);
    Ok(out)
}

/// Softmax (or log-softmax) of one contiguous line `src` into `dst`, in passes that
/// vectorise: the max, `exp` (branch-free, see `real.rs`), the sum in f64 over `LANES`
/// accumulators, then one scale by `1 / sum` rounded to `T` (or shift) of every element. (The
/// strided lines above divide in f64 instead: the two can differ in the last bit.)
#[inline(always)]
fn softmax_line<T: Real>(src: &[T], dst: &mut [T], log: bool) {
    let max = src.iter().fold(T::NEG_INFINITY, |m, &v| m.max(v));
    for (d, &v) in dst.iter_mut().zip(src) {
        *d = (v - max).exp();
    }
    let sum = sum_lanes(dst);
    if log {
        // (v - max) first: exact, where v - (max + log_sum) would round at max's magnitude.
        let log_sum = T::from_f64(sum.ln());
        for (d, &v) in dst.iter_mut().zip(src) {
            *d = v - max - log_sum;
        }
    } else {
        let scale = T::from_f64(1.0 / sum);
        dst.iter_mut().for_each(|d| *d = *d * scale);
    }
}

/// The gradient of softmax (or log-softmax) along `len`, from the forward output `y` and the
/// upstream gradient `g`, both `[outer, len, inner]` (`y` from `s.offset`, `g` from 0):
///   softmax:     dx = y * (g - sum(g * y))   (the Jacobian is diag(y) - y yᵀ)
///   log_softmax: dx = g - exp(y) * sum(g)    (the Jacobian is I - softmax 1ᵀ)
// y (outer, len, inner), g (outer, len, inner) -> dx (outer, len, inner)
pub(crate) fn softmax_backward<T: Real>(
    y: &[T],
    g: &[T],
    s: &LineSpec,
    log: bool,
) -> Result<Vec<T>> {
    let (len, inner) = (s.len, s.inner);
    let mut out = buffers::for_overwrite("softmax_backward", s.outer * len * inner)?;
    let block = |o: usize, dst: &mut [T]| {
        let ys = &y[s.offset + o * len * inner..][..len * inner];
        let gs = &g[o * len * inner..][..len * inner];
        for i in 0..inner {
            let at = |l: usize| l * inner + i;
            let sum: f64 = (0..len)
                .map(|l| match log {
                    true => gs[at(l)].to_f64(),
                    false => gs[at(l)].to_f64() * ys[at(l)].to_f64(),
                })
                .sum();
            let sum = T::from_f64(sum);
            for l in 0..len {
                let (yv, gv) = (ys[at(l)], gs[at(l)]);
                dst[at(l)] = match log {
                    true => gv - yv.exp() * sum,
                    false => yv * (gv - sum),
                };
            }
        }
    };
    for_each_block(&mut out, s, block);
    Ok(out)
}

/// Calls `block(o, dst)` for each `[len, inner]` block `o` of `out`, spread over cores when
/// the work is large.
fn for_each_block<T: Real>(out: &mut [T], s: &LineSpec, block: impl Fn(usize, &mut [T]) + Sync) {
    let size = (s.len * s.inner).max(1);
    if out.is_empty() {
        return;
    }
    if out.len() >= PAR_THRESHOLD && s.outer > 1 {
        out.par_chunks_mut(size)
            .enumerate()
            .for_each(|(o, d)| block(o, d));
    } else {
        out.chunks_mut(size)
            .enumerate()
            .for_each(|(o, d)| block(o, d));
    }
}
