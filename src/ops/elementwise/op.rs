//! The elementwise ops and their scalar semantics, written once, in [`UnaryOp::apply`] /
//! [`BinaryOp::apply`]: the CPU kernels call them and `shaders/elementwise.wgsl` mirrors them
//! line for line. Every op code is an explicit constant (`op_codes!`), exported to the shaders
//! as `UNARY_*` / `BINARY_*` constants: no shader hard-codes a number. Public as
//! `ferrograd::op`.

use crate::codes::op_codes;
use crate::real::Real;

/// Elementwise ops of one input. Codes (`code()`) are the WGSL `OP` override values.
///
/// ```
/// use ferrograd::op::{BinaryOp, UnaryOp};
/// assert_eq!(UnaryOp::Relu.apply(-2.0), 0.0);
/// assert_eq!(UnaryOp::Clamp(0.0, 1.0).apply(3.0), 1.0);
/// assert_eq!(UnaryOp::Scalar(BinaryOp::Mul, 2.0).apply(3.0), 6.0); // x * 2
/// assert_eq!(UnaryOp::ScalarLeft(BinaryOp::Sub, 1.0).apply(3.0), -2.0); // 1 - x
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum UnaryOp {
    /// Copies (used by `contiguous`).
    Identity,
    /// `-x`.
    Neg,
    /// `|x|`.
    Abs,
    /// `e^x`.
    Exp,
    /// Natural log; NaN below 0, -inf at 0.
    Log,
    /// NaN below 0.
    Sqrt,
    /// `x * x`.
    Square,
    /// `max(x, 0)`; NaN stays NaN.
    Relu,
    /// `1 / (1 + e^-x)`, computed without overflow for large |x|.
    Sigmoid,
    /// Hyperbolic tangent, ±1 for large |x|.
    Tanh,
    /// GELU, exact: `x Φ(x)`, Φ the standard normal CDF (PyTorch's default).
    Gelu,
    /// GELU's tanh approximation: `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`
    /// (PyTorch's `approximate="tanh"`).
    GeluTanh,
    /// `x` if `x > 0` else `slope * x`.
    LeakyRelu(f32),
    /// `x * sigmoid(x)` (SiLU, or swish).
    Silu,
    /// `x` if `x > 0` else `alpha * (e^x - 1)` (ELU), `e^x - 1` accurate near 0.
    Elu(f32),
    /// `ln(1 + e^(beta x)) / beta`, or `x` where `beta x > threshold`: `Softplus(beta,
    /// threshold)`, with `ln(1 + ..)` accurate for tiny arguments.
    Softplus(f32, f32),
    /// `min(max(x, lo), hi)`; NaN stays NaN.
    Clamp(f32, f32),
    /// 1.0 where `x` is NaN or ±inf (tested on the bit pattern), else 0.0.
    IsNonFinite,
    /// `!x` on a `Bool` tensor.
    LogicalNot,
    /// `x (op) s` for a scalar `s`: the scalar forms of the binary ops.
    Scalar(BinaryOp, f32),
    /// `s (op) x`: the scalar on the left (`2.0 - x`, `1.0 / x`).
    ScalarLeft(BinaryOp, f32),
}

op_codes! {
    /// Elementwise ops of two inputs, with NumPy broadcasting. Comparisons give `Bool`.
    ///
    /// ```
    /// use ferrograd::op::BinaryOp;
    /// use ferrograd::{DType, Device, Tensor};
    /// assert_eq!(BinaryOp::Sub.apply(5.0, 3.0), 2.0);
    /// assert_eq!(BinaryOp::Gt.apply(5.0, 3.0), 1.0); // a truth value as 1 or 0
    /// let dev = Device::cpu();
    /// let (a, b) = (Tensor::new([1.0, 4.0], &dev)?, Tensor::new([3.0, 2.0], &dev)?);
    /// assert_eq!(a.binary_op(&b, BinaryOp::Maximum)?.to_vec()?, vec![3.0, 4.0]);
    /// let gt = a.binary_op(&b, BinaryOp::Gt)?;
    /// assert_eq!((gt.dtype(), gt.to_vec_as::<bool>()?), (DType::Bool, vec![false, true]));
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum BinaryOp("BINARY") {
        /// `x + y`.
        Add = 0 => "add",
        /// `x - y`.
        Sub = 1 => "sub",
        /// `x * y`.
        Mul = 2 => "mul",
        /// `x / y`.
        Div = 3 => "div",
        /// `x^y`; negative bases work for integral exponents, NaN otherwise (like PyTorch).
        Pow = 4 => "pow",
        /// NaN if either input is NaN (like `torch.maximum`).
        Maximum = 5 => "maximum",
        /// NaN if either input is NaN (like `torch.minimum`).
        Minimum = 6 => "minimum",
        /// `x == y`.
        Eq = 7 => "eq",
        /// `x != y`.
        Ne = 8 => "ne",
        /// `x < y`.
        Lt = 9 => "lt",
        /// `x <= y`.
        Le = 10 => "le",
        /// `x > y`.
        Gt = 11 => "gt",
        /// `x >= y`.
        Ge = 12 => "ge",
        /// Autograd: `a = x`, `b = g`: `g` where `x > 0`, else 0 (the ReLU mask).
        ReluBackward = 13 => "relu_backward",
        /// Autograd: `a = y = sigmoid(x)`, `b = g`: `g * y * (1 - y)`.
        SigmoidBackward = 14 => "sigmoid_backward",
        /// Autograd: `a = y = tanh(x)`, `b = g`: `g * (1 - y^2)`.
        TanhBackward = 15 => "tanh_backward",
        /// Autograd: `a = x`, `b = g`: `g * gelu'(x)` (tanh form).
        GeluTanhBackward = 16 => "gelu_tanh_backward",
        /// On `Bool` operands.
        LogicalAnd = 17 => "logical_and",
        /// `x || y`, on `Bool` operands.
        LogicalOr = 18 => "logical_or",
        /// True where exactly one is true, on `Bool` operands.
        LogicalXor = 19 => "logical_xor",
        /// Autograd: `a = x`, `b = g`: `g * (Φ(x) + x φ(x))` (exact GELU).
        GeluBackward = 20 => "gelu_backward",
    }
}

op_codes! {
    /// The codes of [`UnaryOp`]'s variants (the WGSL `OP` override). A scalar form adds the
    /// binary op's code to `Scalar` / `ScalarLeft`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum UnaryCode("UNARY") {
        Identity = 0 => "identity",
        Neg = 1 => "neg",
        Abs = 2 => "abs",
        Exp = 3 => "exp",
        Log = 4 => "log",
        Sqrt = 5 => "sqrt",
        Square = 6 => "square",
        Relu = 7 => "relu",
        Sigmoid = 8 => "sigmoid",
        Tanh = 9 => "tanh",
        GeluTanh = 10 => "gelu_tanh",
        LeakyRelu = 11 => "leaky_relu",
        Clamp = 12 => "clamp",
        IsNonFinite = 13 => "is_non_finite",
        LogicalNot = 14 => "logical_not",
        /// A conversion between dtypes (`Elementwise::Cast`): not a [`UnaryOp`].
        Cast = 15 => "cast",
        Silu = 16 => "silu",
        Elu = 17 => "elu",
        Softplus = 18 => "softplus",
        Gelu = 19 => "gelu",
        Scalar = 100 => "scalar",
        ScalarLeft = 200 => "scalar_left",
    }
}

pub(crate) fn nan<T: Real>() -> T {
    T::nan()
}

fn c<T: Real>(v: f64) -> T {
    T::from_f64(v)
}

/// `1 - 2 / (exp(2|x|) + 1)` with the sign restored: never inf/inf, so large |x| gives ±1.
/// Near 0 it loses relative accuracy (`1 - t` cancels): [`tanh`] switches to a series there.
#[inline(always)]
pub(crate) fn stable_tanh<T: Real>(x: T) -> T {
    let t = (c::<T>(-2.0) * x.abs()).exp();
    let r = (T::one() - t) / (T::one() + t);
    if x < T::zero() {
        -r
    } else {
        r
    }
}

/// [`stable_tanh`], and below |x| = 0.2 its Taylor series to x^13 (error under 1e-13
/// relative), so that tanh(1e-8) is 1e-8, not 0, and no x loses more than an ulp or two to
/// `1 - t`. Branch-free, so loops over it vectorise; the WGSL `tanh_f` is the same.
#[inline(always)]
pub(crate) fn tanh<T: Real>(x: T) -> T {
    let q = x * x;
    let tail = c::<T>(-1382.0 / 155_925.0) + q * c(21_844.0 / 6_081_075.0);
    let s = c::<T>(-17.0 / 315.0) + q * (c::<T>(62.0 / 2835.0) + q * tail);
    let small = x * (T::one() + q * (c::<T>(-1.0 / 3.0) + q * (c::<T>(2.0 / 15.0) + q * s)));
    let big = stable_tanh(x);
    if x.abs() < c(0.2) {
        small
    } else {
        big
    }
}

/// `1 / (1 + e^-x)` for x >= 0 and `e^x / (1 + e^x)` below, both from `e = e^-|x|`, so exp
/// never overflows. Both are computed and one selected: a branch on the sign, which random
/// signs mispredict half the time, kept the loop scalar (1e6 elements: 9.0 → 0.65 ms,
/// `bench_report --cpu elementwise/sigmoid`). The WGSL `sigmoid_f` branches (a GPU runs both
/// sides of a divergent branch anyway).
#[inline(always)]
pub(crate) fn sigmoid<T: Real>(x: T) -> T {
    let (one, e) = (T::one(), (-x.abs()).exp());
    std::hint::select_unpredictable(x >= T::zero(), one / (one + e), e / (one + e))
}

/// [`sigmoid`] with one division (`e * s` where `sigmoid` divides `e / (1 + e)`: not the same
/// last bit), for GELU's tanh form.
#[inline(always)]
fn sigmoid_branchless<T: Real>(z: T) -> T {
    let e = (-z.abs()).exp();
    let s = T::one() / (T::one() + e); // sigmoid(|z|)
    std::hint::select_unpredictable(z >= T::zero(), s, e * s)
}

/// sqrt(2 / pi), for GELU.
const GELU_K: f64 = 0.797_884_560_802_865_4;
const GELU_C: f64 = 0.044715;

impl UnaryOp {
    /// The WGSL `OP` code: a [`UnaryCode`]; the scalar forms add the binary op's code.
    pub(crate) fn code(self) -> u32 {
        let code = match self {
            UnaryOp::Identity => UnaryCode::Identity,
            UnaryOp::Neg => UnaryCode::Neg,
            UnaryOp::Abs => UnaryCode::Abs,
            UnaryOp::Exp => UnaryCode::Exp,
            UnaryOp::Log => UnaryCode::Log,
            UnaryOp::Sqrt => UnaryCode::Sqrt,
            UnaryOp::Square => UnaryCode::Square,
            UnaryOp::Relu => UnaryCode::Relu,
            UnaryOp::Sigmoid => UnaryCode::Sigmoid,
            UnaryOp::Tanh => UnaryCode::Tanh,
            UnaryOp::Gelu => UnaryCode::Gelu,
            UnaryOp::GeluTanh => UnaryCode::GeluTanh,
            UnaryOp::LeakyRelu(_) => UnaryCode::LeakyRelu,
            UnaryOp::Silu => UnaryCode::Silu,
            UnaryOp::Elu(_) => UnaryCode::Elu,
            UnaryOp::Softplus(..) => UnaryCode::Softplus,
            UnaryOp::Clamp(..) => UnaryCode::Clamp,
            UnaryOp::IsNonFinite => UnaryCode::IsNonFinite,
            UnaryOp::LogicalNot => UnaryCode::LogicalNot,
            UnaryOp::Scalar(op, _) => return UnaryCode::Scalar.code() + op.code(),
            UnaryOp::ScalarLeft(op, _) => return UnaryCode::ScalarLeft.code() + op.code(),
        };
        code.code()
    }

    /// False for ops whose result is piecewise constant (the non-finite test, the scalar
    /// comparisons): they do not track gradients, as in PyTorch.
    pub(crate) fn differentiable(self) -> bool {
        match self {
            UnaryOp::IsNonFinite | UnaryOp::LogicalNot => false,
            UnaryOp::Scalar(op, _) | UnaryOp::ScalarLeft(op, _) => op.differentiable(),
            _ => true,
        }
    }

    /// The op's two scalar parameters (unused ones are 0).
    pub(crate) fn params(self) -> (f32, f32) {
        match self {
            UnaryOp::LeakyRelu(s) | UnaryOp::Elu(s) => (s, 0.0),
            UnaryOp::Softplus(beta, threshold) => (beta, threshold),
            UnaryOp::Clamp(lo, hi) => (lo, hi),
            UnaryOp::Scalar(_, s) | UnaryOp::ScalarLeft(_, s) => (s, 0.0),
            _ => (0.0, 0.0),
        }
    }

    /// The reference semantics, used by the CPU backend.
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        self.eval(x)
    }

    /// [`UnaryOp::apply`] in `f32` or `f64` (the CPU backend's f64 mode, for gradcheck).
    // Always inlined: the CPU loops call it with a constant op (see `ops/elementwise/cpu.rs`), and
    // only once inlined does the match fold away and the loop vectorise (unary ops: 3x).
    #[inline(always)]
    pub(crate) fn eval<T: Real>(self, x: T) -> T {
        let (zero, one) = (T::zero(), T::one());
        match self {
            UnaryOp::Identity => x,
            UnaryOp::Neg => -x,
            UnaryOp::Abs => x.abs(),
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Square => x * x,
            // max(x, 0) would turn NaN into 0 on some drivers; keep NaN.
            UnaryOp::Relu => {
                if x < zero {
                    zero
                } else {
                    x
                }
            }
            UnaryOp::Sigmoid => sigmoid(x),
            UnaryOp::Tanh => tanh(x),
            UnaryOp::Gelu => x * norm_cdf(x),
            // 0.5 (1 + tanh(u)) = sigmoid(2u): no 1 + t to cancel in the lower tail.
            UnaryOp::GeluTanh => {
                x * sigmoid_branchless(c::<T>(2.0 * GELU_K) * (x + c::<T>(GELU_C) * x * x * x))
            }
            UnaryOp::LeakyRelu(slope) => {
                if x > zero {
                    x
                } else {
                    T::from_f32(slope) * x
                }
            }
            UnaryOp::Silu => x * sigmoid(x),
            UnaryOp::Elu(alpha) => {
                if x > zero {
                    x
                } else {
                    T::from_f32(alpha) * x.exp_m1()
                }
            }
            UnaryOp::Softplus(beta, threshold) => {
                let b = T::from_f32(beta);
                if b * x > T::from_f32(threshold) {
                    x
                } else {
                    (b * x).exp().ln_1p() / b
                }
            }
            UnaryOp::Clamp(lo, hi) => {
                if x.is_nan() {
                    x
                } else {
                    x.max(T::from_f32(lo)).min(T::from_f32(hi))
                }
            }
            UnaryOp::IsNonFinite => {
                if x.is_finite() {
                    zero
                } else {
                    one
                }
            }
            UnaryOp::LogicalNot => {
                if x == zero {
                    one
                } else {
                    zero
                }
            }
            UnaryOp::Scalar(op, s) => op.eval(x, T::from_f32(s)),
            UnaryOp::ScalarLeft(op, s) => op.eval(T::from_f32(s), x),
        }
    }
}

impl BinaryOp {
    /// Whether autograd records this op. False for the comparisons (flat almost everywhere)
    /// and for the backward ops (no second derivatives yet). Stated per op, so a new op must
    /// say (`autograd/rules.rs` has the rules of those that are).
    pub(crate) fn differentiable(self) -> bool {
        use BinaryOp::*;
        match self {
            Add | Sub | Mul | Div | Pow | Maximum | Minimum => true,
            Eq | Ne | Lt | Le | Gt | Ge => false,
            LogicalAnd | LogicalOr | LogicalXor => false,
            ReluBackward | SigmoidBackward | TanhBackward | GeluBackward | GeluTanhBackward => {
                false
            }
        }
    }

    /// The reference semantics, used by the CPU backend.
    #[inline]
    pub fn apply(self, a: f32, b: f32) -> f32 {
        self.eval(a, b)
    }

    /// [`BinaryOp::apply`] in `f32` or `f64`.
    #[inline(always)]
    pub(crate) fn eval<T: Real>(self, a: T, b: T) -> T {
        let (zero, one) = (T::zero(), T::one());
        let flag = |c: bool| if c { one } else { zero };
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Pow => pow(a, b),
            BinaryOp::Maximum => {
                if a.is_nan() || b.is_nan() {
                    nan()
                } else {
                    a.max(b)
                }
            }
            BinaryOp::Minimum => {
                if a.is_nan() || b.is_nan() {
                    nan()
                } else {
                    a.min(b)
                }
            }
            BinaryOp::Eq => flag(a == b),
            BinaryOp::Ne => flag(a != b),
            BinaryOp::Lt => flag(a < b),
            BinaryOp::Le => flag(a <= b),
            BinaryOp::Gt => flag(a > b),
            BinaryOp::Ge => flag(a >= b),
            BinaryOp::ReluBackward => {
                if a > zero {
                    b
                } else {
                    zero
                }
            }
            BinaryOp::SigmoidBackward => b * a * (one - a),
            BinaryOp::TanhBackward => b * (one - a * a),
            BinaryOp::GeluBackward => b * (norm_cdf(a) + a * norm_pdf(a)),
            BinaryOp::GeluTanhBackward => b * gelu_tanh_grad(a),
            BinaryOp::LogicalAnd => flag(a != zero && b != zero),
            BinaryOp::LogicalOr => flag(a != zero || b != zero),
            BinaryOp::LogicalXor => flag((a != zero) != (b != zero)),
        }
    }

    /// Whether the result is a truth value (`Bool`): the comparisons and the logical ops.
    pub(crate) fn gives_bool(self) -> bool {
        use BinaryOp::*;
        matches!(
            self,
            Eq | Ne | Lt | Le | Gt | Ge | LogicalAnd | LogicalOr | LogicalXor
        )
    }

    /// Whether `I32` operands have a kernel of their own (the rest compute in `F32`, as
    /// PyTorch's `int / int` does).
    pub(crate) fn on_i32(self) -> bool {
        use BinaryOp::*;
        matches!(
            self,
            Add | Sub | Mul | Maximum | Minimum | Eq | Ne | Lt | Le | Gt | Ge
        )
    }

    /// The integer semantics (`I32`): wrapping arithmetic, as PyTorch's int32 and WGSL's `i32`;
    /// truth values as 0 or 1. `shaders/elementwise.wgsl` `binary_int` mirrors it.
    #[inline(always)]
    pub(crate) fn eval_i32(self, a: i32, b: i32) -> i32 {
        match self {
            BinaryOp::Add => a.wrapping_add(b),
            BinaryOp::Sub => a.wrapping_sub(b),
            BinaryOp::Mul => a.wrapping_mul(b),
            BinaryOp::Maximum => a.max(b),
            BinaryOp::Minimum => a.min(b),
            BinaryOp::Eq => i32::from(a == b),
            BinaryOp::Ne => i32::from(a != b),
            BinaryOp::Lt => i32::from(a < b),
            BinaryOp::Le => i32::from(a <= b),
            BinaryOp::Gt => i32::from(a > b),
            BinaryOp::Ge => i32::from(a >= b),
            BinaryOp::LogicalAnd => i32::from(a != 0 && b != 0),
            BinaryOp::LogicalOr => i32::from(a != 0 || b != 0),
            BinaryOp::LogicalXor => i32::from((a != 0) != (b != 0)),
            // Not reached: `on_i32` sends these through f32 first.
            _ => 0,
        }
    }
}

/// `s` as an `i32` when it is one exactly.
pub(crate) fn exact_i32(s: f32) -> Option<i32> {
    let ok = s.fract() == 0.0 && (-2_147_483_648.0..2_147_483_648.0).contains(&s);
    ok.then_some(s as i32)
}

impl UnaryOp {
    /// Whether an `I32` input has a kernel of its own: the ops that keep integers integers,
    /// with integral scalars. The rest compute in `F32` (`exp` of an integer is a float, as in
    /// PyTorch).
    pub(crate) fn on_i32(self) -> bool {
        match self {
            UnaryOp::Identity | UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Square | UnaryOp::Relu => {
                true
            }
            UnaryOp::Clamp(lo, hi) => exact_i32(lo).is_some() && exact_i32(hi).is_some(),
            UnaryOp::Scalar(op, s) | UnaryOp::ScalarLeft(op, s) => {
                op.on_i32() && exact_i32(s).is_some()
            }
            _ => false,
        }
    }

    /// The two scalar parameters as integers, for [`UnaryOp::eval_i32`] on the GPU.
    pub(crate) fn int_params(self) -> (i32, i32) {
        let (a, b) = self.params();
        (exact_i32(a).unwrap_or(0), exact_i32(b).unwrap_or(0))
    }

    /// The integer semantics of the ops [`UnaryOp::on_i32`] accepts (wrapping, as
    /// [`BinaryOp::eval_i32`]); `shaders/elementwise.wgsl` `unary_int` mirrors it.
    #[inline(always)]
    pub(crate) fn eval_i32(self, x: i32) -> i32 {
        let (a, b) = self.int_params();
        match self {
            UnaryOp::Identity => x,
            UnaryOp::Neg => x.wrapping_neg(),
            UnaryOp::Abs => x.wrapping_abs(),
            UnaryOp::Square => x.wrapping_mul(x),
            UnaryOp::Relu => x.max(0),
            UnaryOp::Clamp(..) => x.max(a).min(b),
            UnaryOp::Scalar(op, _) => op.eval_i32(x, a),
            UnaryOp::ScalarLeft(op, _) => op.eval_i32(a, x),
            _ => 0,
        }
    }

    /// Whether the result is a truth value (`Bool`).
    pub(crate) fn gives_bool(self) -> bool {
        match self {
            UnaryOp::Scalar(op, _) | UnaryOp::ScalarLeft(op, _) => op.gives_bool(),
            UnaryOp::LogicalNot => true,
            _ => false,
        }
    }
}

/// The standard normal CDF `Φ(x) = erfc(-x / √2) / 2`, in f64 (libm's erfc): through erfc,
/// not `1 + erf`, so the lower tail keeps its relative accuracy (GELU(-5) is -1.43e-6; the
/// `1 + erf` of PyTorch's f32 kernel gives -1.19e-6).
fn norm_cdf<T: Real>(x: T) -> T {
    T::from_f64(0.5 * libm::erfc(-x.to_f64() * std::f64::consts::FRAC_1_SQRT_2))
}

/// The standard normal density `φ(x) = e^(-x²/2) / √(2π)`.
fn norm_pdf<T: Real>(x: T) -> T {
    let x = x.to_f64();
    T::from_f64((-0.5 * x * x).exp() * 0.398_942_280_401_432_7)
}

/// d/dx of the tanh-form GELU `x s`, `s = sigmoid(2u) = (1 + tanh(u)) / 2`,
/// `u = K (x + C x^3)`: `s + 2 x s (1 - s) K (1 + 3 C x^2)`.
fn gelu_tanh_grad<T: Real>(x: T) -> T {
    let (k, cc, one) = (c::<T>(GELU_K), c::<T>(GELU_C), T::one());
    let s = sigmoid_branchless(c::<T>(2.0) * k * (x + cc * x * x * x));
    s + c::<T>(2.0) * x * s * (one - s) * k * (one + c::<T>(3.0) * cc * x * x)
}

/// `a^b` as PyTorch defines it for floats, written the way the WGSL computes it
/// (`exp2(b * log2(|a|))` with the sign fixed up) so both backends agree.
fn pow<T: Real>(a: T, b: T) -> T {
    let zero = T::zero();
    if b == zero {
        return T::one();
    }
    let integral = b == b.floor();
    if a < zero && !integral {
        return nan();
    }
    let m = a.abs().powf(b);
    let odd = integral && (b.abs() % c::<T>(2.0)) == T::one();
    if a < zero && odd {
        -m
    } else {
        m
    }
}
