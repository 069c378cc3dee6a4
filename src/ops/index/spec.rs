//! The gather both backends are handed (gather and index_select).

use crate::ops::elementwise::spec::Strided;

/// `out[i] = input[base(i) + index(i) * axis_stride]`, where `strided` walks `[input, index]`
/// over the output shape (the input's `axis` stride set to 0). Used by gather and index_select.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GatherSpec {
    pub strided: Strided,
    pub axis: usize,
    pub axis_size: usize,
    pub axis_stride: usize,
}
