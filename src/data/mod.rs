//! Datasets and batching: the [`Dataset`] trait, [`TensorDataset`] (samples as the rows of
//! tensors), [`Mnist`] (and [`FashionMnist`]) read from their IDX files, and a [`DataLoader`]
//! that shuffles and batches any dataset, and normalises and augments image sets. With the
//! feature `download`, `download` fetches and verifies the MNIST files into a cache
//! directory.
//!
//! ```no_run
//! use ferrograd::data::{DataLoader, Mnist, MNIST_MEAN, MNIST_STD};
//! use ferrograd::Device;
//! let mnist = Mnist::load("data/mnist")?;
//! let loader = DataLoader::new(&mnist.train, 64, &Device::cpu())?
//!     .shuffle(0)
//!     .normalize(MNIST_MEAN, MNIST_STD)?;
//! for batch in loader.epoch(0) {
//!     let batch = batch?; // inputs: images [64, 1, 28, 28]; targets: labels [64]
//! }
//! # Ok::<(), ferrograd::Error>(())
//! ```

mod dataset;
#[cfg(feature = "download")]
mod download;
mod idx;
mod loader;
mod mnist;

#[cfg(feature = "download")]
#[cfg_attr(docsrs, doc(cfg(feature = "download")))]
pub use download::{cache_dir, download, download_from, MnistKind};

pub use dataset::{Dataset, TensorDataset};
pub use loader::{Augment, Batch, Batches, DataLoader, Images};
pub use mnist::{FashionMnist, ImageSet, Mnist};

/// The mean and standard deviation of MNIST's training pixels (scaled to [0, 1]), the usual
/// normalisation: the mean.
pub const MNIST_MEAN: f32 = 0.1307;
/// The standard deviation of MNIST's training pixels (see [`MNIST_MEAN`]).
pub const MNIST_STD: f32 = 0.3081;
