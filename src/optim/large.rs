//! The fused optimizer updates composed from tensor ops, for a parameter larger than one GPU
//! binding: the fused kernel (`shaders/optim.wgsl`) binds the parameter, its gradient and its
//! state whole, while elementwise ops split their work over windows. The arithmetic is
//! `ops/optim/cpu.rs`'s `update`, step for step.

use crate::autograd::untracked;
use crate::backend::{OptimKind, OptimSpec};
use crate::error::Result;
use crate::tensor::Tensor;

/// The new parameter and state `[rows, n]` after one update.
pub(super) fn update(
    p: &Tensor,
    g: &Tensor,
    state: &Tensor,
    spec: &OptimSpec,
) -> Result<(Tensor, Tensor)> {
    untracked(|| {
        let n = spec.numel;
        let (p0, g) = (p.reshape(&[n])?, g.reshape(&[n])?);
        let g = match spec.has(OptimSpec::MAXIMIZE) {
            true => g.neg()?,
            false => g,
        };
        let row = |r: usize| state.narrow(0, r, 1)?.reshape(&[n]);
        let (lr, wd, eps) = (spec.lr, spec.weight_decay, spec.eps);
        let (b1, b2) = (spec.beta1, spec.beta2);
        // x * a + y * b
        let lerp = |x: &Tensor, a: f32, y: &Tensor, b: f32| x.mul_scalar(a)?.add(&y.mul_scalar(b)?);
        let (p, rows): (Tensor, Vec<Tensor>) = match spec.kind {
            OptimKind::Sgd => {
                let mut d = g.add(&p0.mul_scalar(wd)?)?;
                let mut s0 = row(0)?;
                if b1 != 0.0 {
                    s0 = match spec.has(OptimSpec::FIRST_STEP) {
                        true => d.clone(),
                        false => lerp(&s0, b1, &d, 1.0 - spec.dampening)?,
                    };
                    d = match spec.has(OptimSpec::NESTEROV) {
                        true => d.add(&s0.mul_scalar(b1)?)?,
                        false => s0.clone(),
                    };
                }
                (p0.sub(&d.mul_scalar(lr)?)?, vec![s0])
            }
            OptimKind::Adam => {
                let (p0, d) = match spec.has(OptimSpec::DECOUPLED) {
                    true => (p0.mul_scalar(1.0 - lr * wd)?, g),
                    false => (p0.clone(), g.add(&p0.mul_scalar(wd)?)?),
                };
                let m = row(0)?;
                let m = m.add(&d.sub(&m)?.mul_scalar(1.0 - b1)?)?; // lerp, as exp_avg.lerp_
                                                                   // b2 * v + ((1 - b2) * d) * d, ordered as the CPU loop and the kernel
                let v = row(1)?
                    .mul_scalar(b2)?
                    .add(&d.mul_scalar(1.0 - b2)?.mul(&d)?)?;
                // AMSGrad divides by the largest second moment so far, a third state row.
                let top = match spec.has(OptimSpec::AMSGRAD) {
                    true => Some(row(2)?.maximum(&v)?),
                    false => None,
                };
                let denom = top.as_ref().unwrap_or(&v).sqrt()?;
                let denom = denom.div_scalar(spec.bias2_sqrt)?.add_scalar(eps)?;
                let step = m.mul_scalar(lr / spec.bias1)?.div(&denom)?;
                (
                    p0.sub(&step)?,
                    [Some(m), Some(v), top].into_iter().flatten().collect(),
                )
            }
            OptimKind::RmsProp => {
                let d = g.add(&p0.mul_scalar(wd)?)?;
                let sq = row(0)?
                    .mul_scalar(b2)?
                    .add(&d.mul_scalar(1.0 - b2)?.mul(&d)?)?;
                let mut mean = row(2)?;
                let avg = match spec.has(OptimSpec::CENTERED) {
                    true => {
                        mean = mean.add(&d.sub(&mean)?.mul_scalar(1.0 - b2)?)?;
                        sq.sub(&mean.square()?)?.sqrt()?.add_scalar(eps)?
                    }
                    false => sq.sqrt()?.add_scalar(eps)?,
                };
                let mut buf = row(1)?;
                let p = match b1 > 0.0 {
                    true => {
                        buf = buf.mul_scalar(b1)?.add(&d.div(&avg)?)?;
                        p0.sub(&buf.mul_scalar(lr)?)?
                    }
                    false => p0.sub(&d.mul_scalar(lr)?.div(&avg)?)?,
                };
                (p, vec![sq, buf, mean])
            }
            OptimKind::Adagrad => {
                let d = g.add(&p0.mul_scalar(wd)?)?;
                let sum = row(0)?.add(&d.square()?)?;
                let denom = sum.sqrt()?.add_scalar(eps)?;
                (p0.sub(&d.mul_scalar(lr)?.div(&denom)?)?, vec![sum])
            }
        };
        let rows: Vec<&Tensor> = rows.iter().collect();
        Ok((p.reshape(p0.shape())?, Tensor::stack(&rows, 0)?))
    })
}
