//! The float types the CPU backend computes in: `f32` for tensors, and `f64` for the
//! finite differences of [`crate::gradcheck`]. One trait, so every CPU kernel and the op
//! semantics in `ops/elementwise/op.rs` are written once.

use std::fmt::Debug;

/// `f32` or `f64`.
pub(crate) trait Real:
    Copy
    + 'static
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + PartialOrd
    + Debug
    + Default
    + Send
    + Sync
    + std::ops::Neg<Output = Self>
    + std::ops::Rem<Output = Self>
{
    const NEG_INFINITY: Self;
    fn zero() -> Self;
    fn one() -> Self;
    fn from_f32(v: f32) -> Self;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn abs(self) -> Self;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn powf(self, e: Self) -> Self;
    fn floor(self) -> Self;
    fn is_nan(self) -> bool;
    fn is_finite(self) -> bool;
    /// IEEE max/min: NaN loses (callers that want NaN to win test for it first).
    fn max(self, o: Self) -> Self;
    fn min(self, o: Self) -> Self;
    fn nan() -> Self;
}

macro_rules! real {
    ($t:ty) => {
        impl Real for $t {
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            fn zero() -> Self {
                0.0
            }
            fn one() -> Self {
                1.0
            }
            fn from_f32(v: f32) -> Self {
                v as $t
            }
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
            fn floor(self) -> Self {
                <$t>::floor(self)
            }
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            fn max(self, o: Self) -> Self {
                <$t>::max(self, o)
            }
            fn min(self, o: Self) -> Self {
                <$t>::min(self, o)
            }
            fn nan() -> Self {
                <$t>::NAN
            }
        }
    };
}

real!(f32);
real!(f64);
