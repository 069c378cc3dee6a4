//! The lines a reduction or softmax runs along, as both backends are handed them.

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
