//! The reductions, and the lines a reduction or softmax runs along, as both backends are
//! handed them.

use crate::codes::op_codes;

/// A contiguous input seen as `[outer, len, inner]`, reduced (or normalised) along `len`.
/// `numel` bounds the flat index, which lets a full reduction use a ragged last row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LineSpec {
    pub offset: usize,
    pub outer: usize,
    pub len: usize,
    pub inner: usize,
    pub numel: usize,
}

op_codes! {
    /// Reductions along an axis.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum ReduceOp("REDUCE") {
        Sum = 0 => "sum",
        /// NaN wins: a line containing NaN reduces to NaN (like PyTorch).
        Max = 1 => "max",
        Min = 2 => "min",
        /// Index of the first maximum (first NaN if any), as an f32.
        ArgMax = 3 => "argmax",
        ArgMin = 4 => "argmin",
    }
}

impl ReduceOp {
    /// False for the arg-reductions, whose result is an index.
    pub(crate) fn differentiable(self) -> bool {
        !matches!(self, ReduceOp::ArgMax | ReduceOp::ArgMin)
    }
}
