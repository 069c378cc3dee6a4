//! The matrix product both backends are handed, with its fused epilogue.

use crate::op::Activation;

/// One operand of a matmul: element `[b, r, c]` at `offset + b*batch + r*row + c*col`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MatOperand {
    pub offset: usize,
    pub batch: usize,
    pub row: usize,
    pub col: usize,
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
