//! Autograd mechanics: fan-out accumulation, detach and no_grad, what does and does not track,
//! the error cases, golden values, and a shortened run of `examples/sine.rs` on each device.

mod common;
use common::{assert_close, uniform};
use ferrograd::{no_grad, Activation, Device, Tensor};

#[allow(dead_code)]
#[path = "../examples/sine.rs"]
mod sine;

fn t(data: &[f32], shape: &[usize], dev: &Device) -> Tensor {
    Tensor::from_slice(data, shape, dev).unwrap()
}

fn grad_of(loss: &Tensor, var: &Tensor) -> Vec<f32> {
    let grads = loss.backward().unwrap();
    grads.get(var).expect("a gradient").to_vec().unwrap()
}

fn fan_out_accumulates(dev: &Device) {
    // y = x*x + x: x is used three times, dy/dx = 2x + 1
    let x = t(&[1.0, -2.0, 0.5], &[3], dev).requires_grad();
    let y = x.mul(&x).unwrap().add(&x).unwrap().sum_all().unwrap();
    assert_eq!(grad_of(&y, &x), vec![3.0, -3.0, 2.0]);
    // a diamond: both branches of one intermediate reach the loss
    let h = x.exp().unwrap();
    let loss = h
        .mul_scalar(2.0)
        .unwrap()
        .add(&h)
        .unwrap()
        .sum_all()
        .unwrap(); // 3 e^x
    let expected: Vec<f32> = [1.0f32, -2.0, 0.5].iter().map(|v| 3.0 * v.exp()).collect();
    assert_close(&grad_of(&loss, &x), &expected, 1e-5, 1e-5, "diamond");
    // a matrix used on both sides of a matmul: d/dA sum(A A) = 1 Aᵀ + Aᵀ 1
    let a = t(&[1.0, 2.0, 3.0, 4.0], &[2, 2], dev).requires_grad();
    let s = a.matmul(&a).unwrap().sum_all().unwrap();
    assert_eq!(grad_of(&s, &a), vec![7.0, 11.0, 9.0, 13.0]);
}

fn detach_and_no_grad(dev: &Device) {
    let x = t(&[1.0, 2.0], &[2], dev).requires_grad();
    // x * detach(x): the detached factor is a constant, so the gradient is x, not 2x
    let y = x.mul(&x.detach()).unwrap().sum_all().unwrap();
    assert_eq!(grad_of(&y, &x), vec![1.0, 2.0]);
    assert!(!x.detach().tracks_grad());

    let z = no_grad(|| x.square().unwrap());
    assert!(!z.tracks_grad() && z.is_leaf());
    assert!(ferrograd::is_grad_enabled(), "no_grad restores the mode");
    no_grad(|| {
        no_grad(|| ());
        assert!(
            !ferrograd::is_grad_enabled(),
            "an inner scope restores the outer one"
        );
    });
    // nothing tracked: ops on constants, comparisons and argmax do not track
    let c = t(&[1.0, 2.0], &[2], dev);
    assert!(!c.exp().unwrap().tracks_grad());
    assert!(!x.gt_scalar(1.5).unwrap().tracks_grad());
    assert!(!x.argmax(0, false).unwrap().tracks_grad());
    assert!(x.exp().unwrap().tracks_grad() && !x.exp().unwrap().is_leaf());
}

fn unused_and_leaf_losses(dev: &Device) {
    let a = t(&[1.0, 2.0], &[2], dev).requires_grad();
    let b = t(&[3.0], &[1], dev).requires_grad();
    let grads = a.sum_all().unwrap().backward().unwrap();
    assert!(grads.get(&b).is_none(), "b does not reach the loss");
    assert_eq!(grads.len(), 1);
    // the loss itself a variable: d loss / d loss = 1
    let s = t(&[5.0], &[], dev).requires_grad();
    assert_eq!(grad_of(&s, &s), vec![1.0]);
    // a clone of a variable is the same variable
    let a2 = a.clone();
    let grads = a2.square().unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(grads.get(&a).unwrap().to_vec().unwrap(), vec![2.0, 4.0]);
}

fn backward_errors(dev: &Device) {
    let x = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3], dev).requires_grad();
    let y = x.exp().unwrap();
    let e = y.backward().unwrap_err().to_string();
    assert!(
        e.contains("backward: needs a scalar loss, found shape [2, 3]"),
        "{e}"
    );
    let e = y
        .backward_with(&t(&[1.0; 3], &[3], dev))
        .unwrap_err()
        .to_string();
    assert!(e.contains("backward: shapes [2, 3] and [3] differ"), "{e}");
    let e = t(&[1.0], &[], dev).backward().unwrap_err().to_string();
    assert!(
        e.contains("backward: this tensor does not require grad"),
        "{e}"
    );

    // a second backward through a freed graph
    let loss = x.exp().unwrap().sum_all().unwrap();
    loss.backward().unwrap();
    let e = loss.backward().unwrap_err().to_string();
    assert!(
        e.contains("backward: the graph through `sum` was freed by an earlier backward"),
        "{e}"
    );
    // ... unless retained
    let loss = x.exp().unwrap().sum_all().unwrap();
    let first = loss.backward_retaining(None, true).unwrap();
    let second = loss.backward().unwrap();
    assert_eq!(
        first.get(&x).unwrap().to_vec().unwrap(),
        second.get(&x).unwrap().to_vec().unwrap()
    );
    // with a seed: a non-scalar output
    let seed = t(&[1.0, 0.0, 2.0, 0.0, 0.0, 1.0], &[2, 3], dev);
    let g = x.mul_scalar(3.0).unwrap().backward_with(&seed).unwrap();
    assert_eq!(
        g.get(&x).unwrap().to_vec().unwrap(),
        vec![3.0, 0.0, 6.0, 0.0, 0.0, 3.0]
    );
}

// Golden values. The PyTorch program that defines them:
//
//   import torch, torch.nn.functional as F
//   x = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
//   (F.gelu(x, approximate="tanh") * torch.tensor([1., 2., 3.], dtype=torch.float64)).sum().backward()
//   print(x.grad)
//   z = torch.tensor([[1., 2., 3.], [1., -1., 0.]], dtype=torch.float64, requires_grad=True)
//   loss = F.cross_entropy(z, torch.tensor([2, 0])); loss.backward(); print(loss, z.grad)
//
// The numbers below were evaluated in f64 from the closed forms that program differentiates
// (gelu'(x) of the tanh form; (softmax(z) - onehot) / 2), on a machine without PyTorch.
fn golden_values(dev: &Device) {
    let x = t(&[0.5, -1.0, 2.0], &[3], dev).requires_grad();
    let w = t(&[1.0, 2.0, 3.0], &[3], dev);
    let loss = x.gelu_tanh().unwrap().mul(&w).unwrap().sum_all().unwrap();
    let expected = [0.867_369_9, -0.165_928_17, 3.258_297_8];
    assert_close(&grad_of(&loss, &x), &expected, 1e-5, 1e-5, "gelu");

    let z = t(&[1.0, 2.0, 3.0, 1.0, -1.0, 0.0], &[2, 3], dev).requires_grad();
    let labels = Tensor::from_vec(vec![2, 0], &[2, 1], dev).unwrap();
    let loss = z
        .log_softmax(-1)
        .unwrap()
        .gather(1, &labels)
        .unwrap()
        .mean_all()
        .unwrap()
        .neg()
        .unwrap();
    assert_close(
        &[loss.to_scalar().unwrap()],
        &[0.407_605_96],
        1e-6,
        1e-6,
        "loss",
    );
    let expected = [
        0.045_015_287,
        0.122_364_24,
        -0.167_379_52,
        -0.167_379_52,
        0.045_015_287,
        0.122_364_24,
    ];
    assert_close(&grad_of(&loss, &z), &expected, 1e-6, 1e-5, "cross-entropy");
}

fn gradients_stay_on_the_device(dev: &Device) {
    let x = uniform(&[4, 3], -1.0, 1.0, 5)
        .to_device(dev)
        .unwrap()
        .requires_grad();
    let w = uniform(&[3, 2], -1.0, 1.0, 6)
        .to_device(dev)
        .unwrap()
        .requires_grad();
    let loss = x.matmul(&w).unwrap().relu().unwrap().mean_all().unwrap();
    let grads = loss.backward().unwrap();
    assert_eq!(grads.get(&x).unwrap().device(), dev);
    assert_eq!(grads.get(&w).unwrap().device(), dev);
    // across devices: the gradient goes back to where the variable lives
    let c = t(&[1.0, 2.0], &[2], &Device::cpu()).requires_grad();
    let on_dev = c
        .to_device(dev)
        .unwrap()
        .square()
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = on_dev.backward().unwrap();
    assert_eq!(grads.get(&c).unwrap().device(), &Device::cpu());
    assert_eq!(grads.get(&c).unwrap().to_vec().unwrap(), vec![2.0, 4.0]);
}

fn gradcheck_reports(dev: &Device) {
    use ferrograd::{gradcheck, GradcheckOptions};
    let opts = GradcheckOptions::default();
    // Right gradients pass, with errors at f32 rounding level.
    let x = t(&[0.3, -1.2, 2.0], &[3], dev);
    let r = gradcheck(|a| a[0].tanh()?.mul(&a[0]), std::slice::from_ref(&x), &opts).unwrap();
    assert!(r.passed && r.inputs[0].max_abs_error < 1e-5, "{r}");
    // A wrong gradient fails: x * detach(x) has autograd gradient x, true derivative 2x.
    let r = gradcheck(
        |a| a[0].mul(&a[0].detach()),
        std::slice::from_ref(&x),
        &opts,
    )
    .unwrap();
    assert!(
        !r.passed && r.to_string().contains("gradcheck FAILED"),
        "{r}"
    );
    // The numeric side is f64: at x = 1000 a step of 1e-6 vanishes in f32 (ulp 6e-5)
    // but not in f64, so d/dx x² = 2000 comes out right.
    let big = t(&[1000.0], &[1], dev);
    let r = gradcheck(|a| a[0].square(), &[big], &opts).unwrap();
    assert!(r.passed, "{r}");
    // A bad step is an error, not a report.
    let bad = GradcheckOptions { eps: 0.0, ..opts };
    let e = gradcheck(|a| a[0].exp(), &[x], &bad)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("gradcheck: eps must be positive and finite, got 0"),
        "{e}"
    );
}

fn sine_fit_shortened(dev: &Device) {
    // The full example runs 3,000 steps to MSE < 1e-3; 300 steps must already be far below
    // where training starts (MSE 0.34).
    let mse = sine::train(dev, 300, 0).unwrap();
    assert!(mse < 0.02, "sine fit after 300 steps on {dev}: mse {mse}");
}

device_tests!(
    fan_out_accumulates,
    detach_and_no_grad,
    unused_and_leaf_losses,
    backward_errors,
    golden_values,
    gradients_stay_on_the_device,
    transposed_weight_gradient_is_dense,
    gradcheck_reports,
    sine_fit_shortened,
);

/// The gradient of a weight used transposed (`x · wᵀ`, as `Linear` does) comes out dense in
/// the weight's own layout, so the optimizer reads it without a copy; and it is right.
fn transposed_weight_gradient_is_dense(dev: &Device) {
    let x = uniform(&[5, 3], -1.0, 1.0, 7).to_device(dev).unwrap();
    let w = uniform(&[4, 3], -1.0, 1.0, 8)
        .to_device(dev)
        .unwrap()
        .requires_grad();
    let g = uniform(&[5, 4], -1.0, 1.0, 9).to_device(dev).unwrap();
    // dL/dw = gᵀ · x for L = sum(g * (x · wᵀ))
    let want = g.t().unwrap().matmul(&x).unwrap().to_vec().unwrap();
    for (what, y) in [
        ("matmul", x.matmul(&w.t().unwrap()).unwrap()),
        ("linear", x.linear(&w, None, Activation::Identity).unwrap()),
    ] {
        let grads = y.mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
        let gw = grads.get(&w).unwrap();
        assert_eq!(gw.shape(), &[4, 3]);
        assert!(
            gw.is_contiguous(),
            "{what}: the weight gradient is a strided view"
        );
        assert_close(&gw.to_vec().unwrap(), &want, 1e-5, 1e-5, what);
    }
}

/// A graph dropped without backward (a long loop that forgot `no_grad`) is freed iteratively:
/// dropping 200,000 chained nodes must not overflow a 2 MiB test-thread stack.
#[test]
fn deep_graphs_drop_without_overflow() {
    let dev = Device::cpu();
    let x = t(&[1.0], &[1], &dev).requires_grad();
    let mut y = x.clone();
    for _ in 0..200_000 {
        y = y.mul_scalar(1.0).unwrap();
    }
    assert!(y.tracks_grad());
    drop(y);
    // and backward through a deep graph works too (iterative topological order)
    let mut y = x.clone();
    for _ in 0..50_000 {
        y = y.add_scalar(1.0).unwrap();
    }
    let grads = y.sum_all().unwrap().backward().unwrap();
    assert_eq!(grads.get(&x).unwrap().to_vec().unwrap(), vec![1.0]);
}
