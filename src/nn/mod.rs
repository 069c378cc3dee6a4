//! Modules: layers that own [`Parameter`]s, composed as plain structs (micrograd's and
//! candle's way, no macros). A model implements [`Module`]: `forward`, its named parameters
//! (`"features.0.weight"`), and train/eval mode.
//!
//! ```
//! use ferrograd::nn::{self, Linear, Module, Parameter, ReLU, Sequential};
//! use ferrograd::{Device, Result, Tensor};
//!
//! struct Mlp {
//!     body: Sequential,
//!     head: Linear,
//! }
//!
//! impl Module for Mlp {
//!     fn forward(&self, x: &Tensor) -> Result<Tensor> {
//!         self.head.forward(&self.body.forward(x)?)
//!     }
//!     fn named_parameters(&self) -> Vec<(String, Parameter)> {
//!         nn::named(&[("body", &self.body), ("head", &self.head)])
//!     }
//!     fn set_training(&self, training: bool) {
//!         self.body.set_training(training);
//!     }
//! }
//!
//! let dev = Device::cpu();
//! let body = Sequential::new().add(Linear::new(4, 8, true, &dev)?).add(ReLU);
//! let net = Mlp { body, head: Linear::new(8, 2, true, &dev)? };
//! let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
//! assert_eq!(names, ["body.0.weight", "body.0.bias", "head.weight", "head.bias"]);
//! let y = net.forward(&Tensor::ones(&[3, 4], &dev)?)?;
//! assert_eq!(y.shape(), &[3, 2]);
//! # Ok::<(), ferrograd::Error>(())
//! ```

mod checkpoint;
pub mod init;
mod layers;
pub mod loss;
mod rnn;

use std::sync::{Arc, Mutex, MutexGuard};

use crate::dtype::DType;
use crate::error::Result;
use crate::ops::matmul::spec::Activation;
use crate::tensor::Tensor;

pub use checkpoint::{load, load_tensors, load_tensors_from_bytes, save, save_tensors, Checkpoint};
pub use layers::{
    AdaptiveAvgPool2d, AvgPool2d, BatchNorm, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Embedding,
    Flatten, LayerNorm, LeakyReLU, Linear, LogSoftmax, MaxPool2d, ReLU, Sigmoid, Softmax, Tanh,
    GELU,
};
pub use rnn::{Gru, GruCell, Lstm, LstmCell, Rnn, RnnCell};

/// Parameters (or buffers) by dotted name.
type Named = Vec<(String, Parameter)>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct ParamInner {
    value: Tensor,
    trainable: bool,
}

/// A trainable tensor a module owns. Cloning gives another handle to the same parameter, so
/// an optimizer can hold it and replace its value after a step; the module's next forward uses
/// the new value. The value is a leaf variable (it tracks gradients) unless frozen.
#[derive(Clone)]
pub struct Parameter(Arc<Mutex<ParamInner>>);

/// `value` as a leaf variable: itself if it already is one (so a caller's variable, such as
/// gradcheck's, keeps its identity), else a new leaf over the same data.
fn as_leaf(value: Tensor) -> Tensor {
    if value.is_leaf() && value.tracks_grad() {
        value
    } else {
        value.detach().requires_grad()
    }
}

impl Parameter {
    pub fn new(value: Tensor) -> Parameter {
        Parameter(Arc::new(Mutex::new(ParamInner {
            value: as_leaf(value),
            trainable: true,
        })))
    }

    /// The current value: the handle whose gradient `backward` reports (`grads.get(&p.value())`).
    pub fn value(&self) -> Tensor {
        lock(&self.0).value.clone()
    }

    /// Replaces the value (an optimizer step, a loaded checkpoint). The new value is made a
    /// leaf variable unless the parameter is frozen.
    pub fn set(&self, value: Tensor) {
        let mut p = lock(&self.0);
        p.value = if p.trainable {
            as_leaf(value)
        } else {
            value.detach()
        };
    }

    /// Stops (or restarts) training this parameter: a frozen value tracks no gradient, so
    /// backward skips it and optimizers leave it alone (transfer learning).
    pub fn set_trainable(&self, trainable: bool) {
        let mut p = lock(&self.0);
        p.trainable = trainable;
        p.value = if trainable {
            p.value.detach().requires_grad()
        } else {
            p.value.detach()
        };
    }

    pub fn is_trainable(&self) -> bool {
        lock(&self.0).trainable
    }

    pub fn shape(&self) -> Vec<usize> {
        lock(&self.0).value.shape().to_vec()
    }

    /// True when both handles are the same parameter.
    pub fn same(&self, other: &Parameter) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for Parameter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = lock(&self.0);
        write!(
            f,
            "Parameter({:?}, trainable: {})",
            p.value.shape(),
            p.trainable
        )
    }
}

/// A layer or a model. Only `forward` is required; a module with parameters lists them, and
/// one whose behaviour depends on the mode (dropout, batch norm) or that holds such modules
/// implements `set_training`.
pub trait Module {
    fn forward(&self, x: &Tensor) -> Result<Tensor>;

    /// Parameters by dotted name, children first-to-last (`"0.weight"`, `"conv1.bias"`).
    fn named_parameters(&self) -> Vec<(String, Parameter)> {
        Vec::new()
    }

    /// State that is saved and loaded with the parameters but not trained, by dotted name:
    /// batch norm's `running_mean`, `running_var` and `num_batches_tracked`. A model holding
    /// such layers forwards them with [`named_buffers`].
    fn named_buffers(&self) -> Vec<(String, Parameter)> {
        Vec::new()
    }

    /// Parameters then buffers: everything a checkpoint holds, by name.
    fn named_state(&self) -> Vec<(String, Parameter)> {
        let mut all = self.named_parameters();
        all.extend(self.named_buffers());
        all
    }

    /// The activation this layer is, when a preceding layer may fuse it into its own kernel
    /// (ReLU, Sigmoid, Tanh); `None` for every other layer.
    fn as_activation(&self) -> Option<Activation> {
        None
    }

    /// `act(self.forward(x))`. Linear and Conv2d override it to apply `act` in their matmul's
    /// epilogue (see [`Tensor::linear`]); [`Sequential`] calls it for a layer followed by one
    /// whose [`as_activation`](Module::as_activation) is set.
    fn forward_activated(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        act.apply(&self.forward(x)?)
    }

    /// Switches training behaviour on or off, here and in every child.
    fn set_training(&self, _training: bool) {}

    fn parameters(&self) -> Vec<Parameter> {
        self.named_parameters()
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }

    /// Converts every float parameter and buffer to the float dtype `dtype` (`model.half()`
    /// in PyTorch is `to_dtype(DType::F16)`); integer buffers stay as they are. Inputs must be
    /// converted too: a half `Linear` or `Conv2d` refuses an `F32` input, as in PyTorch. Train such a model
    /// with an optimizer (it keeps f32 master weights for half parameters) and, for `F16`, a
    /// [`crate::optim::GradScaler`].
    ///
    /// ```
    /// use ferrograd::nn::{Linear, Module};
    /// use ferrograd::{DType, Device, Tensor};
    /// let dev = Device::cpu();
    /// let layer = Linear::new(4, 2, true, &dev)?;
    /// layer.to_dtype(DType::BF16)?;
    /// let y = layer.forward(&Tensor::ones(&[3, 4], &dev)?.to_dtype(DType::BF16)?)?;
    /// assert_eq!(y.dtype(), DType::BF16);
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// `DType` when `dtype` is not `F32`, `F16` or `BF16`; the model is unchanged then.
    fn to_dtype(&self, dtype: DType) -> Result<()> {
        let op = "Module::to_dtype";
        crate::dtype::require_float(op, dtype)?;
        if dtype == DType::F64 {
            return Err(crate::dtype::not_on_gpu(op, dtype));
        }
        // Everything converted first, so a failure (memory) leaves the model as it was.
        let state = self.named_state();
        let mut converted = Vec::new();
        for (_, p) in &state {
            let v = p.value();
            if v.dtype().is_float() && v.dtype() != dtype {
                converted.push((p, v.to_dtype(dtype).map_err(|e| e.in_op(op))?.detach()));
            }
        }
        converted.into_iter().for_each(|(p, v)| p.set(v));
        Ok(())
    }

    /// Training mode: dropout drops, batch norm uses and updates batch statistics.
    fn train(&self) {
        self.set_training(true)
    }

    /// Evaluation mode: dropout is the identity, batch norm uses its running statistics.
    fn eval(&self) {
        self.set_training(false)
    }
}

/// The named parameters of `children`, each prefixed with the child's name and a dot: what a
/// struct model returns from `named_parameters`.
pub fn named(children: &[(&str, &dyn Module)]) -> Vec<(String, Parameter)> {
    prefixed(children, |m| m.named_parameters())
}

/// The named buffers of `children`, prefixed like [`named`]: what a struct model holding
/// batch norms returns from `named_buffers`.
pub fn named_buffers(children: &[(&str, &dyn Module)]) -> Vec<(String, Parameter)> {
    prefixed(children, |m| m.named_buffers())
}

fn prefixed(
    children: &[(&str, &dyn Module)],
    list: impl Fn(&dyn Module) -> Vec<(String, Parameter)>,
) -> Vec<(String, Parameter)> {
    children
        .iter()
        .flat_map(|(prefix, m)| {
            list(*m)
                .into_iter()
                .map(move |(n, p)| (format!("{prefix}.{n}"), p))
        })
        .collect()
}

/// Modules applied in order; parameters are named by position (`"0.weight"`, `"2.bias"`).
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module + Send + Sync>>,
}

impl Sequential {
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Appends a layer.
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Module + Send + Sync + 'static) -> Sequential {
        self.layers.push(Box::new(layer));
        self
    }

    pub fn len(&self) -> usize {
        self.layers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// `list` over the layers, each named by its position.
    fn by_position(&self, list: fn(&[(&str, &dyn Module)]) -> Named) -> Named {
        let names: Vec<String> = (0..self.layers.len()).map(|i| i.to_string()).collect();
        let children: Vec<(&str, &dyn Module)> = names
            .iter()
            .zip(&self.layers)
            .map(|(n, l)| (n.as_str(), l.as_ref() as &dyn Module))
            .collect();
        list(&children)
    }
}

impl Module for Sequential {
    /// Runs the layers in order. A layer followed by an activation (ReLU, Sigmoid, Tanh) runs
    /// as one `forward_activated` call, so Linear–ReLU is one fused kernel; results and
    /// gradients are those of the two layers run one after the other.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.clone();
        let mut i = 0;
        while i < self.layers.len() {
            let next = self.layers.get(i + 1).and_then(|l| l.as_activation());
            x = match next {
                Some(act) => self.layers[i].forward_activated(&x, act)?,
                None => self.layers[i].forward(&x)?,
            };
            i += if next.is_some() { 2 } else { 1 };
        }
        Ok(x)
    }

    fn named_parameters(&self) -> Vec<(String, Parameter)> {
        self.by_position(named)
    }

    fn named_buffers(&self) -> Vec<(String, Parameter)> {
        self.by_position(named_buffers)
    }

    fn set_training(&self, training: bool) {
        self.layers.iter().for_each(|l| l.set_training(training));
    }
}
