//! The cumulative ops both backends are handed.

use crate::codes::op_codes;
use crate::ops::reduce::spec::LineSpec;

op_codes! {
    /// What a scan computes along each line (WGSL: `SCAN_SUM`, ...).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum ScanKind("SCAN") {
        /// `out_t = x_0 + ... + x_t`.
        Sum = 0 => "sum",
        /// `out_t = x_0 · ... · x_t`.
        Prod = 1 => "prod",
    }
}

/// A scan of a contiguous input seen as `[outer, len, inner]` along `len`, read from
/// `line.offset`, into a dense output of the same shape. `reverse` walks each line from its
/// end (step 0 is the last element).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ScanSpec {
    pub line: LineSpec,
    pub kind: ScanKind,
    pub reverse: bool,
}
