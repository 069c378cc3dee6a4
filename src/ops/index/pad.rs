//! Padding (`torch.nn.functional.pad`): a constant border joined with `cat`, or the
//! reflected, replicated or wrapped-around border picked with `index_select`, axis by axis.
//! Both are differentiable ops already, on both backends.

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// What [`Tensor::pad`] fills the border with (PyTorch's `mode`).
///
/// ```
/// use ferrograd::{Device, PadMode, Tensor};
/// let x = Tensor::new([[1.0, 2.0, 3.0]], &Device::cpu())?;
/// let v = |m| x.pad(&[2, 1], m).and_then(|t| t.to_vec());
/// assert_eq!(v(PadMode::Constant(0.0))?, vec![0.0, 0.0, 1.0, 2.0, 3.0, 0.0]);
/// assert_eq!(v(PadMode::Reflect)?, vec![3.0, 2.0, 1.0, 2.0, 3.0, 2.0]);
/// assert_eq!(v(PadMode::Replicate)?, vec![1.0, 1.0, 1.0, 2.0, 3.0, 3.0]);
/// assert_eq!(v(PadMode::Circular)?, vec![2.0, 3.0, 1.0, 2.0, 3.0, 1.0]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PadMode {
    /// Every border element this value (`"constant"`; zeros are a convolution's default).
    Constant(f32),
    /// The mirror image without the edge element (`"reflect"`): padding below the axis length.
    Reflect,
    /// The edge element repeated (`"replicate"`).
    Replicate,
    /// The other end of the axis (`"circular"`): padding at most the axis length.
    Circular,
}

impl Default for PadMode {
    fn default() -> Self {
        PadMode::Constant(0.0)
    }
}

impl Tensor {
    /// Pads the last axes, as `torch.nn.functional.pad(x, pads, mode)`: `pads` holds
    /// `(before, after)` pairs, the last axis first (`[left, right, top, bottom]` for an
    /// image). Differentiable: the border's gradient flows back to the elements it copies.
    ///
    /// # Errors
    /// `InvalidArgument` for an odd number of pads or more pairs than axes, a reflection as
    /// long as the axis, a wrap-around longer than it, or an empty axis to copy from.
    pub fn pad(&self, pads: &[usize], mode: PadMode) -> Result<Tensor> {
        let op = "pad";
        if !pads.len().is_multiple_of(2) || pads.len() / 2 > self.rank() {
            return Err(Error::invalid(
                op,
                format!(
                    "pads must be (before, after) pairs for at most {} axes, found {pads:?}",
                    self.rank()
                ),
            ));
        }
        let mut out = self.clone();
        for (k, pair) in pads.chunks(2).enumerate() {
            let axis = self.rank() - 1 - k;
            out = out.pad_axis(axis, pair[0], pair[1], mode)?;
        }
        Ok(out)
    }

    fn pad_axis(&self, axis: usize, before: usize, after: usize, mode: PadMode) -> Result<Tensor> {
        let op = "pad";
        if before == 0 && after == 0 {
            return Ok(self.clone());
        }
        let len = self.shape()[axis];
        let Some(total) = before.checked_add(len).and_then(|t| t.checked_add(after)) else {
            return Err(Error::invalid(
                op,
                format!(
                    "padding ({before}, {after}) of axis {axis} (length {len}) overflows usize"
                ),
            ));
        };
        let mut shape = self.shape().to_vec();
        shape[axis] = total;
        if crate::shape::checked_numel(op, &shape)? == 0 {
            return Tensor::zeros_dtype(&shape, self.dtype(), self.device());
        }
        if let PadMode::Constant(v) = mode {
            let border = |n: usize| {
                let mut shape = self.shape().to_vec();
                shape[axis] = n;
                Tensor::full_dtype(&shape, f64::from(v), self.dtype(), self.device())
            };
            let (b, a) = (border(before)?, border(after)?);
            return Tensor::cat(&[&b, self, &a], axis as isize).map_err(|e| e.in_op(op));
        }
        let fits = match mode {
            PadMode::Reflect => before < len && after < len,
            _ => len > 0 && (mode != PadMode::Circular || (before <= len && after <= len)),
        };
        if !fits {
            return Err(Error::invalid(
                op,
                format!(
                    "{mode:?} padding ({before}, {after}) does not fit axis {axis} of length \
                     {len} (reflect: each below the length; circular: at most it; any: a \
                     non-empty axis)"
                ),
            ));
        }
        if total > i32::MAX as usize {
            return Err(Error::invalid(
                op,
                format!(
                    "padding ({before}, {after}) of axis {axis} (length {len}) is longer than \
                     the {} elements an index reaches",
                    i32::MAX
                ),
            ));
        }
        let (n, before) = (len as i64, before as i64);
        let index: Vec<i32> = (-before..n + after as i64)
            .map(|j| match mode {
                PadMode::Reflect if j < 0 => -j,
                PadMode::Reflect if j >= n => 2 * (n - 1) - j,
                PadMode::Replicate => j.clamp(0, n - 1),
                PadMode::Circular => j.rem_euclid(n),
                _ => j,
            } as i32)
            .collect();
        let len = index.len();
        let index = Tensor::from_vec(index, &[len], self.device())?;
        self.index_select(axis as isize, &index)
            .map_err(|e| e.in_op(op))
    }
}
