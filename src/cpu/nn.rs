//! The CPU reference for the CNN ops: im2col/col2im (conv2d runs them around a GEMM), pooling
//! and its gradients, and the normalisation behind batch norm and layer norm. Plain loops over
//! one image plane or one statistics group at a time, spread over cores with rayon. Generic
//! over f32/f64 (gradcheck differentiates in f64).

use rayon::prelude::*;

use super::pool;
use super::PAR_THRESHOLD;
use crate::backend::{NormSpec, PoolKind, Window2d};
use crate::error::Result;
use crate::real::Real;

/// Runs `f(i, chunk)` over `out.chunks_mut(size)`, in parallel when `out` is large.
fn for_chunks<T: Real>(out: &mut [T], size: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    if size == 0 {
        return;
    }
    if out.len() >= PAR_THRESHOLD {
        out.par_chunks_mut(size)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    } else {
        out.chunks_mut(size).enumerate().for_each(|(i, c)| f(i, c));
    }
}

/// Tap `k` of window `o` along `axis`, if it lands inside the image.
fn tap(win: &Window2d, axis: usize, o: usize, k: usize) -> Option<usize> {
    let p = win.start(axis, o) + (k * win.dilation[axis]) as isize;
    (p >= 0 && (p as usize) < win.size[axis]).then_some(p as usize)
}

// x (N, C, H, W) -> cols (N, C*KH*KW, OH*OW)
pub(super) fn unfold<T: Real>(x: &[T], win: &Window2d) -> Result<Vec<T>> {
    let (c, [h, w], [kh, kw], [oh, ow]) = (win.c, win.size, win.kernel, win.out);
    let l = oh * ow;
    let mut out = pool::zeroed("unfold2d", win.cols_numel())?;
    // One task per column row (ci, ki, kj) of one image.
    for_chunks(&mut out, l, |r, dst| {
        let (n, row) = (r / (c * kh * kw), r % (c * kh * kw));
        let (ci, ki, kj) = (row / (kh * kw), (row / kw) % kh, row % kw);
        let img = &x[(n * c + ci) * h * w..][..h * w];
        for oy in 0..oh {
            let Some(y) = tap(win, 0, oy, ki) else {
                continue; // the row stays zero: padding
            };
            for ox in 0..ow {
                if let Some(xx) = tap(win, 1, ox, kj) {
                    dst[oy * ow + ox] = img[y * w + xx];
                }
            }
        }
    });
    Ok(out)
}

// cols (N, C*KH*KW, OH*OW) -> x (N, C, H, W): each pixel sums the entries that read it, in
// (ki, kj, oy, ox) order (the GPU kernel adds in the same order).
pub(super) fn fold<T: Real>(cols: &[T], win: &Window2d) -> Result<Vec<T>> {
    let ([h, w], [kh, kw], [oh, ow]) = (win.size, win.kernel, win.out);
    let l = oh * ow;
    let mut out = pool::zeroed("fold2d", win.image_numel())?;
    // One task per image plane (n, ci); its rows are contiguous in `cols`.
    for_chunks(&mut out, h * w, |plane, img| {
        let rows = &cols[plane * kh * kw * l..][..kh * kw * l];
        for ki in 0..kh {
            for kj in 0..kw {
                let src = &rows[(ki * kw + kj) * l..][..l];
                for oy in 0..oh {
                    let Some(y) = tap(win, 0, oy, ki) else {
                        continue;
                    };
                    for ox in 0..ow {
                        if let Some(xx) = tap(win, 1, ox, kj) {
                            img[y * w + xx] = img[y * w + xx] + src[oy * ow + ox];
                        }
                    }
                }
            }
        }
    });
    Ok(out)
}

/// The input range `lo..hi` that output `o` along `axis` pools (clipped to the image).
fn pool_range(win: &Window2d, kind: PoolKind, axis: usize, o: usize) -> (usize, usize) {
    let (size, out) = (win.size[axis], win.out[axis]);
    match kind {
        PoolKind::AdaptiveAvg => ((o * size) / out, ((o + 1) * size).div_ceil(out)),
        PoolKind::Max | PoolKind::Avg => {
            let s = win.start(axis, o);
            let e = s + win.kernel[axis] as isize;
            (s.max(0) as usize, (e.max(0) as usize).min(size))
        }
    }
}

/// What an average window divides by: every tap, padding included (PyTorch's
/// `count_include_pad=True`), or the adaptive window's size.
fn divisor(win: &Window2d, kind: PoolKind, oy: usize, ox: usize) -> usize {
    match kind {
        PoolKind::AdaptiveAvg => {
            let (y0, y1) = pool_range(win, kind, 0, oy);
            let (x0, x1) = pool_range(win, kind, 1, ox);
            (y1 - y0) * (x1 - x0)
        }
        _ => win.kernel[0] * win.kernel[1],
    }
}

// x (N, C, H, W) -> out (N, C, OH, OW), and for max the arg-max `y * W + x` of each window.
#[allow(clippy::type_complexity)]
pub(super) fn pool<T: Real>(
    x: &[T],
    win: &Window2d,
    kind: PoolKind,
) -> Result<(Vec<T>, Option<Vec<T>>)> {
    let ([h, w], [oh, ow]) = (win.size, win.out);
    let mut out = pool::zeroed("pool2d", win.out_numel())?;
    let mut arg = pool::zeroed("pool2d", if kind == PoolKind::Max { out.len() } else { 0 })?;
    let plane = |p: usize, dst: &mut [T], mut arg: Option<&mut [T]>| {
        let img = &x[p * h * w..][..h * w];
        for oy in 0..oh {
            let (y0, y1) = pool_range(win, kind, 0, oy);
            for ox in 0..ow {
                let (x0, x1) = pool_range(win, kind, 1, ox);
                let o = oy * ow + ox;
                if kind == PoolKind::Max {
                    // The first maximum in row-major order; a NaN wins (as in PyTorch).
                    let (mut best, mut at) = (T::NEG_INFINITY, y0 * w + x0);
                    for y in y0..y1 {
                        for xx in x0..x1 {
                            let v = img[y * w + xx];
                            if v > best || v.is_nan() {
                                (best, at) = (v, y * w + xx);
                            }
                        }
                    }
                    dst[o] = best;
                    if let Some(a) = arg.as_deref_mut() {
                        a[o] = T::from_f64(at as f64);
                    }
                } else {
                    let mut sum = T::zero();
                    for y in y0..y1 {
                        for xx in x0..x1 {
                            sum = sum + img[y * w + xx];
                        }
                    }
                    dst[o] = sum / T::from_f64(divisor(win, kind, oy, ox) as f64);
                }
            }
        }
    };
    let size = oh * ow;
    if kind == PoolKind::Max && size > 0 {
        out.par_chunks_mut(size)
            .zip(arg.par_chunks_mut(size))
            .enumerate()
            .for_each(|(p, (dst, a))| plane(p, dst, Some(a)));
    } else {
        for_chunks(&mut out, size, |p, dst| plane(p, dst, None));
    }
    Ok((out, (kind == PoolKind::Max).then_some(arg)))
}

// g (N, C, OH, OW) -> dx (N, C, H, W): max sends each window's gradient to its arg-max; avg
// spreads it evenly over the window's taps. Per pixel, contributions add in (oy, ox) order.
pub(super) fn pool_backward<T: Real>(
    g: &[T],
    arg: Option<&[T]>,
    win: &Window2d,
    kind: PoolKind,
) -> Result<Vec<T>> {
    let ([h, w], [oh, ow]) = (win.size, win.out);
    let mut dx = pool::zeroed("pool2d_backward", win.image_numel())?;
    for_chunks(&mut dx, h * w, |p, img| {
        let gp = &g[p * oh * ow..][..oh * ow];
        for oy in 0..oh {
            for ox in 0..ow {
                let o = oy * ow + ox;
                match arg {
                    Some(a) => {
                        // The arg-max came from `pool`, so it is in the plane; `get_mut`
                        // keeps a corrupt one from indexing out of bounds all the same.
                        let at = a[p * oh * ow + o].to_f64() as usize;
                        if let Some(v) = img.get_mut(at) {
                            *v = *v + gp[o];
                        }
                    }
                    None => {
                        let share = gp[o] / T::from_f64(divisor(win, kind, oy, ox) as f64);
                        let (y0, y1) = pool_range(win, kind, 0, oy);
                        let (x0, x1) = pool_range(win, kind, 1, ox);
                        for y in y0..y1 {
                            for xx in x0..x1 {
                                img[y * w + xx] = img[y * w + xx] + share;
                            }
                        }
                    }
                }
            }
        }
    });
    Ok(dx)
}

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
    let mut out = pool::zeroed("normalize", s.numel())?;
    for_chunks(&mut out, s.groups * s.inner, |o, chunk| {
        for (k, v) in chunk.iter_mut().enumerate() {
            *v = f(k / s.inner, o * s.groups * s.inner + k);
        }
    });
    Ok(out)
}

// x (outer, groups, inner) -> xhat (same), stats (2, groups): mean and biased variance.
pub(super) fn normalize<T: Real>(x: &[T], s: &NormSpec) -> Result<(Vec<T>, Vec<T>)> {
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
pub(super) fn normalize_backward<T: Real>(
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
