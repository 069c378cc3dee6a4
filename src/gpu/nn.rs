//! Launchers for the CNN kernels: im2col/col2im (`shaders/conv.wgsl`), pooling
//! (`shaders/pool.wgsl`), normalisation (`shaders/norm.wgsl`), dropout masks
//! (`shaders/random.wgsl`) and the fused optimizer updates (`shaders/optim.wgsl`). Each turns its spec into a typed parameter struct and queues one
//! dispatch; nothing waits for the GPU.

use std::sync::Arc;

use super::context::GpuContext;
use super::grid::groups_for;
use super::kernels::bind::{conv, norm, optim, pool, random};
use super::kernels::Kernel;
use super::params::{MaskParams, NormParams, OptimParams, WindowParams};
use super::GpuStorage;
use crate::backend::{NormSpec, OptimKind, OptimSpec, PoolKind, Window2d};
use crate::error::{Error, Result};

/// Where `launch` binds its output: conv and pool share the number.
const WINDOW_OUT: u32 = conv::OUT;
const _: () = assert!(conv::OUT == pool::OUT);

/// Runs `kernel` with one invocation per element of a fresh `numel` output (binding 1);
/// `bindings` are the other (binding, storage, elements per image) triples, the first one an
/// input. `kind` is `PoolKind::code` for pooling, 0 for unfold/fold.
///
/// Every buffer here holds `win.n` images' worth of data, so over tensors larger than one
/// binding the kernel runs on pieces of whole images, each binding its images' windows; the
/// kernels index from the first image bound, so nothing else changes (`window.rs`).
fn launch(
    kernel: Kernel,
    op: &'static str,
    win: &Window2d,
    kind: u32,
    numel: usize,
    bindings: &[(u32, &GpuStorage, usize)],
) -> Result<GpuStorage> {
    let ctx = bindings[0].1.context();
    let out = GpuStorage::alloc(ctx, op, numel)?;
    // Sizes per image from the geometry, not the buffers: an input may be a view of a longer
    // storage (the first batch chunk of a conv, say).
    let mut all: Vec<(u32, &GpuStorage, usize)> = vec![(WINDOW_OUT, &out, numel / win.n.max(1))];
    all.extend(bindings.iter().copied());
    let max = ctx.max_binding_bytes();
    if all.iter().all(|(_, s, _)| s.buffer().size() <= max) {
        let params = WindowParams::new(op, win, numel, kind)?;
        let whole: Vec<_> = all.iter().map(|&(b, s, _)| (b, s.buffer())).collect();
        ctx.dispatch(kernel, 0, &params, &whole, groups_for(numel), op)?;
        return Ok(out);
    }
    let align = (ctx.binding_align() / 4) as usize;
    let per_image: Vec<usize> = all.iter().map(|&(_, _, size)| size).collect();
    let Some(per_piece) = images_per_piece(&per_image, align, (max / 4) as usize) else {
        return Err(Error::TooLarge {
            op,
            bytes: per_image.iter().max().copied().unwrap_or(0) as u64 * 4,
            limit: max,
            what: "max_storage_buffer_binding_size: one image's data is larger",
        });
    };
    for first in (0..win.n).step_by(per_piece) {
        let count = per_piece.min(win.n - first);
        let part = Window2d { n: count, ..*win };
        let params = WindowParams::new(op, &part, numel / win.n * count, kind)?;
        let bindings: Vec<_> = all
            .iter()
            .zip(&per_image)
            .map(|(&(b, s, _), &size)| {
                let window = ((first * size) as u64, (count * size).max(1) as u64);
                (b, s.buffer(), Some(window))
            })
            .collect();
        let groups = groups_for(numel / win.n * count);
        ctx.dispatch_windows(kernel, 0, &params, &bindings, groups, op)?;
    }
    Ok(out)
}

/// The most images a piece may hold: a multiple of the count that keeps every buffer's window
/// start aligned (`size` elements per image each), with every window within `max`.
fn images_per_piece(sizes: &[usize], align: usize, max: usize) -> Option<usize> {
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let step = sizes.iter().fold(1, |acc, &s| {
        let need = align / gcd(align, s.max(1));
        acc / gcd(acc, need) * need
    });
    let largest = sizes.iter().copied().max().unwrap_or(1).max(1);
    let per = max / largest / step * step;
    (per > 0).then_some(per)
}

pub(super) fn unfold(x: &GpuStorage, win: &Window2d) -> Result<GpuStorage> {
    let n = win.cols_numel();
    launch(
        Kernel::Unfold,
        "unfold2d",
        win,
        0,
        n,
        &[(conv::SRC, x, image(win))],
    )
}

pub(super) fn fold(cols: &GpuStorage, win: &Window2d) -> Result<GpuStorage> {
    let n = win.image_numel();
    let per_image = win.cols_numel() / win.n.max(1);
    launch(
        Kernel::Fold,
        "fold2d",
        win,
        0,
        n,
        &[(conv::SRC, cols, per_image)],
    )
}

pub(super) fn pool(
    x: &GpuStorage,
    win: &Window2d,
    kind: PoolKind,
) -> Result<(GpuStorage, Option<GpuStorage>)> {
    let (n, code) = (win.out_numel(), kind.code());
    if kind == PoolKind::Max {
        let arg = GpuStorage::alloc(x.context(), "max_pool2d", n)?;
        let out = launch(
            Kernel::PoolMax,
            "max_pool2d",
            win,
            code,
            n,
            &[(pool::SRC, x, image(win)), (pool::ARG, &arg, pooled(win))],
        )?;
        return Ok((out, Some(arg)));
    }
    let out = launch(
        Kernel::PoolAvg,
        "avg_pool2d",
        win,
        code,
        n,
        &[(pool::SRC, x, image(win))],
    )?;
    Ok((out, None))
}

pub(super) fn pool_backward(
    g: &GpuStorage,
    argmax: Option<&GpuStorage>,
    win: &Window2d,
    kind: PoolKind,
) -> Result<GpuStorage> {
    let (n, code) = (win.image_numel(), kind.code());
    match argmax {
        Some(a) => launch(
            Kernel::PoolMaxBackward,
            "max_pool2d_backward",
            win,
            code,
            n,
            &[
                (pool::SRC, g, pooled(win)),
                (pool::SAVED_ARG, a, pooled(win)),
            ],
        ),
        None => launch(
            Kernel::PoolAvgBackward,
            "avg_pool2d_backward",
            win,
            code,
            n,
            &[(pool::SRC, g, pooled(win))],
        ),
    }
}

/// Elements of one image `[c, h, w]`, and of one pooled image `[c, oh, ow]`.
fn image(win: &Window2d) -> usize {
    win.image_numel() / win.n.max(1)
}

fn pooled(win: &Window2d) -> usize {
    win.out_numel() / win.n.max(1)
}

pub(super) fn normalize(x: &GpuStorage, spec: &NormSpec) -> Result<(GpuStorage, GpuStorage)> {
    let (ctx, op) = (x.context(), "normalize");
    let out = GpuStorage::alloc(ctx, op, spec.numel())?;
    let stats = GpuStorage::alloc(ctx, op, 2 * spec.groups)?;
    let params = NormParams::new(op, spec)?;
    let bindings = [
        (norm::OUT, out.buffer()),
        (norm::X, x.buffer()),
        (norm::STATS, stats.buffer()),
    ];
    // One workgroup per group.
    ctx.dispatch(Kernel::NormForward, 0, &params, &bindings, spec.groups, op)?;
    Ok((out, stats))
}

pub(super) fn normalize_backward(
    xhat: &GpuStorage,
    g: &GpuStorage,
    stats: &GpuStorage,
    spec: &NormSpec,
) -> Result<GpuStorage> {
    let (ctx, op) = (xhat.context(), "normalize_backward");
    let out = GpuStorage::alloc(ctx, op, spec.numel())?;
    let params = NormParams::new(op, spec)?;
    let bindings = [
        (norm::OUT, out.buffer()),
        (norm::X, xhat.buffer()),
        (norm::G, g.buffer()),
        (norm::SAVED, stats.buffer()),
    ];
    ctx.dispatch(Kernel::NormBackward, 0, &params, &bindings, spec.groups, op)?;
    Ok(out)
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
            numel: super::params::u32_of(op, len)?,
            key_lo: key as u32,
            key_hi: (key >> 32) as u32,
            threshold,
            scale,
            first: super::params::u32_of(op, first)?,
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

/// One fused optimizer update: fresh parameter and state buffers from the old ones.
pub(super) fn optim_step(
    param: &GpuStorage,
    grad: &GpuStorage,
    state: &GpuStorage,
    spec: &OptimSpec,
) -> Result<(GpuStorage, GpuStorage)> {
    let op = "optimizer step";
    let ctx = param.context();
    let kernel = match spec.kind {
        OptimKind::Sgd => Kernel::OptimSgd,
        OptimKind::Adam => Kernel::OptimAdam,
        OptimKind::RmsProp => Kernel::OptimRmsProp,
        OptimKind::Adagrad => Kernel::OptimAdagrad,
    };
    let new_param = GpuStorage::alloc(ctx, op, spec.numel)?;
    let new_state = GpuStorage::alloc(ctx, op, spec.numel * spec.kind.state_rows())?;
    let bindings = [
        (optim::PARAM_OUT, new_param.buffer()),
        (optim::STATE_OUT, new_state.buffer()),
        (optim::PARAM, param.buffer()),
        (optim::GRAD, grad.buffer()),
        (optim::STATE, state.buffer()),
    ];
    let params = OptimParams::new(op, spec)?;
    ctx.dispatch(kernel, 0, &params, &bindings, groups_for(spec.numel), op)?;
    Ok((new_param, new_state))
}
