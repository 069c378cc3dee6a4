//! Matrix products: `matmul` (batched, broadcast, vectors), and `linear`: `act(x · wᵀ + b)` as ONE matmul whose epilogue adds the bias and applies the
//! activation as each output is stored (`MatmulSpec::bias`/`act`; `matmul_common.wgsl` on the
//! GPU, `ops/matmul/cpu.rs` on the CPU). Unfused, a Linear–ReLU pair is three passes over the
//! `[batch, out]` activations (matmul, bias add, ReLU) and, on the GPU, three dispatches; fused
//! it is one. `nn::Sequential` fuses a Linear (or Conv2d) followed by ReLU, sigmoid or tanh by
//! itself; see `Module::forward_activated`.

pub(crate) mod cpu;
pub(crate) mod gpu;
pub(crate) mod spec;

use super::same_device;
use crate::autograd::sum_to;
use crate::autograd::{record, untracked, BackOp};
use crate::error::{Error, Result};
use crate::ops::matmul::spec::Activation;
use crate::shape::{broadcast_shapes, collapse};
use crate::tensor::Tensor;
use spec::{MatOperand, MatmulSpec};

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

impl Tensor {
    /// Matrix product. 2-D: `[m, k] · [k, n] -> [m, n]`. Batched: leading axes broadcast
    /// (`[b, m, k] · [k, n] -> [b, m, n]`). A 1-D operand is a vector (its axis is removed from
    /// the result), as in NumPy. Transposed views are multiplied without a copy.
    ///
    /// ```
    /// use ferrograd::{Device, Tensor};
    /// let dev = Device::cpu();
    /// let a = Tensor::new([[1.0, 2.0], [3.0, 4.0]], &dev)?;
    /// assert_eq!(a.matmul(&a.t()?)?.to_vec()?, vec![5.0, 11.0, 11.0, 25.0]);
    /// let v = Tensor::new([1.0, 1.0], &dev)?;
    /// assert_eq!(a.matmul(&v)?.to_vec()?, vec![3.0, 7.0]); // [2, 2] · [2] -> [2]
    /// let batch = Tensor::ones(&[5, 3, 2], &dev)?;
    /// assert_eq!(batch.matmul(&a)?.shape(), &[5, 3, 2]); // `a` broadcasts over the batch
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        let out = untracked(|| self.matmul_impl(rhs))?;
        Ok(record(
            out,
            BackOp::Matmul {
                a: self.clone(),
                b: rhs.clone(),
            },
        ))
    }

    fn matmul_impl(&self, rhs: &Tensor) -> Result<Tensor> {
        self.matmul_epilogue(rhs, None, Activation::Identity)
    }

    /// `act(self · rhs + bias)` in one kernel, untracked: the matmul above with the fused
    /// epilogue. `bias` must broadcast to the result's shape; `linear` checks it for users.
    pub(crate) fn matmul_epilogue(
        &self,
        rhs: &Tensor,
        bias: Option<&Tensor>,
        act: Activation,
    ) -> Result<Tensor> {
        let operands: Vec<&Tensor> = [self, rhs].into_iter().chain(bias).collect();
        same_device("matmul", &operands)?;
        let mismatch = |why: String| Error::ShapeMismatch {
            op: "matmul",
            lhs: self.shape().to_vec(),
            rhs: rhs.shape().to_vec(),
            why,
        };
        if self.rank() == 0 || rhs.rank() == 0 {
            return Err(mismatch(
                "cannot be multiplied (matmul needs at least 1-D operands)".into(),
            ));
        }
        let a = if self.rank() == 1 {
            self.unsqueeze(0)?
        } else {
            self.clone()
        };
        let b = if rhs.rank() == 1 {
            rhs.unsqueeze(1)?
        } else {
            rhs.clone()
        };
        let (ra, rb) = (a.rank(), b.rank());
        let (m, k) = (a.shape()[ra - 2], a.shape()[ra - 1]);
        let (k2, n) = (b.shape()[rb - 2], b.shape()[rb - 1]);
        if k != k2 {
            return Err(mismatch(format!(
                "cannot be multiplied (inner dimensions {k} and {k2} differ)"
            )));
        }
        let batch_shape = broadcast_shapes("matmul", &a.shape()[..ra - 2], &b.shape()[..rb - 2])
            .map_err(|_| {
                mismatch(format!(
                    "have batch dimensions {:?} and {:?} that do not broadcast",
                    &a.shape()[..ra - 2],
                    &b.shape()[..rb - 2]
                ))
            })?;
        let batch: usize = batch_shape.iter().product();
        let operand = |t: &Tensor, rows: usize, cols: usize| -> Result<(Tensor, MatOperand)> {
            let full: Vec<usize> = batch_shape.iter().copied().chain([rows, cols]).collect();
            let mut t = t.broadcast_to(&full)?;
            let nb = batch_shape.len();
            // The batch axes must flatten to one stride; otherwise copy (rare: odd views).
            if collapse("matmul", &batch_shape, &[&t.strides()[..nb]])?
                .shape
                .len()
                > 1
            {
                t = t.contiguous()?;
            }
            let c = collapse("matmul", &batch_shape, &[&t.strides()[..nb]])?;
            let op = MatOperand {
                offset: t.layout().offset(),
                batch: c.strides[0].first().copied().unwrap_or(0),
                row: t.strides()[nb],
                col: t.strides()[nb + 1],
            };
            Ok((t, op))
        };
        let (ta, oa) = operand(&a, m, k)?;
        let (tb, ob) = operand(&b, k, n)?;
        // The bias as a third operand over the [batch, m, n] output, read through its strides.
        let (tc, oc) = match bias {
            Some(c) => {
                let (t, o) = operand(c, m, n)?;
                (Some(t), Some(o))
            }
            None => (None, None),
        };
        let spec = MatmulSpec {
            batch,
            m,
            n,
            k,
            a: oa,
            b: ob,
            bias: oc,
            act,
        };
        let s = ta
            .storage()
            .matmul(tb.storage(), tc.as_ref().map(|t| t.storage()), &spec)?;
        let mut shape = batch_shape;
        if self.rank() > 1 {
            shape.push(m);
        }
        if rhs.rank() > 1 {
            shape.push(n);
        }
        Ok(Tensor::from_storage(s, &shape, self.device()))
    }
}

// ---- gradients (called by `autograd/rules.rs`) ----

/// `out = a · b` (batched, broadcast, vectors allowed): `da = g · bᵀ`, `db = aᵀ · g`, summed
/// over any batch axes the operand was broadcast along; `None` for an operand that does not
/// track gradients.
pub(crate) fn matmul_grad(
    a: &Tensor,
    b: &Tensor,
    g: &Tensor,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    // Work on the ≥2-D form: a vector `a` is a [1, k] row, a vector `b` a [k, 1] column, and
    // `g` gets the size-1 axes the product dropped.
    let a2 = if a.rank() == 1 {
        a.unsqueeze(0)?
    } else {
        a.clone()
    };
    let b2 = if b.rank() == 1 {
        b.unsqueeze(1)?
    } else {
        b.clone()
    };
    let mut g2 = g.clone();
    if b.rank() == 1 {
        g2 = g2.unsqueeze(-1)?;
    }
    if a.rank() == 1 {
        g2 = g2.unsqueeze(-2)?;
    }
    // Only the gradients some input needs: a Linear layer's input is often the data, and
    // its gradient a product as large as the weight's.
    let ga = match a.tracks_grad() {
        true => Some(sum_to(&g2.matmul(&b2.t()?)?, a2.shape())?.reshape(a.shape())?),
        false => None,
    };
    if !b.tracks_grad() {
        return Ok((ga, None));
    }
    let gb = if b2.rank() == 2 && (a2.rank() > 2 || transposed(&b2)) {
        // A shared weight: fold the batch into the rows, one [k, M] · [M, n] product instead
        // of a [batch, k, n] temporary summed afterwards.
        let (k, n) = (b2.shape()[0], b2.shape()[1]);
        let rows = a2.numel() / k.max(1);
        let af = a2.reshape(&[rows, k])?;
        let gf = g2.reshape(&[rows, n])?;
        if transposed(&b2) {
            // b is Wᵀ, a view of a dense [n, k] weight (Linear): compute (gᵀ·a)ᵀ so that the
            // weight's gradient comes out dense in the weight's own layout and the optimizer
            // reads it as is, instead of copying a transposed [k, n] result every step.
            gf.t()?.matmul(&af)?.t()?
        } else {
            af.t()?.matmul(&gf)?
        }
    } else {
        sum_to(&a2.t()?.matmul(&g2)?, b2.shape())?
    };
    Ok((ga, Some(gb.reshape(b.shape())?)))
}

/// True for a 2-D view whose transpose is dense (`w.t()` of a dense `w`), but not itself dense.
fn transposed(x: &Tensor) -> bool {
    let (s, d) = (x.strides(), x.shape());
    x.rank() == 2 && d[0] > 1 && d[1] > 1 && s[0] == 1 && s[1] == d[0]
}
