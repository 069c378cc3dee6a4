//! 2-D pooling: max (gradient routed to each window's arg-max), average (padding counted or
//! not), adaptive average and adaptive max, each one kernel forward and one backward on both
//! backends (`shaders/pool.wgsl`, `cpu.rs`).

pub(crate) mod cpu;
pub(crate) mod gpu;
pub(crate) mod pool1d;
pub(crate) mod spec;

use super::conv::geometry::windows;
use crate::autograd::{is_grad_enabled, record, untracked, BackOp};
use crate::error::{Error, Result};
use crate::ops::conv::spec::Window2d;
use crate::tensor::Tensor;
use spec::PoolKind;

/// Max-pool arg-maxes are f32 plane indices, exact up to 2^24.
const MAX_PLANE: usize = 1 << 24;

/// Kernel, stride and padding of a 2-D pooling window (pairs are `[h, w]`), and PyTorch's
/// `ceil_mode` and `count_include_pad`. The stride defaults to the kernel, as in PyTorch.
///
/// ```
/// use ferrograd::{Device, Pool2dOptions, Tensor};
/// let x = Tensor::arange(0.0, 16.0, 1.0, &Device::cpu())?.reshape(&[1, 1, 4, 4])?;
/// let y = x.max_pool2d(&Pool2dOptions::new(2))?;
/// assert_eq!(y.to_vec()?, vec![5.0, 7.0, 13.0, 15.0]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dOptions {
    /// Window size, `[h, w]`.
    pub kernel: [usize; 2],
    /// Step between windows, `[h, w]` (default: the kernel).
    pub stride: [usize; 2],
    /// Implicit padding on each side: -inf for max pooling, zeros for average (counted in
    /// the mean unless `count_include_pad` is false). At most half the kernel.
    pub padding: [usize; 2],
    /// Spacing between the taps of a max-pooling window, `[h, w]` (default `[1, 1]`; PyTorch
    /// has no dilated average pooling, nor does this).
    pub dilation: [usize; 2],
    /// Output sizes rounded up, not down: a last, partial window where it would start inside
    /// the image or its left padding (default false).
    pub ceil_mode: bool,
    /// Average pooling: divide by the taps within the padded input (true, the default), or
    /// by those inside the image only.
    pub count_include_pad: bool,
}

impl Pool2dOptions {
    /// A `kernel × kernel` window moving by `kernel`, no padding.
    pub fn new(kernel: usize) -> Self {
        Pool2dOptions {
            kernel: [kernel, kernel],
            stride: [kernel, kernel],
            padding: [0, 0],
            dilation: [1, 1],
            ceil_mode: false,
            count_include_pad: true,
        }
    }
    /// Sets the stride of both axes to `s`.
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = [s, s];
        self
    }
    /// Sets the padding of both axes to `p`.
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = [p, p];
        self
    }
    /// Sets the dilation of both axes (max pooling): taps `d` apart.
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = [d, d];
        self
    }
    /// Sets `ceil_mode`.
    pub fn ceil_mode(mut self, on: bool) -> Self {
        self.ceil_mode = on;
        self
    }
    /// Sets `count_include_pad` (average pooling).
    pub fn count_include_pad(mut self, on: bool) -> Self {
        self.count_include_pad = on;
        self
    }
}

fn pool_dims(op: &'static str, x: &Tensor) -> Result<[usize; 4]> {
    match *x.shape() {
        [n, c, h, w] if h > 0 && w > 0 => Ok([n, c, h, w]),
        _ => Err(Error::invalid(
            op,
            format!(
                "input must be 4-D [N, C, H, W] with H, W > 0, found shape {:?}",
                x.shape()
            ),
        )),
    }
}

impl Tensor {
    /// Max pooling over `[n, c, h, w]`; padding never wins a window. The gradient goes to
    /// each window's first maximum (row-major), as in PyTorch.
    ///
    /// # Errors
    /// `InvalidArgument` for a bad geometry, and for a dilated window whose taps all fall in
    /// the padding (PyTorch returns -inf there).
    pub fn max_pool2d(&self, options: &Pool2dOptions) -> Result<Tensor> {
        let indices = self.gradient_follows();
        self.max_pool2d_impl(options, indices)
            .map(|(y, _)| y)
            .map_err(|e| e.in_op("max_pool2d"))
    }

    /// Max pooling and, per output, the index `y * w + x` of the maximum within its plane
    /// (as f32; PyTorch's `return_indices=True`).
    pub fn max_pool2d_with_indices(&self, options: &Pool2dOptions) -> Result<(Tensor, Tensor)> {
        match self.max_pool2d_impl(options, true) {
            Ok((out, Some(arg))) => Ok((out, arg)),
            Ok((_, None)) => Err(Error::invalid(
                "max_pool2d",
                "the backend returned no arg-max",
            )),
            Err(e) => Err(e.in_op("max_pool2d")),
        }
    }

    /// Whether a gradient will flow back through an op on `self`: only then does max pooling
    /// keep its arg-max (an `f32` per output; inference needs none, as in PyTorch).
    fn gradient_follows(&self) -> bool {
        is_grad_enabled() && self.tracks_grad()
    }

    fn max_pool2d_impl(
        &self,
        options: &Pool2dOptions,
        indices: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let win = self.pool_windows("max_pool2d", options)?;
        if win.size[0]
            .checked_mul(win.size[1])
            .is_none_or(|p| p > MAX_PLANE)
        {
            return Err(Error::invalid(
                "max_pool2d",
                format!(
                    "planes of {:?} pixels exceed 2^24, past which f32 indices are inexact",
                    win.size
                ),
            ));
        }
        self.pool(&win, PoolKind::Max, indices)
    }

    /// Average pooling over `[n, c, h, w]`; padding counts as zeros in each window's mean
    /// (PyTorch's default `count_include_pad=True`) unless the options say otherwise.
    pub fn avg_pool2d(&self, options: &Pool2dOptions) -> Result<Tensor> {
        self.avg_pool2d_impl(options)
            .map_err(|e| e.in_op("avg_pool2d"))
    }

    fn avg_pool2d_impl(&self, options: &Pool2dOptions) -> Result<Tensor> {
        let win = self.pool_windows("avg_pool2d", options)?;
        let kind = match options.count_include_pad {
            true => PoolKind::Avg,
            false => PoolKind::AvgExcludePad,
        };
        Ok(self.pool(&win, kind, false)?.0)
    }

    /// Average pooling to a fixed `[oh, ow]` whatever the input size: window `i` along an axis
    /// of `size` covers `floor(i * size / oh) .. ceil((i + 1) * size / oh)`.
    pub fn adaptive_avg_pool2d(&self, output_size: [usize; 2]) -> Result<Tensor> {
        self.adaptive_avg_pool2d_impl(output_size)
            .map_err(|e| e.in_op("adaptive_avg_pool2d"))
    }

    fn adaptive_avg_pool2d_impl(&self, output_size: [usize; 2]) -> Result<Tensor> {
        let win = self.adaptive_windows("adaptive_avg_pool2d", output_size)?;
        Ok(self.pool(&win, PoolKind::AdaptiveAvg, false)?.0)
    }

    /// The geometry of an adaptive pooling to `output_size`.
    fn adaptive_windows(&self, op: &'static str, output_size: [usize; 2]) -> Result<Window2d> {
        let [n, c, h, w] = pool_dims(op, self)?;
        if output_size.contains(&0) {
            return Err(Error::invalid(
                op,
                format!("output size {output_size:?} must be at least 1 along each axis"),
            ));
        }
        let win = Window2d {
            n,
            c,
            size: [h, w],
            kernel: [1, 1], // unused: adaptive windows come from the sizes
            stride: [1, 1],
            pad: [0, 0],
            dilation: [1, 1],
            out: output_size,
        };
        Ok(win)
    }

    /// Max pooling to a fixed `[oh, ow]` (`torch.nn.functional.adaptive_max_pool2d`), over
    /// [`Tensor::adaptive_avg_pool2d`]'s windows; the gradient goes to each window's first
    /// maximum.
    ///
    /// ```
    /// use ferrograd::{Device, Tensor};
    /// let x = Tensor::arange(0.0, 15.0, 1.0, &Device::cpu())?.reshape(&[1, 1, 3, 5])?;
    /// let y = x.adaptive_max_pool2d([2, 2])?; // rows 0..2, 1..3; columns 0..3, 2..5
    /// assert_eq!(y.to_vec()?, vec![7.0, 9.0, 12.0, 14.0]);
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub fn adaptive_max_pool2d(&self, output_size: [usize; 2]) -> Result<Tensor> {
        let op = "adaptive_max_pool2d";
        let win = self.adaptive_windows(op, output_size)?;
        if win.size[0]
            .checked_mul(win.size[1])
            .is_none_or(|p| p > MAX_PLANE)
        {
            return Err(Error::invalid(
                op,
                format!(
                    "planes of {:?} pixels exceed 2^24, past which f32 indices are inexact",
                    win.size
                ),
            ));
        }
        Ok(self
            .pool(&win, PoolKind::AdaptiveMax, self.gradient_follows())
            .map_err(|e| e.in_op(op))?
            .0)
    }

    /// The mean of each plane: `[n, c, h, w] -> [n, c, 1, 1]`.
    pub fn global_avg_pool2d(&self) -> Result<Tensor> {
        self.adaptive_avg_pool2d([1, 1])
    }

    fn pool_windows(&self, op: &'static str, o: &Pool2dOptions) -> Result<Window2d> {
        let dims = pool_dims(op, self)?;
        if (0..2).any(|a| o.padding[a] > o.kernel[a] / 2) {
            return Err(Error::invalid(
                op,
                format!(
                    "padding {:?} must be at most half the kernel {:?}",
                    o.padding, o.kernel
                ),
            ));
        }
        if o.dilation != [1, 1] && op != "max_pool2d" {
            return Err(Error::invalid(
                op,
                format!(
                    "dilation {:?} is for max pooling only (as in PyTorch)",
                    o.dilation
                ),
            ));
        }
        let mut win = windows(op, dims, o.kernel, o.stride, o.padding, o.dilation)?;
        if o.ceil_mode {
            // One more window where the last would start inside the image or its left
            // padding, as PyTorch's `pooling_output_shape`.
            for a in 0..2 {
                let (size, s, p) = (dims[2 + a], o.stride[a], o.padding[a]);
                let reach = o.dilation[a] * (o.kernel[a] - 1) + 1;
                let mut out = (size + 2 * p - reach).div_ceil(s) + 1;
                if (out - 1).saturating_mul(s) >= size + p {
                    out -= 1;
                }
                win.out[a] = out;
                win.stride[a] = if out == 1 { 1 } else { s };
            }
        }
        // A dilated window may step over the whole image: it would pool nothing.
        for a in 0..2 {
            let d = win.dilation[a] as isize;
            // Only a window starting in the padding can miss the image.
            let empty = (0..win.out[a])
                .take_while(|&o| win.start(a, o) < 0)
                .find(|&o| {
                    let s = win.start(a, o);
                    let first = if s < 0 { s + (-s + d - 1) / d * d } else { s };
                    let last = s + d * (win.kernel[a] as isize - 1);
                    first > last || first >= win.size[a] as isize
                });
            if let Some(o) = empty {
                return Err(Error::invalid(
                    op,
                    format!(
                        "window {o} along axis {a} has no tap inside the input (size {}, \
                         kernel {:?}, dilation {:?}, padding {:?})",
                        win.size[a], win.kernel, win.dilation, win.pad
                    ),
                ));
            }
        }
        Ok(win)
    }

    /// Pools with a validated geometry; recorded for autograd. Max pooling returns the arg-max
    /// when `indices`, which it must be when the result is recorded.
    fn pool(
        &self,
        win: &Window2d,
        kind: PoolKind,
        indices: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let indices = indices || (kind.is_max() && self.gradient_follows());
        let (out, argmax) = untracked(|| {
            let x = self.dense()?;
            let (s, arg) = x.storage().pool(win, kind, indices)?;
            let shape = [win.n, win.c, win.out[0], win.out[1]];
            let wrap = |s| Tensor::from_storage(s, &shape, self.device());
            Ok((wrap(s), arg.map(wrap)))
        })?;
        let out = record(
            out,
            BackOp::Pool {
                x: self.clone(),
                win: *win,
                kind,
                argmax: argmax.clone(),
            },
        );
        Ok((out, argmax))
    }

    /// The input gradient of a pooling from the output gradient `self` `[n, c, oh, ow]`.
    pub(crate) fn pool_backward(
        &self,
        argmax: Option<&Tensor>,
        win: &Window2d,
        kind: PoolKind,
    ) -> Result<Tensor> {
        let g = self.dense()?;
        let s = g
            .storage()
            .pool_backward(argmax.map(|a| a.storage()), win, kind)?;
        let shape = [win.n, win.c, win.size[0], win.size[1]];
        Ok(Tensor::from_storage(s, &shape, self.device()))
    }
}
