//! The initializers in place on a [`Parameter`], as `torch.nn.init`'s trailing-underscore
//! functions: each draws from the global generator (seeded by [`crate::manual_seed`]) in the
//! parameter's shape, on its device, in its dtype, and sets the value (still a leaf, still
//! frozen if it was). Walk a model with [`crate::nn::Module::named_parameters`] to choose.
//!
//! ```
//! use ferrograd::nn::init::{self, FanMode, Nonlinearity};
//! use ferrograd::nn::{Linear, Module, ReLU, Sequential};
//! use ferrograd::Device;
//! let model = Sequential::new()
//!     .add(Linear::new(4, 8, true, &Device::cpu())?)
//!     .add(ReLU)
//!     .add(Linear::new(8, 2, true, &Device::cpu())?);
//! for (name, p) in model.named_parameters() {
//!     match name.ends_with("bias") {
//!         true => init::zeros_(&p)?,
//!         false => init::kaiming_normal_(&p, FanMode::FanIn, Nonlinearity::Relu)?,
//!     }
//! }
//! assert!(model.named_parameters()[1].1.value().to_vec()?.iter().all(|&b| b == 0.0));
//! # Ok::<(), ferrograd::Error>(())
//! ```

use super::{FanMode, Nonlinearity};
use crate::device::Device;
use crate::error::Result;
use crate::nn::Parameter;
use crate::random::{with_global, Generator};
use crate::tensor::Tensor;

/// Sets `p` to `make(shape, generator, device)`, converted to `p`'s dtype.
fn fill(
    p: &Parameter,
    make: impl FnOnce(&[usize], &mut Generator, &Device) -> Result<Tensor>,
) -> Result<()> {
    let v = p.value();
    let t = with_global(|g| make(v.shape(), g, v.device()))?;
    p.set(t.to_dtype(v.dtype())?);
    Ok(())
}

/// Every element 0.
pub fn zeros_(p: &Parameter) -> Result<()> {
    constant_(p, 0.0)
}

/// Every element 1.
pub fn ones_(p: &Parameter) -> Result<()> {
    constant_(p, 1.0)
}

/// Every element `value`.
pub fn constant_(p: &Parameter, value: f32) -> Result<()> {
    fill(p, |shape, _, dev| super::constant(shape, value, dev))
}

/// Uniform in `[lo, hi)` ([`super::uniform`]).
pub fn uniform_(p: &Parameter, lo: f32, hi: f32) -> Result<()> {
    fill(p, |shape, g, dev| super::uniform(shape, lo, hi, g, dev))
}

/// Normal with `mean` and `std` ([`super::normal`]).
pub fn normal_(p: &Parameter, mean: f32, std: f32) -> Result<()> {
    fill(p, |shape, g, dev| super::normal(shape, mean, std, g, dev))
}

/// Truncated normal ([`super::trunc_normal`]); PyTorch's defaults are `mean = 0`, `std = 1`,
/// `a = -2`, `b = 2`.
pub fn trunc_normal_(p: &Parameter, mean: f32, std: f32, a: f32, b: f32) -> Result<()> {
    fill(p, |shape, g, dev| {
        super::trunc_normal(shape, mean, std, a, b, g, dev)
    })
}

/// (Semi-)orthogonal ([`super::orthogonal`]).
pub fn orthogonal_(p: &Parameter, gain: f32) -> Result<()> {
    fill(p, |shape, g, dev| super::orthogonal(shape, gain, g, dev))
}

/// Xavier uniform ([`super::xavier_uniform`]).
pub fn xavier_uniform_(p: &Parameter, gain: f32) -> Result<()> {
    fill(p, |shape, g, dev| {
        super::xavier_uniform(shape, gain, g, dev)
    })
}

/// Xavier normal ([`super::xavier_normal`]).
pub fn xavier_normal_(p: &Parameter, gain: f32) -> Result<()> {
    fill(p, |shape, g, dev| super::xavier_normal(shape, gain, g, dev))
}

/// Kaiming uniform ([`super::kaiming_uniform`]).
pub fn kaiming_uniform_(p: &Parameter, mode: FanMode, nonlinearity: Nonlinearity) -> Result<()> {
    fill(p, |shape, g, dev| {
        super::kaiming_uniform(shape, mode, nonlinearity, g, dev)
    })
}

/// Kaiming normal ([`super::kaiming_normal`]).
pub fn kaiming_normal_(p: &Parameter, mode: FanMode, nonlinearity: Nonlinearity) -> Result<()> {
    fill(p, |shape, g, dev| {
        super::kaiming_normal(shape, mode, nonlinearity, g, dev)
    })
}
