//! Mini-batches from any [`Dataset`]: seeded shuffling (a new order each epoch, the same for
//! the same seed) and an optional short last batch. For an [`ImageSet`] ([`Images`]) a batch is
//! assembled in one host buffer through a 256-entry lookup table (byte -> normalised f32), with
//! no allocation per image, and moved to the device in one upload; optional augmentation
//! ([`Augment`]) warps each image straight into that buffer.

use super::{Dataset, ImageSet};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::random::Generator;
use crate::tensor::Tensor;

/// One mini-batch: `inputs [b, ..]` and `targets [b, ..]`. From an image set, `inputs` are
/// images `[b, 1, height, width]` and `targets` the labels `[b]` (`I32` class indices).
///
/// ```
/// use ferrograd::data::{Batch, DataLoader, TensorDataset};
/// use ferrograd::{Device, Tensor};
/// let dev = Device::cpu();
/// let x = Tensor::new([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], &dev)?;
/// let data = TensorDataset::new(x, Tensor::new([0, 1, 0], &dev)?)?;
/// let loader = DataLoader::over(data, 2, &dev)?; // in order: rows 0 and 1, then row 2
/// let Batch { inputs, targets } = loader.epoch(0).next().unwrap()?;
/// assert_eq!(inputs.to_vec()?, vec![1.0, 2.0, 3.0, 4.0]);
/// assert_eq!(targets.to_vec_as::<i32>()?, vec![0, 1]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Batch {
    /// The samples' inputs, `[b, ..]`.
    pub inputs: Tensor,
    /// The samples' targets, `[b, ..]`.
    pub targets: Tensor,
}

/// Random augmentation, drawn per image and epoch from the loader's seed (so a run repeats):
/// a shift of up to `translate` pixels on each axis, a rotation about the centre of up to
/// `rotate_degrees` either way, and, if `hflip`, a left-right mirror half of the time (right for
/// general images, wrong for digits). Pixels are resampled bilinearly; what comes in from
/// outside the image is background (byte 0).
///
/// ```
/// use ferrograd::data::{Augment, DataLoader, ImageSet};
/// use ferrograd::Device;
/// let set = ImageSet {
///     images: vec![255; 2 * 28 * 28],
///     labels: vec![3, 5],
///     height: 28,
///     width: 28,
///     classes: 10,
/// };
/// let shake = Augment { translate: 2, rotate_degrees: 10.0, hflip: false };
/// let loader = DataLoader::new(&set, 2, &Device::cpu())?.augment(shake)?;
/// let batch = loader.epoch(0).next().unwrap()?; // a new draw each epoch
/// assert_eq!(batch.inputs.shape(), &[2, 1, 28, 28]);
/// let too_far = Augment { rotate_degrees: 200.0, ..Default::default() };
/// assert!(DataLoader::new(&set, 2, &Device::cpu())?.augment(too_far).is_err());
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Augment {
    /// The largest shift, in whole pixels, on each axis.
    pub translate: usize,
    /// The largest rotation either way, in degrees (at most 180).
    pub rotate_degrees: f32,
    /// Mirror left-right half of the time.
    pub hflip: bool,
}

impl Augment {
    fn is_identity(&self) -> bool {
        self.translate == 0 && self.rotate_degrees == 0.0 && !self.hflip
    }
}

/// An [`ImageSet`] as a [`Dataset`], with the normalisation and augmentation a
/// [`DataLoader::new`] sets: inputs `[b, 1, height, width]`, targets `I32` labels `[b]`.
///
/// ```
/// use ferrograd::data::{Dataset, ImageSet, Images};
/// use ferrograd::{Device, Generator};
/// let set = ImageSet {
///     images: vec![0, 255, 0, 255], // two 1 × 2 images
///     labels: vec![0, 1],
///     height: 1,
///     width: 2,
///     classes: 2,
/// };
/// let images = Images::new(&set)?; // pixels scaled to [0, 1]
/// let batch = images.get_batch(&[1], &mut Generator::new(0), &Device::cpu())?;
/// assert_eq!(batch.inputs.shape(), &[1, 1, 1, 2]);
/// assert_eq!(batch.inputs.to_vec()?, vec![0.0, 1.0]);
/// assert_eq!(batch.targets.to_vec_as::<i32>()?, vec![1]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone)]
pub struct Images<'a> {
    set: &'a ImageSet,
    /// Normalised value of each byte: `(byte / 255 - mean) / std`.
    table: [f32; 256],
    augment: Augment,
}

/// The set's summary and the transforms, not every pixel.
impl std::fmt::Debug for Images<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Images")
            .field("set", self.set)
            .field("value_of_byte_0", &self.table[0])
            .field("augment", &self.augment)
            .finish()
    }
}

impl<'a> Images<'a> {
    /// The images of `set` scaled to [0, 1], not augmented.
    pub fn new(set: &'a ImageSet) -> Result<Images<'a>> {
        set.validate()?;
        let mut images = Images {
            set,
            table: [0.0; 256],
            augment: Augment::default(),
        };
        images.normalize(0.0, 1.0)?;
        Ok(images)
    }

    fn normalize(&mut self, mean: f32, std: f32) -> Result<()> {
        if !(mean.is_finite() && std.is_finite() && std > 0.0) {
            return Err(Error::invalid(
                "DataLoader",
                format!("normalisation needs a finite mean and std > 0, found {mean} and {std}"),
            ));
        }
        for (b, v) in self.table.iter_mut().enumerate() {
            *v = (b as f32 / 255.0 - mean) / std;
        }
        Ok(())
    }
}

impl Dataset for Images<'_> {
    fn len(&self) -> usize {
        self.set.len()
    }

    fn get_batch(&self, picks: &[usize], rng: &mut Generator, device: &Device) -> Result<Batch> {
        check_indices("Images::get_batch", picks, self.set.len())?;
        let (set, px, b) = (self.set, self.set.pixels(), picks.len());
        // From the CPU pool when the batch lives on the CPU, so batches recycle one buffer.
        let mut images = crate::tensor::host_buffer(device, "DataLoader", b * px)?;
        let mut labels = Vec::with_capacity(b);
        for &i in picks {
            let src = &set.images[i * px..(i + 1) * px];
            if self.augment.is_identity() {
                images.extend(src.iter().map(|&p| self.table[usize::from(p)]));
            } else {
                let warp = Warp::draw(&self.augment, rng);
                warp.apply(src, set.height, set.width, &self.table, &mut images);
            }
            labels.push(i32::from(set.labels[i]));
        }
        Ok(Batch {
            inputs: Tensor::from_vec(images, &[b, 1, set.height, set.width], device)?,
            targets: Tensor::from_vec(labels, &[b], device)?,
        })
    }
}

/// An image set's pixels scaled to [0, 1] (no normalisation or augmentation: for those,
/// [`DataLoader::new`]). Each batch checks only that the sizes agree (not every label, as
/// [`ImageSet::validate`] does), so batching stays cheap.
impl Dataset for ImageSet {
    fn len(&self) -> usize {
        ImageSet::len(self)
    }
    fn get_batch(&self, picks: &[usize], rng: &mut Generator, device: &Device) -> Result<Batch> {
        self.check_sizes()?;
        let mut images = Images {
            set: self,
            table: [0.0; 256],
            augment: Augment::default(),
        };
        images.normalize(0.0, 1.0)?;
        images.get_batch(picks, rng, device)
    }
}

/// Every index below `len`, or an error naming the first that is not.
pub(super) fn check_indices(op: &'static str, picks: &[usize], len: usize) -> Result<()> {
    match picks.iter().find(|&&i| i >= len) {
        Some(i) => Err(Error::invalid(
            op,
            format!("index {i} is out of range for a dataset of {len} samples"),
        )),
        None => Ok(()),
    }
}

/// Batches over a [`Dataset`]; see [`DataLoader::epoch`]. [`DataLoader::new`] takes an
/// [`ImageSet`] (with normalisation and augmentation), [`DataLoader::over`] any dataset.
///
/// ```
/// use ferrograd::data::{DataLoader, TensorDataset};
/// use ferrograd::{Device, Tensor};
/// let dev = Device::cpu();
/// let x = Tensor::arange(0.0, 10.0, 1.0, &dev)?; // samples 0, 1, .., 9
/// let data = TensorDataset::new(x, Tensor::zeros(&[10], &dev)?)?;
/// let loader = DataLoader::over(data, 4, &dev)?.shuffle(42);
/// assert_eq!(loader.len(), 3); // 4, 4 and 2 samples
/// let mut seen = Vec::new();
/// for batch in loader.epoch(0) {
///     seen.extend(batch?.inputs.to_vec()?);
/// }
/// seen.sort_by(f32::total_cmp); // shuffled, but every sample once
/// assert_eq!(seen, (0..10).map(|i| i as f32).collect::<Vec<_>>());
/// assert_eq!(loader.drop_last(true).len(), 2);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct DataLoader<D> {
    data: D,
    batch_size: usize,
    seed: Option<u64>,
    drop_last: bool,
    device: Device,
    /// `(rank, world_size)` when each epoch is one rank's shard.
    shard: Option<(usize, usize)>,
}

impl<'a> DataLoader<Images<'a>> {
    /// Batches of `batch_size` images of `set` in file order, pixels scaled to [0, 1], on
    /// `device`.
    pub fn new(set: &'a ImageSet, batch_size: usize, device: &Device) -> Result<Self> {
        let images = Images::new(set).map_err(|e| e.in_op("DataLoader"))?;
        DataLoader::over(images, batch_size, device)
    }

    /// Augments every image (training data only). Rotation must be finite and at most 180°.
    pub fn augment(mut self, augment: Augment) -> Result<Self> {
        let r = augment.rotate_degrees;
        let (h, w) = (self.data.set.height, self.data.set.width);
        if !(r.is_finite() && (0.0..=180.0).contains(&r)) || augment.translate > h.max(w) {
            return Err(Error::invalid(
                "DataLoader::augment",
                format!(
                    "rotation must be in [0, 180] degrees and translation at most the image size \
                     {h}x{w}, found {r} degrees and {} px",
                    augment.translate
                ),
            ));
        }
        self.data.augment = augment;
        Ok(self)
    }

    /// Pixels become `(p / 255 - mean) / std` (MNIST: [`super::MNIST_MEAN`],
    /// [`super::MNIST_STD`]).
    pub fn normalize(mut self, mean: f32, std: f32) -> Result<Self> {
        self.data.normalize(mean, std)?;
        Ok(self)
    }
}

impl<D: Dataset> DataLoader<D> {
    /// Batches of `batch_size` samples of `data` in order, on `device`.
    ///
    /// # Errors
    /// `InvalidArgument` when `batch_size` is 0.
    pub fn over(data: D, batch_size: usize, device: &Device) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::invalid(
                "DataLoader",
                "batch size must be at least 1",
            ));
        }
        Ok(DataLoader {
            data,
            batch_size,
            seed: None,
            drop_last: false,
            device: device.clone(),
            shard: None,
        })
    }

    /// Shuffles each epoch with an order drawn from `seed` and the epoch number.
    pub fn shuffle(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Leaves out a last batch smaller than the batch size.
    pub fn drop_last(mut self, drop: bool) -> Self {
        self.drop_last = drop;
        self
    }

    /// Makes each epoch rank `rank`'s shard of `world_size` (PyTorch's `DistributedSampler`),
    /// for data-parallel training ([`crate::distributed`]): every rank shuffles the same way
    /// (give each the same seed), then takes every `world_size`-th sample starting at `rank`,
    /// so the shards are disjoint and together cover the epoch. When the samples do not split
    /// evenly, the first ones of the epoch's order are repeated to fill every shard to the same
    /// length, or, with [`drop_last`](DataLoader::drop_last), the last ones are left out, so
    /// every rank has as many batches as the others (ranks that step different numbers of
    /// times would wait on each other forever).
    ///
    /// ```
    /// use ferrograd::data::{DataLoader, TensorDataset};
    /// use ferrograd::{Device, Tensor};
    /// let dev = Device::cpu();
    /// let data = TensorDataset::new(Tensor::arange(0.0, 5.0, 1.0, &dev)?.reshape(&[5, 1])?,
    ///     Tensor::zeros(&[5], &dev)?)?;
    /// let loader = DataLoader::over(data, 8, &dev)?;
    /// let rows = |rank| -> ferrograd::Result<Vec<f32>> {
    ///     loader.clone().shard(rank, 2)?.epoch(0).next().unwrap()?.inputs.to_vec()
    /// };
    /// assert_eq!(rows(0)?, vec![0.0, 2.0, 4.0]);
    /// assert_eq!(rows(1)?, vec![1.0, 3.0, 0.0]); // sample 0 again, to fill the shard
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// `InvalidArgument` when `rank` is not below `world_size`.
    #[doc(alias = "DistributedSampler")]
    pub fn shard(mut self, rank: usize, world_size: usize) -> Result<Self> {
        if rank >= world_size {
            return Err(Error::invalid(
                "DataLoader::shard",
                format!("rank {rank} is not a rank of a group of {world_size}"),
            ));
        }
        self.shard = Some((rank, world_size));
        Ok(self)
    }

    /// The samples one epoch visits: all of them, or this rank's shard.
    fn samples(&self) -> usize {
        let n = self.data.len();
        match self.shard {
            None => n,
            Some((_, w)) if self.drop_last => n / w,
            Some((_, w)) => n.div_ceil(w),
        }
    }

    /// The dataset it batches.
    pub fn dataset(&self) -> &D {
        &self.data
    }

    /// Batches in one epoch.
    pub fn len(&self) -> usize {
        let n = self.samples();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// True when an epoch has no batch.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The batches of epoch `epoch` (0, 1, ...): shuffled if asked, each `Result<Batch>`.
    pub fn epoch(&self, epoch: u64) -> Batches<'_, D> {
        let mut order: Vec<usize> = (0..self.data.len()).collect();
        let seed = self.seed.unwrap_or(0) ^ epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        if self.seed.is_some() {
            // Fisher-Yates with an unbiased-enough multiply-shift draw.
            let mut gen = Generator::new(seed);
            for i in (1..order.len()).rev() {
                let j = ((u128::from(gen.next_key()) * (i as u128 + 1)) >> 64) as usize;
                order.swap(i, j);
            }
        }
        let mut aug_seed = !seed;
        if let Some((rank, world)) = self.shard {
            // The order padded by repeating its start (or cut) to `samples * world`, then this
            // rank's stride through it: entry i is `order[(rank + i * world) % n]`.
            let n = order.len();
            order = (0..self.samples())
                .map(|i| order[(rank + i * world) % n])
                .collect();
            // Each rank draws its own augmentations, as one process would for the whole batch.
            aug_seed ^= (rank as u64 + 1).wrapping_mul(0xd1b5_4a32_d192_ed03);
        }
        Batches {
            loader: self,
            order,
            next: 0,
            gen: Generator::new(aug_seed),
        }
    }
}

/// The iterator [`DataLoader::epoch`] returns.
///
/// ```
/// use ferrograd::data::{Batches, DataLoader, TensorDataset};
/// use ferrograd::{Device, Tensor};
/// let dev = Device::cpu();
/// let data = TensorDataset::new(Tensor::ones(&[5, 2], &dev)?, Tensor::zeros(&[5], &dev)?)?;
/// let loader = DataLoader::over(data, 2, &dev)?;
/// let batches: Batches<'_, TensorDataset> = loader.epoch(0);
/// let sizes = batches.map(|b| b.map(|b| b.inputs.shape()[0]));
/// assert_eq!(sizes.collect::<ferrograd::Result<Vec<_>>>()?, vec![2, 2, 1]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
pub struct Batches<'l, D> {
    loader: &'l DataLoader<D>,
    order: Vec<usize>,
    next: usize,
    /// Augmentation draws.
    gen: Generator,
}

/// Where the epoch is, not its whole order.
impl<D> std::fmt::Debug for Batches<'_, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batches")
            .field("samples", &self.order.len())
            .field("next", &self.next)
            .finish()
    }
}

impl<D: Dataset> Iterator for Batches<'_, D> {
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
        let batch = l.data.get_batch(picks, &mut self.gen, &l.device);
        Some(batch.map_err(|e| e.in_op("DataLoader")))
    }
}

/// One image's random transform, as the inverse map from output to source pixel coordinates:
/// `src = R(-angle) · (out - centre - shift)` mirrored if `flip`, plus the centre.
struct Warp {
    cos: f32,
    sin: f32,
    dx: f32,
    dy: f32,
    flip: bool,
}

impl Warp {
    fn draw(a: &Augment, gen: &mut Generator) -> Warp {
        // Four uniforms in [0, 1) per image, 24 bits each from two keys (no allocation).
        let (k0, k1) = (gen.next_key(), gen.next_key());
        let unit = |bits: u64| (bits & 0xff_ffff) as f32 / 16_777_216.0;
        let u = [unit(k0), unit(k0 >> 32), unit(k1), unit(k1 >> 32)];
        let t = a.translate as f32;
        // Whole-pixel shifts in [-t, t], like torchvision's RandomAffine with integer translate.
        let shift = |u: f32| ((u * (2.0 * t + 1.0)).floor() - t).min(t);
        let angle = (u[2] * 2.0 - 1.0) * a.rotate_degrees.to_radians();
        Warp {
            cos: angle.cos(),
            sin: angle.sin(),
            dx: shift(u[0]),
            dy: shift(u[1]),
            flip: a.hflip && u[3] < 0.5,
        }
    }

    /// Appends the warped `[h, w]` image, normalised through `table`, to `out`.
    fn apply(&self, src: &[u8], h: usize, w: usize, table: &[f32; 256], out: &mut Vec<f32>) {
        let (cy, cx) = ((h as f32 - 1.0) / 2.0, (w as f32 - 1.0) / 2.0);
        // Byte value at (y, x), background outside.
        let at = |y: isize, x: isize| -> f32 {
            if y < 0 || x < 0 || y >= h as isize || x >= w as isize {
                0.0
            } else {
                f32::from(src[y as usize * w + x as usize])
            }
        };
        for oy in 0..h {
            for ox in 0..w {
                let (ry, rx) = (oy as f32 - cy - self.dy, ox as f32 - cx - self.dx);
                // Rotate back by the angle.
                let sy = self.cos * ry - self.sin * rx + cy;
                let mut sx = self.sin * ry + self.cos * rx + cx;
                if self.flip {
                    sx = w as f32 - 1.0 - sx;
                }
                let (y0, x0) = (sy.floor(), sx.floor());
                let (fy, fx) = (sy - y0, sx - x0);
                let (y0, x0) = (y0 as isize, x0 as isize);
                let v = (1.0 - fy) * ((1.0 - fx) * at(y0, x0) + fx * at(y0, x0 + 1))
                    + fy * ((1.0 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1));
                // Round back to a byte so the one lookup table normalises it.
                out.push(table[v.round().clamp(0.0, 255.0) as usize]);
            }
        }
    }
}
