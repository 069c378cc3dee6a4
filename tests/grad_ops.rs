//! The gradient of every differentiable op. On the CPU each is checked by `gradcheck` against
//! central finite differences, with a random (non-uniform) upstream gradient and inputs kept
//! away from kinks; on the GPU the analytic gradients are compared with the CPU's. Shapes
//! include broadcasting, sizes 1 and primes, and non-contiguous (transposed, sliced) inputs.

mod common;
use common::{check_grad, check_grad_with, normal, signed, uniform};
use ferrograd::{Activation, Device, GradcheckOptions, Tensor};

// ---- unary ----

fn unary_smooth(dev: &Device) {
    let x = normal(&[3, 5], 1);
    check_grad(dev, &[&x], |t| t[0].neg(), "neg");
    check_grad(dev, &[&x], |t| t[0].exp(), "exp");
    check_grad(dev, &[&x], |t| t[0].square(), "square");
    check_grad(dev, &[&x], |t| t[0].sigmoid(), "sigmoid");
    check_grad(dev, &[&x], |t| t[0].tanh(), "tanh");
    check_grad(dev, &[&x], |t| t[0].gelu(), "gelu");
    check_grad(dev, &[&x], |t| t[0].gelu_tanh(), "gelu_tanh");
    check_grad(dev, &[&x], |t| t[0].contiguous(), "contiguous");
    // non-contiguous input: the transposed view
    check_grad(dev, &[&x], |t| t[0].t()?.tanh(), "tanh of a transpose");
}

fn unary_positive(dev: &Device) {
    let x = uniform(&[7], 0.5, 2.0, 2);
    check_grad(dev, &[&x], |t| t[0].log(), "log");
    check_grad(dev, &[&x], |t| t[0].sqrt(), "sqrt");
    check_grad(dev, &[&x], |t| t[0].pow_scalar(1.7), "pow_scalar");
}

fn unary_kinks(dev: &Device) {
    // |x| >= 0.1: never within eps of the kink at 0
    let x = signed(&[2, 3, 4], 0.1, 2.0, 3);
    check_grad(dev, &[&x], |t| t[0].relu(), "relu");
    check_grad(dev, &[&x], |t| t[0].abs(), "abs");
    check_grad(dev, &[&x], |t| t[0].leaky_relu(0.1), "leaky_relu");
    // clamp bounds at ±0.05, and no input within 0.05 of them (|x| >= 0.1)
    check_grad(dev, &[&x], |t| t[0].clamp(-0.05, 0.05), "clamp");
    check_grad(dev, &[&x], |t| t[0].clamp(-1.0, 1.0), "clamp wide");
}

fn scalar_forms(dev: &Device) {
    let x = signed(&[11], 0.3, 2.0, 4);
    check_grad(dev, &[&x], |t| t[0].add_scalar(2.0), "add_scalar");
    check_grad(dev, &[&x], |t| t[0].sub_scalar(2.0), "sub_scalar");
    check_grad(dev, &[&x], |t| t[0].mul_scalar(-3.0), "mul_scalar");
    check_grad(dev, &[&x], |t| t[0].div_scalar(4.0), "div_scalar");
    check_grad(dev, &[&x], |t| t[0].pow_scalar(3.0), "pow_scalar integral");
    check_grad(dev, &[&x], |t| t[0].maximum_scalar(0.0), "maximum_scalar");
    check_grad(dev, &[&x], |t| t[0].minimum_scalar(0.0), "minimum_scalar");
    check_grad(dev, &[&x], |t| 2.0 - &t[0], "scalar - x");
    check_grad(dev, &[&x], |t| 1.0 / &t[0], "scalar / x");
}

// ---- binary with broadcasting ----

fn binary_broadcast(dev: &Device) {
    // [3, 1, 4] against [2, 4]: both operands are broadcast and summed back
    let a = normal(&[3, 1, 4], 5);
    let b = normal(&[2, 4], 6);
    let pos = uniform(&[2, 4], 0.5, 2.0, 7);
    check_grad(dev, &[&a, &b], |t| t[0].add(&t[1]), "add");
    check_grad(dev, &[&a, &b], |t| t[0].sub(&t[1]), "sub");
    check_grad(dev, &[&a, &b], |t| t[0].mul(&t[1]), "mul");
    check_grad(dev, &[&a, &pos], |t| t[0].div(&t[1]), "div");
    // max/min: a and a + d with |d| >= 0.1 never tie
    let d = signed(&[3, 2, 4], 0.1, 1.0, 8);
    let c = a.add(&d).unwrap();
    check_grad(dev, &[&a, &c], |t| t[0].maximum(&t[1]), "maximum");
    check_grad(dev, &[&a, &c], |t| t[0].minimum(&t[1]), "minimum");
    // pow with a tensor exponent: positive base
    let base = uniform(&[3, 1, 4], 0.5, 2.0, 9);
    let exp = uniform(&[4], -1.5, 1.5, 10);
    check_grad(dev, &[&base, &exp], |t| t[0].pow(&t[1]), "pow");
    // a transposed operand
    let m = normal(&[4, 2], 11);
    check_grad(
        dev,
        &[&m, &b],
        |t| t[0].t()?.mul(&t[1]),
        "mul with a transposed operand",
    );
    // scalar (0-D) operand
    let s = normal(&[], 12);
    check_grad(dev, &[&a, &s], |t| t[0].mul(&t[1]), "mul by a 0-D tensor");
}

fn where_select(dev: &Device) {
    let cond = uniform(&[3, 4], 0.0, 1.0, 13).gt_scalar(0.5).unwrap();
    let a = normal(&[3, 4], 14);
    let b = normal(&[4], 15);
    check_grad(
        dev,
        &[&a, &b],
        move |t| Tensor::where_(&cond.to_device(t[0].device())?, &t[0], &t[1]),
        "where_",
    );
}

// ---- matmul ----

fn matmul_shapes(dev: &Device) {
    let cases: [(&[usize], &[usize]); 6] = [
        (&[3, 5], &[5, 2]),       // 2-D
        (&[2, 3, 4], &[2, 4, 5]), // batched
        (&[2, 3, 4], &[4, 5]),    // shared weight: batch folded into rows
        (&[4, 5], &[3, 5, 2]),    // broadcast lhs
        (&[5], &[5, 3]),          // vector · matrix
        (&[2, 3, 5], &[5]),       // matrix · vector
    ];
    for (i, (sa, sb)) in cases.iter().enumerate() {
        let a = normal(sa, 20 + i as u64);
        let b = normal(sb, 30 + i as u64);
        check_grad(
            dev,
            &[&a, &b],
            |t| t[0].matmul(&t[1]),
            &format!("matmul {sa:?}·{sb:?}"),
        );
    }
    // transposed operands (no copy in the forward pass)
    let a = normal(&[5, 3], 40);
    let b = normal(&[2, 5], 41);
    check_grad(
        dev,
        &[&a, &b],
        |t| t[0].t()?.matmul(&t[1].t()?),
        "matmul of transposes",
    );
    let v = normal(&[7], 42);
    check_grad(dev, &[&v, &v], |t| t[0].matmul(&t[1]), "dot product");
}

/// `linear`'s fused epilogue: act(x · wᵀ + b) as one op, each activation's gradient taken
/// from its output.
fn linear_fused(dev: &Device) {
    let acts = [
        Activation::Identity,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
    ];
    for (i, act) in acts.into_iter().enumerate() {
        let x = normal(&[2, 3, 5], 110 + i as u64);
        let w = normal(&[4, 5], 120 + i as u64);
        let b = normal(&[4], 130 + i as u64);
        check_grad(
            dev,
            &[&x, &w, &b],
            move |t| t[0].linear(&t[1], Some(&t[2]), act),
            &format!("linear {act:?}"),
        );
    }
    let v = normal(&[5], 140);
    let w = normal(&[3, 5], 141);
    check_grad(
        dev,
        &[&v, &w],
        |t| t[0].linear(&t[1], None, Activation::Relu),
        "linear of a vector, no bias",
    );
}

// ---- reductions ----

fn reductions(dev: &Device) {
    let x = normal(&[3, 4, 5], 50);
    check_grad(dev, &[&x], |t| t[0].sum(1, false), "sum");
    check_grad(dev, &[&x], |t| t[0].sum(-1, true), "sum keepdim");
    check_grad(dev, &[&x], |t| t[0].sum_all(), "sum_all");
    check_grad(dev, &[&x], |t| t[0].mean(0, false), "mean");
    check_grad(dev, &[&x], |t| t[0].mean_all(), "mean_all");
    check_grad(dev, &[&x], |t| t[0].var(2, true), "var");
    check_grad(dev, &[&x], |t| t[0].var_all(), "var_all");
    // random normals have no ties, and the gap to the runner-up is far above eps
    check_grad(dev, &[&x], |t| t[0].max(1, false), "max");
    check_grad(dev, &[&x], |t| t[0].min(-1, true), "min keepdim");
    check_grad(dev, &[&x], |t| t[0].max_all(), "max_all");
    check_grad(dev, &[&x], |t| t[0].min_all(), "min_all");
    check_grad(
        dev,
        &[&x],
        |t| t[0].slice(1, 1..3)?.sum(0, false),
        "sum of a slice",
    );
}

fn softmaxes(dev: &Device) {
    let x = normal(&[3, 7], 60);
    check_grad(dev, &[&x], |t| t[0].softmax(-1), "softmax rows");
    check_grad(dev, &[&x], |t| t[0].softmax(0), "softmax columns");
    check_grad(dev, &[&x], |t| t[0].log_softmax(-1), "log_softmax rows");
    check_grad(dev, &[&x], |t| t[0].log_softmax(0), "log_softmax columns");
    check_grad(
        dev,
        &[&x],
        |t| t[0].t()?.log_softmax(1),
        "log_softmax of a transpose",
    );
    let one = normal(&[4, 1], 61);
    check_grad(
        dev,
        &[&one],
        |t| t[0].softmax(-1),
        "softmax of length-1 rows",
    );
}

// ---- views and copies ----

fn views(dev: &Device) {
    let x = normal(&[2, 3, 4], 70);
    check_grad(dev, &[&x], |t| t[0].reshape(&[4, 6]), "reshape");
    check_grad(dev, &[&x], |t| t[0].flatten(), "flatten");
    check_grad(dev, &[&x], |t| t[0].transpose(0, 2), "transpose");
    check_grad(dev, &[&x], |t| t[0].permute(&[1, 2, 0]), "permute");
    check_grad(dev, &[&x], |t| t[0].narrow(2, 1, 2), "narrow");
    check_grad(dev, &[&x], |t| t[0].slice(0, 1..2), "slice");
    check_grad(dev, &[&x], |t| t[0].unsqueeze(1), "unsqueeze");
    check_grad(
        dev,
        &[&x],
        |t| t[0].permute(&[2, 0, 1])?.reshape(&[8, 3]),
        "reshape of a permute",
    );
    let y = normal(&[3, 1, 2], 71);
    check_grad(dev, &[&y], |t| t[0].squeeze(1), "squeeze");
    check_grad(
        dev,
        &[&y],
        |t| t[0].broadcast_to(&[2, 3, 5, 2]),
        "broadcast_to",
    );
    check_grad(dev, &[&y], |t| t[0].expand(&[3, 4, 2]), "expand");
}

fn joins(dev: &Device) {
    let a = normal(&[2, 3], 80);
    let b = normal(&[2, 5], 81);
    let c = normal(&[2, 3], 82);
    check_grad(dev, &[&a, &b], |t| Tensor::cat(&[&t[0], &t[1]], 1), "cat");
    check_grad(
        dev,
        &[&a, &c],
        |t| Tensor::stack(&[&t[0], &t[1], &t[0]], 0),
        "stack (one input twice)",
    );
    check_grad(
        dev,
        &[&a, &c],
        |t| Tensor::cat(&[&t[0], &t[1]], 0),
        "cat rows",
    );
}

fn indexing(dev: &Device) {
    let x = normal(&[5, 3], 90);
    // repeated indices: their gradients add up
    let idx = Tensor::from_vec(vec![4, 0, 4, 2], &[4], &Device::cpu()).unwrap();
    let i1 = idx.clone();
    check_grad(
        dev,
        &[&x],
        move |t| t[0].index_select(0, &i1.to_device(t[0].device())?),
        "index_select rows",
    );
    let i2 = Tensor::from_vec(vec![2, 2, 1], &[3], &Device::cpu()).unwrap();
    check_grad(
        dev,
        &[&x],
        move |t| t[0].index_select(1, &i2.to_device(t[0].device())?),
        "index_select columns",
    );
    // gather along the last axis with an index narrower than x along axis 0
    let gi = Tensor::from_vec(vec![0, 2, 2, 1, 1, 1], &[3, 2], &Device::cpu()).unwrap();
    check_grad(
        dev,
        &[&x],
        move |t| t[0].gather(1, &gi.to_device(t[0].device())?),
        "gather",
    );
    let g0 = Tensor::from_vec(vec![4, 0, 3, 4, 4, 1], &[2, 3], &Device::cpu()).unwrap();
    check_grad(
        dev,
        &[&x],
        move |t| t[0].gather(0, &g0.to_device(t[0].device())?),
        "gather axis 0",
    );
}

fn composite(dev: &Device) {
    // A small MLP and a cross-entropy loss, end to end.
    let x = normal(&[4, 3], 100);
    let w1 = normal(&[3, 5], 101);
    let b1 = normal(&[5], 102);
    let w2 = normal(&[5, 2], 103);
    let labels = Tensor::from_vec(vec![0, 1, 1, 0], &[4, 1], &Device::cpu()).unwrap();
    check_grad_with(
        dev,
        &[&x, &w1, &b1, &w2],
        move |t| {
            let h = t[0].matmul(&t[1])?.add(&t[2])?.tanh()?;
            let logp = h.matmul(&t[3])?.log_softmax(-1)?;
            logp.gather(1, &labels.to_device(t[0].device())?)?
                .mean_all()?
                .neg()
        },
        &GradcheckOptions::default(),
        "MLP cross-entropy",
    );
}

device_tests!(
    unary_smooth,
    unary_positive,
    unary_kinks,
    scalar_forms,
    binary_broadcast,
    where_select,
    matmul_shapes,
    linear_fused,
    reductions,
    softmaxes,
    views,
    joins,
    indexing,
    composite,
);
