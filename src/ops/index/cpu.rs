//! The CPU reference for gather, one_hot and cat: a strided walk over the output, each index
//! checked (integral, in range) before it is used.

use super::spec::GatherSpec;
use crate::cpu::buffers;
use crate::cpu::storage::{CpuElem, CpuStorage};
use crate::cpu::walk::{check_index, StridedWalk};
use crate::error::{Error, Result};
use crate::ops::elementwise::spec::Strided;

// out (index shape) = input[.., index[..], ..] along `axis`.
pub(crate) fn gather<T: CpuElem>(
    input: &[T],
    index: &[i32],
    spec: &GatherSpec,
    op: &'static str,
) -> Result<Vec<T>> {
    let n = spec.strided.numel();
    let mut out = buffers::with_capacity(op, n)?;
    let mut walk = StridedWalk::new(&spec.strided, 0);
    for _ in 0..n {
        let i = check_index(op, index[walk.offsets[1]], spec.axis, spec.axis_size)?;
        out.push(input[walk.offsets[0] + i * spec.axis_stride]);
        walk.advance();
    }
    Ok(out)
}

// index (J) -> out (J, classes)
pub(crate) fn one_hot(index: &[i32], spec: &Strided, classes: usize) -> Result<Vec<i32>> {
    let n = spec.numel();
    let numel = n.saturating_mul(classes);
    let mut out = buffers::zeroed("one_hot", numel)?;
    let mut walk = StridedWalk::new(spec, 0);
    for j in 0..n {
        let c = check_index("one_hot", index[walk.offsets[0]], 0, classes)?;
        out[j * classes + c] = 1;
        walk.advance();
    }
    Ok(out)
}

// Copies each part into a fresh `numel` buffer; a part's spec walks `[dst, src]`.
pub(crate) fn cat<T: CpuElem>(
    parts: &[(&CpuStorage, Strided)],
    numel: usize,
) -> Result<CpuStorage> {
    let mut out = buffers::zeroed("cat", numel)?;
    for (src, spec) in parts {
        // The backend checked the parts share T's dtype (`one_dtype`).
        let src: &[T] = T::view(src).ok_or_else(|| Error::invalid("cat", "mixed dtypes"))?;
        let mut walk = StridedWalk::new(spec, 0);
        for _ in 0..spec.numel() {
            out[walk.offsets[0]] = src[walk.offsets[1]];
            walk.advance();
        }
    }
    Ok(CpuStorage::new(out))
}
