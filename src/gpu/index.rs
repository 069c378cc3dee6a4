//! Launchers for the index kernels (`shaders/index.wgsl`): gather (and index_select) and
//! one_hot, each checking its indices into a fault slot of its own (`fault.rs`). Over tensors
//! larger than one binding they run on pieces of the output, binding the window of each
//! operand a piece can touch; the kernel adds the piece's first element (`offsets[3]`).

use super::grid::groups_for;
use super::kernels::bind::index::{FAULT, INDEX, INPUT, OUT};
use super::kernels::Kernel;
use super::params::{u32_of, IndexParams};
use super::window::{plan_flat, span};
use super::GpuStorage;
use crate::backend::{GatherSpec, Strided};
use crate::error::{Error, Result};

/// Runs `kernel` over `n` dense outputs in pieces; `ranges(first, len)` gives the storage
/// range of each bound operand, in binding order (`out` first), and `operands` which
/// `IndexParams::offsets` slot each rebases (`None`: nothing to rebase).
#[allow(clippy::too_many_arguments)]
fn launch(
    kernel: Kernel,
    mut params: IndexParams,
    n: usize,
    bound: &[(u32, &GpuStorage, Option<usize>)],
    offsets: [usize; 2],
    ranges: impl Fn(usize, usize) -> Vec<(usize, usize)>,
    op: &'static str,
) -> Result<()> {
    let ctx = bound[0].1.context();
    let max = ctx.max_binding_bytes();
    let fault = (FAULT, ctx.fault_buffer(), None);
    if bound.iter().all(|(_, s, _)| s.buffer().size() <= max) {
        let mut bindings: Vec<_> = bound
            .iter()
            .map(|&(b, s, _)| (b, s.buffer(), None))
            .collect();
        bindings.push(fault);
        return ctx.dispatch_windows(kernel, 0, &params, &bindings, groups_for(n), op);
    }
    let align = (ctx.binding_align() / 4) as usize;
    let max_elems = (max / 4) as usize;
    let Some(pieces) = plan_flat(n, align, max_elems, &ranges) else {
        // Say which: the input (gather's binding 2), whose rows any index may read, or the
        // output and index, which a contiguous copy of the index would fix.
        let others = |f: usize, l: usize| {
            let mut r = ranges(f, l);
            if bound.len() > 2 {
                r.remove(1);
            }
            r
        };
        let input = bound.len() > 2 && plan_flat(n, align, max_elems, others).is_some();
        return Err(Error::TooLarge {
            op,
            bytes: bound.iter().map(|(_, s, _)| s.buffer().size()).max().unwrap_or(0),
            limit: max,
            what: match input {
                true => "max_storage_buffer_binding_size: the input is larger, and any row of it may be read",
                false => "max_storage_buffer_binding_size: the index's strides spread one piece past it",
            },
        });
    };
    for piece in pieces {
        params.numel = u32_of(op, piece.len)?;
        params.offsets[3] = piece.first as u32;
        let mut bindings = Vec::new();
        for (&(b, s, slot), w) in bound.iter().zip(&piece.windows) {
            // Within the buffer: only an input with an empty axis (no row a valid index could
            // read) has a range past it, and then any window will do.
            let elems = s.buffer().size() / 4;
            let start = w.0.min(elems - 1) / align as u64 * align as u64;
            let end = (w.0 + w.1).min(elems).max(start + 1);
            let w = &(start, end - start);
            if let Some(slot) = slot {
                // Relative to the window; u32 arithmetic wraps back in the kernel.
                params.offsets[slot] = (offsets[slot] as u32).wrapping_sub(w.0 as u32);
            }
            bindings.push((b, s.buffer(), Some(*w)));
        }
        bindings.push(fault);
        ctx.dispatch_windows(kernel, 0, &params, &bindings, groups_for(piece.len), op)?;
    }
    Ok(())
}

/// `out[i] = input[base(i) + index(i) * axis_stride]` (gather, index_select).
pub(super) fn gather(
    out: &GpuStorage,
    input: &GpuStorage,
    index: &GpuStorage,
    spec: &GatherSpec,
    fault_base: u32,
    op: &'static str,
) -> Result<()> {
    let s = &spec.strided;
    let n = s.numel();
    let params = IndexParams::new(
        op,
        s,
        n,
        spec.axis_size,
        spec.axis_stride,
        spec.axis,
        fault_base,
    )?;
    // Input element i reads base(i) plus any index along the axis.
    let reach = spec.axis_size.saturating_sub(1) * spec.axis_stride;
    let ranges = |first: usize, len: usize| {
        let (lo, hi) = span(s, 0, first, len);
        vec![
            (first, first + len),
            (lo, hi + reach),
            span(s, 1, first, len),
        ]
    };
    let bound = [
        (OUT, out, None),
        (INPUT, input, Some(0)),
        (INDEX, index, Some(1)),
    ];
    launch(
        Kernel::Gather,
        params,
        n,
        &bound,
        [s.offsets[0], s.offsets[1]],
        ranges,
        op,
    )
}

/// `out[j, c] = (index[j] == c)`; `spec` walks the index over j.
pub(super) fn one_hot(
    out: &GpuStorage,
    index: &GpuStorage,
    spec: &Strided,
    classes: usize,
    fault_base: u32,
) -> Result<()> {
    let op = "one_hot";
    let n = spec.numel() * classes;
    let params = IndexParams::new(op, spec, n, classes, 0, 0, fault_base)?;
    let ranges = |first: usize, len: usize| {
        let (j0, j1) = (first / classes, (first + len - 1) / classes);
        vec![(first, first + len), span(spec, 0, j0, j1 - j0 + 1)]
    };
    let bound = [(OUT, out, None), (INDEX, index, Some(1))];
    launch(
        Kernel::OneHot,
        params,
        n,
        &bound,
        [0, spec.offsets[0]],
        ranges,
        op,
    )
}
