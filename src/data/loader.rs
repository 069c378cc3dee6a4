//! Mini-batches from an [`ImageSet`]: seeded shuffling (a new order each epoch, the same for
//! the same seed), an optional short last batch, and normalisation. A batch is assembled in one
//! host buffer through a 256-entry lookup table (byte -> normalised f32), with no allocation per
//! image, and moved to the device in one upload.

use super::ImageSet;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::random::Generator;
use crate::tensor::Tensor;

/// One mini-batch: `images [b, 1, height, width]`, `labels [b]` (class indices as f32).
#[derive(Debug, Clone)]
pub struct Batch {
    pub images: Tensor,
    pub labels: Tensor,
}

/// Batches over an image set; see [`DataLoader::epoch`].
#[derive(Debug, Clone)]
pub struct DataLoader<'a> {
    set: &'a ImageSet,
    batch_size: usize,
    seed: Option<u64>,
    drop_last: bool,
    /// Normalised value of each byte: `(byte / 255 - mean) / std`.
    table: [f32; 256],
    device: Device,
}

impl<'a> DataLoader<'a> {
    /// Batches of `batch_size` in file order, pixels scaled to [0, 1], on `device`.
    pub fn new(set: &'a ImageSet, batch_size: usize, device: &Device) -> Result<DataLoader<'a>> {
        if batch_size == 0 {
            return Err(Error::invalid(
                "DataLoader",
                "batch size must be at least 1",
            ));
        }
        let mut loader = DataLoader {
            set,
            batch_size,
            seed: None,
            drop_last: false,
            table: [0.0; 256],
            device: device.clone(),
        };
        loader = loader.normalize(0.0, 1.0)?;
        Ok(loader)
    }

    /// Shuffles each epoch with an order drawn from `seed` and the epoch number.
    pub fn shuffle(mut self, seed: u64) -> DataLoader<'a> {
        self.seed = Some(seed);
        self
    }

    /// Leaves out a last batch smaller than the batch size.
    pub fn drop_last(mut self, drop: bool) -> DataLoader<'a> {
        self.drop_last = drop;
        self
    }

    /// Pixels become `(p / 255 - mean) / std` (MNIST: [`super::MNIST_MEAN`],
    /// [`super::MNIST_STD`]).
    pub fn normalize(mut self, mean: f32, std: f32) -> Result<DataLoader<'a>> {
        if !(mean.is_finite() && std.is_finite() && std > 0.0) {
            return Err(Error::invalid(
                "DataLoader",
                format!("normalisation needs a finite mean and std > 0, found {mean} and {std}"),
            ));
        }
        for (b, v) in self.table.iter_mut().enumerate() {
            *v = (b as f32 / 255.0 - mean) / std;
        }
        Ok(self)
    }

    /// Batches in one epoch.
    pub fn len(&self) -> usize {
        let n = self.set.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The batches of epoch `epoch` (0, 1, ...): shuffled if asked, each `Result<Batch>`.
    pub fn epoch(&self, epoch: u64) -> Batches<'_, 'a> {
        let mut order: Vec<usize> = (0..self.set.len()).collect();
        if let Some(seed) = self.seed {
            // Fisher-Yates with an unbiased-enough multiply-shift draw.
            let mut gen = Generator::new(seed ^ epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            for i in (1..order.len()).rev() {
                let j = ((u128::from(gen.next_key()) * (i as u128 + 1)) >> 64) as usize;
                order.swap(i, j);
            }
        }
        Batches {
            loader: self,
            order,
            next: 0,
        }
    }
}

/// The iterator [`DataLoader::epoch`] returns.
pub struct Batches<'l, 'a> {
    loader: &'l DataLoader<'a>,
    order: Vec<usize>,
    next: usize,
}

impl Iterator for Batches<'_, '_> {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        let l = self.loader;
        let left = self.order.len() - self.next;
        let b = left.min(l.batch_size);
        if b == 0 || (l.drop_last && b < l.batch_size) {
            return None;
        }
        let picks = &self.order[self.next..self.next + b];
        self.next += b;
        let (set, px) = (l.set, l.set.pixels());
        let mut images = Vec::with_capacity(b * px);
        let mut labels = Vec::with_capacity(b);
        for &i in picks {
            images.extend(
                set.images[i * px..(i + 1) * px]
                    .iter()
                    .map(|&p| l.table[usize::from(p)]),
            );
            labels.push(f32::from(set.labels[i]));
        }
        let batch = || -> Result<Batch> {
            Ok(Batch {
                images: Tensor::from_vec(images, &[b, 1, set.height, set.width], &l.device)?,
                labels: Tensor::from_vec(labels, &[b], &l.device)?,
            })
        };
        Some(batch())
    }
}
