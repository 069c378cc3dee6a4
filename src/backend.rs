//! The one door to the backends: the [`Backend`] trait that the CPU and the GPU storages
//! implement, and the specs it is called with. A spec is computed once (in `ops/` or
//! `tensor.rs`), so both backends are handed exactly the same description of every op.
//! Nothing outside `storage.rs` calls a backend; everything above calls [`crate::Tensor`].

use crate::error::Result;
use crate::op::{op_codes, Activation, BinaryOp, ReduceOp, UnaryOp};
use crate::shape::{collapse, Collapsed, Layout};

/// Which elementwise kernel runs over a [`Strided`] spec.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Elementwise {
    /// `out = op(a)`: operands `[a]`.
    Unary(UnaryOp),
    /// `out = a op b`: operands `[a, b]`.
    Binary(BinaryOp),
    /// `out = cond != 0 ? a : b`: operands `[cond, a, b]`.
    Where,
}

/// Operands walked together over one (collapsed) shape: element `i` of the output (row-major
/// over `shape`) reads operand `j` at `offsets[j] + sum_d idx_d * strides[j][d]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Strided {
    pub shape: Vec<usize>,
    pub strides: Vec<Vec<usize>>,
    pub offsets: Vec<usize>,
}

impl Strided {
    /// Collapses layouts that all have the same shape.
    pub fn new(op: &'static str, layouts: &[&Layout]) -> Result<Strided> {
        let shape = layouts[0].shape();
        let strides: Vec<&[usize]> = layouts.iter().map(|l| l.strides()).collect();
        let Collapsed { shape, strides } = collapse(op, shape, &strides)?;
        Ok(Strided {
            shape,
            strides,
            offsets: layouts.iter().map(|l| l.offset()).collect(),
        })
    }
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// One operand of a matmul: element `[b, r, c]` at `offset + b*batch + r*row + c*col`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MatOperand {
    pub offset: usize,
    pub batch: usize,
    pub row: usize,
    pub col: usize,
}

/// `out[b] = act(a[b] (m×k) · b[b] (k×n) + bias[b])` for `b in 0..batch`; the output is
/// contiguous. The bias (when `bias` is set) is read through its own strides, so one value per
/// column (Linear: row stride 0) or per row (conv: column stride 0) needs no copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MatmulSpec {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: MatOperand,
    pub b: MatOperand,
    pub bias: Option<MatOperand>,
    pub act: Activation,
}

/// A contiguous input seen as `[outer, len, inner]`, reduced (or normalised) along `len`.
/// `numel` bounds the flat index, which lets a full reduction use a ragged last row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LineSpec {
    pub offset: usize,
    pub outer: usize,
    pub len: usize,
    pub inner: usize,
    pub numel: usize,
}

/// `out[i] = input[base(i) + index(i) * axis_stride]`, where `strided` walks `[input, index]`
/// over the output shape (the input's `axis` stride set to 0). Used by gather and index_select.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GatherSpec {
    pub strided: Strided,
    pub axis: usize,
    pub axis_size: usize,
    pub axis_stride: usize,
}

/// Sliding 2-D windows over images `[n, c, h, w]` (contiguous, from element 0): windows of
/// `kernel` taps spaced by `dilation`, placed every `stride` over the image padded by `pad`
/// on each side, `out` windows along each axis (`[h, w]` order throughout). Unfold (im2col)
/// writes columns `[n, c * kh * kw, oh * ow]`, row `(ci * kh + ki) * kw + kj`; fold (col2im)
/// sums them back. Pooling reads the same geometry with `n * c` planes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window2d {
    pub n: usize,
    pub c: usize,
    pub size: [usize; 2],
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub pad: [usize; 2],
    pub dilation: [usize; 2],
    pub out: [usize; 2],
}

impl Window2d {
    /// Elements of the image `[n, c, h, w]`.
    pub fn image_numel(&self) -> usize {
        self.n * self.c * self.size[0] * self.size[1]
    }
    /// Elements of the columns `[n, c * kh * kw, oh * ow]`.
    pub fn cols_numel(&self) -> usize {
        self.n * self.c * self.kernel[0] * self.kernel[1] * self.out[0] * self.out[1]
    }
    /// Elements of a pooled output `[n, c, oh, ow]`.
    pub fn out_numel(&self) -> usize {
        self.n * self.c * self.out[0] * self.out[1]
    }
    /// The first tap of window `o` along `axis`, in unpadded coordinates (may be negative).
    pub fn start(&self, axis: usize, o: usize) -> isize {
        (o * self.stride[axis]) as isize - self.pad[axis] as isize
    }
}

op_codes! {
    /// How a pooling window is reduced.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum PoolKind("POOL") {
        /// The largest tap (padding never wins); the arg-max is kept for the gradient.
        Max = 0 => "max",
        /// The mean over `kh * kw` taps, padding counted as zeros (PyTorch's default).
        Avg = 1 => "avg",
        /// Window `o` along an axis of `size` spans `floor(o*size/out)..ceil((o+1)*size/out)`.
        AdaptiveAvg = 2 => "adaptive_avg",
    }
}

/// Normalisation of a contiguous `[outer, groups, inner]` input: each of the `groups` has its
/// own mean and variance over its `outer * inner` elements. Batch norm is `[n, c, h*w]`;
/// layer norm is `[1, rows, features]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct NormSpec {
    pub outer: usize,
    pub groups: usize,
    pub inner: usize,
    pub eps: f32,
}

impl NormSpec {
    pub fn numel(&self) -> usize {
        self.outer * self.groups * self.inner
    }
    /// Elements per group.
    pub fn count(&self) -> usize {
        self.outer * self.inner
    }
}

/// Which fused update [`Backend::optim_step`] runs (`shaders/optim.wgsl`, `src/cpu/optim.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OptimKind {
    /// State `[1, n]`: the momentum buffer.
    Sgd,
    /// State `[2, n]`: the first and second moments (Adam and AdamW).
    Adam,
    /// State `[3, n]`: the mean square, the momentum buffer and the mean gradient.
    RmsProp,
    /// State `[1, n]`: the sum of squared gradients.
    Adagrad,
}

impl OptimKind {
    /// Rows of the state tensor.
    pub fn state_rows(self) -> usize {
        match self {
            OptimKind::Sgd | OptimKind::Adagrad => 1,
            OptimKind::Adam => 2,
            OptimKind::RmsProp => 3,
        }
    }
}

/// One optimizer step of one parameter, with this step's hyper-parameters resolved on the
/// host (bias corrections, Adagrad's decayed rate). Field meanings per kind are in
/// `shaders/optim.wgsl`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct OptimSpec {
    pub kind: OptimKind,
    pub numel: usize,
    pub lr: f32,
    pub weight_decay: f32,
    pub eps: f32,
    /// SGD and RMSprop momentum; Adam's beta1.
    pub beta1: f32,
    /// Adam's beta2; RMSprop's alpha.
    pub beta2: f32,
    pub dampening: f32,
    /// Adam: `1 - beta1^t`.
    pub bias1: f32,
    /// Adam: `sqrt(1 - beta2^t)`.
    pub bias2_sqrt: f32,
    /// `OptimSpec::NESTEROV | FIRST_STEP | DECOUPLED | CENTERED`.
    pub flags: u32,
}

op_codes! {
    /// The bits of [`OptimSpec::flags`] (WGSL: `OPTIM_NESTEROV`, ...).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum OptimFlag("OPTIM") {
        /// SGD: Nesterov momentum.
        Nesterov = 1 => "nesterov",
        /// SGD: the momentum buffer starts as the first gradient.
        FirstStep = 2 => "first_step",
        /// AdamW: weight decay shrinks the parameter instead of adding to the gradient.
        Decoupled = 4 => "decoupled",
        /// RMSprop: divide by the variance, not the mean square.
        Centered = 8 => "centered",
    }
}

impl OptimSpec {
    pub const NESTEROV: u32 = OptimFlag::Nesterov as u32;
    pub const FIRST_STEP: u32 = OptimFlag::FirstStep as u32;
    pub const DECOUPLED: u32 = OptimFlag::Decoupled as u32;
    pub const CENTERED: u32 = OptimFlag::Centered as u32;

    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

/// Cross entropy of dense logits `[rows, classes]` against dense class indices `[rows]`, with
/// label smoothing; the formulas are in `shaders/loss.wgsl`. The backward pass reads its
/// upstream gradient `[rows]` at `g_offset + i * g_stride` (stride 0: one broadcast value, as
/// a mean's gradient is).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct CrossEntropySpec {
    pub rows: usize,
    pub classes: usize,
    pub smoothing: f32,
    pub g_offset: usize,
    pub g_stride: usize,
}

/// What both backends implement. Every method returns a fresh, contiguous storage.
pub(crate) trait Backend: Sized {
    /// What a fresh storage is made on: the GPU's context; the CPU's precision.
    type Context;
    /// A storage holding `data` (uploaded, or widened to the CPU's precision).
    fn from_host(ctx: &Self::Context, data: Vec<f32>, op: &'static str) -> Result<Self>;
    /// `len` copies of `value` (on the GPU a kernel writes them: nothing is uploaded).
    fn fill(ctx: &Self::Context, len: usize, value: f32, op: &'static str) -> Result<Self>;
    /// A dropout mask of `len` values: `scale` where `random::dropout_keeps(key, i,
    /// threshold)`, else 0. Both backends hash the same way, so masks agree.
    fn dropout_mask(
        ctx: &Self::Context,
        len: usize,
        key: u64,
        threshold: u32,
        scale: f32,
    ) -> Result<Self>;
    fn elementwise(inputs: &[&Self], spec: &Strided, kind: Elementwise) -> Result<Self>;
    /// `bias` is given exactly when `spec.bias` is.
    fn matmul(a: &Self, b: &Self, bias: Option<&Self>, spec: &MatmulSpec) -> Result<Self>;
    /// Output `[outer, inner]`.
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
    fn gather(input: &Self, index: &Self, spec: &GatherSpec, op: &'static str) -> Result<Self>;
    /// `out[j, c] = (index[j] == c)` for `c in 0..classes`; `spec` walks the index.
    fn one_hot(&self, spec: &Strided, classes: usize) -> Result<Self>;
    /// Copies each part into a fresh buffer of `numel`; a part's spec walks `[dst, src]`.
    fn cat(parts: &[(&Self, Strided)], numel: usize) -> Result<Self>;
    /// im2col: image `[n, c, h, w]` -> columns `[n, c*kh*kw, oh*ow]` (zeros where a tap is
    /// in the padding).
    fn unfold(&self, win: &Window2d) -> Result<Self>;
    /// col2im, the adjoint of unfold: each image element sums the column entries that read it.
    fn fold(&self, win: &Window2d) -> Result<Self>;
    /// Pooled `[n, c, oh, ow]`, and for max pooling the arg-max of each window as an f32 index
    /// `y * w + x` into its plane.
    fn pool(&self, win: &Window2d, kind: PoolKind) -> Result<(Self, Option<Self>)>;
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
    fn optim_step(
        param: &Self,
        grad: &Self,
        state: &Self,
        spec: &OptimSpec,
    ) -> Result<(Self, Self)>;
    /// Fused cross entropy (`CrossEntropySpec`): each row's loss `[rows]` and its logsumexp
    /// `[rows]`, which the backward pass reuses. An invalid class index is an
    /// `Error::IndexOutOfRange` (on the GPU when the loss, or anything computed from it, is read
    /// back).
    fn cross_entropy(x: &Self, target: &Self, spec: &CrossEntropySpec) -> Result<(Self, Self)>;
    /// The logits' gradient `[rows, classes]`: `(softmax(x) - q) * g` per row.
    fn cross_entropy_backward(
        x: &Self,
        target: &Self,
        lse: &Self,
        g: &Self,
        spec: &CrossEntropySpec,
    ) -> Result<Self>;
    /// The elements of `layout`, in row-major order.
    fn to_vec(&self, layout: &Layout) -> Result<Vec<f32>>;
}
