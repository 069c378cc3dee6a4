//! The dropout mask kernel's launcher (`shaders/random.wgsl`).

use std::sync::Arc;

use crate::error::Result;
use crate::gpu::context::GpuContext;
use crate::gpu::grid::groups_for;
use crate::gpu::kernels::bind::random;
use crate::gpu::kernels::Kernel;
use crate::gpu::params::{u32_of, wgsl_struct};
use crate::gpu::storage::GpuStorage;

wgsl_struct! {
    /// `shaders/random.wgsl` `Params`.
    pub struct MaskParams for [Random] {
        pub numel: u32,
        pub key_lo: u32,
        pub key_hi: u32,
        pub threshold: u32,
        pub scale: f32,
        /// The first element of this dispatch (a piece of a mask larger than one binding).
        pub first: u32,
        pub _pad: [u32; 2],
    }
}

/// `numel` mask values: `scale` where the hash of (key, i) passes `threshold`, else 0.
pub(crate) fn dropout_mask(
    ctx: &Arc<GpuContext>,
    numel: usize,
    key: u64,
    threshold: u32,
    scale: f32,
) -> Result<GpuStorage> {
    let op = "dropout";
    let out = GpuStorage::alloc(ctx, op, numel)?;
    // One dispatch, or pieces of a mask larger than one binding: element i hashes its own
    // index, so a piece only needs its first.
    let (max, align) = (ctx.max_binding_bytes() / 4, ctx.binding_align() / 4);
    let pieces = match out.buffer().size() <= ctx.max_binding_bytes() {
        true => vec![(0, numel, None)],
        false => {
            let per = (max / align * align) as usize;
            (0..numel)
                .step_by(per)
                .map(|f| {
                    (
                        f,
                        per.min(numel - f),
                        Some((f as u64, per.min(numel - f) as u64)),
                    )
                })
                .collect()
        }
    };
    for (first, len, window) in pieces {
        let params = MaskParams {
            numel: u32_of(op, len)?,
            key_lo: key as u32,
            key_hi: (key >> 32) as u32,
            threshold,
            scale,
            first: u32_of(op, first)?,
            _pad: [0; 2],
        };
        let bindings = [(random::OUT, out.buffer(), window)];
        ctx.dispatch_windows(
            Kernel::DropoutMask,
            0,
            &params,
            &bindings,
            groups_for(len),
            op,
        )?;
    }
    Ok(out)
}
