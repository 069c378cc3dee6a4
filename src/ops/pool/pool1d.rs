//! 1-D max and average pooling over `[n, c, l]`: the 2-D kernels over `[n, c, 1, l]` with a
//! `1 × k` window, so both backends, the gradients and the edge cases are theirs.

use super::Pool2dOptions;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Window, stride and padding of a 1-D pooling (`max_pool1d`, `avg_pool1d`).
///
/// ```
/// use ferrograd::{Device, Pool1dOptions, Tensor};
/// let x = Tensor::new([[[1.0, 3.0, 2.0, 5.0, 4.0]]], &Device::cpu())?; // [1, 1, 5]
/// let y = x.max_pool1d(&Pool1dOptions::new(2))?;
/// assert_eq!(y.to_vec()?, vec![3.0, 5.0]); // the last element has no full window
/// let y = x.avg_pool1d(&Pool1dOptions::new(3).stride(1).padding(1))?;
/// assert_eq!(y.shape(), &[1, 1, 5]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool1dOptions {
    /// Window length.
    pub kernel: usize,
    /// Step between windows (default: the kernel).
    pub stride: usize,
    /// Implicit padding at both ends: -inf for max pooling, zeros for average. At most half
    /// the kernel.
    pub padding: usize,
    /// Spacing between the taps of a max-pooling window (default 1).
    pub dilation: usize,
    /// Output length rounded up (see [`Pool2dOptions::ceil_mode`]).
    pub ceil_mode: bool,
    /// Average pooling: count the padding (default true).
    pub count_include_pad: bool,
}

impl Pool1dOptions {
    /// A window of `kernel` moving by `kernel`, no padding.
    pub fn new(kernel: usize) -> Self {
        Pool1dOptions {
            kernel,
            stride: kernel,
            padding: 0,
            dilation: 1,
            ceil_mode: false,
            count_include_pad: true,
        }
    }
    /// With stride `s`.
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = s;
        self
    }
    /// With padding `p`.
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = p;
        self
    }

    /// With dilation `d` (max pooling).
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = d;
        self
    }
    /// With `ceil_mode`.
    pub fn ceil_mode(mut self, on: bool) -> Self {
        self.ceil_mode = on;
        self
    }
    /// With `count_include_pad`.
    pub fn count_include_pad(mut self, on: bool) -> Self {
        self.count_include_pad = on;
        self
    }

    fn as_2d(&self) -> Pool2dOptions {
        Pool2dOptions {
            kernel: [1, self.kernel],
            stride: [1, self.stride],
            padding: [0, self.padding],
            dilation: [1, self.dilation],
            ceil_mode: self.ceil_mode,
            count_include_pad: self.count_include_pad,
        }
    }
}

impl Tensor {
    /// Max pooling over `[n, c, l]` (`torch.nn.functional.max_pool1d`); the gradient goes to
    /// each window's first maximum.
    pub fn max_pool1d(&self, options: &Pool1dOptions) -> Result<Tensor> {
        self.pool1d("max_pool1d", |x| x.max_pool2d(&options.as_2d()))
    }

    /// Average pooling over `[n, c, l]` (`torch.nn.functional.avg_pool1d`).
    pub fn avg_pool1d(&self, options: &Pool1dOptions) -> Result<Tensor> {
        self.pool1d("avg_pool1d", |x| x.avg_pool2d(&options.as_2d()))
    }

    fn pool1d(
        &self,
        op: &'static str,
        pool: impl FnOnce(&Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        if self.rank() != 3 {
            return Err(Error::invalid(
                op,
                format!(
                    "input must be 3-D [N, C, L], found shape {:?}",
                    self.shape()
                ),
            ));
        }
        let x = self.unsqueeze(2)?;
        pool(&x).and_then(|y| y.squeeze(2)).map_err(|e| e.in_op(op))
    }
}
