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
    /// `e^x - 1`, accurate near 0.
    fn exp_m1(self) -> Self;
    /// `ln(1 + x)`, accurate near 0.
    fn ln_1p(self) -> Self;
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
    ($t:ty, $exp:path) => {
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
            #[inline(always)]
            fn exp(self) -> Self {
                $exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn exp_m1(self) -> Self {
                <$t>::exp_m1(self)
            }
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
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

real!(f32, exp_f32);
real!(f64, f64::exp);

/// e^x in f32 with neither a branch nor a call, so that loops over it vectorise (softmax,
/// `exp`, sigmoid, the cross-entropy gradient): Cephes' `expf`, the range reduced by ln 2 in
/// two parts and a degree-5 polynomial. Within 1 ulp of the correctly rounded result over
/// the normal range (checked against f64 at 2 million points from -110 to 90), as libm's is;
/// subnormal results round once more; above ln(f32::MAX) it is +inf, below -103.97 0, and
/// NaN stays NaN. ~4.7× libm's speed in an AVX-512 loop, ~1.6× at baseline SSE2.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 = C1 - C2, C1 with few enough bits that n * C1 is exact.
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    const HI: f32 = 88.722_84;
    const LO: f32 = -103.972_08;
    // Adding 1.5 * 2^23 rounds to an integer, which then sits in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    let xc = if x < LO { LO } else { x };
    let xc = if xc > HI { HI } else { xc };
    let big = xc * LOG2E + MAGIC;
    let n_f = big - MAGIC;
    let n = (big.to_bits() as i32).wrapping_sub(0x4B40_0000);
    let r = xc - n_f * C1 - n_f * C2;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5; // Cephes' 5.0000001201e-1, which rounds to 0.5 in f32
    let y = p * r * r + r + 1.0;
    // y * 2^n as two factors, so n down to -150 needs only normal exponents.
    let h = n >> 1;
    let s1 = f32::from_bits((h.wrapping_add(127) as u32) << 23);
    let s2 = f32::from_bits((n.wrapping_sub(h).wrapping_add(127) as u32) << 23);
    let v = y * s1 * s2;
    let v = if x > HI { f32::INFINITY } else { v };
    let v = if x < LO { 0.0 } else { v };
    if x.is_nan() {
        x
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::exp_f32;

    #[test]
    fn exp_f32_is_within_one_ulp() {
        let ulps =
            |a: f32, b: f32| (i64::from(a.to_bits() as i32) - i64::from(b.to_bits() as i32)).abs();
        // Every 997th float from -110 to 90, against f64's exp rounded to f32.
        let mut x = -110.0f32;
        let mut checked = 0;
        while x < 90.0 {
            let want = (x as f64).exp() as f32;
            let got = exp_f32(x);
            if want.is_normal() {
                assert!(ulps(got, want) <= 1, "exp({x}) = {got}, expected {want}");
            } else {
                // Subnormal, zero or infinite results: round at most once more.
                assert!(
                    (got - want).abs() <= 2.0 * f32::from_bits(1) || got == want,
                    "exp({x})"
                );
            }
            checked += 1;
            let step = if x < 0.0 { -997i32 } else { 997 };
            x = f32::from_bits((x.to_bits() as i32 + step) as u32);
            if x < 0.0 && x > -1e-30 {
                x = 0.0;
            }
        }
        assert!(checked > 1_000_000, "{checked}");
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(89.0), f32::INFINITY);
        assert_eq!(exp_f32(-105.0), 0.0);
        assert_eq!(exp_f32(0.0), 1.0);
    }
}
