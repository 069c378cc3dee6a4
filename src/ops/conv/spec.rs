//! The sliding-window geometry both backends are handed for im2col/col2im and pooling.

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
