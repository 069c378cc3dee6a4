//! Launchers for the fused cross entropy (`shaders/loss.wgsl`). The kernels index by row from
//! the first row bound, so over logits larger than one binding they run on pieces of whole
//! rows, each binding its rows' windows (`gpu/window.rs`).

use super::spec::CrossEntropySpec;
use crate::error::{Error, Result};
use crate::gpu::grid::groups_for;
use crate::gpu::kernels::bind::loss::{FAULT, G, LABELS, LSE, LSE_OUT, OUT, X};
use crate::gpu::kernels::Kernel;
use crate::gpu::params::{fault_code, u32_of, wgsl_struct};
use crate::gpu::storage::GpuStorage;
use crate::gpu::window::Window;

const OP: &str = "cross_entropy";

/// Pieces of whole rows `(first, count)`, and whether they bind windows: all rows, bound
/// whole, when every buffer fits a binding; else runs of a multiple of the alignment (so each
/// row-indexed window starts aligned).
type Pieces = (Vec<(usize, usize)>, bool);

fn row_pieces(buffers: &[&GpuStorage], rows: usize, classes: usize) -> Result<Pieces> {
    let ctx = buffers[0].context();
    let max = ctx.max_binding_bytes();
    if buffers.iter().all(|s| s.buffer().size() <= max) {
        return Ok((vec![(0, rows)], false));
    }
    let align = (ctx.binding_align() / 4) as usize;
    let per = (max / 4) as usize / classes.max(1) / align * align;
    if per == 0 {
        return Err(Error::TooLarge {
            op: OP,
            bytes: classes as u64 * 4 * align as u64,
            limit: max,
            what: "max_storage_buffer_binding_size: a few rows of logits are larger",
        });
    }
    let pieces = (0..rows).step_by(per).map(|r| (r, per.min(rows - r)));
    Ok((pieces.collect(), true))
}

fn rows_of(first: usize, count: usize, per_row: usize) -> Option<Window> {
    Some(((first * per_row) as u64, (count * per_row).max(1) as u64))
}

/// The loss `[rows]` and logsumexp `[rows]` of logits `x` against `target`, into `loss` and
/// `lse`; bad classes fault into `fault_base`.
pub(crate) fn forward(
    x: &GpuStorage,
    target: &GpuStorage,
    loss: &GpuStorage,
    lse: &GpuStorage,
    spec: &CrossEntropySpec,
    fault_base: u32,
) -> Result<()> {
    let ctx = x.context();
    let (pieces, windowed) = row_pieces(&[x, target, loss, lse], spec.rows, spec.classes)?;
    for (first, count) in pieces {
        let part = CrossEntropySpec {
            rows: count,
            ..*spec
        };
        let w = |per_row| windowed.then(|| rows_of(first, count, per_row)).flatten();
        let bindings = [
            (OUT, loss.buffer(), w(1)),
            (X, x.buffer(), w(spec.classes)),
            (LABELS, target.buffer(), w(1)),
            (FAULT, ctx.fault_buffer(), None),
            (LSE_OUT, lse.buffer(), w(1)),
        ];
        let params = CrossEntropyParams::new(&part, fault_base)?;
        // One workgroup per row, as softmax_lines.
        ctx.dispatch_windows(Kernel::CrossEntropyRows, 0, &params, &bindings, count, OP)?;
    }
    Ok(())
}

/// The logits' gradient `[rows, classes]` into `out`, from the upstream gradient `g` read at
/// `spec.g_offset + row * spec.g_stride`.
pub(crate) fn backward(
    x: &GpuStorage,
    target: &GpuStorage,
    lse: &GpuStorage,
    g: &GpuStorage,
    out: &GpuStorage,
    spec: &CrossEntropySpec,
) -> Result<()> {
    let ctx = x.context();
    let align = (ctx.binding_align() / 4) as usize;
    let (pieces, windowed) = row_pieces(&[x, target, lse, g, out], spec.rows, spec.classes)?;
    for (first, count) in pieces {
        let mut part = CrossEntropySpec {
            rows: count,
            ..*spec
        };
        let w = |per_row| windowed.then(|| rows_of(first, count, per_row)).flatten();
        let mut g_window = None;
        if windowed {
            // The upstream gradient of these rows: one broadcast value (stride 0) or a run.
            let lo = spec.g_offset + first * spec.g_stride;
            let hi = lo + (count - 1) * spec.g_stride + 1;
            let start = lo / align * align;
            part.g_offset = lo - start;
            g_window = Some((start as u64, (hi - start) as u64));
        }
        let bindings = [
            (OUT, out.buffer(), w(spec.classes)),
            (X, x.buffer(), w(spec.classes)),
            (LABELS, target.buffer(), w(1)),
            (FAULT, ctx.fault_buffer(), None),
            (LSE, lse.buffer(), w(1)),
            (G, g.buffer(), g_window),
        ];
        let params = CrossEntropyParams::new(&part, 0)?;
        let n = count * spec.classes;
        u32_of(OP, n)?;
        ctx.dispatch_windows(
            Kernel::CrossEntropyBackward,
            0,
            &params,
            &bindings,
            groups_for(n),
            OP,
        )?;
    }
    Ok(())
}

wgsl_struct! {
    /// `shaders/loss.wgsl` `Params`.
    pub struct CrossEntropyParams for [Loss] {
        pub rows: u32,
        pub classes: u32,
        pub g_offset: u32,
        pub g_stride: u32,
        pub smoothing: f32,
        pub op_code: u32,
        /// The first word of the forward launch's fault slot (`gpu/fault.rs`).
        pub fault_base: u32,
        pub _pad: u32,
    }
}

impl CrossEntropyParams {
    pub fn new(s: &CrossEntropySpec, fault_base: u32) -> Result<Self> {
        let op = "cross_entropy";
        Ok(CrossEntropyParams {
            rows: u32_of(op, s.rows)?,
            classes: u32_of(op, s.classes)?,
            g_offset: u32_of(op, s.g_offset)?,
            g_stride: u32_of(op, s.g_stride)?,
            smoothing: s.smoothing,
            op_code: fault_code(op),
            fault_base,
            _pad: 0,
        })
    }
}
