//! Weight initializers with PyTorch's formulas (`torch.nn.init`). Fans come from the shape:
//! `fan_in = shape[1] * receptive`, `fan_out = shape[0] * receptive`, where `receptive` is the
//! product of the axes after the first two (a conv kernel's `kh * kw`). Each draws from the
//! generator it is given (layers use the global one, seeded by [`crate::manual_seed`]), so a
//! seed gives the same weights on every device.
//!
//! ```
//! use ferrograd::nn::init::{self, FanMode, Nonlinearity};
//! use ferrograd::{Device, Generator};
//! let mut gen = Generator::new(0);
//! let w = init::kaiming_uniform(&[256, 128], FanMode::FanIn, Nonlinearity::Relu, &mut gen, &Device::cpu())?;
//! let bound = (6.0f32 / 128.0).sqrt(); // gain √2 · √(3 / fan_in)
//! assert!(w.to_vec()?.iter().all(|v| v.abs() <= bound));
//! # Ok::<(), ferrograd::Error>(())
//! ```

use crate::device::Device;
use crate::error::{Error, Result};
use crate::random::Generator;
use crate::tensor::Tensor;

/// The activation a layer feeds, which sets the gain of Xavier and Kaiming init.
///
/// ```
/// use ferrograd::nn::init::{gain, Nonlinearity};
/// assert_eq!(gain(Nonlinearity::Linear), 1.0);
/// assert_eq!(gain(Nonlinearity::Relu), 2f32.sqrt());
/// assert_eq!(gain(Nonlinearity::LeakyRelu(1.0)), 1.0); // √(2 / (1 + 1²))
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Nonlinearity {
    /// Gain 1 (also for sigmoid and conv/linear without activation).
    Linear,
    /// Gain 5/3.
    Tanh,
    /// Gain √2.
    Relu,
    /// Gain √(2 / (1 + slope²)).
    LeakyRelu(f32),
}

/// Which fan Kaiming init preserves: the forward pass's variance (`FanIn`) or the backward's.
///
/// ```
/// use ferrograd::nn::init::{fans, kaiming_normal, FanMode, Nonlinearity};
/// use ferrograd::{Device, Generator};
/// assert_eq!(fans("conv", &[16, 3, 5, 5])?, (75, 400)); // in: 3 · 5 · 5, out: 16 · 5 · 5
/// let w = kaiming_normal(
///     &[16, 3, 5, 5],
///     FanMode::FanOut, // std = √2 / √400
///     Nonlinearity::Relu,
///     &mut Generator::new(0),
///     &Device::cpu(),
/// )?;
/// assert_eq!(w.shape(), &[16, 3, 5, 5]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    /// Scale by `fan_in`: keeps the variance of the forward pass's activations.
    FanIn,
    /// Scale by `fan_out`: keeps the variance of the backward pass's gradients.
    FanOut,
}

/// PyTorch's `calculate_gain`.
pub fn gain(nonlinearity: Nonlinearity) -> f32 {
    match nonlinearity {
        Nonlinearity::Linear => 1.0,
        Nonlinearity::Tanh => 5.0 / 3.0,
        Nonlinearity::Relu => 2f32.sqrt(),
        Nonlinearity::LeakyRelu(s) => (2.0 / (1.0 + s * s)).sqrt(),
    }
}

/// `(fan_in, fan_out)` of a weight shape (at least 2-D).
pub fn fans(op: &'static str, shape: &[usize]) -> Result<(usize, usize)> {
    if shape.len() < 2 {
        return Err(Error::invalid(
            op,
            format!("fan in/out need a shape of at least 2 axes, found {shape:?}"),
        ));
    }
    let receptive: usize = shape[2..].iter().product();
    Ok((shape[1] * receptive, shape[0] * receptive))
}

fn pick(op: &'static str, shape: &[usize], mode: FanMode) -> Result<f32> {
    let (fan_in, fan_out) = fans(op, shape)?;
    let fan = match mode {
        FanMode::FanIn => fan_in,
        FanMode::FanOut => fan_out,
    };
    if fan == 0 {
        return Err(Error::invalid(
            op,
            format!("shape {shape:?} has a zero fan"),
        ));
    }
    Ok(fan as f32)
}

/// Every element `value`.
pub fn constant(shape: &[usize], value: f32, device: &Device) -> Result<Tensor> {
    Tensor::full(shape, value, device)
}

/// Uniform in `[lo, hi)`.
pub fn uniform(
    shape: &[usize],
    lo: f32,
    hi: f32,
    gen: &mut Generator,
    device: &Device,
) -> Result<Tensor> {
    Tensor::rand_with(shape, lo, hi, gen, device)
}

/// Normal with `mean` and `std`.
pub fn normal(
    shape: &[usize],
    mean: f32,
    std: f32,
    gen: &mut Generator,
    device: &Device,
) -> Result<Tensor> {
    Tensor::randn_with(shape, mean, std, gen, device)
}

/// Glorot/Xavier uniform: `U(-a, a)` with `a = gain · √(6 / (fan_in + fan_out))`.
pub fn xavier_uniform(
    shape: &[usize],
    gain: f32,
    gen: &mut Generator,
    device: &Device,
) -> Result<Tensor> {
    let (fi, fo) = fans("xavier_uniform", shape)?;
    let a = gain * (6.0 / (fi + fo).max(1) as f32).sqrt();
    uniform(shape, -a, a, gen, device)
}

/// Glorot/Xavier normal: `N(0, std²)` with `std = gain · √(2 / (fan_in + fan_out))`.
pub fn xavier_normal(
    shape: &[usize],
    gain: f32,
    gen: &mut Generator,
    device: &Device,
) -> Result<Tensor> {
    let (fi, fo) = fans("xavier_normal", shape)?;
    normal(
        shape,
        0.0,
        gain * (2.0 / (fi + fo).max(1) as f32).sqrt(),
        gen,
        device,
    )
}

/// He/Kaiming uniform: `U(-b, b)` with `b = gain · √(3 / fan)`.
pub fn kaiming_uniform(
    shape: &[usize],
    mode: FanMode,
    nonlinearity: Nonlinearity,
    gen: &mut Generator,
    device: &Device,
) -> Result<Tensor> {
    let fan = pick("kaiming_uniform", shape, mode)?;
    let b = gain(nonlinearity) * (3.0 / fan).sqrt();
    uniform(shape, -b, b, gen, device)
}

/// He/Kaiming normal: `N(0, std²)` with `std = gain / √fan`.
pub fn kaiming_normal(
    shape: &[usize],
    mode: FanMode,
    nonlinearity: Nonlinearity,
    gen: &mut Generator,
    device: &Device,
) -> Result<Tensor> {
    let fan = pick("kaiming_normal", shape, mode)?;
    normal(shape, 0.0, gain(nonlinearity) / fan.sqrt(), gen, device)
}

/// PyTorch's default for `Linear` and `Conv2d`: the weight Kaiming-uniform with a leaky slope
/// of √5, which is `U(-1/√fan_in, 1/√fan_in)`, and the bias `U(-1/√fan_in, 1/√fan_in)`.
pub(crate) fn default_layer(
    weight_shape: &[usize],
    bias: bool,
    gen: &mut Generator,
    device: &Device,
) -> Result<(Tensor, Option<Tensor>)> {
    let w = kaiming_uniform(
        weight_shape,
        FanMode::FanIn,
        Nonlinearity::LeakyRelu(5f32.sqrt()),
        gen,
        device,
    )?;
    let b = match bias {
        true => {
            let bound = 1.0 / pick("bias init", weight_shape, FanMode::FanIn)?.sqrt();
            Some(uniform(&[weight_shape[0]], -bound, bound, gen, device)?)
        }
        false => None,
    };
    Ok((w, b))
}
