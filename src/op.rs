//! The op enums shared by the CPU backend, the GPU backend and autograd. Each op's scalar
//! semantics are written once, in [`UnaryOp::apply`] / [`BinaryOp::apply`]: the CPU backend calls
//! them and the WGSL in `shaders/elementwise.wgsl` mirrors them line for line (same op codes).

use crate::real::Real;

/// Elementwise ops of one input. Codes (`code()`) are the WGSL `OP` override values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    /// Copies (used by `contiguous`).
    Identity,
    Neg,
    Abs,
    Exp,
    /// Natural log; NaN below 0, -inf at 0.
    Log,
    /// NaN below 0.
    Sqrt,
    Square,
    Relu,
    Sigmoid,
    Tanh,
    /// The tanh approximation: `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
    Gelu,
    /// `x` if `x > 0` else `slope * x`.
    LeakyRelu(f32),
    /// `min(max(x, lo), hi)`; NaN stays NaN.
    Clamp(f32, f32),
    /// 1.0 where `x` is NaN or ±inf (tested on the bit pattern), else 0.0.
    IsNonFinite,
    /// `x (op) s` for a scalar `s`: the scalar forms of the binary ops.
    Scalar(BinaryOp, f32),
    /// `s (op) x`: the scalar on the left (`2.0 - x`, `1.0 / x`).
    ScalarLeft(BinaryOp, f32),
}

/// Elementwise ops of two inputs, with NumPy broadcasting. Comparisons give 1.0 or 0.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    /// `x^y`; negative bases work for integral exponents, NaN otherwise (like PyTorch).
    Pow,
    /// NaN if either input is NaN (like `torch.maximum`).
    Maximum,
    Minimum,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// Autograd: `a = x`, `b = g`: `g` where `x > 0`, else 0 (the ReLU mask).
    ReluBackward,
    /// Autograd: `a = y = sigmoid(x)`, `b = g`: `g * y * (1 - y)`.
    SigmoidBackward,
    /// Autograd: `a = y = tanh(x)`, `b = g`: `g * (1 - y^2)`.
    TanhBackward,
    /// Autograd: `a = x`, `b = g`: `g * gelu'(x)` (tanh form).
    GeluBackward,
}

/// An activation that a matmul can apply in its epilogue, fused with the bias add (see
/// [`Tensor::linear`](crate::Tensor::linear)). Only activations whose gradient can be
/// computed from their output are here, because the fused op does not keep the pre-activation:
/// ReLU (`y > 0` exactly where `x > 0`), sigmoid (`σ' = y (1 - y)`) and tanh (`1 - y²`).
/// GELU and leaky ReLU run as their own ops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Activation {
    /// No activation: `x · wᵀ + b`.
    #[default]
    Identity,
    Relu,
    Sigmoid,
    Tanh,
}

impl Activation {
    /// The elementwise op with the same semantics.
    pub fn unary(self) -> UnaryOp {
        match self {
            Activation::Identity => UnaryOp::Identity,
            Activation::Relu => UnaryOp::Relu,
            Activation::Sigmoid => UnaryOp::Sigmoid,
            Activation::Tanh => UnaryOp::Tanh,
        }
    }

    /// The gradient op taking (output, upstream gradient), or `None` for the identity.
    pub(crate) fn backward(self) -> Option<BinaryOp> {
        match self {
            Activation::Identity => None,
            Activation::Relu => Some(BinaryOp::ReluBackward),
            Activation::Sigmoid => Some(BinaryOp::SigmoidBackward),
            Activation::Tanh => Some(BinaryOp::TanhBackward),
        }
    }
}

/// Reductions along an axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    Sum,
    /// NaN wins: a line containing NaN reduces to NaN (like PyTorch).
    Max,
    Min,
    /// Index of the first maximum (first NaN if any), as an f32.
    ArgMax,
    ArgMin,
}

pub(crate) fn nan<T: Real>() -> T {
    T::nan()
}

fn c<T: Real>(v: f64) -> T {
    T::from_f64(v)
}

/// `1 - 2 / (exp(2|x|) + 1)` with the sign restored: never inf/inf, so large |x| gives ±1.
pub(crate) fn stable_tanh<T: Real>(x: T) -> T {
    let t = (c::<T>(-2.0) * x.abs()).exp();
    let r = (T::one() - t) / (T::one() + t);
    if x < T::zero() {
        -r
    } else {
        r
    }
}

/// sqrt(2 / pi), for GELU.
const GELU_K: f64 = 0.797_884_560_802_865_4;
const GELU_C: f64 = 0.044715;

impl UnaryOp {
    /// The WGSL `OP` code; the scalar forms add the binary op's code to 100 / 200.
    pub(crate) fn code(self) -> u32 {
        match self {
            UnaryOp::Identity => 0,
            UnaryOp::Neg => 1,
            UnaryOp::Abs => 2,
            UnaryOp::Exp => 3,
            UnaryOp::Log => 4,
            UnaryOp::Sqrt => 5,
            UnaryOp::Square => 6,
            UnaryOp::Relu => 7,
            UnaryOp::Sigmoid => 8,
            UnaryOp::Tanh => 9,
            UnaryOp::Gelu => 10,
            UnaryOp::LeakyRelu(_) => 11,
            UnaryOp::Clamp(..) => 12,
            UnaryOp::IsNonFinite => 13,
            UnaryOp::Scalar(op, _) => 100 + op.code(),
            UnaryOp::ScalarLeft(op, _) => 200 + op.code(),
        }
    }

    /// The op's two scalar parameters (unused ones are 0).
    pub(crate) fn params(self) -> (f32, f32) {
        match self {
            UnaryOp::LeakyRelu(s) => (s, 0.0),
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
    // Always inlined: the CPU loops call it with a constant op (see `cpu/elementwise.rs`), and
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
            // Branch on the sign so exp never overflows.
            UnaryOp::Sigmoid => {
                if x >= zero {
                    one / (one + (-x).exp())
                } else {
                    let e = x.exp();
                    e / (one + e)
                }
            }
            UnaryOp::Tanh => stable_tanh(x),
            UnaryOp::Gelu => {
                let u = c::<T>(GELU_K) * (x + c::<T>(GELU_C) * x * x * x);
                c::<T>(0.5) * x * (one + stable_tanh(u))
            }
            UnaryOp::LeakyRelu(slope) => {
                if x > zero {
                    x
                } else {
                    T::from_f32(slope) * x
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
            UnaryOp::Scalar(op, s) => op.eval(x, T::from_f32(s)),
            UnaryOp::ScalarLeft(op, s) => op.eval(T::from_f32(s), x),
        }
    }
}

impl BinaryOp {
    pub(crate) fn code(self) -> u32 {
        self as u32
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
            BinaryOp::Eq => "eq",
            BinaryOp::Ne => "ne",
            BinaryOp::Lt => "lt",
            BinaryOp::Le => "le",
            BinaryOp::Gt => "gt",
            BinaryOp::Ge => "ge",
            BinaryOp::ReluBackward => "relu_backward",
            BinaryOp::SigmoidBackward => "sigmoid_backward",
            BinaryOp::TanhBackward => "tanh_backward",
            BinaryOp::GeluBackward => "gelu_backward",
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
            BinaryOp::GeluBackward => b * gelu_grad(a),
        }
    }
}

/// d/dx of the tanh-form GELU `0.5 x (1 + t)`, `t = tanh(u)`, `u = K (x + C x^3)`:
/// `0.5 (1 + t) + 0.5 x (1 - t^2) K (1 + 3 C x^2)`.
fn gelu_grad<T: Real>(x: T) -> T {
    let (k, cc, half, one) = (c::<T>(GELU_K), c::<T>(GELU_C), c::<T>(0.5), T::one());
    let t = stable_tanh(k * (x + cc * x * x * x));
    half * (one + t) + half * x * (one - t * t) * k * (one + c::<T>(3.0) * cc * x * x)
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

impl ReduceOp {
    pub(crate) fn code(self) -> u32 {
        self as u32
    }
    pub(crate) fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
            ReduceOp::ArgMax => "argmax",
            ReduceOp::ArgMin => "argmin",
        }
    }
}
