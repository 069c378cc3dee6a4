//! How a pooling window is reduced; the window geometry is conv's [`Window2d`].

use crate::codes::op_codes;

op_codes! {
    /// How a pooling window is reduced.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum PoolKind("POOL") {
        /// The largest tap (padding never wins); the arg-max is kept for the gradient.
        Max = 0 => "max",
        /// The mean over the window's taps within the padded input, padding counted as
        /// zeros (PyTorch's default `count_include_pad`): `kh * kw` but where a `ceil_mode`
        /// window hangs past the padding.
        Avg = 1 => "avg",
        /// Window `o` along an axis of `size` spans `floor(o*size/out)..ceil((o+1)*size/out)`.
        AdaptiveAvg = 2 => "adaptive_avg",
        /// The mean over the window's taps inside the image (`count_include_pad=False`).
        AvgExcludePad = 3 => "avg_exclude_pad",
        /// The largest tap of an adaptive window (`AdaptiveAvg`'s ranges); arg-max kept.
        AdaptiveMax = 4 => "adaptive_max",
    }
}

impl PoolKind {
    /// Max pooling, which keeps an arg-max for its gradient.
    pub fn is_max(self) -> bool {
        matches!(self, PoolKind::Max | PoolKind::AdaptiveMax)
    }
    /// Windows from the input and output sizes, not a kernel.
    pub fn is_adaptive(self) -> bool {
        matches!(self, PoolKind::AdaptiveAvg | PoolKind::AdaptiveMax)
    }
}
