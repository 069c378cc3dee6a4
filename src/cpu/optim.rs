//! The fused optimizer updates on the CPU: the same per-element arithmetic as
//! `shaders/optim.wgsl`, line for line, in the order PyTorch's single-tensor loops use.

use rayon::prelude::*;

use super::PAR_THRESHOLD;
use crate::real::Real;
use crate::storage::{OptimKind, OptimSpec};

/// Elements per rayon task.
const CHUNK: usize = 1 << 14;

/// Returns the new parameter `[n]` and state `[rows, n]` (row-major, one row per buffer).
pub(crate) fn step<T: Real>(p: &[T], g: &[T], s: &[T], spec: &OptimSpec) -> (Vec<T>, Vec<T>) {
    let n = spec.numel;
    let rows = spec.kind.state_rows();
    let mut out = p[..n].to_vec();
    // Element-major scratch for the state, so each chunk owns its slice: [n, rows].
    let mut st: Vec<T> = (0..n * rows)
        .map(|k| s[(k % rows) * n + k / rows])
        .collect();
    let run = |(c, (po, so)): (usize, (&mut [T], &mut [T]))| {
        let base = c * CHUNK;
        for (i, (pv, sv)) in po.iter_mut().zip(so.chunks_mut(rows)).enumerate() {
            update(spec, pv, g[base + i], sv);
        }
    };
    let chunks = out
        .chunks_mut(CHUNK)
        .zip(st.chunks_mut(CHUNK * rows))
        .enumerate();
    if n >= PAR_THRESHOLD {
        chunks.collect::<Vec<_>>().into_par_iter().for_each(run);
    } else {
        chunks.for_each(run);
    }
    let state = (0..n * rows).map(|k| st[(k % n) * rows + k / n]).collect();
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
