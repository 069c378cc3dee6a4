//! Batch norm, layer norm and dropout. Both norms run one normalisation kernel forward and
//! one backward (`shaders/norm.wgsl`, `cpu.rs`); the affine weight and bias are
//! elementwise ops, so autograd gives their gradients. Dropout masks are hashed from a key on
//! the device (`shaders/random.wgsl`), identically on the CPU.

pub(crate) mod cpu;
pub(crate) mod gpu;
pub(crate) mod spec;

use super::same_device;
use crate::autograd::{no_grad, record, untracked, BackOp};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use spec::NormSpec;

/// Mode and constants of [`Tensor::batch_norm`] (PyTorch's defaults: training, momentum 0.1,
/// eps 1e-5).
///
/// ```
/// use ferrograd::{BatchNormOptions, Device, RunningStats, Tensor};
/// let dev = Device::cpu();
/// let x = Tensor::new([[1.0, 10.0], [3.0, 30.0]], &dev)?;
/// let mut stats = RunningStats::new(2, &dev)?; // mean 0, variance 1
/// let eval = BatchNormOptions { training: false, ..Default::default() };
/// assert_eq!((eval.momentum, eval.eps), (0.1, 1e-5));
/// let y = x.batch_norm(Some(&mut stats), None, None, &eval)?; // (x - 0) / √(1 + eps)
/// assert!(y.to_vec()?.iter().zip(x.to_vec()?).all(|(a, b)| (a - b).abs() < 1e-3));
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormOptions {
    /// Normalise with the batch's statistics (and update the running ones); otherwise with the
    /// running statistics.
    pub training: bool,
    /// `running = (1 - momentum) * running + momentum * batch`.
    pub momentum: f32,
    /// Added to the variance before the square root.
    pub eps: f32,
}

impl Default for BatchNormOptions {
    fn default() -> Self {
        BatchNormOptions {
            training: true,
            momentum: 0.1,
            eps: 1e-5,
        }
    }
}

/// The running mean and (unbiased) variance a batch norm keeps per channel, for evaluation.
///
/// ```
/// use ferrograd::{BatchNormOptions, Device, RunningStats, Tensor};
/// let dev = Device::cpu();
/// let mut stats = RunningStats::new(3, &dev)?;
/// assert_eq!((stats.mean.to_vec()?, stats.var.to_vec()?), (vec![0.0; 3], vec![1.0; 3]));
/// let x = Tensor::new([[2.0, 4.0, 6.0], [2.0, 4.0, 6.0]], &dev)?; // mean [2, 4, 6], var 0
/// x.batch_norm(Some(&mut stats), None, None, &BatchNormOptions::default())?;
/// // Training moves them by momentum 0.1: 0.9 · 0 + 0.1 · 4 and 0.9 · 1 + 0.1 · 0.
/// assert!((stats.mean.to_vec()?[1] - 0.4).abs() < 1e-6);
/// assert!((stats.var.to_vec()?[0] - 0.9).abs() < 1e-6);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct RunningStats {
    /// The running mean, `[channels]`.
    pub mean: Tensor,
    /// The running unbiased variance, `[channels]`.
    pub var: Tensor,
}

impl RunningStats {
    /// Mean 0 and variance 1 for `channels` channels, as PyTorch initialises them.
    pub fn new(channels: usize, device: &crate::Device) -> Result<RunningStats> {
        Ok(RunningStats {
            mean: Tensor::zeros(&[channels], device)?,
            var: Tensor::ones(&[channels], device)?,
        })
    }
}

/// Checks an optional per-channel tensor (weight, bias, running statistic) has `shape`.
fn check_param(op: &'static str, what: &str, t: Option<&Tensor>, shape: &[usize]) -> Result<()> {
    match t {
        Some(t) if t.shape() != shape => Err(Error::ShapeMismatch {
            op,
            lhs: shape.to_vec(),
            rhs: t.shape().to_vec(),
            why: format!("differ: the {what} must have the first shape"),
        }),
        _ => Ok(()),
    }
}

/// `x * weight + bias`, each present one broadcast through `shape`.
fn affine(
    x: Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    shape: &[usize],
) -> Result<Tensor> {
    let x = match weight {
        Some(w) => x.mul(&w.reshape(shape)?)?,
        None => x,
    };
    match bias {
        Some(b) => x.add(&b.reshape(shape)?),
        None => Ok(x),
    }
}

impl Tensor {
    /// Normalises each group of `spec` to mean 0 and variance 1. Returns `xhat` (recorded for
    /// autograd) and the statistics `[mean; biased var]` (`2 * groups`, not tracked).
    pub(crate) fn normalize(&self, spec: &NormSpec) -> Result<(Tensor, Tensor)> {
        let (xhat, stats) = untracked(|| {
            let x = self.dense()?;
            if x.past_one_binding() {
                return x.normalize_composed(spec);
            }
            let (y, s) = x.storage().normalize(spec)?;
            Ok((
                Tensor::from_storage(y, self.shape(), self.device()),
                Tensor::from_storage(s, &[2 * spec.groups], self.device()),
            ))
        })?;
        let out = record(
            xhat.clone(),
            BackOp::Normalize {
                x: self.clone(),
                spec: *spec,
                xhat,
                stats: stats.clone(),
            },
        );
        Ok((out, stats))
    }

    /// The input gradient of `normalize` from its output `xhat`, the upstream gradient `g`
    /// and the saved statistics.
    pub(crate) fn normalize_backward(
        xhat: &Tensor,
        g: &Tensor,
        stats: &Tensor,
        spec: &NormSpec,
    ) -> Result<Tensor> {
        let g = g.dense()?;
        if xhat.past_one_binding() {
            return Tensor::normalize_backward_composed(xhat, &g, stats, spec);
        }
        let s = xhat
            .storage()
            .normalize_backward(g.storage(), stats.storage(), spec)?;
        Ok(Tensor::from_storage(s, xhat.shape(), xhat.device()))
    }

    // Past one GPU binding the norm kernels (one workgroup per group, reading all of it) cannot
    // run, so the same math is composed from reductions and elementwise ops, which split their
    // work over windows. x, xhat, g: [outer, groups, inner]; mean, var, rstd: [1, groups, 1].

    fn normalize_composed(&self, spec: &NormSpec) -> Result<(Tensor, Tensor)> {
        let x = self.reshape(&[spec.outer, spec.groups, spec.inner])?;
        let group_mean = |t: &Tensor| {
            t.sum(2, true)?
                .sum(0, true)?
                .mul_scalar(1.0 / spec.count() as f32)
        };
        let mean = group_mean(&x)?;
        let centred = x.sub(&mean)?;
        let var = group_mean(&centred.square()?)?; // biased, as the kernels
        let rstd = var
            .add_scalar(spec.eps)?
            .sqrt()?
            .scalar_left(1.0, crate::ops::elementwise::op::BinaryOp::Div)?;
        let xhat = centred.mul(&rstd)?.reshape(self.shape())?;
        let stats = Tensor::cat(&[&mean.flatten()?, &var.flatten()?], 0)?;
        Ok((xhat, stats))
    }

    fn normalize_backward_composed(
        xhat: &Tensor,
        g: &Tensor,
        stats: &Tensor,
        spec: &NormSpec,
    ) -> Result<Tensor> {
        let shape = [spec.outer, spec.groups, spec.inner];
        let (y, g) = (xhat.reshape(&shape)?, g.reshape(&shape)?);
        let group_mean = |t: &Tensor| {
            t.sum(2, true)?
                .sum(0, true)?
                .mul_scalar(1.0 / spec.count() as f32)
        };
        let var = stats
            .narrow(0, spec.groups, spec.groups)?
            .reshape(&[1, spec.groups, 1])?;
        let rstd = var
            .add_scalar(spec.eps)?
            .sqrt()?
            .scalar_left(1.0, crate::ops::elementwise::op::BinaryOp::Div)?;
        // rstd * (g - mean(g) - xhat * mean(g * xhat))
        let inner = g
            .sub(&group_mean(&g)?)?
            .sub(&y.mul(&group_mean(&g.mul(&y)?)?)?)?;
        inner.mul(&rstd)?.reshape(xhat.shape())
    }

    /// Batch normalisation over axis 1 of `[n, c, ..]` (BatchNorm1d on `[n, c]` or `[n, c, l]`,
    /// BatchNorm2d on `[n, c, h, w]`): `(x - mean) / sqrt(var + eps) * weight + bias`.
    ///
    /// Training (or no running statistics) uses the batch's mean and biased variance, and moves
    /// `running` (if given) toward the batch's mean and unbiased variance by `momentum`.
    /// Evaluation uses `running`. Gradients flow to the input, weight and bias.
    ///
    /// ```
    /// use ferrograd::{BatchNormOptions, Device, RunningStats, Tensor};
    /// let dev = Device::cpu();
    /// let x = Tensor::from_vec(vec![1.0, 10.0, 3.0, 30.0], &[2, 2], &dev)?;
    /// let mut stats = RunningStats::new(2, &dev)?;
    /// let y = x.batch_norm(Some(&mut stats), None, None, &BatchNormOptions::default())?;
    /// let v = y.to_vec()?; // each column normalised: -1 and 1
    /// assert!((v[0] + 1.0).abs() < 1e-3 && (v[3] - 1.0).abs() < 1e-3);
    /// assert!((stats.mean.to_vec()?[1] - 2.0).abs() < 1e-5); // 0.9 * 0 + 0.1 * 20
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub fn batch_norm(
        &self,
        running: Option<&mut RunningStats>,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        options: &BatchNormOptions,
    ) -> Result<Tensor> {
        self.batch_norm_impl(running, weight, bias, options)
            .map_err(|e| e.in_op("batch_norm"))
    }

    fn batch_norm_impl(
        &self,
        running: Option<&mut RunningStats>,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        options: &BatchNormOptions,
    ) -> Result<Tensor> {
        let op = "batch_norm";
        let BatchNormOptions {
            training,
            momentum,
            eps,
        } = *options;
        if self.rank() < 2 {
            return Err(Error::invalid(
                op,
                format!("input must be [N, C, ..], found shape {:?}", self.shape()),
            ));
        }
        if !((0.0..=1.0).contains(&momentum) && eps >= 0.0 && eps.is_finite()) {
            return Err(Error::invalid(
                op,
                format!("momentum {momentum} must be in [0, 1] and eps {eps} finite and >= 0"),
            ));
        }
        let (n, c) = (self.shape()[0], self.shape()[1]);
        let inner: usize = self.shape()[2..].iter().product();
        check_param(op, "weight", weight, &[c])?;
        check_param(op, "bias", bias, &[c])?;
        let mut operands: Vec<&Tensor> = vec![self];
        operands.extend(weight.into_iter().chain(bias));
        if let Some(r) = running.as_deref() {
            check_param(op, "running mean", Some(&r.mean), &[c])?;
            check_param(op, "running variance", Some(&r.var), &[c])?;
            operands.extend([&r.mean, &r.var]);
        }
        same_device(op, &operands)?;
        // [1, c, 1, ..]: per-channel tensors broadcast along axis 1.
        let mut bshape = vec![1; self.rank()];
        bshape[1] = c;

        let xhat = match running {
            Some(r) if !training => {
                // Evaluation: the running statistics, as constants.
                let rstd = r.var.add_scalar(eps)?.pow_scalar(-0.5)?.reshape(&bshape)?;
                self.sub(&r.mean.reshape(&bshape)?)?.mul(&rstd)?
            }
            running => {
                let count = n * inner;
                if count < 2 {
                    return Err(Error::invalid(
                        op,
                        format!(
                            "training needs more than one value per channel, input shape {:?}",
                            self.shape()
                        ),
                    ));
                }
                let spec = NormSpec {
                    outer: n,
                    groups: c,
                    inner,
                    eps,
                };
                let (xhat, stats) = self.normalize(&spec)?;
                if let Some(r) = running {
                    no_grad(|| -> Result<()> {
                        let unbias = count as f32 / (count - 1) as f32;
                        let mean = stats.narrow(0, 0, c)?;
                        let var = stats.narrow(0, c, c)?.mul_scalar(unbias)?;
                        let keep = 1.0 - momentum;
                        r.mean = r.mean.mul_scalar(keep)?.add(&mean.mul_scalar(momentum)?)?;
                        r.var = r.var.mul_scalar(keep)?.add(&var.mul_scalar(momentum)?)?;
                        Ok(())
                    })?;
                }
                xhat
            }
        };
        affine(xhat, weight, bias, &bshape)
    }

    /// Layer normalisation over the trailing `normalized_shape` axes:
    /// `(x - mean) / sqrt(var + eps) * weight + bias`, the statistics per leading index, the
    /// weight and bias of `normalized_shape`. Gradients flow to all three.
    pub fn layer_norm(
        &self,
        normalized_shape: &[usize],
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
    ) -> Result<Tensor> {
        self.layer_norm_impl(normalized_shape, weight, bias, eps)
            .map_err(|e| e.in_op("layer_norm"))
    }

    fn layer_norm_impl(
        &self,
        normalized_shape: &[usize],
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
    ) -> Result<Tensor> {
        let op = "layer_norm";
        let r = normalized_shape.len();
        let features: usize = normalized_shape.iter().product();
        if r == 0 || r > self.rank() || self.shape()[self.rank() - r..] != *normalized_shape {
            return Err(Error::ShapeMismatch {
                op,
                lhs: self.shape().to_vec(),
                rhs: normalized_shape.to_vec(),
                why: "disagree: the normalized shape must be the input's trailing axes".into(),
            });
        }
        if features == 0 || !(eps >= 0.0 && eps.is_finite()) {
            return Err(Error::invalid(
                op,
                format!("needs a non-empty normalized shape and a finite eps >= 0, got {eps}"),
            ));
        }
        check_param(op, "weight", weight, normalized_shape)?;
        check_param(op, "bias", bias, normalized_shape)?;
        let mut operands: Vec<&Tensor> = vec![self];
        operands.extend(weight.into_iter().chain(bias));
        same_device(op, &operands)?;
        let spec = NormSpec {
            outer: 1,
            groups: self.numel() / features,
            inner: features,
            eps,
        };
        let (xhat, _) = self.normalize(&spec)?;
        affine(xhat, weight, bias, normalized_shape)
    }
}
