//! The fused optimizer updates on the CPU: the same per-element arithmetic as
//! `shaders/optim.wgsl`, line for line, in the order PyTorch's single-tensor loops use.

use rayon::prelude::*;

use super::spec::{OptimKind, OptimSpec};
use crate::cpu::buffers;
use crate::cpu::walk::{vectorized, PAR_THRESHOLD};
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
        // vectorisable body, compiled for the CPU found at run time.
        vectorized(
            #[inline(always)]
            || chunk(spec, po, g, std::mem::take(&mut so)),
        );
    };
    if n >= PAR_THRESHOLD {
        tasks.into_par_iter().for_each(run);
    } else {
        tasks.into_iter().for_each(run);
    }
    Ok((out, state))
}

/// The step's hyper-parameters in `T`, resolved once per chunk. Read through `spec` inside
/// the loop, with its flags tested per element, the update compiled to scalar code; as
/// locals, and with the flags as constants of each loop below, it vectorises.
#[derive(Clone, Copy)]
struct Hyper<T> {
    lr: T,
    wd: T,
    eps: T,
    b1: T,
    b2: T,
    /// `1 - dampening` (SGD).
    undamped: T,
    /// `-1` when maximizing, else `1`: `g * sign` is `-g` exactly (but for a NaN's sign bit).
    sign: T,
}

impl<T: Real> Hyper<T> {
    fn new(spec: &OptimSpec) -> Hyper<T> {
        let c = T::from_f32;
        Hyper {
            lr: c(spec.lr),
            wd: c(spec.weight_decay),
            eps: c(spec.eps),
            b1: c(spec.beta1),
            b2: c(spec.beta2),
            undamped: T::one() - c(spec.dampening),
            sign: if spec.has(OptimSpec::MAXIMIZE) {
                -T::one()
            } else {
                T::one()
            },
        }
    }
}

/// Updates one chunk: parameters `p`, gradients `g` and the state rows (`state_rows()` of
/// them) of the same length, with the spec's flags turned into constants of one straight
/// loop per case. The arithmetic is the WGSL's (`optim_sgd`, `optim_adam`, ... in
/// `shaders/optim.wgsl`), operation for operation.
#[inline(always)]
fn chunk<T: Real>(spec: &OptimSpec, p: &mut [T], g: &[T], s: Vec<&mut [T]>) {
    // Rows by name, an empty slice for one the kind lacks (never indexed then); each loop
    // below states the lengths once, so the compiler drops the per-element bounds checks.
    let mut rows = s.into_iter();
    let mut row = || -> &mut [T] { rows.next().unwrap_or(&mut []) };
    let (s0, s1, s2) = (row(), row(), row());
    let h = Hyper::<T>::new(spec);
    let f = |flag| spec.has(flag);
    match spec.kind {
        OptimKind::Sgd => match (
            spec.beta1 != 0.0,
            f(OptimSpec::NESTEROV),
            f(OptimSpec::FIRST_STEP),
        ) {
            (false, _, _) => sgd::<T, false, false, false>(h, p, g, s0),
            (true, false, false) => sgd::<T, true, false, false>(h, p, g, s0),
            (true, false, true) => sgd::<T, true, false, true>(h, p, g, s0),
            (true, true, false) => sgd::<T, true, true, false>(h, p, g, s0),
            (true, true, true) => sgd::<T, true, true, true>(h, p, g, s0),
        },
        OptimKind::Adam => {
            let bias1 = T::from_f32(spec.bias1);
            let bias2 = T::from_f32(spec.bias2_sqrt);
            let bias = [bias1, bias2];
            match (f(OptimSpec::DECOUPLED), f(OptimSpec::AMSGRAD)) {
                (false, false) => adam::<T, false, false>(h, bias, p, g, [s0, s1, s2]),
                (false, true) => adam::<T, false, true>(h, bias, p, g, [s0, s1, s2]),
                (true, false) => adam::<T, true, false>(h, bias, p, g, [s0, s1, s2]),
                (true, true) => adam::<T, true, true>(h, bias, p, g, [s0, s1, s2]),
            }
        }
        OptimKind::RmsProp => match (f(OptimSpec::CENTERED), spec.beta1 > 0.0) {
            (false, false) => rmsprop::<T, false, false>(h, p, g, [s0, s1, s2]),
            (false, true) => rmsprop::<T, false, true>(h, p, g, [s0, s1, s2]),
            (true, false) => rmsprop::<T, true, false>(h, p, g, [s0, s1, s2]),
            (true, true) => rmsprop::<T, true, true>(h, p, g, [s0, s1, s2]),
        },
        OptimKind::Adagrad => adagrad(h, p, g, s0),
    }
}

/// SGD, state `[momentum]`: `MOM` momentum on, `NEST` Nesterov, `FIRST` the buffer starts as
/// the gradient.
#[inline(always)]
fn sgd<T: Real, const MOM: bool, const NEST: bool, const FIRST: bool>(
    h: Hyper<T>,
    p: &mut [T],
    g: &[T],
    m: &mut [T],
) {
    // Every row as long as `p` (stated here, where the loop is, for the bounds checks).
    let (n, g) = (p.len(), &g[..p.len()]);
    let m = if MOM { &mut m[..n] } else { m };
    for i in 0..n {
        let mut d = h.sign * g[i] + h.wd * p[i];
        if MOM {
            m[i] = if FIRST {
                d
            } else {
                h.b1 * m[i] + h.undamped * d
            };
            d = if NEST { d + h.b1 * m[i] } else { m[i] };
        }
        p[i] = p[i] - h.lr * d;
    }
}

/// Adam and AdamW (`DEC`), state `[exp_avg, exp_avg_sq]`, plus `max_exp_avg_sq` when
/// `AMS` (AMSGrad). `bias` is `[1 - beta1^t, sqrt(1 - beta2^t)]`.
#[inline(always)]
fn adam<T: Real, const DEC: bool, const AMS: bool>(
    h: Hyper<T>,
    [bias1, bias2_sqrt]: [T; 2],
    p: &mut [T],
    g: &[T],
    [m, v, vmax]: [&mut [T]; 3],
) {
    let one = T::one();
    let (decay, step) = (one - h.lr * h.wd, h.lr / bias1);
    let (n, g) = (p.len(), &g[..p.len()]);
    let (m, v) = (&mut m[..n], &mut v[..n]);
    let vmax = if AMS { &mut vmax[..n] } else { vmax };
    for i in 0..n {
        let gi = h.sign * g[i];
        let d = if DEC {
            p[i] = p[i] * decay;
            gi
        } else {
            gi + h.wd * p[i]
        };
        m[i] = m[i] + (one - h.b1) * (d - m[i]); // lerp, as torch's exp_avg.lerp_
        v[i] = h.b2 * v[i] + (one - h.b2) * d * d;
        let top = if AMS {
            vmax[i] = vmax[i].max(v[i]);
            vmax[i]
        } else {
            v[i]
        };
        let denom = top.sqrt() / bias2_sqrt + h.eps;
        p[i] = p[i] - step * m[i] / denom;
    }
}

/// RMSprop, state `[square_avg, momentum_buffer, grad_avg]`: `CENT` centered, `MOM`
/// momentum on.
#[inline(always)]
fn rmsprop<T: Real, const CENT: bool, const MOM: bool>(
    h: Hyper<T>,
    p: &mut [T],
    g: &[T],
    [sq, buf, avg]: [&mut [T]; 3],
) {
    let one = T::one();
    let (n, g) = (p.len(), &g[..p.len()]);
    let (sq, buf, avg) = (&mut sq[..n], &mut buf[..n], &mut avg[..n]);
    for i in 0..n {
        let d = h.sign * g[i] + h.wd * p[i];
        sq[i] = h.b2 * sq[i] + (one - h.b2) * d * d;
        let a = if CENT {
            avg[i] = avg[i] + (one - h.b2) * (d - avg[i]);
            (sq[i] - avg[i] * avg[i]).sqrt() + h.eps
        } else {
            sq[i].sqrt() + h.eps
        };
        if MOM {
            buf[i] = h.b1 * buf[i] + d / a;
            p[i] = p[i] - h.lr * buf[i];
        } else {
            p[i] = p[i] - h.lr * d / a;
        }
    }
}

/// Adagrad, state `[sum]`.
#[inline(always)]
fn adagrad<T: Real>(h: Hyper<T>, p: &mut [T], g: &[T], sum: &mut [T]) {
    let (n, g, sum) = (p.len(), &g[..p.len()], &mut sum[..p.len()]);
    for i in 0..n {
        let d = h.sign * g[i] + h.wd * p[i];
        sum[i] = sum[i] + d * d;
        p[i] = p[i] - h.lr * d / (sum[i].sqrt() + h.eps);
    }
}
