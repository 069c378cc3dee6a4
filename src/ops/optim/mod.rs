//! The fused optimizer update as a tensor op (`shaders/optim.wgsl`, `ops/optim/cpu.rs`), for
//! `optim/`.

pub(crate) mod cpu;
pub(crate) mod gpu;
pub(crate) mod spec;

use crate::error::Result;
use crate::tensor::Tensor;
use spec::OptimSpec;

impl Tensor {
    /// One fused update of the parameter `self` with gradient `grad` and optimizer state
    /// `state` (`[kind.state_rows(), numel]`): the new parameter (dense, `self`'s shape) and the
    /// new state. All three must fit one binding on a GPU (`optim/large.rs` composes the rest).
    pub(crate) fn optim_step(
        &self,
        grad: &Tensor,
        state: &Tensor,
        spec: &OptimSpec,
    ) -> Result<(Tensor, Tensor)> {
        let (p, g, s) = (self.dense()?, grad.dense()?, state.dense()?);
        let (p, s) = p.storage().optim_step(g.storage(), s.storage(), spec)?;
        let dev = self.device();
        Ok((
            Tensor::from_storage(p, self.shape(), dev),
            Tensor::from_storage(s, state.shape(), dev),
        ))
    }
}
