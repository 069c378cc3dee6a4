//! PyTorch's conventions for clamp, the reductions and the activations (issue 22), on both devices: values and
//! gradients against PyTorch's on the edge cases where conventions differ (ties, bounds,
//! `-inf` lines, zero norms; `tests/data/make_torch_goldens.py`), gradcheck of every new op
//! on random inputs and at zeros (on the GPU: against the CPU), and awkward sizes.

mod common;

use common::{assert_close, check_grad, golden, normal, uniform};
use ferrograd::{Device, Tensor};

/// `f`'s value and the gradients of its sum with respect to `inputs`, on `dev`.
fn value_and_grads(
    dev: &Device,
    inputs: &[&Tensor],
    f: impl Fn(&[Tensor]) -> ferrograd::Result<Tensor>,
) -> (Vec<f32>, Vec<Vec<f32>>) {
    let vars: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.to_device(dev).unwrap().requires_grad())
        .collect();
    let y = f(&vars).unwrap();
    if !y.tracks_grad() {
        // Flat (the 0-norm counts): no gradient, as every element's would be 0.
        let zeros = vars.iter().map(|v| vec![0.0; v.numel()]).collect();
        return (y.to_vec().unwrap(), zeros);
    }
    let grads = y.sum_all().unwrap().backward().unwrap();
    let g = vars
        .iter()
        .map(|v| match grads.get(v) {
            Some(g) => g.to_vec().unwrap(),
            None => vec![0.0; v.numel()],
        })
        .collect();
    (y.to_vec().unwrap(), g)
}

fn expect(name: &str) -> Vec<f32> {
    golden(name, &Device::cpu()).to_vec().unwrap()
}

fn clamp_conventions(dev: &Device) {
    let edge = golden("parity.edge", dev);
    type Clamp = fn(&Tensor) -> ferrograd::Result<Tensor>;
    let cases: [(&str, Clamp); 3] = [
        ("clamp", |x| x.clamp(0.0, 1.0)),
        ("clamp_min", |x| x.clamp_min(0.5)),
        ("clamp_max", |x| x.clamp_max(0.5)),
    ];
    for (name, f) in cases {
        let (y, g) = value_and_grads(dev, &[&edge], |t| f(&t[0]));
        let what = format!("{name} on {dev}");
        assert_close(&y, &expect(&format!("parity.{name}")), 0.0, 0.0, &what);
        let e = expect(&format!("parity.{name}.grad"));
        assert_close(&g[0], &e, 0.0, 0.0, &format!("{what}: gradient"));
    }
    let (lo, hi) = (golden("parity.lo", dev), golden("parity.hi", dev));
    let (y, g) = value_and_grads(dev, &[&edge, &lo, &hi], |t| {
        t[0].clamp_tensor(Some(&t[1]), Some(&t[2]))
    });
    assert_close(&y, &expect("parity.clamp_tensor"), 0.0, 0.0, "clamp_tensor");
    for (i, which) in ["x", "lo", "hi"].iter().enumerate() {
        let e = expect(&format!("parity.clamp_tensor.grad_{which}"));
        assert_close(
            &g[i],
            &e,
            0.0,
            0.0,
            &format!("clamp_tensor: gradient of {which}"),
        );
    }
    // One-sided tensor bounds; integers stay integers.
    let x = Tensor::new([-3.0, 0.0, 4.0], dev).unwrap();
    let lo = Tensor::new(-1.0, dev).unwrap();
    let y = x.clamp_tensor(Some(&lo), None).unwrap().to_vec().unwrap();
    assert_eq!(y, vec![-1.0, 0.0, 4.0]);
    let i = Tensor::from_vec(vec![-3i32, 0, 4], &[3], dev).unwrap();
    let c = i.clamp_min(0.0).unwrap();
    assert_eq!(c.to_vec_as::<i32>().unwrap(), vec![0, 0, 4]);
    assert_eq!(
        i.clamp_max(1.0).unwrap().to_vec_as::<i32>().unwrap(),
        vec![-3, 0, 1]
    );
    let msg = x.clamp_min(f32::NAN).unwrap_err().to_string();
    assert!(msg.starts_with("clamp_min:"), "{msg}");
}

fn max_min_conventions(dev: &Device) {
    let ties = golden("parity.ties", dev);
    type Reduce = fn(&Tensor) -> ferrograd::Result<Tensor>;
    let cases: [(&str, Reduce); 5] = [
        ("max", |x| x.max(1, false)),
        ("min", |x| x.min(0, false)),
        ("amax", |x| x.amax(1, false)),
        ("amin", |x| x.amin(0, false)),
        ("max_all", |x| x.max_all()),
    ];
    for (name, f) in cases {
        let (y, g) = value_and_grads(dev, &[&ties], |t| f(&t[0]));
        let what = format!("{name} on {dev}");
        assert_close(&y, &expect(&format!("parity.{name}")), 0.0, 0.0, &what);
        let e = expect(&format!("parity.{name}.grad"));
        assert_close(&g[0], &e, 0.0, 0.0, &format!("{what}: gradient"));
    }
    let (v, i) = ties.max_with_indices(1, false).unwrap();
    assert_eq!(v.to_vec().unwrap(), expect("parity.max"));
    assert_eq!(i.to_vec().unwrap(), expect("parity.max.indices"));
    let (v, i) = ties.min_with_indices(0, true).unwrap();
    assert_eq!((v.shape(), i.shape()), (&[1, 3][..], &[1, 3][..]));
    assert_eq!(i.to_vec().unwrap(), expect("parity.min.indices"));
    // An empty axis has no maximum, named as the op the user called.
    let empty = Tensor::zeros(&[2, 0], dev).unwrap().requires_grad();
    let msg = empty.max(1, false).unwrap_err().to_string();
    assert!(msg.starts_with("max: cannot reduce axis 1"), "{msg}");
    let msg = empty.min_with_indices(1, false).unwrap_err().to_string();
    assert!(
        msg.starts_with("min_with_indices: cannot reduce axis 1"),
        "{msg}"
    );
}

fn var_std_logsumexp_norm(dev: &Device) {
    let v = golden("parity.v", dev);
    for c in 0..3 {
        let var = v.var_with(1, c, false).unwrap().to_vec().unwrap();
        assert_close(
            &var,
            &expect(&format!("parity.var.c{c}")),
            1e-6,
            1e-5,
            "var",
        );
        let (y, g) = value_and_grads(dev, &[&v], |t| t[0].std_with(1, c, false));
        assert_close(&y, &expect(&format!("parity.std.c{c}")), 1e-6, 1e-5, "std");
        let e = expect(&format!("parity.std.c{c}.grad"));
        assert_close(
            &g[0],
            &e,
            1e-5,
            1e-4,
            &format!("std c{c}: gradient on {dev}"),
        );
    }
    let lse = golden("parity.lse", dev);
    let y = lse.logsumexp(1, false).unwrap().to_vec().unwrap();
    assert_close(&y, &expect("parity.logsumexp"), 1e-5, 1e-5, "logsumexp");
    let finite = lse.narrow(0, 0, 2).unwrap();
    let (_, g) = value_and_grads(dev, &[&finite], |t| t[0].logsumexp(1, false));
    assert_close(
        &g[0],
        &expect("parity.logsumexp.grad"),
        1e-6,
        1e-5,
        "logsumexp grad",
    );
    let nv = golden("parity.nv", dev);
    // (name, p, whether PyTorch's gradient is in the goldens: not for -inf, nor for the
    // 0-norm, a count without gradient)
    let ps = [
        ("1", 1.0, true),
        ("2", 2.0, true),
        ("3", 3.0, true),
        ("half", 0.5, true),
        ("inf", f32::INFINITY, true),
        ("ninf", f32::NEG_INFINITY, false),
        ("0", 0.0, false),
        ("n1", -1.0, true),
    ];
    for (name, p, has_grad) in ps {
        let (y, g) = value_and_grads(dev, &[&nv], |t| t[0].norm(p, 1, false));
        let what = format!("norm p={name} on {dev}");
        let e = expect(&format!("parity.norm.{name}"));
        assert_close(&y, &e, 1e-6, 1e-5, &what);
        if has_grad {
            let e = expect(&format!("parity.norm.{name}.grad"));
            assert_close(&g[0], &e, 1e-6, 1e-5, &format!("{what}: gradient"));
        }
    }
    let msg = nv.norm(f32::NAN, 1, false).unwrap_err().to_string();
    assert!(msg.starts_with("norm: p is NaN"), "{msg}");
    let msg = nv.norm(2.0, 5, false).unwrap_err().to_string();
    assert!(msg.starts_with("norm:"), "{msg}");
    // A correction past the line's length divides by 0, as PyTorch's (not by a negative).
    let two = Tensor::new([1.0, 3.0], dev).unwrap();
    assert_eq!(
        two.var_with(0, 3, false).unwrap().item().unwrap(),
        f32::INFINITY
    );
    let msg = v.std(4, false).unwrap_err().to_string();
    assert!(msg.starts_with("std:"), "{msg}");
}

/// Every new op's gradient on random inputs: finite differences on the CPU, the CPU's on
/// the GPU. Inputs avoid ties and zero lines, where the conventions above apply instead.
fn gradients(dev: &Device) {
    let x = normal(&[3, 5], 21);
    let pos = uniform(&[3, 5], 0.5, 2.0, 22);
    check_grad(dev, &[&x], |t| t[0].max(1, true), "max");
    check_grad(
        dev,
        &[&x],
        |t| Ok(t[0].min_with_indices(0, false)?.0),
        "min",
    );
    check_grad(dev, &[&x], |t| t[0].var_with(1, 0, false), "var c0");
    check_grad(dev, &[&x], |t| t[0].std(0, true), "std");
    check_grad(dev, &[&x], |t| t[0].std_all(), "std_all");
    check_grad(dev, &[&x], |t| t[0].sum_axes(&[0, 1], false), "sum_axes");
    let cube = normal(&[2, 3, 4], 23);
    check_grad(
        dev,
        &[&cube],
        |t| t[0].mean_axes(&[2, 0], true),
        "mean_axes",
    );
    check_grad(dev, &[&x], |t| t[0].logsumexp(-1, true), "logsumexp");
    for p in [1.0, 2.0, 3.0, 0.5, -2.0, f32::INFINITY] {
        check_grad(
            dev,
            &[&pos],
            |t| t[0].norm(p, 1, false),
            &format!("norm {p}"),
        );
    }
    check_grad(dev, &[&x], |t| t[0].norm_all(2.0), "norm_all");
    let (lo, hi) = (
        normal(&[5], 24),
        normal(&[3, 1], 25).add_scalar(3.0).unwrap(),
    );
    check_grad(
        dev,
        &[&x, &lo, &hi],
        |t| t[0].clamp_tensor(Some(&t[1]), Some(&t[2])),
        "clamp_tensor",
    );
    check_grad(dev, &[&x], |t| t[0].clamp_min(0.1), "clamp_min");
    check_grad(dev, &[&x], |t| t[0].clamp_max(0.1), "clamp_max");
    check_grad(
        dev,
        &[&x],
        |t| Ok(t[0].max_with_indices(0, true)?.0),
        "max_with_indices",
    );
    check_grad(dev, &[&x], |t| t[0].std_with(1, 0, true), "std_with");
    check_grad(dev, &[&x], |t| t[0].var_all_with(2), "var_all_with");
    // Norms of lines holding a zero element (p < 1 too): PyTorch's gradient 0 there.
    let zeros = Tensor::new([[0.0, 1.5, -0.7], [0.0, 0.0, 0.0]], &Device::cpu()).unwrap();
    for p in [0.5, 3.0] {
        check_grad(
            dev,
            &[&zeros],
            |t| t[0].norm(p, 1, false),
            &format!("norm {p} at 0"),
        );
    }
}

/// Awkward sizes: a size-1 axis, a prime length, an empty other axis, a 0-D tensor, and an
/// axis list naming an axis twice.
fn awkward_sizes(dev: &Device) {
    let x = uniform(&[1, 7, 13], -2.0, 2.0, 30).to_device(dev).unwrap();
    let cpu = x.to_device(&Device::cpu()).unwrap();
    type Op = fn(&Tensor) -> ferrograd::Result<Tensor>;
    let ops: [(&str, Op); 7] = [
        ("max", |t| t.max(2, false)),
        ("min", |t| t.min(0, true)),
        ("std", |t| t.std(1, false)),
        ("sum_axes", |t| t.sum_axes(&[0, 2], false)),
        ("logsumexp", |t| t.logsumexp(1, true)),
        ("norm", |t| t.norm(2.0, 2, true)),
        ("norm_all", |t| t.norm_all(3.0)),
    ];
    for (name, f) in ops {
        let (a, e) = (f(&x).unwrap(), f(&cpu).unwrap());
        assert_eq!(a.shape(), e.shape(), "{name}");
        let what = format!("{name} on {dev}");
        assert_close(
            &a.to_vec().unwrap(),
            &e.to_vec().unwrap(),
            1e-5,
            1e-5,
            &what,
        );
    }
    let empty = Tensor::zeros(&[0, 4], dev).unwrap();
    assert_eq!(empty.max(1, false).unwrap().shape(), &[0]);
    // The same through the gradient-tracking path (gather at the index).
    let tracked = empty.requires_grad();
    assert_eq!(tracked.max(1, false).unwrap().shape(), &[0]);
    let (v, i) = tracked.min_with_indices(1, true).unwrap();
    assert_eq!((v.shape(), i.shape()), (&[0, 1][..], &[0, 1][..]));
    let lse = Tensor::zeros(&[3, 0], dev)
        .unwrap()
        .logsumexp(1, false)
        .unwrap();
    assert_eq!(lse.to_vec().unwrap(), vec![f32::NEG_INFINITY; 3]); // as PyTorch's
    assert_eq!(
        empty.sum_axes(&[0], false).unwrap().to_vec().unwrap(),
        vec![0.0; 4]
    );
    assert_eq!(
        empty.norm(2.0, 0, false).unwrap().to_vec().unwrap(),
        vec![0.0; 4]
    );
    let s = Tensor::new(-2.5, dev).unwrap();
    assert_eq!(s.max(0, false).unwrap().item().unwrap(), -2.5);
    let st = s.requires_grad();
    let (v, i) = st.max_with_indices(0, false).unwrap();
    assert_eq!((v.item().unwrap(), i.item_as::<i32>().unwrap()), (-2.5, 0));
    let g = v.backward().unwrap();
    assert_eq!(g.get(&st).unwrap().item().unwrap(), 1.0);
    assert_eq!(s.sum_axes(&[], false).unwrap().item().unwrap(), -2.5);
    assert_eq!(s.norm_all(2.0).unwrap().item().unwrap(), 2.5);
    // pow at 0, which WGSL leaves undefined: inf for a negative exponent, 0 for a positive.
    let z = Tensor::new([0.0, 2.0], dev).unwrap();
    let inv = z.pow_scalar(-1.0).unwrap().to_vec().unwrap();
    assert_eq!(inv, vec![f32::INFINITY, 0.5]);
    assert_eq!(z.pow_scalar(0.5).unwrap().to_vec().unwrap()[0], 0.0);
    let nan = Tensor::new([0.0, 1.0, f32::NAN], dev).unwrap();
    let p = nan.pow_scalar(f32::NAN).unwrap().to_vec().unwrap();
    assert!(p[0].is_nan() && p[1] == 1.0 && p[2].is_nan(), "{p:?}"); // IEEE's 1^NaN = 1
    assert!(nan.pow_scalar(2.0).unwrap().to_vec().unwrap()[2].is_nan());
    let ints = Tensor::from_vec(vec![1i32, 5], &[2], dev).unwrap();
    let msg = ints.clamp_min(f32::NAN).unwrap_err().to_string();
    assert!(msg.starts_with("clamp_min:"), "{msg}");
    let msg = x.sum_axes(&[2, -1], false).unwrap_err().to_string();
    assert!(
        msg.contains("sum_axes: axis 2 appears more than once"),
        "{msg}"
    );
}

/// SiLU, ELU, Softplus, Mish, ReLU6 and Hardtanh against PyTorch on 0, tiny arguments (where
/// `e^x - 1` and `ln(1 + x)` cancel unless computed with care), the softplus threshold and
/// large ones: values and gradients; then gradcheck on random inputs, errors, and sizes that
/// cross the kernels' chunks and workgroups.
fn activations(dev: &Device) {
    let act = golden("parity.act", dev);
    type Act = fn(&Tensor) -> ferrograd::Result<Tensor>;
    let cases: [(&str, Act); 12] = [
        ("gelu", |x| x.gelu()),
        ("gelu_tanh", |x| x.gelu_tanh()),
        ("silu", |x| x.silu()),
        ("elu", |x| x.elu(1.0)),
        ("elu_half", |x| x.elu(0.5)),
        ("softplus", |x| x.softplus(1.0, 20.0)),
        ("softplus_b2", |x| x.softplus(2.0, 5.0)),
        ("softplus_neg", |x| x.softplus(-1.0, 20.0)),
        ("tanh", |x| x.tanh()),
        ("mish", |x| x.mish()),
        ("relu6", |x| x.relu6()),
        ("hardtanh", |x| x.hardtanh(-1.0, 1.0)),
    ];
    // The GPU's exp and log are not correctly rounded: a few ulps.
    let rtol = if dev.is_gpu() { 2e-5 } else { 2e-6 };
    for (name, f) in cases {
        let (y, g) = value_and_grads(dev, &[&act], |t| f(&t[0]));
        let what = format!("{name} on {dev}");
        assert_close(&y, &expect(&format!("parity.{name}")), 1e-30, rtol, &what);
        let e = expect(&format!("parity.{name}.grad"));
        // tanh's gradient is 1 - y^2 from the output, as PyTorch's: at |x| = 5 that cancels
        // 1e4-fold, so an ulp of y (ours and PyTorch's tanh round apart) is 1e-3 of it.
        let grtol = if name == "tanh" { 1e-3 } else { rtol };
        assert_close(&g[0], &e, 1e-30, grtol, &format!("{what}: gradient"));
    }
    let x = normal(&[4, 5], 31);
    for (name, f) in cases {
        check_grad(dev, &[&x], |t| f(&t[0]), name);
    }
    check_grad(
        dev,
        &[&x],
        |t| t[0].softplus(3.0, 1.0),
        "softplus beta 3, threshold 1",
    );
    check_grad(
        dev,
        &[&x],
        |t| t[0].softplus(-1.0, 20.0),
        "softplus beta -1",
    );
    // Odd sizes through each kernel, against the CPU.
    for n in [0, 1, 257, 70_001] {
        let x = uniform(&[n], -8.0, 8.0, n as u64);
        for (name, f) in cases {
            common::parity(
                dev,
                &[&x],
                |t| f(&t[0]),
                1e-6,
                2e-5,
                &format!("{name} of {n}"),
            );
        }
    }
    let err = |r: ferrograd::Result<Tensor>| r.unwrap_err().to_string();
    assert_eq!(
        err(x.softplus(0.0, 20.0)),
        "softplus: beta must be finite and non-zero and threshold not NaN, found beta 0 and threshold 20"
    );
    assert_eq!(err(x.elu(f32::NAN)), "elu: alpha must be finite, found NaN");
    assert_eq!(
        err(x.hardtanh(1.0, -1.0)),
        "hardtanh: min 1 must not exceed max -1"
    );
    // NaN and infinities, as PyTorch's: NaN stays NaN, the ends are the limits.
    let ends = Tensor::new([f32::NAN, f32::NEG_INFINITY, f32::INFINITY], dev).unwrap();
    let v = |t: ferrograd::Result<Tensor>| t.unwrap().to_vec().unwrap();
    let e = v(ends.elu(1.0));
    assert!(
        e[0].is_nan() && e[1] == -1.0 && e[2] == f32::INFINITY,
        "elu {e:?}"
    );
    let s = v(ends.softplus(1.0, 20.0));
    assert!(
        s[0].is_nan() && s[1] == 0.0 && s[2] == f32::INFINITY,
        "softplus {s:?}"
    );
    let t = v(ends.tanh());
    assert!(t[0].is_nan() && t[1] == -1.0 && t[2] == 1.0, "tanh {t:?}");
    assert_eq!(
        v(Tensor::new([1e-8f32, -3e-20], dev).unwrap().tanh()),
        vec![1e-8, -3e-20]
    );
    // The modules.
    use ferrograd::nn::{Hardtanh, Mish, Module, ReLU6, SiLU, Softplus, ELU};
    let xd = x.to_device(dev).unwrap();
    let same = |a: Tensor, b: Tensor| assert_eq!(a.to_vec().unwrap(), b.to_vec().unwrap());
    same(SiLU.forward(&xd).unwrap(), xd.silu().unwrap());
    same(Mish.forward(&xd).unwrap(), xd.mish().unwrap());
    same(ReLU6.forward(&xd).unwrap(), xd.relu6().unwrap());
    same(ELU(0.3).forward(&xd).unwrap(), xd.elu(0.3).unwrap());
    same(
        Softplus::default().forward(&xd).unwrap(),
        xd.softplus(1.0, 20.0).unwrap(),
    );
    same(
        Hardtanh(-2.0, 2.0).forward(&xd).unwrap(),
        xd.hardtanh(-2.0, 2.0).unwrap(),
    );
    assert_eq!(
        Softplus::default().describe(),
        "Softplus(beta=1, threshold=20)"
    );
}

device_tests!(
    clamp_conventions,
    max_min_conventions,
    var_std_logsumexp_norm,
    gradients,
    awkward_sizes,
    activations,
);
