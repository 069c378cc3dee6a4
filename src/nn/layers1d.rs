//! Sequence and resizing layers: `Conv1d`, `MaxPool1d`, `AvgPool1d` over `[n, c, l]`, and
//! `Upsample` over `[n, c, h, w]`, as PyTorch's (parameter names, init, printing).

use super::conv::{axis_pads, conv_params, padding_mode, padding_text, same_stride};
use super::{Module, Parameter};
use crate::device::Device;
use crate::error::Result;
use crate::ops::index::upsample::UpsampleMode;
use crate::ops::pool::pool1d::Pool1dOptions;
use crate::ops::{Conv1dOptions, PadMode};
use crate::tensor::Tensor;

/// A 1-D convolution layer (`torch.nn.Conv1d`): weight `[out, in / groups, k]`, bias `[out]`,
/// input `[n, in, l]`.
///
/// ```
/// use ferrograd::nn::{Conv1d, Module};
/// use ferrograd::{Conv1dOptions, Device, Tensor};
/// let dev = Device::cpu();
/// let conv = Conv1d::new(4, 8, 3, Conv1dOptions { padding: 1, ..Default::default() }, true, &dev)?;
/// assert_eq!(conv.forward(&Tensor::randn(&[2, 4, 10], &dev)?)?.shape(), &[2, 8, 10]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Debug, Module)]
pub struct Conv1d {
    /// `[out, in / groups, k]`.
    pub weight: Parameter,
    /// `[out]`, if the layer has one.
    pub bias: Option<Parameter>,
    /// Stride, padding, dilation and groups.
    pub options: Conv1dOptions,
    /// What the padding holds (PyTorch's `padding_mode`; default zeros).
    pub padding_mode: PadMode,
    /// PyTorch's `padding="same"` ([`Conv1d::padding_same`]).
    pub same: bool,
}

impl Conv1d {
    /// With the padding filled by `mode` (see [`super::Conv2d::padding_mode`]).
    pub fn padding_mode(mut self, mode: PadMode) -> Conv1d {
        self.padding_mode = mode;
        self
    }

    /// With PyTorch's `padding="same"` (see [`super::Conv2d::padding_same`]).
    ///
    /// # Errors
    /// `InvalidArgument` for a stride other than 1.
    pub fn padding_same(mut self) -> Result<Conv1d> {
        same_stride("Conv1d", true, &[self.options.stride])?;
        self.same = true;
        Ok(self)
    }

    /// A convolution of width `kernel` from `inputs` to `outputs` channels; PyTorch's init
    /// (`U(-1/√fan_in, 1/√fan_in)`, `fan_in = inputs / groups · kernel`).
    ///
    /// # Errors
    /// `InvalidArgument` when `groups` does not divide both channel counts.
    pub fn new(
        inputs: usize,
        outputs: usize,
        kernel: usize,
        options: Conv1dOptions,
        bias: bool,
        device: &Device,
    ) -> Result<Conv1d> {
        let (weight, bias) = conv_params(
            "Conv1d",
            [inputs, outputs],
            options.groups,
            &[kernel],
            bias,
            device,
        )?;
        Ok(Conv1d {
            weight,
            bias,
            options,
            padding_mode: PadMode::default(),
            same: false,
        })
    }
}

impl Module for Conv1d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, w) = (
            self.bias.as_ref().map(Parameter::value),
            self.weight.value(),
        );
        let o = &self.options;
        same_stride("Conv1d", self.same, &[o.stride])?;
        let k = match w.shape() {
            [_, _, k] => *k,
            _ => return x.conv1d(&w, b.as_ref(), o), // which names the bad weight
        };
        let (before, after) = axis_pads(self.same, o.padding, k, o.dilation);
        if self.padding_mode == PadMode::default() && before == after {
            let opts = Conv1dOptions {
                padding: before,
                ..*o
            };
            return x.conv1d(&w, b.as_ref(), &opts);
        }
        let unpadded = Conv1dOptions { padding: 0, ..*o };
        x.pad(&[before, after], self.padding_mode)?
            .conv1d(&w, b.as_ref(), &unpadded)
    }
    fn describe(&self) -> String {
        let o = &self.options;
        match self.weight.shape()[..] {
            [out, per_group, k] => format!(
                "Conv1d({}, {out}, kernel_size={k}, stride={}, padding={}, dilation={}, groups={}, bias={}",
                per_group.saturating_mul(o.groups),
                o.stride,
                padding_text(self.same, &o.padding),
                o.dilation,
                o.groups,
                self.bias.is_some()
            ) + &padding_mode(self.padding_mode),
            ref other => format!("Conv1d(weight {other:?})"),
        }
    }
}

fn describe_pool(name: &str, o: &Pool1dOptions) -> String {
    let mut s = format!(
        "{name}(kernel_size={}, stride={}, padding={}",
        o.kernel, o.stride, o.padding
    );
    if o.dilation != 1 {
        s += &format!(", dilation={}", o.dilation);
    }
    if o.ceil_mode {
        s += ", ceil_mode=true";
    }
    if !o.count_include_pad && name == "AvgPool1d" {
        s += ", count_include_pad=false";
    }
    s + ")"
}

/// 1-D max pooling layer over `[n, c, l]`.
#[derive(Clone, Copy, Debug, Module)]
pub struct MaxPool1d(pub Pool1dOptions);

impl Module for MaxPool1d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.max_pool1d(&self.0)
    }
    fn describe(&self) -> String {
        describe_pool("MaxPool1d", &self.0)
    }
}

/// 1-D average pooling layer over `[n, c, l]` (padding counted as zeros unless
/// `count_include_pad` is false).
#[derive(Clone, Copy, Debug, Module)]
pub struct AvgPool1d(pub Pool1dOptions);

impl Module for AvgPool1d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.avg_pool1d(&self.0)
    }
    fn describe(&self) -> String {
        describe_pool("AvgPool1d", &self.0)
    }
}

/// Resizes `[n, c, h, w]` to a fixed size or by a scale factor (`torch.nn.Upsample`).
///
/// ```
/// use ferrograd::nn::{Module, Upsample};
/// use ferrograd::{Device, Tensor, UpsampleMode};
/// let up = Upsample::scale(2.0, UpsampleMode::Bilinear);
/// let y = up.forward(&Tensor::zeros(&[1, 3, 7, 7], &Device::cpu())?)?;
/// assert_eq!(y.shape(), &[1, 3, 14, 14]);
/// assert_eq!(up.describe(), "Upsample(scale_factor=[2.0, 2.0], mode=Bilinear)");
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Module)]
pub struct Upsample {
    /// The output `[h, w]`, or `None` when `scale_factor` sets it.
    pub size: Option<[usize; 2]>,
    /// The factor per axis when `size` is `None`.
    pub scale_factor: [f32; 2],
    /// Nearest or bilinear.
    pub mode: UpsampleMode,
}

impl Upsample {
    /// Resizing to `[h, w]`.
    pub fn size(size: [usize; 2], mode: UpsampleMode) -> Upsample {
        Upsample {
            size: Some(size),
            scale_factor: [1.0, 1.0],
            mode,
        }
    }
    /// Resizing by `factor` along both axes.
    pub fn scale(factor: f32, mode: UpsampleMode) -> Upsample {
        Upsample {
            size: None,
            scale_factor: [factor, factor],
            mode,
        }
    }
}

impl Module for Upsample {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self.size {
            Some(size) => x.upsample(size, self.mode),
            None => x.upsample_scale(self.scale_factor, self.mode),
        }
    }
    fn describe(&self) -> String {
        match self.size {
            Some(s) => format!("Upsample(size={s:?}, mode={:?})", self.mode),
            None => format!(
                "Upsample(scale_factor={:?}, mode={:?})",
                self.scale_factor, self.mode
            ),
        }
    }
}
