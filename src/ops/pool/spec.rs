//! How a pooling window is reduced; the window geometry is conv's [`Window2d`].

use crate::codes::op_codes;

op_codes! {
    /// How a pooling window is reduced.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum PoolKind("POOL") {
        /// The largest tap (padding never wins); the arg-max is kept for the gradient.
        Max = 0 => "max",
        /// The mean over `kh * kw` taps, padding counted as zeros (PyTorch's default).
        Avg = 1 => "avg",
        /// Window `o` along an axis of `size` spans `floor(o*size/out)..ceil((o+1)*size/out)`.
        AdaptiveAvg = 2 => "adaptive_avg",
    }
}
