//! Launchers for the index kernels (`shaders/index.wgsl`): gather (and index_select) and
//! one_hot, each checking its indices into a fault slot of its own (`fault.rs`). Over tensors
//! larger than one binding they run on pieces of the output, binding the window of each
//! operand a piece can touch; the kernel adds the piece's first element (`offsets[3]`).

use super::spec::GatherSpec;
use crate::error::{Error, Result};
use crate::gpu::grid::groups_for;
use crate::gpu::kernels::bind::index::{FAULT, INDEX, INPUT, OUT};
use crate::gpu::kernels::Kernel;
use crate::gpu::params::{axes, fault_code, u32_of, wgsl_struct};
use crate::gpu::storage::GpuStorage;
use crate::gpu::window::{plan_flat, span};
use crate::ops::elementwise::gpu::{launch as launch_elementwise, ElementwiseParams, Out};
use crate::ops::elementwise::spec::Strided;

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
pub(crate) fn gather(
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
pub(crate) fn one_hot(
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

/// Copies each part into `out`; a part's spec walks `[destination in out, source]`.
pub(crate) fn cat(out: &GpuStorage, parts: &[(&GpuStorage, Strided)]) -> Result<()> {
    for (src, spec) in parts {
        copy_part(out, src, spec)?;
    }
    Ok(())
}

/// One part; when a flat piece of it cannot fit (its destination rows lie further apart than a
/// binding: a part of a wide `cat`), its outermost axis is copied one index at a time.
fn copy_part(out: &GpuStorage, src: &GpuStorage, spec: &Strided) -> Result<()> {
    let params = ElementwiseParams::new("cat", spec, 0.0, 0.0)?;
    match launch_elementwise(
        Kernel::CopyInto,
        0,
        params,
        spec,
        out,
        Out::Operand0,
        &[src],
        "cat",
    ) {
        Err(Error::TooLarge { what, .. }) if what.contains("one piece") && spec.shape.len() > 1 => {
            for i in 0..spec.shape[0] {
                let row = Strided {
                    shape: spec.shape[1..].to_vec(),
                    strides: spec.strides.iter().map(|s| s[1..].to_vec()).collect(),
                    offsets: (spec.offsets.iter().zip(&spec.strides))
                        .map(|(&o, s)| o + i * s[0])
                        .collect(),
                };
                copy_part(out, src, &row)?;
            }
            Ok(())
        }
        r => r,
    }
}

wgsl_struct! {
    /// `shaders/index.wgsl` `Params`.
    pub struct IndexParams for [Index] {
        pub numel: u32,
        pub rank: u32,
        pub axis_size: u32,
        pub axis_stride: u32,
        pub offsets: [u32; 4],
        pub shape: [u32; 8],
        pub strides: [[u32; 8]; 2],
        pub op_code: u32,
        pub axis: u32,
        /// The first word of this launch's fault slot (`gpu/fault.rs`).
        pub fault_base: u32,
        pub _pad: u32,
    }
}

impl IndexParams {
    /// `spec` walks `[input, index]` (gather) or `[_, index]` (one_hot, whose `numel` is
    /// `spec.numel() * classes`).
    pub fn new(
        op: &'static str,
        spec: &Strided,
        numel: usize,
        axis_size: usize,
        axis_stride: usize,
        axis: usize,
        fault_base: u32,
    ) -> Result<Self> {
        let mut p = IndexParams {
            numel: u32_of(op, numel)?,
            rank: spec.shape.len() as u32,
            axis_size: u32_of(op, axis_size)?,
            axis_stride: u32_of(op, axis_stride)?,
            offsets: [0; 4],
            shape: axes(op, &spec.shape)?,
            strides: [[0; 8]; 2],
            op_code: fault_code(op),
            axis: axis as u32,
            fault_base,
            _pad: 0,
        };
        // gather walks [input, index] (slots 0, 1); one_hot walks [index] alone (slot 1).
        let slots: &[usize] = if spec.strides.len() == 2 {
            &[0, 1]
        } else {
            &[1]
        };
        for (k, &slot) in slots.iter().enumerate() {
            p.strides[slot] = axes(op, &spec.strides[k])?;
            p.offsets[slot] = u32_of(op, spec.offsets[k])?;
        }
        Ok(p)
    }
}
