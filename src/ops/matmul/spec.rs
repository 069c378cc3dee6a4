//! The matrix product both backends are handed, with its fused epilogue and the activations
//! it can apply.

use crate::ops::elementwise::op::{BinaryOp, UnaryOp};

/// One operand of a matmul: element `[b, r, c]` at `offset + b*batch + r*row + c*col`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MatOperand {
    pub offset: usize,
    pub batch: usize,
    pub row: usize,
    pub col: usize,
}

impl MatOperand {
    /// Element `[b, r, c]` at `offset + b*batch + r*row + c*col`.
    pub const fn new(offset: usize, batch: usize, row: usize, col: usize) -> Self {
        MatOperand {
            offset,
            batch,
            row,
            col,
        }
    }
}

/// `out[b] = act(a[b] (m×k) · b[b] (k×n) + bias[b])` for `b in 0..batch`; the output is
/// contiguous. The bias (when `bias` is set) is read through its own strides, so one value per
/// column (Linear: row stride 0) or per row (conv: column stride 0) needs no copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MatmulSpec {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: MatOperand,
    pub b: MatOperand,
    pub bias: Option<MatOperand>,
    pub act: Activation,
}

/// An activation that a matmul can apply in its epilogue, fused with the bias add (see
/// [`Tensor::linear`](crate::Tensor::linear)). Only activations whose gradient can be
/// computed from their output are here, because the fused op does not keep the pre-activation:
/// ReLU (`y > 0` exactly where `x > 0`), sigmoid (`σ' = y (1 - y)`) and tanh (`1 - y²`).
/// GELU and leaky ReLU run as their own ops.
///
/// ```
/// use ferrograd::{Activation, Device, Tensor};
/// let x = Tensor::new([-1.0, 0.0, 2.0], &Device::cpu())?;
/// assert_eq!(Activation::Relu.apply(&x)?.to_vec()?, vec![0.0, 0.0, 2.0]);
/// assert_eq!(Activation::Relu.unary().apply(-3.0), 0.0); // the same, on one number
/// assert_eq!(Activation::default(), Activation::Identity);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Activation {
    /// No activation: `x · wᵀ + b`.
    #[default]
    Identity,
    /// `max(x · wᵀ + b, 0)`.
    Relu,
    /// `sigmoid(x · wᵀ + b)`.
    Sigmoid,
    /// `tanh(x · wᵀ + b)`.
    Tanh,
}

impl Activation {
    /// The elementwise op with the same semantics.
    pub fn unary(self) -> UnaryOp {
        match self {
            Activation::Identity => UnaryOp::Identity,
            Activation::Relu => UnaryOp::Relu,
            Activation::Sigmoid => UnaryOp::Sigmoid,
            Activation::Tanh => UnaryOp::Tanh,
        }
    }

    /// The gradient op taking (output, upstream gradient), or `None` for the identity.
    pub(crate) fn backward(self) -> Option<BinaryOp> {
        match self {
            Activation::Identity => None,
            Activation::Relu => Some(BinaryOp::ReluBackward),
            Activation::Sigmoid => Some(BinaryOp::SigmoidBackward),
            Activation::Tanh => Some(BinaryOp::TanhBackward),
        }
    }
}
