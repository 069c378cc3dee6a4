//! Tensor ops, one folder per op family: `mod.rs` (the tensor methods, their checks and
//! gradients), `spec.rs` (what both backends are handed), `cpu.rs` (the CPU kernels) and
//! `gpu.rs` (the launchers and parameter structs). Each method validates its operands (shape,
//! device, axis, index) and builds the spec, so the CPU and the GPU see exactly the same
//! problem. `ARCHITECTURE.md` says how the layers fit.

pub(crate) mod conv;
pub(crate) mod elementwise;
pub(crate) mod index;
pub(crate) mod loss;
pub(crate) mod matmul;
pub(crate) mod norm;
pub(crate) mod optim;
pub(crate) mod pool;
pub(crate) mod random;
pub(crate) mod reduce;
pub(crate) mod scan;

pub use conv::{Conv1dOptions, Conv2dOptions};
pub use index::pad::PadMode;
pub use index::upsample::UpsampleMode;
pub use norm::{BatchNormOptions, RunningStats};
pub use pool::pool1d::Pool1dOptions;
pub use pool::Pool2dOptions;

use crate::error::{Error, Result};
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
