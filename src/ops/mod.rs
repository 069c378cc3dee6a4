//! Tensor ops. Each method validates its operands (shape, device, axis, index) and builds the
//! spec both backends run from, so the CPU and the GPU see exactly the same problem.

mod conv;
mod index;
mod linear;
mod loss;
mod norm;
mod optim;
mod pool;
mod reduce;
mod window;

pub use conv::{Conv1dOptions, Conv2dOptions};
pub use norm::{BatchNormOptions, RunningStats};
pub use pool::Pool2dOptions;
pub(crate) use window::needs_tiles;

use crate::autograd::{record, untracked, BackOp};
use crate::backend::{Elementwise, MatOperand, MatmulSpec, Strided};
use crate::error::{Error, Result};
use crate::op::{Activation, BinaryOp, UnaryOp};
use crate::shape::{broadcast_shapes, collapse, fits_kernel, Layout};
use crate::storage::Storage;
use crate::tensor::Tensor;

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
        let s = match Storage::elementwise(&[self.storage()], &spec, Elementwise::Unary(op), name) {
            // A view one flat piece of which reads past a GPU binding: copied in tiles first
            // (that copy is all a copy needs).
            Err(e) if window::needs_tiles(&e) => {
                let dense = self.copy_in_tiles(name)?;
                return match op {
                    UnaryOp::Identity => Ok(dense),
                    _ => dense.unary(op, name),
                };
            }
            r => r.map_err(|e| e.in_op(name))?,
        };
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
        let s = match Storage::elementwise(
            &[self.storage(), rhs.storage()],
            &spec,
            Elementwise::Binary(op),
            name,
        ) {
            // Operands one flat piece of which reads past a GPU binding: copied in tiles first.
            Err(e) if window::needs_tiles(&e) => {
                let a = self.broadcast_to(&shape)?.copy_in_tiles(name)?;
                return a.binary(&rhs.broadcast_to(&shape)?.copy_in_tiles(name)?, op);
            }
            r => r.map_err(|e| e.in_op(name))?,
        };
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
        let s = match Storage::elementwise(
            &[cond.storage(), a.storage(), b.storage()],
            &spec,
            Elementwise::Where,
            "where_",
        ) {
            // Operands one flat piece of which reads past a GPU binding: copied in tiles first.
            Err(e) if window::needs_tiles(&e) => {
                let dense = |t: &Tensor| t.broadcast_to(&shape)?.copy_in_tiles("where_");
                return Tensor::where_(&dense(cond)?, &dense(a)?, &dense(b)?);
            }
            r => r?,
        };
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
