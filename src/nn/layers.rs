//! The built-in layers with parameters or state. Each holds its [`Parameter`]s (named as in
//! PyTorch: `weight`, `bias`) and calls the tensor ops; initial values follow PyTorch's
//! defaults and draw from the global generator ([`crate::manual_seed`]). The convolutions are
//! in `conv.rs` (and `layers1d.rs`); the layers without parameters (pooling, activations) are
//! in `stateless.rs`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::{init, lock, write_tree, Module, Parameter, Visit, Visitor};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::ops::matmul::spec::Activation;
use crate::ops::{BatchNormOptions, RunningStats};
use crate::random::with_global;
use crate::tensor::Tensor;

/// `y = x · weightᵀ + bias` over the last axis: `[.., in] -> [.., out]`. Weight `[out, in]`.
///
/// ```
/// use ferrograd::nn::{Linear, Module};
/// use ferrograd::{Device, Tensor};
/// let layer = Linear::new(3, 2, true, &Device::cpu())?;
/// let y = layer.forward(&Tensor::ones(&[5, 3], &Device::cpu())?)?;
/// assert_eq!(y.shape(), &[5, 2]);
/// assert_eq!(layer.to_string(), "Linear(in_features=3, out_features=2, bias=true) (8 parameters)\n");
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Debug, Module)]
pub struct Linear {
    /// `[out, in]`.
    pub weight: Parameter,
    /// `[out]`, if the layer has one.
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
        let [outputs, inputs] = w.shape()[..] else {
            return Err(Error::invalid(
                "Linear",
                format!("the weight must be [out, in], found {:?}", w.shape()),
            ));
        };
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
        match self.weight.shape()[..] {
            [out, inputs] => format!(
                "Linear(in_features={inputs}, out_features={out}, bias={})",
                self.bias.is_some()
            ),
            ref other => format!("Linear(weight {other:?})"), // set to a wrong shape
        }
    }
}

/// Dropout with probability `p` in training mode; the identity in evaluation mode. Starts in
/// training mode, like every PyTorch module.
///
/// ```
/// use ferrograd::nn::{Dropout, Module};
/// use ferrograd::{Device, Tensor};
/// let drop = Dropout::new(0.5)?;
/// let x = Tensor::ones(&[1000], &Device::cpu())?;
/// let kept = drop.forward(&x)?.to_vec()?.iter().filter(|&&v| v > 0.0).count();
/// assert!((400..600).contains(&kept)); // about half, each scaled to 2
/// drop.eval();
/// assert_eq!(drop.forward(&x)?.to_vec()?, x.to_vec()?); // the identity
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Debug)]
pub struct Dropout {
    p: f32,
    training: AtomicBool,
}

impl Dropout {
    /// Zeroes each element with probability `p` in training mode (scaling the others by
    /// `1 / (1 - p)`).
    ///
    /// # Errors
    /// `InvalidArgument` when `p` is not in [0, 1].
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
///
/// ```
/// use ferrograd::nn::{BatchNorm2d, Module};
/// use ferrograd::{Device, Tensor};
/// let dev = Device::cpu();
/// let bn = BatchNorm2d::new_2d(3, &dev)?;
/// let y = bn.forward(&Tensor::randn(&[8, 3, 4, 4], &dev)?)?; // batch statistics
/// assert!(y.mean_all()?.item()?.abs() < 1e-5);
/// let names: Vec<String> = bn.named_buffers().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["running_mean", "running_var", "num_batches_tracked"]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Debug)]
pub struct BatchNorm {
    /// The per-channel scale `[c]` (PyTorch's `weight`, γ).
    pub weight: Parameter,
    /// The per-channel shift `[c]` (β).
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
            running_mean: Parameter::buffer(Tensor::zeros(&[channels], device)?),
            running_var: Parameter::buffer(Tensor::ones(&[channels], device)?),
            batches: Parameter::buffer(Tensor::zeros(&[], device)?),
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
            self.weight.shape().first().copied().unwrap_or(0),
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
///
/// ```
/// use ferrograd::nn::{LayerNorm, Module};
/// use ferrograd::{Device, Tensor};
/// let dev = Device::cpu();
/// let y = LayerNorm::new(&[4], &dev)?.forward(&Tensor::new([[1.0, 2.0, 3.0, 4.0]], &dev)?)?;
/// assert!(y.mean_all()?.item()?.abs() < 1e-6);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Debug, Module)]
pub struct LayerNorm {
    /// The elementwise scale, of the normalised shape.
    pub weight: Parameter,
    /// The elementwise shift, of the normalised shape.
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
///
/// ```
/// use ferrograd::nn::{Embedding, Module};
/// use ferrograd::{Device, Tensor};
/// let dev = Device::cpu();
/// let table = Embedding::new(10, 4, &dev)?;
/// let y = table.forward(&Tensor::new([[1, 2, 3], [4, 5, 6]], &dev)?)?; // I32 indices
/// assert_eq!(y.shape(), &[2, 3, 4]);
/// assert!(table.forward(&Tensor::new([10], &dev)?).is_err()); // out of range
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Debug, Module)]
pub struct Embedding {
    /// The table, `[num, dim]`: row `i` is index `i`'s vector.
    pub weight: Parameter,
}

impl Embedding {
    /// A table of `num` vectors of `dim` numbers.
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
        let [_, dim] = w.shape()[..] else {
            return Err(Error::invalid(
                "Embedding",
                format!("the weight must be [num, dim], found {:?}", w.shape()),
            ));
        };
        let rows = w.index_select(0, &indices.reshape(&[indices.numel()])?)?;
        let shape: Vec<usize> = indices.shape().iter().copied().chain([dim]).collect();
        rows.reshape(&shape)
    }
    fn describe(&self) -> String {
        match self.weight.shape()[..] {
            [num, dim] => format!("Embedding({num}, {dim})"),
            ref other => format!("Embedding(weight {other:?})"),
        }
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
