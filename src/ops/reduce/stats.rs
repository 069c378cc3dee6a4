//! Reductions built from the kernels of this family (and `gather`), with PyTorch's
//! semantics and gradients: `max`/`min` along an axis with their indices, variance and
//! standard deviation with a `correction`, sums and means over several axes, `logsumexp` and
//! vector norms. They run on either backend because their parts do, and autograd
//! differentiates them through those parts; where that would give NaN (the square root at 0)
//! they route around it to PyTorch's gradient.

use crate::autograd::{is_grad_enabled, no_grad};
use crate::error::{Error, Result};
use crate::shape::normalize_axis;
use crate::tensor::Tensor;

impl Tensor {
    /// Maximum along `axis`, as `torch.max(x, dim).values`: the gradient goes to the first
    /// maximum of each line (where `argmax` points). [`Tensor::amax`] splits it among ties
    /// instead; `max_all` splits it too, as `torch.max(x)` does.
    ///
    /// ```
    /// use ferrograd::{Device, Tensor};
    /// let x = Tensor::new([[1.0, 3.0, 3.0]], &Device::cpu())?.requires_grad();
    /// let grads = x.max(1, false)?.sum_all()?.backward()?;
    /// assert_eq!(grads.get(&x).unwrap().to_vec()?, vec![0.0, 1.0, 0.0]);
    /// let grads = x.amax(1, false)?.sum_all()?.backward()?;
    /// assert_eq!(grads.get(&x).unwrap().to_vec()?, vec![0.0, 0.5, 0.5]);
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub fn max(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        if !(is_grad_enabled() && self.tracks_grad()) {
            return self.amax(axis, keepdim).map_err(|e| e.in_op("max"));
        }
        Ok(self.pick(axis, keepdim, true, "max")?.0)
    }

    /// Minimum along `axis`, as `torch.min(x, dim).values` (see [`Tensor::max`]).
    pub fn min(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        if !(is_grad_enabled() && self.tracks_grad()) {
            return self.amin(axis, keepdim).map_err(|e| e.in_op("min"));
        }
        Ok(self.pick(axis, keepdim, false, "min")?.0)
    }

    /// `torch.max(x, dim)`: the maxima along `axis` and their indices (`I32`, the first of
    /// ties; a NaN counts as the maximum). The gradient goes to those indices.
    ///
    /// ```
    /// use ferrograd::{Device, Tensor};
    /// let x = Tensor::new([[1.0, 5.0, 3.0], [2.0, 0.0, 2.0]], &Device::cpu())?;
    /// let (values, indices) = x.max_with_indices(1, false)?;
    /// assert_eq!(values.to_vec()?, vec![5.0, 2.0]);
    /// assert_eq!(indices.to_vec_as::<i32>()?, vec![1, 0]);
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub fn max_with_indices(&self, axis: isize, keepdim: bool) -> Result<(Tensor, Tensor)> {
        self.pick(axis, keepdim, true, "max_with_indices")
    }

    /// `torch.min(x, dim)`: the minima along `axis` and their indices (see
    /// [`Tensor::max_with_indices`]).
    pub fn min_with_indices(&self, axis: isize, keepdim: bool) -> Result<(Tensor, Tensor)> {
        self.pick(axis, keepdim, false, "min_with_indices")
    }

    /// The extreme of each line and its index: `gather` at the arg-reduction's index, so
    /// the gradient is gather's, a scatter to that index.
    fn pick(
        &self,
        axis: isize,
        keepdim: bool,
        max: bool,
        op: &'static str,
    ) -> Result<(Tensor, Tensor)> {
        if self.axis_len(op, axis)? == 0 {
            // Nothing to pick: amax's error, which says so.
            match max {
                true => self.amax(axis, keepdim),
                false => self.amin(axis, keepdim),
            }
            .map_err(|e| e.in_op(op))?;
        }
        let index = match max {
            true => self.argmax(axis, true),
            false => self.argmin(axis, true),
        }
        .map_err(|e| e.in_op(op))?;
        if self.rank() == 0 {
            return Ok((self.clone(), index));
        }
        let values = self.gather_as(op, axis, &index)?;
        match keepdim {
            true => Ok((values, index)),
            false => Ok((values.squeeze(axis)?, index.squeeze(axis)?)),
        }
    }

    /// Variance along `axis` dividing by `len - correction`, as `torch.var(x, dim,
    /// correction=..)`: 1 is the unbiased estimate ([`Tensor::var`]), 0 the population
    /// variance. Where `len <= correction` the divisor is 0 and the result inf (NaN for a
    /// constant line), as in PyTorch.
    ///
    /// ```
    /// use ferrograd::{Device, Tensor};
    /// let x = Tensor::new([1.0, 2.0, 4.0, 5.0], &Device::cpu())?;
    /// assert_eq!(x.var_with(0, 0, false)?.item()?, 2.5);
    /// assert_eq!(x.var_with(0, 1, false)?.item()?, 10.0 / 3.0);
    /// assert_eq!(x.std_with(0, 0, false)?.item()?, 2.5f32.sqrt());
    /// assert_eq!(x.var_with(0, 9, false)?.item()?, f32::INFINITY);
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub fn var_with(&self, axis: isize, correction: usize, keepdim: bool) -> Result<Tensor> {
        self.var_as("var_with", Some(axis), correction, keepdim)
    }

    /// Variance of all elements dividing by `numel - correction` (0-D).
    pub fn var_all_with(&self, correction: usize) -> Result<Tensor> {
        self.var_as("var_all_with", None, correction, false)
    }

    /// Unbiased standard deviation along `axis` (`torch.std`).
    pub fn std(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        safe_root(&self.var_as("std", Some(axis), 1, keepdim)?, 2.0)
    }

    /// Standard deviation along `axis` with a `correction` (see [`Tensor::var_with`]). Its
    /// gradient is 0 where the deviation is 0, as PyTorch's.
    pub fn std_with(&self, axis: isize, correction: usize, keepdim: bool) -> Result<Tensor> {
        safe_root(
            &self.var_as("std_with", Some(axis), correction, keepdim)?,
            2.0,
        )
    }

    /// Unbiased standard deviation of all elements (0-D).
    pub fn std_all(&self) -> Result<Tensor> {
        safe_root(&self.var_as("std_all", None, 1, false)?, 2.0)
    }

    /// The mean of squared deviations from the mean (two passes, stable) along `axis` (`None`:
    /// every element), divided by `max(len - correction, 0)`; errors reported as `op`.
    pub(crate) fn var_as(
        &self,
        op: &'static str,
        axis: Option<isize>,
        correction: usize,
        keepdim: bool,
    ) -> Result<Tensor> {
        let var = || -> Result<Tensor> {
            let x = self.to_float()?;
            let (len, squares) = match axis {
                Some(a) => {
                    let dev = x.sub(&x.mean(a, true)?)?;
                    (self.axis_len(op, a)?, dev.square()?.sum(a, keepdim)?)
                }
                None => {
                    let dev = x.sub(&x.mean_all()?)?;
                    (self.numel(), dev.square()?.sum_all()?)
                }
            };
            squares.div_scalar((len as f32 - correction as f32).max(0.0))
        };
        var().map_err(|e| e.in_op(op))
    }

    /// Sum over several axes at once, as `x.sum(dim=(1, 2))`; an empty list sums everything
    /// (as PyTorch's `dim=[]`).
    ///
    /// ```
    /// use ferrograd::{Device, Tensor};
    /// let x = Tensor::ones(&[2, 3, 4], &Device::cpu())?;
    /// assert_eq!(x.sum_axes(&[1, -1], false)?.to_vec()?, vec![12.0, 12.0]);
    /// assert_eq!(x.mean_axes(&[0, 2], true)?.shape(), &[1, 3, 1]);
    /// assert!(x.sum_axes(&[1, 1], false).is_err()); // an axis twice
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub fn sum_axes(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        let axes = self.distinct_axes("sum_axes", axes)?;
        let mut out = self.clone();
        for &a in &axes {
            out = out.sum(a as isize, true)?;
        }
        if !keepdim {
            for &a in &axes {
                out = out.squeeze(a as isize)?;
            }
        }
        Ok(out)
    }

    /// Mean over several axes at once (an empty list: every axis).
    pub fn mean_axes(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        let count: usize = self
            .distinct_axes("mean_axes", axes)?
            .iter()
            .map(|&a| self.shape().get(a).copied().unwrap_or(1))
            .product();
        self.to_float()?
            .sum_axes(axes, keepdim)?
            .div_scalar(count as f32)
    }

    /// The axes, normalised, each once, in descending order (so reducing them one by one
    /// with `keepdim` and then squeezing them leaves the others' positions alone). Empty:
    /// every axis.
    fn distinct_axes(&self, op: &'static str, axes: &[isize]) -> Result<Vec<usize>> {
        let rank = self.rank().max(1);
        let mut out = match axes {
            [] => (0..self.rank()).collect(),
            _ => axes
                .iter()
                .map(|&a| normalize_axis(op, a, rank))
                .collect::<Result<Vec<_>>>()?,
        };
        out.sort_unstable_by(|a, b| b.cmp(a));
        if let Some(w) = out.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::invalid(
                op,
                format!("axis {} appears more than once in {axes:?}", w[0]),
            ));
        }
        if self.rank() == 0 {
            out.clear(); // a 0-D tensor is its own sum
        }
        Ok(out)
    }

    /// `log(sum(exp(x)))` along `axis`, computed without overflow (the line's maximum is
    /// taken out first); a line of `-inf`, or an empty one, gives `-inf`, as
    /// `torch.logsumexp`.
    ///
    /// ```
    /// use ferrograd::{Device, Tensor};
    /// let x = Tensor::new([[1000.0, 1000.0], [0.0, f32::NEG_INFINITY]], &Device::cpu())?;
    /// let y = x.logsumexp(1, false)?.to_vec()?;
    /// assert!((y[0] - (1000.0 + 2f32.ln())).abs() < 1e-3 && y[1] == 0.0);
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub fn logsumexp(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        let x = self.to_float()?;
        if self.axis_len("logsumexp", axis)? == 0 {
            // The log of an empty sum, as PyTorch's.
            let shape = x.sum(axis, keepdim)?.shape().to_vec();
            return Tensor::full(&shape, f32::NEG_INFINITY, x.device())?.to_dtype(x.dtype());
        }
        // The shift is a constant for autograd; an infinite maximum shifts by 0, so a line of
        // -inf sums to 0 and gives -inf rather than NaN.
        let m = no_grad(|| {
            let m = x.amax(axis, true)?;
            Tensor::where_(
                &m.abs()?.lt_scalar(f32::INFINITY)?,
                &m,
                &Tensor::zeros_dtype(&[], m.dtype(), m.device())?,
            )
        })
        .map_err(|e| e.in_op("logsumexp"))?;
        let out = x.sub(&m)?.exp()?.sum(axis, true)?.log()?.add(&m)?;
        match keepdim || self.rank() == 0 {
            true => Ok(out),
            false => out.squeeze(axis),
        }
    }

    /// The `p`-norm of each line along `axis`, as `torch.linalg.vector_norm(x, ord=p,
    /// dim=axis)`: `(sum |x|^p)^(1/p)`, `p = inf` the largest `|x|`, `-inf` the smallest, `0`
    /// the count of non-zeros (flat: it does not track gradients). The gradient at a zero
    /// element or line is 0, as PyTorch's.
    ///
    /// ```
    /// use ferrograd::{Device, Tensor};
    /// let x = Tensor::new([[3.0, -4.0], [0.0, 0.0]], &Device::cpu())?;
    /// assert_eq!(x.norm(2.0, 1, false)?.to_vec()?, vec![5.0, 0.0]);
    /// assert_eq!(x.norm(1.0, 1, false)?.to_vec()?, vec![7.0, 0.0]);
    /// assert_eq!(x.norm(f32::INFINITY, 1, false)?.to_vec()?, vec![4.0, 0.0]);
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub fn norm(&self, p: f32, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.norm_impl(p, Some(axis), keepdim)
    }

    /// The `p`-norm of all elements (0-D), as `torch.linalg.vector_norm(x, ord=p)`.
    pub fn norm_all(&self, p: f32) -> Result<Tensor> {
        self.norm_impl(p, None, false)
    }

    fn norm_impl(&self, p: f32, axis: Option<isize>, keepdim: bool) -> Result<Tensor> {
        let op = if axis.is_some() { "norm" } else { "norm_all" };
        if p.is_nan() {
            return Err(Error::invalid(op, "p is NaN"));
        }
        let norm = || -> Result<Tensor> {
            let x = self.to_float()?;
            let sum = |t: &Tensor| match axis {
                Some(a) => t.sum(a, keepdim),
                None => t.sum_all(),
            };
            let a = x.abs()?;
            if p.is_infinite() {
                match (axis, p > 0.0) {
                    (Some(ax), true) => a.amax(ax, keepdim),
                    (Some(ax), false) => a.amin(ax, keepdim),
                    (None, true) => a.max_all(),
                    (None, false) => a.min_all(),
                }
            } else if p == 0.0 {
                // A count: flat, so it does not track gradients (PyTorch's gives none either).
                sum(&x.ne_scalar(0.0)?.to_dtype(x.dtype())?)
            } else if p == 1.0 {
                sum(&a)
            } else if p == 2.0 {
                safe_root(&sum(&x.square()?)?, 2.0)
            } else {
                // |x|^p of a zero element is 0 (p > 0) or inf (p < 0), with gradient 0: taken on
                // 1 instead and replaced, as the power's own gradient at 0 would be inf (or NaN).
                let zero = a.eq_scalar(0.0)?;
                let fill = if p > 0.0 { 0.0 } else { f32::INFINITY };
                let fill = Tensor::full(&[], fill, a.device())?.to_dtype(a.dtype())?;
                let one = Tensor::ones_dtype(&[], a.dtype(), a.device())?;
                let powered = Tensor::where_(&zero, &one, &a)?.pow_scalar(p)?;
                let s = sum(&Tensor::where_(&zero, &fill, &powered)?)?;
                match p > 0.0 {
                    true => safe_root(&s, p),
                    // A zero element makes the sum inf and the norm 0, with gradient 0 throughout.
                    false => s.pow_scalar(1.0 / p),
                }
            }
        };
        norm().map_err(|e| e.in_op(op))
    }
}

/// `v^(1/p)` with gradient 0 where `v` is 0 (not `g v^(1/p - 1) / p` at 0, which is inf and
/// times the 0 gradient below gives NaN): `std` and `norm` give 0 there, as PyTorch's.
fn safe_root(v: &Tensor, p: f32) -> Result<Tensor> {
    let zero = v.eq_scalar(0.0)?;
    let one = Tensor::ones_dtype(&[], v.dtype(), v.device())?;
    let safe = Tensor::where_(&zero, &one, v)?;
    let root = match p == 2.0 {
        true => safe.sqrt()?,
        false => safe.pow_scalar(1.0 / p)?,
    };
    Tensor::where_(
        &zero,
        &Tensor::zeros_dtype(&[], v.dtype(), v.device())?,
        &root,
    )
}
