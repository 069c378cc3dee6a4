//! Modules: layers that own [`Parameter`]s, composed as plain structs. A model is a struct
//! whose fields are layers, parameters, and `Vec`s or `Option`s of them; `#[derive(Module)]`
//! lists them (named as PyTorch names them, so checkpoints load both ways) and the struct
//! writes its `forward`:
//!
//! ```
//! use ferrograd::nn::{Dropout, Linear, Module, ReLU, Sequential};
//! use ferrograd::{Device, Result, Tensor};
//!
//! #[derive(Module)]
//! struct Mlp {
//!     body: Sequential,
//!     blocks: Vec<Linear>,
//!     head: Option<Linear>,
//!     #[module(skip)] // not part of the model: neither trained nor saved
//!     offset: Tensor,
//! }
//!
//! impl Module for Mlp {
//!     fn forward(&self, x: &Tensor) -> Result<Tensor> {
//!         let mut x = self.body.forward(&x.add(&self.offset)?)?;
//!         for block in &self.blocks {
//!             x = block.forward(&x)?.relu()?;
//!         }
//!         match &self.head {
//!             Some(head) => head.forward(&x),
//!             None => Ok(x),
//!         }
//!     }
//! }
//!
//! let dev = Device::cpu();
//! let net = Mlp {
//!     body: Sequential::new()
//!         .add(Linear::new(4, 8, true, &dev)?)
//!         .add(ReLU)
//!         .add(Dropout::new(0.5)?),
//!     blocks: vec![Linear::new(8, 8, false, &dev)?, Linear::new(8, 8, false, &dev)?],
//!     head: Some(Linear::new(8, 2, true, &dev)?),
//!     offset: Tensor::full(&[4], 0.5, &dev)?,
//! };
//! let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
//! assert_eq!(
//!     names,
//!     ["body.0.weight", "body.0.bias", "blocks.0.weight", "blocks.1.weight", "head.weight", "head.bias"]
//! );
//! net.eval(); // reaches the dropout inside `body`
//! let y = net.forward(&Tensor::ones(&[3, 4], &dev)?)?;
//! assert_eq!(y.shape(), &[3, 2]);
//! print!("{net}"); // the tree, with parameter counts
//! # Ok::<(), ferrograd::Error>(())
//! ```
//!
//! Field attributes: `#[module(skip)]` leaves a field out, `#[module(buffer)]` makes its
//! parameters buffers (saved, not trained, as batch norm's running statistics) and
//! `#[module(rename = "fc1")]` names it. A field's type must be a part (see [`Visit`]): a
//! layer, a [`Parameter`], a container of them, or a plain value such as a size; anything else
//! is a compile error at that field. A module can also implement [`Visit`] by hand.
//!
//! ```compile_fail
//! use ferrograd::nn::Module;
//! #[derive(Module)]
//! struct Cache {
//!     kept: ferrograd::Tensor, // a plain tensor is not a part: skip it, or make it a Parameter
//! }
//! impl Module for Cache {
//!     fn forward(&self, x: &ferrograd::Tensor) -> ferrograd::Result<ferrograd::Tensor> {
//!         x.add(&self.kept)
//!     }
//! }
//! ```
//!
//! ```compile_fail
//! use ferrograd::nn::{Linear, Module};
//! #[derive(Module)]
//! struct Twice {
//!     #[module(rename = "b")] // two parts named `b` would not load back from a checkpoint
//!     a: Linear,
//!     b: Linear,
//! }
//! impl Module for Twice {
//!     fn forward(&self, x: &ferrograd::Tensor) -> ferrograd::Result<ferrograd::Tensor> {
//!         self.b.forward(&self.a.forward(x)?)
//!     }
//! }
//! ```

mod checkpoint;
mod conv;
pub mod init;
mod layers;
mod layers1d;
pub mod loss;
mod rnn;
mod stateless;
mod visit;

use std::sync::{Arc, Mutex, MutexGuard};

use crate::device::Device;
use crate::dtype::DType;
use crate::error::Result;
use crate::ops::matmul::spec::Activation;
use crate::tensor::Tensor;

pub use checkpoint::{load, load_tensors, load_tensors_from_bytes, save, save_tensors, Checkpoint};
pub use conv::{Conv2d, ConvTranspose2d};
pub use layers::{BatchNorm, BatchNorm1d, BatchNorm2d, Dropout, Embedding, LayerNorm, Linear};
pub use layers1d::{AvgPool1d, Conv1d, MaxPool1d, Upsample};
pub use rnn::{Gru, GruCell, Lstm, LstmCell, Rnn, RnnCell, RnnOptions};
pub use stateless::{
    AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, Flatten, GELUTanh, Hardtanh, LeakyReLU,
    LogSoftmax, MaxPool2d, Mish, ReLU, ReLU6, SiLU, Sigmoid, Softmax, Softplus, Tanh, ELU, GELU,
};
#[doc(hidden)]
pub use visit::assert_part;
pub use visit::{write_tree, Visit, Visitor};

/// `#[derive(Module)]`: a struct's [`Visit`] (its parameters, buffers and child modules, by
/// field name) and its `Display` (the model as a tree with parameter counts). See the
/// [module documentation](self) for an example and the field attributes.
pub use ferrograd_derive::Module;
use visit::Found;

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
///
/// ```
/// use ferrograd::nn::Parameter;
/// use ferrograd::{Device, Tensor};
/// let dev = Device::cpu();
/// let p = Parameter::new(Tensor::zeros(&[2, 3], &dev)?);
/// let q = p.clone(); // another handle to the same parameter
/// q.set(Tensor::ones(&[2, 3], &dev)?);
/// assert_eq!(p.value().to_vec()?, vec![1.0; 6]);
/// assert!(p.same(&q) && p.value().tracks_grad()); // a leaf variable
/// p.set_trainable(false); // frozen, through either handle
/// assert!(!q.is_trainable() && !q.value().tracks_grad());
/// assert_eq!(p.shape(), vec![2, 3]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
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
    /// A trainable parameter holding `value` (made a leaf variable tracking gradients).
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

    /// False once frozen ([`set_trainable`](Parameter::set_trainable)`(false)`).
    pub fn is_trainable(&self) -> bool {
        lock(&self.0).trainable
    }

    /// The value's shape.
    pub fn shape(&self) -> Vec<usize> {
        lock(&self.0).value.shape().to_vec()
    }

    /// True when both handles are the same parameter.
    pub fn same(&self, other: &Parameter) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The same for every handle to this parameter (for sets of parameters).
    pub(crate) fn key(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    /// A frozen parameter: module state saved and loaded with the parameters but never
    /// trained, such as batch norm's running statistics. Declare it in a derived module with
    /// `#[module(buffer)]`.
    ///
    /// ```
    /// use ferrograd::nn::Parameter;
    /// use ferrograd::{Device, Tensor};
    /// let count = Parameter::buffer(Tensor::zeros(&[], &Device::cpu())?);
    /// assert!(!count.is_trainable() && !count.value().tracks_grad());
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub fn buffer(value: Tensor) -> Parameter {
        let p = Parameter::new(value);
        p.set_trainable(false);
        p
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

/// A layer or a model: what it computes (`forward`) over the parts its [`Visit`] lists.
/// `#[derive(Module)]` writes the `Visit` (and `Display`) from a struct's fields; the struct
/// implements `Module` itself, for `forward`. Everything else is provided from the walk:
/// parameter and buffer names as in PyTorch (`"body.0.weight"`), `train()`/`eval()`,
/// freezing, dtype conversion. Override none of them; change what `visit` reports instead.
///
/// ```
/// use ferrograd::nn::{Linear, Module};
/// use ferrograd::{Device, Tensor};
/// let dev = Device::cpu();
/// let layer = Linear::new(4, 2, true, &dev)?;
/// assert_eq!(layer.forward(&Tensor::ones(&[3, 4], &dev)?)?.shape(), &[3, 2]);
/// let names: Vec<String> = layer.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["weight", "bias"]);
/// assert_eq!(layer.num_parameters(), 4 * 2 + 2);
/// layer.freeze(); // no gradients, no optimizer steps
/// assert!(layer.parameters().iter().all(|p| !p.is_trainable()));
/// # Ok::<(), ferrograd::Error>(())
/// ```
pub trait Module: Visit {
    /// The module's output for the input `x`.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;

    /// One line saying what this module is, for printing (`Linear(in_features=4, ..)`); the
    /// type's name unless a layer says more.
    fn describe(&self) -> String {
        let full = std::any::type_name::<Self>();
        let path = full.split('<').next().unwrap_or(full);
        path.rsplit("::").next().unwrap_or(path).to_string()
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

    /// Parameters by dotted name, in field order (`"0.weight"`, `"conv1.bias"`). A parameter
    /// reached twice (a layer shared by two fields: tied weights) is listed once, under its
    /// first name, as PyTorch does.
    fn named_parameters(&self) -> Vec<(String, Parameter)> {
        visit::named(self, false, true)
    }

    /// State that is saved and loaded with the parameters but not trained, by dotted name:
    /// batch norm's `running_mean`, `running_var` and `num_batches_tracked`.
    fn named_buffers(&self) -> Vec<(String, Parameter)> {
        visit::named(self, true, true)
    }

    /// Parameters then buffers: everything a checkpoint holds, by name. A shared parameter is
    /// here under every name it is reached by, as in PyTorch's `state_dict`, so checkpoints
    /// with tied weights load both ways.
    fn named_state(&self) -> Vec<(String, Parameter)> {
        let mut all = visit::named(self, false, false);
        all.extend(visit::named(self, true, false));
        all
    }

    /// The parameters, in the order of [`named_parameters`](Module::named_parameters).
    fn parameters(&self) -> Vec<Parameter> {
        self.named_parameters()
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }

    /// How many numbers the parameters hold.
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(|p| p.value().numel()).sum()
    }

    /// Switches training behaviour on or off, here and in every child.
    fn set_training(&self, training: bool) {
        Visitor::walk(self, &mut |found| {
            if let Found::Mode(set) = found {
                set(training);
            }
        });
    }

    /// Training mode: dropout drops, batch norm uses and updates batch statistics.
    fn train(&self) {
        self.set_training(true)
    }

    /// Evaluation mode: dropout is the identity, batch norm uses its running statistics.
    fn eval(&self) {
        self.set_training(false)
    }

    /// Freezes every parameter (see [`Parameter::set_trainable`]): backward computes no
    /// gradient for them and optimizers leave them alone. Freeze a sub-tree by calling it on
    /// that child (`model.features.freeze()`), as in transfer learning.
    fn freeze(&self) {
        self.parameters()
            .iter()
            .for_each(|p| p.set_trainable(false));
    }

    /// Makes every parameter trainable again.
    fn unfreeze(&self) {
        self.parameters().iter().for_each(|p| p.set_trainable(true));
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

    /// Moves every parameter and buffer to `device` (PyTorch's `model.to(device)`), keeping
    /// dtypes, trainable flags and the parameters' identity (so a [`Parameter`] held
    /// elsewhere sees the move). Create the optimizer after moving: its state stays where it
    /// was made.
    ///
    /// ```
    /// use ferrograd::nn::{Linear, Module};
    /// use ferrograd::{Device, Tensor};
    /// let layer = Linear::new(4, 2, true, &Device::cpu())?;
    /// let dev = Device::gpu().unwrap_or(Device::cpu());
    /// layer.to_device(&dev)?;
    /// assert!(layer.parameters().iter().all(|p| p.value().device() == &dev));
    /// assert_eq!(layer.forward(&Tensor::ones(&[3, 4], &dev)?)?.shape(), &[3, 2]);
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// What a copy can fail with (memory); the model is unchanged then.
    fn to_device(&self, device: &Device) -> Result<()> {
        // Everything copied first, so a failure leaves the model as it was.
        let mut moved = Vec::new();
        // Parameters, then buffers, each listed once even when shared (tied weights).
        for (_, p) in self.named_parameters().iter().chain(&self.named_buffers()) {
            let v = p.value();
            if v.device() != device {
                let copy = v
                    .to_device(device)
                    .map_err(|e| e.in_op("Module::to_device"))?;
                moved.push((p.clone(), copy.detach()));
            }
        }
        moved.into_iter().for_each(|(p, v)| p.set(v));
        Ok(())
    }
}

/// Modules applied in order; parameters are named by position (`"0.weight"`, `"2.bias"`).
///
/// ```
/// use ferrograd::nn::{Linear, Module, ReLU, Sequential};
/// use ferrograd::{Device, Tensor};
/// let dev = Device::cpu();
/// let net = Sequential::new()
///     .add(Linear::new(3, 5, true, &dev)?)
///     .add(ReLU)
///     .add(Linear::new(5, 1, false, &dev)?);
/// assert_eq!(net.len(), 3);
/// let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["0.weight", "0.bias", "2.weight"]);
/// assert_eq!(net.forward(&Tensor::ones(&[4, 3], &dev)?)?.shape(), &[4, 1]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module + Send + Sync>>,
}

impl Sequential {
    /// An empty sequence; [`add`](Sequential::add) appends layers.
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Appends a layer.
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Module + Send + Sync + 'static) -> Sequential {
        self.layers.push(Box::new(layer));
        self
    }

    /// How many layers it holds.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// True when it holds no layer (its forward is the identity).
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl Visit for Sequential {
    fn visit(&self, v: &mut Visitor<'_>) {
        v.module(self);
        self.layers.visit(v);
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
}

impl std::fmt::Display for Sequential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_tree(self, f)
    }
}

impl std::fmt::Debug for Sequential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let layers: Vec<String> = self.layers.iter().map(|l| l.describe()).collect();
        f.debug_struct("Sequential")
            .field("layers", &layers)
            .finish()
    }
}
