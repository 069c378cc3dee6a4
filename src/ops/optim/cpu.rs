//! The fused optimizer updates on the CPU: the same per-element arithmetic as
//! `shaders/optim.wgsl`, line for line, in the order PyTorch's single-tensor loops use.

use rayon::prelude::*;

use super::spec::{OptimKind, OptimSpec};
use crate::cpu::buffers;
use crate::cpu::walk::PAR_THRESHOLD;
use crate::error::{Error, Result};
use crate::real::Real;

/// Elements per rayon task.
const CHUNK: usize = 1 << 14;

/// One rayon task: the offset of its chunk, the parameter chunk, and the matching chunk of
/// each state row.
type Task<'a, T> = (usize, &'a mut [T], Vec<&'a mut [T]>);

/// Returns the new parameter `[n]` and state `[rows, n]` (row-major, one row per buffer).
#[allow(clippy::type_complexity)]
pub(crate) fn step<T: Real>(
    p: &[T],
    g: &[T],
    s: &[T],
    spec: &OptimSpec,
) -> Result<(Vec<T>, Vec<T>)> {
    let n = spec.numel;
    let rows = spec.state_rows();
    // The optimizer checks shapes before a step (`optim::Core::step`); this keeps a mismatch
    // that slipped past it from indexing out of bounds.
    let op = "optimizer step";
    if p.len() < n || g.len() < n || s.len() < n * rows {
        return Err(Error::invalid(
            op,
            format!(
                "parameter, gradient and state hold {}, {} and {} elements; expected {n}, {n} and {rows} x {n}",
                p.len(),
                g.len(),
                s.len()
            ),
        ));
    }
    // Each task copies its chunk of the old values in, then updates it while it is in cache
    // (a copy of the whole tensors first was a pass over memory of its own).
    let mut out = buffers::for_overwrite(op, n)?;
    let mut state = buffers::for_overwrite(op, n * rows)?;
    // Task c owns chunk c of the parameter and chunk c of each state row.
    let mut row_chunks: Vec<_> = state
        .chunks_mut(n.max(1))
        .map(|row| row.chunks_mut(CHUNK))
        .collect();
    let tasks: Vec<Task<T>> = out
        .chunks_mut(CHUNK)
        .enumerate()
        .map(|(c, po)| {
            let so = row_chunks.iter_mut().filter_map(|r| r.next()).collect();
            (c * CHUNK, po, so)
        })
        .collect();
    let run = |(base, po, mut so): Task<T>| {
        let len = po.len();
        po.copy_from_slice(&p[base..base + len]);
        for (r, row) in so.iter_mut().enumerate() {
            row.copy_from_slice(&s[r * n + base..][..len]);
        }
        let g = &g[base..base + len];
        // The kind's `match` is taken once per chunk, so each loop below is one straight,
        // vectorisable body (compiled for the CPU found at run time). R = `state_rows()`.
        pulp::Arch::new().dispatch(|| match spec.kind {
            OptimKind::Sgd => chunk::<T, 1>(spec, OptimKind::Sgd, po, g, so),
            OptimKind::Adam if spec.has(OptimSpec::AMSGRAD) => {
                chunk::<T, 3>(spec, OptimKind::Adam, po, g, so)
            }
            OptimKind::Adam => chunk::<T, 2>(spec, OptimKind::Adam, po, g, so),
            OptimKind::RmsProp => chunk::<T, 3>(spec, OptimKind::RmsProp, po, g, so),
            OptimKind::Adagrad => chunk::<T, 1>(spec, OptimKind::Adagrad, po, g, so),
        });
    };
    if n >= PAR_THRESHOLD {
        tasks.into_par_iter().for_each(run);
    } else {
        tasks.into_iter().for_each(run);
    }
    Ok((out, state))
}

/// Updates one chunk: parameters `p`, gradients `g` and `R` state rows of the same length.
/// `kind` is a constant at each call site, so `update`'s match folds away.
#[inline(always)]
fn chunk<T: Real, const R: usize>(
    spec: &OptimSpec,
    kind: OptimKind,
    p: &mut [T],
    g: &[T],
    s: Vec<&mut [T]>,
) {
    let mut s: [&mut [T]; R] = match s.try_into() {
        Ok(s) => s,
        Err(_) => unreachable!("state rows match the optimizer kind"),
    };
    let n = p.len();
    // Equal lengths, stated once, let the compiler drop the per-element bounds checks.
    let (g, s) = (&g[..n], s.each_mut().map(|r| &mut r[..n]));
    each(p, g, s, |p, g, s| update(spec, kind, p, g, s));
}

#[inline(always)]
fn each<T: Real, const R: usize>(
    p: &mut [T],
    g: &[T],
    s: [&mut [T]; R],
    f: impl Fn(&mut T, T, &mut [T]),
) {
    for i in 0..p.len() {
        let mut sv: [T; R] = std::array::from_fn(|r| s[r][i]);
        f(&mut p[i], g[i], &mut sv);
        for r in 0..R {
            s[r][i] = sv[r];
        }
    }
}

/// One element: parameter `p`, gradient `g`, its state values `s` (one per state row). `kind`
/// is `spec.kind`, passed down as a constant so the match folds away.
#[inline(always)]
fn update<T: Real>(spec: &OptimSpec, kind: OptimKind, p: &mut T, g: T, s: &mut [T]) {
    let c = T::from_f32;
    let (lr, wd, eps) = (c(spec.lr), c(spec.weight_decay), c(spec.eps));
    let (b1, b2) = (c(spec.beta1), c(spec.beta2));
    let one = T::one();
    let g = if spec.has(OptimSpec::MAXIMIZE) { -g } else { g };
    match kind {
        OptimKind::Sgd => {
            let mut d = g + wd * *p;
            if spec.beta1 != 0.0 {
                s[0] = if spec.has(OptimSpec::FIRST_STEP) {
                    d
                } else {
                    b1 * s[0] + (one - c(spec.dampening)) * d
                };
                d = if spec.has(OptimSpec::NESTEROV) {
                    d + b1 * s[0]
                } else {
                    s[0]
                };
            }
            *p = *p - lr * d;
        }
        OptimKind::Adam => {
            let d = if spec.has(OptimSpec::DECOUPLED) {
                *p = *p * (one - lr * wd);
                g
            } else {
                g + wd * *p
            };
            s[0] = s[0] + (one - b1) * (d - s[0]); // lerp, as torch's exp_avg.lerp_
            s[1] = b2 * s[1] + (one - b2) * d * d;
            let v = if spec.has(OptimSpec::AMSGRAD) {
                s[2] = s[2].max(s[1]);
                s[2]
            } else {
                s[1]
            };
            let denom = v.sqrt() / c(spec.bias2_sqrt) + eps;
            *p = *p - (lr / c(spec.bias1)) * s[0] / denom;
        }
        OptimKind::RmsProp => {
            let d = g + wd * *p;
            s[0] = b2 * s[0] + (one - b2) * d * d;
            let avg = if spec.has(OptimSpec::CENTERED) {
                s[2] = s[2] + (one - b2) * (d - s[2]);
                (s[0] - s[2] * s[2]).sqrt() + eps
            } else {
                s[0].sqrt() + eps
            };
            if spec.beta1 > 0.0 {
                s[1] = b1 * s[1] + d / avg;
                *p = *p - lr * s[1];
            } else {
                *p = *p - lr * d / avg;
            }
        }
        OptimKind::Adagrad => {
            let d = g + wd * *p;
            s[0] = s[0] + d * d;
            *p = *p - lr * d / (s[0].sqrt() + eps);
        }
    }
}
