//! What both backends are handed for an elementwise op: which kernel, and the operands'
//! strided walk over one collapsed shape.

use crate::dtype::DType;
use crate::error::Result;
use crate::ops::elementwise::op::{BinaryOp, UnaryOp};
use crate::shape::{collapse, Collapsed, Layout};

/// Which elementwise kernel runs over a [`Strided`] spec.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Elementwise {
    /// `out = op(a)`: operands `[a]`.
    Unary(UnaryOp),
    /// `out = a op b`: operands `[a, b]`.
    Binary(BinaryOp),
    /// `out = cond ? a : b`: operands `[cond (Bool), a, b]`.
    Where,
    /// The input converted to a dtype: operands `[a]`. Floats to `I32` truncate toward zero
    /// and saturate (NaN gives 0, as Rust's `as`); anything to `Bool` is `x != 0` (NaN is
    /// true); `Bool` to a number is 0 or 1; `I32` to `F32` rounds to nearest.
    Cast(DType),
}

impl Elementwise {
    /// The dtype of the output, from the operands' (all of one dtype but `Where`'s condition).
    pub fn out_dtype(self, inputs: &[DType]) -> DType {
        match self {
            Elementwise::Unary(op) if op.gives_bool() => DType::Bool,
            Elementwise::Binary(op) if op.gives_bool() => DType::Bool,
            Elementwise::Unary(_) | Elementwise::Binary(_) => inputs[0],
            Elementwise::Where => inputs[1],
            Elementwise::Cast(d) => d,
        }
    }
}

/// Operands walked together over one (collapsed) shape: element `i` of the output (row-major
/// over `shape`) reads operand `j` at `offsets[j] + sum_d idx_d * strides[j][d]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Strided {
    pub shape: Vec<usize>,
    pub strides: Vec<Vec<usize>>,
    pub offsets: Vec<usize>,
}

impl Strided {
    /// Collapses layouts that all have the same shape.
    pub fn new(op: &'static str, layouts: &[&Layout]) -> Result<Strided> {
        let shape = layouts[0].shape();
        let strides: Vec<&[usize]> = layouts.iter().map(|l| l.strides()).collect();
        let Collapsed { shape, strides } = collapse(op, shape, &strides)?;
        Ok(Strided {
            shape,
            strides,
            offsets: layouts.iter().map(|l| l.offset()).collect(),
        })
    }
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}
