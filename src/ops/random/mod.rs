//! Dropout: a mask of `0` or `1 / (1 - p)` from a hash of (key, element), so the CPU and the
//! GPU draw the same mask for the same seed (`random.rs`), multiplied in.

pub(crate) mod cpu;
pub(crate) mod gpu;

use crate::error::{Error, Result};
use crate::random::{with_global, Generator};
use crate::storage::Storage;
use crate::tensor::Tensor;

fn check_probability(p: f32) -> Result<()> {
    match (0.0..=1.0).contains(&p) {
        true => Ok(()),
        false => Err(Error::invalid(
            "dropout",
            format!("probability {p} must be in [0, 1]"),
        )),
    }
}

impl Tensor {
    /// Dropout: in training, zeroes each element with probability `p` and scales the rest by
    /// `1 / (1 - p)`; otherwise returns the input. The mask comes from the global generator
    /// (see [`crate::manual_seed`]) and is the same on every device for the same seed.
    pub fn dropout(&self, p: f32, training: bool) -> Result<Tensor> {
        check_probability(p)?;
        if !training || p == 0.0 {
            return Ok(self.clone()); // no key drawn: the generator is left as it was
        }
        let key = with_global(|g| g.next_key());
        self.dropout_key(p, key)
    }

    /// [`Tensor::dropout`] drawing the mask from `gen`.
    pub fn dropout_with(&self, p: f32, training: bool, gen: &mut Generator) -> Result<Tensor> {
        check_probability(p)?;
        if !training || p == 0.0 {
            return Ok(self.clone());
        }
        self.dropout_key(p, gen.next_key())
    }

    fn dropout_key(&self, p: f32, key: u64) -> Result<Tensor> {
        let op = "dropout";
        let n = self.numel();
        if u32::try_from(n).is_err() {
            return Err(Error::invalid(
                op,
                format!("{n} elements exceed the 2^32 a mask can index"),
            ));
        }
        // Keep where 24 hashed bits >= p * 2^24, so p = 1 drops everything.
        let threshold = (f64::from(p) * f64::from(1u32 << 24)).round() as u32;
        let scale = if p < 1.0 { 1.0 / (1.0 - p) } else { 0.0 };
        let mask = Storage::dropout_mask(self.device(), n, key, threshold, scale)?;
        let mask = Tensor::from_storage(mask, self.shape(), self.device());
        // d/dx (x * mask) = mask: the mask is a constant, so autograd needs nothing more. A
        // half input is multiplied in f32 and rounded once, back to its dtype.
        match self.dtype().is_half() {
            true => self.mul(&mask)?.to_dtype(self.dtype()),
            false => self.mul(&mask),
        }
    }
}
