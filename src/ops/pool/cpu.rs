//! The CPU reference for pooling and its gradients: plain loops over one image plane at a
//! time, spread over cores. Generic over f32/f64.

use rayon::prelude::*;

use super::spec::PoolKind;
use crate::cpu::buffers;
use crate::cpu::walk::for_chunks;
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

// x (N, C, H, W) -> out (N, C, OH, OW), and for max the arg-max `y * W + x` of each window.
#[allow(clippy::type_complexity)]
pub(crate) fn pool<T: Real>(
    x: &[T],
    win: &Window2d,
    kind: PoolKind,
) -> Result<(Vec<T>, Option<Vec<T>>)> {
    let ([h, w], [oh, ow]) = (win.size, win.out);
    // Every output (and arg-max) is written below.
    let mut out = buffers::for_overwrite("pool2d", win.out_numel())?;
    let arg_len = if kind.is_max() { out.len() } else { 0 };
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
        out.par_chunks_mut(size)
            .zip(arg.par_chunks_mut(size))
            .enumerate()
            .for_each(|(p, (dst, a))| plane(p, dst, Some(a)));
    } else {
        for_chunks(&mut out, size, |p, dst| plane(p, dst, None));
    }
    Ok((out, kind.is_max().then_some(arg)))
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
