//! CPU reductions and softmax over a contiguous `[outer, len, inner]` view. Sums accumulate in
//! f64, so the CPU result is a good reference for the GPU's f32 tree reductions.

use rayon::prelude::*;

use super::spec::LineSpec;
use crate::cpu::buffers;
use crate::cpu::walk::PAR_THRESHOLD;
use crate::error::Result;
use crate::ops::elementwise::op::nan;
use crate::ops::reduce::spec::ReduceOp;
use crate::real::Real;

/// Reduces element `x[offset + (o*len + l)*inner + i]` over `l`, for every `(o, i)`; elements
/// at flat index >= numel are skipped (a full reduction's ragged last row).
// input (outer, len, inner) -> out (outer, inner)
pub(crate) fn reduce<T: Real>(x: &[T], s: &LineSpec, op: ReduceOp) -> Result<Vec<T>> {
    let mut out = buffers::zeroed(op.name(), s.outer * s.inner)?;
    if out.is_empty() {
        return Ok(out);
    }
    let line = |o: usize, i: usize| -> T {
        let at = |l: usize| (o * s.len + l) * s.inner + i;
        let vals = (0..s.len)
            .take_while(|&l| at(l) < s.numel)
            .map(|l| x[s.offset + at(l)]);
        match op {
            ReduceOp::Sum => T::from_f64(vals.map(T::to_f64).sum::<f64>()),
            ReduceOp::Max | ReduceOp::Min | ReduceOp::ArgMax | ReduceOp::ArgMin => {
                let want_max = matches!(op, ReduceOp::Max | ReduceOp::ArgMax);
                let mut best = (nan::<T>(), usize::MAX); // (value, index); index MAX = none yet
                for (l, v) in vals.enumerate() {
                    // NaN wins and the first extremum wins ties (PyTorch's rules).
                    let better = best.1 == usize::MAX
                        || (!best.0.is_nan()
                            && (v.is_nan() || if want_max { v > best.0 } else { v < best.0 }));
                    if better {
                        best = (v, l);
                    }
                }
                match op {
                    ReduceOp::Max | ReduceOp::Min => best.0,
                    _ => T::from_f64(best.1.min(s.len.saturating_sub(1)) as f64),
                }
            }
        }
    };
    let fill = |o: usize, row: &mut [T]| {
        row.iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = line(o, i))
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

/// Numerically stable softmax (or log-softmax) along `len`: the line's max is subtracted
/// before `exp`, so ±1e4 inputs neither overflow nor vanish.
// input (outer, len, inner) -> out (outer, len, inner)
pub(crate) fn softmax<T: Real>(x: &[T], s: &LineSpec, log: bool) -> Result<Vec<T>> {
    let (len, inner) = (s.len, s.inner);
    let name = if log { "log_softmax" } else { "softmax" };
    let mut out = buffers::zeroed(name, s.outer * len * inner)?;
    let block = |o: usize, dst: &mut [T]| {
        let src = &x[s.offset + o * len * inner..][..len * inner];
        for i in 0..inner {
            let max = (0..len)
                .map(|l| src[l * inner + i])
                .fold(T::NEG_INFINITY, T::max);
            let sum: f64 = (0..len)
                .map(|l| (src[l * inner + i] - max).exp().to_f64())
                .sum();
            let log_sum = T::from_f64(sum.ln());
            for l in 0..len {
                let z = src[l * inner + i] - max;
                dst[l * inner + i] = if log {
                    z - log_sum
                } else {
                    T::from_f64(z.exp().to_f64() / sum)
                };
            }
        }
    };
    for_each_block(&mut out, s, block);
    Ok(out)
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
    let mut out = buffers::zeroed("softmax_backward", s.outer * len * inner)?;
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
