//! Weight initializers with PyTorch's formulas (`torch.nn.init`). Fans come from the shape:
//! `fan_in = shape[1] * receptive`, `fan_out = shape[0] * receptive`, where `receptive` is the
//! product of the axes after the first two (a conv kernel's `kh * kw`). Each draws from the
//! generator it is given (layers use the global one, seeded by [`crate::manual_seed`]), so a
//! seed gives the same weights on every device. The `*_` functions (`zeros_`, `orthogonal_`,
//! ...) set a [`super::Parameter`] in place, drawing from the global generator, as PyTorch's.
//!
//! ```
//! use ferrograd::nn::init::{self, FanMode, Nonlinearity};
//! use ferrograd::{Device, Generator};
//! let mut gen = Generator::new(0);
//! let w = init::kaiming_uniform(&[256, 128], FanMode::FanIn, Nonlinearity::Relu, &mut gen, &Device::cpu())?;
//! let bound = (6.0f32 / 128.0).sqrt(); // gain √2 · √(3 / fan_in)
//! assert!(w.to_vec()?.iter().all(|v| v.abs() <= bound));
//! # Ok::<(), ferrograd::Error>(())
//! ```

mod in_place;

pub use in_place::{
    constant_, kaiming_normal_, kaiming_uniform_, normal_, ones_, orthogonal_, trunc_normal_,
    uniform_, xavier_normal_, xavier_uniform_, zeros_,
};

use crate::device::Device;
use crate::error::{Error, Result};
use crate::random::Generator;
use crate::tensor::Tensor;

/// The activation a layer feeds, which sets the gain of Xavier and Kaiming init.
///
/// ```
/// use ferrograd::nn::init::{gain, Nonlinearity};
/// assert_eq!(gain(Nonlinearity::Linear), 1.0);
/// assert_eq!(gain(Nonlinearity::Relu), 2f32.sqrt());
/// assert_eq!(gain(Nonlinearity::LeakyRelu(1.0)), 1.0); // √(2 / (1 + 1²))
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Nonlinearity {
    /// Gain 1 (also for sigmoid and conv/linear without activation).
    Linear,
    /// Gain 5/3.
    Tanh,
    /// Gain √2.
    Relu,
    /// Gain √(2 / (1 + slope²)).
    LeakyRelu(f32),
}

/// Which fan Kaiming init preserves: the forward pass's variance (`FanIn`) or the backward's.
///
/// ```
/// use ferrograd::nn::init::{fans, kaiming_normal, FanMode, Nonlinearity};
/// use ferrograd::{Device, Generator};
/// assert_eq!(fans("conv", &[16, 3, 5, 5])?, (75, 400)); // in: 3 · 5 · 5, out: 16 · 5 · 5
/// let w = kaiming_normal(
///     &[16, 3, 5, 5],
///     FanMode::FanOut, // std = √2 / √400
///     Nonlinearity::Relu,
///     &mut Generator::new(0),
///     &Device::cpu(),
/// )?;
/// assert_eq!(w.shape(), &[16, 3, 5, 5]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    /// Scale by `fan_in`: keeps the variance of the forward pass's activations.
    FanIn,
    /// Scale by `fan_out`: keeps the variance of the backward pass's gradients.
    FanOut,
}

/// PyTorch's `calculate_gain`.
pub fn gain(nonlinearity: Nonlinearity) -> f32 {
    match nonlinearity {
        Nonlinearity::Linear => 1.0,
        Nonlinearity::Tanh => 5.0 / 3.0,
        Nonlinearity::Relu => 2f32.sqrt(),
        Nonlinearity::LeakyRelu(s) => (2.0 / (1.0 + s * s)).sqrt(),
    }
}

/// `(fan_in, fan_out)` of a weight shape (at least 2-D).
pub fn fans(op: &'static str, shape: &[usize]) -> Result<(usize, usize)> {
    if shape.len() < 2 {
        return Err(Error::invalid(
            op,
            format!("fan in/out need a shape of at least 2 axes, found {shape:?}"),
        ));
    }
    let receptive: usize = shape[2..].iter().product();
    Ok((shape[1] * receptive, shape[0] * receptive))
}

fn pick(op: &'static str, shape: &[usize], mode: FanMode) -> Result<f32> {
    let (fan_in, fan_out) = fans(op, shape)?;
    let fan = match mode {
        FanMode::FanIn => fan_in,
        FanMode::FanOut => fan_out,
    };
    if fan == 0 {
        return Err(Error::invalid(
            op,
            format!("shape {shape:?} has a zero fan"),
        ));
    }
    Ok(fan as f32)
}

/// Every element `value`.
pub fn constant(shape: &[usize], value: f32, device: &Device) -> Result<Tensor> {
    Tensor::full(shape, value, device)
}

/// Uniform in `[lo, hi)`.
pub fn uniform(
    shape: &[usize],
    lo: f32,
    hi: f32,
    gen: &mut Generator,
    device: &Device,
) -> Result<Tensor> {
    Tensor::rand_with(shape, lo, hi, gen, device)
}

/// Normal with `mean` and `std`.
pub fn normal(
    shape: &[usize],
    mean: f32,
    std: f32,
    gen: &mut Generator,
    device: &Device,
) -> Result<Tensor> {
    Tensor::randn_with(shape, mean, std, gen, device)
}

/// Glorot/Xavier uniform: `U(-a, a)` with `a = gain · √(6 / (fan_in + fan_out))`.
pub fn xavier_uniform(
    shape: &[usize],
    gain: f32,
    gen: &mut Generator,
    device: &Device,
) -> Result<Tensor> {
    let (fi, fo) = fans("xavier_uniform", shape)?;
    let a = gain * (6.0 / (fi + fo).max(1) as f32).sqrt();
    uniform(shape, -a, a, gen, device)
}

/// Glorot/Xavier normal: `N(0, std²)` with `std = gain · √(2 / (fan_in + fan_out))`.
pub fn xavier_normal(
    shape: &[usize],
    gain: f32,
    gen: &mut Generator,
    device: &Device,
) -> Result<Tensor> {
    let (fi, fo) = fans("xavier_normal", shape)?;
    normal(
        shape,
        0.0,
        gain * (2.0 / (fi + fo).max(1) as f32).sqrt(),
        gen,
        device,
    )
}

/// He/Kaiming uniform: `U(-b, b)` with `b = gain · √(3 / fan)`.
pub fn kaiming_uniform(
    shape: &[usize],
    mode: FanMode,
    nonlinearity: Nonlinearity,
    gen: &mut Generator,
    device: &Device,
) -> Result<Tensor> {
    let fan = pick("kaiming_uniform", shape, mode)?;
    let b = gain(nonlinearity) * (3.0 / fan).sqrt();
    uniform(shape, -b, b, gen, device)
}

/// He/Kaiming normal: `N(0, std²)` with `std = gain / √fan`.
pub fn kaiming_normal(
    shape: &[usize],
    mode: FanMode,
    nonlinearity: Nonlinearity,
    gen: &mut Generator,
    device: &Device,
) -> Result<Tensor> {
    let fan = pick("kaiming_normal", shape, mode)?;
    normal(shape, 0.0, gain(nonlinearity) / fan.sqrt(), gen, device)
}

/// PyTorch's default for `Linear` and `Conv2d`: the weight Kaiming-uniform with a leaky slope
/// of √5, which is `U(-1/√fan_in, 1/√fan_in)`, and the bias `U(-1/√fan_in, 1/√fan_in)`.
pub(crate) fn default_layer(
    weight_shape: &[usize],
    bias: bool,
    gen: &mut Generator,
    device: &Device,
) -> Result<(Tensor, Option<Tensor>)> {
    let w = kaiming_uniform(
        weight_shape,
        FanMode::FanIn,
        Nonlinearity::LeakyRelu(5f32.sqrt()),
        gen,
        device,
    )?;
    let b = match bias {
        true => {
            let bound = 1.0 / pick("bias init", weight_shape, FanMode::FanIn)?.sqrt();
            Some(uniform(&[weight_shape[0]], -bound, bound, gen, device)?)
        }
        false => None,
    };
    Ok((w, b))
}

/// Normal with `mean` and `std` truncated to `[a, b]`, as `torch.nn.init.trunc_normal_`: a
/// uniform draw mapped through the inverse normal CDF between the bounds' CDF values (so no
/// value is redrawn and far tails cost nothing), then clamped against rounding.
///
/// ```
/// use ferrograd::nn::init::trunc_normal;
/// use ferrograd::{Device, Generator};
/// let w = trunc_normal(&[1000], 0.0, 0.02, -0.04, 0.04, &mut Generator::new(0), &Device::cpu())?;
/// assert!(w.to_vec()?.iter().all(|v| v.abs() <= 0.04)); // ViT's init: ±2 std
/// # Ok::<(), ferrograd::Error>(())
/// ```
///
/// # Errors
/// `InvalidArgument` unless `std > 0` and `a < b` are finite, and `[a, b]` holds some of the
/// distribution (not both bounds 8 or more std on one side of the mean).
pub fn trunc_normal(
    shape: &[usize],
    mean: f32,
    std: f32,
    a: f32,
    b: f32,
    gen: &mut Generator,
    device: &Device,
) -> Result<Tensor> {
    let op = "trunc_normal";
    let finite = [mean, std, a, b].iter().all(|v| v.is_finite());
    if !finite || std <= 0.0 || a >= b {
        return Err(Error::invalid(
            op,
            format!(
                "needs finite mean, std > 0 and bounds a < b, found mean {mean}, std {std}, \
                 a {a}, b {b}"
            ),
        ));
    }
    let (mean64, std64) = (f64::from(mean), f64::from(std));
    let cdf = |x: f32| 0.5 * (1.0 + libm::erf((f64::from(x) - mean64) / (std64 * SQRT_2)));
    let (lo, hi) = (2.0 * cdf(a) - 1.0, 2.0 * cdf(b) - 1.0);
    if hi - lo < 1e-15 {
        return Err(Error::invalid(
            op,
            format!("[{a}, {b}] holds none of N({mean}, {std}²) in f64: move the bounds closer"),
        ));
    }
    let n = crate::shape::checked_numel(op, shape)?;
    let mut u = crate::cpu::buffers::with_capacity(op, n)?;
    gen.uniform_into(&mut u, n, 0.0, 1.0);
    let values: Vec<f32> = u
        .iter()
        .map(|&u| {
            let x = mean64 + std64 * SQRT_2 * erf_inv(lo + (hi - lo) * f64::from(u));
            (x as f32).clamp(a, b)
        })
        .collect();
    Tensor::from_vec(values, shape, device)
}

const SQRT_2: f64 = std::f64::consts::SQRT_2;

/// The inverse of erf on (-1, 1): Giles' single-precision approximation ("Approximating the
/// erfinv function", 2010) refined by two Newton steps on `libm::erf`, to f64 accuracy.
fn erf_inv(y: f64) -> f64 {
    if y <= -1.0 {
        return f64::NEG_INFINITY;
    }
    if y >= 1.0 {
        return f64::INFINITY;
    }
    let w = -((1.0 - y) * (1.0 + y)).ln();
    let mut x = if w < 5.0 {
        let w = w - 2.5;
        let p = [
            2.810_226_36e-08,
            3.432_739_39e-07,
            -3.523_387_7e-06,
            -4.391_506_54e-06,
            0.000_218_580_87,
            -0.001_253_725_03,
            -0.004_177_681_64,
            0.246_640_727,
            1.501_409_41,
        ];
        p.iter().fold(0.0, |acc, c| acc * w + c) * y
    } else {
        let w = w.sqrt() - 3.0;
        let p = [
            -0.000_200_214_257,
            0.000_100_950_558,
            0.001_349_343_22,
            -0.003_673_428_44,
            0.005_739_507_73,
            -0.007_622_461_3,
            0.009_438_870_47,
            1.001_674_06,
            2.832_976_82,
        ];
        p.iter().fold(0.0, |acc, c| acc * w + c) * y
    };
    for _ in 0..2 {
        // erf'(x) = 2/√π e^{-x²}
        let slope = std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp();
        x -= (libm::erf(x) - y) / slope;
    }
    x
}

/// A (semi-)orthogonal matrix, as `torch.nn.init.orthogonal_`: a normal `[rows, cols]` draw
/// (`rows = shape[0]`, `cols` the product of the rest) made orthonormal by a QR
/// decomposition with `R`'s diagonal made positive, times `gain`. Its rows are orthonormal
/// when `rows <= cols`, else its columns.
///
/// ```
/// use ferrograd::nn::init::orthogonal;
/// use ferrograd::{Device, Generator};
/// let q = orthogonal(&[3, 3], 1.0, &mut Generator::new(0), &Device::cpu())?;
/// let qtq = q.transpose(0, 1)?.matmul(&q)?.to_vec()?;
/// for (i, v) in qtq.iter().enumerate() {
///     let identity = if i % 4 == 0 { 1.0 } else { 0.0 };
///     assert!((v - identity).abs() < 1e-5);
/// }
/// # Ok::<(), ferrograd::Error>(())
/// ```
///
/// # Errors
/// `InvalidArgument` for a shape of fewer than 2 axes or a non-finite gain.
pub fn orthogonal(
    shape: &[usize],
    gain: f32,
    gen: &mut Generator,
    device: &Device,
) -> Result<Tensor> {
    let op = "orthogonal";
    if shape.len() < 2 || !gain.is_finite() {
        return Err(Error::invalid(
            op,
            format!(
                "needs a shape of at least 2 axes and a finite gain, found {shape:?} and {gain}"
            ),
        ));
    }
    let n = crate::shape::checked_numel(op, shape)?;
    let rows = shape[0];
    if n == 0 {
        return Tensor::zeros(shape, device);
    }
    let cols = n / rows;
    let mut draw = crate::cpu::buffers::with_capacity(op, n)?;
    gen.normal_into(&mut draw, n, 0.0, 1.0);
    // Orthonormalise the columns of the tall one of A [rows, cols] and its transpose.
    let tall = rows >= cols;
    let (m, k) = if tall { (rows, cols) } else { (cols, rows) };
    // Column j of the tall matrix, as f64.
    let mut q: Vec<Vec<f64>> = (0..k)
        .map(|j| {
            (0..m)
                .map(|i| {
                    f64::from(if tall {
                        draw[i * cols + j]
                    } else {
                        draw[j * cols + i]
                    })
                })
                .collect()
        })
        .collect();
    orthonormalise(&mut q);
    let mut out = vec![0f32; n];
    for (j, col) in q.iter().enumerate() {
        for (i, v) in col.iter().enumerate() {
            let at = if tall { i * cols + j } else { j * cols + i };
            out[at] = (v * f64::from(gain)) as f32;
        }
    }
    Tensor::from_vec(out, shape, device)
}

/// Modified Gram-Schmidt, twice (so the columns stay orthogonal to f64 rounding even when
/// the draw is ill-conditioned): the columns of Q in `A = QR` with `R`'s diagonal positive.
/// A column that vanishes (rank deficiency, probability 0 for a normal draw) stays 0.
fn orthonormalise(cols: &mut [Vec<f64>]) {
    for j in 0..cols.len() {
        let (done, rest) = cols.split_at_mut(j);
        let col = &mut rest[0];
        for _ in 0..2 {
            for q in done.iter() {
                let dot: f64 = q.iter().zip(col.iter()).map(|(a, b)| a * b).sum();
                col.iter_mut().zip(q).for_each(|(c, q)| *c -= dot * q);
            }
        }
        let norm = col.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm > 0.0 {
            col.iter_mut().for_each(|v| *v /= norm);
        }
    }
}
