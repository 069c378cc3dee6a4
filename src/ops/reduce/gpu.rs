//! Launchers for the line ops (`shaders/reduce.wgsl`, `shaders/softmax.wgsl`): a contiguous
//! input seen as `[outer, len, inner]`, reduced or normalised along `len`. The kernels index
//! relative to the line, so over a tensor larger than one binding the host runs them on pieces
//! of whole `outer` rows, each binding its rows' windows (`gpu/window.rs`).

use super::spec::LineSpec;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::gpu::grid::groups_for;
use crate::gpu::kernels::bind::{reduce, softmax};
use crate::gpu::kernels::{Kernel, REDUCE_ON_I32};
use crate::gpu::params::{u32_of, wgsl_struct};
use crate::gpu::storage::GpuStorage;
use crate::gpu::window::{plan_rows, Piece};
use crate::ops::reduce::spec::ReduceOp;

// Reduce and softmax launch through one helper, so they bind out and x at the same numbers.
const OUT: u32 = softmax::OUT;
const X: u32 = softmax::X;
const G: u32 = softmax::G;
const _: () = assert!(reduce::OUT == OUT && reduce::X == X);

/// How one line op runs: its kernel for dense rows (`inner == 1`: a workgroup per line) or
/// columns (an invocation per line), and its output elements per `outer` row.
struct LineOp {
    rows_kernel: Kernel,
    columns_kernel: Kernel,
    constant: u32,
    row_out: usize,
}

/// Runs `lo` over `spec`: `x` read from `spec.offset`, `g` (softmax backward) from
/// `grad_offset`, `out` dense.
fn launch(
    lo: &LineOp,
    spec: &LineSpec,
    x: &GpuStorage,
    g: Option<(&GpuStorage, usize)>,
    out: &GpuStorage,
    op: &'static str,
) -> Result<()> {
    let ctx = x.context();
    let max = ctx.max_binding_bytes();
    let row_in = spec.len * spec.inner;
    let buffers = [Some(out), Some(x), g.map(|g| g.0)];
    let align = (ctx.binding_align() / 4) as usize;
    let pieces = if buffers.iter().flatten().all(|s| s.buffer().size() <= max) {
        None // one dispatch, whole buffers
    } else {
        let end = spec.offset + spec.numel;
        let max_elems = (max / 4) as usize;
        let plan = plan_rows(
            spec.outer,
            row_in,
            lo.row_out,
            [spec.offset, end],
            align,
            max_elems,
        );
        Some(plan.ok_or(Error::TooLarge {
            op,
            bytes: row_in as u64 * 4,
            limit: max,
            what: "max_storage_buffer_binding_size: one line of the reduced axis is larger",
        })?)
    };
    let whole = Piece {
        first: 0,
        len: spec.outer,
        windows: Vec::new(),
    };
    for piece in pieces.as_deref().unwrap_or(std::slice::from_ref(&whole)) {
        let done = piece.first * row_in; // elements of x before this piece's rows
        let part = LineSpec {
            offset: spec.offset + done,
            outer: piece.len,
            numel: spec.numel.saturating_sub(done).min(piece.len * row_in),
            ..*spec
        };
        let mut params = LineParams::new(op, &part)?;
        let mut bindings = vec![(OUT, out.buffer(), None), (X, x.buffer(), None)];
        if let Some((g, offset)) = g {
            params.grad_offset = u32_of(op, offset + done)?;
            bindings.push((G, g.buffer(), None));
        }
        if let [input, output] = piece.windows[..] {
            // Offsets relative to the windows, which start at or before the piece's rows (g's
            // rows line up with x's).
            params.offset = u32_of(op, part.offset - input.0 as usize)?;
            params.out_offset = u32_of(op, piece.first * lo.row_out - output.0 as usize)?;
            bindings[0].2 = Some(output);
            bindings[1].2 = Some(input);
            if let Some((g, offset)) = g {
                let (lo, hi) = (offset + done, offset + done + piece.len * row_in);
                let start = lo - lo % align;
                params.grad_offset = u32_of(op, lo - start)?;
                bindings[2] = (G, g.buffer(), Some((start as u64, (hi - start) as u64)));
            }
        }
        let lines = piece.len * spec.inner;
        let (kernel, groups) = match spec.inner {
            1 => (lo.rows_kernel, lines),
            _ => (lo.columns_kernel, groups_for(lines)),
        };
        ctx.dispatch_windows(kernel, lo.constant, &params, &bindings, groups, op)?;
    }
    Ok(())
}

/// `op` along `len`: output `[outer, inner]`.
pub(crate) fn reduce(x: &GpuStorage, spec: &LineSpec, op: ReduceOp) -> Result<GpuStorage> {
    let arg = matches!(op, ReduceOp::ArgMax | ReduceOp::ArgMin);
    let (constant, out_dtype) = match x.dtype() {
        DType::F32 => (op.code(), if arg { DType::I32 } else { DType::F32 }),
        DType::I32 => (op.code() + REDUCE_ON_I32, DType::I32),
        d => {
            return Err(Error::DType {
                op: op.name(),
                got: vec![d],
                expected: "F32 or I32",
                hint: "convert with `.to_dtype`",
            })
        }
    };
    let n = spec.outer * spec.inner;
    let out = GpuStorage::alloc_as(x.context(), op.name(), n, out_dtype)?;
    let lo = LineOp {
        rows_kernel: Kernel::ReduceLines,
        columns_kernel: Kernel::ReduceColumns,
        constant,
        row_out: spec.inner,
    };
    launch(&lo, spec, x, None, &out, op.name())?;
    Ok(out)
}

/// Softmax (or log-softmax) along `len`: output `[outer, len, inner]`.
pub(crate) fn softmax(x: &GpuStorage, spec: &LineSpec, log: bool) -> Result<GpuStorage> {
    let op = if log { "log_softmax" } else { "softmax" };
    let out = GpuStorage::alloc(x.context(), op, spec.outer * spec.len * spec.inner)?;
    let lo = LineOp {
        rows_kernel: Kernel::SoftmaxLines,
        columns_kernel: Kernel::SoftmaxColumns,
        constant: u32::from(log),
        row_out: spec.len * spec.inner,
    };
    launch(&lo, spec, x, None, &out, op)?;
    Ok(out)
}

/// Softmax's gradient from its output `y` and the upstream gradient `g` (from `grad_offset`).
pub(crate) fn softmax_backward(
    y: &GpuStorage,
    g: &GpuStorage,
    spec: &LineSpec,
    grad_offset: usize,
    log: bool,
) -> Result<GpuStorage> {
    let op = "softmax_backward";
    let out = GpuStorage::alloc(y.context(), op, spec.outer * spec.len * spec.inner)?;
    let lo = LineOp {
        rows_kernel: Kernel::SoftmaxBackwardLines,
        columns_kernel: Kernel::SoftmaxBackwardColumns,
        constant: u32::from(log),
        row_out: spec.len * spec.inner,
    };
    launch(&lo, spec, y, Some((g, grad_offset)), &out, op)?;
    Ok(out)
}

wgsl_struct! {
    /// `shaders/reduce.wgsl` and `shaders/softmax.wgsl` `Params`.
    pub struct LineParams for [Reduce, Softmax] {
        pub offset: u32,
        pub outer: u32,
        pub len: u32,
        pub inner: u32,
        pub numel: u32,
        pub lines: u32,
        /// Softmax backward: where the upstream gradient starts in its buffer.
        pub grad_offset: u32,
        /// Where the output starts in its binding (a window's piece; 0 otherwise).
        pub out_offset: u32,
    }
}

impl LineParams {
    pub fn new(op: &'static str, s: &LineSpec) -> Result<Self> {
        Ok(LineParams {
            offset: u32_of(op, s.offset)?,
            outer: u32_of(op, s.outer)?,
            len: u32_of(op, s.len)?,
            inner: u32_of(op, s.inner)?,
            numel: u32_of(op, s.numel)?,
            lines: u32_of(op, s.outer * s.inner)?,
            grad_offset: 0,
            out_offset: 0,
        })
    }
}
