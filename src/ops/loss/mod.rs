//! The fused cross-entropy kernels as tensor ops (`shaders/loss.wgsl`, `ops/loss/cpu.rs`), for
//! `nn::loss` (the forward pass, which records the op) and its backward rule.

pub(crate) mod cpu;
pub(crate) mod gpu;
pub(crate) mod spec;

use crate::error::Result;
use crate::tensor::Tensor;
use spec::CrossEntropySpec;

impl Tensor {
    /// Each row's loss `[rows]` and its logsumexp `[rows]` for logits `self` `[rows, classes]`
    /// against class indices `target` `[rows]`. Not recorded: the caller records the loss.
    pub(crate) fn cross_entropy_rows(
        &self,
        target: &Tensor,
        spec: &CrossEntropySpec,
    ) -> Result<(Tensor, Tensor)> {
        let (x, t) = (self.dense()?, target.dense()?);
        let (losses, lse) = x.storage().cross_entropy(t.storage(), spec)?;
        let dev = self.device();
        Ok((
            Tensor::from_storage(losses, &[spec.rows], dev),
            Tensor::from_storage(lse, &[spec.rows], dev),
        ))
    }

    /// The logits' gradient `[rows, classes]`, `(softmax(x) - q) * g` per row, with `g` read
    /// through its own offset and row stride (0 for a mean's broadcast gradient: no copy).
    pub(crate) fn cross_entropy_backward(
        &self,
        target: &Tensor,
        lse: &Tensor,
        g: &Tensor,
        spec: &CrossEntropySpec,
    ) -> Result<Tensor> {
        let spec = CrossEntropySpec {
            g_offset: g.layout().offset(),
            g_stride: g.strides()[0],
            ..*spec
        };
        let x = self.dense()?;
        let s = x.storage().cross_entropy_backward(
            target.storage(),
            lse.storage(),
            g.storage(),
            &spec,
        )?;
        Ok(Tensor::from_storage(s, self.shape(), self.device()))
    }
}
