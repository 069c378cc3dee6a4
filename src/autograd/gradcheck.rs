//! `gradcheck`: autograd's gradients against central finite differences, for any function of
//! tensors (an op, a layer, a whole loss).

use crate::error::{Error, Result};
use crate::random::Generator;
use crate::tensor::Tensor;

use super::no_grad;

/// Settings for [`gradcheck`]. An element passes when
/// `|analytic - numeric| <= atol + rtol * |numeric|`.
///
/// ```
/// use ferrograd::{gradcheck, Device, GradcheckOptions, Tensor};
/// let x = Tensor::new([0.5, -1.0], &Device::cpu())?;
/// let loose = GradcheckOptions { atol: 1e-3, ..Default::default() };
/// assert_eq!((loose.eps, loose.rtol), (1e-6, 1e-3));
/// assert!(gradcheck(|t| t[0].square(), &[x], &loose)?.passed);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradcheckOptions {
    /// The finite-difference step (taken in f64).
    pub eps: f64,
    /// Absolute tolerance of the comparison (default 1e-4).
    pub atol: f64,
    /// Relative tolerance of the comparison, a fraction of `|numeric|` (default 1e-3).
    pub rtol: f64,
    /// Seeds the random upstream gradient.
    pub seed: u64,
}

impl Default for GradcheckOptions {
    /// `eps = 1e-6`, `atol = 1e-4`, `rtol = 1e-3`: the numeric side is f64, so the tolerance
    /// is set by the analytic side's f32 arithmetic.
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-6,
            atol: 1e-4,
            rtol: 1e-3,
            seed: 0x6772_6164,
        }
    }
}

/// How one input's gradient compared.
///
/// ```
/// use ferrograd::{gradcheck, Device, GradcheckOptions, Tensor};
/// let x = Tensor::new([1.0, 2.0, 3.0], &Device::cpu())?;
/// let report = gradcheck(|t| t[0].exp(), &[x], &GradcheckOptions::default())?;
/// let input = &report.inputs[0];
/// // Passing means every element was within `atol + rtol * |numeric|`; here |numeric| < e³.
/// assert!(input.passed && input.max_abs_error <= 1e-4 + 1e-3 * 3f64.exp());
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct InputReport {
    /// `|analytic - numeric|`, largest over the input's elements (NaN if any side was NaN).
    pub max_abs_error: f64,
    /// `|analytic - numeric| / |numeric|`, largest over elements with a non-zero numeric value.
    pub max_rel_error: f64,
    /// The element that failed worst (by how far past the tolerance), with its two values.
    pub worst: Option<(usize, f64, f64)>,
    /// Whether every element of this input was within the tolerance.
    pub passed: bool,
}

/// The result of [`gradcheck`]: one [`InputReport`] per input.
///
/// ```
/// use ferrograd::{gradcheck, Device, GradcheckOptions, Tensor};
/// let dev = Device::cpu();
/// let (a, b) = (Tensor::new([1.0, 2.0], &dev)?, Tensor::new([3.0, -1.0], &dev)?);
/// let report = gradcheck(|t| t[0].mul(&t[1]), &[a, b], &GradcheckOptions::default())?;
/// assert_eq!(report.inputs.len(), 2);
/// assert!(report.passed && report.inputs.iter().all(|r| r.passed));
/// println!("{report}"); // the verdict, and each input's largest errors
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct GradcheckReport {
    /// One report per input, in the order of the inputs.
    pub inputs: Vec<InputReport>,
    /// Whether every input passed.
    pub passed: bool,
}

impl std::fmt::Display for GradcheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = if self.passed { "passed" } else { "FAILED" };
        writeln!(f, "gradcheck {verdict}")?;
        for (i, r) in self.inputs.iter().enumerate() {
            write!(
                f,
                "  input {i}: max abs error {:.3e}, max rel error {:.3e}",
                r.max_abs_error, r.max_rel_error
            )?;
            if let (false, Some((j, a, n))) = (r.passed, r.worst) {
                write!(f, " (element {j}: analytic {a:.6e}, numeric {n:.6e})")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Checks the gradients autograd gives for `f` at `inputs` against central finite differences.
///
/// The analytic side runs on the inputs' device: `f(inputs)` is seeded with a random upstream
/// gradient `r` (so every output element is weighted differently) and differentiated by
/// [`Tensor::backward_with`]. The numeric side runs on the CPU backend computing in f64, as
/// PyTorch's gradcheck does: each input element is moved by `±eps` and
/// `sum_k r_k (y⁺_k - y⁻_k) / (2 eps)` is taken from the two f64 outputs. `f` is evaluated
/// twice per input element, so keep inputs small, and it must put any tensor it makes itself
/// on its inputs' device (`Tensor::from_vec(.., t[0].device())`, `c.to_device(t[0].device())`).
///
/// ```
/// use ferrograd::{gradcheck, Device, GradcheckOptions, Tensor};
/// let x = Tensor::from_vec(vec![0.3, -1.2, 2.0], &[3], &Device::cpu())?;
/// let report = gradcheck(|t| t[0].tanh()?.mul(&t[0]), &[x], &GradcheckOptions::default())?;
/// assert!(report.passed, "{report}");
/// # Ok::<(), ferrograd::Error>(())
/// ```
pub fn gradcheck<F>(f: F, inputs: &[Tensor], options: &GradcheckOptions) -> Result<GradcheckReport>
where
    F: Fn(&[Tensor]) -> Result<Tensor>,
{
    if !(options.eps > 0.0 && options.eps.is_finite()) {
        return Err(Error::invalid(
            "gradcheck",
            format!("eps must be positive and finite, got {}", options.eps),
        ));
    }
    // Analytic: backward from a random upstream gradient.
    let vars: Vec<Tensor> = inputs.iter().map(|t| t.detach().requires_grad()).collect();
    let y = f(&vars)?;
    let r = Generator::new(options.seed).uniform(y.numel(), -1.0, 1.0);
    let seed = Tensor::from_slice(&r, y.shape(), y.device())?;
    let grads = if y.tracks_grad() {
        Some(y.backward_with(&seed)?)
    } else {
        None // the output does not depend on the inputs: every gradient is 0
    };

    // Numeric: central differences on the CPU, in f64.
    let base: Vec<Vec<f64>> = inputs
        .iter()
        .map(|t| t.to_vec_f64())
        .collect::<Result<_>>()?;
    // Integer and boolean inputs (indices, labels, masks) are not perturbed: they go to the
    // f64 device as they are.
    let fixed: Vec<Option<Tensor>> = inputs
        .iter()
        .map(|t| match t.dtype().is_float() {
            true => Ok(None),
            false => t.to_device(&crate::Device::cpu_f64()).map(Some),
        })
        .collect::<Result<_>>()?;
    let eval = |which: usize, data: &[f64]| -> Result<Vec<f64>> {
        let args: Vec<Tensor> = inputs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if let Some(c) = &fixed[i] {
                    return Ok(c.clone());
                }
                let d = if i == which { data } else { &base[i][..] };
                Tensor::from_f64(d.to_vec(), t.shape())
            })
            .collect::<Result<_>>()?;
        no_grad(|| f(&args))?.to_vec_f64()
    };

    let mut reports = Vec::with_capacity(inputs.len());
    for (i, var) in vars.iter().enumerate() {
        let analytic = match grads.as_ref().and_then(|g| g.get(var)) {
            Some(g) => g.to_vec()?,
            None => vec![0.0; var.numel()],
        };
        let mut data = match fixed[i] {
            Some(_) => Vec::new(), // no gradient to check
            None => base[i].clone(),
        };
        let mut report = InputReport {
            max_abs_error: 0.0,
            max_rel_error: 0.0,
            worst: None,
            passed: true,
        };
        let mut worst_excess = f64::NEG_INFINITY;
        for j in 0..data.len() {
            let x = base[i][j];
            data[j] = x + options.eps;
            let y_hi = eval(i, &data)?;
            data[j] = x - options.eps;
            let y_lo = eval(i, &data)?;
            data[j] = x;
            let numeric = y_hi
                .iter()
                .zip(&y_lo)
                .zip(&r)
                .map(|((&p, &m), &w)| f64::from(w) * (p - m))
                .sum::<f64>()
                / (2.0 * options.eps);
            let a = f64::from(analytic[j]);
            let err = (a - numeric).abs();
            let allowed = options.atol + options.rtol * numeric.abs();
            report.max_abs_error = report.max_abs_error.max(err);
            if numeric != 0.0 {
                report.max_rel_error = report.max_rel_error.max(err / numeric.abs());
            }
            // NaN on either side fails (the comparison below is false for NaN).
            let ok = err <= allowed;
            let excess = if err.is_nan() {
                f64::INFINITY
            } else {
                err - allowed
            };
            if !ok {
                report.passed = false;
            }
            if excess > worst_excess || report.worst.is_none() {
                worst_excess = excess;
                report.worst = Some((j, a, numeric));
            }
            if err.is_nan() {
                report.max_abs_error = f64::NAN;
            }
        }
        reports.push(report);
    }
    Ok(GradcheckReport {
        passed: reports.iter().all(|r| r.passed),
        inputs: reports,
    })
}
