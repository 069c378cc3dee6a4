//! The CPU reference for im2col/col2im (conv2d runs them around a GEMM): plain loops over one
//! image plane at a time, spread over cores. Generic over f32/f64 (gradcheck differentiates
//! in f64).

use super::spec::Window2d;
use crate::cpu::buffers;
use crate::cpu::walk::for_chunks;
use crate::error::Result;
use crate::real::Real;

/// Tap `k` of window `o` along `axis`, if it lands inside the image.
fn tap(win: &Window2d, axis: usize, o: usize, k: usize) -> Option<usize> {
    let p = win.start(axis, o) + (k * win.dilation[axis]) as isize;
    (p >= 0 && (p as usize) < win.size[axis]).then_some(p as usize)
}

// x (N, C, H, W) -> cols (N, C*KH*KW, OH*OW)
pub(crate) fn unfold<T: Real>(x: &[T], win: &Window2d) -> Result<Vec<T>> {
    let (c, [h, w], [kh, kw], [oh, ow]) = (win.c, win.size, win.kernel, win.out);
    let l = oh * ow;
    let mut out = buffers::zeroed("unfold2d", win.cols_numel())?;
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
pub(crate) fn fold<T: Real>(cols: &[T], win: &Window2d) -> Result<Vec<T>> {
    let ([h, w], [kh, kw], [oh, ow]) = (win.size, win.kernel, win.out);
    let l = oh * ow;
    let mut out = buffers::zeroed("fold2d", win.image_numel())?;
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
