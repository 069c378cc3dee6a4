//! The layers without parameters: pooling, `Flatten` and the activations. The activations
//! ReLU, Sigmoid and Tanh tell a preceding Linear or Conv2d in a [`Sequential`](super::Sequential)
//! to apply them in its matmul's epilogue ([`Module::as_activation`]).

use super::Module;
use crate::error::{Error, Result};
use crate::ops::matmul::spec::Activation;
use crate::ops::Pool2dOptions;
use crate::tensor::Tensor;

fn describe_pool(name: &str, o: &Pool2dOptions) -> String {
    let dil = match o.dilation {
        [1, 1] => String::new(),
        d => format!(", dilation={d:?}"),
    };
    let ceil = if o.ceil_mode { ", ceil_mode=true" } else { "" };
    let pad = match (name, o.count_include_pad) {
        ("AvgPool2d", false) => ", count_include_pad=false",
        _ => "",
    };
    format!(
        "{name}(kernel_size={:?}, stride={:?}, padding={:?}{dil}{ceil}{pad})",
        o.kernel, o.stride, o.padding
    )
}

/// Max pooling layer.
///
/// ```
/// use ferrograd::nn::{MaxPool2d, Module};
/// use ferrograd::{Device, Pool2dOptions, Tensor};
/// let x = Tensor::arange(0.0, 16.0, 1.0, &Device::cpu())?.reshape(&[1, 1, 4, 4])?;
/// let y = MaxPool2d(Pool2dOptions::new(2)).forward(&x)?;
/// assert_eq!(y.to_vec()?, vec![5.0, 7.0, 13.0, 15.0]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
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
///
/// ```
/// use ferrograd::nn::{AvgPool2d, Module};
/// use ferrograd::{Device, Pool2dOptions, Tensor};
/// let x = Tensor::arange(0.0, 16.0, 1.0, &Device::cpu())?.reshape(&[1, 1, 4, 4])?;
/// let y = AvgPool2d(Pool2dOptions::new(2)).forward(&x)?;
/// assert_eq!(y.to_vec()?, vec![2.5, 4.5, 10.5, 12.5]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
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

/// Adaptive max pooling to a fixed `[oh, ow]`.
#[derive(Clone, Copy, Debug, Module)]
pub struct AdaptiveMaxPool2d(pub [usize; 2]);

impl Module for AdaptiveMaxPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.adaptive_max_pool2d(self.0)
    }
    fn describe(&self) -> String {
        format!("AdaptiveMaxPool2d(output_size={:?})", self.0)
    }
}

/// Adaptive average pooling to a fixed `[oh, ow]` (`[1, 1]`: global average pooling).
///
/// ```
/// use ferrograd::nn::{AdaptiveAvgPool2d, Module};
/// use ferrograd::{Device, Tensor};
/// let x = Tensor::arange(0.0, 16.0, 1.0, &Device::cpu())?.reshape(&[1, 1, 4, 4])?;
/// assert_eq!(AdaptiveAvgPool2d([1, 1]).forward(&x)?.to_vec()?, vec![7.5]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
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
///
/// ```
/// use ferrograd::nn::{Flatten, Module};
/// use ferrograd::{Device, Tensor};
/// let y = Flatten.forward(&Tensor::zeros(&[2, 3, 4, 5], &Device::cpu())?)?;
/// assert_eq!(y.shape(), &[2, 60]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
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

macro_rules! activation {
    ($($(#[$doc:meta])* $name:ident => |$x:ident| $body:expr, $fused:expr;)*) => {$(
        $(#[$doc])*
        ///
        /// ```
        /// use ferrograd::nn::{self, Module};
        /// use ferrograd::{Device, Tensor};
        #[doc = concat!("let layer = nn::", stringify!($name), ";")]
        /// let y = layer.forward(&Tensor::new([-1.0, 0.0, 2.0], &Device::cpu())?)?;
        /// assert_eq!(y.shape(), &[3]);
        /// # Ok::<(), ferrograd::Error>(())
        /// ```
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
    /// GELU, exact: `x Φ(x)` (PyTorch's `GELU()`). Not fused: its gradient needs the
    /// pre-activation.
    GELU => |x| x.gelu(), None;
    /// GELU's tanh approximation (PyTorch's `GELU(approximate="tanh")`).
    GELUTanh => |x| x.gelu_tanh(), None;
    /// `x * sigmoid(x)` (SiLU, or swish).
    SiLU => |x| x.silu(), None;
    /// `x * tanh(softplus(x))`.
    Mish => |x| x.mish(), None;
    /// `min(max(x, 0), 6)`.
    ReLU6 => |x| x.relu6(), None;
}

/// `x` where positive, else `alpha * (e^x - 1)` (PyTorch's default `alpha`: 1).
///
/// ```
/// use ferrograd::nn::{Module, ELU};
/// use ferrograd::{Device, Tensor};
/// let y = ELU(1.0).forward(&Tensor::new([0.0, 3.0], &Device::cpu())?)?;
/// assert_eq!(y.to_vec()?, vec![0.0, 3.0]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Module)]
pub struct ELU(pub f32);

impl Module for ELU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.elu(self.0)
    }
    fn describe(&self) -> String {
        format!("ELU(alpha={})", self.0)
    }
}

/// `ln(1 + e^(beta x)) / beta`, linear where `beta x > threshold` (PyTorch's defaults: beta
/// 1, threshold 20, which `Softplus::default()` gives).
///
/// ```
/// use ferrograd::nn::{Module, Softplus};
/// use ferrograd::{Device, Tensor};
/// let y = Softplus::default().forward(&Tensor::new([0.0], &Device::cpu())?)?;
/// assert!((y.to_vec()?[0] - 2f32.ln()).abs() < 1e-7);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Module)]
pub struct Softplus {
    /// The sharpness.
    pub beta: f32,
    /// Where `beta * x` exceeds it, the output is `x` itself.
    pub threshold: f32,
}

impl Default for Softplus {
    fn default() -> Softplus {
        Softplus {
            beta: 1.0,
            threshold: 20.0,
        }
    }
}

impl Module for Softplus {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.softplus(self.beta, self.threshold)
    }
    fn describe(&self) -> String {
        format!("Softplus(beta={}, threshold={})", self.beta, self.threshold)
    }
}

/// `min(max(x, min_val), max_val)` (PyTorch's defaults: -1, 1); gradient 0 at the bounds.
///
/// ```
/// use ferrograd::nn::{Hardtanh, Module};
/// use ferrograd::{Device, Tensor};
/// let y = Hardtanh(-1.0, 1.0).forward(&Tensor::new([-3.0, 0.5], &Device::cpu())?)?;
/// assert_eq!(y.to_vec()?, vec![-1.0, 0.5]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Module)]
pub struct Hardtanh(pub f32, pub f32);

impl Module for Hardtanh {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.hardtanh(self.0, self.1)
    }
    fn describe(&self) -> String {
        format!("Hardtanh(min_val={}, max_val={})", self.0, self.1)
    }
}

/// `x` where positive, else `slope * x` (PyTorch's default slope: 0.01).
///
/// ```
/// use ferrograd::nn::{LeakyReLU, Module};
/// use ferrograd::{Device, Tensor};
/// let y = LeakyReLU(0.5).forward(&Tensor::new([-2.0, 3.0], &Device::cpu())?)?;
/// assert_eq!(y.to_vec()?, vec![-1.0, 3.0]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
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
///
/// ```
/// use ferrograd::nn::{Module, Softmax};
/// use ferrograd::{Device, Tensor};
/// let y = Softmax(-1).forward(&Tensor::new([[0.0, 0.0]], &Device::cpu())?)?;
/// assert_eq!(y.to_vec()?, vec![0.5, 0.5]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
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
///
/// ```
/// use ferrograd::nn::{LogSoftmax, Module};
/// use ferrograd::{Device, Tensor};
/// let y = LogSoftmax(-1).forward(&Tensor::new([[0.0, 0.0]], &Device::cpu())?)?;
/// assert!((y.to_vec()?[0] - 0.5f32.ln()).abs() < 1e-6);
/// # Ok::<(), ferrograd::Error>(())
/// ```
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
