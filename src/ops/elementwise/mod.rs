//! Elementwise ops: unary, binary with NumPy broadcasting, scalar forms, `where_`, logical ops,
//! dtype conversion and the finiteness checks. Every operand is read through its own strides,
//! so views need no copy.
//!
//! Dtypes (`src/dtype.rs`): operands of two dtypes are computed in the promoted one
//! (`DType::promote`); comparisons and logical ops give `Bool`; `I32` has kernels of its own
//! for the ops that keep integers integers (`UnaryOp::on_i32`, `BinaryOp::on_i32`) and the
//! rest compute in the device's float (`int / int`, `exp(int)` are floats, as in PyTorch);
//! `Bool` takes logical ops, `==`, `!=` and `where_`, and counts as `I32` 0/1 elsewhere.

mod activations;
mod cast;
pub(crate) mod cpu;
pub(crate) mod gpu;
pub mod op;
pub(crate) mod spec;
pub(crate) mod tiles;

use super::same_device;
use crate::autograd::{record, untracked, BackOp};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::ops::elementwise::op::{BinaryOp, UnaryOp};
use crate::shape::{broadcast_shapes, fits_kernel, Layout};
use crate::storage::Storage;
use crate::tensor::Tensor;
use spec::{Elementwise, Strided};

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
    /// This tensor converted to `dtype` (itself when it already is). Floats to `I32` truncate
    /// toward zero and saturate (NaN gives 0); anything to `Bool` is `x != 0`; `Bool` to a
    /// number is 0 or 1; to `F16` or `BF16` through f32, rounding to nearest even (overflow
    /// gives infinity). Differentiable between float dtypes (the gradient is cast back);
    /// a result of another dtype does not track gradients.
    ///
    /// ```
    /// use ferrograd::{DType, Device, Tensor};
    /// let x = Tensor::from_vec(vec![-1.7, 0.0, 2.9], &[3], &Device::cpu())?;
    /// assert_eq!(x.to_dtype(DType::I32)?.to_vec_as::<i32>()?, vec![-1, 0, 2]);
    /// assert_eq!(x.to_dtype(DType::Bool)?.to_vec_as::<bool>()?, vec![true, false, true]);
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// `DType` for `F64` (computed only inside `gradcheck`).
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        // Floats on a device are its float dtype (F64 only on gradcheck's device).
        let dtype = match dtype.is_float() {
            true if self.device().float_dtype() == DType::F64 => DType::F64,
            true if dtype == DType::F64 => {
                return Err(Error::DType {
                    op: "to_dtype",
                    got: vec![dtype],
                    expected: "F32, F16, BF16, I32 or Bool",
                    hint: "F64 tensors exist only inside gradcheck for now",
                })
            }
            _ => dtype,
        };
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        let out = self.elementwise1(Elementwise::Cast(dtype), "to_dtype")?;
        // Between float dtypes the gradient flows, cast back (`record` skips other outputs).
        match self.dtype().is_float() {
            true => Ok(record(out, BackOp::ToDtype { x: self.clone() })),
            false => Ok(out),
        }
    }

    /// This tensor in the device's float dtype (`F32`; `F64` inside gradcheck).
    pub(crate) fn to_float(&self) -> Result<Tensor> {
        self.to_dtype(self.device().float_dtype())
    }

    /// `kind` of one operand, over any view; the caller records it.
    fn elementwise1(&self, kind: Elementwise, name: &'static str) -> Result<Tensor> {
        if !fits_kernel(&[self.layout()]) {
            return self.contiguous()?.elementwise1(kind, name);
        }
        let spec = Strided::new(name, &[self.layout()])?;
        let s = match Storage::elementwise(&[self.storage()], &spec, kind, name) {
            // A view one flat piece of which reads past a GPU binding: copied in tiles first
            // (that copy is all a copy needs).
            Err(e) if e.needs_tiles() => {
                let dense = untracked(|| self.copy_in_tiles(name))?;
                return match kind {
                    Elementwise::Unary(UnaryOp::Identity) => Ok(dense),
                    _ => dense.elementwise1(kind, name),
                };
            }
            r => r.map_err(|e| e.in_op(name))?,
        };
        Ok(Tensor::from_storage(s, self.shape(), self.device()))
    }

    /// `!x` (a `Bool` tensor; other dtypes are tested against 0 first).
    pub fn logical_not(&self) -> Result<Tensor> {
        self.to_dtype(DType::Bool)?
            .unary(UnaryOp::LogicalNot, "logical_not")
    }

    /// Elementwise `a && b` (`Bool`; other dtypes are tested against 0 first). Broadcasts.
    pub fn logical_and(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::LogicalAnd)
    }

    /// Elementwise `a || b` (`Bool`). Broadcasts.
    pub fn logical_or(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::LogicalOr)
    }

    /// Elementwise `a != b` of truth values (`Bool`). Broadcasts.
    pub fn logical_xor(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::LogicalXor)
    }

    /// Where a unary op on this tensor's dtype runs: here, or (an error aside) through another
    /// dtype or as a constant (see the module comment).
    fn unary_plan(&self, op: UnaryOp) -> Result<Option<Tensor>> {
        Ok(match self.dtype() {
            d if d.is_float() => None,
            DType::I32 if op.on_i32() => None,
            DType::I32 => match op {
                UnaryOp::Scalar(b, s) if b.gives_bool() => Some(self.compare_inexact(b, s)?),
                UnaryOp::ScalarLeft(b, s) if b.gives_bool() => {
                    Some(self.compare_inexact(flip(b), s)?)
                }
                _ => Some(self.to_float()?.unary(op, op_name(op))?),
            },
            _ => match op {
                UnaryOp::Identity | UnaryOp::LogicalNot => None,
                _ => Some(self.to_dtype(DType::I32)?.unary(op, op_name(op))?),
            },
        })
    }

    /// `self (op) s` for an `I32` tensor and a scalar that is not an `i32` (a fraction, out of
    /// range, NaN), exactly: `x < 2.5` is `x <= 2`, `x == 2.5` is false everywhere.
    fn compare_inexact(&self, op: BinaryOp, s: f32) -> Result<Tensor> {
        use BinaryOp as B;
        let constant = |v: bool| {
            Tensor::full_dtype(
                self.shape(),
                f64::from(u8::from(v)),
                DType::Bool,
                self.device(),
            )
        };
        if s.is_nan() {
            return constant(op == B::Ne);
        }
        let f = f64::from(s).floor();
        let (lo, hi) = (f64::from(i32::MIN), f64::from(i32::MAX));
        match op {
            B::Eq | B::Ne => constant(op == B::Ne),
            // x < s and x <= s: x <= floor(s)
            B::Lt | B::Le if f >= hi => constant(true),
            B::Lt | B::Le if f < lo => constant(false),
            B::Lt | B::Le => self.unary(UnaryOp::Scalar(B::Le, f as f32), "le_scalar"),
            // x > s and x >= s: x > floor(s)
            B::Gt | B::Ge if f >= hi => constant(false),
            B::Gt | B::Ge if f < lo => constant(true),
            _ => self.unary(UnaryOp::Scalar(B::Gt, f as f32), "gt_scalar"),
        }
    }

    pub(crate) fn unary(&self, op: UnaryOp, name: &'static str) -> Result<Tensor> {
        if let Some(out) = self.unary_plan(op)? {
            return Ok(out);
        }
        let out = self.elementwise1(Elementwise::Unary(op), name)?;
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
        let (da, db) = (self.dtype(), rhs.dtype());
        // As PyTorch: a 0-dim operand does not raise the dtype of a dimensioned one of its
        // category (`x_f16 * Tensor::scalar(2.0)` stays F16; `x_i32 * Tensor::scalar(2.5)` is
        // F32).
        let common = match (self.rank() == 0, rhs.rank() == 0) {
            (true, false) if da.category() == db.category() => db,
            (false, true) if da.category() == db.category() => da,
            _ => da.promote(db),
        };
        let want = match op {
            BinaryOp::LogicalAnd | BinaryOp::LogicalOr | BinaryOp::LogicalXor => DType::Bool,
            BinaryOp::Eq | BinaryOp::Ne if common == DType::Bool => DType::Bool,
            _ if common.is_float() => common,
            _ if op.on_i32() => DType::I32,
            _ => self.device().float_dtype(),
        };
        if da != want || db != want {
            return self.to_dtype(want)?.binary(&rhs.to_dtype(want)?, op);
        }
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
            Err(e) if e.needs_tiles() => {
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
    }

    /// `x` where `x > 0`, else `slope * x`.
    pub fn leaky_relu(&self, slope: f32) -> Result<Tensor> {
        self.unary(UnaryOp::LeakyRelu(slope), "leaky_relu")
    }

    /// `min(max(x, lo), hi)`. The gradient is 1 strictly between the bounds and 0 at and
    /// beyond them, as in PyTorch 2.15 (`hardtanh` too).
    pub fn clamp(&self, lo: f32, hi: f32) -> Result<Tensor> {
        self.clamp_as("clamp", lo, hi)
    }

    /// `max(x, lo)`, as `torch.clamp_min` (gradient 0 at the bound, like [`Tensor::clamp`]).
    pub fn clamp_min(&self, lo: f32) -> Result<Tensor> {
        match self.dtype().is_float() || lo.is_nan() {
            true => self.clamp_as("clamp_min", lo, f32::INFINITY),
            // Integers stay integers with an integral bound (no gradient to keep); a NaN
            // bound is refused above.
            false => self.maximum_scalar(lo).map_err(|e| e.in_op("clamp_min")),
        }
    }

    /// `min(x, hi)`, as `torch.clamp_max`.
    pub fn clamp_max(&self, hi: f32) -> Result<Tensor> {
        match self.dtype().is_float() || hi.is_nan() {
            true => self.clamp_as("clamp_max", f32::NEG_INFINITY, hi),
            false => self.minimum_scalar(hi).map_err(|e| e.in_op("clamp_max")),
        }
    }

    fn clamp_as(&self, op: &'static str, lo: f32, hi: f32) -> Result<Tensor> {
        if lo > hi || lo.is_nan() || hi.is_nan() {
            return Err(Error::invalid(
                op,
                format!("min {lo} must not exceed max {hi}"),
            ));
        }
        self.unary(UnaryOp::Clamp(lo, hi), op)
    }

    /// Clamps to tensor bounds (either may be `None`), broadcast against `self`, as
    /// `torch.clamp(x, min=lo, max=hi)`: `min(max(x, lo), hi)` elementwise, so where
    /// `lo > hi` the result is `hi`. At a tie the gradient is split evenly between `x` and the
    /// bound, as PyTorch's.
    ///
    /// ```
    /// use ferrograd::{Device, Tensor};
    /// let dev = Device::cpu();
    /// let x = Tensor::new([-2.0, 0.5, 3.0], &dev)?;
    /// let lo = Tensor::new([-1.0, 0.0, 0.0], &dev)?;
    /// let hi = Tensor::new(1.0, &dev)?;
    /// assert_eq!(x.clamp_tensor(Some(&lo), Some(&hi))?.to_vec()?, vec![-1.0, 0.5, 1.0]);
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub fn clamp_tensor(&self, lo: Option<&Tensor>, hi: Option<&Tensor>) -> Result<Tensor> {
        let low = match lo {
            Some(lo) => self.maximum(lo),
            None => Ok(self.clone()),
        };
        match hi {
            Some(hi) => low.and_then(|t| t.minimum(hi)),
            None => low,
        }
        .map_err(|e| e.in_op("clamp_tensor"))
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
        /// `a == b`, as `Bool`.
        eq, eq_scalar => BinaryOp::Eq;
        /// `a != b`, as `Bool`.
        ne, ne_scalar => BinaryOp::Ne;
        /// `a < b`, as `Bool`.
        lt, lt_scalar => BinaryOp::Lt;
        /// `a <= b`, as `Bool`.
        le, le_scalar => BinaryOp::Le;
        /// `a > b`, as `Bool`.
        gt, gt_scalar => BinaryOp::Gt;
        /// `a >= b`, as `Bool`.
        ge, ge_scalar => BinaryOp::Ge;
    }

    /// `a` where `cond` (a `Bool` tensor) is true, else `b`; all three broadcast together, and
    /// `a` and `b` are computed in their promoted dtype.
    ///
    /// # Errors
    /// `DType` when `cond` is not `Bool` (as PyTorch; make one with a comparison, or
    /// `.to_dtype(DType::Bool)`).
    pub fn where_(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        same_device("where_", &[cond, a, b])?;
        if cond.dtype() != DType::Bool {
            return Err(Error::DType {
                op: "where_",
                got: vec![cond.dtype()],
                expected: "a Bool condition",
                hint: "make one with a comparison, or convert with `.to_dtype(DType::Bool)`",
            });
        }
        if a.dtype() != b.dtype() {
            let d = a.dtype().promote(b.dtype());
            return Tensor::where_(cond, &a.to_dtype(d)?, &b.to_dtype(d)?);
        }
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
            Err(e) if e.needs_tiles() => {
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

// ---- gradients (called by `autograd/rules.rs`) ----

/// `t` where `keep` (`Bool`), else 0.
fn masked(keep: &Tensor, t: &Tensor) -> Result<Tensor> {
    Tensor::where_(keep, t, &Tensor::zeros(&[], t.device())?)
}

/// The weight the left operand of maximum/minimum gets: 1 where it wins, 1/2 on ties (the
/// gradient is split evenly between equal operands, as PyTorch does).
fn winner_weight(a: &Tensor, b: &Tensor, max: bool) -> Result<Tensor> {
    let wins = if max { a.gt(b)? } else { a.lt(b)? };
    wins.to_float()?.add(&a.eq(b)?.to_float()?.mul_scalar(0.5)?)
}

pub(crate) fn unary_grad(
    x: &Tensor,
    op: UnaryOp,
    out: &Tensor,
    g: &Tensor,
) -> Result<Option<Tensor>> {
    use BinaryOp as B;
    let gx = match op {
        UnaryOp::Identity => g.clone(), // d/dx x = 1
        UnaryOp::Neg => g.neg()?,       // d/dx -x = -1
        // sign(x), 0 at 0
        UnaryOp::Abs => g.mul(
            &x.gt_scalar(0.0)?
                .to_float()?
                .sub(&x.lt_scalar(0.0)?.to_float()?)?,
        )?,
        UnaryOp::Exp => g.mul(out)?,                    // d/dx e^x = e^x
        UnaryOp::Log => g.div(x)?,                      // d/dx ln x = 1/x
        UnaryOp::Sqrt => g.div(out)?.mul_scalar(0.5)?,  // d/dx √x = 1 / (2√x)
        UnaryOp::Square => g.mul(x)?.mul_scalar(2.0)?,  // d/dx x² = 2x
        UnaryOp::Relu => x.binary(g, B::ReluBackward)?, // [x > 0] (0 at the kink)
        UnaryOp::Sigmoid => out.binary(g, B::SigmoidBackward)?, // σ' = σ (1 - σ)
        UnaryOp::Tanh => out.binary(g, B::TanhBackward)?, // tanh' = 1 - tanh²
        UnaryOp::Gelu => x.binary(g, B::GeluBackward)?, // Φ(x) + x φ(x) (op.rs, this folder)
        UnaryOp::GeluTanh => x.binary(g, B::GeluTanhBackward)?, // `gelu_tanh_grad` in op.rs
        // d/dx = 1 where x > 0, else slope
        UnaryOp::LeakyRelu(slope) => Tensor::where_(&x.gt_scalar(0.0)?, g, &g.mul_scalar(slope)?)?,
        UnaryOp::Silu | UnaryOp::Elu(_) | UnaryOp::Softplus(..) => activations::grad(x, op, g)?,
        // 1 strictly inside (lo, hi), 0 where clamped and at a bound (as PyTorch 2.15 and
        // hardtanh). An infinite bound is no bound, as in clamp_min/clamp_max, so x = -inf
        // keeps its gradient under clamp(-inf, hi) (PyTorch's clamp with an explicit
        // infinite bound gives 0 there).
        UnaryOp::Clamp(lo, hi) => {
            let keep = match (lo == f32::NEG_INFINITY, hi == f32::INFINITY) {
                (true, true) => return Ok(Some(g.clone())), // no bound at all
                (true, false) => x.lt_scalar(hi)?,          // clamp_max
                (false, true) => x.gt_scalar(lo)?,          // clamp_min
                (false, false) => x.gt_scalar(lo)?.logical_and(&x.lt_scalar(hi)?)?,
            };
            masked(&keep, g)?
        }
        UnaryOp::IsNonFinite | UnaryOp::LogicalNot => return Ok(None),
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
pub(crate) fn binary_grad(
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

/// `s (op) x` as `x (flip op) s`.
fn flip(op: BinaryOp) -> BinaryOp {
    use BinaryOp as B;
    match op {
        B::Lt => B::Gt,
        B::Le => B::Ge,
        B::Gt => B::Lt,
        B::Ge => B::Le,
        other => other,
    }
}

/// The name errors give a unary op run through another dtype.
fn op_name(op: UnaryOp) -> &'static str {
    match op {
        UnaryOp::Scalar(b, _) | UnaryOp::ScalarLeft(b, _) => b.name(),
        _ => "elementwise",
    }
}
