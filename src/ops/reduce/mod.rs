//! Reductions (sum, mean, amax, amin, arg-max/min) and softmax along an axis or over
//! everything. Each op sees its input as `[outer, len, inner]` (`LineSpec`) and runs one
//! kernel on either backend; on a GPU, inputs whose lines span more than a binding run in
//! parts (`along_in_parts`, `reduce_in_parts`). `stats.rs` builds on them: max/min with
//! indices, var/std with a correction, several axes at once, logsumexp and norms.

pub(crate) mod cpu;
pub(crate) mod gpu;
pub(crate) mod spec;
mod stats;

use super::same_device;
use crate::autograd::{record, untracked, BackOp};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::ops::reduce::spec::ReduceOp;
use crate::shape::normalize_axis;
use crate::tensor::Tensor;
use spec::LineSpec;

/// One part's narrowing, applied alike to each tensor an op in parts splits.
type Narrow<'a> = &'a dyn Fn(&Tensor) -> Result<Tensor>;

/// Elements per row of the first pass of a full reduction on the GPU.
const FULL_REDUCE_ROW: usize = 4096;
/// Arg-reductions return `I32` indices.
const MAX_INDEX: usize = i32::MAX as usize;

impl Tensor {
    // ---- reductions ----

    /// A contiguous copy of `self` (a 0-D tensor counts as `[1]`) seen as `[outer, len, inner]`
    /// along `axis`: the form reductions and softmax take. Returns (tensor, shape, axis, spec).
    fn lines(
        &self,
        op: &'static str,
        axis: isize,
    ) -> Result<(Tensor, Vec<usize>, usize, LineSpec)> {
        let ax = normalize_axis(op, axis, self.rank().max(1))?;
        let x = self.contiguous()?;
        let shape: Vec<usize> = if x.rank() == 0 {
            vec![1]
        } else {
            x.shape().to_vec()
        };
        let (outer, len, inner) = (
            shape[..ax].iter().product(),
            shape[ax],
            shape[ax + 1..].iter().product(),
        );
        let spec = LineSpec {
            offset: x.layout().offset(),
            outer,
            len,
            inner,
            numel: outer * len * inner,
        };
        Ok((x, shape, ax, spec))
    }

    fn reduce_axis(&self, axis: isize, keepdim: bool, op: ReduceOp) -> Result<Tensor> {
        if self.dtype() == DType::Bool {
            // Bool counts as 0/1 (a sum counts the true elements, as PyTorch's).
            return self.to_dtype(DType::I32)?.reduce_axis(axis, keepdim, op);
        }
        let out = untracked(|| self.reduce_axis_impl(axis, keepdim, op))
            .map_err(|e| e.in_op(op.name()))?;
        let ax = normalize_axis(op.name(), axis, self.rank().max(1))?;
        Ok(record(
            out.clone(),
            BackOp::Reduce {
                x: self.clone(),
                op,
                axis: Some(ax),
                keepdim,
                out,
            },
        ))
    }

    fn reduce_axis_impl(&self, axis: isize, keepdim: bool, op: ReduceOp) -> Result<Tensor> {
        if let Some(out) = self.reduce_in_parts(axis, keepdim, op)? {
            return Ok(out);
        }
        let (x, shape, ax, spec) = self.lines(op.name(), axis)?;
        check_reducible(op.name(), op, spec.len, &shape, Some(ax))?;
        let mut out = shape;
        if keepdim {
            out[ax] = 1;
        } else {
            out.remove(ax);
        }
        if self.rank() == 0 {
            out.clear();
        }
        if spec.len == 0 || spec.outer * spec.inner == 0 {
            // The sum of nothing, as a fill; or no output at all.
            let dtype = match op.differentiable() {
                true => self.dtype(),
                false => DType::I32,
            };
            return Tensor::zeros_dtype(&out, dtype, self.device());
        }
        let s = x.storage().reduce(&spec, op)?;
        Ok(Tensor::from_storage(s, &out, self.device()))
    }

    /// On a GPU, an op along `axis` (a reduction, softmax) whose lines span more than a
    /// binding between them (a sum over axis 0 of a large `[n, c, h, w]`: each line reads
    /// across the whole tensor) cannot be split by lines. `f` then runs on parts split along an
    /// axis after `axis` that leaves each part's lines within half a binding, and the results
    /// are joined along it (`keep`: the results keep `axis`, so the joining axis is where it
    /// was). `Ok(None)` when no split is needed or none helps.
    fn along_in_parts(
        &self,
        axis: usize,
        keep: bool,
        f: &dyn Fn(Narrow<'_>) -> Result<Tensor>,
    ) -> Result<Option<Tensor>> {
        let (Some(ctx), Some(&len)) = (self.device().gpu_context(), self.shape().get(axis)) else {
            return Ok(None);
        };
        let shape = self.shape();
        let inner: usize = shape[axis + 1..].iter().product();
        let room = (ctx.max_binding_bytes() / 4 / 2) as usize; // elements a part's lines read
        if len.saturating_mul(inner) <= room {
            return Ok(None);
        }
        for (k, &size) in shape.iter().enumerate().skip(axis + 1) {
            let others = inner / size.max(1);
            let per = room / len.saturating_mul(others).max(1);
            if per >= 1 && size >= 2 {
                // `f` gets the part's narrowing, to apply to each tensor it splits alike.
                let parts = (0..size)
                    .step_by(per)
                    .map(|s| f(&|t: &Tensor| t.narrow(k as isize, s, per.min(size - s))))
                    .collect::<Result<Vec<_>>>()?;
                let at = if keep { k } else { k - 1 };
                return Ok(Some(Tensor::cat(
                    &parts.iter().collect::<Vec<_>>(),
                    at as isize,
                )?));
            }
        }
        Ok(None)
    }

    /// A reduction along `axis` on a GPU when its lines span more than a binding: split by an
    /// inner axis (`along_in_parts`), else by the axis itself, the partial results reduced
    /// again (a sum of sums; for arg-max/min, the best part's index).
    fn reduce_in_parts(&self, axis: isize, keepdim: bool, op: ReduceOp) -> Result<Option<Tensor>> {
        let ax = normalize_axis(op.name(), axis, self.rank().max(1))?;
        let each = |part: Narrow<'_>| part(self)?.reduce_axis_impl(axis, keepdim, op);
        if let Some(out) = self.along_in_parts(ax, keepdim, &each)? {
            return Ok(Some(out));
        }
        let (Some(ctx), Some(&len)) = (self.device().gpu_context(), self.shape().get(ax)) else {
            return Ok(None);
        };
        let inner: usize = self.shape()[ax + 1..].iter().product();
        let room = (ctx.max_binding_bytes() / 4 / 2) as usize;
        let per = room / inner.max(1);
        if per < 2 || len.saturating_mul(inner) <= room {
            return Ok(None);
        }
        if matches!(op, ReduceOp::ArgMax | ReduceOp::ArgMin) {
            // Each part's extreme value and its index (offset by the part's start), then the
            // index of the part with the best value (the first, or a NaN, as within a part).
            let value = match op {
                ReduceOp::ArgMax => ReduceOp::Max,
                _ => ReduceOp::Min,
            };
            let (mut values, mut indices) = (Vec::new(), Vec::new());
            for s in (0..len).step_by(per) {
                let part = self.narrow(axis, s, per.min(len - s))?;
                values.push(part.reduce_axis_impl(axis, true, value)?);
                let index = part.reduce_axis_impl(axis, true, op)?;
                let start = Tensor::full_dtype(&[], s as f64, DType::I32, self.device())?;
                indices.push(index.add(&start)?);
            }
            let values = Tensor::cat(&values.iter().collect::<Vec<_>>(), ax as isize)?;
            let indices = Tensor::cat(&indices.iter().collect::<Vec<_>>(), ax as isize)?;
            let best = values.reduce_axis_impl(axis, true, op)?;
            let out = indices.gather(axis, &best)?;
            return Ok(Some(if keepdim { out } else { out.squeeze(axis)? }));
        }
        let partials = (0..len)
            .step_by(per)
            .map(|s| {
                self.narrow(axis, s, per.min(len - s))?
                    .reduce_axis_impl(axis, true, op)
            })
            .collect::<Result<Vec<_>>>()?;
        let partials = Tensor::cat(&partials.iter().collect::<Vec<_>>(), ax as isize)?;
        Ok(Some(partials.reduce_axis_impl(axis, keepdim, op)?))
    }

    /// Reduces every element to a 0-D tensor.
    fn reduce_all(&self, op: ReduceOp) -> Result<Tensor> {
        if self.dtype() == DType::Bool {
            return self.to_dtype(DType::I32)?.reduce_all(op);
        }
        let out = untracked(|| self.reduce_all_impl(op)).map_err(|e| e.in_op(op.name()))?;
        Ok(record(
            out.clone(),
            BackOp::Reduce {
                x: self.clone(),
                op,
                axis: None,
                keepdim: false,
                out,
            },
        ))
    }

    fn reduce_all_impl(&self, op: ReduceOp) -> Result<Tensor> {
        let name = op.name();
        let repeated = |(&d, &s): (&usize, &usize)| s == 0 && d > 1;
        if op == ReduceOp::Sum && self.shape().iter().zip(self.strides()).any(repeated) {
            // A broadcast (expanded) view: sum one copy of each repeated axis and scale,
            // rather than copy out every repeat (a [2^22, 2^22] expand of one value is 64 TiB).
            let (mut x, mut copies) = (self.clone(), 1.0f64);
            for (a, (&d, &s)) in self.shape().iter().zip(self.strides()).enumerate() {
                if repeated((&d, &s)) {
                    x = x.narrow(a as isize, 0, 1)?;
                    copies *= d as f64;
                }
            }
            return x.reduce_all_impl(op)?.mul_scalar(copies as f32);
        }
        let x = self.contiguous()?;
        let n = x.numel();
        check_reducible(name, op, n, x.shape(), None)?;
        if matches!(op, ReduceOp::ArgMax | ReduceOp::ArgMin) && x.past_one_binding() {
            // One line past a binding: along the flattened axis, in parts.
            return x.reshape(&[n])?.reduce_axis_impl(0, false, op);
        }
        let offset = x.layout().offset();
        let one_line = LineSpec {
            offset,
            outer: 1,
            len: n,
            inner: 1,
            numel: n,
        };
        let s = if x.device().is_gpu()
            && matches!(op, ReduceOp::Sum | ReduceOp::Max | ReduceOp::Min)
            && n > FULL_REDUCE_ROW
        {
            // Two passes so many workgroups share the work: rows of 4096, then the row results.
            let rows = n.div_ceil(FULL_REDUCE_ROW);
            let first = LineSpec {
                offset,
                outer: rows,
                len: FULL_REDUCE_ROW,
                inner: 1,
                numel: n,
            };
            let partial = x.storage().reduce(&first, op)?;
            partial.reduce(
                &LineSpec {
                    offset: 0,
                    outer: 1,
                    len: rows,
                    inner: 1,
                    numel: rows,
                },
                op,
            )?
        } else {
            x.storage().reduce(&one_line, op)?
        };
        Ok(Tensor::from_storage(s, &[], self.device()))
    }

    /// Sum along `axis` (keeping it as size 1 if `keepdim`).
    pub fn sum(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce_axis(axis, keepdim, ReduceOp::Sum)
    }
    /// Sum of all elements (0-D).
    pub fn sum_all(&self) -> Result<Tensor> {
        self.reduce_all(ReduceOp::Sum)
    }
    /// Mean along `axis` (of an `I32` or `Bool` tensor: in the float dtype, as NumPy's).
    pub fn mean(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        let len = self.axis_len("mean", axis)?;
        self.to_float()?
            .sum(axis, keepdim)
            .and_then(|s| s.mul_scalar(1.0 / len as f32))
            .map_err(|e| e.in_op("mean"))
    }
    /// Mean of all elements (0-D).
    pub fn mean_all(&self) -> Result<Tensor> {
        self.to_float()?
            .sum_all()
            .and_then(|s| s.mul_scalar(1.0 / self.numel() as f32))
            .map_err(|e| e.in_op("mean_all"))
    }
    /// Maximum along `axis` (NaN if the line holds a NaN), as `torch.amax`: ties share the
    /// gradient evenly. [`Tensor::max`] gives it all to the first, as `torch.max(x, dim)`.
    pub fn amax(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce_axis(axis, keepdim, ReduceOp::Max)
    }
    /// Maximum of all elements (0-D; NaN if any element is NaN); ties share the gradient, as
    /// `torch.max(x)`'s.
    pub fn max_all(&self) -> Result<Tensor> {
        self.reduce_all(ReduceOp::Max)
    }
    /// Minimum along `axis`, as `torch.amin` (ties share the gradient; see [`Tensor::min`]).
    pub fn amin(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce_axis(axis, keepdim, ReduceOp::Min)
    }
    /// Minimum of all elements (0-D; NaN if any element is NaN).
    pub fn min_all(&self) -> Result<Tensor> {
        self.reduce_all(ReduceOp::Min)
    }
    /// Index of the first maximum along `axis` (a NaN counts as the maximum), `I32`.
    pub fn argmax(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce_axis(axis, keepdim, ReduceOp::ArgMax)
    }
    /// Index (into the flattened tensor) of the first maximum, a 0-D `I32`.
    pub fn argmax_all(&self) -> Result<Tensor> {
        self.reduce_all(ReduceOp::ArgMax)
    }
    /// Index of the first minimum along `axis`, `I32`.
    pub fn argmin(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce_axis(axis, keepdim, ReduceOp::ArgMin)
    }
    /// Index (into the flattened tensor) of the first minimum, a 0-D `I32`.
    pub fn argmin_all(&self) -> Result<Tensor> {
        self.reduce_all(ReduceOp::ArgMin)
    }

    /// Unbiased variance along `axis` (divides by `len - 1`, like `torch.var`), computed as
    /// the mean of squared deviations from the mean (two passes, stable). Other corrections:
    /// [`Tensor::var_with`].
    pub fn var(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.var_as("var", Some(axis), 1, keepdim)
    }
    /// Unbiased variance of all elements (0-D).
    pub fn var_all(&self) -> Result<Tensor> {
        self.var_as("var_all", None, 1, false)
    }

    pub(crate) fn axis_len(&self, op: &'static str, axis: isize) -> Result<usize> {
        let ax = normalize_axis(op, axis, self.rank().max(1))?;
        Ok(self.shape().get(ax).copied().unwrap_or(1))
    }

    // ---- softmax ----

    fn softmax_impl(&self, axis: isize, log: bool) -> Result<Tensor> {
        let name = if log { "log_softmax" } else { "softmax" };
        let (out, ax) = untracked(|| {
            let ax = normalize_axis(name, axis, self.rank().max(1))?;
            if self.numel() == 0 {
                return Ok((Tensor::zeros(self.shape(), self.device())?, ax));
            }
            let each =
                |part: &dyn Fn(&Tensor) -> Result<Tensor>| part(self)?.softmax_impl(axis, log);
            if let Some(out) = self.along_in_parts(ax, true, &each)? {
                return Ok((out, ax));
            }
            let (x, _, ax, spec) = self.lines(name, axis)?;
            let s = x.storage().softmax(&spec, log)?;
            Ok((Tensor::from_storage(s, self.shape(), self.device()), ax))
        })
        .map_err(|e| e.in_op(name))?;
        Ok(record(
            out.clone(),
            BackOp::Softmax {
                x: self.clone(),
                axis: ax,
                log,
                out,
            },
        ))
    }

    /// The gradient of softmax (`log`: log-softmax) along `axis`, from the forward output
    /// `self` and the upstream gradient `g` of the same shape: `y * (g - sum(g * y))`, or
    /// `g - exp(y) * sum(g)` for log-softmax. One kernel on each backend (see
    /// `shaders/softmax.wgsl`); autograd uses it, and so can custom gradient rules.
    pub fn softmax_backward(&self, g: &Tensor, axis: isize, log: bool) -> Result<Tensor> {
        same_device("softmax_backward", &[self, g])?;
        if g.shape() != self.shape() {
            return Err(Error::ShapeMismatch {
                op: "softmax_backward",
                lhs: self.shape().to_vec(),
                rhs: g.shape().to_vec(),
                why: "differ (output and gradient must have one shape)".into(),
            });
        }
        let ax = normalize_axis("softmax_backward", axis, self.rank().max(1))?;
        let each = |part: Narrow<'_>| part(self)?.softmax_backward(&part(g)?, axis, log);
        if let Some(out) = self.along_in_parts(ax, true, &each)? {
            return Ok(out);
        }
        let (y, _, _, spec) = self.lines("softmax_backward", axis)?;
        let g = g.contiguous()?;
        let s = y
            .storage()
            .softmax_backward(g.storage(), &spec, g.layout().offset(), log)?;
        Ok(Tensor::from_storage(s, self.shape(), self.device()))
    }

    /// `exp(x - max) / sum(exp(x - max))` along `axis`.
    pub fn softmax(&self, axis: isize) -> Result<Tensor> {
        self.softmax_impl(axis, false)
    }
    /// `x - max - log(sum(exp(x - max)))` along `axis`.
    pub fn log_softmax(&self, axis: isize) -> Result<Tensor> {
        self.softmax_impl(axis, true)
    }
}

fn check_reducible(
    name: &'static str,
    op: ReduceOp,
    len: usize,
    shape: &[usize],
    axis: Option<usize>,
) -> Result<()> {
    if len == 0 && op != ReduceOp::Sum {
        let what = match axis {
            Some(a) => format!("axis {a}, which is empty in shape {shape:?}"),
            None => format!("a tensor with no elements (shape {shape:?})"),
        };
        return Err(Error::invalid(
            name,
            format!("cannot reduce {what}: it has no {name} (as in PyTorch)"),
        ));
    }
    if matches!(op, ReduceOp::ArgMax | ReduceOp::ArgMin) && len > MAX_INDEX {
        return Err(Error::invalid(
            name,
            format!("axis of length {len} exceeds 2^31 - 1, the largest I32 index"),
        ));
    }
    Ok(())
}

// ---- gradients (called by `autograd/rules.rs`) ----

pub(crate) fn reduce_grad(
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
