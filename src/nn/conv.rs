//! The 2-D convolution layers, `Conv2d` and `ConvTranspose2d`, and how the convolution
//! layers pad (`padding_mode`, `padding="same"`; `Conv1d` in `layers1d.rs` shares it).

use super::{init, Module, Parameter};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::ops::matmul::spec::Activation;
use crate::ops::{Conv2dOptions, PadMode};
use crate::random::with_global;
use crate::tensor::Tensor;

/// 2-D convolution layer: weight `[out, in / groups, k, k]`, bias `[out]`.
///
/// ```
/// use ferrograd::nn::{Conv2d, Module};
/// use ferrograd::{Conv2dOptions, Device, Tensor};
/// let dev = Device::cpu();
/// let conv = Conv2d::new(1, 8, 3, Conv2dOptions::new().padding(1), true, &dev)?;
/// let y = conv.forward(&Tensor::randn(&[2, 1, 28, 28], &dev)?)?;
/// assert_eq!(y.shape(), &[2, 8, 28, 28]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Debug, Module)]
pub struct Conv2d {
    /// `[out, in / groups, k, k]`.
    pub weight: Parameter,
    /// `[out]`, if the layer has one.
    pub bias: Option<Parameter>,
    /// Stride, padding, dilation and groups.
    pub options: Conv2dOptions,
    /// What the padding holds (PyTorch's `padding_mode`; default zeros).
    pub padding_mode: PadMode,
    /// PyTorch's `padding="same"`: the output keeps the input's size (stride 1), the
    /// options' padding ignored ([`Conv2d::padding_same`]).
    pub same: bool,
}

impl Conv2d {
    /// With the padding filled by `mode` (`Reflect`, `Replicate`, `Circular`; PyTorch's
    /// `padding_mode`): the input is padded by [`Tensor::pad`], then convolved unpadded.
    pub fn padding_mode(mut self, mode: PadMode) -> Conv2d {
        self.padding_mode = mode;
        self
    }

    /// With PyTorch's `padding="same"`: `dilation (k - 1)` padding per axis, half before
    /// and half after, the odd one after (right, bottom) as PyTorch.
    ///
    /// ```
    /// use ferrograd::nn::{Conv2d, Module};
    /// use ferrograd::{Conv2dOptions, Device, Tensor};
    /// let dev = Device::cpu();
    /// let conv = Conv2d::new(3, 8, 4, Conv2dOptions::new(), true, &dev)?.padding_same()?;
    /// assert_eq!(conv.forward(&Tensor::zeros(&[1, 3, 9, 9], &dev)?)?.shape(), &[1, 8, 9, 9]);
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// `InvalidArgument` for a stride other than 1 (PyTorch refuses it too).
    pub fn padding_same(mut self) -> Result<Conv2d> {
        same_stride("Conv2d", true, &self.options.stride)?;
        self.same = true;
        Ok(self)
    }

    /// A `kernel × kernel` convolution from `inputs` to `outputs` channels; PyTorch's init
    /// (`U(-1/√fan_in, 1/√fan_in)`, `fan_in = inputs / groups · k²`).
    pub fn new(
        inputs: usize,
        outputs: usize,
        kernel: usize,
        options: Conv2dOptions,
        bias: bool,
        device: &Device,
    ) -> Result<Conv2d> {
        let (weight, bias) = conv_params(
            "Conv2d",
            [inputs, outputs],
            options.groups,
            &[kernel; 2],
            bias,
            device,
        )?;
        Ok(Conv2d {
            weight,
            bias,
            options,
            padding_mode: PadMode::default(),
            same: false,
        })
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_activated(x, Activation::Identity)
    }
    /// `act(conv2d(x))`, the bias and `act` in the matmul's epilogue.
    fn forward_activated(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        let b = self.bias.as_ref().map(Parameter::value);
        let w = self.weight.value();
        let o = &self.options;
        same_stride("Conv2d", self.same, &o.stride)?;
        let k = match w.shape() {
            [_, _, kh, kw] => [*kh, *kw],
            _ => return x.conv2d_activated(&w, b.as_ref(), o, act), // which names the bad weight
        };
        let [ph, pw] = [0, 1].map(|a| axis_pads(self.same, o.padding[a], k[a], o.dilation[a]));
        if self.padding_mode == PadMode::default() && ph.0 == ph.1 && pw.0 == pw.1 {
            let opts = Conv2dOptions {
                padding: [ph.0, pw.0],
                ..*o
            };
            return x.conv2d_activated(&w, b.as_ref(), &opts, act);
        }
        let unpadded = Conv2dOptions {
            padding: [0, 0],
            ..*o
        };
        let x = x.pad(&[pw.0, pw.1, ph.0, ph.1], self.padding_mode)?;
        x.conv2d_activated(&w, b.as_ref(), &unpadded, act)
    }
    fn describe(&self) -> String {
        let o = &self.options;
        match self.weight.shape()[..] {
            [out, per_group, kh, kw] => format!(
                "Conv2d({}, {out}, kernel_size={:?}, stride={:?}, padding={}, dilation={:?}, groups={}, bias={}",
                per_group.saturating_mul(o.groups),
                [kh, kw],
                o.stride,
                padding_text(self.same, &o.padding),
                o.dilation,
                o.groups,
                self.bias.is_some()
            ) + &padding_mode(self.padding_mode),
            ref other => format!("Conv2d(weight {other:?})"),
        }
    }
}

/// A convolution layer's weight `[outputs, inputs / groups, kernel..]` and optional bias
/// `[outputs]` with PyTorch's init, once `groups` is known to divide both channel counts.
pub(super) fn conv_params(
    op: &'static str,
    [inputs, outputs]: [usize; 2],
    groups: usize,
    kernel: &[usize],
    bias: bool,
    device: &Device,
) -> Result<(Parameter, Option<Parameter>)> {
    let g = groups;
    if g == 0 || !inputs.is_multiple_of(g) || !outputs.is_multiple_of(g) {
        return Err(Error::invalid(
            op,
            format!("groups {g} must divide both {inputs} input and {outputs} output channels"),
        ));
    }
    let shape: Vec<usize> = [outputs, inputs / g]
        .iter()
        .chain(kernel)
        .copied()
        .collect();
    let (w, b) = with_global(|gen| init::default_layer(&shape, bias, gen, device))
        .map_err(|e| e.in_op(op))?;
    Ok((Parameter::new(w), b.map(Parameter::new)))
}

/// A convolution layer's padding `(before, after)` along one axis: the options' on both
/// sides, or `same`'s `dilation (k - 1)` split with the odd one after, as PyTorch.
pub(super) fn axis_pads(
    same: bool,
    padding: usize,
    kernel: usize,
    dilation: usize,
) -> (usize, usize) {
    if !same {
        return (padding, padding);
    }
    // Saturating: an absurd dilation is then refused by the convolution's own size checks.
    let total = dilation.saturating_mul(kernel.saturating_sub(1));
    (total / 2, total - total / 2)
}

/// A `same` layer's stride must be 1 (it may have been changed since `padding_same`).
pub(super) fn same_stride(op: &'static str, same: bool, stride: &[usize]) -> Result<()> {
    match same && stride.iter().any(|&s| s != 1) {
        true => Err(Error::invalid(
            op,
            format!("\"same\" padding needs stride 1, found {stride:?}"),
        )),
        false => Ok(()),
    }
}

/// `"same"` or the padding, for a description.
pub(super) fn padding_text(same: bool, padding: &impl std::fmt::Debug) -> String {
    match same {
        true => "\"same\"".into(),
        false => format!("{padding:?}"),
    }
}

/// `", padding_mode=Reflect)"` for a padding other than zeros, else `")"`: the end of a
/// convolution's description.
pub(super) fn padding_mode(mode: PadMode) -> String {
    match mode == PadMode::default() {
        true => ")".into(),
        false => format!(", padding_mode={mode:?})"),
    }
}

/// A transposed 2-D convolution layer (PyTorch's `ConvTranspose2d`, the upsampling layer of
/// a DCGAN generator): weight `[in, out / groups, k, k]`, bias `[out]`; output size
/// `(h - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1`.
///
/// ```
/// use ferrograd::nn::{ConvTranspose2d, Module};
/// use ferrograd::{Conv2dOptions, Device, Tensor};
/// let dev = Device::cpu();
/// let up = ConvTranspose2d::new(16, 8, 4, Conv2dOptions::new().stride(2).padding(1), true, &dev)?;
/// let y = up.forward(&Tensor::randn(&[2, 16, 7, 7], &dev)?)?;
/// assert_eq!(y.shape(), &[2, 8, 14, 14]); // 7 -> 14
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Debug, Module)]
pub struct ConvTranspose2d {
    /// `[in, out / groups, k, k]`.
    pub weight: Parameter,
    /// `[out]`, if the layer has one.
    pub bias: Option<Parameter>,
    /// Stride, padding, output padding, dilation and groups.
    pub options: Conv2dOptions,
}

impl ConvTranspose2d {
    /// A `kernel × kernel` transposed convolution from `inputs` to `outputs` channels;
    /// PyTorch's init (`U(-1/√fan_in, 1/√fan_in)` with `fan_in = outputs / groups · k²`, the
    /// weight's second axis, as PyTorch computes it).
    ///
    /// # Errors
    /// `InvalidArgument` when `groups` does not divide both channel counts.
    pub fn new(
        inputs: usize,
        outputs: usize,
        kernel: usize,
        options: Conv2dOptions,
        bias: bool,
        device: &Device,
    ) -> Result<ConvTranspose2d> {
        let op = "ConvTranspose2d";
        let g = options.groups;
        if g == 0 || !inputs.is_multiple_of(g) || !outputs.is_multiple_of(g) {
            return Err(Error::invalid(
                op,
                format!("groups {g} must divide both {inputs} input and {outputs} output channels"),
            ));
        }
        let shape = [inputs, outputs / g, kernel, kernel];
        let (w, b) = with_global(|gen| -> Result<_> {
            let (w, _) = init::default_layer(&shape, false, gen, device)?;
            let bound = 1.0 / ((outputs / g * kernel * kernel).max(1) as f32).sqrt();
            let b = match bias {
                true => Some(init::uniform(&[outputs], -bound, bound, gen, device)?),
                false => None,
            };
            Ok((w, b))
        })
        .map_err(|e| e.in_op(op))?;
        Ok(ConvTranspose2d {
            weight: Parameter::new(w),
            bias: b.map(Parameter::new),
            options,
        })
    }
}

impl Module for ConvTranspose2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let b = self.bias.as_ref().map(Parameter::value);
        x.conv_transpose2d(&self.weight.value(), b.as_ref(), &self.options)
    }
    fn describe(&self) -> String {
        let o = &self.options;
        match self.weight.shape()[..] {
            [inputs, per_group, kh, kw] => format!(
                "ConvTranspose2d({inputs}, {}, kernel_size={:?}, stride={:?}, padding={:?}, output_padding={:?}, bias={})",
                per_group.saturating_mul(o.groups),
                [kh, kw],
                o.stride,
                o.padding,
                o.output_padding,
                self.bias.is_some()
            ),
            ref other => format!("ConvTranspose2d(weight {other:?})"),
        }
    }
}
