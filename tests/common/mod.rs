//! Shared test helpers: the device macro, tolerant comparison, seeded random inputs.
#![allow(dead_code)]

use ferrograd::{Device, Generator, Result, Tensor};

/// The GPU, or `None` with a printed reason. With `FERROGRAD_REQUIRE_GPU=1` a missing
/// adapter fails the test instead of skipping it.
pub fn gpu() -> Option<Device> {
    match Device::gpu() {
        Ok(d) => Some(d),
        Err(e) if std::env::var("FERROGRAD_REQUIRE_GPU").as_deref() == Ok("1") => {
            panic!("FERROGRAD_REQUIRE_GPU=1 but no GPU: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED GPU test (set FERROGRAD_REQUIRE_GPU=1 to fail instead): {e}");
            None
        }
    }
}

/// The CPU and, when there is one, the GPU (see [`gpu`]): for tests that loop over devices.
pub fn devices() -> Vec<Device> {
    let mut all = vec![Device::cpu()];
    all.extend(gpu());
    all
}

/// Stamps out `cpu` and `gpu` tests for each `fn name(dev: &Device)`.
#[macro_export]
macro_rules! device_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn cpu() {
                super::$name(&ferrograd::Device::cpu());
            }
            #[test]
            fn gpu() {
                if let Some(dev) = $crate::common::gpu() {
                    super::$name(&dev);
                }
            }
        }
    )*};
}

/// `|a - e| <= atol + rtol * |e|` elementwise (NaN matches NaN, inf matches the same inf).
pub fn assert_close(actual: &[f32], expected: &[f32], atol: f32, rtol: f32, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let ok = (a.is_nan() && e.is_nan()) || a == e || (a - e).abs() <= atol + rtol * e.abs();
        assert!(
            ok,
            "{what}: element {i}: got {a}, expected {e} (atol {atol}, rtol {rtol})"
        );
    }
}

/// Seeded uniform values in [lo, hi) on the CPU.
pub fn uniform(shape: &[usize], lo: f32, hi: f32, seed: u64) -> Tensor {
    Tensor::rand_with(shape, lo, hi, &mut Generator::new(seed), &Device::cpu()).unwrap()
}

/// Seeded normal values on the CPU.
pub fn normal(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn_with(shape, 0.0, 1.0, &mut Generator::new(seed), &Device::cpu()).unwrap()
}

/// Runs `f` on the CPU inputs and on copies on `dev`, and compares. On the CPU device this
/// checks the op runs and is deterministic; the GPU is compared against the CPU.
pub fn parity(
    dev: &Device,
    inputs: &[&Tensor],
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    atol: f32,
    rtol: f32,
    what: &str,
) {
    let cpu_in: Vec<Tensor> = inputs.iter().map(|t| (*t).clone()).collect();
    let expected = f(&cpu_in).unwrap_or_else(|e| panic!("{what} on cpu: {e}"));
    let dev_in: Vec<Tensor> = inputs.iter().map(|t| t.to_device(dev).unwrap()).collect();
    let got = f(&dev_in).unwrap_or_else(|e| panic!("{what} on {dev}: {e}"));
    assert_eq!(got.shape(), expected.shape(), "{what}: shapes differ");
    assert_eq!(got.device(), dev, "{what}: result on the wrong device");
    assert_eq!(got.dtype(), expected.dtype(), "{what}: dtypes differ");
    assert_close(
        &got.to_vec().unwrap(),
        &expected.to_vec().unwrap(),
        atol,
        rtol,
        what,
    );
}

/// Seeded values in `±[lo, hi)` (random signs) on the CPU: inputs kept at least `lo` away from
/// zero, for gradients with a kink or pole at 0 (relu, abs, 1/x).
pub fn signed(shape: &[usize], lo: f32, hi: f32, seed: u64) -> Tensor {
    let mag = uniform(shape, lo, hi, seed).to_vec().unwrap();
    let sign = uniform(shape, -1.0, 1.0, seed ^ 0x5151).to_vec().unwrap();
    let data = mag
        .iter()
        .zip(&sign)
        .map(|(&m, &s)| if s < 0.0 { -m } else { m })
        .collect();
    Tensor::from_vec(data, shape, &Device::cpu()).unwrap()
}

/// Checks the gradient of `f` at `inputs` (CPU tensors). On the CPU: `gradcheck` against
/// finite differences. On another device: the device's analytic gradients against the CPU's,
/// for the same random upstream gradient.
pub fn check_grad(
    dev: &Device,
    inputs: &[&Tensor],
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    what: &str,
) {
    check_grad_with(
        dev,
        inputs,
        f,
        &ferrograd::GradcheckOptions::default(),
        what,
    )
}

pub fn check_grad_with(
    dev: &Device,
    inputs: &[&Tensor],
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    options: &ferrograd::GradcheckOptions,
    what: &str,
) {
    let inputs: Vec<Tensor> = inputs.iter().map(|t| (*t).clone()).collect();
    if !dev.is_gpu() {
        let report = ferrograd::gradcheck(&f, &inputs, options)
            .unwrap_or_else(|e| panic!("{what}: gradcheck failed to run: {e}"));
        assert!(report.passed, "{what}: {report}");
        return;
    }
    let analytic = |d: &Device| -> Vec<Vec<f32>> {
        let vars: Vec<Tensor> = inputs
            .iter()
            .map(|t| t.to_device(d).unwrap().requires_grad())
            .collect();
        let y = f(&vars).unwrap_or_else(|e| panic!("{what} on {d}: {e}"));
        let r = uniform(y.shape(), -1.0, 1.0, 99).to_device(d).unwrap();
        let grads = y.backward_with(&r).unwrap();
        vars.iter()
            .map(|v| match grads.get(v) {
                Some(g) => {
                    assert_eq!(g.device(), d, "{what}: gradient left the device");
                    g.to_vec().unwrap()
                }
                None => vec![0.0; v.numel()],
            })
            .collect()
    };
    let expected = analytic(&Device::cpu());
    let got = analytic(dev);
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_close(g, e, 1e-4, 1e-3, &format!("{what}: input {i} on {dev}"));
    }
}

/// A tensor from `tests/data/torch_goldens.safetensors` (made by
/// `tests/data/make_torch_goldens.py` with PyTorch) on `dev`.
pub fn golden(name: &str, dev: &Device) -> Tensor {
    try_golden(name, dev).unwrap_or_else(|| panic!("no golden tensor {name}"))
}

/// [`golden`], or `None` when the file has no such tensor.
pub fn try_golden(name: &str, dev: &Device) -> Option<Tensor> {
    use std::sync::OnceLock;
    static FILE: OnceLock<Vec<(String, Tensor)>> = OnceLock::new();
    let all = FILE.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/torch_goldens.safetensors"
        );
        ferrograd::nn::load_tensors(path, &Device::cpu())
            .expect("the golden file loads")
            .tensors
    });
    let t = all.iter().find(|(n, _)| n == name)?;
    Some(t.1.to_device(dev).unwrap())
}

/// Compares a tensor with a golden one (shape and values).
pub fn assert_golden(t: &Tensor, name: &str, atol: f32, rtol: f32) {
    let e = golden(name, &Device::cpu());
    assert_eq!(t.shape(), e.shape(), "{name}: shape");
    assert_close(&t.to_vec().unwrap(), &e.to_vec().unwrap(), atol, rtol, name);
}

/// An IDX file: magic (u8 data, `dims.len()` dimensions), big-endian dims, then `data`.
pub fn idx_file(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, dims.len() as u8];
    dims.iter().for_each(|d| out.extend(d.to_be_bytes()));
    out.extend(data);
    out
}

/// `bytes` gzipped.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// The real MNIST files (`../shared/data/mnist`, or `$FERROGRAD_MNIST`), or `None` with a
/// printed `SKIPPED` line when they are not there. Under `CI` a missing copy fails the test
/// instead, so a CI run never passes without having run it.
pub fn mnist_data() -> Option<ferrograd::data::Mnist> {
    let dir = std::env::var_os("FERROGRAD_MNIST")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist")
        });
    match ferrograd::data::Mnist::load(&dir) {
        Ok(m) => Some(m),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("CI is set but there is no MNIST at {} ({e})", dir.display())
        }
        Err(e) => {
            eprintln!("SKIPPED: no MNIST at {} ({e})", dir.display());
            None
        }
    }
}

/// Sets each parameter `n` of `m` to the golden `{prefix}.{n}`.
pub fn load_golden(m: &dyn ferrograd::nn::Module, prefix: &str, dev: &Device) {
    for (n, p) in m.named_parameters() {
        p.set(golden(&format!("{prefix}.{n}"), dev));
    }
}
