//! The fused cross entropy both backends are handed.

/// Cross entropy of dense logits `[rows, classes]` against dense class indices `[rows]`, with
/// label smoothing; the formulas are in `shaders/loss.wgsl`. The backward pass reads its
/// upstream gradient `[rows]` at `g_offset + i * g_stride` (stride 0: one broadcast value, as
/// a mean's gradient is).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct CrossEntropySpec {
    pub rows: usize,
    pub classes: usize,
    pub smoothing: f32,
    pub g_offset: usize,
    pub g_stride: usize,
}
