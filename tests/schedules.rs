//! Learning-rate schedules against PyTorch's (tests/data/make_torch_goldens.py): each closed
//! form's rate sequence, OneCycle's cycled momentum, ReduceLROnPlateau; a schedule driving an
//! optimizer.

mod common;

use common::{assert_close, golden};
use ferrograd::nn::Parameter;
use ferrograd::optim::*;
use ferrograd::{Device, Tensor};

fn sequence(s: &dyn Schedule, n: usize) -> Vec<f32> {
    (0..n).map(|t| s.lr(t)).collect()
}

/// OneCycle cycling SGD's momentum and Adam's beta1 through `Schedule::apply`, and
/// ReduceLROnPlateau on fixed metric sequences (NaN, cooldown, min_lr, max mode with an
/// absolute threshold), against PyTorch's.
#[test]
fn momentum_cycling_and_plateau_match_pytorch() {
    let cpu = Device::cpu();
    let expect = |name: &str| golden(name, &cpu).to_vec().unwrap();
    let s = OneCycleLr::new(0.1, 12, 0.3, 25.0, 1e4)
        .unwrap()
        .cycle_momentum(0.8, 0.95)
        .unwrap();
    let w = Parameter::new(Tensor::zeros(&[1], &cpu).unwrap());
    let sgd_cfg = SgdConfig {
        momentum: 0.9,
        ..Default::default()
    };
    let mut sgd = Sgd::new(vec![w.clone()], sgd_cfg).unwrap();
    let mut adam = Adam::new(vec![w], AdamConfig::default()).unwrap();
    let (mut lr, mut mom, mut beta) = (vec![], vec![], vec![]);
    for t in 0..12 {
        s.apply(&mut sgd, t).unwrap();
        s.apply(&mut adam, t).unwrap();
        lr.push(sgd.lr());
        mom.push(sgd.momentum().unwrap());
        beta.push(adam.momentum().unwrap());
    }
    let e = expect("sched.onecycle_mom.lr");
    assert_close(&lr, &e, 1e-8, 1e-5, "onecycle lr");
    let e = expect("sched.onecycle_mom.momentum");
    assert_close(&mom, &e, 1e-7, 1e-6, "onecycle momentum");
    let e = expect("sched.onecycle_mom.beta1");
    assert_close(&beta, &e, 1e-7, 1e-6, "onecycle beta1");
    // Adagrad has no momentum to cycle; a beta1 of 1 is refused and leaves Adam's alone.
    let mut adagrad = Adagrad::new(Vec::new(), AdagradConfig::default()).unwrap();
    let m = s.apply(&mut adagrad, 0).unwrap_err().to_string();
    assert!(
        m.contains("set_momentum: this optimizer has no momentum"),
        "{m}"
    );
    assert!(adam.set_momentum(1.0).is_err());
    assert_eq!(adam.momentum(), Some(0.95));

    let configs = [
        (
            "min",
            PlateauConfig {
                factor: 0.5,
                patience: 2,
                cooldown: 1,
                min_lr: 0.01,
                threshold: 0.01,
                ..Default::default()
            },
        ),
        (
            "max_abs",
            PlateauConfig {
                mode: PlateauMode::Max,
                relative_threshold: false,
                threshold: 0.05,
                patience: 1,
                factor: 0.3,
                min_lr: 0.005,
                ..Default::default()
            },
        ),
    ];
    for (name, cfg) in configs {
        let mut p = ReduceLrOnPlateau::new(0.1, cfg).unwrap();
        let metrics = expect(&format!("sched.plateau_{name}.metrics"));
        let rates: Vec<f32> = metrics.iter().map(|&m| p.step(m)).collect();
        let e = expect(&format!("sched.plateau_{name}"));
        assert_close(&rates, &e, 1e-9, 1e-6, name);
    }
    let bad = PlateauConfig {
        factor: 1.0,
        ..Default::default()
    };
    let m = ReduceLrOnPlateau::new(0.1, bad).unwrap_err().to_string();
    assert!(m.contains("factor must be below 1"), "{m}");
}

#[test]
fn schedules_match_pytorch() {
    let cpu = Device::cpu();
    let cases: Vec<(&str, Box<dyn Schedule>)> = vec![
        ("step", Box::new(StepLr::new(0.1, 3, 0.5).unwrap())),
        (
            "multistep",
            Box::new(MultiStepLr::new(0.1, vec![2, 5, 9], 0.1).unwrap()),
        ),
        (
            "exponential",
            Box::new(ExponentialLr::new(0.1, 0.9).unwrap()),
        ),
        (
            "cosine",
            Box::new(CosineAnnealingLr::new(0.1, 10, 0.001).unwrap()),
        ),
        (
            "linear",
            Box::new(LinearLr::new(0.1, 0.25, 1.0, 4).unwrap()),
        ),
        (
            "onecycle",
            Box::new(OneCycleLr::new(0.1, 12, 0.3, 25.0, 1e4).unwrap()),
        ),
        (
            "sequential",
            Box::new(
                SequentialLr::new(
                    vec![
                        Box::new(LinearLr::new(0.1, 0.1, 1.0, 3).unwrap()),
                        Box::new(CosineAnnealingLr::new(0.1, 8, 0.0).unwrap()),
                    ],
                    vec![3],
                )
                .unwrap(),
            ),
        ),
    ];
    for (name, s) in cases {
        let expected = golden(&format!("sched.{name}"), &cpu).to_vec().unwrap();
        assert_close(&sequence(s.as_ref(), 12), &expected, 1e-8, 1e-5, name);
    }
}

#[test]
fn schedule_drives_the_optimizer() {
    let dev = Device::cpu();
    let w = Parameter::new(Tensor::zeros(&[2], &dev).unwrap());
    let mut opt = Sgd::new(vec![w], SgdConfig::default()).unwrap();
    let s = StepLr::new(0.5, 2, 0.1).unwrap();
    let mut seen = Vec::new();
    for t in 0..4 {
        opt.set_lr(s.lr(t)).unwrap();
        seen.push(opt.lr());
    }
    assert_close(&seen, &[0.5, 0.5, 0.05, 0.05], 0.0, 1e-6, "lr");
}
