//! Seeded random numbers that are the same on every device: values are a pure function of
//! (key, element index), computed on the host with SplitMix64 and uploaded, so `rand` on the
//! CPU and on the GPU give identical tensors for the same seed.

use std::sync::Mutex;

use crate::device::Device;
use crate::error::Result;
use crate::shape::checked_numel;
use crate::tensor::{host_buffer, Tensor};

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seeded stream of keys; each random tensor takes one key and derives its values from it.
///
/// ```
/// use ferrograd::{Device, Generator, Tensor};
/// let dev = Device::cpu();
/// let a = Tensor::rand_with(&[4], 0.0, 1.0, &mut Generator::new(7), &dev)?;
/// let b = Tensor::rand_with(&[4], 0.0, 1.0, &mut Generator::new(7), &dev)?;
/// assert_eq!(a.to_vec()?, b.to_vec()?); // one seed, one tensor
/// let mut gen = Generator::new(7);
/// assert_ne!(gen.next_key(), gen.next_key()); // each tensor drawn takes a new key
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Generator {
    state: u64,
}

impl Generator {
    /// A generator whose keys follow from `seed` alone: one seed gives the same tensors on
    /// every device.
    pub fn new(seed: u64) -> Generator {
        Generator { state: seed }
    }

    /// The key for the next random tensor.
    pub fn next_key(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// Appends `n` uniform values in `[lo, hi)` to `out` (allocated by the caller, so a
    /// size that does not fit is the caller's error, not an abort here).
    pub(crate) fn uniform_into(&mut self, out: &mut Vec<f32>, n: usize, lo: f32, hi: f32) {
        let key = self.next_key();
        out.extend((0..n as u64).map(|i| {
            let u = unit(key, i) as f32; // in [0, 1) with 24 bits, exact in f32
            let v = lo + (hi - lo) * u;
            // Clamp: lo + (hi - lo) * u can round up to hi.
            if v >= hi {
                hi.next_down().max(lo)
            } else {
                v
            }
        }));
    }

    /// Appends `n` uniform integers in `[lo, hi)` (`lo < hi`) to `out`.
    pub(crate) fn int_into(&mut self, out: &mut Vec<i32>, n: usize, lo: i32, hi: i32) {
        let key = self.next_key();
        let span = (i64::from(hi) - i64::from(lo)) as u64;
        out.extend((0..n as u64).map(|i| {
            let r = mix(key ^ i.wrapping_add(1).wrapping_mul(GOLDEN));
            // Multiply-shift: 64 random bits onto the span (bias below 2^-32).
            let off = ((u128::from(r) * u128::from(span)) >> 64) as i64;
            (i64::from(lo) + off) as i32
        }));
    }

    /// `n` uniform values in `[lo, hi)`.
    pub(crate) fn uniform(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        let mut out = Vec::with_capacity(n);
        self.uniform_into(&mut out, n, lo, hi);
        out
    }

    /// Appends `n` normal values with the given mean and standard deviation (Box–Muller).
    pub(crate) fn normal_into(&mut self, out: &mut Vec<f32>, n: usize, mean: f32, std: f32) {
        let key = self.next_key();
        out.extend((0..n as u64).map(|i| {
            let u1 = 1.0 - unit(key, 2 * i); // (0, 1]: ln never sees 0
            let u2 = unit(key, 2 * i + 1);
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            mean + std * z as f32
        }));
    }
}

/// A uniform value in [0, 1) with 24 random bits.
fn unit(key: u64, i: u64) -> f64 {
    (mix(key ^ i.wrapping_add(1).wrapping_mul(GOLDEN)) >> 40) as f64 / (1u64 << 24) as f64
}

/// Seed used until [`manual_seed`] is called (runs are reproducible by default).
const DEFAULT_SEED: u64 = 0x5eed;

static GLOBAL: Mutex<Generator> = Mutex::new(Generator {
    state: DEFAULT_SEED,
});

/// Seeds the global generator that `Tensor::rand` and `Tensor::randn` draw from.
///
/// ```
/// use ferrograd::{manual_seed, Device, Tensor};
/// let dev = Device::cpu();
/// manual_seed(42);
/// let a = Tensor::randn(&[3], &dev)?;
/// manual_seed(42);
/// let b = Tensor::randn(&[3], &dev)?;
/// assert_eq!(a.to_vec()?, b.to_vec()?); // the same draws again
/// # Ok::<(), ferrograd::Error>(())
/// ```
pub fn manual_seed(seed: u64) {
    *GLOBAL.lock().unwrap_or_else(|e| e.into_inner()) = Generator::new(seed);
}

/// Runs `f` with the global generator.
pub(crate) fn with_global<T>(f: impl FnOnce(&mut Generator) -> T) -> T {
    f(&mut GLOBAL.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Chris Wellons' lowbias32 integer hash; `shaders/random.wgsl` has the same function.
fn lowbias32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x7feb_352d);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846c_a68b);
    h ^= h >> 16;
    h
}

/// Whether dropout keeps element `i` under `key`: 24 hashed bits against `threshold`
/// (`p * 2^24`). Bit-for-bit the rule of `dropout_mask` in `shaders/random.wgsl`.
pub(crate) fn dropout_keeps(key: u64, i: u32, threshold: u32) -> bool {
    (lowbias32(lowbias32(i ^ key as u32) ^ (key >> 32) as u32) >> 8) >= threshold
}

/// Random tensors: the host draws the values (so every device gets the same ones for a seed)
/// and uploads them once.
impl Tensor {
    /// Uniform values in `[0, 1)` from the global generator (see [`crate::manual_seed`]).
    /// The same seed gives the same values on every device.
    pub fn rand(shape: &[usize], device: &Device) -> Result<Tensor> {
        let n = checked_numel("rand", shape)?;
        let mut data = host_buffer(device, "rand", n)?;
        with_global(|g| g.uniform_into(&mut data, n, 0.0, 1.0));
        Tensor::from_vec(data, shape, device)
    }

    /// Standard normal values from the global generator.
    pub fn randn(shape: &[usize], device: &Device) -> Result<Tensor> {
        let n = checked_numel("randn", shape)?;
        let mut data = host_buffer(device, "randn", n)?;
        with_global(|g| g.normal_into(&mut data, n, 0.0, 1.0));
        Tensor::from_vec(data, shape, device)
    }

    /// Uniform values in `[lo, hi)` from an explicit generator.
    pub fn rand_with(
        shape: &[usize],
        lo: f32,
        hi: f32,
        gen: &mut Generator,
        device: &Device,
    ) -> Result<Tensor> {
        let n = checked_numel("rand_with", shape)?;
        let mut data = host_buffer(device, "rand_with", n)?;
        gen.uniform_into(&mut data, n, lo, hi);
        Tensor::from_vec(data, shape, device)
    }

    /// Normal values with `mean` and `std` from an explicit generator.
    pub fn randn_with(
        shape: &[usize],
        mean: f32,
        std: f32,
        gen: &mut Generator,
        device: &Device,
    ) -> Result<Tensor> {
        let n = checked_numel("randn_with", shape)?;
        let mut data = host_buffer(device, "randn_with", n)?;
        gen.normal_into(&mut data, n, mean, std);
        Tensor::from_vec(data, shape, device)
    }
}
