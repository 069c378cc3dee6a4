//! The CPU reference for the scans (`shaders/scan.wgsl`'s formulas), accumulating in f64 as
//! PyTorch's CPU cumsum and cumprod do.

use rayon::prelude::*;

use super::spec::{ScanKind, ScanSpec};
use crate::cpu::buffers;
use crate::cpu::walk::PAR_THRESHOLD;
use crate::error::Result;
use crate::real::Real;

/// The scan of `x` into a dense `[outer, len, inner]`. Each `[len, inner]` block is walked step by step with `inner` accumulators, so
/// the inner loop runs over contiguous memory.
pub(crate) fn scan<T: Real>(x: &[T], s: &ScanSpec) -> Result<Vec<T>> {
    let (len, inner) = (s.line.len, s.line.inner);
    let block = len * inner;
    let mut out = buffers::zeroed("scan", s.line.outer * block)?;
    if block == 0 {
        return Ok(out);
    }
    // Step t of a line is row `pos(t)` of its block.
    let pos = |t: usize| if s.reverse { len - 1 - t } else { t };
    let run = |o: usize, dst: &mut [T]| {
        let src = &x[s.line.offset + o * block..][..block];
        let row = |t: usize| pos(t) * inner..pos(t) * inner + inner;
        let prod = s.kind == ScanKind::Prod;
        let mut acc = vec![if prod { 1.0 } else { 0.0 }; inner];
        for t in 0..len {
            let (xs, ds) = (&src[row(t)], &mut dst[row(t)]);
            for ((a, &v), d) in acc.iter_mut().zip(xs).zip(ds) {
                match prod {
                    true => *a *= v.to_f64(),
                    false => *a += v.to_f64(),
                }
                *d = T::from_f64(*a);
            }
        }
    };
    if out.len() >= PAR_THRESHOLD && s.line.outer > 1 {
        out.par_chunks_mut(block)
            .enumerate()
            .for_each(|(o, dst)| run(o, dst));
    } else {
        out.chunks_mut(block)
            .enumerate()
            .for_each(|(o, dst)| run(o, dst));
    }
    Ok(out)
}
