//! `linear`: `act(x · wᵀ + b)` as ONE matmul whose epilogue adds the bias and applies the
//! activation as each output is stored (`MatmulSpec::bias`/`act`; `matmul_common.wgsl` on the
//! GPU, `cpu/matmul.rs` on the CPU). Unfused, a Linear–ReLU pair is three passes over the
//! `[batch, out]` activations (matmul, bias add, ReLU) and, on the GPU, three dispatches; fused
//! it is one. `nn::Sequential` fuses a Linear (or Conv2d) followed by ReLU, sigmoid or tanh by
//! itself; see `Module::forward_activated`.

use super::same_device;
use crate::autograd::{record, untracked, BackOp};
use crate::error::{Error, Result};
use crate::op::Activation;
use crate::tensor::Tensor;

impl Tensor {
    /// `act(self · weightᵀ + bias)`, PyTorch's `F.linear` followed by an activation, computed
    /// by one matmul kernel. `self` is `[..., in]` (1-D works too), `weight` `[out, in]`,
    /// `bias` `[out]`; the result is `[..., out]`. Gradients flow to all three.
    ///
    /// ```
    /// use ferrograd::{Activation, Device, Tensor};
    /// let dev = Device::cpu();
    /// let x = Tensor::from_vec(vec![1.0, -2.0], &[1, 2], &dev)?;
    /// let w = Tensor::from_vec(vec![1.0, 1.0, 0.0, 1.0], &[2, 2], &dev)?;
    /// let b = Tensor::from_vec(vec![0.5, 0.5], &[2], &dev)?;
    /// let y = x.linear(&w, Some(&b), Activation::Relu)?; // relu([-1 + 0.5, -2 + 0.5])
    /// assert_eq!(y.to_vec()?, [0.0, 0.0]);
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub fn linear(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        act: Activation,
    ) -> Result<Tensor> {
        let mismatch = |rhs: &Tensor, why: String| Error::ShapeMismatch {
            op: "linear",
            lhs: self.shape().to_vec(),
            rhs: rhs.shape().to_vec(),
            why,
        };
        let operands: Vec<&Tensor> = [self, weight].into_iter().chain(bias).collect();
        same_device("linear", &operands)?;
        if weight.rank() != 2 {
            return Err(mismatch(
                weight,
                "do not fit: the weight must be 2-D, [out_features, in_features]".into(),
            ));
        }
        let (outputs, inputs) = (weight.shape()[0], weight.shape()[1]);
        if self.shape().last() != Some(&inputs) {
            return Err(mismatch(
                weight,
                format!("do not fit: the input needs {inputs} features on its last axis"),
            ));
        }
        if let Some(b) = bias {
            if b.shape() != [outputs] {
                return Err(mismatch(
                    b,
                    format!("do not fit: the bias must be [{outputs}], one value per output"),
                ));
            }
        }
        if self.rank() == 1 {
            let y = self.unsqueeze(0)?.matmul_fused(&weight.t()?, bias, act)?;
            return y.squeeze(0);
        }
        self.matmul_fused(&weight.t()?, bias, act)
    }

    /// `act(self · rhs + bias)` in one kernel, recorded as one autograd op. Both operands are
    /// at least 2-D and `bias` broadcasts to the `[..., m, n]` result (the caller checks).
    pub(crate) fn matmul_fused(
        &self,
        rhs: &Tensor,
        bias: Option<&Tensor>,
        act: Activation,
    ) -> Result<Tensor> {
        let out = untracked(|| self.matmul_epilogue(rhs, bias, act))?;
        Ok(record(
            out.clone(),
            BackOp::MatmulFused {
                a: self.clone(),
                b: rhs.clone(),
                bias: bias.cloned(),
                act,
                out,
            },
        ))
    }
}

impl Activation {
    /// The activation as its own op (`Identity` returns `x` itself).
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Identity => Ok(x.clone()),
            Activation::Relu => x.relu(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Tanh => x.tanh(),
        }
    }
}
