//! `std::ops` sugar that never panics: `&a + &b`, `&a * 2.0`, `1.0 - &a` and `-&a` return
//! [`Result<Tensor>`](crate::Result), as Candle's do; a tensor operator also takes a
//! `Result<Tensor>` on its other side. The orphan rule forbids `Result<Tensor> op f32` and
//! `Result op Result` (no local type in them). See [`Tensor`]'s docs for an example.

use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::error::Result;
use crate::ops::elementwise::op::BinaryOp;
use crate::tensor::Tensor;

/// `lhs op rhs` for every pairing of `Tensor` and `&Tensor`, each with a `Result<Tensor>`,
/// and with an `f32` on either side.
macro_rules! sugar {
    ($trait:ident, $method:ident, $tensor_op:ident, $scalar_op:ident, $bin:expr) => {
        sugar!(@pairs $trait, $method, $tensor_op;
            (&Tensor, &Tensor), (&Tensor, Tensor), (Tensor, &Tensor), (Tensor, Tensor));
        sugar!(@results $trait, $method, $tensor_op; &Tensor, Tensor);

        impl $trait<f32> for &Tensor {
            type Output = Result<Tensor>;
            fn $method(self, rhs: f32) -> Result<Tensor> {
                Tensor::$scalar_op(&self, rhs)
            }
        }
        impl $trait<f32> for Tensor {
            type Output = Result<Tensor>;
            fn $method(self, rhs: f32) -> Result<Tensor> {
                Tensor::$scalar_op(&self, rhs)
            }
        }
        impl $trait<&Tensor> for f32 {
            type Output = Result<Tensor>;
            fn $method(self, rhs: &Tensor) -> Result<Tensor> {
                Tensor::scalar_left(&rhs, self, $bin)
            }
        }
        impl $trait<Tensor> for f32 {
            type Output = Result<Tensor>;
            fn $method(self, rhs: Tensor) -> Result<Tensor> {
                Tensor::scalar_left(&rhs, self, $bin)
            }
        }
    };
    (@pairs $trait:ident, $method:ident, $tensor_op:ident; $(($l:ty, $r:ty)),*) => {$(
        impl $trait<$r> for $l {
            type Output = Result<Tensor>;
            #[allow(clippy::needless_borrow)]
            fn $method(self, rhs: $r) -> Result<Tensor> {
                Tensor::$tensor_op(&self, &rhs)
            }
        }
    )*};
    (@results $trait:ident, $method:ident, $tensor_op:ident; $($t:ty),*) => {$(
        impl $trait<$t> for Result<Tensor> {
            type Output = Result<Tensor>;
            #[allow(clippy::needless_borrow)]
            fn $method(self, rhs: $t) -> Result<Tensor> {
                Tensor::$tensor_op(&self?, &rhs)
            }
        }
        impl $trait<Result<Tensor>> for $t {
            type Output = Result<Tensor>;
            #[allow(clippy::needless_borrow)]
            fn $method(self, rhs: Result<Tensor>) -> Result<Tensor> {
                Tensor::$tensor_op(&self, &rhs?)
            }
        }
    )*};
}

sugar!(Add, add, add, add_scalar, BinaryOp::Add);
sugar!(Sub, sub, sub, sub_scalar, BinaryOp::Sub);
sugar!(Mul, mul, mul, mul_scalar, BinaryOp::Mul);
sugar!(Div, div, div, div_scalar, BinaryOp::Div);

impl Neg for &Tensor {
    type Output = Result<Tensor>;
    fn neg(self) -> Result<Tensor> {
        Tensor::neg(self)
    }
}

impl Neg for Tensor {
    type Output = Result<Tensor>;
    fn neg(self) -> Result<Tensor> {
        Tensor::neg(&self)
    }
}
