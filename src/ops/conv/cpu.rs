//! The CPU convolution and the im2col/col2im it is built from, in Caffe's layout: columns
//! `[c * kh * kw, windows]`, one row per tap, so both are whole-row copies and adds.
//!
//! conv2d runs over blocks of whole images sized to stay in a core's L2 cache: unfold the
//! block, one GEMM per group, then bias and activation while the product is copied into
//! `[n, o, oh, ow]`. Unfolding the whole batch first (what `unfold` and `matmul` compose to)
//! wrote the MNIST CNN's second-layer columns, 14.5 MB, to memory and read them back three
//! times; blocked, they stay in cache, and the backward pass unfolds again rather than keep
//! them. The weight gradient is one product per block (k = the block's windows) and the
//! blocks' partial sums are added in block order, so results do not depend on the thread
//! count. Generic over f32/f64 (gradcheck differentiates in f64).

use std::ops::Range;

use rayon::prelude::*;

use super::spec::{ConvSpec, Window2d};
use crate::cpu::buffers;
use crate::cpu::walk::{for_chunks, PAR_THRESHOLD};
use crate::error::Result;
use crate::ops::matmul::cpu::{activate, gemm_into};
use crate::ops::matmul::spec::MatOperand;
use crate::real::Real;

/// Scratch bytes one block of images may use (columns and products): about a core's L2.
/// The weight gradient's k is the block's windows, and small k costs GEMM speed (one
/// MNIST-layer-2 image: 51 GFLOP/s on one AVX-512 core; two or more: 75-100).
const BLOCK_BYTES: usize = 1 << 20;

/// Taps per group from which conv2d stores its product `[windows, o]` rather than
/// `[o, windows]`. `gemm` ran the first ~1.25× faster on the MNIST CNN's second layer (288
/// taps), more than transposing it into place costs; on the first (9 taps), less.
const DEEP: usize = 64;

/// The windows `o` (a range of `0..out`) whose tap `k` lands inside the image along `axis`,
/// `0 <= o * stride + k * dilation - pad < size`; the others read padding. Worked out per
/// tap rather than by copying the image padded, whose size a large padding and stride could
/// make far larger than the columns (`windows()` bounds the columns, not the padded image).
fn inside(win: &Window2d, axis: usize, k: usize) -> Range<usize> {
    let (s, pad, out) = (win.stride[axis], win.pad[axis], win.out[axis]);
    let shift = k * win.dilation[axis]; // o * s >= pad - shift and o * s < size + pad - shift
    let lo = pad.saturating_sub(shift).div_ceil(s).min(out);
    let hi = (win.size[axis] + pad).saturating_sub(shift).div_ceil(s);
    lo..hi.clamp(lo, out)
}

/// Where tap `k` of window `o` lands along `axis`, for `o` in `inside(win, axis, k)`.
fn at(win: &Window2d, axis: usize, o: usize, k: usize) -> usize {
    o * win.stride[axis] + k * win.dilation[axis] - win.pad[axis]
}

/// Images `first..first + count` of `x` unfolded into `dst` `[c * kh * kw, count * oh * ow]`:
/// row `(ci * kh + ki) * kw + kj` holds that tap of every window, image after image, zero
/// where it falls in the padding. A row of windows inside the image reads one slice of an
/// image row (a copy when the stride is 1). The taps' rows are spread over the threads when
/// `parallel` (a caller that is itself on one thread of several passes false).
fn unfold_into<T: Real>(
    x: &[T],
    win: &Window2d,
    [first, count]: [usize; 2],
    dst: &mut [T],
    parallel: bool,
) {
    let (c, [h, w], [kh, kw], [oh, ow]) = (win.c, win.size, win.kernel, win.out);
    let l = oh * ow;
    if dst.is_empty() {
        return;
    }
    let tap_row = |t: usize, taps: &mut [T]| {
        let (ci, ki, kj) = (t / (kh * kw), t / kw % kh, t % kw);
        let (ys, xs) = (inside(win, 0, ki), inside(win, 1, kj));
        for (i, windows) in taps.chunks_exact_mut(l).enumerate() {
            let plane = &x[((first + i) * c + ci) * h * w..][..h * w];
            for (oy, out) in windows.chunks_exact_mut(ow).enumerate() {
                if !ys.contains(&oy) || xs.is_empty() {
                    out.fill(T::zero()); // the tap reads padding here
                    continue;
                }
                let row = &plane[at(win, 0, oy, ki) * w..][..w];
                out[..xs.start].fill(T::zero());
                out[xs.end..].fill(T::zero());
                let x0 = at(win, 1, xs.start, kj);
                match win.stride[1] {
                    1 => out[xs.clone()].copy_from_slice(&row[x0..x0 + xs.len()]),
                    s => out[xs.clone()]
                        .iter_mut()
                        .enumerate()
                        .for_each(|(j, v)| *v = row[x0 + j * s]),
                }
            }
        }
    };
    match parallel && dst.len() >= PAR_THRESHOLD {
        true => dst
            .par_chunks_exact_mut(count * l)
            .enumerate()
            .for_each(|(t, taps)| tap_row(t, taps)),
        false => dst
            .chunks_exact_mut(count * l)
            .enumerate()
            .for_each(|(t, taps)| tap_row(t, taps)),
    }
}

// x (N, C, H, W) -> cols (N, C*KH*KW, OH*OW)
pub(crate) fn unfold<T: Real>(x: &[T], win: &Window2d) -> Result<Vec<T>> {
    // Every entry is written, padding included.
    let mut out = buffers::for_overwrite("unfold2d", win.cols_numel())?;
    let per_image = win.cols_numel() / win.n.max(1);
    // In parallel over images, and over taps too when there are fewer images than threads.
    let few = win.n < rayon::current_num_threads();
    for_chunks(&mut out, per_image, |n, dst| {
        unfold_into(x, win, [n, 1], dst, few)
    });
    Ok(out)
}

/// Plane `ci` of one image, `out` `[h, w]`, from its columns: tap row `t` of `cols` holds
/// the image's windows at `t * stride + first..`. Tap by tap ((ki, kj) ascending, as the GPU
/// kernel adds), each row of windows inside the image is added to the image row it read.
fn fold_plane<T: Real>(
    cols: &[T],
    win: &Window2d,
    ci: usize,
    [first, stride]: [usize; 2],
    out: &mut [T],
) {
    let (w, [kh, kw], [oh, ow]) = (win.size[1], win.kernel, win.out);
    out.fill(T::zero());
    for ki in 0..kh {
        for kj in 0..kw {
            let t = (ci * kh + ki) * kw + kj;
            let windows = &cols[t * stride + first..][..oh * ow];
            let xs = inside(win, 1, kj);
            if xs.is_empty() {
                continue;
            }
            let x0 = at(win, 1, xs.start, kj);
            for oy in inside(win, 0, ki) {
                let src = &windows[oy * ow..][xs.clone()];
                let row = &mut out[at(win, 0, oy, ki) * w..][..w];
                match win.stride[1] {
                    1 => row[x0..x0 + src.len()]
                        .iter_mut()
                        .zip(src)
                        .for_each(|(a, &v)| *a = *a + v),
                    s => src
                        .iter()
                        .enumerate()
                        .for_each(|(j, &v)| row[x0 + j * s] = row[x0 + j * s] + v),
                }
            }
        }
    }
}

// cols (N, C*KH*KW, OH*OW) -> x (N, C, H, W): each pixel sums the entries that read it.
pub(crate) fn fold<T: Real>(cols: &[T], win: &Window2d) -> Result<Vec<T>> {
    let (c, [h, w], l) = (win.c, win.size, win.out[0] * win.out[1]);
    let per_image = c * win.kernel[0] * win.kernel[1] * l;
    let mut out = buffers::for_overwrite("fold2d", win.image_numel())?;
    // One task per image plane.
    for_chunks(&mut out, h * w, |plane, dst| {
        let (n, ci) = (plane / c, plane % c);
        fold_plane(&cols[n * per_image..][..per_image], win, ci, [0, l], dst);
    });
    Ok(out)
}

/// Images per block when each needs `per_image` scratch elements of `T`.
fn images_per_block<T>(s: &ConvSpec, per_image: usize) -> usize {
    let bytes = per_image.saturating_mul(size_of::<T>()).max(1);
    (BLOCK_BYTES / bytes).clamp(1, s.win.n.max(1))
}

/// Runs `f(block, job, scratch, gemm_threads)` for each block's `job`. With a block per
/// thread or more, one worker per thread takes every `workers`-th block and runs each GEMM
/// on its own thread; with fewer, one worker runs them in turn, each GEMM split over the
/// threads. Each worker has two scratch buffers of `sizes`, all taken from the pool before
/// any work starts, so how many a call takes does not depend on how the threads interleave
/// (a warm training step takes nothing new from the pool: `tests/cpu_step.rs`).
fn in_workers<T: Real, J: Send>(
    jobs: Vec<J>,
    sizes: [usize; 2],
    op: &'static str,
    f: impl Fn(usize, J, &mut [Vec<T>; 2], usize) -> Result<()> + Sync,
) -> Result<()> {
    let threads = rayon::current_num_threads();
    let workers = if jobs.len() >= threads { threads } else { 1 };
    let gemm_threads = if workers == 1 { threads } else { 1 };
    let mut scratch = (0..workers)
        .map(|_| {
            let a = buffers::for_overwrite(op, sizes[0])?;
            Ok([a, buffers::for_overwrite(op, sizes[1])?])
        })
        .collect::<Result<Vec<[Vec<T>; 2]>>>()?;
    let mut dealt: Vec<Vec<(usize, J)>> = (0..workers).map(|_| Vec::new()).collect();
    for (b, job) in jobs.into_iter().enumerate() {
        dealt[b % workers].push((b, job));
    }
    let run = |(s, jobs): (&mut [Vec<T>; 2], Vec<(usize, J)>)| {
        jobs.into_iter()
            .try_for_each(|(b, job)| f(b, job, s, gemm_threads))
    };
    let result = match workers {
        1 => scratch.iter_mut().zip(dealt).try_for_each(run),
        _ => scratch.par_iter_mut().zip(dealt).try_for_each(run),
    };
    for [a, b] in scratch {
        buffers::give_back(a);
        buffers::give_back(b);
    }
    result
}

/// `out` split into `blocks` chunks of `size` (empty chunks when `size` is 0).
fn split<T>(out: &mut [T], size: usize, blocks: usize) -> Vec<&mut [T]> {
    match size {
        0 => (0..blocks).map(|_| &mut [][..]).collect(),
        _ => out.chunks_mut(size).collect(),
    }
}

// x (N, C, H, W), w (O, C/G, KH, KW), bias (O) -> act(conv) (N, O, OH, OW)
pub(crate) fn conv2d<T: Real>(
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    s: &ConvSpec,
) -> Result<Vec<T>> {
    let (n, l, o, g) = (s.win.n, s.windows(), s.out_c, s.groups);
    let (t, og) = (s.group_taps(), s.group_out());
    let taps = t * g;
    let mut out = buffers::for_overwrite("conv2d", n * o * l)?;
    if out.is_empty() {
        return Ok(out);
    }
    let per = images_per_block::<T>(s, (taps + o) * l);
    let jobs = split(&mut out, per * o * l, n.div_ceil(per));
    let sizes = [taps * per * l, o * per * l]; // columns, product
    in_workers(jobs, sizes, "conv2d", |b, dst, [cols, y], threads| {
        let count = (n - b * per).min(per);
        let cl = count * l; // the block's windows
        let (cols, y) = (&mut cols[..taps * cl], &mut y[..o * cl]);
        // cols [taps, cl]: the block unfolded
        unfold_into(x, &s.win, [b * per, count], cols, threads > 1);
        // y = colsᵀ [cl, t] · w[group]ᵀ [t, og] per group, stored [cl, o] when deep
        // (then transposed into place), else [o, cl] (then copied row by row).
        let deep = t >= DEEP;
        for gi in 0..g {
            let a = MatOperand::new(gi * t * cl, 0, 1, cl);
            let wt = MatOperand::new(gi * og * t, 0, 1, t);
            let (c, strides) = match deep {
                true => (&mut y[gi * og..], [o, 1]),
                false => (&mut y[gi * og * cl..], [1, cl]),
            };
            gemm_into(
                c,
                strides,
                (cols, &a),
                (w, &wt),
                [cl, og, t],
                false,
                threads,
            )?;
        }
        // y + bias -> dst [count, o, l]
        for (i, image) in dst.chunks_exact_mut(o * l).enumerate() {
            if deep {
                transpose_add(&y[i * l * o..][..l * o], bias, [l, o], image);
                continue;
            }
            for (oc, plane) in image.chunks_exact_mut(l).enumerate() {
                let src = &y[oc * cl + i * l..][..l];
                let b = bias.map_or(T::zero(), |b| b[oc]);
                plane.iter_mut().zip(src).for_each(|(d, &v)| *d = v + b);
            }
        }
        activate(dst, s.act);
        Ok(())
    })?;
    Ok(out)
}

/// `dst` `[cols, rows]` = `src` `[rows, cols]` transposed, plus `bias[c]` along row `c` of
/// `dst`. Through 8×8 tiles (element by element, reading down the columns, took 1.5× as
/// long on the MNIST CNN's second layer).
fn transpose_add<T: Real>(src: &[T], bias: Option<&[T]>, [rows, cols]: [usize; 2], dst: &mut [T]) {
    const B: usize = 8;
    let bias_of = |c: usize| bias.map_or(T::zero(), |b| b[c]);
    let (rb, cb) = (rows / B * B, cols / B * B);
    for r0 in (0..rb).step_by(B) {
        for c0 in (0..cb).step_by(B) {
            let mut tile = [[T::zero(); B]; B];
            for (i, row) in tile.iter_mut().enumerate() {
                row.copy_from_slice(&src[(r0 + i) * cols + c0..][..B]);
            }
            for j in 0..B {
                let b = bias_of(c0 + j);
                let out = &mut dst[(c0 + j) * rows + r0..][..B];
                for (o, row) in out.iter_mut().zip(&tile) {
                    *o = row[j] + b;
                }
            }
        }
    }
    // The ragged edges: rows past the last whole tile, and columns past it.
    for c in 0..cols {
        let b = bias_of(c);
        let first = if c < cb { rb } else { 0 };
        for r in first..rows {
            dst[c * rows + r] = src[r * cols + c] + b;
        }
    }
}

// x (N, C, H, W), w (O, C/G, KH, KW), g (N, O, OH, OW) -> dx (N, C, H, W) if asked,
// dw (O, C/G, KH, KW): the gradients of the conv without its bias and activation.
pub(crate) fn conv2d_backward<T: Real>(
    x: &[T],
    w: &[T],
    g: &[T],
    s: &ConvSpec,
    input_grad: bool,
) -> Result<(Option<Vec<T>>, Vec<T>)> {
    let (n, l, o, groups) = (s.win.n, s.windows(), s.out_c, s.groups);
    let (t, og) = (s.group_taps(), s.group_out());
    let taps = t * groups;
    let (hw, image) = (
        s.win.size[0] * s.win.size[1],
        s.win.image_numel() / n.max(1),
    );
    if n * o == 0 {
        // No output, so no gradient: zeros.
        let dx = input_grad.then(|| buffers::zeroed("conv2d_backward", n * image));
        return Ok((dx.transpose()?, buffers::zeroed("conv2d_backward", o * t)?));
    }
    let per = images_per_block::<T>(s, (taps + o) * l);
    let blocks = n.div_ceil(per);
    let mut dx = match input_grad {
        true => Some(buffers::for_overwrite("conv2d_backward", n * image)?),
        false => None,
    };
    // Each block's weight gradient, summed in block order at the end.
    let mut partials = buffers::for_overwrite("conv2d_backward", blocks * o * t)?;
    let dx_parts: Vec<Option<&mut [T]>> = match dx.as_mut() {
        Some(dx) => split(dx, per * image, blocks)
            .into_iter()
            .map(Some)
            .collect(),
        None => (0..blocks).map(|_| None).collect(),
    };
    let jobs: Vec<_> = dx_parts
        .into_iter()
        .zip(split(&mut partials, o * t, blocks))
        .collect();
    let sizes = [taps * per * l, o * per * l]; // columns (then their gradient), gradient
    in_workers(
        jobs,
        sizes,
        "conv2d_backward",
        |b, (dx, dw), [cols, gb], threads| {
            let (first, count) = (b * per, (n - b * per).min(per));
            let cl = count * l; // the block's windows
            let (cols, gb) = (&mut cols[..taps * cl], &mut gb[..o * cl]);
            // cols [taps, cl]: the block unfolded
            unfold_into(x, &s.win, [first, count], cols, threads > 1);
            // g [count, o, l] -> gb [o, cl]: whole rows, so both products read the block's
            // gradient as one matrix.
            let block = &g[first * o * l..][..count * o * l];
            for (i, image) in block.chunks_exact(o * l).enumerate() {
                for (oc, plane) in image.chunks_exact(l).enumerate() {
                    gb[oc * cl + i * l..][..l].copy_from_slice(plane);
                }
            }
            // dw[group] = gb[group] [og, cl] · cols[group]ᵀ [cl, t], k = the block's windows
            for gi in 0..groups {
                let a = MatOperand::new(gi * og * cl, 0, cl, 1);
                let c = MatOperand::new(gi * t * cl, 0, 1, cl);
                let dst = &mut dw[gi * og * t..];
                gemm_into(
                    dst,
                    [t, 1],
                    (gb, &a),
                    (cols, &c),
                    [og, t, cl],
                    false,
                    threads,
                )?;
            }
            let Some(dx) = dx else {
                return Ok(());
            };
            // dcols[group] = w[group]ᵀ [t, og] · gb[group] [og, cl], [taps, cl] as unfold wrote
            // them (into the columns' buffer: they are no longer needed), then summed into the
            // images' pixels.
            let dcols = cols;
            for gi in 0..groups {
                let wt = MatOperand::new(gi * og * t, 0, 1, t);
                let a = MatOperand::new(gi * og * cl, 0, cl, 1);
                let dst = &mut dcols[gi * t * cl..];
                gemm_into(
                    dst,
                    [cl, 1],
                    (w, &wt),
                    (gb, &a),
                    [t, cl, og],
                    false,
                    threads,
                )?;
            }
            if hw > 0 {
                let fold = |(p, plane): (usize, &mut [T])| {
                    let (i, ci) = (p / s.win.c, p % s.win.c);
                    fold_plane(dcols, &s.win, ci, [i * l, cl], plane);
                };
                match threads > 1 && dx.len() >= PAR_THRESHOLD {
                    true => dx.par_chunks_exact_mut(hw).enumerate().for_each(fold),
                    false => dx.chunks_exact_mut(hw).enumerate().for_each(fold),
                }
            }
            Ok(())
        },
    )?;
    let mut dw = buffers::zeroed("conv2d_backward", o * t)?;
    if o * t > 0 {
        for part in partials.chunks_exact(o * t) {
            dw.iter_mut().zip(part).for_each(|(d, p)| *d = *d + *p);
        }
    }
    buffers::give_back(partials);
    Ok((dx, dw))
}
