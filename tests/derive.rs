//! `#[derive(Module)]` on both devices: a model with a nested `Sequential`, a `Vec` of blocks
//! holding batch norm, dropout and an optional head loads PyTorch's state dict of the same
//! architecture by name (tests/data/make_torch_derived.py) and reproduces its output; it
//! trains, saves and loads; `eval()` reaches every dropout and batch norm; the attributes
//! skip, rename and mark buffers; a generic wrapper derives; models print as trees.

mod common;

use common::assert_close;
use ferrograd::nn::{
    self, loss, BatchNorm2d, Conv2d, Dropout, Linear, MaxPool2d, Module, Parameter, ReLU,
    Sequential,
};
use ferrograd::optim::{Adam, AdamConfig, Optimizer};
use ferrograd::{Conv2dOptions, Device, Pool2dOptions, Tensor};
use std::path::PathBuf;

/// PyTorch's `Block`: `relu(bn(conv(x))) + x`.
#[derive(Debug, Module)]
struct Block {
    conv: Conv2d,
    bn: BatchNorm2d,
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> ferrograd::Result<Tensor> {
        self.bn.forward(&self.conv.forward(x)?)?.relu()?.add(x)
    }
}

/// PyTorch's `Net` in tests/data/make_torch_derived.py.
#[derive(Debug, Module)]
struct Net {
    stem: Sequential,
    blocks: Vec<Block>,
    pool: MaxPool2d,
    drop: Dropout,
    head: Option<Linear>,
    #[module(skip)]
    label: &'static str,
}

impl Module for Net {
    fn forward(&self, x: &Tensor) -> ferrograd::Result<Tensor> {
        let mut x = self.stem.forward(x)?;
        for b in &self.blocks {
            x = b.forward(&x)?;
        }
        let x = self
            .drop
            .forward(&nn::Flatten.forward(&self.pool.forward(&x)?)?)?;
        match &self.head {
            Some(h) => h.forward(&x),
            None => Ok(x),
        }
    }
}

fn net(dev: &Device) -> Net {
    let pad = Conv2dOptions::new().padding(1);
    let block = || Block {
        conv: Conv2d::new(4, 4, 3, pad, false, dev).unwrap(),
        bn: BatchNorm2d::new_2d(4, dev).unwrap(),
    };
    Net {
        stem: Sequential::new()
            .add(Conv2d::new(1, 4, 3, pad, true, dev).unwrap())
            .add(ReLU),
        blocks: vec![block(), block()],
        pool: MaxPool2d(Pool2dOptions::new(2)),
        drop: Dropout::new(0.5).unwrap(),
        head: Some(Linear::new(64, 10, true, dev).unwrap()),
        label: "net",
    }
}

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn names(list: Vec<(String, Parameter)>) -> Vec<String> {
    list.into_iter().map(|(n, _)| n).collect()
}

fn pytorch_names_and_output(dev: &Device) {
    let model = net(dev);
    assert_eq!(model.label, "net");
    assert_eq!(
        names(model.named_parameters()),
        [
            "stem.0.weight",
            "stem.0.bias",
            "blocks.0.conv.weight",
            "blocks.0.bn.weight",
            "blocks.0.bn.bias",
            "blocks.1.conv.weight",
            "blocks.1.bn.weight",
            "blocks.1.bn.bias",
            "head.weight",
            "head.bias",
        ]
    );
    assert_eq!(
        names(model.named_buffers()),
        [
            "blocks.0.bn.running_mean",
            "blocks.0.bn.running_var",
            "blocks.0.bn.num_batches_tracked",
            "blocks.1.bn.running_mean",
            "blocks.1.bn.running_var",
            "blocks.1.bn.num_batches_tracked",
        ]
    );
    // `load` is strict: every name and shape of the PyTorch state dict must match.
    let file = data("torch_derived.safetensors");
    let theirs = nn::load_tensors(&file, dev).unwrap();
    let mut expected: Vec<String> = theirs.tensors.iter().map(|(n, _)| n.clone()).collect();
    let mut ours = names(model.named_state());
    expected.sort();
    ours.sort();
    assert_eq!(ours, expected);
    nn::load(&file, &model).unwrap();
    model.eval();
    let io = nn::load_tensors(data("torch_derived_io.safetensors"), dev).unwrap();
    let get = |n: &str| io.tensors.iter().find(|(k, _)| k == n).unwrap().1.clone();
    let out = model.forward(&get("input")).unwrap();
    assert_close(
        &out.to_vec().unwrap(),
        &get("output").to_vec().unwrap(),
        1e-5,
        1e-4,
        "PyTorch's output",
    );
}

fn train_save_load(dev: &Device) {
    ferrograd::manual_seed(3);
    let model = net(dev);
    let x = common::normal(&[8, 1, 8, 8], 5).to_device(dev).unwrap();
    let y = Tensor::from_vec((0..8).map(|i| i % 10).collect::<Vec<i32>>(), &[8], dev).unwrap();
    let cfg = AdamConfig {
        lr: 1e-2,
        ..AdamConfig::default()
    };
    let mut opt = Adam::new(model.parameters(), cfg).unwrap();
    let eval_loss = |m: &Net| {
        m.eval();
        let out = m.forward(&x).unwrap();
        m.train();
        loss::cross_entropy(&out, &y, loss::Reduction::Mean)
            .unwrap()
            .item()
            .unwrap()
    };
    let before = eval_loss(&model);
    for _ in 0..30 {
        let loss =
            loss::cross_entropy(&model.forward(&x).unwrap(), &y, loss::Reduction::Mean).unwrap();
        opt.step(&loss.backward().unwrap()).unwrap();
    }
    let after = eval_loss(&model);
    assert!(after < 0.5 * before, "training: loss {before} -> {after}");
    model.eval();
    let dir = std::env::temp_dir().join(format!("ferrograd-derive-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(if dev.is_gpu() { "gpu.st" } else { "cpu.st" });
    nn::save(&path, &model, "derive test").unwrap();
    let fresh = net(dev);
    nn::load(&path, &fresh).unwrap();
    fresh.eval();
    assert_eq!(
        fresh.forward(&x).unwrap().to_vec().unwrap(),
        model.forward(&x).unwrap().to_vec().unwrap()
    );
    // The file holds PyTorch's names, so `Net().load_state_dict(load_file(path))` takes it.
    let saved = nn::load_tensors(&path, dev).unwrap();
    assert_eq!(saved.tensors.len(), 16);
}

fn eval_reaches_every_layer(dev: &Device) {
    let model = net(dev);
    let x = common::normal(&[4, 1, 8, 8], 9).to_device(dev).unwrap();
    // Training: dropout draws a new mask each call.
    let a = model.forward(&x).unwrap().to_vec().unwrap();
    let b = model.forward(&x).unwrap().to_vec().unwrap();
    assert_ne!(a, b, "dropout is off in training mode");
    let batches = model.blocks[1].bn.named_buffers()[2].1.value();
    assert_eq!(batches.to_vec().unwrap(), [2.0], "batch norm did not count");
    model.eval();
    let c = model.forward(&x).unwrap().to_vec().unwrap();
    let d = model.forward(&x).unwrap().to_vec().unwrap();
    assert_eq!(c, d, "eval() left dropout on");
    assert_eq!(
        model.blocks[1].bn.named_buffers()[2]
            .1
            .value()
            .to_vec()
            .unwrap(),
        [2.0],
        "eval() left batch norm updating its statistics"
    );
    model.train();
    assert_ne!(model.forward(&x).unwrap().to_vec().unwrap(), c);
}

fn freeze_a_subtree(dev: &Device) {
    let model = net(dev);
    model.stem.freeze();
    model.blocks[0].freeze();
    let x = common::normal(&[2, 1, 8, 8], 1).to_device(dev).unwrap();
    let grads = model
        .forward(&x)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    for (name, p) in model.named_parameters() {
        let frozen = name.starts_with("stem.") || name.starts_with("blocks.0.");
        assert_eq!(p.is_trainable(), !frozen, "{name}");
        assert_eq!(grads.get(&p.value()).is_some(), !frozen, "{name}");
    }
    model.unfreeze();
    assert!(model.parameters().iter().all(Parameter::is_trainable));
}

device_tests!(
    pytorch_names_and_output,
    train_save_load,
    eval_reaches_every_layer,
    freeze_a_subtree,
);

/// `skip`, `rename` and `buffer`, arrays and boxes, and a tuple struct.
#[derive(Module)]
struct Attributes {
    #[module(rename = "fc")]
    linear: Linear,
    #[module(buffer)]
    scale: Parameter,
    #[module(skip)]
    #[allow(dead_code)]
    cache: Tensor,
    pair: [Linear; 2],
    boxed: Box<dyn Module + Send + Sync>,
    size: usize,
}

impl Module for Attributes {
    fn forward(&self, x: &Tensor) -> ferrograd::Result<Tensor> {
        self.boxed.forward(&self.linear.forward(x)?)
    }
}

#[derive(Module)]
struct Tuple(Linear, Option<Linear>);

impl Module for Tuple {
    fn forward(&self, x: &Tensor) -> ferrograd::Result<Tensor> {
        self.0.forward(x)
    }
}

/// A generic wrapper: its field types are bounds of the derived impls.
#[derive(Module)]
struct Residual<M> {
    inner: M,
}

impl<M: Module> Module for Residual<M> {
    fn forward(&self, x: &Tensor) -> ferrograd::Result<Tensor> {
        self.inner.forward(x)?.add(x)
    }
}

#[test]
fn attributes_and_shapes_of_structs() {
    let dev = Device::cpu();
    let lin = |i, o| Linear::new(i, o, false, &dev).unwrap();
    let m = Attributes {
        linear: lin(3, 3),
        scale: Parameter::buffer(Tensor::ones(&[3], &dev).unwrap()),
        cache: Tensor::zeros(&[1], &dev).unwrap(),
        pair: [lin(3, 2), lin(2, 3)],
        boxed: Box::new(Sequential::new().add(lin(3, 4))),
        size: 3,
    };
    assert_eq!(m.size, 3);
    assert_eq!(
        names(m.named_parameters()),
        [
            "fc.weight",
            "pair.0.weight",
            "pair.1.weight",
            "boxed.0.weight"
        ]
    );
    assert_eq!(names(m.named_buffers()), ["scale"]);
    assert_eq!(
        m.forward(&Tensor::ones(&[1, 3], &dev).unwrap())
            .unwrap()
            .shape(),
        &[1, 4]
    );

    let t = Tuple(lin(2, 2), None);
    assert_eq!(names(t.named_parameters()), ["0.weight"]);
    let t = Tuple(lin(2, 2), Some(lin(2, 5)));
    assert_eq!(names(t.named_parameters()), ["0.weight", "1.weight"]);

    let r = Residual { inner: lin(4, 4) };
    assert_eq!(names(r.named_parameters()), ["inner.weight"]);
    assert_eq!(r.num_parameters(), 16);
    assert!(r.forward(&Tensor::ones(&[2, 4], &dev).unwrap()).is_ok());
}

/// Tied weights: one layer reached through two fields is one parameter, listed (and counted,
/// and stepped) once under its first name, as PyTorch's `named_parameters` does.
#[derive(Module)]
struct Tied {
    encoder: std::sync::Arc<Linear>,
    decoder: std::sync::Arc<Linear>,
}

impl Module for Tied {
    fn forward(&self, x: &Tensor) -> ferrograd::Result<Tensor> {
        self.decoder.forward(&self.encoder.forward(x)?)
    }
}

#[test]
fn shared_parameters_are_listed_once() {
    let dev = Device::cpu();
    let layer = std::sync::Arc::new(Linear::new(3, 3, true, &dev).unwrap());
    let m = Tied {
        encoder: layer.clone(),
        decoder: layer,
    };
    assert_eq!(
        names(m.named_parameters()),
        ["encoder.weight", "encoder.bias"]
    );
    assert_eq!(m.num_parameters(), 12);
    assert!(m.to_string().starts_with("Tied (12 parameters)"), "{m}");
    // A checkpoint keeps every name, as PyTorch's state_dict does.
    assert_eq!(
        names(m.named_state()),
        [
            "encoder.weight",
            "encoder.bias",
            "decoder.weight",
            "decoder.bias"
        ]
    );
}

#[test]
fn prints_as_a_tree_and_debugs() {
    let model = net(&Device::cpu());
    let tree = model.to_string();
    let expected = "\
Net (994 parameters)
  stem: Sequential (40)
    stem.0: Conv2d(1, 4, kernel_size=[3, 3], stride=[1, 1], padding=[1, 1], dilation=[1, 1], groups=1, bias=true) (40)
    stem.1: ReLU
  blocks.0: Block (152)
    blocks.0.conv: Conv2d(4, 4, kernel_size=[3, 3], stride=[1, 1], padding=[1, 1], dilation=[1, 1], groups=1, bias=false) (144)
    blocks.0.bn: BatchNorm2d(4, eps=0.00001, momentum=0.1) (8)
  blocks.1: Block (152)
    blocks.1.conv: Conv2d(4, 4, kernel_size=[3, 3], stride=[1, 1], padding=[1, 1], dilation=[1, 1], groups=1, bias=false) (144)
    blocks.1.bn: BatchNorm2d(4, eps=0.00001, momentum=0.1) (8)
  pool: MaxPool2d(kernel_size=[2, 2], stride=[2, 2], padding=[0, 0])
  drop: Dropout(p=0.5)
  head: Linear(in_features=64, out_features=10, bias=true) (650)
";
    assert_eq!(tree, expected);
    assert_eq!(model.num_parameters(), 994);
    let debug = format!("{model:?}");
    assert!(
        debug.starts_with("Net { stem: Sequential { layers: [\"Conv2d("),
        "{debug}"
    );
    assert!(debug.contains("label: \"net\""), "{debug}");
}
