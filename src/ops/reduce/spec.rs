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
    ///
    /// ```
    /// use ferrograd::op::ReduceOp;
    /// use ferrograd::{Device, Tensor};
    /// let x = Tensor::new([[1.0, 5.0], [7.0, 2.0]], &Device::cpu())?;
    /// // Each reduction is a method of `Tensor`; along axis 1, one value per row:
    /// let per_row = |op: ReduceOp| match op {
    ///     ReduceOp::Sum => x.sum(1, false),
    ///     ReduceOp::Max => x.amax(1, false),
    ///     ReduceOp::Min => x.amin(1, false),
    ///     ReduceOp::ArgMax => x.argmax(1, false),
    ///     ReduceOp::ArgMin => x.argmin(1, false),
    /// };
    /// assert_eq!(per_row(ReduceOp::Sum)?.to_vec()?, vec![6.0, 9.0]);
    /// assert_eq!(per_row(ReduceOp::ArgMax)?.to_vec_as::<i32>()?, vec![1, 0]); // I32
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum ReduceOp("REDUCE") {
        /// The sum of the line.
        Sum = 0 => "sum",
        /// NaN wins: a line containing NaN reduces to NaN (like PyTorch).
        Max = 1 => "max",
        /// NaN wins, as for `Max`.
        Min = 2 => "min",
        /// Index of the first maximum (first NaN if any), as an `I32`.
        ArgMax = 3 => "argmax",
        /// Index of the first minimum (first NaN if any), as an `I32`.
        ArgMin = 4 => "argmin",
    }
}

impl ReduceOp {
    /// False for the arg-reductions, whose result is an index.
    pub(crate) fn differentiable(self) -> bool {
        !matches!(self, ReduceOp::ArgMax | ReduceOp::ArgMin)
    }
}
