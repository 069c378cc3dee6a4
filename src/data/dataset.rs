//! What a [`DataLoader`](super::DataLoader) batches: the [`Dataset`] trait, and
//! [`TensorDataset`], samples held as the rows of tensors of any shape and dtype.

use super::Batch;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::random::Generator;
use crate::tensor::Tensor;

/// Samples a [`DataLoader`](super::DataLoader) shuffles and batches: how many there are, and
/// the samples at some indices gathered into one [`Batch`] on a device. Gathering a whole
/// batch at once (not sample by sample, as PyTorch's `__getitem__` does) lets a dataset build
/// it in one host buffer or one gather on the device.
///
/// The MNIST sets implement it through [`DataLoader::new`](super::DataLoader::new) (with
/// normalisation and augmentation) and [`TensorDataset`] covers tensors in memory; a dataset
/// of your own implements the two methods:
///
/// ```
/// use ferrograd::data::{Batch, DataLoader, Dataset};
/// use ferrograd::{Device, Generator, Result, Tensor};
///
/// /// `x` and `2x + 1` for x = 0, 1, .., n - 1.
/// struct Line(usize);
///
/// impl Dataset for Line {
///     fn len(&self) -> usize {
///         self.0
///     }
///     fn get_batch(&self, indices: &[usize], _: &mut Generator, dev: &Device) -> Result<Batch> {
///         let x: Vec<f32> = indices.iter().map(|&i| i as f32).collect();
///         let y: Vec<f32> = x.iter().map(|x| 2.0 * x + 1.0).collect();
///         Ok(Batch {
///             inputs: Tensor::from_vec(x, &[indices.len(), 1], dev)?,
///             targets: Tensor::from_vec(y, &[indices.len(), 1], dev)?,
///         })
///     }
/// }
///
/// let loader = DataLoader::over(Line(10), 4, &Device::cpu())?.shuffle(7);
/// let sizes: Vec<usize> = loader.epoch(0).map(|b| b.unwrap().inputs.shape()[0]).collect();
/// assert_eq!(sizes, [4, 4, 2]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
pub trait Dataset {
    /// How many samples there are.
    fn len(&self) -> usize;

    /// True when there is no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The samples at `indices` (each below [`len`](Dataset::len)) as one batch on `device`:
    /// inputs `[indices.len(), ..]` and targets `[indices.len(), ..]`. `rng` is drawn from the
    /// loader's seed and the epoch, for random augmentation that repeats run to run.
    fn get_batch(&self, indices: &[usize], rng: &mut Generator, device: &Device) -> Result<Batch>;
}

impl<D: Dataset + ?Sized> Dataset for &D {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get_batch(&self, indices: &[usize], rng: &mut Generator, device: &Device) -> Result<Batch> {
        (**self).get_batch(indices, rng, device)
    }
}

/// Samples as the rows of two tensors, PyTorch's `TensorDataset`: sample `i` is
/// `inputs[i]` with `targets[i]`, of any shape and dtype (`I32` class labels, `F32` regression
/// targets). A batch is one `index_select` of each on the tensors' device, then a copy to the
/// loader's device if that is another.
///
/// ```
/// use ferrograd::data::{DataLoader, TensorDataset};
/// use ferrograd::{DType, Device, Tensor};
/// let dev = Device::cpu();
/// let x = Tensor::randn(&[10, 3], &dev)?;
/// let y = Tensor::new([0, 1, 2, 0, 1, 2, 0, 1, 2, 0], &dev)?;
/// let loader = DataLoader::over(TensorDataset::new(x, y)?, 4, &dev)?.drop_last(true);
/// for batch in loader.epoch(0) {
///     let batch = batch?;
///     assert_eq!((batch.inputs.shape(), batch.targets.dtype()), (&[4, 3][..], DType::I32));
/// }
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct TensorDataset {
    inputs: Tensor,
    targets: Tensor,
}

impl TensorDataset {
    /// Pairs the rows of `inputs` `[n, ..]` with those of `targets` `[n, ..]`; neither tracks
    /// gradients.
    ///
    /// # Errors
    /// `InvalidArgument` when either is 0-dim or their first axes differ, or past `i32::MAX`
    /// rows; `DeviceMismatch` when they are on different devices.
    pub fn new(inputs: Tensor, targets: Tensor) -> Result<TensorDataset> {
        let op = "TensorDataset";
        let rows = |t: &Tensor, what: &str| match t.shape().first() {
            Some(&n) => Ok(n),
            None => Err(Error::invalid(
                op,
                format!("{what} must have a first axis of samples, found a 0-dim tensor"),
            )),
        };
        let (n, m) = (rows(&inputs, "inputs")?, rows(&targets, "targets")?);
        if n != m {
            return Err(Error::invalid(
                op,
                format!(
                    "inputs {:?} and targets {:?} must have as many rows ({n} and {m})",
                    inputs.shape(),
                    targets.shape()
                ),
            ));
        }
        if n > i32::MAX as usize {
            return Err(Error::invalid(op, format!("{n} rows are past i32::MAX")));
        }
        if inputs.device() != targets.device() {
            return Err(Error::DeviceMismatch {
                op,
                lhs: inputs.device().to_string(),
                rhs: targets.device().to_string(),
            });
        }
        Ok(TensorDataset {
            inputs: inputs.detach(),
            targets: targets.detach(),
        })
    }

    /// The inputs, `[n, ..]`.
    pub fn inputs(&self) -> &Tensor {
        &self.inputs
    }

    /// The targets, `[n, ..]`.
    pub fn targets(&self) -> &Tensor {
        &self.targets
    }
}

impl Dataset for TensorDataset {
    fn len(&self) -> usize {
        self.inputs.shape()[0]
    }

    fn get_batch(&self, indices: &[usize], _: &mut Generator, device: &Device) -> Result<Batch> {
        let op = "TensorDataset::get_batch";
        super::loader::check_indices(op, indices, self.len())?;
        // Below i32::MAX: `new` checked the row count.
        let picks = indices
            .iter()
            .map(|&i| i32::try_from(i).map_err(|_| Error::invalid(op, format!("index {i}"))))
            .collect::<Result<Vec<i32>>>()?;
        let picks = Tensor::from_vec(picks, &[indices.len()], self.inputs.device())?;
        let take = |t: &Tensor| -> Result<Tensor> {
            t.index_select(0, &picks)?
                .to_device(device)
                .map_err(|e| e.in_op(op))
        };
        Ok(Batch {
            inputs: take(&self.inputs)?,
            targets: take(&self.targets)?,
        })
    }
}
