//! Copies in tiles: a GPU view one flat piece of which would read more than a binding (a
//! transposed matrix larger than one) is made dense box by box, each box one part of a `cat`.

use super::spec::Strided;
use crate::autograd::{record, BackOp};
use crate::error::{Error, Result};
use crate::ops::elementwise::op::UnaryOp;
use crate::shape::Layout;
use crate::storage::Storage;
use crate::tensor::Tensor;

impl Tensor {
    /// A contiguous copy made in tiles, for a GPU view one flat piece of which would read more
    /// than a binding (a transposed matrix larger than one: each output row reads a column
    /// across the whole source). Boxes of the index space are halved along the axis that
    /// spreads them most until each box's source and destination ranges fit a binding; each
    /// box is then one part of a `cat`, which windows it.
    pub(crate) fn copy_in_tiles(&self, op: &'static str) -> Result<Tensor> {
        let Some(ctx) = self.device().gpu_context() else {
            return self.contiguous();
        };
        if self.numel() == 0 {
            return Tensor::zeros_dtype(self.shape(), self.dtype(), self.device());
        }
        let align = (ctx.binding_align() / 4) as usize;
        let room = ((ctx.max_binding_bytes() / 4) as usize).saturating_sub(2 * align);
        let (shape, src) = (self.shape(), self.strides());
        let dst = crate::shape::contiguous_strides(shape);
        // Elements from the first to the last one a box reads with `strides`, inclusive.
        let span = |len: &[usize], strides: &[usize]| -> usize {
            1 + len
                .iter()
                .zip(strides)
                .map(|(&l, &s)| (l - 1) * s)
                .sum::<usize>()
        };
        let too_large = || Error::TooLarge {
            op,
            bytes: self.numel() as u64 * 4,
            limit: ctx.max_binding_bytes(),
            what: "max_storage_buffer_binding_size: a tile of one element reads past it",
        };
        let mut todo = vec![(vec![0; shape.len()], shape.to_vec())];
        let mut boxes = Vec::new();
        while let Some((start, len)) = todo.pop() {
            let (s_src, s_dst) = (span(&len, src), span(&len, &dst));
            if s_src <= room && s_dst <= room {
                boxes.push((start, len));
                continue;
            }
            let worse = if s_src > room { src } else { &dst[..] };
            let d = (0..len.len())
                .filter(|&d| len[d] >= 2)
                .max_by_key(|&d| (len[d] - 1) * worse[d])
                .ok_or_else(too_large)?;
            let half = len[d] / 2;
            let (mut a, mut b) = ((start.clone(), len.clone()), (start, len));
            a.1[d] = half;
            b.0[d] += half;
            b.1[d] -= half;
            todo.extend([a, b]);
        }
        let whole = Layout::contiguous(shape);
        let mut parts = Vec::with_capacity(boxes.len());
        for (start, len) in &boxes {
            let (mut to, mut from) = (whole.clone(), self.layout().clone());
            for d in 0..shape.len() {
                to = to.narrowed(op, d, start[d], len[d])?;
                from = from.narrowed(op, d, start[d], len[d])?;
            }
            parts.push((self.storage(), Strided::new(op, &[&to, &from])?));
        }
        let s = Storage::cat(&parts, self.numel()).map_err(|e| e.in_op(op))?;
        let out = Tensor::from_storage(s, shape, self.device());
        Ok(record(
            out.clone(),
            BackOp::Unary {
                x: self.clone(),
                op: UnaryOp::Identity,
                out,
            },
        ))
    }
}
