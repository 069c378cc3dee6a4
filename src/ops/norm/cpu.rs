//! The CPU reference for the normalisation behind batch norm and layer norm: one statistics
//! group at a time, sums in f64, spread over cores. Generic over f32/f64.
//!
//! A group's elements are `outer` runs of `inner` contiguous ones in `[outer, groups,
//! inner]`, so every loop below goes run by run: plain slice loops that vectorise (through
//! `vectorized`), where indexing element by element divided per element and stayed scalar.

use rayon::prelude::*;

use super::spec::NormSpec;
use crate::cpu::buffers;
use crate::cpu::walk::{for_chunks, vectorized, PAR_THRESHOLD};
use crate::error::Result;
use crate::real::Real;

/// Group `gi`'s run `o`: where it starts in `[outer, groups, inner]`.
fn run_start(s: &NormSpec, o: usize, gi: usize) -> usize {
    (o * s.groups + gi) * s.inner
}

/// Per group, `f(a, b)` summed over its elements, `a` and `b` the two inputs' values there
/// (`mean(gi)` given to `f` as its first argument). In f64, so the reference is accurate:
/// eight accumulators per run, the runs' sums added in order.
fn group_sums<T: Real>(
    s: &NormSpec,
    [a, b]: [&[T]; 2],
    mean: &[f64],
    f: impl Fn(f64, f64, f64) -> f64 + Sync + Copy,
) -> Vec<f64> {
    // One `vectorized` call per group, not per run: a batch norm over `[n, c]` has runs of
    // one element.
    let sum = |gi: usize| -> f64 {
        let m = mean.get(gi).copied().unwrap_or(0.0);
        vectorized(
            #[inline(always)]
            || {
                (0..s.outer)
                    .map(|o| {
                        let at = run_start(s, o, gi);
                        let (ra, rb) = (&a[at..][..s.inner], &b[at..][..s.inner]);
                        lane_sum(ra, rb, |x, y| f(m, x, y))
                    })
                    .sum()
            },
        )
    };
    if s.numel() >= PAR_THRESHOLD {
        (0..s.groups).into_par_iter().map(sum).collect()
    } else {
        (0..s.groups).map(sum).collect()
    }
}

/// `f(a[k], b[k])` summed over a run, in f64 over eight interleaved accumulators.
#[inline(always)]
fn lane_sum<T: Real>(a: &[T], b: &[T], f: impl Fn(f64, f64) -> f64) -> f64 {
    let b = &b[..a.len()];
    let mut acc = [0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| f(x.to_f64(), y.to_f64()))
        .sum();
    for (xa, xb) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += f(xa[l].to_f64(), xb[l].to_f64());
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// Writes `out[k] = f(gi, a[k], b[k])` over `[outer, groups, inner]`, run by run.
fn per_group<T: Real>(
    s: &NormSpec,
    [a, b]: [&[T]; 2],
    f: impl Fn(usize, T, T) -> T + Sync + Copy,
) -> Result<Vec<T>> {
    let mut out = buffers::for_overwrite("normalize", s.numel())?;
    let inner = s.inner.max(1);
    for_chunks(&mut out, s.groups * inner, |o, chunk| {
        vectorized(
            #[inline(always)]
            || {
                for (gi, run) in chunk.chunks_exact_mut(inner).enumerate() {
                    let at = run_start(s, o, gi);
                    let (ra, rb) = (&a[at..][..inner], &b[at..][..inner]);
                    for ((v, &x), &y) in run.iter_mut().zip(ra).zip(rb) {
                        *v = f(gi, x, y);
                    }
                }
            },
        )
    });
    Ok(out)
}

// x (outer, groups, inner) -> xhat (same), stats (2, groups): mean and biased variance.
pub(crate) fn normalize<T: Real>(x: &[T], s: &NormSpec) -> Result<(Vec<T>, Vec<T>)> {
    let n = s.count() as f64;
    let mean: Vec<f64> = group_sums(s, [x, x], &[], |_, v, _| v)
        .into_iter()
        .map(|v| v / n)
        .collect();
    // Two passes (mean, then squared deviations): stable where E[x²] - E[x]² is not.
    let var: Vec<f64> = group_sums(s, [x, x], &mean, |m, v, _| (v - m).powi(2))
        .into_iter()
        .map(|v| v / n)
        .collect();
    let rstd: Vec<f64> = var
        .iter()
        .map(|v| 1.0 / (v + f64::from(s.eps)).sqrt())
        .collect();
    let xhat = per_group(s, [x, x], |gi, v, _| {
        T::from_f64((v.to_f64() - mean[gi]) * rstd[gi])
    })?;
    let stats = mean.iter().chain(&var).map(|&v| T::from_f64(v)).collect();
    Ok((xhat, stats))
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), the means over each group.
pub(crate) fn normalize_backward<T: Real>(
    xhat: &[T],
    g: &[T],
    stats: &[T],
    s: &NormSpec,
) -> Result<Vec<T>> {
    let n = s.count() as f64;
    let mean_g: Vec<f64> = group_sums(s, [g, g], &[], |_, v, _| v)
        .into_iter()
        .map(|v| v / n)
        .collect();
    let mean_gx: Vec<f64> = group_sums(s, [g, xhat], &[], |_, v, h| v * h)
        .into_iter()
        .map(|v| v / n)
        .collect();
    let rstd: Vec<f64> = (0..s.groups)
        .map(|gi| 1.0 / (stats[s.groups + gi].to_f64() + f64::from(s.eps)).sqrt())
        .collect();
    per_group(s, [g, xhat], |gi, v, h| {
        T::from_f64(rstd[gi] * (v.to_f64() - mean_g[gi] - h.to_f64() * mean_gx[gi]))
    })
}
