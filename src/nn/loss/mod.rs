//! Loss functions, as `torch.nn.functional`: each compares a prediction with a target and
//! reduces the per-element losses by [`Reduction`].
//!
//! Most are compositions of elementwise ops, so autograd differentiates them. The three whose
//! gradient a composition would get wrong at the edges have a node of their own:
//! `cross_entropy` (the log-softmax is computed once, stably, and the gradient is
//! `softmax - target` in one step), `binary_cross_entropy` (PyTorch's clamped logs, whose
//! composed gradient would be 0/0 at p = 0 or 1) and `bce_with_logits` (`sigmoid(x) - y`,
//! also right at x = 0, where |x| has a kink).
//!
//! PyTorch's keyword arguments (class weights, `ignore_index`, `pos_weight`) and the KL
//! divergence are in `options.rs`: [`cross_entropy_with`], [`nll_with`],
//! [`bce_with_logits_with`], [`kl_div`], with [`margin_ranking`] and [`cosine_embedding`].
//!
//! ```
//! use ferrograd::nn::loss::{cross_entropy, Reduction};
//! use ferrograd::{Device, Tensor};
//! let dev = Device::cpu();
//! let logits = Tensor::from_vec(vec![2.0, 0.0, 0.0, 0.0, 0.0, 3.0], &[2, 3], &dev)?.requires_grad();
//! let classes = Tensor::from_vec(vec![0, 2], &[2], &dev)?; // I32 class indices
//! let loss = cross_entropy(&logits, &classes, Reduction::Mean)?;
//! let grads = loss.backward()?;
//! assert_eq!(grads.get(&logits).unwrap().shape(), &[2, 3]);
//! # Ok::<(), ferrograd::Error>(())
//! ```

mod options;

pub use options::{
    bce_with_logits_with, cosine_embedding, cross_entropy_with, kl_div, margin_ranking, nll_with,
    BceLoss, ClassLoss,
};

use crate::autograd::{record, untracked, BackOp};
use crate::backend::CrossEntropySpec;
use crate::error::{Error, Result};
use crate::ops::same_device;
use crate::tensor::Tensor;

/// How per-element losses become the result.
///
/// ```
/// use ferrograd::nn::loss::{l1, Reduction};
/// use ferrograd::{Device, Tensor};
/// let dev = Device::cpu();
/// let pred = Tensor::new([1.0, 2.0, 3.0, 4.0], &dev)?;
/// let target = Tensor::new([0.0, 0.0, 3.0, 4.0], &dev)?;
/// let each = l1(&pred, &target, Reduction::None)?;
/// assert_eq!(each.to_vec()?, vec![1.0, 2.0, 0.0, 0.0]);
/// assert_eq!(l1(&pred, &target, Reduction::Sum)?.item()?, 3.0);
/// assert_eq!(l1(&pred, &target, Reduction::Mean)?.item()?, 0.75);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Reduction {
    /// The mean over elements (over rows for the classification losses): a 0-D tensor.
    #[default]
    Mean,
    /// The sum: a 0-D tensor.
    Sum,
    /// No reduction: one loss per element (per row).
    None,
    /// The sum divided by the batch size (the first dimension; 1 for a 0-D loss): a 0-D
    /// tensor. PyTorch's `kl_div(reduction="batchmean")`, the KL divergence per sample; for
    /// the classification losses, whose losses are per row, it divides by every row, ignored
    /// ones included, where [`Reduction::Mean`] divides by the kept rows' weights.
    BatchMean,
}

fn reduce(losses: Tensor, reduction: Reduction) -> Result<Tensor> {
    match reduction {
        Reduction::Mean => losses.mean_all(),
        Reduction::Sum => losses.sum_all(),
        Reduction::None => Ok(losses),
        Reduction::BatchMean => {
            let n = losses.shape().first().copied().unwrap_or(1);
            losses.sum_all()?.div_scalar(n as f32)
        }
    }
}

/// Prediction and target must have one shape (PyTorch would broadcast them with a warning;
/// here it is an error, since a `[n, 1]` against `[n]` mix-up is the usual cause).
fn same_shape(op: &'static str, input: &Tensor, target: &Tensor) -> Result<()> {
    same_device(op, &[input, target])?;
    if input.shape() != target.shape() {
        return Err(Error::ShapeMismatch {
            op,
            lhs: input.shape().to_vec(),
            rhs: target.shape().to_vec(),
            why: "differ: the input and the target must have the same shape".into(),
        });
    }
    Ok(())
}

/// Mean squared error: `(input - target)²`.
///
/// ```
/// use ferrograd::nn::loss::{mse, Reduction};
/// use ferrograd::{Device, Tensor};
/// let dev = Device::cpu();
/// let pred = Tensor::new([1.0, 2.0], &dev)?.requires_grad();
/// let loss = mse(&pred, &Tensor::new([3.0, 2.0], &dev)?, Reduction::Mean)?;
/// assert_eq!(loss.item()?, 2.0); // (2² + 0²) / 2
/// let grads = loss.backward()?;
/// assert_eq!(grads.get(&pred).unwrap().to_vec()?, vec![-2.0, 0.0]); // (pred - target)
/// # Ok::<(), ferrograd::Error>(())
/// ```
pub fn mse(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    same_shape("mse", input, target)?;
    reduce(input.sub(target)?.square()?, reduction)
}

/// Mean absolute error: `|input - target|` (gradient 0 where they are equal, as PyTorch).
pub fn l1(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    same_shape("l1", input, target)?;
    reduce(input.sub(target)?.abs()?, reduction)
}

/// `0.5 d²` where `|d| < knee`, else `slope (|d| - 0.5 knee)`, for `d = input - target`.
fn piecewise(
    op: &'static str,
    input: &Tensor,
    target: &Tensor,
    knee: f32,
    quad: f32,
    slope: f32,
) -> Result<Tensor> {
    same_shape(op, input, target)?;
    let d = input.sub(target)?;
    let z = d.abs()?;
    let near = z.lt_scalar(knee)?;
    let square = d.square()?.mul_scalar(0.5 * quad)?;
    let linear = z.sub_scalar(0.5 * knee)?.mul_scalar(slope)?;
    Tensor::where_(&near, &square, &linear)
}

fn check_positive(op: &'static str, name: &str, v: f32, zero_ok: bool) -> Result<()> {
    if !v.is_finite() || v < 0.0 || (v == 0.0 && !zero_ok) {
        let bound = if zero_ok { ">= 0" } else { "> 0" };
        return Err(Error::invalid(
            op,
            format!("{name} must be finite and {bound}, found {v}"),
        ));
    }
    Ok(())
}

/// Huber loss: `0.5 d²` for `|d| < delta`, else `delta (|d| - 0.5 delta)`.
pub fn huber(input: &Tensor, target: &Tensor, delta: f32, reduction: Reduction) -> Result<Tensor> {
    check_positive("huber", "delta", delta, false)?;
    reduce(
        piecewise("huber", input, target, delta, 1.0, delta)?,
        reduction,
    )
}

/// Smooth L1: `0.5 d² / beta` for `|d| < beta`, else `|d| - 0.5 beta`; `beta = 0` is L1.
/// (Huber with `delta = beta`, divided by `beta`.)
pub fn smooth_l1(
    input: &Tensor,
    target: &Tensor,
    beta: f32,
    reduction: Reduction,
) -> Result<Tensor> {
    check_positive("smooth_l1", "beta", beta, true)?;
    if beta == 0.0 {
        same_shape("smooth_l1", input, target)?;
        return reduce(input.sub(target)?.abs()?, reduction);
    }
    let losses = piecewise("smooth_l1", input, target, beta, 1.0 / beta, 1.0)?;
    reduce(losses, reduction)
}

/// Checks a classification input `[n, c]` against `I32` class indices `[n]` or float
/// probabilities `[n, c]`; true for indices.
fn class_target(op: &'static str, input: &Tensor, target: &Tensor) -> Result<bool> {
    same_device(op, &[input, target])?;
    if input.rank() != 2 || input.shape()[1] == 0 {
        return Err(Error::invalid(
            op,
            format!(
                "expects an input of shape [batch, classes] with at least one class, found {:?}",
                input.shape()
            ),
        ));
    }
    let n = input.shape()[0];
    if target.shape() == [n] {
        crate::dtype::require_index(op, target.dtype())?;
        Ok(true)
    } else if target.shape() == input.shape() {
        crate::dtype::require_float(op, target.dtype())?;
        Ok(false)
    } else {
        Err(Error::ShapeMismatch {
            op,
            lhs: input.shape().to_vec(),
            rhs: target.shape().to_vec(),
            why: format!(
                "disagree: the target must be class indices [{n}] or probabilities {:?}",
                input.shape()
            ),
        })
    }
}

/// [`class_target`] for a loss that takes class indices only.
fn index_target(op: &'static str, input: &Tensor, target: &Tensor) -> Result<()> {
    if !class_target(op, input, target)? {
        return Err(Error::invalid(
            op,
            format!(
                "expects class indices of shape [{}], found probabilities {:?}",
                input.shape()[0],
                target.shape()
            ),
        ));
    }
    Ok(())
}

/// Cross entropy between logits `[n, c]` and a target: `I32` class indices `[n]` (in `0..c`;
/// on the GPU an index out of range is reported when the loss is read back) or float class
/// probabilities `[n, c]`. Computed from a stable log-softmax; the mean is over rows.
pub fn cross_entropy(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    cross_entropy_with_smoothing(input, target, 0.0, reduction)
}

/// [`cross_entropy`] with label smoothing `s` in `[0, 1]`: the target becomes
/// `(1 - s) target + s / c`, as `torch.nn.functional.cross_entropy(label_smoothing=s)`.
pub fn cross_entropy_with_smoothing(
    input: &Tensor,
    target: &Tensor,
    smoothing: f32,
    reduction: Reduction,
) -> Result<Tensor> {
    let op = "cross_entropy";
    let indices = class_target(op, input, target)?;
    if !(0.0..=1.0).contains(&smoothing) {
        return Err(Error::invalid(
            op,
            format!("label smoothing must be in [0, 1], found {smoothing}"),
        ));
    }
    let (rows, classes) = (input.shape()[0], input.shape()[1]);
    if indices {
        // Class indices, the common case: two fused kernels (`shaders/loss.wgsl`), forward and
        // backward, instead of eight small ones.
        let spec = CrossEntropySpec {
            rows,
            classes,
            smoothing,
            g_offset: 0,
            g_stride: 0,
        };
        let t = target.dense()?;
        let (losses, lse) = input.cross_entropy_rows(&t, &spec)?;
        let losses = record(
            losses,
            BackOp::CrossEntropyIndices {
                x: input.clone(),
                target: t,
                lse,
                spec,
            },
        );
        return reduce(losses, reduction);
    }
    // Probabilities: rows -sum_j q_j log_softmax(x)_j, for the smoothed distribution q.
    let (rows, lsm, q) = untracked(|| {
        let lsm = input.log_softmax(1)?;
        let q = target.detach();
        let q = if smoothing > 0.0 {
            q.mul_scalar(1.0 - smoothing)?
                .add_scalar(smoothing / classes as f32)?
        } else {
            q
        };
        let rows = lsm.mul(&q)?.sum(1, false)?.neg()?;
        Ok((rows, lsm, q))
    })?;
    let rows = record(
        rows,
        BackOp::CrossEntropy {
            x: input.clone(),
            target: target.clone(),
            lsm,
            q,
            smoothing,
        },
    );
    reduce(rows, reduction)
}

/// Negative log-likelihood of log-probabilities `[n, c]` (a `log_softmax` output) at `I32`
/// class indices `[n]`: `-input[i, target[i]]`.
pub fn nll(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    let op = "nll";
    index_target(op, input, target)?;
    let picked = input.gather_as(op, 1, &target.unsqueeze(1)?)?.squeeze(1)?;
    reduce(picked.neg()?, reduction)
}

/// Binary cross entropy of probabilities `p` in `[0, 1]` against targets `y`:
/// `-(y log p + (1 - y) log(1 - p))`, each log clamped at -100 as PyTorch does, so p = 0 or
/// 1 gives a finite loss. Inputs outside `[0, 1]` give NaN (checking would read the device
/// back every step); prefer [`bce_with_logits`], which is also more accurate.
pub fn binary_cross_entropy(
    input: &Tensor,
    target: &Tensor,
    reduction: Reduction,
) -> Result<Tensor> {
    same_shape("binary_cross_entropy", input, target)?;
    let losses = untracked(|| {
        let log_p = input.log()?.clamp(-100.0, f32::INFINITY)?;
        let log_q = input
            .neg()?
            .add_scalar(1.0)?
            .log()?
            .clamp(-100.0, f32::INFINITY)?;
        // -(y log p + (1 - y) log q) = -(log q + y (log p - log q))
        log_q.add(&target.mul(&log_p.sub(&log_q)?)?)?.neg()
    })?;
    let losses = record(
        losses,
        BackOp::Bce {
            p: input.clone(),
            y: target.clone(),
        },
    );
    reduce(losses, reduction)
}

/// Binary cross entropy on logits: `softplus(x) - x y`, computed as
/// `max(x, 0) - x y + log(1 + exp(-|x|))` so no exp overflows; gradient `sigmoid(x) - y`.
pub fn bce_with_logits(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    same_shape("bce_with_logits", input, target)?;
    let losses = untracked(|| {
        let soft = input.abs()?.neg()?.exp()?.add_scalar(1.0)?.log()?;
        input.relu()?.sub(&input.mul(target)?)?.add(&soft)
    })?;
    let losses = record(
        losses,
        BackOp::BceWithLogits {
            x: input.clone(),
            y: target.clone(),
        },
    );
    reduce(losses, reduction)
}

/// The L1 penalty `sum |w|` over `params`, to add to a loss (L1 regularisation).
pub fn l1_penalty(params: &[super::Parameter]) -> Result<Tensor> {
    penalty(params, |w| w.abs()?.sum_all())
}

/// The L2 penalty `sum w²` over `params`, to add to a loss scaled by `lambda / 2` (what an
/// optimizer's `weight_decay = lambda` does without the extra pass).
pub fn l2_penalty(params: &[super::Parameter]) -> Result<Tensor> {
    penalty(params, |w| w.square()?.sum_all())
}

fn penalty(
    params: &[super::Parameter],
    term: impl Fn(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let mut total: Option<Tensor> = None;
    for p in params.iter().filter(|p| p.is_trainable()) {
        let t = term(&p.value())?;
        total = Some(match total {
            Some(sum) => sum.add(&t)?,
            None => t,
        });
    }
    total.ok_or_else(|| Error::invalid("penalty", "no trainable parameters were given"))
}
