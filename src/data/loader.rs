//! Mini-batches from an [`ImageSet`]: seeded shuffling (a new order each epoch, the same for
//! the same seed), an optional short last batch, and normalisation. A batch is assembled in one
//! host buffer through a 256-entry lookup table (byte -> normalised f32), with no allocation per
//! image, and moved to the device in one upload. Optional augmentation ([`Augment`]) warps each
//! image straight into that buffer.

use super::ImageSet;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::random::Generator;
use crate::tensor::Tensor;

/// One mini-batch: `images [b, 1, height, width]`, `labels [b]` (`I32` class indices).
#[derive(Debug, Clone)]
pub struct Batch {
    pub images: Tensor,
    pub labels: Tensor,
}

/// Random augmentation, drawn per image and epoch from the loader's seed (so a run repeats):
/// a shift of up to `translate` pixels on each axis, a rotation about the centre of up to
/// `rotate_degrees` either way, and, if `hflip`, a left-right mirror half of the time (right for
/// general images, wrong for digits). Pixels are resampled bilinearly; what comes in from
/// outside the image is background (byte 0).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Augment {
    pub translate: usize,
    pub rotate_degrees: f32,
    pub hflip: bool,
}

impl Augment {
    fn is_identity(&self) -> bool {
        self.translate == 0 && self.rotate_degrees == 0.0 && !self.hflip
    }
}

/// Batches over an image set; see [`DataLoader::epoch`].
#[derive(Debug, Clone)]
pub struct DataLoader<'a> {
    set: &'a ImageSet,
    batch_size: usize,
    seed: Option<u64>,
    drop_last: bool,
    augment: Augment,
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
        set.validate().map_err(|e| e.in_op("DataLoader"))?;
        let mut loader = DataLoader {
            set,
            batch_size,
            seed: None,
            drop_last: false,
            augment: Augment::default(),
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

    /// Augments every image (training data only). Rotation must be finite and at most 180°.
    pub fn augment(mut self, augment: Augment) -> Result<DataLoader<'a>> {
        let r = augment.rotate_degrees;
        let (h, w) = (self.set.height, self.set.width);
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
        self.augment = augment;
        Ok(self)
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
        let seed = self.seed.unwrap_or(0) ^ epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        if self.seed.is_some() {
            // Fisher-Yates with an unbiased-enough multiply-shift draw.
            let mut gen = Generator::new(seed);
            for i in (1..order.len()).rev() {
                let j = ((u128::from(gen.next_key()) * (i as u128 + 1)) >> 64) as usize;
                order.swap(i, j);
            }
        }
        Batches {
            loader: self,
            order,
            next: 0,
            gen: Generator::new(!seed),
        }
    }
}

/// The iterator [`DataLoader::epoch`] returns.
pub struct Batches<'l, 'a> {
    loader: &'l DataLoader<'a>,
    order: Vec<usize>,
    next: usize,
    /// Augmentation draws.
    gen: Generator,
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
        // From the CPU pool when the batch lives on the CPU, so batches recycle one buffer.
        let mut images = match crate::tensor::host_buffer(&l.device, "DataLoader", b * px) {
            Ok(v) => v,
            Err(e) => return Some(Err(e)),
        };
        let mut labels = Vec::with_capacity(b);
        for &i in picks {
            let src = &set.images[i * px..(i + 1) * px];
            if l.augment.is_identity() {
                images.extend(src.iter().map(|&p| l.table[usize::from(p)]));
            } else {
                let warp = Warp::draw(&l.augment, &mut self.gen);
                warp.apply(src, set.height, set.width, &l.table, &mut images);
            }
            labels.push(i32::from(set.labels[i]));
        }
        let batch = || -> Result<Batch> {
            Ok(Batch {
                images: Tensor::from_vec(images, &[b, 1, set.height, set.width], &l.device)?,
                labels: Tensor::from_vec(labels, &[b], &l.device)?,
            })
        };
        Some(batch().map_err(|e| e.in_op("DataLoader")))
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
