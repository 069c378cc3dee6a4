//! The normalisation both backends are handed (batch norm, layer norm).

/// Normalisation of a contiguous `[outer, groups, inner]` input: each of the `groups` has its
/// own mean and variance over its `outer * inner` elements. Batch norm is `[n, c, h*w]`;
/// layer norm is `[1, rows, features]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct NormSpec {
    pub outer: usize,
    pub groups: usize,
    pub inner: usize,
    pub eps: f32,
}

impl NormSpec {
    pub fn numel(&self) -> usize {
        self.outer * self.groups * self.inner
    }
    /// Elements per group.
    pub fn count(&self) -> usize {
        self.outer * self.inner
    }
}
