//! The built-in layers. Each holds its [`Parameter`]s (named as in PyTorch: `weight`, `bias`)
//! and calls the tensor ops; initial values follow PyTorch's defaults and draw from the global
//! generator ([`crate::manual_seed`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::{init, lock, write_tree, Module, Parameter, Visit, Visitor};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::ops::matmul::spec::Activation;
use crate::ops::{BatchNormOptions, Conv2dOptions, Pool2dOptions, RunningStats};
use crate::random::with_global;
use crate::tensor::Tensor;

/// A frozen parameter holding module state that is not trained (running statistics).
fn buffer(value: Tensor) -> Parameter {
    let p = Parameter::new(value);
    p.set_trainable(false);
    p
}

/// `y = x · weightᵀ + bias` over the last axis: `[.., in] -> [.., out]`. Weight `[out, in]`.
#[derive(Debug, Module)]
pub struct Linear {
    pub weight: Parameter,
    pub bias: Option<Parameter>,
}

impl Linear {
    /// PyTorch's init: weight and bias `U(-1/√in, 1/√in)`.
    pub fn new(inputs: usize, outputs: usize, bias: bool, device: &Device) -> Result<Linear> {
        let (w, b) = with_global(|g| init::default_layer(&[outputs, inputs], bias, g, device))
            .map_err(|e| e.in_op("Linear"))?;
        Ok(Linear {
            weight: Parameter::new(w),
            bias: b.map(Parameter::new),
        })
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_activated(x, Activation::Identity)
    }
    /// `act(x · wᵀ + b)` in one matmul kernel ([`Tensor::linear`]).
    fn forward_activated(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        let w = self.weight.value();
        let (outputs, inputs) = (w.shape()[0], w.shape()[1]);
        if x.shape().last() != Some(&inputs) {
            return Err(Error::invalid(
                "Linear",
                format!(
                    "Linear({inputs} -> {outputs}) needs inputs with {inputs} features on the \
                     last axis, found shape {:?}",
                    x.shape()
                ),
            ));
        }
        let bias = self.bias.as_ref().map(|b| b.value());
        x.linear(&w, bias.as_ref(), act)
    }
    fn describe(&self) -> String {
        let w = self.weight.shape();
        format!(
            "Linear(in_features={}, out_features={}, bias={})",
            w[1],
            w[0],
            self.bias.is_some()
        )
    }
}

/// 2-D convolution layer: weight `[out, in / groups, k, k]`, bias `[out]`.
#[derive(Debug, Module)]
pub struct Conv2d {
    pub weight: Parameter,
    pub bias: Option<Parameter>,
    pub options: Conv2dOptions,
}

impl Conv2d {
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
        let g = options.groups;
        if g == 0 || !inputs.is_multiple_of(g) || !outputs.is_multiple_of(g) {
            return Err(Error::invalid(
                "Conv2d",
                format!("groups {g} must divide both {inputs} input and {outputs} output channels"),
            ));
        }
        let shape = [outputs, inputs / g, kernel, kernel];
        let (w, b) = with_global(|gen| init::default_layer(&shape, bias, gen, device))
            .map_err(|e| e.in_op("Conv2d"))?;
        Ok(Conv2d {
            weight: Parameter::new(w),
            bias: b.map(Parameter::new),
            options,
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
        x.conv2d_activated(&self.weight.value(), b.as_ref(), &self.options, act)
    }
    fn describe(&self) -> String {
        let (w, o) = (self.weight.shape(), &self.options);
        format!(
            "Conv2d({}, {}, kernel_size={:?}, stride={:?}, padding={:?}, dilation={:?}, groups={}, bias={})",
            w[1] * o.groups,
            w[0],
            [w[2], w[3]],
            o.stride,
            o.padding,
            o.dilation,
            o.groups,
            self.bias.is_some()
        )
    }
}

fn describe_pool(name: &str, o: &Pool2dOptions) -> String {
    format!(
        "{name}(kernel_size={:?}, stride={:?}, padding={:?})",
        o.kernel, o.stride, o.padding
    )
}

/// Max pooling layer.
#[derive(Clone, Copy, Debug, Module)]
pub struct MaxPool2d(pub Pool2dOptions);

impl Module for MaxPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.max_pool2d(&self.0)
    }
    fn describe(&self) -> String {
        describe_pool("MaxPool2d", &self.0)
    }
}

/// Average pooling layer (padding counted as zeros).
#[derive(Clone, Copy, Debug, Module)]
pub struct AvgPool2d(pub Pool2dOptions);

impl Module for AvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.avg_pool2d(&self.0)
    }
    fn describe(&self) -> String {
        describe_pool("AvgPool2d", &self.0)
    }
}

/// Adaptive average pooling to a fixed `[oh, ow]` (`[1, 1]`: global average pooling).
#[derive(Clone, Copy, Debug, Module)]
pub struct AdaptiveAvgPool2d(pub [usize; 2]);

impl Module for AdaptiveAvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.adaptive_avg_pool2d(self.0)
    }
    fn describe(&self) -> String {
        format!("AdaptiveAvgPool2d(output_size={:?})", self.0)
    }
}

/// `[n, ..] -> [n, prod(..)]`.
#[derive(Clone, Copy, Debug, Default, Module)]
pub struct Flatten;

impl Module for Flatten {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match x.shape().first() {
            // The product of the other axes, not numel / n: [0, 3, 4] flattens to [0, 12].
            Some(&n) => x
                .reshape(&[n, x.shape()[1..].iter().product()])
                .map_err(|e| e.in_op("Flatten")),
            None => Err(Error::invalid("Flatten", "cannot flatten a 0-D tensor")),
        }
    }
}

/// Dropout with probability `p` in training mode; the identity in evaluation mode. Starts in
/// training mode, like every PyTorch module.
#[derive(Debug)]
pub struct Dropout {
    p: f32,
    training: AtomicBool,
}

impl Dropout {
    pub fn new(p: f32) -> Result<Dropout> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::invalid(
                "Dropout",
                format!("probability {p} must be in [0, 1]"),
            ));
        }
        Ok(Dropout {
            p,
            training: AtomicBool::new(true),
        })
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.dropout(self.p, self.training.load(Ordering::Relaxed))
    }
    fn describe(&self) -> String {
        format!("Dropout(p={})", self.p)
    }
}

impl Visit for Dropout {
    fn visit(&self, v: &mut Visitor<'_>) {
        v.module(self);
        v.mode(&|training| self.training.store(training, Ordering::Relaxed));
    }
}

/// Batch norm over axis 1 with learnable `weight` (ones) and `bias` (zeros), and running
/// statistics for evaluation. `BatchNorm1d` takes `[n, c]` or `[n, c, l]`; `BatchNorm2d`
/// takes `[n, c, h, w]`.
#[derive(Debug)]
pub struct BatchNorm {
    pub weight: Parameter,
    pub bias: Parameter,
    /// Buffers (frozen parameters, saved in checkpoints): PyTorch's `running_mean`,
    /// `running_var` and `num_batches_tracked`.
    running_mean: Parameter,
    running_var: Parameter,
    batches: Parameter,
    options: Mutex<BatchNormOptions>,
    ranks: &'static [usize],
    name: &'static str,
}

/// Batch norm for `[n, c]` or `[n, c, l]`.
pub type BatchNorm1d = BatchNorm;
/// Batch norm for `[n, c, h, w]`.
pub type BatchNorm2d = BatchNorm;

impl BatchNorm {
    fn build(
        channels: usize,
        device: &Device,
        ranks: &'static [usize],
        name: &'static str,
    ) -> Result<BatchNorm> {
        Ok(BatchNorm {
            weight: Parameter::new(Tensor::ones(&[channels], device)?),
            bias: Parameter::new(Tensor::zeros(&[channels], device)?),
            running_mean: buffer(Tensor::zeros(&[channels], device)?),
            running_var: buffer(Tensor::ones(&[channels], device)?),
            batches: buffer(Tensor::zeros(&[], device)?),
            options: Mutex::new(BatchNormOptions::default()),
            ranks,
            name,
        })
    }

    /// `BatchNorm1d(channels)`: momentum 0.1, eps 1e-5.
    pub fn new_1d(channels: usize, device: &Device) -> Result<BatchNorm> {
        BatchNorm::build(channels, device, &[2, 3], "BatchNorm1d")
    }

    /// `BatchNorm2d(channels)`: momentum 0.1, eps 1e-5.
    pub fn new_2d(channels: usize, device: &Device) -> Result<BatchNorm> {
        BatchNorm::build(channels, device, &[4], "BatchNorm2d")
    }

    /// Sets momentum and eps (the mode stays as `train()`/`eval()` set it).
    pub fn with_constants(self, momentum: f32, eps: f32) -> BatchNorm {
        {
            let mut o = lock(&self.options);
            o.momentum = momentum;
            o.eps = eps;
        }
        self
    }

    /// A copy of the running mean and variance.
    pub fn running_stats(&self) -> RunningStats {
        RunningStats {
            mean: self.running_mean.value(),
            var: self.running_var.value(),
        }
    }
}

impl Module for BatchNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if !self.ranks.contains(&x.rank()) {
            return Err(Error::invalid(
                self.name,
                format!(
                    "{} takes inputs of rank {:?}, found shape {:?}",
                    self.name,
                    self.ranks,
                    x.shape()
                ),
            ));
        }
        let options = *lock(&self.options);
        let mut running = self.running_stats();
        let y = x.batch_norm(
            Some(&mut running),
            Some(&self.weight.value()),
            Some(&self.bias.value()),
            &options,
        )?;
        if options.training {
            self.running_mean.set(running.mean);
            self.running_var.set(running.var);
            self.batches.set(self.batches.value().add_scalar(1.0)?);
        }
        Ok(y)
    }
    fn describe(&self) -> String {
        let o = *lock(&self.options);
        format!(
            "{}({}, eps={}, momentum={})",
            self.name,
            self.weight.shape()[0],
            o.eps,
            o.momentum
        )
    }
}

/// Hand-written: the mode lives in the options, which the op reads.
impl Visit for BatchNorm {
    fn visit(&self, v: &mut Visitor<'_>) {
        v.module(self);
        v.field("weight", &self.weight);
        v.field("bias", &self.bias);
        v.buffer("running_mean", &self.running_mean);
        v.buffer("running_var", &self.running_var);
        v.buffer("num_batches_tracked", &self.batches);
        v.mode(&|training| lock(&self.options).training = training);
    }
}

/// Layer norm over the trailing `normalized_shape` with `weight` (ones) and `bias` (zeros).
#[derive(Debug, Module)]
pub struct LayerNorm {
    pub weight: Parameter,
    pub bias: Parameter,
    normalized_shape: Vec<usize>,
    eps: f32,
}

impl LayerNorm {
    /// eps 1e-5.
    pub fn new(normalized_shape: &[usize], device: &Device) -> Result<LayerNorm> {
        Ok(LayerNorm {
            weight: Parameter::new(Tensor::ones(normalized_shape, device)?),
            bias: Parameter::new(Tensor::zeros(normalized_shape, device)?),
            normalized_shape: normalized_shape.to_vec(),
            eps: 1e-5,
        })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (w, b) = (self.weight.value(), self.bias.value());
        x.layer_norm(&self.normalized_shape, Some(&w), Some(&b), self.eps)
    }
    fn describe(&self) -> String {
        format!("LayerNorm({:?}, eps={})", self.normalized_shape, self.eps)
    }
}

/// A lookup table: `I32` indices `[..]` -> rows `[.., dim]` of `weight`
/// `[num, dim]`, initialised `N(0, 1)` as in PyTorch. Out-of-range indices are an error.
#[derive(Debug, Module)]
pub struct Embedding {
    pub weight: Parameter,
}

impl Embedding {
    pub fn new(num: usize, dim: usize, device: &Device) -> Result<Embedding> {
        let w = with_global(|g| init::normal(&[num, dim], 0.0, 1.0, g, device))?;
        Ok(Embedding {
            weight: Parameter::new(w),
        })
    }
}

impl Module for Embedding {
    fn forward(&self, indices: &Tensor) -> Result<Tensor> {
        crate::dtype::require_index("Embedding", indices.dtype())?;
        let w = self.weight.value();
        let rows = w.index_select(0, &indices.reshape(&[indices.numel()])?)?;
        let shape: Vec<usize> = indices
            .shape()
            .iter()
            .copied()
            .chain([w.shape()[1]])
            .collect();
        rows.reshape(&shape)
    }
    fn describe(&self) -> String {
        let w = self.weight.shape();
        format!("Embedding({}, {})", w[0], w[1])
    }
}

macro_rules! activation {
    ($($(#[$doc:meta])* $name:ident => |$x:ident| $body:expr, $fused:expr;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, Module)]
        pub struct $name;
        impl Module for $name {
            fn forward(&self, $x: &Tensor) -> Result<Tensor> {
                $body
            }
            fn as_activation(&self) -> Option<Activation> {
                $fused
            }
        }
    )*};
}

activation! {
    /// `max(x, 0)`. In a [`Sequential`](super::Sequential) after Linear or Conv2d, it runs
    /// in their matmul's epilogue.
    ReLU => |x| x.relu(), Some(Activation::Relu);
    /// `1 / (1 + e^-x)`; fused like ReLU.
    Sigmoid => |x| x.sigmoid(), Some(Activation::Sigmoid);
    /// `tanh(x)`; fused like ReLU.
    Tanh => |x| x.tanh(), Some(Activation::Tanh);
    /// GELU, tanh approximation. Not fused: its gradient needs the pre-activation.
    GELU => |x| x.gelu(), None;
}

/// `x` where positive, else `slope * x` (PyTorch's default slope: 0.01).
#[derive(Clone, Copy, Debug, Module)]
pub struct LeakyReLU(pub f32);

impl Module for LeakyReLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.leaky_relu(self.0)
    }
    fn describe(&self) -> String {
        format!("LeakyReLU(negative_slope={})", self.0)
    }
}

/// Softmax along an axis.
#[derive(Clone, Copy, Debug, Module)]
pub struct Softmax(pub isize);

impl Module for Softmax {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.softmax(self.0)
    }
    fn describe(&self) -> String {
        format!("Softmax(dim={})", self.0)
    }
}

/// Log-softmax along an axis.
#[derive(Clone, Copy, Debug, Module)]
pub struct LogSoftmax(pub isize);

impl Module for LogSoftmax {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.log_softmax(self.0)
    }
    fn describe(&self) -> String {
        format!("LogSoftmax(dim={})", self.0)
    }
}

/// The layers whose `Visit` is hand-written print as derived ones do.
macro_rules! display_tree {
    ($($name:ty),*) => {$(
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write_tree(self, f)
            }
        }
    )*};
}

display_tree!(Dropout, BatchNorm);
