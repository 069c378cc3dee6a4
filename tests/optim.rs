//! Each optimizer's first three steps against PyTorch's (tests/data/make_torch_goldens.py) on
//! both devices (AMSGrad and maximize too); state save/restore; gradient clipping; frozen
//! parameters; errors.

mod common;

use common::{assert_close, assert_golden, golden};
use ferrograd::nn::{loss, Linear, Module, Parameter};
use ferrograd::optim::{self, *};
use ferrograd::{Device, Gradients, Result, Tensor};

/// `mean((tanh(x w + b) - t)²)` and its gradients: the goldens' problem.
fn grads_of(dev: &Device, w: &Parameter, b: &Parameter) -> Gradients {
    let (x, t) = (golden("optim.x", dev), golden("optim.t", dev));
    let y = x
        .matmul(&w.value())
        .unwrap()
        .add(&b.value())
        .unwrap()
        .tanh()
        .unwrap();
    loss::mse(&y, &t, loss::Reduction::Mean)
        .unwrap()
        .backward()
        .unwrap()
}

fn params(dev: &Device) -> (Parameter, Parameter) {
    let w = Parameter::new(golden("optim.w", dev));
    let b = Parameter::new(golden("optim.b", dev));
    (w, b)
}

type Make = fn(Vec<Parameter>) -> Result<Box<dyn Optimizer>>;

fn configs() -> Vec<(&'static str, Make)> {
    fn boxed(o: impl Optimizer + 'static) -> Box<dyn Optimizer> {
        Box::new(o)
    }
    vec![
        ("sgd", |p| {
            Ok(boxed(Sgd::new(
                p,
                SgdConfig {
                    lr: 0.1,
                    ..Default::default()
                },
            )?))
        }),
        ("sgd_momentum", |p| {
            let c = SgdConfig {
                lr: 0.1,
                momentum: 0.9,
                dampening: 0.1,
                weight_decay: 0.01,
                nesterov: false,
                maximize: false,
            };
            Ok(boxed(Sgd::new(p, c)?))
        }),
        ("sgd_nesterov", |p| {
            let c = SgdConfig {
                lr: 0.1,
                momentum: 0.9,
                nesterov: true,
                ..Default::default()
            };
            Ok(boxed(Sgd::new(p, c)?))
        }),
        ("adam", |p| {
            Ok(boxed(Adam::new(
                p,
                AdamConfig {
                    lr: 0.1,
                    ..Default::default()
                },
            )?))
        }),
        ("adam_l2", |p| {
            let c = AdamConfig {
                lr: 0.1,
                beta1: 0.8,
                beta2: 0.99,
                weight_decay: 0.1,
                ..Default::default()
            };
            Ok(boxed(Adam::new(p, c)?))
        }),
        ("adamw", |p| {
            let c = AdamConfig {
                lr: 0.1,
                weight_decay: 0.1,
                ..AdamConfig::adamw()
            };
            Ok(boxed(AdamW::new(p, c)?))
        }),
        ("rmsprop", |p| {
            Ok(boxed(RmsProp::new(
                p,
                RmsPropConfig {
                    lr: 0.01,
                    ..Default::default()
                },
            )?))
        }),
        ("rmsprop_centered", |p| {
            let c = RmsPropConfig {
                lr: 0.01,
                momentum: 0.9,
                centered: true,
                weight_decay: 0.01,
                ..Default::default()
            };
            Ok(boxed(RmsProp::new(p, c)?))
        }),
        ("adagrad", |p| {
            let c = AdagradConfig {
                lr: 0.1,
                lr_decay: 0.01,
                weight_decay: 0.01,
                initial_accumulator_value: 0.1,
                ..Default::default()
            };
            Ok(boxed(Adagrad::new(p, c)?))
        }),
        ("adam_amsgrad", |p| {
            let c = AdamConfig {
                lr: 0.1,
                beta2: 0.5,
                amsgrad: true,
                weight_decay: 0.1,
                ..Default::default()
            };
            Ok(boxed(Adam::new(p, c)?))
        }),
        ("adamw_amsgrad_max", |p| {
            let c = AdamConfig {
                lr: 0.1,
                beta2: 0.5,
                amsgrad: true,
                maximize: true,
                ..AdamConfig::adamw()
            };
            Ok(boxed(AdamW::new(p, c)?))
        }),
        ("sgd_max", |p| {
            let c = SgdConfig {
                lr: 0.1,
                momentum: 0.9,
                weight_decay: 0.01,
                maximize: true,
                ..Default::default()
            };
            Ok(boxed(Sgd::new(p, c)?))
        }),
        ("rmsprop_max", |p| {
            let c = RmsPropConfig {
                lr: 0.01,
                momentum: 0.5,
                centered: true,
                maximize: true,
                ..Default::default()
            };
            Ok(boxed(RmsProp::new(p, c)?))
        }),
        ("adagrad_max", |p| {
            let c = AdagradConfig {
                lr: 0.1,
                maximize: true,
                ..Default::default()
            };
            Ok(boxed(Adagrad::new(p, c)?))
        }),
    ]
}

fn optimizers_match_pytorch(dev: &Device) {
    for (name, make) in configs() {
        let (w, b) = params(dev);
        let mut opt = make(vec![w.clone(), b.clone()]).unwrap();
        for step in 1..=3 {
            opt.step(&grads_of(dev, &w, &b)).unwrap();
            assert_eq!(
                w.value().device(),
                dev,
                "{name}: the parameter left the device"
            );
            assert!(w.value().is_leaf() && w.value().tracks_grad());
            assert_golden(&w.value(), &format!("optim.{name}.w{step}"), 1e-5, 1e-5);
            assert_golden(&b.value(), &format!("optim.{name}.b{step}"), 1e-5, 1e-5);
        }
    }
}

/// Param groups with their own lr and weight decay, under a schedule that halves the rate
/// each step (every group's, as PyTorch's StepLR), against PyTorch's; errors.
fn param_groups_match_pytorch(dev: &Device) {
    type Make = fn(Vec<ParamGroup>) -> Result<Box<dyn Optimizer>>;
    let cases: [(&str, Make); 2] = [
        ("adam", |g| {
            let cfg = AdamConfig {
                lr: 0.1,
                ..Default::default()
            };
            Ok(Box::new(Adam::with_groups(g, cfg)?))
        }),
        ("sgd", |g| {
            let cfg = SgdConfig {
                lr: 0.1,
                momentum: 0.9,
                weight_decay: 0.01,
                ..Default::default()
            };
            Ok(Box::new(Sgd::with_groups(g, cfg)?))
        }),
    ];
    for (name, make) in cases {
        let (w, b) = params(dev);
        let groups = match name {
            "adam" => vec![
                ParamGroup::new(vec![w.clone()]).lr(0.05).weight_decay(0.1),
                ParamGroup::new(vec![b.clone()]),
            ],
            _ => vec![
                ParamGroup::new(vec![w.clone()]),
                ParamGroup::new(vec![b.clone()]).lr(0.3),
            ],
        };
        let mut opt = make(groups).unwrap();
        let sched = StepLr::new(0.1, 1, 0.5).unwrap();
        for step in 1..=3 {
            sched.apply(opt.as_mut(), step - 1).unwrap();
            opt.step(&grads_of(dev, &w, &b)).unwrap();
            assert_golden(&w.value(), &format!("groups.{name}.w{step}"), 1e-5, 1e-5);
            assert_golden(&b.value(), &format!("groups.{name}.b{step}"), 1e-5, 1e-5);
        }
    }
    let (w, _) = params(dev);
    let zero = SgdConfig {
        lr: 0.0,
        ..Default::default()
    };
    let m = Sgd::with_groups(vec![ParamGroup::new(vec![w.clone()]).lr(0.1)], zero)
        .unwrap_err()
        .to_string();
    assert!(m.contains("Sgd::with_groups: group 0 sets lr 0.1"), "{m}");
    let twice = vec![
        ParamGroup::new(vec![w.clone()]),
        ParamGroup::new(vec![w.clone()]),
    ];
    let m = Sgd::with_groups(twice, SgdConfig::default())
        .unwrap_err()
        .to_string();
    assert!(
        m.contains("Sgd::with_groups: parameters 0 and 1 are the same parameter"),
        "{m}"
    );
    let m = Adam::new(vec![w.clone(), w.clone()], AdamConfig::default())
        .unwrap_err()
        .to_string();
    assert!(
        m.contains("parameters 0 and 1 are the same parameter"),
        "{m}"
    );
    let bad = vec![ParamGroup::new(vec![w]).weight_decay(-1.0)];
    let m = Adam::with_groups(bad, AdamConfig::default())
        .unwrap_err()
        .to_string();
    assert!(
        m.contains("a group's weight_decay must be finite and >= 0, found -1"),
        "{m}"
    );
}

/// Two steps, save the state, a third step; a fresh optimizer restored from the saved state
/// (through a safetensors file) takes the same third step.
fn state_round_trip(dev: &Device) {
    let dir = std::env::temp_dir().join(format!(
        "ferrograd-optim-{}-{}",
        std::process::id(),
        dev.is_gpu()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, make) in configs() {
        let (w, b) = params(dev);
        let mut opt = make(vec![w.clone(), b.clone()]).unwrap();
        for _ in 0..2 {
            opt.step(&grads_of(dev, &w, &b)).unwrap();
        }
        let path = dir.join(format!("{name}.safetensors"));
        ferrograd::nn::save_tensors(&path, &opt.state_dict(), &[]).unwrap();
        let (w2, b2) = (
            Parameter::new(w.value().detach()),
            Parameter::new(b.value().detach()),
        );
        opt.step(&grads_of(dev, &w, &b)).unwrap();

        let mut fresh = make(vec![w2.clone(), b2.clone()]).unwrap();
        let saved = ferrograd::nn::load_tensors(&path, &Device::cpu())
            .unwrap()
            .tensors;
        fresh.load_state_dict(&saved).unwrap();
        fresh.step(&grads_of(dev, &w2, &b2)).unwrap();
        assert_close(
            &w2.value().to_vec().unwrap(),
            &w.value().to_vec().unwrap(),
            0.0,
            0.0,
            name,
        );
        assert_golden(&w2.value(), &format!("optim.{name}.w3"), 1e-5, 1e-5);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Frozen parameters and parameters the loss does not reach are left alone.
fn frozen_and_unused(dev: &Device) {
    let (w, b) = params(dev);
    let unused = Parameter::new(Tensor::ones(&[3], dev).unwrap());
    b.set_trainable(false);
    let b0 = b.value().to_vec().unwrap();
    let w0 = w.value().to_vec().unwrap();
    let mut opt = Adam::new(
        vec![w.clone(), b.clone(), unused.clone()],
        AdamConfig::default(),
    )
    .unwrap();
    opt.step(&grads_of(dev, &w, &b)).unwrap();
    assert_eq!(b.value().to_vec().unwrap(), b0, "a frozen parameter moved");
    assert_ne!(
        w.value().to_vec().unwrap(),
        w0,
        "a trainable parameter did not move"
    );
    assert_eq!(unused.value().to_vec().unwrap(), [1.0; 3]);
    let names: Vec<String> = opt.state_dict().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["0.exp_avg", "0.exp_avg_sq", "0.step"]);
}

fn clipping(dev: &Device) {
    let (w, b) = params(dev);
    let ps = [w.clone(), b.clone()];
    let mut grads = grads_of(dev, &w, &b);
    let gw = grads.get(&w.value()).unwrap().to_vec().unwrap();
    let gb = grads.get(&b.value()).unwrap().to_vec().unwrap();
    let norm = gw.iter().chain(&gb).map(|v| v * v).sum::<f32>().sqrt();
    let total = optim::clip_grad_norm(&mut grads, &ps, norm / 2.0).unwrap();
    assert!((total.to_scalar().unwrap() - norm).abs() < 1e-5 * norm);
    let clipped = grads.get(&w.value()).unwrap().to_vec().unwrap();
    let factor = (norm / 2.0) / (norm + 1e-6);
    let expected: Vec<f32> = gw.iter().map(|v| v * factor).collect();
    assert_close(&clipped, &expected, 1e-7, 1e-5, "clip_grad_norm");
    // Under the limit nothing changes.
    let mut grads = grads_of(dev, &w, &b);
    optim::clip_grad_norm(&mut grads, &ps, norm * 2.0).unwrap();
    assert_close(
        &grads.get(&w.value()).unwrap().to_vec().unwrap(),
        &gw,
        0.0,
        1e-6,
        "no clip",
    );
    // By value.
    let mut grads = grads_of(dev, &w, &b);
    let lim = gw.iter().map(|v| v.abs()).fold(0.0, f32::max) / 2.0;
    optim::clip_grad_value(&mut grads, &ps, lim).unwrap();
    let expected: Vec<f32> = gw.iter().map(|v| v.clamp(-lim, lim)).collect();
    assert_eq!(grads.get(&w.value()).unwrap().to_vec().unwrap(), expected);
}

/// A linear model learns y = 2 x0 - x1 + 0.5 with SGD + momentum and with Adam.
fn converges(dev: &Device) {
    ferrograd::manual_seed(7);
    let x = common::normal(&[64, 2], 3).to_device(dev).unwrap();
    let w = Tensor::from_vec(vec![2.0, -1.0], &[2, 1], dev).unwrap();
    let y = x.matmul(&w).unwrap().add_scalar(0.5).unwrap();
    let model = Linear::new(2, 1, true, dev).unwrap();
    let c = SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        ..Default::default()
    };
    let mut opt = Sgd::new(model.parameters(), c).unwrap();
    for _ in 0..150 {
        let l = loss::mse(&model.forward(&x).unwrap(), &y, loss::Reduction::Mean).unwrap();
        opt.step(&l.backward().unwrap()).unwrap();
    }
    let l = loss::mse(&model.forward(&x).unwrap(), &y, loss::Reduction::Mean).unwrap();
    assert!(
        l.to_scalar().unwrap() < 1e-6,
        "loss {}",
        l.to_scalar().unwrap()
    );
}

device_tests!(
    optimizers_match_pytorch,
    param_groups_match_pytorch,
    state_round_trip,
    frozen_and_unused,
    clipping
);

/// Uses the global generator (Linear's init), so its devices run one after the other.
#[test]
fn converges_cpu_then_gpu() {
    converges(&Device::cpu());
    if let Some(dev) = common::gpu() {
        converges(&dev);
    }
}

fn err<T>(r: Result<T>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(_) => panic!("expected an error"),
    }
}

#[test]
fn optimizer_errors() {
    let dev = Device::cpu();
    let p = || vec![Parameter::new(Tensor::zeros(&[2], &dev).unwrap())];
    let m = err(Sgd::new(
        p(),
        SgdConfig {
            lr: -1.0,
            ..Default::default()
        },
    ));
    assert!(m.contains("lr must be finite and >= 0, found -1"), "{m}");
    let m = err(Sgd::new(
        p(),
        SgdConfig {
            nesterov: true,
            ..Default::default()
        },
    ));
    assert!(
        m.contains("Nesterov momentum needs momentum > 0 and dampening 0"),
        "{m}"
    );
    let m = err(Adam::new(
        p(),
        AdamConfig {
            beta2: 1.0,
            ..Default::default()
        },
    ));
    assert!(m.contains("betas must be below 1"), "{m}");
    let m = err(Adam::new(
        p(),
        AdamConfig {
            eps: f32::NAN,
            ..Default::default()
        },
    ));
    assert!(m.contains("eps must be finite"), "{m}");
    let m = err(RmsProp::new(
        p(),
        RmsPropConfig {
            alpha: 1.5,
            ..Default::default()
        },
    ));
    assert!(
        m.contains("alpha must be finite and in [0, 1], found 1.5"),
        "{m}"
    );
    let m = err(MultiStepLr::new(0.1, vec![3, 2], 0.1));
    assert!(
        m.contains("milestones must be strictly increasing, found [3, 2]"),
        "{m}"
    );
    let m = err(OneCycleLr::new(0.1, 10, 0.05, 25.0, 1e4));
    assert!(m.contains("leaves a phase empty"), "{m}");
    let m = err(SequentialLr::new(
        vec![Box::new(StepLr::new(0.1, 1, 0.5).unwrap())],
        vec![3],
    ));
    assert!(m.contains("one milestone fewer than schedules"), "{m}");

    // A gradient of the wrong shape (set by hand) is an error, not a crash.
    let w = Parameter::new(Tensor::zeros(&[2], &dev).unwrap());
    let mut opt = Adam::new(vec![w.clone()], AdamConfig::default()).unwrap();
    let mut grads = Gradients::default();
    grads.insert(&w.value(), Tensor::zeros(&[3], &dev).unwrap());
    let m = err(opt.step(&grads));
    assert!(
        m.contains("parameter 0 is [2] on cpu but its gradient is [3] on cpu"),
        "{m}"
    );

    // A state for another model lists every problem and changes nothing.
    let bad = vec![
        ("0.exp_avg".to_string(), Tensor::zeros(&[5], &dev).unwrap()),
        ("7.exp_avg".to_string(), Tensor::zeros(&[2], &dev).unwrap()),
    ];
    let m = err(opt.load_state_dict(&bad));
    assert!(m.contains("0.exp_avg: expected [2], found [5]"), "{m}");
    assert!(m.contains("7.exp_avg: unexpected"), "{m}");
    assert!(
        m.contains("0.exp_avg_sq: missing") && m.contains("0.step: missing"),
        "{m}"
    );
    assert!(opt.state_dict().is_empty());
}

/// The update is per element, so a parameter large enough for the CPU's parallel chunks
/// (40,000 elements: 3 chunks) must match, element for element, the same optimizer run on a
/// small parameter holding its last 100 values.
fn large_parameters_chunk_correctly(dev: &Device) {
    let values = common::normal(&[40_000], 21).to_device(dev).unwrap();
    let tail = values.narrow(0, 39_900, 100).unwrap().contiguous().unwrap();
    let run = |start: &Tensor| -> Vec<f32> {
        let w = Parameter::new(start.clone());
        let c = RmsPropConfig {
            momentum: 0.9,
            centered: true,
            ..Default::default()
        };
        let mut opt = RmsProp::new(vec![w.clone()], c).unwrap();
        for _ in 0..2 {
            // loss = sum(w³) / 3: gradient w², different for every element
            let l = w
                .value()
                .pow_scalar(3.0)
                .unwrap()
                .sum_all()
                .unwrap()
                .div_scalar(3.0)
                .unwrap();
            opt.step(&l.backward().unwrap()).unwrap();
        }
        w.value().to_vec().unwrap()
    };
    let (big, small) = (run(&values), run(&tail));
    assert_eq!(&big[39_900..], small.as_slice());
}

device_tests!(large_parameters_chunk_correctly);
