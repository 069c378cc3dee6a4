//! Indexing and joining: `index_select`, `gather` (and `nll` through it), `one_hot`, `cat` and
//! `stack`. Indices are `I32` tensors (any other dtype is an error naming it); a bad one is
//! an error on the CPU and a fault charged to the output on the GPU (`gpu/fault.rs`). The data
//! may be any dtype: it is moved, not computed on.

pub(crate) mod cpu;
pub(crate) mod gpu;
pub(crate) mod pad;
pub(crate) mod spec;
pub(crate) mod upsample;

use super::same_device;
use crate::autograd::pad;
use crate::autograd::{record, BackOp};
use crate::dtype::require_index;
use crate::error::{Error, Result};
use crate::ops::elementwise::spec::Strided;
use crate::shape::{fits_kernel, normalize_axis, Layout};
use crate::storage::Storage;
use crate::tensor::Tensor;
use spec::GatherSpec;

impl Tensor {
    // ---- indexing and joining ----

    /// Picks entries `indices` (1-D, `I32`) along `axis`.
    ///
    /// # Errors
    /// `IndexOutOfRange` for an index outside `0..size` (on the GPU: when the output, or anything computed from it, is read back).
    pub fn index_select(&self, axis: isize, indices: &Tensor) -> Result<Tensor> {
        same_device("index_select", &[self, indices])?;
        require_index("index_select", indices.dtype())?;
        let ax = normalize_axis("index_select", axis, self.rank())?;
        if indices.rank() != 1 {
            return Err(Error::invalid(
                "index_select",
                format!("indices must be 1-D, found shape {:?}", indices.shape()),
            ));
        }
        let mut out_shape = self.shape().to_vec();
        out_shape[ax] = indices.numel();
        // The index, seen over the output shape: it moves only along `axis`.
        let mut idx_strides = vec![0; out_shape.len()];
        idx_strides[ax] = indices.strides()[0];
        let idx = Layout::from_parts(out_shape.clone(), idx_strides, indices.layout().offset());
        let out = self.gather_impl("index_select", ax, indices, &idx, out_shape)?;
        Ok(record(
            out,
            BackOp::IndexSelect {
                x: self.clone(),
                axis: ax,
                index: indices.clone(),
            },
        ))
    }

    /// `out[i][j] = self[index[i][j]][j]` for `axis = 0` (and likewise for other axes), as
    /// `torch.gather`: `index` (`I32`) has the same rank, and no larger size off `axis`.
    pub fn gather(&self, axis: isize, index: &Tensor) -> Result<Tensor> {
        self.gather_as("gather", axis, index)
    }

    /// [`Tensor::gather`] reporting its errors (on the GPU, its out-of-range indices too) as
    /// `op`, for ops built on it (`nll`).
    pub(crate) fn gather_as(
        &self,
        op: &'static str,
        axis: isize,
        index: &Tensor,
    ) -> Result<Tensor> {
        same_device(op, &[self, index])?;
        let ax = normalize_axis(op, axis, self.rank())?;
        let fits = index.rank() == self.rank()
            && index
                .shape()
                .iter()
                .zip(self.shape())
                .enumerate()
                .all(|(d, (&i, &s))| d == ax || i <= s);
        if !fits {
            return Err(Error::ShapeMismatch {
                op,
                lhs: self.shape().to_vec(),
                rhs: index.shape().to_vec(),
                why: format!(
                    "do not fit: the index needs the same rank and no larger size off axis {ax}"
                ),
            });
        }
        require_index(op, index.dtype())?;
        let out_shape = index.shape().to_vec();
        let dense;
        let index = match fits_kernel(&[index.layout()]) {
            true => index,
            false => {
                dense = index.contiguous()?;
                &dense
            }
        };
        let out = self.gather_impl(op, ax, index, index.layout(), out_shape)?;
        Ok(record(
            out,
            BackOp::Gather {
                x: self.clone(),
                axis: ax,
                index: index.clone(),
            },
        ))
    }

    fn gather_impl(
        &self,
        op: &'static str,
        ax: usize,
        index: &Tensor,
        idx: &Layout,
        out_shape: Vec<usize>,
    ) -> Result<Tensor> {
        // The input, seen over the output shape with its `axis` stride zeroed: the kernel
        // adds `index * axis_stride`.
        let mut strides = self.strides().to_vec();
        let axis_stride = strides[ax];
        strides[ax] = 0;
        let input = Layout::from_parts(out_shape.clone(), strides, self.layout().offset());
        if !fits_kernel(&[&input, idx]) && !self.is_contiguous() {
            // A dense input merges all but `axis`; the index (dense, or `index_select`'s
            // one-axis view) then merges with it.
            return self
                .contiguous()?
                .gather_impl(op, ax, index, idx, out_shape);
        }
        let spec = GatherSpec {
            strided: Strided::new(op, &[&input, idx])?,
            axis: ax,
            axis_size: self.shape()[ax],
            axis_stride,
        };
        let s = match self.storage().gather(index.storage(), &spec, op) {
            Err(Error::TooLarge { what, .. })
                if what.contains("any row of it may be read") && !self.is_contiguous() =>
            {
                // A strided input's rows may each spread over all of it: dense, they are
                // compact, and parts of them fit.
                let dense = crate::autograd::untracked(|| self.contiguous())?;
                return dense.gather_impl(op, ax, index, idx, out_shape);
            }
            Err(Error::TooLarge { what, .. })
                if what.contains("any row of it may be read") && self.parts_help(ax) =>
            {
                return crate::autograd::untracked(|| self.gather_in_parts(op, ax, index));
            }
            r => r?,
        };
        Ok(Tensor::from_storage(s, &out_shape, self.device()))
    }

    /// A gather from a GPU input larger than one binding, whose rows any index may read: the
    /// input is split along `axis` into parts that fit, each part answers the indices that
    /// fall in it (the others clamped into it and masked out), and a gather over a line of
    /// zeros checks every index, so a bad one still faults, charged to the result.
    // self [.., size, ..] along ax; index [m] (index_select) or the output's shape (gather)
    /// Whether parts of whole rows along `ax` would each fit half a binding (and be fewer than
    /// the rows): else splitting cannot help.
    fn parts_help(&self, ax: usize) -> bool {
        let size = self.shape()[ax];
        let per_row = self.numel() / size.max(1);
        let room = self
            .device()
            .gpu_context()
            .map_or(0, |c| (c.max_binding_bytes() / 4 / 2) as usize);
        size > 1 && per_row <= room && room / per_row.max(1) < size
    }

    fn gather_in_parts(&self, op: &'static str, ax: usize, index: &Tensor) -> Result<Tensor> {
        let select = op == "index_select";
        let size = self.shape()[ax];
        let per_row = self.numel() / size.max(1);
        let room = self
            .device()
            .gpu_context()
            .map_or(usize::MAX, |c| (c.max_binding_bytes() / 4 / 2) as usize);
        let rows = (room / per_row.max(1)).max(1);
        // A mask or check over the index, shaped to broadcast against the output.
        let spread = |t: Tensor| -> Result<Tensor> {
            match select {
                true => {
                    let mut shape = vec![1; self.rank()];
                    shape[ax] = t.numel();
                    t.reshape(&shape)
                }
                false => Ok(t),
            }
        };
        let line = Tensor::zeros_dtype(&[size], self.dtype(), self.device())?;
        let mut out = spread(
            line.gather_as(op, 0, &index.flatten()?)?
                .reshape(index.shape())?,
        )?;
        for start in (0..size).step_by(rows) {
            let count = rows.min(size - start);
            let local = index.sub_scalar(start as f32)?;
            let clamped = local.clamp(0.0, (count - 1) as f32)?;
            let part = self.narrow(ax as isize, start, count)?;
            let got = match select {
                true => part.index_select(ax as isize, &clamped)?,
                false => part.gather(ax as isize, &clamped)?,
            };
            let inside = local
                .ge_scalar(0.0)?
                .logical_and(&local.lt_scalar(count as f32)?)?;
            let inside = spread(inside)?;
            out = Tensor::where_(&inside, &got, &out)?;
        }
        Ok(out)
    }

    /// One-hot encoding of `I32` class indices: shape `[..] -> [.., classes]`, `I32` (as
    /// PyTorch's; `.to_dtype(DType::F32)` for a float target).
    pub fn one_hot(&self, classes: usize) -> Result<Tensor> {
        if classes == 0 {
            return Err(Error::invalid("one_hot", "classes must be at least 1"));
        }
        require_index("one_hot", self.dtype())?;
        let shape: Vec<usize> = self.shape().iter().copied().chain([classes]).collect();
        let numel = crate::shape::checked_numel("one_hot", &shape)?;
        crate::tensor::check_fits(self.device(), "one_hot", numel)?;
        if !fits_kernel(&[self.layout()]) {
            return self.contiguous()?.one_hot(classes);
        }
        let spec = Strided::new("one_hot", &[self.layout()])?;
        let s = self.storage().one_hot(&spec, classes)?;
        Ok(Tensor::from_storage(s, &shape, self.device()))
    }

    /// Joins tensors along an existing `axis`; all other axes must match.
    pub fn cat(tensors: &[&Tensor], axis: isize) -> Result<Tensor> {
        let first = tensors
            .first()
            .ok_or_else(|| Error::invalid("cat", "needs at least one tensor"))?;
        same_device("cat", tensors)?;
        // Parts of several dtypes join in the promoted one (as torch.cat).
        let dtype = tensors
            .iter()
            .fold(first.dtype(), |d, t| d.promote(t.dtype()));
        if tensors.iter().any(|t| t.dtype() != dtype) {
            let parts: Vec<Tensor> = tensors
                .iter()
                .map(|t| t.to_dtype(dtype))
                .collect::<Result<_>>()?;
            return Tensor::cat(&parts.iter().collect::<Vec<_>>(), axis);
        }
        let ax = normalize_axis("cat", axis, first.rank())?;
        let mut out_shape = first.shape().to_vec();
        out_shape[ax] = 0;
        for t in tensors {
            let agrees = t.rank() == first.rank()
                && t.shape()
                    .iter()
                    .zip(first.shape())
                    .enumerate()
                    .all(|(d, (a, b))| d == ax || a == b);
            if !agrees {
                return Err(Error::ShapeMismatch {
                    op: "cat",
                    lhs: first.shape().to_vec(),
                    rhs: t.shape().to_vec(),
                    why: format!("differ off the joined axis {ax}"),
                });
            }
            out_shape[ax] += t.shape()[ax];
        }
        let dst = Layout::contiguous(&out_shape);
        let mut regions = Vec::with_capacity(tensors.len());
        let mut sources = Vec::with_capacity(tensors.len());
        let mut start = 0;
        for t in tensors.iter().filter(|t| t.numel() > 0) {
            let region = dst.narrowed("cat", ax, start, t.shape()[ax])?;
            start += t.shape()[ax];
            // A part with more axes than the copy kernel walks is made dense first.
            sources.push(match fits_kernel(&[&region, t.layout()]) {
                true => (*t).clone(),
                false => t.contiguous()?,
            });
            regions.push(region);
        }
        let numel = out_shape.iter().product();
        let copy = |sources: &[Tensor]| -> Result<Storage> {
            let mut parts = Vec::with_capacity(sources.len());
            for (t, region) in sources.iter().zip(&regions) {
                parts.push((t.storage(), Strided::new("cat", &[region, t.layout()])?));
            }
            Storage::cat(&parts, numel)
        };
        let out = match sources.is_empty() {
            true => Tensor::zeros_dtype(&out_shape, dtype, first.device())?,
            false => {
                let s = match copy(&sources) {
                    // A GPU view one flat piece of which reads past a binding: made dense in
                    // tiles first.
                    Err(e) if e.needs_tiles() => {
                        let dense = crate::autograd::untracked(|| {
                            sources
                                .iter()
                                .map(|t| t.copy_in_tiles("cat"))
                                .collect::<Result<Vec<_>>>()
                        })?;
                        copy(&dense)?
                    }
                    r => r?,
                };
                Tensor::from_storage(s, &out_shape, first.device())
            }
        };
        Ok(record(
            out,
            BackOp::Cat {
                parts: tensors.iter().map(|t| (*t).clone()).collect(),
                axis: ax,
            },
        ))
    }

    /// Joins same-shaped tensors along a new `axis`.
    pub fn stack(tensors: &[&Tensor], axis: isize) -> Result<Tensor> {
        let first = tensors
            .first()
            .ok_or_else(|| Error::invalid("stack", "needs at least one tensor"))?;
        if let Some(t) = tensors.iter().find(|t| t.shape() != first.shape()) {
            return Err(Error::ShapeMismatch {
                op: "stack",
                lhs: first.shape().to_vec(),
                rhs: t.shape().to_vec(),
                why: "differ (stack needs equal shapes)".into(),
            });
        }
        let ax = normalize_axis("stack", axis, first.rank() + 1)? as isize;
        let parts: Vec<Tensor> = tensors
            .iter()
            .map(|t| t.unsqueeze(ax))
            .collect::<Result<_>>()?;
        Tensor::cat(&parts.iter().collect::<Vec<_>>(), ax).map_err(|e| e.in_op("stack"))
    }
}

// ---- gradients (called by `autograd/rules.rs`) ----

/// `out = x.index_select(axis, idx)`, x `[pre, X, post]`, idx `[L]`, g `[pre, L, post]`:
/// `dx[p, i, q] = sum_l [idx_l = i] g[p, l, q]`, i.e. `one_hot(idx)ᵀ [X, L] · g`. A matmul, so
/// repeated indices add up deterministically on both backends.
pub(crate) fn index_select_grad(
    x: &Tensor,
    axis: usize,
    idx: &Tensor,
    g: &Tensor,
) -> Result<Tensor> {
    let size = x.shape()[axis];
    let pre: usize = x.shape()[..axis].iter().product();
    let post: usize = x.shape()[axis + 1..].iter().product();
    let onehot_t = idx.one_hot(size)?.to_dtype(g.dtype())?.t()?; // [X, L]
    let g3 = g.reshape(&[pre, idx.numel(), post])?;
    onehot_t.matmul(&g3)?.reshape(x.shape())
}

/// `out = x.gather(axis, idx)` (idx and out of one shape I, no larger than x off `axis`):
/// `dx[.., i, ..] = sum_r [idx[.., r, ..] = i] g[.., r, ..]` over the region I covers, zero
/// elsewhere. Built as `(one_hot(idx) * g)` summed over `axis`, then the class axis moved
/// into place.
pub(crate) fn gather_grad(x: &Tensor, axis: usize, idx: &Tensor, g: &Tensor) -> Result<Tensor> {
    let r = x.rank();
    let size = x.shape()[axis];
    // [I.., X] summed over `axis` -> [I without axis.., X]
    let hits = idx
        .one_hot(size)?
        .to_dtype(g.dtype())?
        .mul(&g.unsqueeze(-1)?)?
        .sum(axis as isize, false)?;
    // move X (last) to `axis`
    let perm: Vec<usize> = (0..axis).chain([r - 1]).chain(axis..r - 1).collect();
    let mut dx = hits.permute(&perm)?;
    // pad the axes where the index was smaller than x
    for d in 0..r {
        if dx.shape()[d] < x.shape()[d] {
            let mut full = dx.shape().to_vec();
            full[d] = x.shape()[d];
            dx = pad(&dx, &full, d, 0)?;
        }
    }
    Ok(dx)
}
