//! The fused optimizer updates on the CPU: the same per-element arithmetic as
//! `shaders/optim.wgsl`, line for line, in the order PyTorch's single-tensor loops use.

use rayon::prelude::*;

use super::{pool, PAR_THRESHOLD};
use crate::real::Real;
use crate::storage::{OptimKind, OptimSpec};

/// Elements per rayon task.
const CHUNK: usize = 1 << 14;

/// One rayon task: the offset of its chunk, the parameter chunk, and the matching chunk of
/// each state row.
type Task<'a, T> = (usize, &'a mut [T], Vec<&'a mut [T]>);

/// Returns the new parameter `[n]` and state `[rows, n]` (row-major, one row per buffer).
pub(crate) fn step<T: Real>(p: &[T], g: &[T], s: &[T], spec: &OptimSpec) -> (Vec<T>, Vec<T>) {
    let n = spec.numel;
    let rows = spec.kind.state_rows();
    let mut out = pool::copied(&p[..n]);
    let mut state = pool::copied(&s[..n * rows]);
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
        let mut sv = [T::zero(); 3];
        for (i, pv) in po.iter_mut().enumerate() {
            so.iter().zip(&mut sv).for_each(|(row, v)| *v = row[i]);
            update(spec, pv, g[base + i], &mut sv[..rows]);
            so.iter_mut().zip(&sv).for_each(|(row, v)| row[i] = *v);
        }
    };
    if n >= PAR_THRESHOLD {
        tasks.into_par_iter().for_each(run);
    } else {
        tasks.into_iter().for_each(run);
    }
    (out, state)
}

/// One element: parameter `p`, gradient `g`, its state values `s` (one per state row).
fn update<T: Real>(spec: &OptimSpec, p: &mut T, g: T, s: &mut [T]) {
    let c = T::from_f32;
    let (lr, wd, eps) = (c(spec.lr), c(spec.weight_decay), c(spec.eps));
    let (b1, b2) = (c(spec.beta1), c(spec.beta2));
    let one = T::one();
    match spec.kind {
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
            let denom = s[1].sqrt() / c(spec.bias2_sqrt) + eps;
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
