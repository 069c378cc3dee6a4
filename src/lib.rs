//! # ferrograd
//!
//! Deep learning on the GPU through [wgpu](https://wgpu.rs): tensors live in wgpu buffers and
//! WGSL compute shaders do the math. A CPU backend computes the same ops, is the reference the
//! GPU is tested against, and runs where no adapter exists. This page is a tour; `GUIDE.md` in
//! the repository goes further, one section per part, and `ARCHITECTURE.md` says how the code
//! fits together.
//!
//! ## Tensors
//!
//! A [`Tensor`] is an n-dimensional array of one [`DType`] on one [`Device`]; cloning it is
//! cheap (an `Arc`), and reshapes, transposes, slices and broadcasts are views. Every op
//! returns a [`Result`].
//!
//! ```
//! use ferrograd::{DType, Device, Tensor};
//! let dev = Device::cpu();
//! let x = Tensor::new(&[[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]], &dev)?; // [2, 3], F32
//! let w = Tensor::eye(3, &dev)?;
//! let p = x.matmul(&w)?.relu()?.softmax(-1)?;
//! assert!((p.sum(-1, false)?.to_vec()?[0] - 1.0).abs() < 1e-6);
//! let best = p.argmax(-1, false)?; // I32 indices
//! assert_eq!((best.dtype(), best.to_vec_as::<i32>()?), (DType::I32, vec![2, 0]));
//! let y = (&x * 2.0)?.t()?; // operators return a Result too; `t()` is a view
//! assert_eq!(y.shape(), &[3, 2]);
//! # Ok::<(), ferrograd::Error>(())
//! ```
//!
//! ## Devices
//!
//! [`Device::cpu`] is always there; [`Device::gpu`] opens the best wgpu adapter (software ones
//! such as llvmpipe included) or says why there is none; [`Device::best`] takes a hardware GPU
//! if there is one, else the CPU. Tensors move with [`Tensor::to_device`].
//!
//! ```
//! use ferrograd::{Device, Tensor};
//! let dev = Device::best();
//! let x = Tensor::ones(&[4], &dev)?;
//! assert_eq!(x.to_device(&Device::cpu())?.to_vec()?, vec![1.0; 4]);
//! # Ok::<(), ferrograd::Error>(())
//! ```
//!
//! ## Autograd
//!
//! A tensor made with [`Tensor::requires_grad`] is a variable; `backward()` from a scalar
//! returns the [`Gradients`] of every variable it depends on. [`no_grad`] runs code without
//! recording, and [`gradcheck`] compares an op's gradient with finite differences.
//!
//! ```
//! use ferrograd::{Device, Tensor};
//! let x = Tensor::new([1.0, 2.0, 3.0], &Device::cpu())?.requires_grad();
//! let loss = x.square()?.sum_all()?; // sum of x²
//! let grads = loss.backward()?;
//! assert_eq!(grads.get(&x).unwrap().to_vec()?, vec![2.0, 4.0, 6.0]);
//! # Ok::<(), ferrograd::Error>(())
//! ```
//!
//! ## Modules, training and checkpoints
//!
//! [`nn`] has PyTorch's layers; a model is a struct of them with `#[derive(Module)]` (see the
//! [`nn`] docs), or a [`nn::Sequential`]. [`nn::loss`] has the losses, [`optim`] the
//! optimizers, schedules and loss scaling, and [`nn::save`]/[`nn::load`] write and read
//! safetensors checkpoints with PyTorch's names, so they load in PyTorch and back.
//!
//! ```
//! use ferrograd::nn::{self, loss, Linear, Module, ReLU, Sequential};
//! use ferrograd::optim::{Adam, AdamConfig, Optimizer};
//! use ferrograd::{Device, Tensor};
//! let dev = Device::cpu();
//! let model = Sequential::new()
//!     .add(Linear::new(2, 16, true, &dev)?)
//!     .add(ReLU)
//!     .add(Linear::new(16, 1, true, &dev)?);
//! let x = Tensor::randn(&[32, 2], &dev)?;
//! let y = x.sum(1, true)?; // learn a sum
//! let mut opt = Adam::new(model.parameters(), AdamConfig { lr: 0.02, ..Default::default() })?;
//! let first = loss::mse(&model.forward(&x)?, &y, loss::Reduction::Mean)?.item()?;
//! for _ in 0..100 {
//!     let l = loss::mse(&model.forward(&x)?, &y, loss::Reduction::Mean)?;
//!     opt.step(&l.backward()?)?;
//! }
//! let last = loss::mse(&model.forward(&x)?, &y, loss::Reduction::Mean)?.item()?;
//! assert!(last < first / 10.0);
//! let path = std::env::temp_dir().join("ferrograd-tour.safetensors");
//! nn::save(&path, &model, "Linear(2, 16) ReLU Linear(16, 1)")?;
//! nn::load(&path, &model)?; // strict: every name and shape must match
//! # Ok::<(), ferrograd::Error>(())
//! ```
//!
//! ## Data
//!
//! A [`data::DataLoader`] shuffles and batches any [`data::Dataset`]:
//! [`data::TensorDataset`] for tensors in memory, or an MNIST [`data::ImageSet`] with
//! normalisation and augmentation. With the feature `download`, `data::download` fetches
//! MNIST and Fashion-MNIST.
//!
//! ```
//! use ferrograd::data::{DataLoader, TensorDataset};
//! use ferrograd::{Device, Tensor};
//! let dev = Device::cpu();
//! let data = TensorDataset::new(Tensor::randn(&[100, 8], &dev)?, Tensor::zeros(&[100], &dev)?)?;
//! let loader = DataLoader::over(data, 32, &dev)?.shuffle(0);
//! assert_eq!(loader.epoch(0).count(), 4); // 32, 32, 32 and 4 samples
//! # Ok::<(), ferrograd::Error>(())
//! ```
//!
//! ## Errors
//!
//! One [`Error`] type for everything. A message names the op you called and the values that
//! made it fail; nothing reachable through the API panics.
//!
//! ```
//! use ferrograd::{Device, Tensor};
//! let dev = Device::cpu();
//! let e = Tensor::zeros(&[2, 3], &dev)?.matmul(&Tensor::zeros(&[4, 5], &dev)?).unwrap_err();
//! assert_eq!(e.op(), Some("matmul"));
//! assert!(e.to_string().contains("[2, 3] and [4, 5]"));
//! # Ok::<(), ferrograd::Error>(())
//! ```

// `unsafe` is denied everywhere but `ops/matmul/cpu.rs`, which calls the `gemm` crate.
#![deny(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
// docs.rs builds with `--cfg docsrs`: feature-gated items say which feature they need.
#![cfg_attr(docsrs, feature(doc_cfg))]

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
pub mod distributed;
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
mod shape;
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
pub use ops::{
    BatchNormOptions, Conv1dOptions, Conv2dOptions, PadMode, Pool1dOptions, Pool2dOptions,
    RunningStats, UpsampleMode,
};
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
