//! `std::ops` sugar: `&a + &b`, `&a * 2.0`, `1.0 - &a`, `-&a`.
//!
//! # Panics
//! These operators panic with the same message the `Result` methods return (shape or device
//! mismatch). Use [`Tensor::add`], [`Tensor::mul_scalar`] and friends to get a `Result`.

use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::ops::elementwise::op::BinaryOp;
use crate::tensor::Tensor;

fn ok(r: crate::Result<Tensor>) -> Tensor {
    r.unwrap_or_else(|e| panic!("{e}"))
}

macro_rules! sugar {
    ($trait:ident, $method:ident, $tensor_op:ident, $scalar_op:ident, $bin:expr) => {
        impl $trait<&Tensor> for &Tensor {
            type Output = Tensor;
            fn $method(self, rhs: &Tensor) -> Tensor {
                ok(self.$tensor_op(rhs))
            }
        }
        impl $trait<f32> for &Tensor {
            type Output = Tensor;
            fn $method(self, rhs: f32) -> Tensor {
                ok(self.$scalar_op(rhs))
            }
        }
        impl $trait<&Tensor> for f32 {
            type Output = Tensor;
            fn $method(self, rhs: &Tensor) -> Tensor {
                ok(rhs.scalar_left(self, $bin))
            }
        }
    };
}

sugar!(Add, add, add, add_scalar, BinaryOp::Add);
sugar!(Sub, sub, sub, sub_scalar, BinaryOp::Sub);
sugar!(Mul, mul, mul, mul_scalar, BinaryOp::Mul);
sugar!(Div, div, div, div_scalar, BinaryOp::Div);

impl Neg for &Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        ok(Tensor::neg(self))
    }
}
