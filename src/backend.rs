//! The one door to the backends: the [`Backend`] trait that the CPU and the GPU storages
//! implement, and the specs it is called with. A spec is computed once (in `ops/` or
//! `tensor.rs`), so both backends are handed exactly the same description of every op.
//! Above the backends only `storage.rs` calls one (a GPU launcher may call its own backend,
//! as matmul does to make an operand dense); everything above calls [`crate::Tensor`].

use crate::dtype::{DType, HostData};
use crate::error::Result;
use crate::ops::reduce::spec::ReduceOp;
use crate::shape::Layout;

pub(crate) use crate::ops::conv::spec::{ConvSpec, Window2d};
pub(crate) use crate::ops::elementwise::spec::{Elementwise, Strided};
pub(crate) use crate::ops::index::spec::GatherSpec;
pub(crate) use crate::ops::loss::spec::CrossEntropySpec;
pub(crate) use crate::ops::matmul::spec::MatmulSpec;
pub(crate) use crate::ops::norm::spec::NormSpec;
pub(crate) use crate::ops::optim::spec::{OptimKind, OptimSpec};
pub(crate) use crate::ops::pool::spec::PoolKind;
pub(crate) use crate::ops::reduce::spec::LineSpec;
pub(crate) use crate::ops::scan::spec::{ScanKind, ScanSpec};

/// What both backends implement. Every method returns a fresh, contiguous storage.
pub(crate) trait Backend: Sized {
    /// What a fresh storage is made on: the GPU's context; the CPU's precision.
    type Context;
    /// A storage holding `data` in its dtype (uploaded; on the f64 CPU device f32 data is
    /// widened).
    fn from_host(ctx: &Self::Context, data: HostData, op: &'static str) -> Result<Self>;
    /// `len` copies of `value` (exactly a value of `dtype`) in `dtype` (on the GPU a kernel
    /// writes them: nothing is uploaded).
    fn fill(
        ctx: &Self::Context,
        len: usize,
        value: f64,
        dtype: DType,
        op: &'static str,
    ) -> Result<Self>;
    /// A dropout mask of `len` values: `scale` where `random::dropout_keeps(key, i,
    /// threshold)`, else 0. Both backends hash the same way, so masks agree.
    fn dropout_mask(
        ctx: &Self::Context,
        len: usize,
        key: u64,
        threshold: u32,
        scale: f32,
    ) -> Result<Self>;
    /// Output in `kind.out_dtype(..)` of the inputs' dtypes.
    fn elementwise(inputs: &[&Self], spec: &Strided, kind: Elementwise) -> Result<Self>;
    /// `bias` is given exactly when `spec.bias` is.
    fn matmul(a: &Self, b: &Self, bias: Option<&Self>, spec: &MatmulSpec) -> Result<Self>;
    /// Output `[outer, inner]`, `I32` for the arg-reductions, else the input's dtype.
    fn reduce(&self, spec: &LineSpec, op: ReduceOp) -> Result<Self>;
    /// Output `[outer, len, inner]`.
    fn softmax(&self, spec: &LineSpec, log: bool) -> Result<Self>;
    /// Softmax's gradient from its output `y` (read through `spec`) and the upstream gradient
    /// `g` (the same `[outer, len, inner]`, starting at `grad_offset`). Output `[outer, len, inner]`.
    fn softmax_backward(
        y: &Self,
        g: &Self,
        spec: &LineSpec,
        grad_offset: usize,
        log: bool,
    ) -> Result<Self>;
    /// `input` of any dtype, `index` `I32`; output in the input's dtype.
    fn gather(input: &Self, index: &Self, spec: &GatherSpec, op: &'static str) -> Result<Self>;
    /// `out[j, c] = (index[j] == c)` for `c in 0..classes`, `I32`; `spec` walks the `I32`
    /// index.
    fn one_hot(&self, spec: &Strided, classes: usize) -> Result<Self>;
    /// Copies each part (all of one dtype) into a fresh buffer of `numel`; a part's spec
    /// walks `[dst, src]`.
    fn cat(parts: &[(&Self, Strided)], numel: usize) -> Result<Self>;
    /// An uninitialised storage of `len` elements of `dtype` on `self`'s device, for
    /// [`Backend::write_at`] to fill.
    fn empty_like(&self, dtype: DType, len: usize, op: &'static str) -> Result<Self>;
    /// Copies `src` (of `self`'s dtype) into `self` from element `at`, which is even for a
    /// half (the GPU packs two to a word). The one method that writes into a storage that
    /// exists: its caller made `self` with `empty_like` and nothing else holds it yet.
    fn write_at(&mut self, src: &Self, at: usize, op: &'static str) -> Result<()>;
    /// im2col: image `[n, c, h, w]` -> columns `[n, c*kh*kw, oh*ow]` (zeros where a tap is
    /// in the padding).
    fn unfold(&self, win: &Window2d) -> Result<Self>;
    /// col2im, the adjoint of unfold: each image element sums the column entries that read it.
    fn fold(&self, win: &Window2d) -> Result<Self>;
    /// `act(conv2d(x, w) + bias)` (`ConvSpec`), `[n, o, oh, ow]`; `bias` given exactly when
    /// the op has one. Also the columns `unfold(x)` when the backend built them whole and
    /// they are worth keeping for the backward pass (the GPU's; the CPU unfolds blocks that
    /// are cheaper to rebuild than to keep).
    fn conv2d(
        x: &Self,
        w: &Self,
        bias: Option<&Self>,
        spec: &ConvSpec,
    ) -> Result<(Self, Option<Self>)>;
    /// The gradients of conv2d without its bias and activation, from the gradient `g`
    /// `[n, o, oh, ow]`: the input's (when `input_grad`) and the weight's. `cols` are the
    /// columns the forward pass kept, if any.
    fn conv2d_backward(
        x: &Self,
        w: &Self,
        g: &Self,
        cols: Option<&Self>,
        spec: &ConvSpec,
        input_grad: bool,
    ) -> Result<(Option<Self>, Self)>;
    /// Pooled `[n, c, oh, ow]`, and for max pooling when `indices` the arg-max of each window
    /// as an f32 index `y * w + x` into its plane (without, nothing could route a gradient).
    fn pool(&self, win: &Window2d, kind: PoolKind, indices: bool) -> Result<(Self, Option<Self>)>;
    /// The image gradient `[n, c, h, w]` from the output gradient `g` `[n, c, oh, ow]`.
    fn pool_backward(
        g: &Self,
        argmax: Option<&Self>,
        win: &Window2d,
        kind: PoolKind,
    ) -> Result<Self>;
    /// `(x - mean) / sqrt(var + eps)` per group, and the statistics `[mean; var]` (`2 * groups`,
    /// the variance biased).
    fn normalize(&self, spec: &NormSpec) -> Result<(Self, Self)>;
    /// The input gradient of `normalize` from its output `xhat`, the upstream gradient `g` and
    /// the saved statistics: `rstd * (g - mean(g) - xhat * mean(g * xhat))` per group.
    fn normalize_backward(xhat: &Self, g: &Self, stats: &Self, spec: &NormSpec) -> Result<Self>;
    /// One fused optimizer update: the new parameter and state from the old ones and the
    /// gradient (all dense; state `[kind.state_rows(), numel]`).
    /// With `skip` (a one-element `Bool` storage), the step is skipped where it holds true:
    /// the outputs are copies of the inputs.
    fn optim_step(
        param: &Self,
        grad: &Self,
        state: &Self,
        spec: &OptimSpec,
        skip: Option<&Self>,
    ) -> Result<(Self, Self)>;
    /// Fused cross entropy (`CrossEntropySpec`): each row's loss `[rows]` and its logsumexp
    /// `[rows]`, which the backward pass reuses. An invalid class index is an
    /// `Error::IndexOutOfRange` (on the GPU when the loss, or anything computed from it, is read
    /// back).
    /// `target` holds `I32` class indices.
    fn cross_entropy(x: &Self, target: &Self, spec: &CrossEntropySpec) -> Result<(Self, Self)>;
    /// The logits' gradient `[rows, classes]`: `(softmax(x) - q) * g` per row.
    fn cross_entropy_backward(
        x: &Self,
        target: &Self,
        lse: &Self,
        g: &Self,
        spec: &CrossEntropySpec,
    ) -> Result<Self>;
    /// A cumulative sum or product along lines (`ScanSpec`), into a dense output.
    fn scan(x: &Self, spec: &ScanSpec) -> Result<Self>;
    /// The elements of `layout`, in row-major order, in the storage's dtype.
    fn read(&self, layout: &Layout) -> Result<HostData>;
    fn dtype(&self) -> DType;
}
