//! Mixed-precision training on both devices: `Module::to_dtype`, the optimizers' f32 master
//! weights for half parameters, and `GradScaler`'s scaling, skipping and scale updates.

mod common;
use common::{assert_close, normal};
use ferrograd::nn::{loss, Linear, Module, Parameter, ReLU, Sequential};
use ferrograd::optim::{Adam, AdamConfig, GradScaler, GradScalerConfig, Optimizer, Sgd, SgdConfig};
use ferrograd::{DType, Device, Tensor};

/// A step smaller than half an f16 ulp still moves the parameter over many steps: the
/// optimizer accumulates it in its f32 master copy.
fn master_weights(dev: &Device) {
    for dtype in [DType::F16, DType::BF16] {
        let w = Parameter::new(Tensor::ones_dtype(&[3], dtype, dev).unwrap());
        let mut opt = Sgd::new(
            vec![w.clone()],
            SgdConfig {
                lr: 1e-4,
                ..Default::default()
            },
        )
        .unwrap();
        for _ in 0..40 {
            let loss = w.value().sum_all().unwrap(); // gradient 1 everywhere
            opt.step(&loss.backward().unwrap()).unwrap();
        }
        let v = w.value();
        assert_eq!(v.dtype(), dtype);
        // 1 - 40e-4 = 0.996, rounded once to the half.
        let want = Tensor::full(&[3], 1.0 - 40.0 * 1e-4, dev)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        assert_close(
            &v.to_vec().unwrap(),
            &want.to_vec().unwrap(),
            0.0,
            0.0,
            "master weights",
        );
        assert!(
            v.to_vec().unwrap()[0] < 1.0,
            "{dtype}: the step rounded away"
        );
        // The master copy is saved with the state and restored with it (optional on load).
        let sd = opt.state_dict();
        let master = |sd: &[(String, Tensor)]| {
            let m = sd
                .iter()
                .find(|(n, _)| n == "0.master_param")
                .map(|(_, t)| t.clone());
            m.map(|m| (m.dtype(), m.to_vec().unwrap()))
        };
        let saved = master(&sd).expect("a master copy in the state dict");
        assert_eq!(saved.0, DType::F32);
        let w2 = Parameter::new(v.clone());
        let mut opt2 = Sgd::new(
            vec![w2.clone()],
            SgdConfig {
                lr: 1e-4,
                ..Default::default()
            },
        )
        .unwrap();
        opt2.load_state_dict(&sd).unwrap();
        assert_eq!(master(&opt2.state_dict()), Some(saved));
        let without: Vec<_> = sd
            .into_iter()
            .filter(|(n, _)| n != "0.master_param")
            .collect();
        opt2.load_state_dict(&without).unwrap();
        // A value set from outside replaces the master copy.
        w.set(Tensor::full_dtype(&[3], 2.0, dtype, dev).unwrap());
        let loss = w.value().sum_all().unwrap();
        opt.step(&loss.backward().unwrap()).unwrap();
        assert!(
            (w.value().to_vec().unwrap()[0] - 2.0).abs() < 0.02,
            "{dtype}: stale master"
        );
    }
}

fn scaler_skips_and_adapts(dev: &Device) {
    let w = Parameter::new(Tensor::ones_dtype(&[4], DType::F16, dev).unwrap());
    let mut opt = Adam::new(vec![w.clone()], AdamConfig::default()).unwrap();
    let cfg = GradScalerConfig {
        init_scale: 1e30, // the f16 gradients overflow at this scale
        growth_interval: 2,
        ..Default::default()
    };
    let mut scaler = GradScaler::new(dev, cfg).unwrap();
    let loss = |w: &Parameter| w.value().square().unwrap().sum_all().unwrap();
    let mut grads = scaler.scale(&loss(&w)).unwrap().backward().unwrap();
    scaler.step(&mut opt, &mut grads).unwrap();
    assert_eq!(scaler.found_inf().unwrap(), Some(true));
    let e = scaler.step(&mut opt, &mut grads).unwrap_err().to_string();
    assert!(
        e.starts_with("GradScaler::step: step() was already called"),
        "{e}"
    );
    scaler.update().unwrap();
    assert_eq!(scaler.found_inf().unwrap(), Some(true), "kept after update");
    assert_eq!(
        w.value().to_vec().unwrap(),
        vec![1.0; 4],
        "an overflowed step is skipped"
    );
    assert_eq!(scaler.scale_value().unwrap(), 0.5e30);
    assert!(opt
        .state_dict()
        .iter()
        .all(|(_, t)| t.all_finite().unwrap()));
    // A scale that fits: steps go through; after two good ones the scale doubles.
    let mut scaler = GradScaler::new(
        dev,
        GradScalerConfig {
            init_scale: 1024.0,
            ..cfg
        },
    )
    .unwrap();
    for step in 0..3 {
        let mut grads = scaler.scale(&loss(&w)).unwrap().backward().unwrap();
        scaler.step(&mut opt, &mut grads).unwrap();
        assert_eq!(scaler.found_inf().unwrap(), Some(false));
        scaler.update().unwrap();
        let want = if step == 0 { 1024.0 } else { 2048.0 };
        assert_eq!(scaler.scale_value().unwrap(), want, "step {step}");
    }
    assert!(
        w.value().to_vec().unwrap()[0] < 1.0,
        "the good steps moved the weight"
    );
    // Misuse is an error, not a panic.
    assert!(scaler.update().is_err());
    let flag = Tensor::zeros(&[1], dev).unwrap();
    assert!(opt.skip_steps_if(Some(flag)).is_err());
}

/// A skipped step leaves the parameter and state alone in the fused kernel and, for a
/// parameter past one GPU binding, in the composed update too; an unskipped one moves both.
fn skip_flag(dev: &Device) {
    for limit in [None, Some(4096)] {
        if limit.is_some() && !dev.is_gpu() {
            continue;
        }
        ferrograd::set_binding_limit(dev, limit);
        let w = Parameter::new(Tensor::ones(&[3000], dev).unwrap());
        let mut opt = Adam::new(vec![w.clone()], AdamConfig::default()).unwrap();
        let seed = Tensor::ones(&[3000], dev).unwrap();
        // (Not a sum: a reduction line past one binding is refused.)
        let grads = || {
            w.value()
                .mul_scalar(1.0)
                .unwrap()
                .backward_with(&seed)
                .unwrap()
        };
        opt.step(&grads()).unwrap(); // a state to keep
        let (p0, s0) = (w.value().to_vec().unwrap(), opt.state_dict());
        let yes = Tensor::ones(&[1], dev).unwrap().gt_scalar(0.0).unwrap();
        opt.skip_steps_if(Some(yes.clone())).unwrap();
        opt.step(&grads()).unwrap();
        assert_eq!(
            w.value().to_vec().unwrap(),
            p0,
            "{limit:?}: a skipped step moved the weight"
        );
        for ((n, a), (_, b)) in opt.state_dict().iter().zip(&s0) {
            if !n.ends_with("step") {
                assert_eq!(a.to_vec().unwrap(), b.to_vec().unwrap(), "{n}");
            }
        }
        opt.skip_steps_if(Some(yes.logical_not().unwrap())).unwrap();
        opt.step(&grads()).unwrap();
        ferrograd::set_binding_limit(dev, None);
        assert!(
            w.value().to_vec().unwrap()[0] < p0[0],
            "{limit:?}: a kept step did not move"
        );
    }
}

/// A half model and its optimizer saved mid-run and loaded into fresh ones continue exactly
/// as the original (the f32 master copies travel with the optimizer state).
fn resume_is_exact(dev: &Device) {
    use ferrograd::nn;
    let build = || {
        ferrograd::manual_seed(5);
        let m = Linear::new(6, 3, true, dev).unwrap();
        m.to_dtype(DType::F16).unwrap();
        m
    };
    let x = normal(&[8, 6], 9)
        .to_dtype(DType::F16)
        .unwrap()
        .to_device(dev)
        .unwrap();
    let step = |m: &Linear, opt: &mut Adam| {
        let l = m
            .forward(&x)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
            .square()
            .unwrap();
        opt.step(&l.mean_all().unwrap().backward().unwrap())
            .unwrap();
    };
    let cfg = AdamConfig {
        lr: 1e-3,
        ..Default::default()
    };
    let a = build();
    let mut opt_a = Adam::new(a.parameters(), cfg).unwrap();
    (0..3).for_each(|_| step(&a, &mut opt_a));
    let dir = std::env::temp_dir().join(format!("ferrograd-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tag = if dev.is_gpu() { "gpu" } else { "cpu" };
    let (model_path, opt_path) = (
        dir.join(format!("{tag}-m.st")),
        dir.join(format!("{tag}-o.st")),
    );
    nn::save(&model_path, &a, "Linear(6, 3)").unwrap();
    nn::save_tensors(&opt_path, &opt_a.state_dict(), &[]).unwrap();
    let b = build();
    nn::load(&model_path, &b).unwrap();
    let mut opt_b = Adam::new(b.parameters(), cfg).unwrap();
    opt_b
        .load_state_dict(&nn::load_tensors(&opt_path, dev).unwrap().tensors)
        .unwrap();
    for _ in 0..3 {
        step(&a, &mut opt_a);
        step(&b, &mut opt_b);
    }
    for (pa, pb) in a.parameters().iter().zip(b.parameters()) {
        assert_eq!(pb.value().dtype(), DType::F16);
        assert_eq!(
            pa.value().to_vec().unwrap(),
            pb.value().to_vec().unwrap(),
            "{dev}"
        );
    }
}

/// A small MLP converted to each half dtype trains (loss down by half) with the scaler, and
/// its forward pass matches the f32 model's within the half's precision.
fn half_model_trains(dev: &Device) {
    for dtype in [DType::F16, DType::BF16] {
        ferrograd::manual_seed(3);
        let model = Sequential::new()
            .add(Linear::new(8, 16, true, dev).unwrap())
            .add(ReLU)
            .add(Linear::new(16, 3, true, dev).unwrap());
        let x = normal(&[32, 8], 1).to_device(dev).unwrap();
        let classes = x.narrow(1, 0, 3).unwrap().argmax(1, false).unwrap();
        let y32 = model.forward(&x).unwrap();
        model.to_dtype(dtype).unwrap();
        assert!(model
            .parameters()
            .iter()
            .all(|p| p.value().dtype() == dtype));
        let xh = x.to_dtype(dtype).unwrap();
        let yh = model.forward(&xh).unwrap();
        assert_eq!(yh.dtype(), dtype);
        let tol = if dtype == DType::F16 { 1e-2 } else { 6e-2 };
        assert_close(
            &yh.to_vec().unwrap(),
            &y32.to_vec().unwrap(),
            tol,
            tol,
            "half forward",
        );
        let mut opt = Adam::new(
            model.parameters(),
            AdamConfig {
                lr: 1e-2,
                ..Default::default()
            },
        )
        .unwrap();
        let mut scaler = GradScaler::new(dev, GradScalerConfig::default()).unwrap();
        let ce = |m: &Sequential| {
            let logits = m.forward(&xh).unwrap().to_dtype(DType::F32).unwrap();
            loss::cross_entropy(&logits, &classes, loss::Reduction::Mean).unwrap()
        };
        let first = ce(&model).to_scalar().unwrap();
        for _ in 0..60 {
            let mut grads = scaler.scale(&ce(&model)).unwrap().backward().unwrap();
            scaler.step(&mut opt, &mut grads).unwrap();
            scaler.update().unwrap();
        }
        let last = ce(&model).to_scalar().unwrap();
        assert!(
            last < first / 2.0,
            "{dtype} on {dev}: loss {first} -> {last}"
        );
        assert!(model
            .parameters()
            .iter()
            .all(|p| p.value().dtype() == dtype));
    }
    let m = Linear::new(2, 2, false, dev).unwrap();
    let e = m.to_dtype(DType::I32).unwrap_err().to_string();
    assert!(e.starts_with("Module::to_dtype: expects a float"), "{e}");
    let e = m.to_dtype(DType::F64).unwrap_err().to_string();
    assert!(e.starts_with("Module::to_dtype:"), "{e}");
    assert!(m
        .parameters()
        .iter()
        .all(|p| p.value().dtype() == DType::F32));
}

device_tests!(
    master_weights,
    scaler_skips_and_adapts,
    skip_flag,
    resume_is_exact,
    half_model_trains
);
