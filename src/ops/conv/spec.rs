//! The sliding-window geometry both backends are handed for im2col/col2im and pooling, and
//! the convolution built on it.

use crate::ops::matmul::spec::Activation;

/// Sliding 2-D windows over images `[n, c, h, w]` (contiguous, from element 0): windows of
/// `kernel` taps spaced by `dilation`, placed every `stride` over the image padded by `pad`
/// on each side, `out` windows along each axis (`[h, w]` order throughout). Unfold (im2col)
/// writes columns `[n, c * kh * kw, oh * ow]`, row `(ci * kh + ki) * kw + kj`; fold (col2im)
/// sums them back. Pooling reads the same geometry with `n * c` planes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window2d {
    pub n: usize,
    pub c: usize,
    pub size: [usize; 2],
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub pad: [usize; 2],
    pub dilation: [usize; 2],
    pub out: [usize; 2],
}

impl Window2d {
    /// Elements of the image `[n, c, h, w]`.
    pub fn image_numel(&self) -> usize {
        self.n * self.c * self.size[0] * self.size[1]
    }
    /// Elements of the columns `[n, c * kh * kw, oh * ow]`.
    pub fn cols_numel(&self) -> usize {
        self.n * self.c * self.kernel[0] * self.kernel[1] * self.out[0] * self.out[1]
    }
    /// Elements of a pooled output `[n, c, oh, ow]`.
    pub fn out_numel(&self) -> usize {
        self.n * self.c * self.out[0] * self.out[1]
    }
    /// The first tap of window `o` along `axis`, in unpadded coordinates (may be negative).
    pub fn start(&self, axis: usize, o: usize) -> isize {
        (o * self.stride[axis]) as isize - self.pad[axis] as isize
    }
}

/// A 2-D convolution as both backends run it: input `[n, c, h, w]` over the windows `win`,
/// weight `[out_c, c / groups, kh, kw]`, an optional bias `[out_c]` and an activation applied
/// as each output is stored; output `[n, out_c, oh, ow]`. Its backward pass takes the
/// gradient of the pre-activation output (the activation and bias gradients are elementwise
/// and a sum, done above the backends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConvSpec {
    pub win: Window2d,
    pub out_c: usize,
    pub groups: usize,
    pub act: Activation,
}

impl ConvSpec {
    /// Windows per image, `oh * ow`.
    pub fn windows(&self) -> usize {
        self.win.out[0] * self.win.out[1]
    }
    /// Taps of one group's window, `c / groups * kh * kw`: the products' inner length.
    pub fn group_taps(&self) -> usize {
        self.win.c / self.groups * self.win.kernel[0] * self.win.kernel[1]
    }
    /// Output channels of one group.
    pub fn group_out(&self) -> usize {
        self.out_c / self.groups
    }
}
