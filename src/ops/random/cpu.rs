//! The dropout mask on the CPU: the same hash as `shaders/random.wgsl`.

use crate::cpu::buffers;
use crate::error::Result;
use crate::random::dropout_keeps;

/// `len` mask values: `scale` where `dropout_keeps(key, i, threshold)`, else 0. `len` fits
/// u32 (`Tensor::dropout` checks it).
pub(crate) fn dropout_mask(len: usize, key: u64, threshold: u32, scale: f32) -> Result<Vec<f32>> {
    let mut v = buffers::with_capacity("dropout", len)?;
    v.extend(
        (0..len as u32).map(|i| match dropout_keeps(key, i, threshold) {
            true => scale,
            false => 0.0,
        }),
    );
    Ok(v)
}
