//! The CPU reference for fused cross entropy against class indices and its gradient:
//! `shaders/loss.wgsl`'s formulas, one row at a time.

use super::spec::CrossEntropySpec;
use rayon::prelude::*;

use crate::cpu::buffers;
use crate::cpu::walk::{check_index, PAR_THRESHOLD};
use crate::error::Result;
use crate::real::Real;

/// Fused cross entropy against class indices (formulas in `shaders/loss.wgsl`): each row's
/// loss and logsumexp, from dense `x` `[rows, classes]` and `target` `[rows]`.
pub(crate) fn cross_entropy<T: Real>(
    x: &[T],
    target: &[i32],
    s: &CrossEntropySpec,
) -> Result<(Vec<T>, Vec<T>)> {
    let c = s.classes;
    let mut loss = buffers::zeroed("cross_entropy", s.rows)?;
    let mut lse = buffers::zeroed("cross_entropy", s.rows)?;
    let smooth = f64::from(s.smoothing);
    for (i, row) in x.chunks_exact(c).take(s.rows).enumerate() {
        let t = check_index("cross_entropy", target[i], 1, c)?;
        let max = row.iter().copied().fold(T::NEG_INFINITY, T::max).to_f64();
        let sum: f64 = row.iter().map(|v| (v.to_f64() - max).exp()).sum();
        let total: f64 = row.iter().map(|v| v.to_f64()).sum();
        let l = max + sum.ln();
        lse[i] = T::from_f64(l);
        // The smoothing term only with smoothing: 0 * (-inf) would make a -inf logit's loss NaN.
        let spread = match smooth {
            0.0 => 0.0,
            _ => smooth / c as f64 * total,
        };
        loss[i] = T::from_f64(l - (1.0 - smooth) * row[t].to_f64() - spread);
    }
    Ok((loss, lse))
}

/// The logits' gradient `(exp(x - lse) - q) * g`, row by row (see `cross_entropy`).
pub(crate) fn cross_entropy_backward<T: Real>(
    x: &[T],
    target: &[i32],
    lse: &[T],
    g: &[T],
    s: &CrossEntropySpec,
) -> Result<Vec<T>> {
    let c = s.classes;
    let mut out = buffers::for_overwrite("cross_entropy", s.rows * c)?;
    let (keep, spread) = (
        T::from_f32(1.0 - s.smoothing),
        T::from_f64(f64::from(s.smoothing) / c as f64),
    );
    let row = |i: usize, dst: &mut [T]| -> Result<()> {
        let t = check_index("cross_entropy", target[i], 1, c)?;
        let gi = g[s.g_offset + i * s.g_stride];
        for (j, d) in dst.iter_mut().enumerate() {
            let q = if j == t { keep + spread } else { spread };
            *d = ((x[i * c + j] - lse[i]).exp() - q) * gi;
        }
        Ok(())
    };
    if s.rows * c >= PAR_THRESHOLD {
        out.par_chunks_mut(c)
            .enumerate()
            .try_for_each(|(i, dst)| row(i, dst))?;
    } else {
        for (i, dst) in out.chunks_mut(c).enumerate() {
            row(i, dst)?;
        }
    }
    Ok(out)
}
