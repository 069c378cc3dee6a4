//! Launchers for pooling and its gradients (`shaders/pool.wgsl`), through conv's window
//! launcher (`WindowParams`, pieces of whole images).

use super::spec::PoolKind;
use crate::error::Result;
use crate::gpu::kernels::bind::pool;
use crate::gpu::kernels::Kernel;
use crate::gpu::storage::GpuStorage;
use crate::ops::conv::gpu::{image, launch, pooled};
use crate::ops::conv::spec::Window2d;

/// The pooled output, and for max pooling when `indices` the arg-max of each window.
pub(crate) fn pool(
    x: &GpuStorage,
    win: &Window2d,
    kind: PoolKind,
    indices: bool,
) -> Result<(GpuStorage, Option<GpuStorage>)> {
    let (n, code) = (win.out_numel(), kind.code());
    if kind.is_max() && !indices {
        let out = launch(
            Kernel::PoolMaxValues,
            "max_pool2d",
            win,
            code,
            n,
            &[(pool::SRC, x, image(win))],
        )?;
        return Ok((out, None));
    }
    if kind.is_max() {
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

pub(crate) fn pool_backward(
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
