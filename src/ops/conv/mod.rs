//! Convolution as im2col + matmul, the way Caffe and most GEMM-backed libraries do it:
//! `conv2d(x, w) = w [o, c*kh*kw] · unfold(x) [n, c*kh*kw, oh*ow]`. conv2d is one op on both
//! backends (`ConvSpec`), and so are its gradients, the weight's `g · unfold(x)ᵀ` summed
//! over the batch and the input's `fold(wᵀ · g)` (skipped when the input needs none). The
//! GPU queues unfold, matmul and fold kernels (`gpu.rs`); the CPU runs the same math over
//! cache-sized blocks of images, each block's products one GEMM (`cpu.rs`). Unfold (im2col)
//! and fold (col2im) are also ops of their own, each the other's gradient, and
//! `conv_transpose2d` is fold of a product.

pub(crate) mod cpu;
pub(crate) mod geometry;
pub(crate) mod gpu;
pub(crate) mod spec;

use super::same_device;
use crate::autograd::{record, untracked, BackOp};
use crate::error::{Error, Result};
use crate::ops::matmul::spec::Activation;
use crate::shape::checked_numel;
use crate::tensor::Tensor;
use geometry::{batch_chunk, check_bias, check_channels, image_dims, transposed_size, windows};
use spec::{ConvSpec, Window2d};

/// Stride, padding, dilation and groups of a 2-D convolution, with PyTorch's defaults
/// (1, 0, 1, 1). Pairs are `[h, w]`; the builder methods set both.
///
/// ```
/// use ferrograd::Conv2dOptions;
/// let same = Conv2dOptions::new().padding(1); // 3×3 "same" convolution
/// let down = Conv2dOptions::new().stride(2).padding(1);
/// assert_eq!(down.stride, [2, 2]);
/// # let _ = same;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dOptions {
    /// Step between windows, `[h, w]` (default `[1, 1]`).
    pub stride: [usize; 2],
    /// Zeros added on both sides of each axis, `[h, w]` (default `[0, 0]`); `conv_transpose2d`
    /// takes them off the output instead.
    pub padding: [usize; 2],
    /// Spacing between the taps of the kernel, `[h, w]` (default `[1, 1]`).
    pub dilation: [usize; 2],
    /// Channel groups convolved independently; must divide the input and output channels
    /// (default 1).
    pub groups: usize,
    /// `conv_transpose2d` only: rows/columns added at the bottom/right of the output, to pick
    /// one of the sizes a strided conv maps to the same size. Below `max(stride, dilation)`.
    pub output_padding: [usize; 2],
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Conv2dOptions {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
            output_padding: [0, 0],
        }
    }
}

impl Conv2dOptions {
    /// PyTorch's defaults: stride 1, padding 0, dilation 1, groups 1, output padding 0.
    pub fn new() -> Self {
        Self::default()
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
    /// Sets the dilation of both axes to `d`.
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = [d, d];
        self
    }
    /// Sets the number of channel groups to `g`.
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
    /// Sets the output padding of both axes to `p` (`conv_transpose2d` only).
    pub fn output_padding(mut self, p: usize) -> Self {
        self.output_padding = [p, p];
        self
    }
    /// PyTorch's `padding="same"` for a `kernel` `[kh, kw]`: the padding that keeps a
    /// stride-1 output the input's size, `dilation (k - 1) / 2` per side (`"valid"` is
    /// padding 0, the default).
    ///
    /// ```
    /// use ferrograd::{Conv2dOptions, Device, Tensor};
    /// let dev = Device::cpu();
    /// let opts = Conv2dOptions::new().dilation(2).padding_same([3, 5])?;
    /// assert_eq!(opts.padding, [2, 4]);
    /// let (x, w) = (Tensor::ones(&[1, 1, 6, 7], &dev)?, Tensor::ones(&[1, 1, 3, 5], &dev)?);
    /// assert_eq!(x.conv2d(&w, None, &opts)?.shape(), &[1, 1, 6, 7]);
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// `InvalidArgument` for a stride other than 1 (PyTorch refuses it too; set the stride
    /// first: a stride set after this is not seen), or a kernel
    /// whose `dilation (k - 1)` is odd: its `same` padding is one larger on the right and
    /// bottom, which symmetric padding cannot express; the layers' `Conv2d::padding_same`
    /// handles it.
    pub fn padding_same(mut self, kernel: [usize; 2]) -> Result<Self> {
        self.padding = same(self.stride, self.dilation, kernel)?;
        Ok(self)
    }
}

/// The symmetric `same` padding per axis, or why there is none.
fn same<const N: usize>(
    stride: [usize; N],
    dilation: [usize; N],
    kernel: [usize; N],
) -> Result<[usize; N]> {
    let op = "padding_same";
    if stride.iter().any(|&s| s != 1) {
        return Err(Error::invalid(
            op,
            format!("\"same\" padding needs stride 1, found {stride:?}"),
        ));
    }
    let mut pad = [0; N];
    for a in 0..N {
        let Some(total) = dilation[a].checked_mul(kernel[a].saturating_sub(1)) else {
            return Err(Error::invalid(
                op,
                format!("kernel {kernel:?} with dilation {dilation:?} overflows usize"),
            ));
        };
        if total % 2 == 1 {
            return Err(Error::invalid(
                op,
                format!(
                    "kernel {kernel:?} with dilation {dilation:?} needs {total} padding along \
                     axis {a}, one more on one side: use the layer's padding_same (Conv2d, \
                     Conv1d), or Tensor::pad"
                ),
            ));
        }
        pad[a] = total / 2;
    }
    Ok(pad)
}

/// Stride, padding, dilation and groups of a 1-D convolution (defaults 1, 0, 1, 1).
///
/// ```
/// use ferrograd::{Conv1dOptions, Device, Tensor};
/// let dev = Device::cpu();
/// let x = Tensor::ones(&[1, 1, 5], &dev)?; // [n, c, l]
/// let w = Tensor::ones(&[1, 1, 3], &dev)?; // [o, c, k]
/// let same = Conv1dOptions { padding: 1, ..Default::default() };
/// assert_eq!(x.conv1d(&w, None, &same)?.to_vec()?, vec![2.0, 3.0, 3.0, 3.0, 2.0]);
/// let strided = Conv1dOptions { stride: 2, ..Default::default() };
/// assert_eq!(x.conv1d(&w, None, &strided)?.shape(), &[1, 1, 2]); // (5 - 3) / 2 + 1
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv1dOptions {
    /// Step between windows (default 1).
    pub stride: usize,
    /// Zeros added at both ends of the sequence (default 0).
    pub padding: usize,
    /// Spacing between the taps of the kernel (default 1).
    pub dilation: usize,
    /// Channel groups convolved independently; must divide the input and output channels
    /// (default 1).
    pub groups: usize,
}

impl Default for Conv1dOptions {
    fn default() -> Self {
        Conv1dOptions {
            stride: 1,
            padding: 0,
            dilation: 1,
            groups: 1,
        }
    }
}

impl Conv1dOptions {
    /// PyTorch's `padding="same"` for a kernel of `kernel` taps (see
    /// [`Conv2dOptions::padding_same`]).
    ///
    /// # Errors
    /// As [`Conv2dOptions::padding_same`].
    pub fn padding_same(mut self, kernel: usize) -> Result<Self> {
        self.padding = same([self.stride], [self.dilation], [kernel])?[0];
        Ok(self)
    }

    /// The same convolution over `[n, c, 1, l]`.
    fn as_2d(&self) -> Conv2dOptions {
        Conv2dOptions {
            stride: [1, self.stride],
            padding: [0, self.padding],
            dilation: [1, self.dilation],
            groups: self.groups,
            output_padding: [0, 0],
        }
    }
}

/// `out + bias` with the bias along axis 1 of a 4-D `out`.
fn add_bias(out: Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    match bias {
        Some(b) => out.add(&b.reshape(&[1, b.numel(), 1, 1])?),
        None => Ok(out),
    }
}

impl Tensor {
    /// im2col (PyTorch's `F.unfold`): every `kernel` window of an `[n, c, h, w]` image as a
    /// column, giving `[n, c * kh * kw, oh * ow]` (row `(ci * kh + ki) * kw + kj`, zeros where
    /// a tap falls in the padding). `options.groups` is ignored.
    ///
    /// ```
    /// use ferrograd::{Conv2dOptions, Device, Tensor};
    /// let x = Tensor::arange(0.0, 9.0, 1.0, &Device::cpu())?.reshape(&[1, 1, 3, 3])?;
    /// let cols = x.unfold2d([2, 2], &Conv2dOptions::new())?; // four 2×2 windows
    /// assert_eq!(cols.shape(), &[1, 4, 4]);
    /// assert_eq!(cols.to_vec()?[..4], [0.0, 1.0, 3.0, 4.0]); // tap (0, 0) of each window
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub fn unfold2d(&self, kernel: [usize; 2], options: &Conv2dOptions) -> Result<Tensor> {
        let dims = image_dims("unfold2d", "input", self)?;
        let o = options;
        let win = windows("unfold2d", dims, kernel, o.stride, o.padding, o.dilation)?;
        self.unfold_with(&win)
    }

    /// col2im (PyTorch's `F.fold`), the adjoint of [`Tensor::unfold2d`]: columns
    /// `[n, c * kh * kw, l]` summed back into `[n, c, h, w]` images of `output_size`, where
    /// `l` must be the number of windows that size has.
    pub fn fold2d(
        &self,
        output_size: [usize; 2],
        kernel: [usize; 2],
        options: &Conv2dOptions,
    ) -> Result<Tensor> {
        let op = "fold2d";
        let [n, rows, l] = *self.shape() else {
            return Err(Error::invalid(
                op,
                format!(
                    "input must be 3-D [N, C*KH*KW, L], found {:?}",
                    self.shape()
                ),
            ));
        };
        let taps = kernel[0] * kernel[1];
        if taps == 0 || rows % taps != 0 {
            return Err(Error::invalid(
                op,
                format!("input rows {rows} are not a multiple of the kernel's {kernel:?} taps"),
            ));
        }
        let [h, w] = output_size;
        let o = options;
        let win = windows(
            op,
            [n, rows / taps, h, w],
            kernel,
            o.stride,
            o.padding,
            o.dilation,
        )?;
        if win.out[0] * win.out[1] != l {
            return Err(Error::invalid(
                op,
                format!(
                    "input has {l} columns but an output of {output_size:?} has {} windows \
                     ({} × {})",
                    win.out[0] * win.out[1],
                    win.out[0],
                    win.out[1]
                ),
            ));
        }
        self.fold_with(&win)
    }

    /// Unfold over a validated geometry; recorded for autograd (its gradient is fold).
    pub(crate) fn unfold_with(&self, win: &Window2d) -> Result<Tensor> {
        let out = untracked(|| {
            let x = self.dense()?;
            let s = x.storage().unfold(win)?;
            let rows = win.c * win.kernel[0] * win.kernel[1];
            let shape = [win.n, rows, win.out[0] * win.out[1]];
            Ok(Tensor::from_storage(s, &shape, self.device()))
        })?;
        Ok(record(
            out,
            BackOp::Unfold {
                x: self.clone(),
                win: *win,
            },
        ))
    }

    /// Fold over a validated geometry; recorded for autograd (its gradient is unfold).
    pub(crate) fn fold_with(&self, win: &Window2d) -> Result<Tensor> {
        let out = untracked(|| {
            let cols = self.dense()?;
            let s = cols.storage().fold(win)?;
            let shape = [win.n, win.c, win.size[0], win.size[1]];
            Ok(Tensor::from_storage(s, &shape, self.device()))
        })?;
        Ok(record(
            out,
            BackOp::Fold {
                x: self.clone(),
                win: *win,
            },
        ))
    }

    /// 2-D convolution (cross-correlation, as in PyTorch): input `[n, c, h, w]`, weight
    /// `[o, c / groups, kh, kw]`, optional bias `[o]`; output `[n, o, oh, ow]` with
    /// `oh = (h + 2 * padding - dilation * (kh - 1) - 1) / stride + 1`. Gradients flow to the
    /// input, the weight and the bias.
    ///
    /// ```
    /// use ferrograd::{Conv2dOptions, Device, Tensor};
    /// let dev = Device::cpu();
    /// let x = Tensor::ones(&[2, 3, 8, 8], &dev)?;
    /// let w = Tensor::ones(&[16, 3, 3, 3], &dev)?;
    /// let y = x.conv2d(&w, None, &Conv2dOptions::new().padding(1))?;
    /// assert_eq!(y.shape(), &[2, 16, 8, 8]);
    /// assert_eq!(y.to_vec()?[9], 27.0); // an inner pixel sums 3 × 3 × 3 ones
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        options: &Conv2dOptions,
    ) -> Result<Tensor> {
        self.conv2d_as("conv2d", weight, bias, options, Activation::Identity)
    }

    /// `act(conv2d(..))`, the bias and activation applied in the matmul's epilogue (what
    /// `nn::Conv2d` runs when a `Sequential` has an activation after it).
    pub(crate) fn conv2d_activated(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        options: &Conv2dOptions,
        act: Activation,
    ) -> Result<Tensor> {
        self.conv2d_as("conv2d", weight, bias, options, act)
    }

    /// `act(conv2d(..))`, reporting errors as `op` (conv1d runs through here).
    fn conv2d_as(
        &self,
        op: &'static str,
        weight: &Tensor,
        bias: Option<&Tensor>,
        o: &Conv2dOptions,
        act: Activation,
    ) -> Result<Tensor> {
        self.conv2d_as_impl(op, weight, bias, o, act)
            .map_err(|e| e.in_op(op))
    }

    fn conv2d_as_impl(
        &self,
        op: &'static str,
        weight: &Tensor,
        bias: Option<&Tensor>,
        o: &Conv2dOptions,
        act: Activation,
    ) -> Result<Tensor> {
        let mut operands = vec![self, weight];
        operands.extend(bias);
        same_device(op, &operands)?;
        let dims = image_dims(op, "input", self)?;
        let [out_c, cg, kh, kw] = image_dims(op, "weight", weight)?;
        let (n, c, groups) = (dims[0], dims[1], o.groups);
        check_channels(op, c, groups)?;
        if cg * groups != c {
            return Err(Error::ShapeMismatch {
                op,
                lhs: self.shape().to_vec(),
                rhs: weight.shape().to_vec(),
                why: format!(
                    "disagree: the input has {c} channels, the weight expects {} ({cg} per \
                     group × {groups} groups)",
                    cg * groups
                ),
            });
        }
        if out_c % groups != 0 {
            return Err(Error::invalid(
                op,
                format!("groups {groups} must divide the output channels {out_c}"),
            ));
        }
        if o.output_padding != [0, 0] {
            return Err(Error::invalid(
                op,
                "output_padding applies to conv_transpose2d only",
            ));
        }
        check_bias(op, bias, out_c)?;
        let win = windows(op, dims, [kh, kw], o.stride, o.padding, o.dilation)?;
        let l = win.out[0] * win.out[1];
        // The output's size (`windows` counted the columns, which have no `out_c`).
        checked_numel(op, &[n, out_c, win.out[0], win.out[1]])?;
        // The GPU unfolds the whole batch; the CPU only cache-sized blocks of it. A half batch
        // is unfolded a few images at a time anyway (`storage/half.rs`), so it is split here
        // only where two images' columns would pass the budget.
        let cols = c * kh * kw * l;
        let halves = self.dtype().is_half() && batch_chunk(self.device(), 2, cols).is_none();
        if self.device().gpu_context().is_some() && !halves {
            if let Some(chunk) = batch_chunk(self.device(), n, cols) {
                return self.in_batch_chunks(chunk, |x| x.conv2d_as_impl(op, weight, bias, o, act));
            }
        }
        let spec = ConvSpec {
            win,
            out_c,
            groups,
            act,
        };
        let (out, cols) = untracked(|| {
            let (x, w) = (self.dense()?, weight.dense()?);
            let b = bias.map(Tensor::dense).transpose()?;
            let (y, cols) =
                x.storage()
                    .conv2d(w.storage(), b.as_ref().map(Tensor::storage), &spec)?;
            let shape = [n, out_c, win.out[0], win.out[1]];
            let cols = cols.map(|c| Tensor::from_storage(c, &[win.cols_numel()], self.device()));
            Ok((Tensor::from_storage(y, &shape, self.device()), cols))
        })?;
        Ok(record(
            out.clone(),
            BackOp::Conv2d {
                x: self.clone(),
                w: weight.clone(),
                bias: bias.cloned(),
                spec,
                out,
                cols,
            },
        ))
    }

    /// The gradients of conv2d (without bias and activation) from `g`, the gradient of its
    /// pre-activation output: the input's (`None` unless `input_grad`) and the weight's.
    /// `cols` are the columns the forward pass kept, if any.
    pub(crate) fn conv2d_backward(
        x: &Tensor,
        w: &Tensor,
        g: &Tensor,
        cols: Option<&Tensor>,
        spec: &ConvSpec,
        input_grad: bool,
    ) -> Result<(Option<Tensor>, Tensor)> {
        let (xd, wd, gd) = (x.dense()?, w.dense()?, g.dense()?);
        let (dw, dx) = xd.storage().conv2d_backward(
            wd.storage(),
            gd.storage(),
            cols.map(Tensor::storage),
            spec,
            input_grad,
        )?;
        let dx = dx.map(|s| Tensor::from_storage(s, x.shape(), x.device()));
        Ok((dx, Tensor::from_storage(dw, w.shape(), w.device())))
    }

    /// Transposed 2-D convolution, the input gradient of `conv2d` as an op (PyTorch's
    /// `conv_transpose2d`): input `[n, c, h, w]`, weight `[c, o / groups, kh, kw]`, output
    /// `[n, o, oh, ow]` with `oh = (h - 1) * stride - 2 * padding + dilation * (kh - 1) +
    /// output_padding + 1`. Upsamples when `stride > 1`.
    pub fn conv_transpose2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        o: &Conv2dOptions,
    ) -> Result<Tensor> {
        self.conv_transpose2d_impl(weight, bias, o)
            .map_err(|e| e.in_op("conv_transpose2d"))
    }

    fn conv_transpose2d_impl(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        o: &Conv2dOptions,
    ) -> Result<Tensor> {
        let op = "conv_transpose2d";
        let mut operands = vec![self, weight];
        operands.extend(bias);
        same_device(op, &operands)?;
        let [n, c, h, w] = image_dims(op, "input", self)?;
        let [wc, og, kh, kw] = image_dims(op, "weight", weight)?;
        let groups = o.groups;
        check_channels(op, c, groups)?;
        if wc != c {
            return Err(Error::ShapeMismatch {
                op,
                lhs: self.shape().to_vec(),
                rhs: weight.shape().to_vec(),
                why: format!(
                    "disagree: the input has {c} channels, the weight's first axis {wc} (a \
                     transposed conv's weight is [in, out / groups, kh, kw])"
                ),
            });
        }
        let out_c = og * groups;
        check_bias(op, bias, out_c)?;
        let size = transposed_size(op, self.shape(), [kh, kw], o, out_c)?;
        // Columns [n, o*kh*kw, h*w].
        let per_image = checked_numel(op, &[out_c, kh, kw, h, w])?;
        if let Some(chunk) = batch_chunk(self.device(), n, per_image) {
            return self.in_batch_chunks(chunk, |x| x.conv_transpose2d_impl(weight, bias, o));
        }
        // The conv whose input gradient this is: output `size`, windows `[h, w]`.
        let win = Window2d {
            n,
            c: out_c,
            size,
            kernel: [kh, kw],
            stride: o.stride,
            pad: o.padding,
            dilation: o.dilation,
            out: [h, w],
        };
        let taps = kh * kw;
        let cols = if groups == 1 {
            // [o*kh*kw, c] · [n, c, h*w] -> [n, o*kh*kw, h*w]
            let wt = weight.reshape(&[c, out_c * taps])?.t()?;
            wt.matmul(&self.reshape(&[n, c, h * w])?)?
        } else {
            // [g, og*kh*kw, c/g] · [n, g, c/g, h*w] -> [n, g, og*kh*kw, h*w]
            let wt = weight
                .reshape(&[groups, c / groups, og * taps])?
                .transpose(1, 2)?;
            wt.matmul(&self.reshape(&[n, groups, c / groups, h * w])?)?
        };
        let cols = cols.reshape(&[n, out_c * taps, h * w])?;
        add_bias(cols.fold_with(&win)?, bias)
    }

    /// 1-D convolution: input `[n, c, l]`, weight `[o, c / groups, k]`, optional bias `[o]`;
    /// output `[n, o, ol]`. Runs as a conv2d over `[n, c, 1, l]`.
    pub fn conv1d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        options: &Conv1dOptions,
    ) -> Result<Tensor> {
        self.conv1d_impl(weight, bias, options)
            .map_err(|e| e.in_op("conv1d"))
    }

    fn conv1d_impl(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        options: &Conv1dOptions,
    ) -> Result<Tensor> {
        let op = "conv1d";
        for (what, t) in [("input", self), ("weight", weight)] {
            if t.rank() != 3 {
                return Err(Error::invalid(
                    op,
                    format!("{what} must be 3-D [N, C, L], found shape {:?}", t.shape()),
                ));
            }
        }
        let x = self.unsqueeze(2)?;
        let w = weight.unsqueeze(2)?;
        x.conv2d_as(op, &w, bias, &options.as_2d(), Activation::Identity)?
            .squeeze(2)
    }
}
