//! Every loss against PyTorch's values and gradients (tests/data/make_torch_goldens.py), on
//! both devices; gradcheck of each; bad input gives errors that name the values.

mod common;

use common::{assert_golden, check_grad, golden, signed, uniform};
use ferrograd::nn::loss::{self, BceLoss, ClassLoss, Reduction};
use ferrograd::{Device, Error, Result, Tensor};

type LossFn = fn(&Tensor, &Tensor, Reduction) -> Result<Tensor>;

fn huber(a: &Tensor, b: &Tensor, r: Reduction) -> Result<Tensor> {
    loss::huber(a, b, 0.5, r)
}
fn smooth_l1(a: &Tensor, b: &Tensor, r: Reduction) -> Result<Tensor> {
    loss::smooth_l1(a, b, 0.5, r)
}

/// A golden tensor; class labels (`*.classes`) as `I32`.
fn labels_or_values(name: &str, dev: &Device) -> Tensor {
    let t = golden(name, dev);
    match name.ends_with(".classes") {
        true => t.to_dtype(ferrograd::DType::I32).unwrap(),
        false => t,
    }
}

/// The value for each reduction and the gradient of the mean (input and, where given, target).
fn check(dev: &Device, name: &str, f: LossFn, x: &str, y: &str, target_grad: bool) {
    let (x, y) = (golden(x, dev), labels_or_values(y, dev));
    let tol = (1e-5, 1e-5);
    assert_golden(
        &f(&x, &y, Reduction::Sum).unwrap(),
        &format!("loss.{name}.sum"),
        tol.0,
        tol.1,
    );
    if common::try_golden(&format!("loss.{name}.none"), dev).is_some() {
        let none = f(&x, &y, Reduction::None).unwrap();
        assert_golden(&none, &format!("loss.{name}.none"), tol.0, tol.1);
    }
    let (xv, yv) = (x.requires_grad(), y.requires_grad());
    let mean = f(&xv, &yv, Reduction::Mean).unwrap();
    assert_eq!(mean.device(), dev);
    assert_golden(&mean, &format!("loss.{name}.mean"), tol.0, tol.1);
    let grads = mean.backward().unwrap();
    assert_golden(
        grads.get(&xv).unwrap(),
        &format!("loss.{name}.grad"),
        1e-6,
        1e-4,
    );
    if target_grad {
        let g = grads.get(&yv).unwrap();
        assert_golden(g, &format!("loss.{name}.grad_target"), 1e-6, 1e-4);
    }
}

fn regression_losses(dev: &Device) {
    check(dev, "mse", loss::mse, "loss.x", "loss.y", false);
    check(dev, "l1", loss::l1, "loss.x", "loss.y", false);
    check(dev, "huber", huber, "loss.x", "loss.y", false);
    check(dev, "smooth_l1", smooth_l1, "loss.x", "loss.y", false);
}

fn ce_smooth(a: &Tensor, b: &Tensor, r: Reduction) -> Result<Tensor> {
    loss::cross_entropy_with_smoothing(a, b, 0.1, r)
}
fn ce_soft(a: &Tensor, b: &Tensor, r: Reduction) -> Result<Tensor> {
    loss::cross_entropy_with_smoothing(a, b, 0.2, r)
}

fn classification_losses(dev: &Device) {
    check(
        dev,
        "ce",
        loss::cross_entropy,
        "ce.logits",
        "ce.classes",
        false,
    );
    check(
        dev,
        "ce_smooth",
        ce_smooth,
        "ce.logits",
        "ce.classes",
        false,
    );
    check(dev, "ce_soft", ce_soft, "ce.logits", "ce.soft", true);
    // nll of PyTorch's log-softmax of the same logits
    let lsm = golden("ce.logits", dev)
        .log_softmax(1)
        .unwrap()
        .requires_grad();
    let m = loss::nll(&lsm, &labels_or_values("ce.classes", dev), Reduction::Mean).unwrap();
    assert_golden(&m, "loss.nll.mean", 1e-5, 1e-5);
    let g = m.backward().unwrap();
    assert_golden(g.get(&lsm).unwrap(), "loss.nll.grad", 1e-6, 1e-5);
    // The per-row losses of the fused op equal log-softmax then nll.
    let logits = golden("ce.logits", dev);
    let classes = labels_or_values("ce.classes", dev);
    let fused = loss::cross_entropy(&logits, &classes, Reduction::None).unwrap();
    let plain = loss::nll(&logits.log_softmax(1).unwrap(), &classes, Reduction::None).unwrap();
    common::assert_close(
        &fused.to_vec().unwrap(),
        &plain.to_vec().unwrap(),
        1e-6,
        1e-6,
        "ce = nll",
    );
}

/// The fused cross entropy (class indices) on awkward sizes, GPU against CPU: one class,
/// primes, more classes than a workgroup (64), more rows than one grid axis holds (65,535
/// workgroups, one per row); the gradient for a mean (its upstream gradient is one broadcast
/// value) and for weighted rows (a dense upstream gradient).
fn cross_entropy_sizes(dev: &Device) {
    for (s, &(rows, classes)) in [(1, 1), (7, 13), (5, 131), (70_000, 3)].iter().enumerate() {
        let logits = common::normal(&[rows, classes], 30 + s as u64);
        let labels: Vec<i32> = (0..rows).map(|i| ((i * 7 + s) % classes) as i32).collect();
        let labels = Tensor::from_vec(labels, &[rows], &Device::cpu()).unwrap();
        let weights = common::uniform(&[rows], 0.5, 1.5, 40 + s as u64);
        for smoothing in [0.0, 0.1] {
            let what = format!("cross_entropy {rows}x{classes}, smoothing {smoothing}");
            let per_row = |t: &[Tensor]| {
                loss::cross_entropy_with_smoothing(&t[0], &t[1], smoothing, Reduction::None)
            };
            common::parity(dev, &[&logits, &labels], per_row, 1e-5, 1e-5, &what);
            let grad = |t: &[Tensor], weighted: bool| -> Result<Tensor> {
                let x = t[0].requires_grad();
                let rows = per_row(&[x.clone(), t[1].clone()])?;
                let l = if weighted {
                    rows.mul(&t[2])?.sum_all()?
                } else {
                    rows.mean_all()?
                };
                Ok(l.backward()?.get(&x).expect("a gradient").clone())
            };
            let inputs = [&logits, &labels, &weights];
            common::parity(dev, &inputs, |t| grad(t, false), 1e-6, 1e-5, &what);
            common::parity(dev, &inputs, |t| grad(t, true), 1e-6, 1e-5, &what);
        }
    }
}

fn binary_losses(dev: &Device) {
    // p[0, 0] = 0: PyTorch clamps log(0) to -100 and its gradient denominator to 1e-12.
    check(
        dev,
        "bce",
        loss::binary_cross_entropy,
        "bce.p",
        "bce.y",
        true,
    );
    check(
        dev,
        "bce_logits",
        loss::bce_with_logits,
        "loss.x",
        "bce.y",
        true,
    );
    // At logit 0 the gradient is sigmoid(0) - y = 0.5 - y (a composition through |x| gives -y).
    let x = Tensor::zeros(&[2], dev).unwrap().requires_grad();
    let y = Tensor::from_vec(vec![0.0, 1.0], &[2], dev).unwrap();
    let l = loss::bce_with_logits(&x, &y, Reduction::Sum).unwrap();
    assert_eq!(
        l.backward().unwrap().get(&x).unwrap().to_vec().unwrap(),
        [0.5, -0.5]
    );
    // Large logits do not overflow.
    let big = Tensor::from_vec(vec![100.0, -100.0], &[2], dev).unwrap();
    let l = loss::bce_with_logits(&big, &y, Reduction::None)
        .unwrap()
        .to_vec()
        .unwrap();
    assert!(
        (l[0] - 100.0).abs() < 1e-3 && (l[1] - 100.0).abs() < 1e-3,
        "{l:?}"
    );
}

fn loss_gradcheck(dev: &Device) {
    let x = signed(&[3, 4], 0.2, 2.0, 1);
    let y = signed(&[3, 4], 0.2, 2.0, 2);
    // Inputs kept off the kinks of |d| and the huber knee.
    let y_far = x.add(&signed(&[3, 4], 0.1, 0.4, 3)).unwrap();
    let r = Reduction::Mean;
    check_grad(dev, &[&x, &y], |t| loss::mse(&t[0], &t[1], r), "mse");
    check_grad(
        dev,
        &[&x, &y_far],
        |t| loss::l1(&t[0], &t[1], Reduction::Sum),
        "l1",
    );
    let y_huber = x.add(&signed(&[3, 4], 0.6, 2.0, 4)).unwrap();
    check_grad(
        dev,
        &[&x, &y_huber],
        |t| loss::huber(&t[0], &t[1], 0.5, r),
        "huber linear",
    );
    check_grad(
        dev,
        &[&x, &y_far],
        |t| loss::huber(&t[0], &t[1], 0.5, r),
        "huber quadratic",
    );
    check_grad(
        dev,
        &[&x, &y_huber],
        |t| loss::smooth_l1(&t[0], &t[1], 0.5, r),
        "smooth_l1",
    );
    let classes = Tensor::from_vec(vec![0, 3, 1], &[3], &Device::cpu()).unwrap();
    // The class indices follow the input's device (gradcheck runs in f64).
    let on = |t: &Tensor| classes.to_device(t.device()).unwrap();
    check_grad(
        dev,
        &[&x],
        |t| loss::cross_entropy_with_smoothing(&t[0], &on(&t[0]), 0.1, r),
        "ce",
    );
    let soft = uniform(&[3, 4], 0.0, 1.0, 5);
    check_grad(
        dev,
        &[&x, &soft],
        |t| loss::cross_entropy(&t[0], &t[1], Reduction::None),
        "ce soft",
    );
    let p = uniform(&[3, 4], 0.1, 0.9, 6);
    let q = uniform(&[3, 4], 0.0, 1.0, 7);
    check_grad(
        dev,
        &[&p, &q],
        |t| loss::binary_cross_entropy(&t[0], &t[1], r),
        "bce",
    );
    check_grad(
        dev,
        &[&x, &q],
        |t| loss::bce_with_logits(&t[0], &t[1], r),
        "bce logits",
    );
    let lsm = x.log_softmax(1).unwrap();
    check_grad(
        dev,
        &[&lsm],
        |t| loss::nll(&t[0], &on(&t[0]), Reduction::Sum),
        "nll",
    );
}

type OptLoss = Box<dyn Fn(&Tensor, &Tensor, Reduction) -> Result<Tensor>>;

/// A loss with options against PyTorch's (`lopt.*` goldens): each reduction, and the
/// gradients of the mean (of the batch mean for KL) for the input and, where given, the target.
fn check_opts(dev: &Device, name: &str, f: OptLoss, x: &str, y: &str, target_grad: bool) {
    let (x, y) = (golden(x, dev), labels_or_values(y, dev));
    let mut kinds = vec![(Reduction::Sum, "sum"), (Reduction::None, "none")];
    if name.starts_with("kl") {
        kinds.push((Reduction::Mean, "mean"));
    }
    for (r, key) in kinds {
        let got = f(&x, &y, r).unwrap();
        assert_golden(&got, &format!("lopt.{name}.{key}"), 1e-5, 1e-5);
    }
    let (r, key) = match name.starts_with("kl") {
        true => (Reduction::BatchMean, "batchmean"),
        false => (Reduction::Mean, "mean"),
    };
    let (xv, yv) = (x.requires_grad(), y.requires_grad());
    let m = f(&xv, &yv, r).unwrap();
    assert_golden(&m, &format!("lopt.{name}.{key}"), 1e-5, 1e-5);
    let grads = m.backward().unwrap();
    let gx = grads.get(&xv).unwrap();
    assert_golden(gx, &format!("lopt.{name}.grad"), 1e-6, 1e-4);
    if target_grad {
        let gy = grads.get(&yv).unwrap();
        assert_golden(gy, &format!("lopt.{name}.grad_target"), 1e-6, 1e-4);
    }
}

fn class_opts(dev: &Device) -> ClassLoss {
    ClassLoss::default().weight(golden("lopt.w", dev))
}

/// Class weights, an ignored index, label smoothing with both, weighted probabilities, NLL;
/// pos_weight and an element weight for BCE on logits; KL divergence with and without log
/// targets: values and gradients against PyTorch's, then gradcheck.
fn loss_options(dev: &Device) {
    let d = dev.clone();
    let ce = |o: ClassLoss| -> OptLoss {
        Box::new(move |a, b, r| loss::cross_entropy_with(a, b, &o.clone().reduction(r)))
    };
    let (lg, keep, ig) = ("lopt.logits", "lopt.keep.classes", "lopt.ig.classes");
    check_opts(dev, "ce_w", ce(class_opts(&d)), lg, keep, false);
    let ignore = ClassLoss::default().ignore_index(-100);
    check_opts(dev, "ce_ig", ce(ignore), lg, ig, false);
    let w_ig = class_opts(&d).ignore_index(-100);
    check_opts(dev, "ce_w_ig", ce(w_ig.clone()), lg, ig, false);
    let w_ig_s = w_ig.clone().label_smoothing(0.2);
    check_opts(dev, "ce_w_ig_s", ce(w_ig_s), lg, ig, false);
    let soft = class_opts(&d).label_smoothing(0.1);
    check_opts(dev, "ce_soft_w", ce(soft), lg, "lopt.soft", true);
    let lsm = golden(lg, dev).log_softmax(1).unwrap();
    let o = w_ig.clone();
    let nll: OptLoss = Box::new(move |a, b, r| loss::nll_with(a, b, &o.clone().reduction(r)));
    let (xv, yv) = (lsm.requires_grad(), labels_or_values(ig, dev));
    let m = nll(&xv, &yv, Reduction::Mean).unwrap();
    assert_golden(&m, "lopt.nll_w_ig.mean", 1e-5, 1e-5);
    let g = m.backward().unwrap();
    assert_golden(g.get(&xv).unwrap(), "lopt.nll_w_ig.grad", 1e-6, 1e-4);
    let none = nll(&lsm, &yv, Reduction::None).unwrap();
    assert_golden(&none, "lopt.nll_w_ig.none", 1e-5, 1e-5);

    let bce = |o: BceLoss| -> OptLoss {
        Box::new(move |a, b, r| loss::bce_with_logits_with(a, b, &o.clone().reduction(r)))
    };
    let pw = BceLoss::default().pos_weight(golden("lopt.bpw", dev));
    check_opts(dev, "bce_pw", bce(pw.clone()), "lopt.bx", "lopt.by", true);
    let w_pw = pw.weight(golden("lopt.bw", dev));
    check_opts(dev, "bce_w_pw", bce(w_pw), "lopt.bx", "lopt.by", true);

    let kl: OptLoss = Box::new(|a, b, r| loss::kl_div(a, b, r, false));
    check_opts(dev, "kl", kl, "lopt.kq", "lopt.kp", true);
    let kl_log: OptLoss = Box::new(|a, b, r| loss::kl_div(a, b, r, true));
    check_opts(dev, "kl_log", kl_log, "lopt.kq", "lopt.kl_log.target", true);

    // Gradcheck on random inputs (in f64 on the CPU; the GPU against the CPU).
    let x = signed(&[5, 4], 0.2, 2.0, 11);
    let classes = Tensor::from_vec(vec![0, -1, 3, 2, -1], &[5], &Device::cpu()).unwrap();
    let on = |t: &Tensor| classes.to_device(t.device()).unwrap();
    let w = uniform(&[4], 0.5, 1.5, 12);
    for (s, r) in [(0.0, Reduction::Mean), (0.3, Reduction::None)] {
        check_grad(
            dev,
            &[&x, &w],
            |t| {
                let o = ClassLoss::default()
                    .weight(t[1].clone())
                    .ignore_index(-1)
                    .label_smoothing(s)
                    .reduction(r);
                loss::cross_entropy_with(&t[0], &on(&t[0]), &o)
            },
            "cross_entropy with weight and ignore_index",
        );
    }
    let q = uniform(&[5, 4], 0.0, 1.0, 13);
    let pos = uniform(&[4], 0.2, 3.0, 14);
    let ew = uniform(&[5, 1], 0.5, 1.5, 15);
    check_grad(
        dev,
        &[&x, &q, &pos, &ew],
        |t| {
            let o = BceLoss::default()
                .pos_weight(t[2].clone())
                .weight(t[3].clone());
            loss::bce_with_logits_with(&t[0], &t[1], &o)
        },
        "bce_with_logits with pos_weight and weight",
    );
    let p = uniform(&[5, 4], 0.05, 1.0, 16);
    let lq = x.log_softmax(1).unwrap();
    for log_target in [false, true] {
        check_grad(
            dev,
            &[&lq, &p],
            |t| loss::kl_div(&t[0], &t[1], Reduction::BatchMean, log_target),
            "kl_div",
        );
    }
    // Every row ignored: the mean is 0 / 0, NaN as PyTorch's; the sum is 0.
    let all = Tensor::full_dtype(&[5], -1.0, ferrograd::DType::I32, dev).unwrap();
    let xd = x.to_device(dev).unwrap();
    let o = ClassLoss::default().ignore_index(-1);
    assert!(loss::cross_entropy_with(&xd, &all, &o)
        .unwrap()
        .item()
        .unwrap()
        .is_nan());
    let o = o.reduction(Reduction::Sum);
    assert_eq!(
        loss::cross_entropy_with(&xd, &all, &o)
            .unwrap()
            .item()
            .unwrap(),
        0.0
    );
}

/// Margin ranking and cosine embedding against PyTorch's (each reduction, both inputs'
/// gradients of the mean); gradcheck.
fn ranking_losses(dev: &Device) {
    type Rank = fn(&Tensor, &Tensor, &Tensor, Reduction) -> Result<Tensor>;
    let cases: [(&str, Rank); 2] = [
        ("margin", |a, b, y, r| loss::margin_ranking(a, b, y, 0.3, r)),
        ("cosine", |a, b, y, r| {
            loss::cosine_embedding(a, b, y, 0.2, r)
        }),
    ];
    for (name, f) in cases {
        let g = |k: &str| golden(&format!("rank.{name}.{k}"), dev);
        let (a, b, y) = (g("x1"), g("x2"), g("y"));
        for (r, k) in [(Reduction::Sum, "sum"), (Reduction::None, "none")] {
            assert_golden(
                &f(&a, &b, &y, r).unwrap(),
                &format!("rank.{name}.{k}"),
                1e-6,
                1e-5,
            );
        }
        let (av, bv) = (a.requires_grad(), b.requires_grad());
        let m = f(&av, &bv, &y, Reduction::Mean).unwrap();
        assert_golden(&m, &format!("rank.{name}.mean"), 1e-6, 1e-5);
        let grads = m.backward().unwrap();
        assert_golden(
            grads.get(&av).unwrap(),
            &format!("rank.{name}.grad1"),
            1e-6,
            1e-4,
        );
        assert_golden(
            grads.get(&bv).unwrap(),
            &format!("rank.{name}.grad2"),
            1e-6,
            1e-4,
        );
        let y = y.to_device(&Device::cpu()).unwrap();
        check_grad(
            dev,
            &[
                &a.to_device(&Device::cpu()).unwrap(),
                &b.to_device(&Device::cpu()).unwrap(),
            ],
            |t| f(&t[0], &t[1], &y.to_device(t[0].device())?, Reduction::Sum),
            name,
        );
    }
    let x = Tensor::zeros(&[3, 2], dev).unwrap();
    let m = loss::cosine_embedding(&x, &x, &x, 0.0, Reduction::Mean)
        .unwrap_err()
        .to_string();
    assert!(m.contains("cosine_embedding: expects inputs [n, d]"), "{m}");
    let y = Tensor::zeros(&[3], dev).unwrap();
    let m = loss::cosine_embedding(&x, &x, &y, 2.0, Reduction::Mean)
        .unwrap_err()
        .to_string();
    assert!(m.contains("margin must be in [-1, 1], found 2"), "{m}");
}

device_tests!(
    regression_losses,
    classification_losses,
    cross_entropy_sizes,
    binary_losses,
    loss_gradcheck,
    loss_options,
    ranking_losses,
);

fn message(r: Result<Tensor>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(t) => panic!("expected an error, got shape {:?}", t.shape()),
    }
}

#[test]
fn loss_errors() {
    let dev = Device::cpu();
    let a = Tensor::zeros(&[4, 3], &dev).unwrap();
    let col = Tensor::zeros(&[4, 1], &dev).unwrap();
    let m = message(loss::mse(&a, &col, Reduction::Mean));
    assert!(m.contains("mse: shapes [4, 3] and [4, 1] differ"), "{m}");
    let m = message(loss::huber(&a, &a, -1.0, Reduction::Mean));
    assert!(
        m.contains("huber: delta must be finite and > 0, found -1"),
        "{m}"
    );
    let classes = Tensor::from_vec(vec![0, 1, 2], &[3], &dev).unwrap();
    let m = message(loss::cross_entropy(&a, &classes, Reduction::Mean));
    assert!(m.contains("cross_entropy: shapes [4, 3] and [3]"), "{m}");
    assert!(
        m.contains("class indices [4] or probabilities [4, 3]"),
        "{m}"
    );
    let bad = Tensor::from_vec(vec![0, 1, 2, 3], &[4], &dev).unwrap();
    let e = loss::cross_entropy(&a, &bad, Reduction::Mean).unwrap_err();
    assert!(
        matches!(e, Error::IndexOutOfRange { index, size: 3, .. } if index == 3.0),
        "{e}"
    );
    let m = message(loss::cross_entropy_with_smoothing(
        &a,
        &bad,
        1.5,
        Reduction::Mean,
    ));
    assert!(
        m.contains("label smoothing must be in [0, 1], found 1.5"),
        "{m}"
    );
    let m = message(loss::cross_entropy(
        &Tensor::zeros(&[3], &dev).unwrap(),
        &bad,
        Reduction::Mean,
    ));
    assert!(m.contains("[batch, classes]"), "{m}");
    let m = message(loss::nll(&a, &a, Reduction::Mean));
    assert!(m.contains("nll: expects class indices of shape [4]"), "{m}");
    let m = message(loss::cross_entropy_with(
        &a,
        &classes.narrow(0, 0, 3).unwrap(),
        &ClassLoss::default().ignore_index(-100),
    ));
    assert!(m.contains("cross_entropy: shapes [4, 3] and [3]"), "{m}");
    let four = Tensor::from_vec(vec![0, 1, 2, -100], &[4], &dev).unwrap();
    let opts = ClassLoss::default().weight(Tensor::ones(&[4], &dev).unwrap());
    let m = message(loss::cross_entropy_with(&a, &four, &opts));
    assert!(
        m.contains(
            "cross_entropy: the class weight must have shape [3] (one per class), found [4]"
        ),
        "{m}"
    );
    // Weights of another float dtype are taken in the input's.
    let half = Tensor::ones(&[3], &dev)
        .unwrap()
        .to_dtype(ferrograd::DType::F16)
        .unwrap();
    let l = loss::bce_with_logits_with(&a, &a, &BceLoss::default().pos_weight(half));
    assert_eq!(l.unwrap().dtype(), ferrograd::DType::F32);
    let probs = Tensor::zeros(&[4, 3], &dev).unwrap();
    let m = message(loss::cross_entropy_with(
        &a,
        &probs,
        &ClassLoss::default().ignore_index(0),
    ));
    assert!(
        m.contains("ignore_index 0 needs class-index targets"),
        "{m}"
    );
    let o = ClassLoss::default().ignore_index(-100); // PyTorch's default: names no class
    assert!(loss::cross_entropy_with(&a, &probs, &o).is_ok());
    let m = message(loss::nll_with(&a, &four, &opts.label_smoothing(0.1)));
    assert!(m.contains("nll: takes no label smoothing"), "{m}");
    let e = loss::cross_entropy_with(&a, &four, &ClassLoss::default().ignore_index(-1));
    assert!(matches!(e, Err(Error::IndexOutOfRange { .. })), "{e:?}");
    let opts = BceLoss::default().pos_weight(Tensor::ones(&[4], &dev).unwrap());
    let m = message(loss::bce_with_logits_with(&a, &a, &opts));
    assert!(
        m.contains(
            "bce_with_logits: pos_weight of shape [4] does not broadcast to the input's [4, 3]"
        ),
        "{m}"
    );
    let m = message(loss::kl_div(&a, &col, Reduction::BatchMean, false));
    assert!(m.contains("kl_div: shapes [4, 3] and [4, 1] differ"), "{m}");
    let m = message(loss::l1_penalty(&[]));
    assert!(m.contains("no trainable parameters"), "{m}");
}

#[test]
fn penalties() {
    let dev = Device::cpu();
    let w = ferrograd::nn::Parameter::new(Tensor::from_vec(vec![1.0, -2.0], &[2], &dev).unwrap());
    let b = ferrograd::nn::Parameter::new(Tensor::from_vec(vec![3.0], &[1], &dev).unwrap());
    assert_eq!(
        loss::l1_penalty(&[w.clone(), b.clone()])
            .unwrap()
            .to_scalar()
            .unwrap(),
        6.0
    );
    let l2 = loss::l2_penalty(&[w.clone(), b.clone()]).unwrap();
    assert_eq!(l2.to_scalar().unwrap(), 14.0);
    let g = l2.backward().unwrap();
    assert_eq!(g.get(&w.value()).unwrap().to_vec().unwrap(), [2.0, -4.0]);
    b.set_trainable(false);
    assert_eq!(loss::l1_penalty(&[w, b]).unwrap().to_scalar().unwrap(), 3.0);
}
