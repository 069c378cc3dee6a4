//! The CPU reference for the normalisation behind batch norm and layer norm: one statistics
//! group at a time, sums in f64, spread over cores. Generic over f32/f64.

use rayon::prelude::*;

use super::spec::NormSpec;
use crate::cpu::buffers;
use crate::cpu::walk::{for_chunks, PAR_THRESHOLD};
use crate::error::Result;
use crate::real::Real;

/// Flat offset of element `j` (of `count`) of group `gi` in `[outer, groups, inner]`.
fn norm_at(s: &NormSpec, gi: usize, j: usize) -> usize {
    ((j / s.inner) * s.groups + gi) * s.inner + j % s.inner
}

/// Per group, `f` summed over its elements (in f64, so the reference is accurate).
fn group_sums(s: &NormSpec, f: impl Fn(usize, usize) -> f64 + Sync) -> Vec<f64> {
    let sum = |gi: usize| (0..s.count()).map(|j| f(gi, norm_at(s, gi, j))).sum();
    if s.numel() >= PAR_THRESHOLD {
        (0..s.groups).into_par_iter().map(sum).collect()
    } else {
        (0..s.groups).map(sum).collect()
    }
}

/// Writes `out[i] = f(group of i, i)` over `[outer, groups, inner]`.
fn per_group<T: Real>(s: &NormSpec, f: impl Fn(usize, usize) -> T + Sync) -> Result<Vec<T>> {
    let mut out = buffers::for_overwrite("normalize", s.numel())?;
    for_chunks(&mut out, s.groups * s.inner, |o, chunk| {
        for (k, v) in chunk.iter_mut().enumerate() {
            *v = f(k / s.inner, o * s.groups * s.inner + k);
        }
    });
    Ok(out)
}

// x (outer, groups, inner) -> xhat (same), stats (2, groups): mean and biased variance.
pub(crate) fn normalize<T: Real>(x: &[T], s: &NormSpec) -> Result<(Vec<T>, Vec<T>)> {
    let n = s.count() as f64;
    let mean: Vec<f64> = group_sums(s, |_, i| x[i].to_f64())
        .into_iter()
        .map(|v| v / n)
        .collect();
    // Two passes (mean, then squared deviations): stable where E[x²] - E[x]² is not.
    let var: Vec<f64> = group_sums(s, |gi, i| (x[i].to_f64() - mean[gi]).powi(2))
        .into_iter()
        .map(|v| v / n)
        .collect();
    let rstd: Vec<f64> = var
        .iter()
        .map(|v| 1.0 / (v + f64::from(s.eps)).sqrt())
        .collect();
    let xhat = per_group(s, |gi, i| {
        T::from_f64((x[i].to_f64() - mean[gi]) * rstd[gi])
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
    let mean_g: Vec<f64> = group_sums(s, |_, i| g[i].to_f64())
        .into_iter()
        .map(|v| v / n)
        .collect();
    let mean_gx: Vec<f64> = group_sums(s, |_, i| g[i].to_f64() * xhat[i].to_f64())
        .into_iter()
        .map(|v| v / n)
        .collect();
    per_group(s, |gi, i| {
        let rstd = 1.0 / (stats[s.groups + gi].to_f64() + f64::from(s.eps)).sqrt();
        T::from_f64(rstd * (g[i].to_f64() - mean_g[gi] - xhat[i].to_f64() * mean_gx[gi]))
    })
}
