//! The module API and layers on both devices: forwards against closed forms and the
//! functional ops, parameter names, train/eval mode, freezing, initializer statistics, and
//! gradcheck of each layer's parameters through the module.

mod common;
use common::{assert_close, check_grad, normal, uniform};
use ferrograd::nn::init::{self, FanMode, Nonlinearity};
use ferrograd::nn::{
    AdaptiveAvgPool2d, BatchNorm, Conv2d, ConvTranspose2d, Dropout, Embedding, Flatten, LayerNorm,
    Linear, MaxPool2d, Module, ReLU, Sequential, Sigmoid, Tanh,
};
use ferrograd::{Conv2dOptions, Device, Generator, Pool2dOptions, Tensor};

fn names(m: &dyn Module) -> Vec<String> {
    m.named_parameters().into_iter().map(|(n, _)| n).collect()
}

fn linear(dev: &Device) {
    let lin = Linear::new(3, 2, true, dev).unwrap();
    assert_eq!(names(&lin), ["weight", "bias"]);
    assert_eq!(lin.weight.shape(), [2, 3]);
    // PyTorch's default init: |w|, |b| <= 1/sqrt(in)
    let bound = 1.0 / 3f32.sqrt();
    for p in lin.parameters() {
        assert!(p.value().to_vec().unwrap().iter().all(|v| v.abs() <= bound));
    }
    let w = Tensor::from_vec(vec![1.0, 2.0, 3.0, -1.0, 0.0, 1.0], &[2, 3], dev).unwrap();
    lin.weight.set(w);
    lin.bias
        .as_ref()
        .unwrap()
        .set(Tensor::from_vec(vec![0.5, -0.5], &[2], dev).unwrap());
    // [.., in] -> [.., out], with leading batch axes
    let x = Tensor::from_vec(vec![1.0, 1.0, 1.0, 2.0, 0.0, -1.0], &[2, 1, 3], dev).unwrap();
    let y = lin.forward(&x).unwrap();
    assert_eq!(y.shape(), &[2, 1, 2]);
    assert_eq!(y.to_vec().unwrap(), vec![6.5, -0.5, -0.5, -3.5]);
    let e = lin
        .forward(&Tensor::ones(&[4, 5], dev).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("Linear(3 -> 2)") && e.contains("[4, 5]"), "{e}");
    // gradients through the module, for input, weight and bias
    let (x, w, b) = (normal(&[4, 3], 1), normal(&[2, 3], 2), normal(&[2], 3));
    check_grad(
        dev,
        &[&x, &w, &b],
        |t| {
            let l = Linear::new(3, 2, true, t[0].device())?;
            l.weight.set(t[1].clone());
            l.bias.as_ref().unwrap().set(t[2].clone());
            l.forward(&t[0])
        },
        "Linear",
    );
}

fn conv_layer(dev: &Device) {
    let o = Conv2dOptions::new().padding(1).groups(2);
    let conv = Conv2d::new(4, 6, 3, o, true, dev).unwrap();
    assert_eq!(conv.weight.shape(), [6, 2, 3, 3]);
    let bound = 1.0 / 18f32.sqrt(); // fan_in = 2 * 3 * 3
    assert!(conv
        .weight
        .value()
        .to_vec()
        .unwrap()
        .iter()
        .all(|v| v.abs() <= bound));
    let x = normal(&[2, 4, 5, 5], 4).to_device(dev).unwrap();
    let y = conv.forward(&x).unwrap();
    let b = conv.bias.as_ref().unwrap().value();
    let e = x.conv2d(&conv.weight.value(), Some(&b), &o).unwrap();
    assert_close(
        &y.to_vec().unwrap(),
        &e.to_vec().unwrap(),
        0.0,
        0.0,
        "Conv2d layer",
    );
    assert!(Conv2d::new(4, 5, 3, o, true, dev).is_err()); // 5 outputs, 2 groups
    let (x, w) = (normal(&[1, 4, 4, 4], 5), normal(&[6, 2, 3, 3], 6));
    check_grad(
        dev,
        &[&x, &w],
        |t| {
            let c = Conv2d::new(4, 6, 3, o, false, t[0].device())?;
            c.weight.set(t[1].clone());
            c.forward(&t[0])
        },
        "Conv2d",
    );
}

/// The DCGAN upsampling layer: 7 -> 14 with kernel 4, stride 2, padding 1; PyTorch's init
/// bound (fan_in from the weight's second axis), the functional op's output, PyTorch's names,
/// and the gradients of input, weight and bias.
fn conv_transpose_layer(dev: &Device) {
    let o = Conv2dOptions::new().stride(2).padding(1);
    let up = ConvTranspose2d::new(6, 4, 4, o, true, dev).unwrap();
    assert_eq!(up.weight.shape(), [6, 4, 4, 4]);
    assert_eq!(up.bias.as_ref().unwrap().shape(), [4]);
    assert_eq!(names(&up), ["weight", "bias"]);
    let bound = 1.0 / 64f32.sqrt(); // fan_in = 4 * 4 * 4
    for p in up.parameters() {
        assert!(p.value().to_vec().unwrap().iter().all(|v| v.abs() <= bound));
    }
    let x = normal(&[2, 6, 7, 7], 4).to_device(dev).unwrap();
    let y = up.forward(&x).unwrap();
    assert_eq!(y.shape(), &[2, 4, 14, 14]);
    let b = up.bias.as_ref().unwrap().value();
    let e = x
        .conv_transpose2d(&up.weight.value(), Some(&b), &o)
        .unwrap();
    assert_close(
        &y.to_vec().unwrap(),
        &e.to_vec().unwrap(),
        0.0,
        0.0,
        "ConvTranspose2d",
    );
    assert!(ConvTranspose2d::new(6, 4, 4, o.groups(4), true, dev).is_err()); // 4 ∤ 6
    let (x, w, b) = (
        normal(&[1, 2, 3, 3], 5),
        normal(&[2, 3, 4, 4], 6),
        normal(&[3], 7),
    );
    check_grad(
        dev,
        &[&x, &w, &b],
        |t| {
            let c = ConvTranspose2d::new(2, 3, 4, o, true, t[0].device())?;
            c.weight.set(t[1].clone());
            c.bias.as_ref().unwrap().set(t[2].clone());
            c.forward(&t[0])
        },
        "ConvTranspose2d",
    );
}

fn sequential_cnn(dev: &Device) {
    let net = Sequential::new()
        .add(Conv2d::new(1, 4, 3, Conv2dOptions::new().padding(1), true, dev).unwrap())
        .add(BatchNorm::new_2d(4, dev).unwrap())
        .add(ReLU)
        .add(MaxPool2d(Pool2dOptions::new(2)))
        .add(Dropout::new(0.5).unwrap())
        .add(AdaptiveAvgPool2d([2, 2]))
        .add(Flatten)
        .add(Linear::new(16, 3, true, dev).unwrap());
    assert_eq!(
        names(&net),
        ["0.weight", "0.bias", "1.weight", "1.bias", "7.weight", "7.bias"]
    );
    let x = normal(&[5, 1, 8, 8], 7).to_device(dev).unwrap();
    let y = net.forward(&x).unwrap();
    assert_eq!(y.shape(), &[5, 3]);
    // Every parameter gets a gradient, on the device.
    let grads = y.square().unwrap().mean_all().unwrap().backward().unwrap();
    for (name, p) in net.named_parameters() {
        let g = grads
            .get(&p.value())
            .unwrap_or_else(|| panic!("{name}: no gradient"));
        assert_eq!(g.shape(), p.shape().as_slice(), "{name}");
        assert_eq!(g.device(), dev);
    }
    // Evaluation: dropout off and batch norm on running statistics, so it is deterministic.
    net.eval();
    let a = net.forward(&x).unwrap().to_vec().unwrap();
    let b = net.forward(&x).unwrap().to_vec().unwrap();
    assert_eq!(a, b);
    net.train();
    let c = net.forward(&x).unwrap().to_vec().unwrap();
    assert_ne!(a, c, "training mode should drop units");
}

/// `Sequential` runs Linear or Conv2d followed by ReLU, Sigmoid or Tanh as one fused op: the
/// outputs and every gradient must equal those of the layers run one by one.
fn sequential_fuses_activations(dev: &Device) {
    let conv = |c_in, c_out, groups| {
        let o = Conv2dOptions::new().padding(1).groups(groups);
        Conv2d::new(c_in, c_out, 3, o, true, dev).unwrap()
    };
    let net = Sequential::new()
        .add(conv(2, 4, 1))
        .add(ReLU)
        .add(conv(4, 6, 2)) // grouped: the bias is [groups, out / groups, 1] per batch
        .add(Tanh)
        .add(Flatten)
        .add(Linear::new(6 * 5 * 5, 7, true, dev).unwrap())
        .add(Sigmoid)
        .add(Linear::new(7, 3, false, dev).unwrap())
        .add(ReLU)
        .add(ReLU); // an activation after an activation: applied again, unfused
    let x = normal(&[3, 2, 5, 5], 21).to_device(dev).unwrap();
    let fused = net.forward(&x).unwrap();
    let loss = |y: &Tensor| y.square().unwrap().sum_all().unwrap();
    let fused_grads = loss(&fused).backward().unwrap();
    // The same layers one at a time, through `forward` only.
    let p: Vec<Tensor> = net.parameters().iter().map(|p| p.value()).collect();
    let o = |g| Conv2dOptions::new().padding(1).groups(g);
    let h = x.conv2d(&p[0], Some(&p[1]), &o(1)).unwrap().relu().unwrap();
    let h = h.conv2d(&p[2], Some(&p[3]), &o(2)).unwrap().tanh().unwrap();
    let h = h.reshape(&[3, 150]).unwrap();
    let h = h.matmul(&p[4].t().unwrap()).unwrap().add(&p[5]).unwrap();
    let h = h.sigmoid().unwrap().matmul(&p[6].t().unwrap()).unwrap();
    let plain = h.relu().unwrap().relu().unwrap();
    assert_close(
        &fused.to_vec().unwrap(),
        &plain.to_vec().unwrap(),
        1e-5,
        1e-4,
        "fused forward",
    );
    let plain_grads = loss(&plain).backward().unwrap();
    for (i, t) in p.iter().enumerate() {
        assert_close(
            &fused_grads.get(t).unwrap().to_vec().unwrap(),
            &plain_grads.get(t).unwrap().to_vec().unwrap(),
            1e-5,
            1e-4,
            &format!("gradient of parameter {i}"),
        );
    }
}

#[derive(Module)]
struct Mlp {
    body: Sequential,
    head: Linear,
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> ferrograd::Result<Tensor> {
        self.head.forward(&self.body.forward(x)?)
    }
}

fn user_struct_and_freezing(dev: &Device) {
    let net = Mlp {
        body: Sequential::new()
            .add(Linear::new(4, 8, true, dev).unwrap())
            .add(Tanh),
        head: Linear::new(8, 2, false, dev).unwrap(),
    };
    assert_eq!(names(&net), ["body.0.weight", "body.0.bias", "head.weight"]);
    // Freeze the body: only the head is trained (transfer learning).
    for p in net.body.parameters() {
        p.set_trainable(false);
    }
    let x = normal(&[3, 4], 8).to_device(dev).unwrap();
    let grads = net
        .forward(&x)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let params = net.named_parameters();
    assert!(grads.get(&params[0].1.value()).is_none());
    assert!(grads.get(&params[1].1.value()).is_none());
    assert!(grads.get(&params[2].1.value()).is_some());
    assert!(!params[0].1.is_trainable() && params[2].1.is_trainable());
    // A clone of a Parameter is the same parameter: setting through it is seen by the module.
    let head = params[2].1.clone();
    assert!(head.same(&net.head.weight));
    head.set(Tensor::zeros(&[2, 8], dev).unwrap());
    assert_eq!(net.forward(&x).unwrap().to_vec().unwrap(), vec![0.0; 6]);
}

fn batch_norm_layer(dev: &Device) {
    let bn = BatchNorm::new_2d(3, dev).unwrap();
    let x = uniform(&[4, 3, 2, 2], -1.0, 3.0, 9).to_device(dev).unwrap();
    bn.forward(&x).unwrap();
    // one training step: running mean = 0.1 * batch mean
    let batch_mean = x
        .mean(0, false)
        .unwrap()
        .mean(-1, false)
        .unwrap()
        .mean(-1, false)
        .unwrap();
    let rm = bn.running_stats().mean.to_vec().unwrap();
    let expected: Vec<f32> = batch_mean
        .to_vec()
        .unwrap()
        .iter()
        .map(|m| 0.1 * m)
        .collect();
    assert_close(&rm, &expected, 1e-5, 1e-4, "running mean");
    bn.eval();
    let y = bn.forward(&x).unwrap();
    let s = bn.running_stats();
    let e = x
        .sub(&s.mean.reshape(&[1, 3, 1, 1]).unwrap())
        .unwrap()
        .div(
            &s.var
                .add_scalar(1e-5)
                .unwrap()
                .sqrt()
                .unwrap()
                .reshape(&[1, 3, 1, 1])
                .unwrap(),
        )
        .unwrap();
    assert_close(
        &y.to_vec().unwrap(),
        &e.to_vec().unwrap(),
        1e-5,
        1e-4,
        "eval",
    );
    let err = bn
        .forward(&Tensor::ones(&[4, 3], dev).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("BatchNorm2d") && err.contains("[4, 3]"),
        "{err}"
    );
    let bn1 = BatchNorm::new_1d(3, dev).unwrap();
    assert_eq!(
        bn1.forward(&normal(&[5, 3], 10).to_device(dev).unwrap())
            .unwrap()
            .shape(),
        &[5, 3]
    );
}

fn layer_norm_and_embedding(dev: &Device) {
    let ln = LayerNorm::new(&[6], dev).unwrap();
    assert_eq!(names(&ln), ["weight", "bias"]);
    let x = normal(&[2, 6], 11);
    let w = normal(&[6], 12);
    check_grad(
        dev,
        &[&x, &w],
        |t| {
            let l = LayerNorm::new(&[6], t[0].device())?;
            l.weight.set(t[1].clone());
            l.forward(&t[0])
        },
        "LayerNorm",
    );
    let emb = Embedding::new(5, 3, dev).unwrap();
    let idx = Tensor::from_vec(vec![4, 0, 4, 2], &[2, 2], dev).unwrap();
    let y = emb.forward(&idx).unwrap();
    assert_eq!(y.shape(), &[2, 2, 3]);
    let table = emb.weight.value().to_vec().unwrap();
    assert_eq!(y.to_vec().unwrap()[..3], table[12..15]);
    let table = normal(&[5, 3], 13);
    check_grad(
        dev,
        &[&table],
        |t| {
            let e = Embedding::new(5, 3, t[0].device())?;
            e.weight.set(t[0].clone());
            e.forward(&Tensor::from_vec(vec![4, 0, 4], &[3], t[0].device())?)
        },
        "Embedding (repeated index adds up)",
    );
    // Out of range is an error (on the GPU, when the output is read back).
    let emb = Embedding::new(5, 3, dev).unwrap();
    let err = emb
        .forward(&Tensor::from_vec(vec![5], &[1], dev).unwrap())
        .and_then(|t| t.to_vec());
    assert!(err
        .unwrap_err()
        .to_string()
        .contains("index 5 is out of range"));
}

/// Initializers: bounds, standard deviations against the formulas (20k samples, 5 %), fans.
#[test]
fn initializers() {
    let dev = Device::cpu();
    let mut g = Generator::new(1);
    let std = |t: &Tensor| {
        let v = t.to_vec().unwrap();
        let m = v.iter().sum::<f32>() / v.len() as f32;
        (v.iter().map(|x| (x - m).powi(2)).sum::<f32>() / v.len() as f32).sqrt()
    };
    assert_eq!(init::fans("t", &[8, 4, 3, 3]).unwrap(), (36, 72));
    assert!(init::fans("t", &[8]).is_err());
    assert!((init::gain(Nonlinearity::Relu) - 2f32.sqrt()).abs() < 1e-6);
    assert!((init::gain(Nonlinearity::LeakyRelu(0.0)) - 2f32.sqrt()).abs() < 1e-6);

    let s = [200, 100];
    let kn = init::kaiming_normal(&s, FanMode::FanIn, Nonlinearity::Relu, &mut g, &dev).unwrap();
    let target = (2.0f32 / 100.0).sqrt();
    assert!(
        (std(&kn) / target - 1.0).abs() < 0.05,
        "kaiming_normal std {}",
        std(&kn)
    );
    let ko = init::kaiming_normal(&s, FanMode::FanOut, Nonlinearity::Tanh, &mut g, &dev).unwrap();
    let target = 5.0 / 3.0 / 200f32.sqrt();
    assert!(
        (std(&ko) / target - 1.0).abs() < 0.05,
        "fan_out std {}",
        std(&ko)
    );
    let ku = init::kaiming_uniform(&s, FanMode::FanIn, Nonlinearity::Linear, &mut g, &dev).unwrap();
    let b = (3.0f32 / 100.0).sqrt();
    assert!(ku.to_vec().unwrap().iter().all(|v| v.abs() <= b));
    assert!((std(&ku) / (b / 3f32.sqrt()) - 1.0).abs() < 0.05);
    let xu = init::xavier_uniform(&s, 1.0, &mut g, &dev).unwrap();
    let a = (6.0f32 / 300.0).sqrt();
    assert!(xu.to_vec().unwrap().iter().all(|v| v.abs() <= a));
    let xn = init::xavier_normal(&s, 2.0, &mut g, &dev).unwrap();
    assert!((std(&xn) / (2.0 * (2.0f32 / 300.0).sqrt()) - 1.0).abs() < 0.05);
    assert_eq!(
        init::constant(&[3], 0.5, &dev).unwrap().to_vec().unwrap(),
        vec![0.5; 3]
    );
    // Seeded: the same generator state gives the same weights on every device.
    let cpu = init::xavier_uniform(&[4, 4], 1.0, &mut Generator::new(5), &dev).unwrap();
    if let Some(gpu) = common::gpu() {
        let w = init::xavier_uniform(&[4, 4], 1.0, &mut Generator::new(5), &gpu).unwrap();
        assert_eq!(w.to_vec().unwrap(), cpu.to_vec().unwrap());
    }
}

/// Truncated normal (bounds, moments against the closed forms, a far tail), orthogonal
/// (orthonormal rows or columns, gain, conv shapes), and the in-place forms on parameters:
/// the same draw on both devices, dtype and freezing kept.
#[test]
fn trunc_normal_orthogonal_in_place() {
    let cpu = Device::cpu();
    let mut g = Generator::new(7);
    let stats = |t: &Tensor| {
        let v = t.to_vec().unwrap();
        let m = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|&x| (f64::from(x) - m).powi(2)).sum::<f64>() / v.len() as f64;
        (v, m, var.sqrt())
    };
    // ±2 std: the truncated std is 0.8796 std (1 - 2·2φ(2) / (2Φ(2) - 1) = 0.7737 of the variance).
    let t = init::trunc_normal(&[20_000], 0.0, 0.02, -0.04, 0.04, &mut g, &cpu).unwrap();
    let (v, m, sd) = stats(&t);
    assert!(v.iter().all(|x| x.abs() <= 0.04));
    assert!(
        m.abs() < 5e-4 && (sd / (0.8796 * 0.02) - 1.0).abs() < 0.02,
        "{m} {sd}"
    );
    // [3, 4] of N(0, 1), a tail of mass 0.0013: mean (φ(3) - φ(4)) / (Φ(4) - Φ(3)) = 3.2606.
    let t = init::trunc_normal(&[20_000], 0.0, 1.0, 3.0, 4.0, &mut g, &cpu).unwrap();
    let (v, m, _) = stats(&t);
    assert!(v.iter().all(|&x| (3.0..=4.0).contains(&x)));
    assert!((m / 3.2606 - 1.0).abs() < 0.005, "tail mean {m}");
    let err = |r: ferrograd::Result<Tensor>| r.unwrap_err().to_string();
    let m = err(init::trunc_normal(&[2], 0.0, 1.0, 1.0, -1.0, &mut g, &cpu));
    assert!(
        m.contains("trunc_normal: needs finite mean, std > 0 and bounds a < b"),
        "{m}"
    );
    let m = err(init::trunc_normal(&[2], 0.0, 1.0, 40.0, 41.0, &mut g, &cpu));
    assert!(m.contains("[40, 41] holds none of N(0, 1²)"), "{m}");

    // Q^T Q = gain² I for the tall shapes, Q Q^T for the wide ones (conv: [out, in·kh·kw]).
    for (shape, gain) in [
        (&[5, 3][..], 1.0),
        (&[3, 5][..], 2.0),
        (&[4, 2, 3, 3][..], 0.5),
    ] {
        let q = init::orthogonal(shape, gain, &mut g, &cpu).unwrap();
        assert_eq!(q.shape(), shape);
        let q2 = q.reshape(&[shape[0], q.numel() / shape[0]]).unwrap();
        let (r, c) = (q2.shape()[0], q2.shape()[1]);
        let gram = match r >= c {
            true => q2.transpose(0, 1).unwrap().matmul(&q2).unwrap(),
            false => q2.matmul(&q2.transpose(0, 1).unwrap()).unwrap(),
        };
        let k = r.min(c);
        let eye: Vec<f32> = (0..k * k)
            .map(|i| if i % (k + 1) == 0 { gain * gain } else { 0.0 })
            .collect();
        assert_close(
            &gram.to_vec().unwrap(),
            &eye,
            1e-5,
            1e-5,
            &format!("orthogonal {shape:?}"),
        );
    }
    assert!(init::orthogonal(&[4], 1.0, &mut g, &cpu).is_err());

    // One seed, one draw, on every device; in place keeps dtype and freezing.
    for dev in common::devices() {
        let a = init::trunc_normal(&[3, 7], 1.0, 2.0, -1.0, 2.5, &mut Generator::new(9), &cpu);
        let b = init::trunc_normal(&[3, 7], 1.0, 2.0, -1.0, 2.5, &mut Generator::new(9), &dev);
        assert_eq!(a.unwrap().to_vec().unwrap(), b.unwrap().to_vec().unwrap());
        let a = init::orthogonal(&[6, 4], 1.0, &mut Generator::new(9), &cpu).unwrap();
        let b = init::orthogonal(&[6, 4], 1.0, &mut Generator::new(9), &dev).unwrap();
        assert_eq!(a.to_vec().unwrap(), b.to_vec().unwrap());

        let half = Tensor::zeros(&[8, 8], &dev).unwrap();
        let p = ferrograd::nn::Parameter::new(half.to_dtype(ferrograd::DType::F16).unwrap());
        init::orthogonal_(&p, 1.0).unwrap();
        assert_eq!(p.value().dtype(), ferrograd::DType::F16);
        assert_eq!(p.value().device(), &dev);
        assert!(p.value().is_leaf() && p.value().tracks_grad());
        p.set_trainable(false);
        init::trunc_normal_(&p, 0.0, 1.0, -2.0, 2.0).unwrap();
        assert!(!p.value().tracks_grad(), "a frozen parameter stays frozen");
        let v = p.value().to_vec().unwrap();
        assert!(v.iter().all(|x| x.abs() <= 2.0) && v.iter().any(|&x| x != 0.0));
        init::ones_(&p).unwrap();
        assert_eq!(p.value().to_vec().unwrap(), vec![1.0; 64]);
        init::zeros_(&p).unwrap();
        assert_eq!(p.value().to_vec().unwrap(), vec![0.0; 64]);
        init::kaiming_uniform_(&p, FanMode::FanIn, Nonlinearity::Relu).unwrap();
        assert!(p.value().to_vec().unwrap().iter().all(|x| x.abs() <= 0.867)); // √2 · √(3 / 8)
    }
}

device_tests!(
    linear,
    conv_layer,
    conv_transpose_layer,
    sequential_cnn,
    sequential_fuses_activations,
    user_struct_and_freezing,
    batch_norm_layer,
    layer_norm_and_embedding,
);
