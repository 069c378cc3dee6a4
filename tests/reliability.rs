//! Hostile inputs, one test per bug seen (issue 25): each must come back as a clear
//! `ferrograd::Error` naming the op and the values, or as PyTorch's answer, on both backends.
//! None may panic, abort the process, or return a wrong answer with `Ok`.

mod common;
use ferrograd::nn::{self, Module};
use ferrograd::{Conv2dOptions, Device, Pool2dOptions, Tensor};

fn err<T>(r: ferrograd::Result<T>, what: &str) -> String {
    match r {
        Ok(_) => panic!("{what}: expected an error, got Ok"),
        Err(e) => e.to_string(),
    }
}

fn zeros(shape: &[usize], dev: &Device) -> Tensor {
    Tensor::zeros(shape, dev).unwrap()
}

/// Every op accepts a zero-size axis anywhere (PyTorch's answers: the sum of nothing is 0,
/// the max of nothing is an error naming the axis).
fn zero_size(dev: &Device) {
    let e = zeros(&[3, 0], dev);
    let view = e.t().unwrap(); // [0, 3], not contiguous
    assert_eq!(view.to_vec().unwrap(), Vec::<f32>::new());
    assert!(format!("{view}").contains("shape=[0, 3]"));
    assert_eq!(view.sum_all().unwrap().to_vec().unwrap(), vec![0.0]);
    assert_eq!(view.contiguous().unwrap().shape(), &[0, 3]);
    let s = view.sum(0, false).unwrap();
    assert_eq!((s.shape(), s.to_vec().unwrap()), (&[3][..], vec![0.0; 3]));
    let s = zeros(&[2, 0], dev).sum(0, false).unwrap();
    assert_eq!(s.shape(), &[0]);
    assert_eq!(
        zeros(&[2, 0], dev).sum(1, true).unwrap().to_vec().unwrap(),
        vec![0.0; 2]
    );
    assert_eq!(zeros(&[0, 4], dev).mean(1, false).unwrap().shape(), &[0]);
    let m = err(zeros(&[2, 0], dev).max(1, false), "max of nothing");
    assert!(m.contains("max") && m.contains("axis 1"), "{m}");
    let m = err(zeros(&[0], dev).argmax_all(), "argmax of nothing");
    assert!(m.starts_with("argmax"), "{m}");
    // softmax of no rows, then indexing into it
    let ls = zeros(&[0, 5], dev).log_softmax(1).unwrap();
    assert_eq!(ls.shape(), &[0, 5]);
    assert_eq!(
        ls.narrow(0, 0, 0).unwrap().to_vec().unwrap(),
        Vec::<f32>::new()
    );
    assert_eq!(zeros(&[3, 0], dev).softmax(1).unwrap().shape(), &[3, 0]);
    // indexing with no indices
    let a = Tensor::arange(0.0, 6.0, 1.0, dev)
        .unwrap()
        .reshape(&[2, 3])
        .unwrap();
    let none = Tensor::zeros_dtype(&[0], ferrograd::DType::I32, dev).unwrap();
    assert_eq!(a.index_select(1, &none).unwrap().shape(), &[2, 0]);
    assert_eq!(
        a.index_select(0, &none).unwrap().to_vec().unwrap(),
        Vec::<f32>::new()
    );
    let g = a
        .gather(
            1,
            &Tensor::zeros_dtype(&[2, 0], ferrograd::DType::I32, dev).unwrap(),
        )
        .unwrap();
    assert_eq!(g.shape(), &[2, 0]);
    assert_eq!(none.one_hot(4).unwrap().shape(), &[0, 4]);
    // elementwise, matmul and cat with empty operands
    assert_eq!(view.exp().unwrap().shape(), &[0, 3]);
    assert_eq!(view.add(&zeros(&[3], dev)).unwrap().shape(), &[0, 3]);
    let mm = zeros(&[2, 0], dev).matmul(&zeros(&[0, 3], dev)).unwrap();
    assert_eq!(mm.to_vec().unwrap(), vec![0.0; 6]);
    assert_eq!(view.matmul(&zeros(&[3, 2], dev)).unwrap().shape(), &[0, 2]);
    let c = Tensor::cat(&[&view, &zeros(&[2, 3], dev)], 0).unwrap();
    assert_eq!(c.shape(), &[2, 3]);
    // layers
    assert_eq!(
        nn::Flatten
            .forward(&zeros(&[0, 3, 4], dev))
            .unwrap()
            .shape(),
        &[0, 12]
    );
    let lin = nn::Linear::new(4, 2, true, dev).unwrap();
    assert_eq!(lin.forward(&zeros(&[0, 4], dev)).unwrap().shape(), &[0, 2]);
    let pooled = zeros(&[0, 1, 4, 4], dev)
        .max_pool2d(&Pool2dOptions::new(2))
        .unwrap();
    assert_eq!(pooled.shape(), &[0, 1, 2, 2]);
}

/// Sizes that overflow `usize` or cannot be allocated are errors, never an abort.
fn huge_sizes(dev: &Device) {
    let m = err(Tensor::zeros(&[1 << 40], dev), "zeros 2^40");
    assert!(m.starts_with("zeros") || m.starts_with("full"), "{m}");
    assert!(m.contains("bytes"), "{m}");
    let m = err(Tensor::ones(&[1 << 62], dev), "ones 2^62");
    assert!(m.contains("bytes") || m.contains("too many"), "{m}");
    let m = err(Tensor::ones(&[1 << 40, 1 << 40], dev), "ones overflowing");
    assert!(m.contains("too many elements"), "{m}");
    let m = err(Tensor::arange(0.0, 1e12, 1.0, dev), "arange 1e12");
    assert!(m.starts_with("arange"), "{m}");
    let m = err(Tensor::linspace(0.0, 1.0, usize::MAX, dev), "linspace MAX");
    assert!(m.starts_with("linspace"), "{m}");
    let m = err(Tensor::eye(1 << 20, dev), "eye 2^20");
    assert!(m.starts_with("eye"), "{m}");
    let idx = zeros(&[2], dev);
    let m = err(idx.one_hot(1 << 40), "one_hot 2^40");
    assert!(m.starts_with("one_hot"), "{m}");
    let one = Tensor::ones(&[1, 1], dev).unwrap();
    let m = err(one.expand(&[usize::MAX, 2]), "expand overflowing");
    assert!(
        m.starts_with("expand") || m.starts_with("broadcast_to"),
        "{m}"
    );
    // A legal view whose copy does not fit.
    let big = one.expand(&[1 << 22, 1 << 22]).unwrap();
    let m = err(big.contiguous(), "contiguous of a huge expand");
    assert!(m.starts_with("contiguous") && m.contains("bytes"), "{m}");
    let m = err(big.exp(), "exp of a huge expand");
    assert!(m.starts_with("exp") && m.contains("bytes"), "{m}");
    assert!(format!("{big}").contains("shape=[4194304, 4194304]"));
    // The sum of an expanded view is computed without materialising it... or refused cleanly.
    match big.sum_all() {
        Ok(s) => assert_eq!(s.to_scalar().unwrap(), (1u64 << 44) as f32),
        Err(e) => assert!(e.to_string().contains("sum"), "{e}"),
    }
}

/// Conv and pool geometry near `usize::MAX` is an error naming the op and the argument.
fn huge_geometry(dev: &Device) {
    let x = zeros(&[1, 1, 4, 4], dev);
    let w = zeros(&[1, 1, 3, 3], dev);
    for (what, o) in [
        ("padding", Conv2dOptions::new().padding(1 << 63)),
        ("dilation", Conv2dOptions::new().dilation(1 << 62)),
        ("padding", Conv2dOptions::new().padding(1 << 40)),
    ] {
        let m = err(x.conv2d(&w, None, &o), what);
        assert!(m.starts_with("conv2d:") && m.contains(what), "{what}: {m}");
    }
    // A stride past the input takes one window, as in PyTorch, however large it is.
    let x = Tensor::arange(0.0, 16.0, 1.0, dev)
        .unwrap()
        .reshape(&[1, 1, 4, 4])
        .unwrap();
    let w = Tensor::ones(&[1, 1, 3, 3], dev).unwrap();
    let y = x
        .conv2d(&w, None, &Conv2dOptions::new().stride(usize::MAX))
        .unwrap();
    assert_eq!(
        (y.shape(), y.to_vec().unwrap()),
        (&[1, 1, 1, 1][..], vec![45.0])
    );
    let p = x
        .avg_pool2d(&Pool2dOptions::new(2).stride(usize::MAX))
        .unwrap();
    assert_eq!(p.to_vec().unwrap(), vec![2.5]);
    let m = err(
        x.conv_transpose2d(&w, None, &Conv2dOptions::new().stride(1 << 62)),
        "conv_transpose2d stride",
    );
    assert!(
        m.starts_with("conv_transpose2d:") && m.contains("stride"),
        "{m}"
    );
    let m = err(
        x.max_pool2d(&Pool2dOptions::new(2).padding(1 << 63)),
        "max_pool2d padding",
    );
    assert!(m.starts_with("max_pool2d:") && m.contains("padding"), "{m}");
    let m = err(
        x.max_pool2d(&Pool2dOptions::new(1 << 40)),
        "max_pool2d kernel",
    );
    assert!(m.starts_with("max_pool2d:") && m.contains("kernel"), "{m}");
}

/// A view with more axes than a kernel indexes can still be copied.
fn many_axes(dev: &Device) {
    let n = 2usize.pow(10);
    let t = Tensor::arange(0.0, n as f32, 1.0, dev)
        .unwrap()
        .reshape(&[2; 10])
        .unwrap();
    let perm: Vec<usize> = (0..10).rev().collect();
    let p = t.permute(&perm).unwrap();
    let c = p.contiguous().unwrap();
    let v = c.to_vec().unwrap();
    // Element [i0..i9] of the reversed view is element [i9..i0] of t: bit reversal.
    for (i, &x) in v.iter().enumerate() {
        let rev = (0..10).fold(0, |acc, b| acc | (((i >> b) & 1) << (9 - b)));
        assert_eq!(x, rev as f32, "element {i}");
    }
    assert_eq!(p.add(&p).unwrap().to_vec().unwrap()[1], 2.0 * v[1]);
    assert_eq!(
        p.sum_all().unwrap().to_scalar().unwrap(),
        (n * (n - 1) / 2) as f32
    );
}

/// Messages name the op the user called, not an internal one.
fn messages_name_the_callers_op(dev: &Device) {
    let m = err(nn::Linear::new(0, 5, true, dev), "Linear 0 inputs");
    assert!(m.starts_with("Linear"), "{m}");
    let a = zeros(&[2], dev);
    let b = zeros(&[3], dev);
    let m = err(Tensor::stack(&[&a, &b], 5), "stack axis");
    assert!(m.starts_with("stack"), "{m}");
    // On the GPU the out-of-range index is reported when the loss is read back; it is charged
    // to this loss alone, so tests sharing the device are unaffected.
    let logits = zeros(&[2, 3], dev);
    let bad = Tensor::from_vec(vec![0.0, 7.0], &[2], dev).unwrap();
    let m = err(
        nn::loss::nll(&logits, &bad, nn::loss::Reduction::Mean).and_then(|l| l.to_vec()),
        "nll target",
    );
    assert!(m.starts_with("nll"), "{m}");
}

/// A fused cross entropy stays finite when a logit is -inf (PyTorch: finite).
fn cross_entropy_neg_inf(dev: &Device) {
    let x = Tensor::from_vec(vec![f32::NEG_INFINITY, 0.0, 1.0], &[1, 3], dev).unwrap();
    let t = Tensor::from_vec(vec![2], &[1], dev).unwrap();
    for s in [0.0, 0.1] {
        let x = x.requires_grad();
        let l =
            nn::loss::cross_entropy_with_smoothing(&x, &t, s, nn::loss::Reduction::Mean).unwrap();
        let v = l.to_scalar().unwrap();
        if s == 0.0 {
            // -log softmax(x)[2] = log(1 + e) - 1
            assert!((v - ((1.0f32 + 1f32.exp()).ln() - 1.0)).abs() < 1e-5, "{v}");
        } else {
            // PyTorch with smoothing sums over -inf: the loss is inf, never NaN.
            assert!(!v.is_nan(), "smoothing {s}: {v}");
        }
        if s == 0.0 {
            let g = l.backward().unwrap();
            let gx = g.get(&x).unwrap().to_vec().unwrap();
            assert!(gx.iter().all(|v| v.is_finite()), "{gx:?}");
            assert_eq!(gx[0], 0.0);
        }
    }
}

device_tests!(
    zero_size,
    huge_sizes,
    huge_geometry,
    many_axes,
    messages_name_the_callers_op,
    cross_entropy_neg_inf,
);

/// `fn main() -> ferrograd::Result<()>` prints `Debug`: it must be the readable message.
#[test]
fn error_debug_is_the_message() {
    let e = Tensor::zeros(&[2], &Device::cpu())
        .unwrap()
        .reshape(&[3])
        .unwrap_err();
    assert_eq!(format!("{e:?}"), e.to_string());
}

/// Optimizer and schedule state that no longer fits is an error, never a panic or NaN.
fn optimizer_state(dev: &Device) {
    use ferrograd::optim::{Adam, AdamConfig, ExponentialLr, Optimizer, Schedule};
    let lin = nn::Linear::new(3, 2, false, dev).unwrap();
    let mut opt = Adam::new(lin.parameters(), AdamConfig::default()).unwrap();
    let x = Tensor::ones(&[4, 3], dev).unwrap();
    let step = |opt: &mut Adam| -> ferrograd::Result<()> {
        let g = lin.forward(&x)?.sum_all()?.backward()?;
        opt.step(&g)
    };
    step(&mut opt).unwrap();
    // A parameter reshaped after it has stepped.
    lin.weight.set(Tensor::zeros(&[5, 3], dev).unwrap());
    let xs = Tensor::ones(&[4, 3], dev).unwrap();
    let g = lin
        .forward(&xs)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let m = err(opt.step(&g), "step after set");
    assert!(
        m.starts_with("optimizer step: parameter 0 is now [5, 3]"),
        "{m}"
    );
    lin.weight.set(Tensor::zeros(&[2, 3], dev).unwrap());
    step(&mut opt).unwrap();
    // A corrupt step count, and an empty state that would wipe what is there.
    let mut state = opt.state_dict();
    for (k, t) in state.iter_mut() {
        if k == "0.step" {
            *t = Tensor::scalar(1e30, dev).unwrap();
        }
    }
    let m = err(opt.load_state_dict(&state), "step 1e30");
    assert!(
        m.contains("step count must be a whole number in 0..=16777216"),
        "{m}"
    );
    let m = err(opt.load_state_dict(&[]), "empty state");
    assert!(m.contains("discard the state of 1 parameter(s)"), "{m}");
    step(&mut opt).unwrap();
    // Rates that are not finite and >= 0.
    for lr in [f32::NAN, f32::INFINITY, -1.0] {
        let m = err(opt.set_lr(lr), "bad lr");
        assert!(
            m.starts_with("set_lr: the learning rate must be finite"),
            "{m}"
        );
    }
    let sched = ExponentialLr::new(1.0, 10.0).unwrap();
    assert!(
        opt.set_lr(sched.lr(100)).is_err(),
        "10^100 is infinite in f32"
    );
    assert_eq!(opt.lr(), 1e-3, "a refused rate leaves the old one");
    let w = lin.weight.value().to_vec().unwrap();
    assert!(w.iter().all(|v| v.is_finite()), "{w:?}");
}

device_tests!(optimizer_state);

/// The CPU pool keeps buffers by size class: lengths nothing asks for again do not pile up.
#[test]
fn cpu_pool_stays_bounded() {
    let dev = Device::cpu();
    dev.empty_cache();
    for i in 0..200usize {
        // 200 distinct lengths of ~64-70 K elements: a handful of size classes.
        let t = Tensor::zeros(&[65_536 + 37 * i], &dev).unwrap();
        drop(t.exp().unwrap());
    }
    let s = dev.memory_stats();
    assert!(s.pooled_buffers <= 8, "{s:?}");
}
