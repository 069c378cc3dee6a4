//! Gradients with respect to a model's input (saliency maps, adversarial examples), through
//! every layer type, on both devices: each layer in evaluation mode and frozen, its input's
//! gradient checked against finite differences on the CPU and against the CPU's on the GPU,
//! and no parameter gradient computed. (`Embedding` takes indices: it has no input gradient.)

mod common;

use std::sync::Mutex;

use common::{check_grad, normal};
use ferrograd::nn::{
    AdaptiveAvgPool2d, AvgPool2d, BatchNorm, Conv2d, ConvTranspose2d, Dropout, Flatten, Gru,
    LayerNorm, LeakyReLU, Linear, LogSoftmax, Lstm, MaxPool2d, Module, ReLU, Rnn, Sequential,
    Sigmoid, Softmax, Tanh, GELU,
};
use ferrograd::{manual_seed, Conv2dOptions, Device, Pool2dOptions, Result, Tensor};

/// Layers are built from the global generator: one at a time, so that each build draws the
/// same parameters on every device.
static BUILD: Mutex<()> = Mutex::new(());

type Build = fn(&Device) -> Result<Box<dyn Module>>;

/// Every layer type with an input of its shape.
fn layers() -> Vec<(&'static str, Build, Vec<usize>)> {
    let img = vec![2, 3, 6, 6];
    let seq = vec![2, 3, 4]; // [batch, time, features]
    fn boxed(m: impl Module + 'static) -> Result<Box<dyn Module>> {
        Ok(Box::new(m))
    }
    vec![
        ("Linear", |d| boxed(Linear::new(4, 3, true, d)?), vec![2, 4]),
        (
            "Conv2d",
            |d| {
                boxed(Conv2d::new(
                    3,
                    2,
                    3,
                    Conv2dOptions::new().padding(1),
                    true,
                    d,
                )?)
            },
            img.clone(),
        ),
        (
            "ConvTranspose2d",
            |d| {
                let o = Conv2dOptions::new().stride(2).padding(1);
                boxed(ConvTranspose2d::new(3, 2, 4, o, true, d)?)
            },
            img.clone(),
        ),
        (
            "BatchNorm2d",
            |d| {
                // Running statistics that are not the identity: one training-mode pass.
                let bn = BatchNorm::new_2d(3, d)?;
                bn.forward(&Tensor::full(&[2, 3, 2, 2], 2.0, d)?.add_scalar(0.5)?)?;
                boxed(bn)
            },
            img.clone(),
        ),
        (
            "BatchNorm1d",
            |d| boxed(BatchNorm::new_1d(4, d)?),
            vec![3, 4],
        ),
        (
            "LayerNorm",
            |d| boxed(LayerNorm::new(&[6], d)?),
            img.clone(),
        ),
        ("Dropout", |_| boxed(Dropout::new(0.5)?), img.clone()),
        (
            "MaxPool2d",
            |_| boxed(MaxPool2d(Pool2dOptions::new(2))),
            img.clone(),
        ),
        (
            "AvgPool2d",
            |_| boxed(AvgPool2d(Pool2dOptions::new(3).stride(2).padding(1))),
            img.clone(),
        ),
        (
            "AdaptiveAvgPool2d",
            |_| boxed(AdaptiveAvgPool2d([4, 3])),
            img.clone(),
        ),
        ("Flatten", |_| boxed(Flatten), img.clone()),
        ("ReLU", |_| boxed(ReLU), img.clone()),
        ("Sigmoid", |_| boxed(Sigmoid), img.clone()),
        ("Tanh", |_| boxed(Tanh), img.clone()),
        ("GELU", |_| boxed(GELU), img.clone()),
        ("LeakyReLU", |_| boxed(LeakyReLU(0.2)), img.clone()),
        ("Softmax", |_| boxed(Softmax(1)), img.clone()),
        ("LogSoftmax", |_| boxed(LogSoftmax(-1)), img.clone()),
        ("Rnn", |d| boxed(Rnn::new(4, 3, 2, d)?), seq.clone()),
        ("Lstm", |d| boxed(Lstm::new(4, 3, 1, d)?), seq.clone()),
        ("Gru", |d| boxed(Gru::new(4, 3, 1, d)?), seq.clone()),
        (
            "Sequential of conv, ReLU, pool, flatten, linear",
            |d| {
                boxed(
                    Sequential::new()
                        .add(Conv2d::new(3, 2, 3, Conv2dOptions::new(), true, d)?)
                        .add(ReLU)
                        .add(MaxPool2d(Pool2dOptions::new(2)))
                        .add(Flatten)
                        .add(Linear::new(8, 2, true, d)?),
                )
            },
            img,
        ),
    ]
}

/// The layer as the examples use it: built from seed 7, in evaluation mode, frozen.
fn frozen(build: Build, dev: &Device) -> Result<Box<dyn Module>> {
    let _turn = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    manual_seed(7);
    let m = build(dev)?;
    m.eval();
    m.freeze();
    Ok(m)
}

fn input_gradients(dev: &Device) {
    for (i, (name, build, shape)) in layers().into_iter().enumerate() {
        // Inputs away from ReLU's and max pooling's kinks come from the seed; a kink within
        // the finite-difference step would fail any layer.
        let x = normal(&shape, 40 + i as u64);
        check_grad(
            dev,
            &[&x],
            |t| frozen(build, t[0].device())?.forward(&t[0]),
            name,
        );
        // Only the input gets a gradient: a frozen model computes none for its parameters.
        let m = frozen(build, dev).unwrap();
        let x = x.to_device(dev).unwrap().requires_grad();
        let grads = m
            .forward(&x)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(grads.get(&x).is_some(), "{name}: no input gradient");
        for (p, param) in m.named_parameters() {
            assert!(
                grads.get(&param.value()).is_none(),
                "{name}: frozen parameter {p} got a gradient"
            );
        }
    }
}

device_tests!(input_gradients);
