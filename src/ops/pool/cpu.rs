//! The CPU reference for pooling and its gradients: plain loops over one image plane at a
//! time, spread over cores. Generic over f32/f64.

use rayon::prelude::*;

use super::spec::PoolKind;
use crate::cpu::buffers;
use crate::cpu::walk::{for_chunks, vectorized};
use crate::error::Result;
use crate::ops::conv::spec::Window2d;
use crate::real::Real;

/// The input range `lo..hi` that output `o` along `axis` pools (clipped to the image), its
/// taps every `win.dilation[axis]` from `lo` (max pooling may dilate; `lo` is a tap).
fn pool_range(win: &Window2d, kind: PoolKind, axis: usize, o: usize) -> (usize, usize) {
    let (size, out) = (win.size[axis], win.out[axis]);
    if kind.is_adaptive() {
        return ((o * size) / out, ((o + 1) * size).div_ceil(out));
    }
    let (s, d) = (win.start(axis, o), win.dilation[axis] as isize);
    let e = s + d * (win.kernel[axis] as isize - 1) + 1;
    // The first tap at or past 0.
    let first = if s < 0 { s + (-s + d - 1) / d * d } else { s };
    (
        first.max(0) as usize,
        (e.max(0) as usize).min(size).max(first.max(0) as usize),
    )
}

/// What an average window divides by: its taps within the padded input (PyTorch's
/// `count_include_pad=True`: the kernel's, but for a `ceil_mode` window hanging past the
/// padding), or its taps inside the image (`False`, and the adaptive windows).
fn divisor(win: &Window2d, kind: PoolKind, oy: usize, ox: usize) -> usize {
    if kind == PoolKind::Avg {
        let taps = |axis: usize, o: usize| {
            let s = win.start(axis, o);
            let end =
                (s + win.kernel[axis] as isize).min((win.size[axis] + win.pad[axis]) as isize);
            (end - s) as usize
        };
        return taps(0, oy) * taps(1, ox);
    }
    let (y0, y1) = pool_range(win, kind, 0, oy);
    let (x0, x1) = pool_range(win, kind, 1, ox);
    (y1 - y0) * (x1 - x0)
}

/// Windows per pass of `max_whole`: one AVX-512 vector of f32.
const ROW: usize = 16;

/// Whether every window of max pooling is whole: no padding, no dilation, none hanging past
/// the image (`ceil_mode`), a column stride of 1 or 2, and a plane's indices fit a `u32`. The
/// MNIST CNN's 2×2 windows are.
fn whole_windows(win: &Window2d, kind: PoolKind) -> bool {
    let fits = |a: usize| {
        win.out[a] == 0 || (win.out[a] - 1) * win.stride[a] + win.kernel[a] <= win.size[a]
    };
    kind == PoolKind::Max
        && win.pad == [0, 0]
        && win.dilation == [1, 1]
        && matches!(win.stride[1], 1 | 2)
        && fits(0)
        && fits(1)
        && win.size[0] * win.size[1] <= u32::MAX as usize
}

/// Max pooling of one plane `img` `[h, w]` whose windows are all whole (`whole_windows`),
/// with column stride `SX`: `pool`'s first maximum (last NaN), with the loops turned round.
/// The taps are the outer loops and a row of `ROW` windows the inner one, so each step is
/// one operation on neighbouring windows and vectorises (`SX` a constant makes the strided
/// loads two vector loads and a shuffle); each window still sees its taps in row-major
/// order. The running maximum is the winning tap itself, NaN once one is seen, so it is also
/// the output. Window by window, a 2×2 window's four taps left the vector units idle: the
/// MNIST CNN's two poolings took ~2.6 ms of a 20 ms CPU step.
#[inline(always)]
fn max_whole<T: Real, const SX: usize>(
    img: &[T],
    win: &Window2d,
    dst: &mut [T],
    mut arg: Option<&mut [T]>,
) {
    let ([_, w], [kh, kw], sy, [oh, ow]) = (win.size, win.kernel, win.stride[0], win.out);
    for oy in 0..oh {
        for ox0 in (0..ow).step_by(ROW) {
            let m = ROW.min(ow - ox0);
            // The pixel of window ox0's tap t (row-major in the window).
            let pixel = |t: usize| (oy * sy + t / kw) * w + ox0 * SX + t % kw;
            let (mut best, mut at) = ([T::zero(); ROW], [0u32; ROW]);
            // A whole row of ROW windows when the last tap's run stays in the plane (the
            // windows past `m` read the next row's pixels and are dropped): a loop of a
            // constant length, all vector code. The short rows the MNIST planes have (14 and
            // 7 windows) would otherwise run entirely in the scalar remainder loop.
            match pixel(kh * kw - 1) + (ROW - 1) * SX < img.len() {
                true => max_taps::<T, SX>(img, [kh * kw, ROW], pixel, &mut best, &mut at),
                false => max_taps::<T, SX>(img, [kh * kw, m], pixel, &mut best, &mut at),
            }
            let o = oy * ow + ox0;
            dst[o..o + m].copy_from_slice(&best[..m]);
            if let Some(arg) = arg.as_deref_mut() {
                for (a, &i) in arg[o..o + m].iter_mut().zip(&at[..m]) {
                    *a = T::from_f64(i as f64);
                }
            }
        }
    }
}

/// `max_whole`'s taps over `m` windows whose tap `t` of the first reads `pixel(t)`.
#[inline(always)]
fn max_taps<T: Real, const SX: usize>(
    img: &[T],
    [taps, m]: [usize; 2],
    pixel: impl Fn(usize) -> usize,
    best: &mut [T; ROW],
    at: &mut [u32; ROW],
) {
    let (best, at) = (&mut best[..m], &mut at[..m]);
    for t in 0..taps {
        let x0 = pixel(t);
        let run = &img[x0..][..(m - 1) * SX + 1];
        for j in 0..m {
            let v = run[j * SX];
            // v > NaN is false: a NaN wins by `is_nan`, then stays.
            let better = (t == 0) | (v > best[j]) | v.is_nan();
            at[j] = if better { (x0 + j * SX) as u32 } else { at[j] };
            best[j] = if better { v } else { best[j] };
        }
    }
}

// x (N, C, H, W) -> out (N, C, OH, OW), and for max when `indices` the arg-max `y * W + x`
// of each window.
#[allow(clippy::type_complexity)]
pub(crate) fn pool<T: Real>(
    x: &[T],
    win: &Window2d,
    kind: PoolKind,
    indices: bool,
) -> Result<(Vec<T>, Option<Vec<T>>)> {
    let ([h, w], [oh, ow]) = (win.size, win.out);
    let indices = indices && kind.is_max();
    // Every output (and arg-max) is written below.
    let mut out = buffers::for_overwrite("pool2d", win.out_numel())?;
    let arg_len = if indices { out.len() } else { 0 };
    let mut arg = buffers::for_overwrite("pool2d", arg_len)?;
    // Each window's input rows and columns, worked out once rather than per window.
    let ys: Vec<_> = (0..oh).map(|o| pool_range(win, kind, 0, o)).collect();
    let xs: Vec<_> = (0..ow).map(|o| pool_range(win, kind, 1, o)).collect();
    let plane = |p: usize, dst: &mut [T], mut arg: Option<&mut [T]>| {
        let img = &x[p * h * w..][..h * w];
        for (oy, &(y0, y1)) in ys.iter().enumerate() {
            for (ox, &(x0, x1)) in xs.iter().enumerate() {
                let o = oy * ow + ox;
                if kind.is_max() {
                    // The first maximum in row-major order; once a NaN is seen, the last
                    // NaN (as in PyTorch, NaN wins). Without a branch on the values: which
                    // tap wins is a coin toss on real data, and the branch LLVM made of an
                    // `if` choosing the best value, mispredicted about once a window, ran
                    // the MNIST CNN's pooling ~10× slower. Only the index is chosen (a
                    // conditional move); `best` is a plain max, for comparing.
                    let (mut best, mut at, mut nan) = (T::NEG_INFINITY, y0 * w + x0, false);
                    for y in (y0..y1).step_by(win.dilation[0]) {
                        for xx in (x0..x1).step_by(win.dilation[1]) {
                            let v = img[y * w + xx];
                            let better = ((v > best) & !nan) | v.is_nan();
                            at = if better { y * w + xx } else { at };
                            nan |= v.is_nan();
                            best = best.max(v);
                        }
                    }
                    dst[o] = match nan | (best > T::NEG_INFINITY) {
                        true => img[at],
                        false => best, // an empty window, or every tap -inf
                    };
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
    if kind.is_max() && size > 0 {
        let whole = whole_windows(win, kind);
        let max_plane = |p: usize, dst: &mut [T], mut a: Option<&mut [T]>| {
            if !whole {
                return plane(p, dst, a);
            }
            let img = &x[p * h * w..][..h * w];
            vectorized(
                #[inline(always)]
                || match win.stride[1] {
                    1 => max_whole::<T, 1>(img, win, dst, a.as_deref_mut()),
                    _ => max_whole::<T, 2>(img, win, dst, a.as_deref_mut()),
                },
            )
        };
        let planes = out.par_chunks_mut(size).enumerate();
        match indices {
            true => planes
                .zip(arg.par_chunks_mut(size))
                .for_each(|((p, dst), a)| max_plane(p, dst, Some(a))),
            false => planes.for_each(|(p, dst)| max_plane(p, dst, None)),
        }
    } else {
        for_chunks(&mut out, size, |p, dst| plane(p, dst, None));
    }
    Ok((out, indices.then_some(arg)))
}

// g (N, C, OH, OW) -> dx (N, C, H, W): max sends each window's gradient to its arg-max; avg
// spreads it evenly over the window's taps. Per pixel, contributions add in (oy, ox) order.
pub(crate) fn pool_backward<T: Real>(
    g: &[T],
    arg: Option<&[T]>,
    win: &Window2d,
    kind: PoolKind,
) -> Result<Vec<T>> {
    let ([h, w], [oh, ow]) = (win.size, win.out);
    let mut dx = buffers::zeroed("pool2d_backward", win.image_numel())?;
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
