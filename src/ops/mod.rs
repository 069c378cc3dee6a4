//! Tensor ops. Each method validates its operands (shape, device, axis, index) and builds the
//! spec both backends run from, so the CPU and the GPU see exactly the same problem.

mod conv;
mod linear;
mod norm;
mod pool;
mod window;

pub use conv::{Conv1dOptions, Conv2dOptions};
pub use norm::{BatchNormOptions, RunningStats};
pub use pool::Pool2dOptions;

use crate::autograd::{record, untracked, BackOp};
use crate::error::{Error, Result};
use crate::op::{Activation, BinaryOp, ReduceOp, UnaryOp};
use crate::shape::{broadcast_shapes, collapse, fits_kernel, normalize_axis, Layout};
use crate::storage::{Elementwise, GatherSpec, LineSpec, MatOperand, MatmulSpec, Storage, Strided};
use crate::tensor::Tensor;

/// Elements per row of the first pass of a full reduction on the GPU.
const FULL_REDUCE_ROW: usize = 4096;
/// Indices are returned as f32, which holds every integer up to 2^24 exactly.
const MAX_F32_INDEX: usize = 1 << 24;

pub(crate) fn same_device(op: &'static str, tensors: &[&Tensor]) -> Result<()> {
    let first = tensors[0].device();
    match tensors.iter().find(|t| t.device() != first) {
        Some(t) => Err(Error::DeviceMismatch {
            op,
            lhs: first.to_string(),
            rhs: t.device().to_string(),
        }),
        None => Ok(()),
    }
}

macro_rules! unary_ops {
    ($($(#[$doc:meta])* $name:ident => $op:expr;)*) => {$(
        $(#[$doc])*
        pub fn $name(&self) -> Result<Tensor> {
            self.unary($op, stringify!($name))
        }
    )*};
}

macro_rules! binary_ops {
    ($($(#[$doc:meta])* $name:ident, $scalar:ident => $op:expr;)*) => {$(
        $(#[$doc])*
        /// Broadcasts NumPy-style.
        pub fn $name(&self, rhs: &Tensor) -> Result<Tensor> {
            self.binary(rhs, $op)
        }
        $(#[$doc])*
        /// With a scalar right-hand side.
        pub fn $scalar(&self, rhs: f32) -> Result<Tensor> {
            self.unary(UnaryOp::Scalar($op, rhs), stringify!($scalar))
        }
    )*};
}

impl Tensor {
    pub(crate) fn unary(&self, op: UnaryOp, name: &'static str) -> Result<Tensor> {
        if !fits_kernel(&[self.layout()]) {
            return self.contiguous()?.unary(op, name);
        }
        let spec = Strided::new(name, &[self.layout()])?;
        let s = Storage::elementwise(&[self.storage()], &spec, Elementwise::Unary(op), name)
            .map_err(|e| e.in_op(name))?;
        let out = Tensor::from_storage(s, self.shape(), self.device());
        Ok(record(
            out.clone(),
            BackOp::Unary {
                x: self.clone(),
                op,
                out,
            },
        ))
    }

    pub(crate) fn binary(&self, rhs: &Tensor, op: BinaryOp) -> Result<Tensor> {
        let name = op.name();
        same_device(name, &[self, rhs])?;
        let shape = broadcast_shapes(name, self.shape(), rhs.shape())?;
        let la = self.layout().broadcast_to(name, &shape)?;
        let lb = rhs.layout().broadcast_to(name, &shape)?;
        if !fits_kernel(&[&la, &lb]) {
            // Too many axes to walk together: copy both operands dense first.
            let a = self.broadcast_to(&shape)?.contiguous()?;
            return a.binary(&rhs.broadcast_to(&shape)?.contiguous()?, op);
        }
        let spec = Strided::new(name, &[&la, &lb])?;
        let s = Storage::elementwise(
            &[self.storage(), rhs.storage()],
            &spec,
            Elementwise::Binary(op),
            name,
        )
        .map_err(|e| e.in_op(name))?;
        let out = Tensor::from_storage(s, &shape, self.device());
        Ok(record(
            out.clone(),
            BackOp::Binary {
                a: self.clone(),
                b: rhs.clone(),
                op,
                out,
            },
        ))
    }

    /// Any [`BinaryOp`] elementwise, with broadcasting, including the autograd backward ops
    /// (`BinaryOp::ReluBackward` and friends): building blocks for custom gradient rules.
    pub fn binary_op(&self, rhs: &Tensor, op: BinaryOp) -> Result<Tensor> {
        self.binary(rhs, op)
    }

    /// `s - self` and friends: a scalar on the left of a binary op.
    pub(crate) fn scalar_left(&self, lhs: f32, op: BinaryOp) -> Result<Tensor> {
        self.unary(UnaryOp::ScalarLeft(op, lhs), op.name())
    }

    unary_ops! {
        /// `-x`.
        neg => UnaryOp::Neg;
        /// `|x|`.
        abs => UnaryOp::Abs;
        /// `e^x`.
        exp => UnaryOp::Exp;
        /// Natural log (NaN below 0, -inf at 0).
        log => UnaryOp::Log;
        /// Square root (NaN below 0).
        sqrt => UnaryOp::Sqrt;
        /// `x * x`.
        square => UnaryOp::Square;
        /// `max(x, 0)` (NaN stays NaN).
        relu => UnaryOp::Relu;
        /// `1 / (1 + e^-x)`, computed without overflow.
        sigmoid => UnaryOp::Sigmoid;
        /// Hyperbolic tangent.
        tanh => UnaryOp::Tanh;
        /// GELU, tanh approximation (PyTorch's `approximate="tanh"`).
        gelu => UnaryOp::Gelu;
    }

    /// `x` where `x > 0`, else `slope * x`.
    pub fn leaky_relu(&self, slope: f32) -> Result<Tensor> {
        self.unary(UnaryOp::LeakyRelu(slope), "leaky_relu")
    }

    /// `min(max(x, lo), hi)`.
    pub fn clamp(&self, lo: f32, hi: f32) -> Result<Tensor> {
        if lo > hi || lo.is_nan() || hi.is_nan() {
            return Err(Error::invalid(
                "clamp",
                format!("min {lo} must not exceed max {hi}"),
            ));
        }
        self.unary(UnaryOp::Clamp(lo, hi), "clamp")
    }

    binary_ops! {
        /// Elementwise `a + b`.
        add, add_scalar => BinaryOp::Add;
        /// Elementwise `a - b`.
        sub, sub_scalar => BinaryOp::Sub;
        /// Elementwise `a * b`.
        mul, mul_scalar => BinaryOp::Mul;
        /// Elementwise `a / b`.
        div, div_scalar => BinaryOp::Div;
        /// Elementwise `a ^ b` (negative bases need integral exponents, else NaN).
        pow, pow_scalar => BinaryOp::Pow;
        /// Elementwise maximum (NaN if either is NaN).
        maximum, maximum_scalar => BinaryOp::Maximum;
        /// Elementwise minimum (NaN if either is NaN).
        minimum, minimum_scalar => BinaryOp::Minimum;
        /// 1.0 where `a == b`, else 0.0.
        eq, eq_scalar => BinaryOp::Eq;
        /// 1.0 where `a != b`, else 0.0.
        ne, ne_scalar => BinaryOp::Ne;
        /// 1.0 where `a < b`, else 0.0.
        lt, lt_scalar => BinaryOp::Lt;
        /// 1.0 where `a <= b`, else 0.0.
        le, le_scalar => BinaryOp::Le;
        /// 1.0 where `a > b`, else 0.0.
        gt, gt_scalar => BinaryOp::Gt;
        /// 1.0 where `a >= b`, else 0.0.
        ge, ge_scalar => BinaryOp::Ge;
    }

    /// `a` where `cond != 0`, else `b`; all three broadcast together.
    pub fn where_(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        same_device("where_", &[cond, a, b])?;
        let shape = broadcast_shapes(
            "where_",
            &broadcast_shapes("where_", cond.shape(), a.shape())?,
            b.shape(),
        )?;
        let ls: Vec<Layout> = [cond, a, b]
            .iter()
            .map(|t| t.layout().broadcast_to("where_", &shape))
            .collect::<Result<_>>()?;
        if !fits_kernel(&[&ls[0], &ls[1], &ls[2]]) {
            let dense = |t: &Tensor| t.broadcast_to(&shape)?.contiguous();
            return Tensor::where_(&dense(cond)?, &dense(a)?, &dense(b)?);
        }
        let spec = Strided::new("where_", &[&ls[0], &ls[1], &ls[2]])?;
        let s = Storage::elementwise(
            &[cond.storage(), a.storage(), b.storage()],
            &spec,
            Elementwise::Where,
            "where_",
        )?;
        let out = Tensor::from_storage(s, &shape, cond.device());
        Ok(record(
            out,
            BackOp::Where {
                cond: cond.clone(),
                a: a.clone(),
                b: b.clone(),
            },
        ))
    }

    /// Matrix product. 2-D: `[m, k] · [k, n] -> [m, n]`. Batched: leading axes broadcast
    /// (`[b, m, k] · [k, n] -> [b, m, n]`). A 1-D operand is a vector (its axis is removed from
    /// the result), as in NumPy. Transposed views are multiplied without a copy.
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        let out = untracked(|| self.matmul_impl(rhs))?;
        Ok(record(
            out,
            BackOp::Matmul {
                a: self.clone(),
                b: rhs.clone(),
            },
        ))
    }

    fn matmul_impl(&self, rhs: &Tensor) -> Result<Tensor> {
        self.matmul_epilogue(rhs, None, Activation::Identity)
    }

    /// `act(self · rhs + bias)` in one kernel, untracked: the matmul above with the fused
    /// epilogue. `bias` must broadcast to the result's shape; `linear` checks it for users.
    pub(crate) fn matmul_epilogue(
        &self,
        rhs: &Tensor,
        bias: Option<&Tensor>,
        act: Activation,
    ) -> Result<Tensor> {
        let operands: Vec<&Tensor> = [self, rhs].into_iter().chain(bias).collect();
        same_device("matmul", &operands)?;
        let mismatch = |why: String| Error::ShapeMismatch {
            op: "matmul",
            lhs: self.shape().to_vec(),
            rhs: rhs.shape().to_vec(),
            why,
        };
        if self.rank() == 0 || rhs.rank() == 0 {
            return Err(mismatch(
                "cannot be multiplied (matmul needs at least 1-D operands)".into(),
            ));
        }
        let a = if self.rank() == 1 {
            self.unsqueeze(0)?
        } else {
            self.clone()
        };
        let b = if rhs.rank() == 1 {
            rhs.unsqueeze(1)?
        } else {
            rhs.clone()
        };
        let (ra, rb) = (a.rank(), b.rank());
        let (m, k) = (a.shape()[ra - 2], a.shape()[ra - 1]);
        let (k2, n) = (b.shape()[rb - 2], b.shape()[rb - 1]);
        if k != k2 {
            return Err(mismatch(format!(
                "cannot be multiplied (inner dimensions {k} and {k2} differ)"
            )));
        }
        let batch_shape = broadcast_shapes("matmul", &a.shape()[..ra - 2], &b.shape()[..rb - 2])
            .map_err(|_| {
                mismatch(format!(
                    "have batch dimensions {:?} and {:?} that do not broadcast",
                    &a.shape()[..ra - 2],
                    &b.shape()[..rb - 2]
                ))
            })?;
        let batch: usize = batch_shape.iter().product();
        let operand = |t: &Tensor, rows: usize, cols: usize| -> Result<(Tensor, MatOperand)> {
            let full: Vec<usize> = batch_shape.iter().copied().chain([rows, cols]).collect();
            let mut t = t.broadcast_to(&full)?;
            let nb = batch_shape.len();
            // The batch axes must flatten to one stride; otherwise copy (rare: odd views).
            if collapse("matmul", &batch_shape, &[&t.strides()[..nb]])?
                .shape
                .len()
                > 1
            {
                t = t.contiguous()?;
            }
            let c = collapse("matmul", &batch_shape, &[&t.strides()[..nb]])?;
            let op = MatOperand {
                offset: t.layout().offset(),
                batch: c.strides[0].first().copied().unwrap_or(0),
                row: t.strides()[nb],
                col: t.strides()[nb + 1],
            };
            Ok((t, op))
        };
        let (ta, oa) = operand(&a, m, k)?;
        let (tb, ob) = operand(&b, k, n)?;
        // The bias as a third operand over the [batch, m, n] output, read through its strides.
        let (tc, oc) = match bias {
            Some(c) => {
                let (t, o) = operand(c, m, n)?;
                (Some(t), Some(o))
            }
            None => (None, None),
        };
        let spec = MatmulSpec {
            batch,
            m,
            n,
            k,
            a: oa,
            b: ob,
            bias: oc,
            act,
        };
        let s = ta
            .storage()
            .matmul(tb.storage(), tc.as_ref().map(|t| t.storage()), &spec)?;
        let mut shape = batch_shape;
        if self.rank() > 1 {
            shape.push(m);
        }
        if rhs.rank() > 1 {
            shape.push(n);
        }
        Ok(Tensor::from_storage(s, &shape, self.device()))
    }

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
        if spec.len == 0 {
            return Tensor::zeros(&out, self.device()); // the sum of nothing, as a fill
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
        f: &dyn Fn(&Tensor) -> Result<Tensor>,
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
                let parts = (0..size)
                    .step_by(per)
                    .map(|s| f(&self.narrow(k as isize, s, per.min(size - s))?))
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
    /// inner axis (`along_in_parts`), else, for sum, max and min, by the axis itself, the
    /// partial results reduced again (a sum of sums).
    fn reduce_in_parts(&self, axis: isize, keepdim: bool, op: ReduceOp) -> Result<Option<Tensor>> {
        let ax = normalize_axis(op.name(), axis, self.rank().max(1))?;
        let each = |t: &Tensor| t.reduce_axis_impl(axis, keepdim, op);
        if let Some(out) = self.along_in_parts(ax, keepdim, &each)? {
            return Ok(Some(out));
        }
        let (Some(ctx), Some(&len)) = (self.device().gpu_context(), self.shape().get(ax)) else {
            return Ok(None);
        };
        let inner: usize = self.shape()[ax + 1..].iter().product();
        let room = (ctx.max_binding_bytes() / 4 / 2) as usize;
        let per = room / inner.max(1);
        let combinable = matches!(op, ReduceOp::Sum | ReduceOp::Max | ReduceOp::Min);
        if !combinable || per < 2 || len.saturating_mul(inner) <= room {
            return Ok(None);
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
    /// Mean along `axis`.
    pub fn mean(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        let len = self.axis_len("mean", axis)?;
        self.sum(axis, keepdim)
            .and_then(|s| s.mul_scalar(1.0 / len as f32))
            .map_err(|e| e.in_op("mean"))
    }
    /// Mean of all elements (0-D).
    pub fn mean_all(&self) -> Result<Tensor> {
        self.sum_all()
            .and_then(|s| s.mul_scalar(1.0 / self.numel() as f32))
            .map_err(|e| e.in_op("mean_all"))
    }
    /// Maximum along `axis` (NaN if the line holds a NaN).
    pub fn max(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce_axis(axis, keepdim, ReduceOp::Max)
    }
    pub fn max_all(&self) -> Result<Tensor> {
        self.reduce_all(ReduceOp::Max)
    }
    /// Minimum along `axis`.
    pub fn min(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce_axis(axis, keepdim, ReduceOp::Min)
    }
    pub fn min_all(&self) -> Result<Tensor> {
        self.reduce_all(ReduceOp::Min)
    }
    /// Index of the first maximum along `axis`, as f32.
    pub fn argmax(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce_axis(axis, keepdim, ReduceOp::ArgMax)
    }
    /// Index (into the flattened tensor) of the first maximum, as a 0-D f32.
    pub fn argmax_all(&self) -> Result<Tensor> {
        self.reduce_all(ReduceOp::ArgMax)
    }
    /// Index of the first minimum along `axis`, as f32.
    pub fn argmin(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce_axis(axis, keepdim, ReduceOp::ArgMin)
    }
    pub fn argmin_all(&self) -> Result<Tensor> {
        self.reduce_all(ReduceOp::ArgMin)
    }

    /// Unbiased variance along `axis` (divides by `len - 1`, like `torch.var`), computed as
    /// the mean of squared deviations from the mean (two passes, stable).
    pub fn var(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        let len = self.axis_len("var", axis)?;
        let dev = self.sub(&self.mean(axis, true)?)?;
        dev.square()?
            .sum(axis, keepdim)?
            .mul_scalar(1.0 / (len as f32 - 1.0))
    }
    /// Unbiased variance of all elements (0-D).
    pub fn var_all(&self) -> Result<Tensor> {
        let dev = self.sub(&self.mean_all()?)?;
        dev.square()?
            .sum_all()?
            .mul_scalar(1.0 / (self.numel() as f32 - 1.0))
    }

    fn axis_len(&self, op: &'static str, axis: isize) -> Result<usize> {
        let ax = normalize_axis(op, axis, self.rank().max(1))?;
        Ok(self.shape().get(ax).copied().unwrap_or(1))
    }

    // ---- softmax ----

    fn softmax_impl(&self, axis: isize, log: bool) -> Result<Tensor> {
        let name = if log { "log_softmax" } else { "softmax" };
        let (out, ax) = untracked(|| {
            let ax = normalize_axis(name, axis, self.rank().max(1))?;
            let each = |t: &Tensor| t.softmax_impl(axis, log);
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

    // ---- indexing and joining ----

    /// Picks entries `indices` (1-D, integral f32 values) along `axis`.
    ///
    /// # Errors
    /// `IndexOutOfRange` for an index outside `0..size` (on the GPU: when the output, or anything computed from it, is read back).
    pub fn index_select(&self, axis: isize, indices: &Tensor) -> Result<Tensor> {
        same_device("index_select", &[self, indices])?;
        let ax = normalize_axis("index_select", axis, self.rank())?;
        if indices.rank() != 1 {
            return Err(Error::invalid(
                "index_select",
                format!("indices must be 1-D, found shape {:?}", indices.shape()),
            ));
        }
        let mut out_shape = self.shape().to_vec();
        out_shape[ax] = indices.numel();
        // The index, seen over the output shape: it moves only along `axis`.
        let mut idx_strides = vec![0; out_shape.len()];
        idx_strides[ax] = indices.strides()[0];
        let idx = Layout::from_parts(out_shape.clone(), idx_strides, indices.layout().offset());
        let out = self.gather_impl("index_select", ax, indices, &idx, out_shape)?;
        Ok(record(
            out,
            BackOp::IndexSelect {
                x: self.clone(),
                axis: ax,
                index: indices.clone(),
            },
        ))
    }

    /// `out[i][j] = self[index[i][j]][j]` for `axis = 0` (and likewise for other axes), as
    /// `torch.gather`: `index` has the same rank, and no larger size off `axis`.
    pub fn gather(&self, axis: isize, index: &Tensor) -> Result<Tensor> {
        self.gather_as("gather", axis, index)
    }

    /// [`Tensor::gather`] reporting its errors (on the GPU, its out-of-range indices too) as
    /// `op`, for ops built on it (`nll`).
    pub(crate) fn gather_as(
        &self,
        op: &'static str,
        axis: isize,
        index: &Tensor,
    ) -> Result<Tensor> {
        same_device(op, &[self, index])?;
        let ax = normalize_axis(op, axis, self.rank())?;
        let fits = index.rank() == self.rank()
            && index
                .shape()
                .iter()
                .zip(self.shape())
                .enumerate()
                .all(|(d, (&i, &s))| d == ax || i <= s);
        if !fits {
            return Err(Error::ShapeMismatch {
                op,
                lhs: self.shape().to_vec(),
                rhs: index.shape().to_vec(),
                why: format!(
                    "do not fit: the index needs the same rank and no larger size off axis {ax}"
                ),
            });
        }
        let out_shape = index.shape().to_vec();
        let dense;
        let index = match fits_kernel(&[index.layout()]) {
            true => index,
            false => {
                dense = index.contiguous()?;
                &dense
            }
        };
        let out = self.gather_impl(op, ax, index, index.layout(), out_shape)?;
        Ok(record(
            out,
            BackOp::Gather {
                x: self.clone(),
                axis: ax,
                index: index.clone(),
            },
        ))
    }

    fn gather_impl(
        &self,
        op: &'static str,
        ax: usize,
        index: &Tensor,
        idx: &Layout,
        out_shape: Vec<usize>,
    ) -> Result<Tensor> {
        // The input, seen over the output shape with its `axis` stride zeroed: the kernel
        // adds `index * axis_stride`.
        let mut strides = self.strides().to_vec();
        let axis_stride = strides[ax];
        strides[ax] = 0;
        let input = Layout::from_parts(out_shape.clone(), strides, self.layout().offset());
        if !fits_kernel(&[&input, idx]) && !self.is_contiguous() {
            // A dense input merges all but `axis`; the index (dense, or `index_select`'s
            // one-axis view) then merges with it.
            return self
                .contiguous()?
                .gather_impl(op, ax, index, idx, out_shape);
        }
        let spec = GatherSpec {
            strided: Strided::new(op, &[&input, idx])?,
            axis: ax,
            axis_size: self.shape()[ax],
            axis_stride,
        };
        let s = self.storage().gather(index.storage(), &spec, op)?;
        Ok(Tensor::from_storage(s, &out_shape, self.device()))
    }

    /// One-hot encoding of integral class indices: shape `[..] -> [.., classes]`.
    pub fn one_hot(&self, classes: usize) -> Result<Tensor> {
        if classes == 0 {
            return Err(Error::invalid("one_hot", "classes must be at least 1"));
        }
        let shape: Vec<usize> = self.shape().iter().copied().chain([classes]).collect();
        let numel = crate::shape::checked_numel("one_hot", &shape)?;
        crate::tensor::check_fits(self.device(), "one_hot", numel)?;
        if !fits_kernel(&[self.layout()]) {
            return self.contiguous()?.one_hot(classes);
        }
        let spec = Strided::new("one_hot", &[self.layout()])?;
        let s = self.storage().one_hot(&spec, classes)?;
        Ok(Tensor::from_storage(s, &shape, self.device()))
    }

    /// Joins tensors along an existing `axis`; all other axes must match.
    pub fn cat(tensors: &[&Tensor], axis: isize) -> Result<Tensor> {
        let first = tensors
            .first()
            .ok_or_else(|| Error::invalid("cat", "needs at least one tensor"))?;
        same_device("cat", tensors)?;
        let ax = normalize_axis("cat", axis, first.rank())?;
        let mut out_shape = first.shape().to_vec();
        out_shape[ax] = 0;
        for t in tensors {
            let agrees = t.rank() == first.rank()
                && t.shape()
                    .iter()
                    .zip(first.shape())
                    .enumerate()
                    .all(|(d, (a, b))| d == ax || a == b);
            if !agrees {
                return Err(Error::ShapeMismatch {
                    op: "cat",
                    lhs: first.shape().to_vec(),
                    rhs: t.shape().to_vec(),
                    why: format!("differ off the joined axis {ax}"),
                });
            }
            out_shape[ax] += t.shape()[ax];
        }
        let dst = Layout::contiguous(&out_shape);
        let mut regions = Vec::with_capacity(tensors.len());
        let mut sources = Vec::with_capacity(tensors.len());
        let mut start = 0;
        for t in tensors.iter().filter(|t| t.numel() > 0) {
            let region = dst.narrowed("cat", ax, start, t.shape()[ax])?;
            start += t.shape()[ax];
            // A part with more axes than the copy kernel walks is made dense first.
            sources.push(match fits_kernel(&[&region, t.layout()]) {
                true => (*t).clone(),
                false => t.contiguous()?,
            });
            regions.push(region);
        }
        let mut parts = Vec::with_capacity(sources.len());
        for (t, region) in sources.iter().zip(&regions) {
            parts.push((t.storage(), Strided::new("cat", &[region, t.layout()])?));
        }
        let numel = out_shape.iter().product();
        let out = match parts.is_empty() {
            true => Tensor::zeros(&out_shape, first.device())?,
            false => Tensor::from_storage(Storage::cat(&parts, numel)?, &out_shape, first.device()),
        };
        Ok(record(
            out,
            BackOp::Cat {
                parts: tensors.iter().map(|t| (*t).clone()).collect(),
                axis: ax,
            },
        ))
    }

    /// Joins same-shaped tensors along a new `axis`.
    pub fn stack(tensors: &[&Tensor], axis: isize) -> Result<Tensor> {
        let first = tensors
            .first()
            .ok_or_else(|| Error::invalid("stack", "needs at least one tensor"))?;
        if let Some(t) = tensors.iter().find(|t| t.shape() != first.shape()) {
            return Err(Error::ShapeMismatch {
                op: "stack",
                lhs: first.shape().to_vec(),
                rhs: t.shape().to_vec(),
                why: "differ (stack needs equal shapes)".into(),
            });
        }
        let ax = normalize_axis("stack", axis, first.rank() + 1)? as isize;
        let parts: Vec<Tensor> = tensors
            .iter()
            .map(|t| t.unsqueeze(ax))
            .collect::<Result<_>>()?;
        Tensor::cat(&parts.iter().collect::<Vec<_>>(), ax).map_err(|e| e.in_op("stack"))
    }

    // ---- checks ----

    /// How many elements are NaN or ±inf (tested on the bit pattern on the GPU).
    pub fn count_non_finite(&self) -> Result<usize> {
        Ok(self
            .unary(UnaryOp::IsNonFinite, "count_non_finite")?
            .sum_all()?
            .to_scalar()? as usize)
    }

    /// True when no element is NaN or ±inf.
    pub fn all_finite(&self) -> Result<bool> {
        Ok(self.count_non_finite()? == 0)
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
    if matches!(op, ReduceOp::ArgMax | ReduceOp::ArgMin) && len > MAX_F32_INDEX {
        return Err(Error::invalid(
            name,
            format!("axis of length {len} exceeds 2^24, past which f32 indices are inexact"),
        ));
    }
    Ok(())
}
