//! Sliding-window geometry shared by convolution and pooling: the checks on shapes, kernel,
//! stride, padding and dilation, with all size arithmetic checked, and how a convolution over
//! a large batch is split so its im2col columns stay within a memory budget.

use super::spec::Window2d;
use super::Conv2dOptions;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::shape::checked_numel;
use crate::tensor::Tensor;

/// `[n, c, h, w]` of a 4-D input, or an error naming the op.
pub(super) fn image_dims(op: &'static str, what: &str, t: &Tensor) -> Result<[usize; 4]> {
    match *t.shape() {
        [n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(Error::invalid(
            op,
            format!(
                "{what} must be 4-D [N, C, H, W], found shape {:?} (one image: `unsqueeze(0)`)",
                t.shape()
            ),
        )),
    }
}

/// The windows of `kernel` over an `[n, c, h, w]` image, or an error naming the values. All
/// size arithmetic is checked: a padding, stride or dilation near `usize::MAX` is an error
/// naming it, never a wrapped size.
pub(crate) fn windows(
    op: &'static str,
    [n, c, h, w]: [usize; 4],
    kernel: [usize; 2],
    mut stride: [usize; 2],
    pad: [usize; 2],
    dilation: [usize; 2],
) -> Result<Window2d> {
    let mut out = [0; 2];
    for a in 0..2 {
        let axis = ["height", "width"][a];
        if stride[a] == 0 || dilation[a] == 0 || kernel[a] == 0 {
            return Err(Error::invalid(
                op,
                format!(
                    "kernel {kernel:?}, stride {stride:?} and dilation {dilation:?} must be at \
                     least 1"
                ),
            ));
        }
        let size = [h, w][a];
        let reach = dilation[a]
            .checked_mul(kernel[a] - 1)
            .and_then(|r| r.checked_add(1))
            .ok_or_else(|| {
                Error::invalid(
                    op,
                    format!(
                        "kernel {kernel:?} with dilation {dilation:?} spans more than {} elements",
                        usize::MAX
                    ),
                )
            })?;
        let padded = pad[a]
            .checked_mul(2)
            .and_then(|p| p.checked_add(size))
            .ok_or_else(|| {
                Error::invalid(
                    op,
                    format!("padding {pad:?} is too large: the padded {axis} overflows usize"),
                )
            })?;
        if reach > padded {
            return Err(Error::invalid(
                op,
                format!(
                    "kernel {axis} {reach} (size {}, dilation {}) is larger than the padded \
                     input {axis} {padded} ({size} + 2 × padding {})",
                    kernel[a], dilation[a], pad[a]
                ),
            ));
        }
        out[a] = (padded - reach) / stride[a] + 1;
        if out[a] == 1 {
            // One window: the stride is never taken, so any stride gives this geometry
            // (and a huge one need not fit the GPU's 32-bit parameters).
            stride[a] = 1;
        }
    }
    let win = Window2d {
        n,
        c,
        size: [h, w],
        kernel,
        stride,
        pad,
        dilation,
        out,
    };
    // Every buffer the geometry implies (image, columns, output) must have a countable size.
    let cols = [n, c, kernel[0], kernel[1], out[0], out[1]];
    if checked_numel(op, &cols).is_err() {
        return Err(Error::invalid(
            op,
            format!(
                "input [{n}, {c}, {h}, {w}] with kernel {kernel:?}, stride {stride:?}, padding \
                 {pad:?} and dilation {dilation:?} gives {out:?} windows, too many elements to \
                 hold"
            ),
        ));
    }
    Ok(win)
}

/// The `groups` checks shared by the convolutions, for `c` input channels.
pub(super) fn check_channels(op: &'static str, c: usize, groups: usize) -> Result<()> {
    if groups == 0 {
        return Err(Error::invalid(op, "groups must be at least 1"));
    }
    if !c.is_multiple_of(groups) {
        return Err(Error::invalid(
            op,
            format!("groups {groups} must divide the input channels {c}"),
        ));
    }
    Ok(())
}

pub(super) fn check_bias(op: &'static str, bias: Option<&Tensor>, channels: usize) -> Result<()> {
    match bias {
        Some(b) if b.shape() != [channels] => Err(Error::ShapeMismatch {
            op,
            lhs: vec![channels],
            rhs: b.shape().to_vec(),
            why: format!("differ: the bias needs one value per output channel ({channels})"),
        }),
        _ => Ok(()),
    }
}

/// The output size `[oh, ow]` of a transposed conv over an input of `shape` `[n, c, h, w]`:
/// `(in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1` per axis, with
/// every step checked.
pub(super) fn transposed_size(
    op: &'static str,
    shape: &[usize],
    [kh, kw]: [usize; 2],
    o: &Conv2dOptions,
    out_c: usize,
) -> Result<[usize; 2]> {
    let (h, w) = (shape[2], shape[3]);
    let mut size = [0; 2];
    for a in 0..2 {
        let (s, d, k, p, op_) = (
            o.stride[a],
            o.dilation[a],
            [kh, kw][a],
            o.padding[a],
            o.output_padding[a],
        );
        if s == 0 || d == 0 || k == 0 {
            return Err(Error::invalid(
                op,
                format!(
                    "kernel [{kh}, {kw}], stride {:?} and dilation {:?} must be at least 1",
                    o.stride, o.dilation
                ),
            ));
        }
        if op_ >= s.max(d) {
            return Err(Error::invalid(
                op,
                format!(
                    "output_padding {:?} must be smaller than stride {:?} or dilation {:?}",
                    o.output_padding, o.stride, o.dilation
                ),
            ));
        }
        // (in - 1) s + d (k - 1) + output_padding + 1, less the padding on both sides
        let full = [h, w][a].checked_sub(1).map(|last| {
            last.checked_mul(s)
                .zip(d.checked_mul(k - 1))
                .and_then(|(a, b)| a.checked_add(b)?.checked_add(op_ + 1))
        });
        let Some(full) = full.map(|f| {
            f.ok_or_else(|| {
                Error::invalid(
                    op,
                    format!(
                        "stride {:?}, dilation {:?} and kernel [{kh}, {kw}] over input {:?} \
                         give an output size that overflows usize",
                        o.stride, o.dilation, shape
                    ),
                )
            })
        }) else {
            return Err(Error::invalid(
                op,
                format!("input {:?} is empty along axis {}", shape, a + 2),
            ));
        };
        size[a] = match full? {
            f if f / 2 > p || (f / 2 == p && f % 2 == 1) => f - 2 * p,
            _ => {
                return Err(Error::invalid(
                    op,
                    format!(
                        "input {:?} with padding {:?} leaves no output along axis {}",
                        shape,
                        o.padding,
                        a + 2
                    ),
                ))
            }
        };
    }
    if checked_numel(op, &[shape[0], out_c, size[0], size[1]]).is_err() {
        return Err(Error::invalid(
            op,
            format!(
                "input {:?} with stride {:?}, padding {:?} and dilation {:?} gives an output \
                 of {size:?} pixels, too many elements to hold",
                shape, o.stride, o.padding, o.dilation
            ),
        ));
    }
    Ok(size)
}

/// Most bytes of im2col columns one convolution builds at once: a larger batch runs in chunks
/// of whole images, so a model runs at any batch whose activations fit (the MNIST CNN's second
/// conv needs 225 MB of columns at batch 1,000). Under llvmpipe's 128 MiB binding limit, and
/// far past the size where a bigger GEMM still pays.
const COLS_BUDGET: u64 = 96 << 20;

/// Images per chunk when `n` images of `per_image` column elements each exceed the budget on
/// `device` (or the largest tensor it can bind); `None` when the whole batch fits.
pub(super) fn batch_chunk(device: &Device, n: usize, per_image: usize) -> Option<usize> {
    let limit = device
        .gpu_context()
        .map_or(COLS_BUDGET, |c| c.max_binding_bytes().min(COLS_BUDGET));
    let bytes = (per_image as u64).saturating_mul(4).max(1);
    if n <= 1 || bytes.saturating_mul(n as u64) <= limit {
        return None;
    }
    Some(((limit / bytes) as usize).clamp(1, n))
}

impl Tensor {
    /// `f` over chunks of `chunk` images of the batch `self` `[n, ..]`, joined along the batch
    /// (each chunk a view; autograd sees the narrows and the join).
    pub(super) fn in_batch_chunks(
        &self,
        chunk: usize,
        f: impl Fn(&Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let n = self.shape()[0];
        let parts = (0..n)
            .step_by(chunk.max(1))
            .map(|s| f(&self.narrow(0, s, chunk.min(n - s))?))
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&parts.iter().collect::<Vec<_>>(), 0)
    }
}
