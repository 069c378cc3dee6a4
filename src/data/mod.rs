//! Datasets and batching: [`Mnist`] (and [`FashionMnist`]) read from their IDX files, and a
//! [`DataLoader`] that shuffles, batches, normalises and augments them. With the default
//! feature `download`, [`download`] fetches and verifies the files into a cache directory.
//!
//! ```no_run
//! use ferrograd::data::{DataLoader, Mnist, MNIST_MEAN, MNIST_STD};
//! use ferrograd::Device;
//! let mnist = Mnist::load("../shared/data/mnist")?;
//! let loader = DataLoader::new(&mnist.train, 64, &Device::cpu())?
//!     .shuffle(0)
//!     .normalize(MNIST_MEAN, MNIST_STD)?;
//! for batch in loader.epoch(0) {
//!     let batch = batch?; // images [64, 1, 28, 28], labels [64]
//! }
//! # Ok::<(), ferrograd::Error>(())
//! ```

#[cfg(feature = "download")]
mod download;
mod idx;
mod loader;
mod mnist;

#[cfg(feature = "download")]
pub use download::{cache_dir, download, download_from, Dataset};

pub use loader::{Augment, Batch, Batches, DataLoader};
pub use mnist::{FashionMnist, ImageSet, Mnist};

/// The mean and standard deviation of MNIST's training pixels (scaled to [0, 1]), the usual
/// normalisation.
pub const MNIST_MEAN: f32 = 0.1307;
pub const MNIST_STD: f32 = 0.3081;
