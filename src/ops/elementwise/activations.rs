//! The activations beyond ReLU, sigmoid and tanh, as PyTorch defines them: GELU (exact and
//! tanh form), SiLU, ELU and Softplus have kernels of their own (`UnaryOp::Gelu`, `GeluTanh`,
//! `Silu`, `Elu`, `Softplus`, on both backends); Mish, ReLU6 and Hardtanh are built from them
//! and `clamp`. The gradients of SiLU, ELU and Softplus are here too (GELU's are kernels).

use super::op::UnaryOp;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

impl Tensor {
    /// GELU, exact: `x Φ(x)` with Φ the standard normal CDF, as `torch.nn.functional.gelu`'s
    /// default. Φ comes from erfc, so the lower tail keeps its relative accuracy (GELU(-5)
    /// is -1.4333e-6 as in f64; PyTorch's f32 kernel, through `1 + erf`, gives -1.19e-6).
    ///
    /// ```
    /// use ferrograd::{Device, Tensor};
    /// let y = Tensor::new([-1.0, 0.0, 1.0], &Device::cpu())?.gelu()?.to_vec()?;
    /// assert!((y[0] + 0.158_655_25).abs() < 1e-7 && y[1] == 0.0);
    /// assert!((y[2] - 0.841_344_75).abs() < 1e-7); // Φ(1)
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub fn gelu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Gelu, "gelu")
    }

    /// GELU's tanh approximation `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`, as
    /// `torch.nn.functional.gelu(approximate="tanh")` (GPT-2 and BERT's form).
    pub fn gelu_tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::GeluTanh, "gelu_tanh")
    }

    /// `x * sigmoid(x)` (SiLU, or swish), as `torch.nn.functional.silu`.
    ///
    /// ```
    /// use ferrograd::{Device, Tensor};
    /// let y = Tensor::new([0.0, 2.0], &Device::cpu())?.silu()?.to_vec()?;
    /// assert_eq!(y[0], 0.0);
    /// assert!((y[1] - 2.0 / (1.0 + (-2.0f32).exp())).abs() < 1e-6);
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub fn silu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Silu, "silu")
    }

    /// `x` where `x > 0`, else `alpha * (e^x - 1)`, as `torch.nn.functional.elu` (PyTorch's
    /// default `alpha` is 1). The gradient at 0 is `alpha`, as PyTorch's.
    ///
    /// # Errors
    /// `InvalidArgument` for a NaN or infinite `alpha`.
    pub fn elu(&self, alpha: f32) -> Result<Tensor> {
        finite("elu", "alpha", alpha)?;
        self.unary(UnaryOp::Elu(alpha), "elu")
    }

    /// `ln(1 + e^(beta x)) / beta`, and `x` itself where `beta x > threshold` (for
    /// numerical stability), as `torch.nn.functional.softplus` (defaults: `beta` 1,
    /// `threshold` 20).
    ///
    /// ```
    /// use ferrograd::{Device, Tensor};
    /// let y = Tensor::new([-100.0, 0.0, 30.0], &Device::cpu())?.softplus(1.0, 20.0)?;
    /// let y = y.to_vec()?;
    /// assert!(y[0] > 0.0 && y[0] < 1e-40); // e^-100, not 0
    /// assert!((y[1] - 2f32.ln()).abs() < 1e-7);
    /// assert_eq!(y[2], 30.0);
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// `InvalidArgument` for a `beta` that is 0, NaN or infinite, or a NaN `threshold`.
    pub fn softplus(&self, beta: f32, threshold: f32) -> Result<Tensor> {
        if beta == 0.0 || !beta.is_finite() || threshold.is_nan() {
            return Err(Error::invalid(
                "softplus",
                format!("beta must be finite and non-zero and threshold not NaN, found beta {beta} and threshold {threshold}"),
            ));
        }
        self.unary(UnaryOp::Softplus(beta, threshold), "softplus")
    }

    /// `x * tanh(softplus(x))` (Mish), as `torch.nn.functional.mish`.
    pub fn mish(&self) -> Result<Tensor> {
        let tanh_soft = self.softplus(1.0, 20.0).and_then(|s| s.tanh());
        tanh_soft
            .and_then(|t| self.mul(&t))
            .map_err(|e| e.in_op("mish"))
    }

    /// `min(max(x, min_val), max_val)`, as `torch.nn.functional.hardtanh` (defaults -1, 1);
    /// the gradient is 0 at and beyond the bounds.
    ///
    /// # Errors
    /// `InvalidArgument` when `min_val` exceeds `max_val` or either is NaN.
    pub fn hardtanh(&self, min_val: f32, max_val: f32) -> Result<Tensor> {
        self.clamp_as("hardtanh", min_val, max_val)
    }

    /// `min(max(x, 0), 6)`, as `torch.nn.functional.relu6`.
    pub fn relu6(&self) -> Result<Tensor> {
        self.clamp_as("relu6", 0.0, 6.0)
    }
}

fn finite(op: &'static str, name: &str, v: f32) -> Result<()> {
    match v.is_finite() {
        true => Ok(()),
        false => Err(Error::invalid(
            op,
            format!("{name} must be finite, found {v}"),
        )),
    }
}

/// `g * d op(x) / dx` for the ops of this file with kernels of their own.
pub(super) fn grad(x: &Tensor, op: UnaryOp, g: &Tensor) -> Result<Tensor> {
    match op {
        // d/dx x s(x) = s (1 + x (1 - s)), s = sigmoid(x)
        UnaryOp::Silu => {
            let s = x.sigmoid()?;
            let d = x
                .mul(&s.neg()?.add_scalar(1.0)?)?
                .add_scalar(1.0)?
                .mul(&s)?;
            g.mul(&d)
        }
        // alpha e^x where x <= 0 (alpha at 0), else 1; a NaN x keeps g, as PyTorch's. Not
        // `out + alpha`, which cancels to 0 for very negative x where PyTorch's gradient is a
        // tiny positive.
        UnaryOp::Elu(alpha) => {
            let neg = g.mul(&x.exp()?)?.mul_scalar(alpha)?;
            Tensor::where_(&x.le_scalar(0.0)?, &neg, g)
        }
        // sigmoid(beta x), or 1 where beta x > threshold (the identity there). beta x in f32,
        // as the forward computes it, so a half input's mask agrees with its forward.
        UnaryOp::Softplus(beta, threshold) => {
            let bx = x.to_dtype(DType::F32)?.mul_scalar(beta)?;
            let one = Tensor::ones(&[], x.device())?;
            let d = Tensor::where_(&bx.gt_scalar(threshold)?, &one, &bx.sigmoid()?)?;
            g.mul(&d.to_dtype(g.dtype())?)
        }
        _ => Err(Error::invalid(
            "backward",
            format!("{op:?} has no gradient rule in activations.rs"),
        )),
    }
}
