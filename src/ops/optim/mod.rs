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
    /// With `skip` (a one-element `Bool` tensor), the kernel leaves both unchanged where it
    /// holds true.
    pub(crate) fn optim_step(
        &self,
        grad: &Tensor,
        state: &Tensor,
        spec: &OptimSpec,
        skip: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        let (p, g, s) = (self.dense()?, grad.dense()?, state.dense()?);
        let skip = skip.map(|k| k.dense()).transpose()?;
        let skip = skip.as_ref().map(|k| k.storage());
        let (p, s) = p
            .storage()
            .optim_step(g.storage(), s.storage(), spec, skip)?;
        let dev = self.device();
        Ok((
            Tensor::from_storage(p, self.shape(), dev),
            Tensor::from_storage(s, state.shape(), dev),
        ))
    }
}
