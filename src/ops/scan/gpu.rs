//! The scans' launcher (`shaders/scan.wgsl`): chunks of each line scanned in parallel, the
//! chunk totals scanned (by the same launcher, recursively), then folded in.

use super::spec::ScanSpec;
use crate::error::{Error, Result};
use crate::gpu::grid::groups_for;
use crate::gpu::kernels::bind::scan::{CARRIED, CARRY, OUT, X};
use crate::gpu::kernels::Kernel;
use crate::gpu::params::{u32_of, wgsl_struct};
use crate::gpu::storage::GpuStorage;
use crate::ops::reduce::spec::LineSpec;

/// Steps per chunk: short enough that a line of millions is thousands of parallel chunks,
/// long enough that the carries are few.
const CHUNK: usize = 1024;

wgsl_struct! {
    /// `shaders/scan.wgsl` `Params`.
    pub struct ScanParams for [Scan] {
        pub offset: u32,
        pub outer: u32,
        pub len: u32,
        pub inner: u32,
        pub reverse: u32,
        pub chunk: u32,
        pub chunks: u32,
        pub _pad: u32,
    }
}

/// The scan of `x` into a fresh dense buffer.
pub(crate) fn scan(x: &GpuStorage, spec: &ScanSpec) -> Result<GpuStorage> {
    let op = "scan";
    let ctx = x.context();
    let l = &spec.line;
    let numel = l.outer * l.len * l.inner;
    let out = GpuStorage::alloc(ctx, op, numel)?;
    let max = ctx.max_binding_bytes();
    if x.buffer().size() > max || out.buffer().size() > max {
        return Err(Error::TooLarge {
            op,
            bytes: x.buffer().size().max(out.buffer().size()),
            limit: max,
            what: "max_storage_buffer_binding_size: cumsum, cumprod and prod bind their \
                   input and output whole",
        });
    }
    if numel == 0 {
        return Ok(out);
    }
    let chunks = l.len.div_ceil(CHUNK);
    let params = ScanParams {
        offset: u32_of(op, l.offset)?,
        outer: u32_of(op, l.outer)?,
        len: u32_of(op, l.len)?,
        inner: u32_of(op, l.inner)?,
        reverse: u32::from(spec.reverse),
        chunk: CHUNK as u32,
        chunks: u32_of(op, chunks)?,
        _pad: 0,
    };
    // [outer, chunks, inner] chunk totals; with one chunk nothing is carried (and a
    // one-element buffer is bound in its place).
    let carry = GpuStorage::alloc(
        ctx,
        op,
        if chunks > 1 {
            l.outer * chunks * l.inner
        } else {
            1
        },
    )?;
    let code = spec.kind.code();
    let bindings = [
        (OUT, out.buffer()),
        (X, x.buffer()),
        (CARRY, carry.buffer()),
    ];
    let invocations = l.outer * l.inner * chunks;
    ctx.dispatch(
        Kernel::ScanChunks,
        code,
        &params,
        &bindings,
        groups_for(invocations),
        op,
    )?;
    if chunks > 1 {
        let carried = scan(
            &carry,
            &ScanSpec {
                line: LineSpec {
                    offset: 0,
                    outer: l.outer,
                    len: chunks,
                    inner: l.inner,
                    numel: l.outer * chunks * l.inner,
                },
                reverse: false, // the carries are in scan order already
                ..*spec
            },
        )?;
        let bindings = [(OUT, out.buffer()), (CARRIED, carried.buffer())];
        ctx.dispatch(
            Kernel::ScanApply,
            code,
            &params,
            &bindings,
            groups_for(numel),
            op,
        )?;
    }
    Ok(out)
}
