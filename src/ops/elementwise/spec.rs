//! What both backends are handed for an elementwise op: which kernel, and the operands'
//! strided walk over one collapsed shape.

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
    /// `out = cond != 0 ? a : b`: operands `[cond, a, b]`.
    Where,
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
