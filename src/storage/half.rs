//! Half operands at the door to the backends: the elementwise family takes halves on both
//! backends; every other `Storage` op widens its half operands to F32 here, runs the F32
//! kernel, and rounds the result back once (`narrow`), the same way on both backends. (The
//! CPU's gather and cat could move halves as they are; they get F32 like the GPU's, which
//! move whole words.)
//!
//! Widening a whole batch would hold an F32 copy of it, and of the result, beside the halves:
//! a half conv or pooling layer would then need more memory than an F32 one. Those ops work on
//! each image alone, so over large batches they run `in_pieces` of a few images instead.

use super::Storage;
use crate::backend::{Backend, Elementwise, Strided};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::shape::Layout;

/// `[piece, whole]`: the F32 bytes one piece of `in_pieces` may hold (its input, results and
/// scratch: the most a half per-image op holds beyond its half operands and results), and
/// the F32 bytes of a batch up to which it runs whole: splitting a small batch saves little
/// memory and costs speed (and the GPU conv's kept columns) in every training step. GPU
/// pieces are larger, as each costs a handful of dispatches (512 KiB ones made the MNIST
/// CNN's test pass 3× slower on llvmpipe), and a small share of one binding (so
/// `set_binding_limit` makes tests run small batches in pieces).
fn piece_bytes(x: &Storage) -> [usize; 2] {
    match x {
        Storage::Cpu(_) => [512 << 10, 16 << 20],
        Storage::Gpu(s) => {
            let piece = (8 << 20).min(s.context().max_binding_bytes() as usize / 16);
            [piece, 4 * piece]
        }
    }
}

impl Storage {
    /// Elements held.
    fn len(&self) -> usize {
        match self {
            Storage::Cpu(s) => s.len(),
            Storage::Gpu(s) => s.len(),
        }
    }

    /// This storage in F32 when it holds halves (all of it, exactly: views index it as
    /// before), else itself.
    pub(super) fn widen(&self) -> Result<Wide<'_>> {
        if !self.dtype().is_half() {
            return Ok(Wide::Same(self));
        }
        let spec = Strided::new("to_dtype", &[&Layout::contiguous(&[self.len()])])?;
        let cast = Elementwise::Cast(DType::F32);
        Storage::elementwise(&[self], &spec, cast, "to_dtype").map(Wide::Widened)
    }

    /// A dense F32 result rounded to `to` when that is a half (an op computed through F32 for
    /// half operands), else the result as it is.
    pub(super) fn narrow(self, to: DType) -> Result<Storage> {
        if !to.is_half() || self.dtype() != DType::F32 {
            return Ok(self);
        }
        let spec = Strided::new("to_dtype", &[&Layout::contiguous(&[self.len()])])?;
        Storage::elementwise(&[&self], &spec, Elementwise::Cast(to), "to_dtype")
    }
}

/// The half dtype an op on `values` (its float operands) computes in through F32: `Some` when
/// they promote to `F16` or `BF16` (all halves of one kind, integers aside). A half mixed with
/// `F32` goes on to the backend, which refuses it as PyTorch does (matmul, conv, ...).
pub(super) fn half_of(values: &[&Storage]) -> Option<DType> {
    let d = values.iter().map(|s| s.dtype()).reduce(DType::promote)?;
    d.is_half().then_some(d)
}

/// An operand as a kernel takes it: the storage itself, or its halves widened to F32.
pub(super) enum Wide<'a> {
    Same(&'a Storage),
    Widened(Storage),
}

impl std::ops::Deref for Wide<'_> {
    type Target = Storage;
    fn deref(&self) -> &Storage {
        match self {
            Wide::Same(s) => s,
            Wide::Widened(s) => s,
        }
    }
}

/// `inputs` widened to F32 where they hold halves, each distinct storage once (the parts of a
/// tiled copy are views of one): the widened storages, and each input's index among them.
pub(super) fn widened<'a>(inputs: &[&'a Storage]) -> Result<(Vec<Wide<'a>>, Vec<usize>)> {
    let (mut wide, mut from, mut index) = (Vec::new(), Vec::<&Storage>::new(), Vec::new());
    for &s in inputs {
        match from.iter().position(|&f| std::ptr::eq(f, s)) {
            Some(i) => index.push(i),
            None => {
                index.push(wide.len());
                from.push(s);
                wide.push(s.widen()?);
            }
        }
    }
    Ok((wide, index))
}

/// Building an output piece by piece.
impl Storage {
    /// An uninitialised storage of `len` elements of `dtype` beside `self`, for `write_at`.
    fn empty_like(&self, dtype: DType, len: usize, op: &'static str) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(s.empty_like(dtype, len, op)?)),
            Storage::Gpu(s) => Ok(Storage::Gpu(s.empty_like(dtype, len, op)?)),
        }
    }

    /// Copies `src` into `self` (made by `empty_like`) from element `at` (even for a half).
    fn write_at(&mut self, src: &Storage, at: usize, op: &'static str) -> Result<()> {
        match (self, src) {
            (Storage::Cpu(d), Storage::Cpu(s)) => d.write_at(s, at, op),
            (Storage::Gpu(d), Storage::Gpu(s)) => d.write_at(s, at, op),
            _ => Err(Error::invalid(op, "operands on different backends")),
        }
    }
}

/// Runs `f`, an op on whole images computed in F32, over the half batch `x` of `n` images of
/// `per_in` elements, a piece of images at a time: each piece widened to F32, `f(piece,
/// images)` run on it, and each of its results narrowed to its dtype in `outs` (`(dtype,
/// elements per image)`) and written into place. What is alive beyond the half operands and
/// results is one piece (with `scratch` F32 elements per image that `f` holds while it runs),
/// so the op holds less than its F32 version, not twice as much. Results are those of the
/// whole batch at once: images are computed independently.
///
/// `None` when the batch is small enough to run whole (`piece_bytes`): the caller widens it
/// (and may keep what the F32 op keeps for the backward pass, as conv's columns).
pub(super) fn in_pieces(
    x: &Storage,
    [n, per_in, scratch]: [usize; 3],
    outs: &[(DType, usize)],
    op: &'static str,
    mut f: impl FnMut(&Storage, usize) -> Result<Vec<Storage>>,
) -> Result<Option<Vec<Storage>>> {
    let per_image = per_in + scratch + outs.iter().map(|o| o.1).sum::<usize>();
    let [piece, whole] = piece_bytes(x);
    // An even count, so every piece but the last starts a half output on a whole word.
    let per = (piece / 4 / per_image.max(1) / 2 * 2).max(2);
    if per >= n || per_image.saturating_mul(n).saturating_mul(4) <= whole {
        return Ok(None);
    }
    let mut dst = (outs.iter())
        .map(|&(dtype, len)| x.empty_like(dtype, n * len, op))
        .collect::<Result<Vec<_>>>()?;
    for first in (0..n).step_by(per) {
        let count = per.min(n - first);
        let images = Strided {
            shape: vec![count * per_in],
            strides: vec![vec![1]],
            offsets: vec![first * per_in],
        };
        let piece = Storage::elementwise(&[x], &images, Elementwise::Cast(DType::F32), op)?;
        let results = f(&piece, count)?;
        if results.len() != outs.len() {
            return Err(Error::invalid(
                op,
                "internal: a piece gave the wrong results",
            ));
        }
        for ((d, r), &(dtype, len)) in dst.iter_mut().zip(results).zip(outs) {
            d.write_at(&r.narrow(dtype)?, first * len, op)?;
        }
    }
    Ok(Some(dst))
}
