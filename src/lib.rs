//! # ferrograd
//!
//! Deep learning on the GPU through [wgpu](https://wgpu.rs): tensors live in wgpu buffers and
//! WGSL compute shaders do the math. A CPU backend computes the same ops, is the reference the
//! GPU is tested against, and runs where no adapter exists.
//!
//! ```
//! use ferrograd::{Device, Tensor};
//! let dev = Device::best();
//! let x = Tensor::from_vec(vec![1.0, -2.0, 3.0, 0.5, 0.0, -1.0], &[2, 3], &dev)?;
//! let w = Tensor::eye(3, &dev)?;
//! let p = x.matmul(&w)?.relu()?.softmax(-1)?;
//! let row = p.sum(-1, false)?.to_vec()?;
//! assert!((row[0] - 1.0).abs() < 1e-6);
//! # Ok::<(), ferrograd::Error>(())
//! ```
//!
//! Every op returns [`Result`]; errors name the op and the values that made it fail.

// `unsafe` is denied everywhere but `ops/matmul/cpu.rs`, which calls the `gemm` crate.
#![deny(unsafe_code)]

// `#[derive(Module)]` writes `::ferrograd::..` paths; this lets the crate's own layers use it.
extern crate self as ferrograd;

mod autograd;
mod backend;
mod codes;
mod cpu;
pub mod data;
mod device;
mod device_info;
mod display;
mod dtype;
mod error;
mod gpu;
mod memory;
pub mod nn;
/// The op enums: which elementwise op, reduction or fused activation to run.
pub mod op {
    pub use crate::ops::elementwise::op::{BinaryOp, UnaryOp};
    pub use crate::ops::matmul::spec::Activation;
    pub use crate::ops::reduce::spec::ReduceOp;
}
mod ops;
pub mod optim;
pub mod profile;
mod random;
mod real;
pub mod shape;
mod storage;
mod sugar;
mod tensor;
mod typed;

pub use autograd::{
    gradcheck, is_grad_enabled, no_grad, GradcheckOptions, GradcheckReport, Gradients, InputReport,
};
pub use device::{Device, DeviceInfo, DeviceKind, DispatchStats, MatmulKernels, MemoryStats};
pub use dtype::{DType, Element};
pub use error::{Error, Result};
/// The `half` crate, whose `f16` and `bf16` are the host types of `DType::F16` and `DType::BF16`.
pub use half;
pub use op::Activation;
pub use ops::{BatchNormOptions, Conv1dOptions, Conv2dOptions, Pool2dOptions, RunningStats};
pub use random::{manual_seed, Generator};
pub use tensor::Tensor;
pub use typed::NdArray;

#[doc(hidden)]
pub use gpu::set_binding_limit;

/// The WGSL of every shader as compiled (generated constants, `common.wgsl`, then its files),
/// by file name, for tools and tests that validate it without a GPU.
pub fn wgsl_sources() -> Vec<(&'static str, String)> {
    gpu::kernels::Shader::ALL
        .iter()
        .map(|s| (s.file_name(), s.source()))
        .collect()
}

#[doc(hidden)]
pub use gpu::contract;

/// The README's Rust examples, compiled and run by `cargo test` so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// GUIDE.md's examples, compiled and run the same way.
#[cfg(doctest)]
#[doc = include_str!("../GUIDE.md")]
pub struct GuideDoctests;
