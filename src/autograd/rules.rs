//! The backward rule of every differentiable op. Each is written with ordinary tensor ops, so
//! it runs on whichever device the tensors are on. A few have kernels of their own: the ReLU
//! mask, sigmoid/tanh/GELU from the saved value, and softmax/log-softmax. The `backward` group
//! of `benches/kernels.rs` measures relu, sigmoid and softmax against the compositions they
//! replace: 2-8x faster on both backends. Each rule carries its derivation; `g` is the gradient
//! flowing into the op's output.

use crate::backend::{CrossEntropySpec, NormSpec, PoolKind, Window2d};
use crate::error::Result;
use crate::op::{Activation, BinaryOp, ReduceOp, UnaryOp};
use crate::tensor::Tensor;

/// One recorded op: its inputs and what its gradient needs. `out`, where present, is the op's
/// result as an untracked handle (saving the tracked one would make the node own itself).
pub(crate) enum BackOp {
    Unary {
        x: Tensor,
        op: UnaryOp,
        out: Tensor,
    },
    Binary {
        a: Tensor,
        b: Tensor,
        op: BinaryOp,
        out: Tensor,
    },
    Where {
        cond: Tensor,
        a: Tensor,
        b: Tensor,
    },
    Matmul {
        a: Tensor,
        b: Tensor,
    },
    /// `out = act(a · b + bias)`, one kernel (`linear`, and conv2d followed by an activation).
    MatmulFused {
        a: Tensor,
        b: Tensor,
        bias: Option<Tensor>,
        act: Activation,
        out: Tensor,
    },
    /// Sum, max or min along `axis` (`None`: over every element, giving a 0-D result).
    Reduce {
        x: Tensor,
        op: ReduceOp,
        axis: Option<usize>,
        keepdim: bool,
        out: Tensor,
    },
    Softmax {
        x: Tensor,
        axis: usize,
        log: bool,
        out: Tensor,
    },
    Reshape {
        x: Tensor,
    },
    Permute {
        x: Tensor,
        perm: Vec<usize>,
    },
    Broadcast {
        x: Tensor,
    },
    Narrow {
        x: Tensor,
        axis: usize,
        start: usize,
    },
    Squeeze {
        x: Tensor,
        axis: usize,
    },
    Unsqueeze {
        x: Tensor,
        axis: usize,
    },
    ToDevice {
        x: Tensor,
    },
    Cat {
        parts: Vec<Tensor>,
        axis: usize,
    },
    IndexSelect {
        x: Tensor,
        axis: usize,
        index: Tensor,
    },
    Gather {
        x: Tensor,
        axis: usize,
        index: Tensor,
    },
    /// im2col of an image `x` (conv2d's input side).
    Unfold {
        x: Tensor,
        win: Window2d,
    },
    /// col2im of columns `x` (conv_transpose2d, and conv2d's input gradient).
    Fold {
        x: Tensor,
        win: Window2d,
    },
    Pool {
        x: Tensor,
        win: Window2d,
        kind: PoolKind,
        /// Max pooling: each window's arg-max, where its gradient goes.
        argmax: Option<Tensor>,
    },
    /// `xhat = (x - mean) / sqrt(var + eps)` per group (batch norm, layer norm).
    Normalize {
        x: Tensor,
        spec: NormSpec,
        xhat: Tensor,
        stats: Tensor,
    },
    /// Per-row cross entropy `-sum_j q_j lsm_j` against target probabilities: the log-softmax
    /// `lsm` of `x` and the (smoothed) target distribution `q`, both saved from the forward.
    CrossEntropy {
        x: Tensor,
        target: Tensor,
        lsm: Tensor,
        q: Tensor,
        smoothing: f32,
    },
    /// Per-row cross entropy against class indices `target` (dense), fused: each row's
    /// logsumexp `lse` saved from the forward kernel (`shaders/loss.wgsl`).
    CrossEntropyIndices {
        x: Tensor,
        target: Tensor,
        lse: Tensor,
        spec: CrossEntropySpec,
    },
    /// Binary cross entropy of probabilities `p` against targets `y`.
    Bce {
        p: Tensor,
        y: Tensor,
    },
    /// Binary cross entropy on logits `x` against targets `y`.
    BceWithLogits {
        x: Tensor,
        y: Tensor,
    },
}

impl BackOp {
    pub fn name(&self) -> &'static str {
        match self {
            BackOp::Unary { .. } => "unary op",
            BackOp::Binary { op, .. } => op.name(),
            BackOp::Where { .. } => "where_",
            BackOp::Matmul { .. } => "matmul",
            BackOp::MatmulFused { .. } => "linear",
            BackOp::Reduce { op, .. } => op.name(),
            BackOp::Softmax { log: true, .. } => "log_softmax",
            BackOp::Softmax { log: false, .. } => "softmax",
            BackOp::Reshape { .. } => "reshape",
            BackOp::Permute { .. } => "permute",
            BackOp::Broadcast { .. } => "broadcast_to",
            BackOp::Narrow { .. } => "narrow",
            BackOp::Squeeze { .. } => "squeeze",
            BackOp::Unsqueeze { .. } => "unsqueeze",
            BackOp::ToDevice { .. } => "to_device",
            BackOp::Cat { .. } => "cat",
            BackOp::IndexSelect { .. } => "index_select",
            BackOp::Gather { .. } => "gather",
            BackOp::Unfold { .. } => "unfold2d",
            BackOp::Fold { .. } => "fold2d",
            BackOp::Pool {
                kind: PoolKind::Max,
                ..
            } => "max_pool2d",
            BackOp::Pool {
                kind: PoolKind::AdaptiveAvg,
                ..
            } => "adaptive_avg_pool2d",
            BackOp::Pool { .. } => "avg_pool2d",
            BackOp::Normalize { .. } => "normalize",
            BackOp::CrossEntropy { .. } | BackOp::CrossEntropyIndices { .. } => "cross_entropy",
            BackOp::Bce { .. } => "binary_cross_entropy",
            BackOp::BceWithLogits { .. } => "bce_with_logits",
        }
    }

    /// False for ops whose result is flat or piecewise constant everywhere (comparisons,
    /// argmax, the non-finite test): their results do not track gradients, as in PyTorch.
    pub fn differentiable(&self) -> bool {
        match self {
            BackOp::Unary { op, .. } => op.differentiable(),
            BackOp::Binary { op, .. } => op.differentiable(),
            BackOp::Reduce { op, .. } => op.differentiable(),
            _ => true,
        }
    }

    /// The op's inputs, in the order `backward` returns their gradients.
    pub fn inputs(&self) -> Vec<&Tensor> {
        match self {
            BackOp::Binary { a, b, .. } | BackOp::Matmul { a, b } => vec![a, b],
            BackOp::MatmulFused { a, b, bias, .. } => [a, b].into_iter().chain(bias).collect(),
            BackOp::Where { cond, a, b } => vec![cond, a, b],
            BackOp::CrossEntropy { x, target, .. }
            | BackOp::CrossEntropyIndices { x, target, .. } => vec![x, target],
            BackOp::Bce { p: a, y: b } | BackOp::BceWithLogits { x: a, y: b } => vec![a, b],
            BackOp::Cat { parts, .. } => parts.iter().collect(),
            BackOp::IndexSelect { x, index, .. } | BackOp::Gather { x, index, .. } => {
                vec![x, index]
            }
            BackOp::Unary { x, .. }
            | BackOp::Reduce { x, .. }
            | BackOp::Softmax { x, .. }
            | BackOp::Reshape { x }
            | BackOp::Permute { x, .. }
            | BackOp::Broadcast { x }
            | BackOp::Narrow { x, .. }
            | BackOp::Squeeze { x, .. }
            | BackOp::Unsqueeze { x, .. }
            | BackOp::ToDevice { x }
            | BackOp::Unfold { x, .. }
            | BackOp::Fold { x, .. }
            | BackOp::Pool { x, .. }
            | BackOp::Normalize { x, .. } => vec![x],
        }
    }

    /// The gradient for each input (`None`: not differentiable there, such as indices).
    pub fn backward(&self, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(match self {
            BackOp::Unary { x, op, out } => vec![unary(x, *op, out, g)?],
            BackOp::Binary { a, b, op, out } => {
                let (ga, gb) = binary(a, b, *op, out, g)?;
                vec![
                    ga.map(|t| sum_to(&t, a.shape())).transpose()?,
                    gb.map(|t| sum_to(&t, b.shape())).transpose()?,
                ]
            }
            BackOp::Where { cond, a, b } => {
                // d/da where(c, a, b) = [c], d/db = [not c]
                let zero = Tensor::zeros(&[], g.device())?;
                let ga = Tensor::where_(cond, g, &zero)?;
                let gb = Tensor::where_(cond, &zero, g)?;
                vec![
                    None,
                    Some(sum_to(&ga, a.shape())?),
                    Some(sum_to(&gb, b.shape())?),
                ]
            }
            BackOp::Matmul { a, b } => {
                let (ga, gb) = matmul(a, b, g)?;
                vec![Some(ga), Some(gb)]
            }
            BackOp::MatmulFused {
                a,
                b,
                bias,
                act,
                out,
            } => {
                // z = a·b + bias, out = act(z): dz = act'(z) g, taken from `out` (see
                // `Activation`), then the matmul rule, and the bias sums dz over what it was
                // broadcast along.
                let gz = match act.backward() {
                    Some(op) => out.binary(g, op)?,
                    None => g.clone(),
                };
                let (ga, gb) = matmul(a, b, &gz)?;
                let mut grads = vec![Some(ga), Some(gb)];
                if let Some(bias) = bias {
                    grads.push(Some(sum_to(&gz, bias.shape())?));
                }
                grads
            }
            BackOp::Reduce {
                x,
                op,
                axis,
                keepdim,
                out,
            } => vec![reduce(x, *op, *axis, *keepdim, out, g)?],
            BackOp::Softmax { axis, log, out, .. } => {
                // softmax: dx = y (g - sum(g y)); log_softmax: dx = g - exp(y) sum(g)
                vec![Some(out.softmax_backward(g, *axis as isize, *log)?)]
            }
            // Views: the gradient takes the inverse view.
            BackOp::Reshape { x } => vec![Some(g.reshape(x.shape())?)],
            BackOp::Permute { perm, .. } => {
                let mut inverse = vec![0; perm.len()];
                perm.iter().enumerate().for_each(|(i, &p)| inverse[p] = i);
                vec![Some(g.permute(&inverse)?)]
            }
            BackOp::Broadcast { x } => vec![Some(sum_to(g, x.shape())?)],
            BackOp::Narrow { x, axis, start } => vec![Some(pad(g, x.shape(), *axis, *start)?)],
            BackOp::Squeeze { axis, .. } => vec![Some(g.unsqueeze(*axis as isize)?)],
            BackOp::Unsqueeze { axis, .. } => vec![Some(g.squeeze(*axis as isize)?)],
            BackOp::ToDevice { x } => vec![Some(g.to_device(x.device())?)],
            BackOp::Cat { parts, axis } => {
                // Each part gets its own slice of the gradient.
                let mut start = 0;
                let mut grads = Vec::with_capacity(parts.len());
                for p in parts {
                    let len = p.shape()[*axis];
                    grads.push(Some(g.narrow(*axis as isize, start, len)?));
                    start += len;
                }
                grads
            }
            BackOp::IndexSelect { x, axis, index } => {
                vec![Some(index_select(x, *axis, index, g)?), None]
            }
            BackOp::Gather { x, axis, index } => vec![Some(gather(x, *axis, index, g)?), None],
            // Fold is unfold's adjoint (each column entry copies one pixel, so the pixel's
            // gradient sums the entries'), and the reverse.
            BackOp::Unfold { win, .. } => vec![Some(g.fold_with(win)?)],
            BackOp::Fold { win, .. } => vec![Some(g.unfold_with(win)?)],
            // max: d out / d x = 1 at the window's arg-max; avg: 1 / divisor for each tap
            BackOp::Pool {
                win, kind, argmax, ..
            } => vec![Some(g.pool_backward(argmax.as_ref(), win, *kind)?)],
            // dx = rstd (g - mean(g) - xhat mean(g xhat)), the means over each group
            BackOp::Normalize {
                spec, xhat, stats, ..
            } => vec![Some(Tensor::normalize_backward(xhat, g, stats, spec)?)],
            BackOp::CrossEntropy {
                lsm, q, smoothing, ..
            } => {
                // d/dx_j = (softmax_j sum(q) - q_j) g; d/dtarget_j = -(1 - s) lsm_j g
                let g = g.unsqueeze(1)?;
                let total = q.sum(1, true)?;
                let gx = lsm.exp()?.mul(&total)?.sub(q)?.mul(&g)?;
                let gt = lsm.mul(&g)?.mul_scalar(smoothing - 1.0)?;
                vec![Some(gx), Some(gt)]
            }
            BackOp::CrossEntropyIndices {
                x,
                target,
                lse,
                spec,
            } => {
                // d/dx_ij = (softmax_ij - q_ij) g_i, in one kernel that reads g through its
                // stride (0 for a mean's broadcast gradient: no copy).
                let gx = x.cross_entropy_backward(target, lse, g, spec)?;
                vec![Some(gx), None]
            }
            BackOp::Bce { p, y } => {
                // d/dp = g (p - y) / max(p (1 - p), 1e-12), PyTorch's clamp;
                // d/dy = g (log(1 - p) - log p), each log clamped at -100
                let q = p.neg()?.add_scalar(1.0)?;
                let denom = p.mul(&q)?.clamp(1e-12, f32::INFINITY)?;
                let gp = g.mul(&p.sub(y)?)?.div(&denom)?;
                let log = |t: &Tensor| t.log()?.clamp(-100.0, f32::INFINITY);
                let gy = g.mul(&log(&q)?.sub(&log(p)?)?)?;
                vec![Some(gp), Some(gy)]
            }
            // d/dx = g (sigmoid(x) - y); d/dy = -g x
            BackOp::BceWithLogits { x, y } => {
                vec![Some(g.mul(&x.sigmoid()?.sub(y)?)?), Some(g.mul(x)?.neg()?)]
            }
        })
    }
}

/// Sums `g` down to `shape`, undoing broadcasting: leading axes, then axes of size 1.
pub(crate) fn sum_to(g: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let mut g = g.clone();
    while g.rank() > shape.len() {
        g = g.sum(0, false)?;
    }
    for (d, &size) in shape.iter().enumerate() {
        if size == 1 && g.shape()[d] != 1 {
            g = g.sum(d as isize, true)?;
        }
    }
    Ok(g)
}

/// `t` where `keep != 0`, else 0.
fn masked(keep: &Tensor, t: &Tensor) -> Result<Tensor> {
    Tensor::where_(keep, t, &Tensor::zeros(&[], t.device())?)
}

/// The weight the left operand of maximum/minimum gets: 1 where it wins, 1/2 on ties (the
/// gradient is split evenly between equal operands, as PyTorch does).
fn winner_weight(a: &Tensor, b: &Tensor, max: bool) -> Result<Tensor> {
    let wins = if max { a.gt(b)? } else { a.lt(b)? };
    wins.add(&a.eq(b)?.mul_scalar(0.5)?)
}

fn unary(x: &Tensor, op: UnaryOp, out: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
    use BinaryOp as B;
    let gx = match op {
        UnaryOp::Identity => g.clone(), // d/dx x = 1
        UnaryOp::Neg => g.neg()?,       // d/dx -x = -1
        UnaryOp::Abs => g.mul(&x.gt_scalar(0.0)?.sub(&x.lt_scalar(0.0)?)?)?, // sign(x), 0 at 0
        UnaryOp::Exp => g.mul(out)?,    // d/dx e^x = e^x
        UnaryOp::Log => g.div(x)?,      // d/dx ln x = 1/x
        UnaryOp::Sqrt => g.div(out)?.mul_scalar(0.5)?, // d/dx √x = 1 / (2√x)
        UnaryOp::Square => g.mul(x)?.mul_scalar(2.0)?, // d/dx x² = 2x
        UnaryOp::Relu => x.binary(g, B::ReluBackward)?, // [x > 0] (0 at the kink)
        UnaryOp::Sigmoid => out.binary(g, B::SigmoidBackward)?, // σ' = σ (1 - σ)
        UnaryOp::Tanh => out.binary(g, B::TanhBackward)?, // tanh' = 1 - tanh²
        UnaryOp::Gelu => x.binary(g, B::GeluBackward)?, // see `gelu_grad` in op.rs
        // d/dx = 1 where x > 0, else slope
        UnaryOp::LeakyRelu(slope) => Tensor::where_(&x.gt_scalar(0.0)?, g, &g.mul_scalar(slope)?)?,
        // 1 inside [lo, hi] (bounds included, as PyTorch), 0 where clamped
        UnaryOp::Clamp(lo, hi) => masked(&x.ge_scalar(lo)?.mul(&x.le_scalar(hi)?)?, g)?,
        UnaryOp::IsNonFinite => return Ok(None),
        UnaryOp::Scalar(op, c) => match op {
            B::Add | B::Sub => g.clone(), // d/dx (x ± c) = 1
            B::Mul => g.mul_scalar(c)?,   // d/dx cx = c
            B::Div => g.div_scalar(c)?,   // d/dx x/c = 1/c
            B::Pow if c == 0.0 => Tensor::zeros(x.shape(), x.device())?, // x^0 = 1
            B::Pow => g.mul(&x.pow_scalar(c - 1.0)?)?.mul_scalar(c)?, // c x^(c-1)
            B::Maximum | B::Minimum => {
                let c = Tensor::full(&[], c, x.device())?;
                g.mul(&winner_weight(x, &c, op == B::Maximum)?)?
            }
            _ => return Ok(None), // comparisons are flat
        },
        UnaryOp::ScalarLeft(op, c) => match op {
            B::Add => g.clone(),                       // d/dx (c + x) = 1
            B::Sub => g.neg()?,                        // d/dx (c - x) = -1
            B::Mul => g.mul_scalar(c)?,                // d/dx cx = c
            B::Div => g.mul(out)?.div(x)?.neg()?,      // d/dx c/x = -c/x² = -out/x
            B::Pow => g.mul(out)?.mul_scalar(c.ln())?, // d/dx c^x = c^x ln c
            B::Maximum | B::Minimum => {
                let c = Tensor::full(&[], c, x.device())?;
                g.mul(&winner_weight(x, &c, op == B::Maximum)?)?
            }
            _ => return Ok(None),
        },
    };
    Ok(Some(gx))
}

/// Gradients of `a op b` at the output's (broadcast) shape; the caller sums them down.
fn binary(
    a: &Tensor,
    b: &Tensor,
    op: BinaryOp,
    out: &Tensor,
    g: &Tensor,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    use BinaryOp as B;
    Ok(match op {
        B::Add => (Some(g.clone()), Some(g.clone())), // d(a+b) = da + db
        B::Sub => (Some(g.clone()), Some(g.neg()?)),  // d(a-b) = da - db
        B::Mul => (Some(g.mul(b)?), Some(g.mul(a)?)), // d(ab) = b da + a db
        // d(a/b) = da/b - (a/b²) db = da/b - (out/b) db
        B::Div => (Some(g.div(b)?), Some(g.mul(out)?.div(b)?.neg()?)),
        B::Pow => {
            // d a^b = b a^(b-1) da + a^b ln(a) db; the terms with a zero factor are set to 0
            // rather than 0·inf (b = 0, or a = 0), as PyTorch does.
            let ga = g.mul(b)?.mul(&a.pow(&b.sub_scalar(1.0)?)?)?;
            let gb = g.mul(out)?.mul(&a.log()?)?;
            (
                Some(masked(&b.ne_scalar(0.0)?, &ga)?),
                Some(masked(&a.ne_scalar(0.0)?, &gb)?),
            )
        }
        B::Maximum | B::Minimum => {
            let w = winner_weight(a, b, op == B::Maximum)?;
            let ga = g.mul(&w)?;
            let gb = g.sub(&ga)?; // the other operand gets the rest: g (1 - w)
            (Some(ga), Some(gb))
        }
        _ => (None, None), // comparisons and backward ops are not differentiated
    })
}

/// `out = a · b` (batched, broadcast, vectors allowed): `da = g · bᵀ`, `db = aᵀ · g`, summed
/// over any batch axes the operand was broadcast along.
fn matmul(a: &Tensor, b: &Tensor, g: &Tensor) -> Result<(Tensor, Tensor)> {
    // Work on the ≥2-D form: a vector `a` is a [1, k] row, a vector `b` a [k, 1] column, and
    // `g` gets the size-1 axes the product dropped.
    let a2 = if a.rank() == 1 {
        a.unsqueeze(0)?
    } else {
        a.clone()
    };
    let b2 = if b.rank() == 1 {
        b.unsqueeze(1)?
    } else {
        b.clone()
    };
    let mut g2 = g.clone();
    if b.rank() == 1 {
        g2 = g2.unsqueeze(-1)?;
    }
    if a.rank() == 1 {
        g2 = g2.unsqueeze(-2)?;
    }
    let ga = sum_to(&g2.matmul(&b2.t()?)?, a2.shape())?.reshape(a.shape())?;
    let gb = if b2.rank() == 2 && (a2.rank() > 2 || transposed(&b2)) {
        // A shared weight: fold the batch into the rows, one [k, M] · [M, n] product instead
        // of a [batch, k, n] temporary summed afterwards.
        let (k, n) = (b2.shape()[0], b2.shape()[1]);
        let rows = a2.numel() / k.max(1);
        let af = a2.reshape(&[rows, k])?;
        let gf = g2.reshape(&[rows, n])?;
        if transposed(&b2) {
            // b is Wᵀ, a view of a dense [n, k] weight (Linear): compute (gᵀ·a)ᵀ so that the
            // weight's gradient comes out dense in the weight's own layout and the optimizer
            // reads it as is, instead of copying a transposed [k, n] result every step.
            gf.t()?.matmul(&af)?.t()?
        } else {
            af.t()?.matmul(&gf)?
        }
    } else {
        sum_to(&a2.t()?.matmul(&g2)?, b2.shape())?
    };
    Ok((ga, gb.reshape(b.shape())?))
}

/// True for a 2-D view whose transpose is dense (`w.t()` of a dense `w`), but not itself dense.
fn transposed(x: &Tensor) -> bool {
    let (s, d) = (x.strides(), x.shape());
    x.rank() == 2 && d[0] > 1 && d[1] > 1 && s[0] == 1 && s[1] == d[0]
}

fn reduce(
    x: &Tensor,
    op: ReduceOp,
    axis: Option<usize>,
    keepdim: bool,
    out: &Tensor,
    g: &Tensor,
) -> Result<Option<Tensor>> {
    // `g` and `out` with the reduced axis put back as size 1, so they broadcast against x.
    let along = axis.filter(|_| x.rank() > 0);
    let restore = |t: &Tensor| match along {
        Some(ax) if !keepdim => t.unsqueeze(ax as isize),
        _ => Ok(t.clone()),
    };
    let gk = restore(g)?;
    Ok(Some(match op {
        // d/dx_i sum(x) = 1: every element gets g
        ReduceOp::Sum => gk.broadcast_to(x.shape())?,
        // d/dx_i max(x) = [x_i = max] / (number of maxima): ties share the gradient evenly
        // (like torch.amax; torch.max(dim) gives it all to one index)
        ReduceOp::Max | ReduceOp::Min => {
            let hits = x.eq(&restore(out)?)?;
            let count = match along {
                Some(ax) => hits.sum(ax as isize, true)?,
                None => hits.sum_all()?,
            };
            hits.mul(&gk.div(&count)?)?
        }
        ReduceOp::ArgMax | ReduceOp::ArgMin => return Ok(None),
    }))
}

/// The gradient of `narrow`: `g` placed at `start` along `axis` of zeros of `shape`.
fn pad(g: &Tensor, shape: &[usize], axis: usize, start: usize) -> Result<Tensor> {
    let after = shape[axis] - start - g.shape()[axis];
    let zeros = |len: usize| -> Result<Option<Tensor>> {
        if len == 0 {
            return Ok(None);
        }
        let mut s = shape.to_vec();
        s[axis] = len;
        Tensor::zeros(&s, g.device()).map(Some)
    };
    let (lo, hi) = (zeros(start)?, zeros(after)?);
    let parts: Vec<&Tensor> = [lo.as_ref(), Some(g), hi.as_ref()]
        .into_iter()
        .flatten()
        .collect();
    if parts.len() == 1 {
        return Ok(g.clone());
    }
    Tensor::cat(&parts, axis as isize)
}

/// `out = x.index_select(axis, idx)`, x `[pre, X, post]`, idx `[L]`, g `[pre, L, post]`:
/// `dx[p, i, q] = sum_l [idx_l = i] g[p, l, q]`, i.e. `one_hot(idx)ᵀ [X, L] · g`. A matmul, so
/// repeated indices add up deterministically on both backends.
fn index_select(x: &Tensor, axis: usize, idx: &Tensor, g: &Tensor) -> Result<Tensor> {
    let size = x.shape()[axis];
    let pre: usize = x.shape()[..axis].iter().product();
    let post: usize = x.shape()[axis + 1..].iter().product();
    let onehot_t = idx.one_hot(size)?.t()?; // [X, L]
    let g3 = g.reshape(&[pre, idx.numel(), post])?;
    onehot_t.matmul(&g3)?.reshape(x.shape())
}

/// `out = x.gather(axis, idx)` (idx and out of one shape I, no larger than x off `axis`):
/// `dx[.., i, ..] = sum_r [idx[.., r, ..] = i] g[.., r, ..]` over the region I covers, zero
/// elsewhere. Built as `(one_hot(idx) * g)` summed over `axis`, then the class axis moved
/// into place.
fn gather(x: &Tensor, axis: usize, idx: &Tensor, g: &Tensor) -> Result<Tensor> {
    let r = x.rank();
    let size = x.shape()[axis];
    // [I.., X] summed over `axis` -> [I without axis.., X]
    let hits = idx
        .one_hot(size)?
        .mul(&g.unsqueeze(-1)?)?
        .sum(axis as isize, false)?;
    // move X (last) to `axis`
    let perm: Vec<usize> = (0..axis).chain([r - 1]).chain(axis..r - 1).collect();
    let mut dx = hits.permute(&perm)?;
    // pad the axes where the index was smaller than x
    for d in 0..r {
        if dx.shape()[d] < x.shape()[d] {
            let mut full = dx.shape().to_vec();
            full[d] = x.shape()[d];
            dx = pad(&dx, &full, d, 0)?;
        }
    }
    Ok(dx)
}
