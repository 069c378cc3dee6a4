//! Shapes, strides and the rules that relate them: views (transpose, narrow, broadcast) only
//! rewrite a [`Layout`]; nothing here touches data.

use crate::error::{Error, Result};

/// The most dimensions a kernel indexes after [`collapse`] has merged what it can. A tensor may
/// have any rank; only a strided view that stays above this rank after merging is refused.
pub const MAX_KERNEL_DIMS: usize = 8;

/// How a tensor's elements sit in its storage: element `[i0, i1, ..]` lives at
/// `offset + i0 * strides[0] + i1 * strides[1] + ..`. A stride of 0 repeats (broadcast).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    shape: Vec<usize>,
    strides: Vec<usize>,
    offset: usize,
}

/// Row-major strides for `shape`.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; shape.len()];
    let mut acc = 1;
    for (s, &d) in strides.iter_mut().zip(shape).rev() {
        *s = acc;
        acc *= d;
    }
    strides
}

/// Number of elements in `shape`, or an error if it overflows `usize`.
pub fn checked_numel(op: &'static str, shape: &[usize]) -> Result<usize> {
    shape.iter().try_fold(1usize, |acc, &d| {
        acc.checked_mul(d)
            .ok_or_else(|| Error::invalid(op, format!("shape {shape:?} has too many elements")))
    })
}

/// Turns a possibly negative axis into an index in `0..rank`.
pub fn normalize_axis(op: &'static str, axis: isize, rank: usize) -> Result<usize> {
    let r = rank as isize;
    if axis < -r || axis >= r {
        return Err(Error::AxisOutOfRange { op, axis, rank });
    }
    Ok(if axis < 0 { axis + r } else { axis } as usize)
}

/// NumPy broadcasting: align from the right; each pair of sizes must match or one must be 1.
pub fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i < a.len() { a[a.len() - 1 - i] } else { 1 };
        let db = if i < b.len() { b[b.len() - 1 - i] } else { 1 };
        out[rank - 1 - i] = match (da, db) {
            _ if da == db => da,
            (1, d) | (d, 1) => d,
            _ => {
                return Err(Error::ShapeMismatch {
                    op,
                    lhs: a.to_vec(),
                    rhs: b.to_vec(),
                    why: format!(
                        "cannot be broadcast together (axis {} from the right: {da} vs {db})",
                        i + 1
                    ),
                })
            }
        };
    }
    Ok(out)
}

impl Layout {
    /// A row-major layout starting at offset 0.
    pub fn contiguous(shape: &[usize]) -> Self {
        Layout {
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            offset: 0,
        }
    }

    /// A layout from raw parts; the caller guarantees it stays inside its storage.
    pub(crate) fn from_parts(shape: Vec<usize>, strides: Vec<usize>, offset: usize) -> Self {
        debug_assert_eq!(shape.len(), strides.len());
        Layout {
            shape,
            strides,
            offset,
        }
    }

    /// The length of each axis.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// Elements to step over per step along each axis.
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }
    /// The first element's index in the storage.
    pub fn offset(&self) -> usize {
        self.offset
    }
    /// The number of axes.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the elements are densely packed in row-major order (offset may be non-zero).
    pub fn is_contiguous(&self) -> bool {
        let mut acc = 1;
        for (&d, &s) in self.shape.iter().zip(&self.strides).rev() {
            if d != 1 && s != acc {
                return false;
            }
            acc *= d;
        }
        true
    }

    /// Same elements, new shape; only valid for contiguous layouts (the caller copies otherwise).
    pub fn reshaped(&self, shape: &[usize]) -> Layout {
        debug_assert!(self.is_contiguous());
        Layout {
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            offset: self.offset,
        }
    }

    /// Reorders the axes: axis `i` of the result is axis `perm[i]` of `self`.
    pub fn permuted(&self, op: &'static str, perm: &[usize]) -> Result<Layout> {
        let rank = self.rank();
        let mut seen = vec![false; rank];
        if perm.len() != rank
            || perm
                .iter()
                .any(|&p| p >= rank || std::mem::replace(&mut seen[p], true))
        {
            return Err(Error::invalid(
                op,
                format!(
                    "{perm:?} is not a permutation of the {rank} axes of shape {:?}",
                    self.shape
                ),
            ));
        }
        Ok(Layout {
            shape: perm.iter().map(|&p| self.shape[p]).collect(),
            strides: perm.iter().map(|&p| self.strides[p]).collect(),
            offset: self.offset,
        })
    }

    /// Keeps `len` elements of `axis` starting at `start`.
    pub fn narrowed(
        &self,
        op: &'static str,
        axis: usize,
        start: usize,
        len: usize,
    ) -> Result<Layout> {
        let size = self.shape[axis];
        if start.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::invalid(
                op,
                format!("range {start}..{} is out of bounds for axis {axis} of size {size} (shape {:?})", start.saturating_add(len), self.shape),
            ));
        }
        let mut out = self.clone();
        out.shape[axis] = len;
        if len > 0 {
            out.offset += start * self.strides[axis];
        }
        Ok(out)
    }

    /// Repeats size-1 axes (and prepends axes) to reach `shape`, with stride 0 for repeats.
    pub fn broadcast_to(&self, op: &'static str, shape: &[usize]) -> Result<Layout> {
        let fail = || Error::ShapeMismatch {
            op,
            lhs: self.shape.clone(),
            rhs: shape.to_vec(),
            why: "cannot be broadcast (each axis must match or be 1)".into(),
        };
        if shape.len() < self.rank() {
            return Err(fail());
        }
        checked_numel(op, shape)?;
        let extra = shape.len() - self.rank();
        let mut strides = vec![0; shape.len()];
        for (i, &d) in shape.iter().enumerate().skip(extra) {
            let (sd, ss) = (self.shape[i - extra], self.strides[i - extra]);
            strides[i] = match sd {
                _ if sd == d => ss,
                1 => 0,
                _ => return Err(fail()),
            };
        }
        Ok(Layout {
            shape: shape.to_vec(),
            strides,
            offset: self.offset,
        })
    }

    /// Inserts a size-1 axis at `axis` (in `0..=rank`).
    pub fn unsqueezed(&self, axis: usize) -> Layout {
        let mut out = self.clone();
        let stride = self.strides.get(axis).map_or(1, |&s| s * self.shape[axis]);
        out.shape.insert(axis, 1);
        out.strides.insert(axis, stride);
        out
    }

    /// Removes `axis`, which must have size 1.
    pub fn squeezed(&self, axis: usize) -> Layout {
        let mut out = self.clone();
        out.shape.remove(axis);
        out.strides.remove(axis);
        out
    }
}

/// A strided view of up to [`MAX_KERNEL_DIMS`] axes shared by several operands: the form the
/// elementwise kernels (CPU and GPU) index with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collapsed {
    /// The merged axes' lengths.
    pub shape: Vec<usize>,
    /// One stride list per operand, each as long as `shape`.
    pub strides: Vec<Vec<usize>>,
}

/// Whether layouts of one shape, walked together, collapse to at most [`MAX_KERNEL_DIMS`]
/// axes. Ops copy operands that do not (`Tensor::contiguous` splits a view with more axes
/// into parts that do), so any rank works.
pub(crate) fn fits_kernel(layouts: &[&Layout]) -> bool {
    let strides: Vec<&[usize]> = layouts.iter().map(|l| l.strides()).collect();
    merge_axes(layouts[0].shape(), &strides).shape.len() <= MAX_KERNEL_DIMS
}

/// Merges adjacent axes that every operand walks as one (stride of the outer axis equals
/// size × stride of the inner one) and drops size-1 axes. A contiguous tensor becomes one axis.
/// All `strides` lists must be as long as `shape`.
pub fn collapse(op: &'static str, shape: &[usize], strides: &[&[usize]]) -> Result<Collapsed> {
    let out = merge_axes(shape, strides);
    if out.shape.len() > MAX_KERNEL_DIMS {
        return Err(Error::invalid(
            op,
            format!(
                "a strided view of shape {shape:?} needs {} kernel axes (at most {MAX_KERNEL_DIMS}); call .contiguous() first",
                out.shape.len()
            ),
        ));
    }
    Ok(out)
}

fn merge_axes(shape: &[usize], strides: &[&[usize]]) -> Collapsed {
    let mut out_shape: Vec<usize> = Vec::new();
    let mut out_strides: Vec<Vec<usize>> = vec![Vec::new(); strides.len()];
    for (i, &d) in shape.iter().enumerate() {
        if d == 1 {
            continue;
        }
        let mergeable = !out_shape.is_empty()
            && strides.iter().zip(&out_strides).all(|(s, o)| {
                let last = *o.last().unwrap_or(&0);
                last == s[i] * d
            });
        if mergeable {
            *out_shape.last_mut().unwrap_or(&mut 0) *= d;
            for (s, o) in strides.iter().zip(out_strides.iter_mut()) {
                if let Some(l) = o.last_mut() {
                    *l = s[i];
                }
            }
        } else {
            out_shape.push(d);
            for (s, o) in strides.iter().zip(out_strides.iter_mut()) {
                o.push(s[i]);
            }
        }
    }
    Collapsed {
        shape: out_shape,
        strides: out_strides,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapse_merges_contiguous_axes() {
        let c = collapse("t", &[2, 3, 4], &[&[12, 4, 1]]).unwrap();
        assert_eq!(c.shape, vec![24]);
        assert_eq!(c.strides, vec![vec![1]]);
        // A transposed operand keeps two axes.
        let c = collapse("t", &[3, 4], &[&[4, 1], &[1, 3]]).unwrap();
        assert_eq!(c.shape, vec![3, 4]);
    }

    #[test]
    fn broadcast_rules() {
        assert_eq!(broadcast_shapes("t", &[3, 1], &[4]).unwrap(), vec![3, 4]);
        assert!(broadcast_shapes("t", &[3, 2], &[4]).is_err());
        let l = Layout::contiguous(&[3, 1])
            .broadcast_to("t", &[2, 3, 4])
            .unwrap();
        assert_eq!(l.strides(), &[0, 1, 0]);
    }
}
