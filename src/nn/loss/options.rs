//! The keyword arguments of `torch.nn.functional`'s classification losses that the plain
//! functions leave out: class `weight` and `ignore_index` for cross entropy and NLL
//! ([`ClassLoss`]), `weight` and `pos_weight` for BCE on logits ([`BceLoss`]), and the KL
//! divergence. All are compositions of differentiable ops (log-softmax, gather, elementwise),
//! so autograd gives their gradients; the plain functions keep their fused kernels.

use super::{class_target, index_target, reduce, same_shape, Reduction};
use crate::dtype::{require_float, DType};
use crate::error::{Error, Result};
use crate::ops::same_device;
use crate::tensor::Tensor;

/// Options of [`cross_entropy_with`] and [`nll_with`], as `torch.nn.functional.cross_entropy`'s
/// keyword arguments (PyTorch 2.15).
///
/// ```
/// use ferrograd::nn::loss::{cross_entropy_with, ClassLoss, Reduction};
/// use ferrograd::{Device, Tensor};
/// let dev = Device::cpu();
/// let logits = Tensor::zeros(&[3, 2], &dev)?; // each row: log 2 for either class
/// let labels = Tensor::from_vec(vec![0, 1, -100], &[3], &dev)?;
/// let opts = ClassLoss::default()
///     .weight(Tensor::new([1.0, 3.0], &dev)?)
///     .ignore_index(-100);
/// let mean = cross_entropy_with(&logits, &labels, &opts)?.item()?;
/// // (1·log 2 + 3·log 2) / (1 + 3): the weighted mean over the rows not ignored.
/// assert!((mean - 2f32.ln()).abs() < 1e-6);
/// let each = cross_entropy_with(&logits, &labels, &opts.reduction(Reduction::None))?;
/// assert_eq!(each.to_vec()?[2], 0.0); // the ignored row
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct ClassLoss {
    /// A float weight per class `[classes]`: each row's loss is scaled by its target class's
    /// weight, and [`Reduction::Mean`] divides by the sum of those weights, not the row count.
    /// With probability targets, each class's term is scaled and the mean is over rows.
    pub weight: Option<Tensor>,
    /// Rows whose target is this class index contribute nothing, not even to the mean's
    /// denominator (PyTorch's default is -100; here none unless set). With probability
    /// targets a class (>= 0) is an error and a negative index is ignored, as PyTorch.
    pub ignore_index: Option<i32>,
    /// Label smoothing in `[0, 1]` (cross entropy only).
    pub label_smoothing: f32,
    /// How the per-row losses are reduced.
    pub reduction: Reduction,
}

impl ClassLoss {
    /// With a weight per class.
    pub fn weight(mut self, weight: Tensor) -> Self {
        self.weight = Some(weight);
        self
    }
    /// Ignoring rows whose target is `index`.
    pub fn ignore_index(mut self, index: i32) -> Self {
        self.ignore_index = Some(index);
        self
    }
    /// With label smoothing `s`.
    pub fn label_smoothing(mut self, s: f32) -> Self {
        self.label_smoothing = s;
        self
    }
    /// With `reduction`.
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }
}

/// Cross entropy between logits `[n, c]` and class indices `[n]` or probabilities `[n, c]`
/// with class weights, an ignored index and label smoothing, as
/// `torch.nn.functional.cross_entropy(weight=, ignore_index=, label_smoothing=)`: for index
/// targets row `i`'s loss is `(1 - s) w[t_i] (-lsm[i, t_i]) + s / c sum_j w_j (-lsm[i, j])`
/// (zero where `t_i` is ignored), and the mean divides the sum by `sum_i w[t_i]` over the rows
/// kept (NaN when none is, as PyTorch). Without weight or ignored index this is
/// [`super::cross_entropy_with_smoothing`].
///
/// # Errors
/// As [`super::cross_entropy`]; also a weight that is not a float `[c]` on the input's device,
/// and an `ignore_index` of 0 or more with probability targets.
pub fn cross_entropy_with(input: &Tensor, target: &Tensor, opts: &ClassLoss) -> Result<Tensor> {
    let op = "cross_entropy";
    let s = opts.label_smoothing;
    if opts.weight.is_none() && opts.ignore_index.is_none() {
        return super::cross_entropy_with_smoothing(input, target, s, opts.reduction);
    }
    let indices = class_target(op, input, target)?;
    if !(0.0..=1.0).contains(&s) {
        return Err(Error::invalid(
            op,
            format!("label smoothing must be in [0, 1], found {s}"),
        ));
    }
    // PyTorch refuses a class it could ignore (>= 0) with probabilities; a negative one
    // (its default -100) names no class and is let through.
    if let Some(i) = opts.ignore_index.filter(|&i| !indices && i >= 0) {
        return Err(Error::invalid(
            op,
            format!(
                "ignore_index {i} needs class-index targets; the target holds probabilities {:?}",
                target.shape()
            ),
        ));
    }
    let weight = class_weight(op, input, opts)?;
    let lsm = input.log_softmax(1)?;
    if !indices {
        // -sum_j w_j q_j lsm_ij for the smoothed distribution q; the mean is over rows.
        let c = input.shape()[1] as f32;
        let q = target.mul_scalar(1.0 - s)?.add_scalar(s / c)?;
        let q = match &weight {
            Some(w) => q.mul(w)?,
            None => q,
        };
        return reduce(lsm.mul(&q)?.sum(1, false)?.neg()?, opts.reduction);
    }
    weighted_rows(
        op,
        &lsm,
        target,
        weight.as_ref(),
        opts.ignore_index,
        s,
        opts.reduction,
    )
}

/// Negative log-likelihood of log-probabilities `[n, c]` at class indices `[n]` with class
/// weights and an ignored index, as `torch.nn.functional.nll_loss(weight=, ignore_index=)`:
/// row `i` is `-w[t_i] input[i, t_i]`, and the mean divides by `sum_i w[t_i]` over the rows kept.
///
/// # Errors
/// As [`super::nll`]; also a weight that is not a float `[c]` on the input's device, and a
/// label smoothing other than 0.
pub fn nll_with(input: &Tensor, target: &Tensor, opts: &ClassLoss) -> Result<Tensor> {
    let op = "nll";
    if opts.label_smoothing != 0.0 {
        return Err(Error::invalid(
            op,
            format!(
                "takes no label smoothing (cross_entropy does), found {}",
                opts.label_smoothing
            ),
        ));
    }
    if opts.weight.is_none() && opts.ignore_index.is_none() {
        return super::nll(input, target, opts.reduction);
    }
    index_target(op, input, target)?;
    let weight = class_weight(op, input, opts)?;
    weighted_rows(
        op,
        input,
        target,
        weight.as_ref(),
        opts.ignore_index,
        0.0,
        opts.reduction,
    )
}

/// The class weight `[c]` of `opts`, checked against the input `[n, c]` and in its dtype.
fn class_weight(op: &'static str, input: &Tensor, opts: &ClassLoss) -> Result<Option<Tensor>> {
    let Some(w) = &opts.weight else {
        return Ok(None);
    };
    same_device(op, &[input, w])?;
    require_float(op, w.dtype())?;
    let c = input.shape()[1];
    if w.shape() != [c] {
        return Err(Error::invalid(
            op,
            format!(
                "the class weight must have shape [{c}] (one per class), found {:?}",
                w.shape()
            ),
        ));
    }
    w.to_dtype(input.dtype()).map(Some)
}

/// Weighted rows of log-probabilities `lsm` `[n, c]` at `target` `[n]`, with smoothing `s`
/// and rows at `ignore` dropped; the mean divides by the kept rows' weight.
fn weighted_rows(
    op: &'static str,
    lsm: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    ignore: Option<i32>,
    s: f32,
    reduction: Reduction,
) -> Result<Tensor> {
    let c = lsm.shape()[1];
    let dev = lsm.device();
    // kept [n]: Bool, false at ignored rows, whose target becomes class 0 so the gather stays
    // in range; the row's factor below is then 0.
    let kept = match ignore {
        Some(ix) => Some(target.ne_scalar(ix as f32)?),
        None => None,
    };
    let safe = match &kept {
        Some(k) => Tensor::where_(k, target, &Tensor::zeros_dtype(&[1], DType::I32, dev)?)?,
        None => target.clone(),
    };
    let picked = lsm
        .gather_as(op, 1, &safe.unsqueeze(1)?)?
        .squeeze(1)?
        .neg()?; // [n]
                 // factor [n]: the row's class weight, times 0 where ignored.
    let factor = match weight {
        Some(w) => Some(w.index_select(0, &safe).map_err(|e| e.in_op(op))?),
        None => None,
    };
    let factor = match (factor, &kept) {
        (Some(f), Some(k)) => Some(f.mul(&k.to_dtype(lsm.dtype())?)?),
        (None, Some(k)) => Some(k.to_dtype(lsm.dtype())?),
        (f, None) => f,
    };
    let mut rows = match &factor {
        Some(f) => picked.mul(f)?,
        None => picked,
    };
    if s > 0.0 {
        // s / c sum_j w_j (-lsm_ij), zero at ignored rows.
        let spread = match weight {
            Some(w) => lsm.mul(w)?,
            None => lsm.clone(),
        };
        let mut spread = spread.sum(1, false)?.neg()?;
        if let Some(k) = &kept {
            spread = spread.mul(&k.to_dtype(lsm.dtype())?)?;
        }
        rows = rows
            .mul_scalar(1.0 - s)?
            .add(&spread.mul_scalar(s / c as f32)?)?;
    }
    match (reduction, factor) {
        (Reduction::Mean, Some(f)) => rows.sum_all()?.div(&f.sum_all()?),
        _ => reduce(rows, reduction),
    }
}

/// Options of [`bce_with_logits_with`], as `torch.nn.functional.binary_cross_entropy_with_logits`'s
/// keyword arguments.
///
/// ```
/// use ferrograd::nn::loss::{bce_with_logits_with, BceLoss, Reduction};
/// use ferrograd::{Device, Tensor};
/// let dev = Device::cpu();
/// let logits = Tensor::zeros(&[2, 2], &dev)?;
/// let targets = Tensor::new([[1.0, 0.0], [1.0, 1.0]], &dev)?;
/// // Positives of class 1 count 3 times: rare positives weigh as much as the negatives.
/// let opts = BceLoss::default().pos_weight(Tensor::new([1.0, 3.0], &dev)?);
/// let each = bce_with_logits_with(&logits, &targets, &opts.reduction(Reduction::None))?;
/// let l2 = 2f32.ln();
/// assert_eq!(each.to_vec()?, vec![l2, l2, l2, 3.0 * l2]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct BceLoss {
    /// A weight per element, broadcast to the input's shape: each loss is multiplied by it.
    pub weight: Option<Tensor>,
    /// A weight for the positive term, broadcast to the input's shape (usually `[classes]`,
    /// `negatives / positives` per class): `-(p y log σ(x) + (1 - y) log(1 - σ(x)))`.
    pub pos_weight: Option<Tensor>,
    /// How the per-element losses are reduced.
    pub reduction: Reduction,
}

impl BceLoss {
    /// With a weight per element.
    pub fn weight(mut self, weight: Tensor) -> Self {
        self.weight = Some(weight);
        self
    }
    /// With a weight for the positive term.
    pub fn pos_weight(mut self, pos_weight: Tensor) -> Self {
        self.pos_weight = Some(pos_weight);
        self
    }
    /// With `reduction`.
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }
}

/// Binary cross entropy on logits with an element weight and a positive weight, as
/// `torch.nn.functional.binary_cross_entropy_with_logits(weight=, pos_weight=)`:
/// `weight ((1 - y) x + (1 + (pos_weight - 1) y) softplus(-x))`, exact at `x = 0` and
/// without overflow for large `|x|`. Without either weight this is [`super::bce_with_logits`].
///
/// # Errors
/// As [`super::bce_with_logits`]; also a weight that is not a float tensor on the input's
/// device that broadcasts to the input's shape.
pub fn bce_with_logits_with(input: &Tensor, target: &Tensor, opts: &BceLoss) -> Result<Tensor> {
    let op = "bce_with_logits";
    if opts.weight.is_none() && opts.pos_weight.is_none() {
        return super::bce_with_logits(input, target, opts.reduction);
    }
    same_shape(op, input, target)?;
    let weights = [("weight", &opts.weight), ("pos_weight", &opts.pos_weight)];
    for (name, w) in weights {
        if let Some(w) = w {
            same_device(op, &[input, w])?;
            require_float(op, w.dtype())?;
            w.broadcast_to(input.shape()).map_err(|_| {
                Error::invalid(
                    op,
                    format!(
                        "{name} of shape {:?} does not broadcast to the input's {:?}",
                        w.shape(),
                        input.shape()
                    ),
                )
            })?;
        }
    }
    // The weights in the input's dtype, as class weights are.
    let cast = |w: &Option<Tensor>| w.as_ref().map(|w| w.to_dtype(input.dtype())).transpose();
    let (weight, pos_weight) = (cast(&opts.weight)?, cast(&opts.pos_weight)?);
    // softplus(-x) = -log σ(x), linear past |x| = 20 as PyTorch's log1p(exp(-|x|)) + max(-x, 0).
    let neg_log_sig = input.neg()?.softplus(1.0, 20.0)?;
    let pos = match &pos_weight {
        Some(p) => neg_log_sig.mul(&p.sub_scalar(1.0)?.mul(target)?.add_scalar(1.0)?)?,
        None => neg_log_sig,
    };
    let losses = target.neg()?.add_scalar(1.0)?.mul(input)?.add(&pos)?;
    let losses = match &weight {
        Some(w) => losses.mul(w)?,
        None => losses,
    };
    reduce(losses, opts.reduction)
}

/// The Kullback-Leibler divergence of `target` from the log-probabilities `input`, as
/// `torch.nn.functional.kl_div`: `target (log target - input)` per element, 0 where the target
/// is 0 (where the target's gradient is NaN, as PyTorch's); with `log_target`, the target
/// holds log-probabilities and the loss is `exp(target) (target - input)`. Use [`Reduction::BatchMean`] for the mathematical KL
/// divergence of each row's distribution ([`Reduction::Mean`] averages over all elements, as
/// PyTorch's `mean`, which it warns about).
///
/// ```
/// use ferrograd::nn::loss::{kl_div, Reduction};
/// use ferrograd::{Device, Tensor};
/// let dev = Device::cpu();
/// let p = Tensor::new([[0.5, 0.5], [1.0, 0.0]], &dev)?;
/// let q = Tensor::new([[0.25, 0.75], [0.5, 0.5]], &dev)?.log()?;
/// let kl = kl_div(&q, &p, Reduction::BatchMean, false)?.item()?;
/// let want = (0.5 * (2f32.ln() + (2.0f32 / 3.0).ln()) + 2f32.ln()) / 2.0;
/// assert!((kl - want).abs() < 1e-6);
/// # Ok::<(), ferrograd::Error>(())
/// ```
///
/// # Errors
/// Input and target of different shapes, dtypes that are not float, or different devices.
pub fn kl_div(
    input: &Tensor,
    target: &Tensor,
    reduction: Reduction,
    log_target: bool,
) -> Result<Tensor> {
    let op = "kl_div";
    same_shape(op, input, target)?;
    require_float(op, input.dtype())?;
    require_float(op, target.dtype())?;
    let target = &target.to_dtype(input.dtype())?; // computed in the input's dtype
    let losses = if log_target {
        target.exp()?.mul(&target.sub(input)?)?
    } else {
        // xlogy(t, t) - t x, with 0 log 0 = 0. As PyTorch's: a negative t gives NaN, and so
        // does the target's gradient at t = 0 (where log t + 1 is unbounded).
        let zero = target.eq_scalar(0.0)?;
        let nothing = Tensor::zeros_dtype(&[1], target.dtype(), target.device())?;
        let t_log_t = Tensor::where_(&zero, &nothing, &target.mul(&target.log()?)?)?;
        t_log_t.sub(&target.mul(input)?)?
    };
    reduce(losses, reduction)
}

/// The margin ranking loss `max(0, -y (x1 - x2) + margin)` for targets `y` of ±1 (1: `x1`
/// should rank higher), as `torch.nn.functional.margin_ranking_loss`.
///
/// ```
/// use ferrograd::nn::loss::{margin_ranking, Reduction};
/// use ferrograd::{Device, Tensor};
/// let dev = Device::cpu();
/// let (a, b) = (Tensor::new([2.0, 0.0], &dev)?, Tensor::new([1.0, 1.0], &dev)?);
/// let y = Tensor::new([1.0, 1.0], &dev)?;
/// let l = margin_ranking(&a, &b, &y, 0.5, Reduction::None)?;
/// assert_eq!(l.to_vec()?, vec![0.0, 1.5]); // ranked right by 1 > 0.5; wrong by 1, + 0.5
/// # Ok::<(), ferrograd::Error>(())
/// ```
///
/// # Errors
/// Inputs and target of different shapes or devices, or a non-finite margin.
pub fn margin_ranking(
    x1: &Tensor,
    x2: &Tensor,
    target: &Tensor,
    margin: f32,
    reduction: Reduction,
) -> Result<Tensor> {
    let op = "margin_ranking";
    same_shape(op, x1, x2)?;
    same_shape(op, x1, target)?;
    finite_margin(op, margin)?;
    let losses = target.neg()?.mul(&x1.sub(x2)?)?.add_scalar(margin)?;
    reduce(losses.clamp_min(0.0)?, reduction)
}

/// The cosine embedding loss of rows `x1`, `x2` `[n, d]` (or vectors `[d]`) against targets
/// `y` of ±1: `1 - cos` where `y = 1`, `max(0, cos - margin)` where `y = -1`, with PyTorch's
/// `cos = x1·x2 / √((|x1|² + 1e-12)(|x2|² + 1e-12))` (`cosine_embedding_loss`).
///
/// # Errors
/// Inputs of different shapes or not 1-D or 2-D, a target not `[n]` (`[]` for vectors), or a
/// margin outside `[-1, 1]`.
pub fn cosine_embedding(
    x1: &Tensor,
    x2: &Tensor,
    target: &Tensor,
    margin: f32,
    reduction: Reduction,
) -> Result<Tensor> {
    let op = "cosine_embedding";
    same_shape(op, x1, x2)?;
    same_device(op, &[x1, target])?;
    let rows = &x1.shape()[..x1.rank().saturating_sub(1)];
    if !(1..=2).contains(&x1.rank()) || target.shape() != rows {
        return Err(Error::invalid(
            op,
            format!(
                "expects inputs [n, d] (or [d]) and a target [n] (or []), found {:?} and {:?}",
                x1.shape(),
                target.shape()
            ),
        ));
    }
    if !(-1.0..=1.0).contains(&margin) {
        return Err(Error::invalid(
            op,
            format!("margin must be in [-1, 1], found {margin}"),
        ));
    }
    let axis = x1.rank() as isize - 1;
    let dot = x1.mul(x2)?.sum(axis, false)?;
    let sq = |x: &Tensor| x.square()?.sum(axis, false)?.add_scalar(1e-12);
    let cos = dot.div(&sq(x1)?.mul(&sq(x2)?)?.sqrt()?)?;
    let nothing = Tensor::zeros_dtype(&[1], cos.dtype(), cos.device())?;
    let pos = Tensor::where_(
        &target.eq_scalar(1.0)?,
        &cos.neg()?.add_scalar(1.0)?,
        &nothing,
    )?;
    let far = cos.sub_scalar(margin)?.clamp_min(0.0)?;
    let neg = Tensor::where_(&target.eq_scalar(-1.0)?, &far, &nothing)?;
    reduce(pos.add(&neg)?, reduction)
}

fn finite_margin(op: &'static str, margin: f32) -> Result<()> {
    match margin.is_finite() {
        true => Ok(()),
        false => Err(Error::invalid(
            op,
            format!("margin must be finite, found {margin}"),
        )),
    }
}
