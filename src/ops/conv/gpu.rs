//! Launchers for im2col/col2im (`shaders/conv.wgsl`), and the window launcher pooling shares:
//! each turns a [`Window2d`] into [`WindowParams`] and queues one dispatch, or one per piece
//! of whole images over tensors larger than one binding. conv2d and its gradients are built
//! from them and from the matmul and reduction kernels, all queued without a wait.

use super::spec::{ConvSpec, Window2d};
use crate::backend::{Backend, Elementwise, LineSpec, MatmulSpec, Strided};
use crate::error::{Error, Result};
use crate::gpu::grid::groups_for;
use crate::gpu::kernels::bind::{conv, pool};
use crate::gpu::kernels::Kernel;
use crate::gpu::params::{u32_of, wgsl_struct};
use crate::gpu::storage::GpuStorage;
use crate::ops::elementwise::op::UnaryOp;
use crate::ops::matmul::spec::{Activation, MatOperand};
use crate::ops::reduce::spec::ReduceOp;
use crate::shape::collapse;

wgsl_struct! {
    /// `shaders/conv.wgsl` and `shaders/pool.wgsl` `Params`; pairs are `[h, w]`.
    pub struct WindowParams for [Conv, Pool] {
        pub n: u32,
        pub c: u32,
        /// Invocations: column entries, image pixels or pooled outputs.
        pub numel: u32,
        /// Pooling: `PoolKind::code`.
        pub kind: u32,
        pub size: [u32; 2],
        pub kernel: [u32; 2],
        pub stride: [u32; 2],
        pub pad: [u32; 2],
        pub dilation: [u32; 2],
        pub out: [u32; 2],
    }
}

impl WindowParams {
    pub fn new(op: &'static str, w: &Window2d, numel: usize, kind: u32) -> Result<Self> {
        let pair =
            |v: [usize; 2]| -> Result<[u32; 2]> { Ok([u32_of(op, v[0])?, u32_of(op, v[1])?]) };
        // Every index the kernels form stays below the larger buffer.
        u32_of(op, w.cols_numel().max(w.image_numel()))?;
        Ok(WindowParams {
            n: u32_of(op, w.n)?,
            c: u32_of(op, w.c)?,
            numel: u32_of(op, numel)?,
            kind,
            size: pair(w.size)?,
            kernel: pair(w.kernel)?,
            stride: pair(w.stride)?,
            pad: pair(w.pad)?,
            dilation: pair(w.dilation)?,
            out: pair(w.out)?,
        })
    }
}

/// Where `launch` binds its output: conv and pool share the number.
const WINDOW_OUT: u32 = conv::OUT;
const _: () = assert!(conv::OUT == pool::OUT);

/// Runs `kernel` with one invocation per element of a fresh `numel` output (binding 1);
/// `bindings` are the other (binding, storage, elements per image) triples, the first one an
/// input. `kind` is `PoolKind::code` for pooling, 0 for unfold/fold.
///
/// Every buffer here holds `win.n` images' worth of data, so over tensors larger than one
/// binding the kernel runs on pieces of whole images, each binding its images' windows; the
/// kernels index from the first image bound, so nothing else changes (`gpu/window.rs`).
pub(crate) fn launch(
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

pub(crate) fn unfold(x: &GpuStorage, win: &Window2d) -> Result<GpuStorage> {
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

pub(crate) fn fold(cols: &GpuStorage, win: &Window2d) -> Result<GpuStorage> {
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

/// Elements of one image `[c, h, w]`, and of one pooled image `[c, oh, ow]`.
pub(crate) fn image(win: &Window2d) -> usize {
    win.image_numel() / win.n.max(1)
}

pub(crate) fn pooled(win: &Window2d) -> usize {
    win.out_numel() / win.n.max(1)
}

/// A dense copy of `x` read as `shape` with `strides` (a broadcast of a contiguous tensor).
fn expanded(x: &GpuStorage, shape: &[usize], strides: &[usize]) -> Result<GpuStorage> {
    let c = collapse("conv2d", shape, &[strides])?;
    let spec = Strided {
        shape: c.shape,
        strides: c.strides,
        offsets: vec![0],
    };
    GpuStorage::elementwise(&[x], &spec, Elementwise::Unary(UnaryOp::Identity))
}

/// One product per (image, group) (`batch` of them) with no epilogue.
fn product(a: MatOperand, b: MatOperand, [batch, m, n, k]: [usize; 4]) -> MatmulSpec {
    MatmulSpec {
        batch,
        m,
        n,
        k,
        a,
        b,
        bias: None,
        act: Activation::Identity,
    }
}

/// The weight `[o, t]` as one `[og, t]` matrix per (image, group) product, batch index
/// `ni * g + gi`: read in place when there is one group, else copied out per image (the
/// product's batch stride must be one number).
fn weight_per_product(w: &GpuStorage, s: &ConvSpec) -> Result<(Option<GpuStorage>, usize)> {
    let (n, g, og, t) = (s.win.n, s.groups, s.group_out(), s.group_taps());
    match g {
        1 => Ok((None, 0)),
        _ => Ok((Some(expanded(w, &[n, g * og * t], &[0, 1])?), og * t)),
    }
}

// x (N, C, H, W), w (O, C/G, KH, KW), bias (O) -> act(conv) (N, O, OH, OW), and the
// columns: cols [n*g, t, l] (unfold), then one product per (image, group) w[gi] [og, t] ·
// cols [t, l] with the bias and activation in its epilogue, written straight into
// [n, g, og, l]. The columns are kept for the backward pass: building them again costs a
// quarter of a training step's conv time on llvmpipe.
pub(crate) fn conv2d(
    x: &GpuStorage,
    w: &GpuStorage,
    bias: Option<&GpuStorage>,
    s: &ConvSpec,
) -> Result<(GpuStorage, Option<GpuStorage>)> {
    let (n, l, g) = (s.win.n, s.windows(), s.groups);
    let (t, og) = (s.group_taps(), s.group_out());
    let cols = Backend::unfold(x, &s.win)?;
    let (wide, w_batch) = weight_per_product(w, s)?;
    let bias = match (bias, g) {
        (Some(b), 1) => Some((None, b, 0)),
        (Some(b), _) => Some((Some(expanded(b, &[n, g * og], &[0, 1])?), b, og)),
        (None, _) => None,
    };
    let b = bias.as_ref().map(|(wide, b, _)| wide.as_ref().unwrap_or(b));
    let spec = MatmulSpec {
        bias: (bias.as_ref()).map(|&(_, _, batch)| MatOperand::new(0, batch, 1, 0)),
        act: s.act,
        ..product(
            MatOperand::new(0, w_batch, t, 1),
            MatOperand::new(0, t * l, l, 1),
            [n * g, og, l, t],
        )
    };
    let out = Backend::matmul(wide.as_ref().unwrap_or(w), &cols, b, &spec)?;
    Ok((out, Some(cols)))
}

// x (N, C, H, W), w (O, C/G, KH, KW), g (N, O, OH, OW) -> dx (N, C, H, W) if asked,
// dw (O, C/G, KH, KW): per (image, group) g [og, l] · colsᵀ [l, t] summed over the images,
// and fold(w[gi]ᵀ [t, og] · g [og, l]).
pub(crate) fn conv2d_backward(
    x: &GpuStorage,
    w: &GpuStorage,
    grad: &GpuStorage,
    cols: Option<&GpuStorage>,
    s: &ConvSpec,
    input_grad: bool,
) -> Result<(Option<GpuStorage>, GpuStorage)> {
    let (n, l, g) = (s.win.n, s.windows(), s.groups);
    let (t, og) = (s.group_taps(), s.group_out());
    let unfolded;
    let cols = match cols {
        Some(c) => c,
        None => {
            unfolded = Backend::unfold(x, &s.win)?;
            &unfolded
        }
    };
    let per_image = Backend::matmul(
        grad,
        cols,
        None,
        &product(
            MatOperand::new(0, og * l, l, 1),
            MatOperand::new(0, t * l, 1, l),
            [n * g, og, t, l],
        ),
    )?;
    let line = LineSpec {
        offset: 0,
        outer: 1,
        len: n,
        inner: g * og * t,
        numel: n * g * og * t,
    };
    let dw = Backend::reduce(&per_image, &line, ReduceOp::Sum)?;
    if !input_grad {
        return Ok((None, dw));
    }
    let (wide, w_batch) = weight_per_product(w, s)?;
    let dcols = Backend::matmul(
        wide.as_ref().unwrap_or(w),
        grad,
        None,
        &product(
            MatOperand::new(0, w_batch, 1, t),
            MatOperand::new(0, og * l, l, 1),
            [n * g, t, l, og],
        ),
    )?;
    Ok((Some(Backend::fold(&dcols, &s.win)?), dw))
}
