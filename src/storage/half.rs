//! Half operands at the door to the backends: the elementwise family takes halves on both
//! backends; every other `Storage` op widens its half operands to F32 here, runs the F32
//! kernel, and rounds the result back once (`narrow`), the same way on both backends. (The
//! CPU's gather and cat could move halves as they are; they get F32 like the GPU's, which
//! move whole words.)

use super::Storage;
use crate::backend::{Elementwise, Strided};
use crate::dtype::DType;
use crate::error::Result;
use crate::shape::Layout;

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
