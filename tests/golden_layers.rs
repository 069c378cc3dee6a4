//! Layers and recurrent networks against PyTorch's outputs for the same weights and inputs
//! (tests/data/make_torch_goldens.py), on both devices; gradcheck of the recurrent layers'
//! parameters through time; their errors.

mod common;

use common::{assert_golden, check_grad, golden, normal};
use ferrograd::nn::*;
use ferrograd::{
    Conv1dOptions, Conv2dOptions, Device, PadMode, Pool1dOptions, Pool2dOptions, Tensor,
    UpsampleMode,
};

/// Sets each parameter `n` of `m` to the golden `{prefix}.{n}`.
fn load_golden(m: &dyn Module, prefix: &str, dev: &Device) {
    for (n, p) in m.named_parameters() {
        p.set(golden(&format!("{prefix}.{n}"), dev));
    }
}

fn layers_match_pytorch(dev: &Device) {
    let img = golden("layer.img", dev);
    let conv = Conv2d::new(
        3,
        4,
        3,
        Conv2dOptions::new().stride(2).padding(1),
        true,
        dev,
    )
    .unwrap();
    load_golden(&conv, "layer.conv", dev);
    assert_golden(&conv.forward(&img).unwrap(), "layer.conv.out", 1e-5, 1e-4);
    let pool = MaxPool2d(Pool2dOptions::new(2));
    assert_golden(&pool.forward(&img).unwrap(), "layer.maxpool.out", 0.0, 0.0);
    let avg = AvgPool2d(Pool2dOptions::new(3).stride(2).padding(1));
    assert_golden(&avg.forward(&img).unwrap(), "layer.avgpool.out", 1e-6, 1e-5);
    let ada = AdaptiveAvgPool2d([3, 4]);
    assert_golden(
        &ada.forward(&img).unwrap(),
        "layer.adaptive.out",
        1e-6,
        1e-5,
    );

    let bn = BatchNorm2d::new_2d(3, dev).unwrap();
    assert_golden(&bn.forward(&img).unwrap(), "layer.bn.out", 1e-5, 1e-4);
    let stats = bn.running_stats();
    assert_golden(&stats.mean, "layer.bn.running_mean", 1e-6, 1e-5);
    assert_golden(&stats.var, "layer.bn.running_var", 1e-6, 1e-5);
    let buffers: Vec<(String, Parameter)> = bn.named_buffers();
    assert_eq!(buffers[2].0, "num_batches_tracked");
    assert_eq!(buffers[2].1.value().to_scalar().unwrap(), 1.0);

    let vec = golden("layer.vec", dev);
    let lin = Linear::new(6, 4, true, dev).unwrap();
    load_golden(&lin, "layer.linear", dev);
    assert_golden(&lin.forward(&vec).unwrap(), "layer.linear.out", 1e-5, 1e-4);
    let ln = LayerNorm::new(&[6], dev).unwrap();
    load_golden(&ln, "layer.ln", dev);
    assert_golden(&ln.forward(&vec).unwrap(), "layer.ln.out", 1e-5, 1e-4);
    assert_golden(
        &GELUTanh.forward(&vec).unwrap(),
        "layer.gelu_tanh.out",
        1e-6,
        1e-5,
    );
    assert_golden(
        &LeakyReLU(0.1).forward(&vec).unwrap(),
        "layer.leaky.out",
        0.0,
        0.0,
    );
    assert_golden(
        &LogSoftmax(1).forward(&vec).unwrap(),
        "layer.log_softmax.out",
        1e-6,
        1e-5,
    );
    let emb = Embedding::new(7, 3, dev).unwrap();
    load_golden(&emb, "layer.emb", dev);
    let idx = Tensor::from_vec(vec![0, 6, 2, 2, 2, 5], &[2, 3], dev).unwrap();
    assert_golden(&emb.forward(&idx).unwrap(), "layer.emb.out", 0.0, 0.0);
}

fn recurrent_match_pytorch(dev: &Device) {
    let x = golden("rnn.x", dev);
    let (h0, c0) = (golden("rnn.h0", dev), golden("rnn.c0", dev));
    let (tol_a, tol_r) = (1e-5, 1e-4);

    let rnn = Rnn::new(3, 4, 1, dev).unwrap();
    load_golden(&rnn, "rnn", dev);
    let (out, hn) = rnn.forward_with(&x, Some(&h0)).unwrap();
    assert_golden(&out, "rnn.out", tol_a, tol_r);
    assert_golden(&hn, "rnn.hn", tol_a, tol_r);

    let lstm = Lstm::new(3, 4, 1, dev).unwrap();
    load_golden(&lstm, "lstm", dev);
    let (out, (hn, cn)) = lstm.forward_with(&x, Some((&h0, &c0))).unwrap();
    assert_golden(&out, "lstm.out", tol_a, tol_r);
    assert_golden(&hn, "lstm.hn", tol_a, tol_r);
    assert_golden(&cn, "lstm.cn", tol_a, tol_r);

    let gru = Gru::new(3, 4, 1, dev).unwrap();
    load_golden(&gru, "gru", dev);
    let (out, hn) = gru.forward_with(&x, Some(&h0)).unwrap();
    assert_golden(&out, "gru.out", tol_a, tol_r);
    assert_golden(&hn, "gru.hn", tol_a, tol_r);
    // The last output step is the final hidden state.
    let last = out.narrow(1, 4, 1).unwrap().squeeze(1).unwrap();
    assert_eq!(
        last.to_vec().unwrap(),
        hn.squeeze(0).unwrap().to_vec().unwrap()
    );
}

/// The cells agree with one step of their layer.
fn cells_match_layers(dev: &Device) {
    let x = golden("rnn.x", dev);
    let x0 = x.narrow(1, 0, 1).unwrap().squeeze(1).unwrap();
    let h0 = golden("rnn.h0", dev).squeeze(0).unwrap();
    let c0 = golden("rnn.c0", dev).squeeze(0).unwrap();
    let first = |out: &Tensor| {
        out.narrow(1, 0, 1)
            .unwrap()
            .squeeze(1)
            .unwrap()
            .to_vec()
            .unwrap()
    };

    let cell = LstmCell::new(3, 4, dev).unwrap();
    for (n, p) in cell.named_parameters() {
        p.set(golden(&format!("lstm.{n}_l0"), dev));
    }
    let (h1, _) = cell.step(&x0, &h0, &c0).unwrap();
    common::assert_close(
        &h1.to_vec().unwrap(),
        &first(&golden("lstm.out", dev)),
        1e-5,
        1e-4,
        "LstmCell",
    );

    let cell = GruCell::new(3, 4, dev).unwrap();
    for (n, p) in cell.named_parameters() {
        p.set(golden(&format!("gru.{n}_l0"), dev));
    }
    let h1 = cell.step(&x0, &h0).unwrap();
    common::assert_close(
        &h1.to_vec().unwrap(),
        &first(&golden("gru.out", dev)),
        1e-5,
        1e-4,
        "GruCell",
    );

    let cell = RnnCell::new(3, 4, dev).unwrap();
    for (n, p) in cell.named_parameters() {
        p.set(golden(&format!("rnn.{n}_l0"), dev));
    }
    let h1 = cell.step(&x0, &h0).unwrap();
    common::assert_close(
        &h1.to_vec().unwrap(),
        &first(&golden("rnn.out", dev)),
        1e-5,
        1e-4,
        "RnnCell",
    );
    // forward from a zero state
    assert_eq!(cell.forward(&x0).unwrap().shape(), &[2, 4]);
}

/// Gradients through time: every parameter of two-layer networks, and the input.
fn recurrent_gradcheck(dev: &Device) {
    let x = normal(&[2, 4, 3], 11);
    let weights = |m: &dyn Module| -> Vec<Tensor> {
        m.named_parameters()
            .into_iter()
            .map(|(_, p)| p.value().detach())
            .collect()
    };
    macro_rules! check {
        ($ty:ident, $name:expr, $out:expr) => {{
            let m = $ty::new(3, 3, 2, &Device::cpu()).unwrap();
            let mut inputs = vec![x.clone()];
            inputs.extend(weights(&m));
            let refs: Vec<&Tensor> = inputs.iter().collect();
            // A fresh network on the inputs' device, its parameters set to the inputs.
            let f = |t: &[Tensor]| {
                let m = $ty::new(3, 3, 2, t[0].device())?;
                for ((_, p), v) in m.named_parameters().iter().zip(&t[1..]) {
                    p.set(v.clone());
                }
                $out(&m, &t[0])
            };
            check_grad(dev, &refs, f, $name);
        }};
    }
    check!(Rnn, "rnn", |m: &Rnn, x: &Tensor| m
        .forward_with(x, None)
        .map(|r| r.0));
    check!(Gru, "gru", |m: &Gru, x: &Tensor| m
        .forward_with(x, None)
        .map(|r| r.1));
    check!(Lstm, "lstm", |m: &Lstm, x: &Tensor| {
        let (out, (_, c)) = m.forward_with(x, None)?;
        out.sum_all()?.add(&c.sum_all()?)
    });
}

/// Conv1d (strided; dilated and grouped), 1-D pooling with gradients, and upsampling
/// (nearest and bilinear, by size and by scale, up and down) with weighted gradients, against
/// PyTorch's; gradcheck of each.
fn layers_1d_and_upsample(dev: &Device) {
    let seq = golden("l1d.seq", dev);
    let opts = Conv1dOptions {
        stride: 2,
        padding: 1,
        ..Default::default()
    };
    let conv = Conv1d::new(4, 6, 3, opts, true, dev).unwrap();
    load_golden(&conv, "l1d.conv", dev);
    assert_golden(&conv.forward(&seq).unwrap(), "l1d.conv.out", 1e-5, 1e-4);
    assert_eq!(
        conv.describe(),
        "Conv1d(4, 6, kernel_size=3, stride=2, padding=1, dilation=1, groups=1, bias=true)"
    );
    let opts = Conv1dOptions {
        padding: 2,
        dilation: 2,
        groups: 2,
        ..Default::default()
    };
    let grouped = Conv1d::new(4, 6, 3, opts, false, dev).unwrap();
    load_golden(&grouped, "l1d.conv_g", dev);
    assert_golden(
        &grouped.forward(&seq).unwrap(),
        "l1d.conv_g.out",
        1e-5,
        1e-4,
    );
    type Layer = Box<dyn Module>;
    let pools: [(&str, Layer); 2] = [
        (
            "maxpool",
            Box::new(MaxPool1d(Pool1dOptions::new(3).stride(2).padding(1))),
        ),
        (
            "avgpool",
            Box::new(AvgPool1d(Pool1dOptions::new(4).stride(2).padding(2))),
        ),
    ];
    for (name, layer) in &pools {
        let x = seq.requires_grad();
        let y = layer.forward(&x).unwrap();
        assert_golden(&y, &format!("l1d.{name}"), 1e-6, 1e-5);
        let g = y.sum_all().unwrap().backward().unwrap();
        assert_golden(g.get(&x).unwrap(), &format!("l1d.{name}.grad"), 1e-6, 1e-5);
    }
    let (img, w) = (golden("up.img", dev), golden("up.w", dev));
    use UpsampleMode::{Bilinear, Nearest};
    let ups: [(&str, Upsample); 6] = [
        ("nearest_size", Upsample::size([5, 7], Nearest)),
        ("nearest_x2", Upsample::scale(2.0, Nearest)),
        ("nearest_x1.5", Upsample::scale(1.5, Nearest)),
        ("bilinear_size", Upsample::size([5, 7], Bilinear)),
        ("bilinear_x2", Upsample::scale(2.0, Bilinear)),
        ("bilinear_down", Upsample::size([2, 3], Bilinear)),
    ];
    for (name, up) in &ups {
        let x = img.requires_grad();
        let y = up.forward(&x).unwrap();
        assert_golden(&y, &format!("up.{name}"), 1e-6, 1e-5);
        let (h, wd) = (y.shape()[2], y.shape()[3]);
        let wy = w.narrow(2, 0, h).unwrap().narrow(3, 0, wd).unwrap();
        let g = y.mul(&wy).unwrap().sum_all().unwrap().backward().unwrap();
        assert_golden(g.get(&x).unwrap(), &format!("up.{name}.grad"), 1e-5, 1e-5);
    }
    let x = normal(&[2, 2, 3, 4], 3);
    for (name, up) in &ups {
        check_grad(dev, &[&x], |t| up.forward(&t[0]), name);
    }
    let s = normal(&[2, 3, 7], 4);
    for (name, layer) in &pools {
        check_grad(dev, &[&s], |t| layer.forward(&t[0]), name);
    }
    let err = |r: ferrograd::Result<Tensor>| r.unwrap_err().to_string();
    let m = err(img.upsample([0, 3], Nearest));
    assert!(m.starts_with("upsample: the output size [0, 3]"), "{m}");
    let m = err(seq.upsample([2, 2], Nearest));
    assert!(m.contains("upsample: input must be 4-D"), "{m}");
    let m = err(img.upsample_scale([f32::NAN, 2.0], Bilinear));
    assert!(m.contains("scale factors must be finite and > 0"), "{m}");
    let m = err(img.max_pool1d(&Pool1dOptions::new(2)));
    assert!(m.starts_with("max_pool1d: input must be 3-D"), "{m}");
    let m = err(seq.avg_pool1d(&Pool1dOptions::new(2).padding(2)));
    assert!(m.starts_with("avg_pool1d:"), "{m}");
}

/// `pad` in each mode (values and weighted gradients) and the padding modes of Conv2d and
/// Conv1d, against PyTorch's; gradcheck; errors.
fn padding_modes(dev: &Device) {
    let img = golden("pad.img", dev);
    let cases: [(&str, &[usize], PadMode); 4] = [
        ("constant", &[1, 2, 2, 0], PadMode::Constant(0.5)),
        ("reflect", &[2, 1, 3, 1], PadMode::Reflect),
        ("replicate", &[2, 3, 1, 4], PadMode::Replicate),
        ("circular", &[5, 1, 2, 4], PadMode::Circular),
    ];
    for (name, pads, mode) in cases {
        let x = img.requires_grad();
        let y = x.pad(pads, mode).unwrap();
        assert_golden(&y, &format!("pad.{name}"), 0.0, 0.0);
        let w = golden(&format!("pad.{name}.w"), dev);
        let g = y.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
        assert_golden(g.get(&x).unwrap(), &format!("pad.{name}.grad"), 1e-6, 1e-5);
        let small = normal(&[2, 3, 4, 6], 5);
        check_grad(dev, &[&small], |t| t[0].pad(pads, mode), name);
    }
    let conv = Conv2d::new(2, 3, 3, Conv2dOptions::new().padding(1), true, dev)
        .unwrap()
        .padding_mode(PadMode::Reflect);
    load_golden(&conv, "pad.conv2d", dev);
    assert_golden(&conv.forward(&img).unwrap(), "pad.conv2d.out", 1e-5, 1e-4);
    assert!(conv
        .describe()
        .ends_with("bias=true, padding_mode=Reflect)"));
    let opts = Conv1dOptions {
        padding: 2,
        ..Default::default()
    };
    let conv = Conv1d::new(4, 6, 3, opts, true, dev)
        .unwrap()
        .padding_mode(PadMode::Circular);
    load_golden(&conv, "pad.conv1d", dev);
    let seq = golden("l1d.seq", dev);
    assert_golden(&conv.forward(&seq).unwrap(), "pad.conv1d.out", 1e-5, 1e-4);
    let err = |r: ferrograd::Result<Tensor>| r.unwrap_err().to_string();
    let m = err(img.pad(&[5, 0], PadMode::Reflect));
    assert!(
        m.contains("pad: Reflect padding (5, 0) does not fit axis 3 of length 5"),
        "{m}"
    );
    let m = err(img.pad(&[6, 0], PadMode::Circular));
    assert!(m.contains("does not fit axis 3"), "{m}");
    let m = err(img.pad(&[1, 1, 1], PadMode::Replicate));
    assert!(m.contains("pad: pads must be (before, after) pairs"), "{m}");
    // padding="same": the output keeps the input's size; strides and odd totals are refused.
    let opts = Conv2dOptions::new()
        .dilation(2)
        .padding_same([3, 5])
        .unwrap();
    let w = normal(&[3, 2, 3, 5], 7).to_device(dev).unwrap();
    assert_eq!(img.conv2d(&w, None, &opts).unwrap().shape(), &[2, 3, 4, 5]);
    let o1 = Conv1dOptions::default().padding_same(7).unwrap();
    assert_eq!(o1.padding, 3);
    let m = Conv2dOptions::new()
        .stride(2)
        .padding_same([3, 3])
        .unwrap_err()
        .to_string();
    assert!(
        m.contains("padding_same: \"same\" padding needs stride 1, found [2, 2]"),
        "{m}"
    );
    let m = Conv2dOptions::new()
        .padding_same([3, 4])
        .unwrap_err()
        .to_string();
    assert!(m.contains("needs 3 padding along axis 1"), "{m}");
    let empty = Tensor::zeros(&[2, 0], dev).unwrap();
    assert!(empty.pad(&[1, 1], PadMode::Replicate).is_err());
    let z = empty.pad(&[1, 2], PadMode::Constant(3.0)).unwrap();
    assert_eq!(z.to_vec().unwrap(), vec![3.0; 6]);
}

/// `ceil_mode`, `count_include_pad=false` and adaptive max pooling (2-D and 1-D), values and
/// weighted gradients against PyTorch's; gradcheck.
fn pooling_options(dev: &Device) {
    let x = golden("popt.x", dev);
    let seq = |t: &Tensor| t.reshape(&[2, 2, 42]);
    let o = Pool2dOptions::new(3).stride(2).padding(1).ceil_mode(true);
    let avg_nopad = Pool2dOptions {
        kernel: [3, 2],
        stride: [2, 1],
        padding: [1, 1],
        dilation: [1, 1],
        ceil_mode: false,
        count_include_pad: false,
    };
    let dil = Pool2dOptions::new(3).stride(1).padding(1).dilation(2);
    let dil = Pool2dOptions {
        stride: [2, 1],
        ..dil
    };
    let dil_ceil = Pool2dOptions {
        kernel: [2, 3],
        stride: [2, 2],
        padding: [1, 0],
        ..Pool2dOptions::new(1).dilation(2).ceil_mode(true)
    };
    let p1 = Pool1dOptions::new(4).stride(3).padding(2);
    type Pool = Box<dyn Fn(&Tensor) -> ferrograd::Result<Tensor>>;
    let cases: [(&str, Pool); 12] = [
        ("max_dil", Box::new(move |t| t.max_pool2d(&dil))),
        ("max_dil_ceil", Box::new(move |t| t.max_pool2d(&dil_ceil))),
        (
            "max1d_dil",
            Box::new(move |t| {
                seq(t)?.max_pool1d(&Pool1dOptions::new(3).stride(2).padding(1).dilation(3))
            }),
        ),
        ("max_ceil", Box::new(move |t| t.max_pool2d(&o))),
        ("avg_ceil", Box::new(move |t| t.avg_pool2d(&o))),
        (
            "avg_ceil_nopad",
            Box::new(move |t| t.avg_pool2d(&o.count_include_pad(false))),
        ),
        ("avg_nopad", Box::new(move |t| t.avg_pool2d(&avg_nopad))),
        (
            "avg_ceil_nopadding",
            Box::new(|t| t.avg_pool2d(&Pool2dOptions::new(2).ceil_mode(true))),
        ),
        ("adaptive_max", Box::new(|t| t.adaptive_max_pool2d([3, 4]))),
        (
            "adaptive_max_up",
            Box::new(|t| AdaptiveMaxPool2d([9, 8]).forward(t)),
        ),
        (
            "max1d_ceil",
            Box::new(move |t| seq(t)?.max_pool1d(&p1.ceil_mode(true))),
        ),
        (
            "avg1d_nopad",
            Box::new(move |t| seq(t)?.avg_pool1d(&p1.count_include_pad(false))),
        ),
    ];
    for (name, f) in &cases {
        let xv = x.requires_grad();
        let y = f(&xv).unwrap();
        assert_golden(&y, &format!("popt.{name}"), 1e-6, 1e-5);
        let w = golden(&format!("popt.{name}.w"), dev);
        let g = y.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
        assert_golden(
            g.get(&xv).unwrap(),
            &format!("popt.{name}.grad"),
            1e-6,
            1e-5,
        );
    }
    let small = normal(&[2, 2, 7, 6], 9);
    for (name, f) in &cases {
        if !name.starts_with("max") && !name.starts_with("adaptive_max") {
            check_grad(dev, &[&small], |t| f(&t[0]), name);
        }
    }
    assert_eq!(
        AvgPool2d(o.count_include_pad(false)).describe(),
        "AvgPool2d(kernel_size=[3, 3], stride=[2, 2], padding=[1, 1], ceil_mode=true, count_include_pad=false)"
    );
}

/// Two bidirectional layers, `batch_first = false`, with and without sequence lengths, for
/// LSTM, GRU and RNN: outputs, final states and the input's gradient against PyTorch's
/// (packed sequences padded back with zeros); dropout between layers; errors.
fn recurrent_options(dev: &Device) {
    let x = golden("rnnopt.x", dev); // [time 5, batch 3, features 4]
    let lengths = [5, 2, 4];
    let opts = RnnOptions {
        num_layers: 2,
        bidirectional: true,
        ..Default::default()
    };
    for name in ["lstm", "gru", "rnn"] {
        let prefix = format!("rnnopt.{name}");
        let w = golden(&format!("{prefix}.w"), dev);
        for packed in [false, true] {
            let tag = format!("{prefix}{}", if packed { ".packed" } else { "" });
            let xv = x.requires_grad();
            let lens = packed.then_some(&lengths[..]);
            let (out, h, c) = match name {
                "lstm" => {
                    let m = Lstm::with_options(4, 3, opts, dev).unwrap();
                    load_golden(&m, &prefix, dev);
                    let (o, (h, c)) = match lens {
                        Some(l) => m.forward_with_lengths(&xv, l, None),
                        None => m.forward_with(&xv, None),
                    }
                    .unwrap();
                    (o, h, Some(c))
                }
                "gru" => {
                    let m = Gru::with_options(4, 3, opts, dev).unwrap();
                    load_golden(&m, &prefix, dev);
                    let (o, h) = match lens {
                        Some(l) => m.forward_with_lengths(&xv, l, None),
                        None => m.forward_with(&xv, None),
                    }
                    .unwrap();
                    (o, h, None)
                }
                _ => {
                    let m = Rnn::with_options(4, 3, opts, dev).unwrap();
                    load_golden(&m, &prefix, dev);
                    let (o, h) = match lens {
                        Some(l) => m.forward_with_lengths(&xv, l, None),
                        None => m.forward_with(&xv, None),
                    }
                    .unwrap();
                    (o, h, None)
                }
            };
            assert_golden(&out, &format!("{tag}.out"), 1e-5, 1e-4);
            assert_golden(&h, &format!("{tag}.h"), 1e-5, 1e-4);
            if let Some(c) = c {
                assert_golden(&c, &format!("{tag}.c"), 1e-5, 1e-4);
            }
            let g = out.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
            assert_golden(g.get(&xv).unwrap(), &format!("{tag}.grad"), 1e-5, 1e-4);
        }
    }
    // Dropout between the layers: in training only, and never after the last layer.
    let drop = RnnOptions {
        num_layers: 2,
        dropout: 0.5,
        batch_first: true,
        ..Default::default()
    };
    let gru = Gru::with_options(4, 3, drop, dev).unwrap();
    let xb = x.transpose(0, 1).unwrap();
    let a = gru.forward(&xb).unwrap().to_vec().unwrap();
    let b = gru.forward(&xb).unwrap().to_vec().unwrap();
    assert_ne!(a, b, "training: two draws of the dropout mask");
    gru.eval();
    let a = gru.forward(&xb).unwrap().to_vec().unwrap();
    assert_eq!(a, gru.forward(&xb).unwrap().to_vec().unwrap());
    assert_eq!(
        gru.describe(),
        "GRU(4, 3, num_layers=2, dropout=0.5, batch_first=true)"
    );
    let m = Lstm::with_options(4, 3, opts, dev).unwrap();
    let err = |r: ferrograd::Result<Tensor>| r.unwrap_err().to_string();
    let e = err(m.forward_with_lengths(&x, &[5, 0, 4], None).map(|r| r.0));
    assert!(
        e.contains("LSTM: lengths must give each of the 3 sequences a length in 1..=5"),
        "{e}"
    );
    let bad = RnnOptions {
        dropout: 1.0,
        ..Default::default()
    };
    let e = Rnn::with_options(4, 3, bad, dev).unwrap_err().to_string();
    assert!(e.contains("dropout must be in [0, 1), found 1"), "{e}");
}

device_tests!(
    layers_match_pytorch,
    recurrent_options,
    pooling_options,
    padding_modes,
    layers_1d_and_upsample,
    recurrent_match_pytorch,
    cells_match_layers,
    recurrent_gradcheck
);

#[test]
fn recurrent_errors() {
    let dev = Device::cpu();
    let lstm = Lstm::new(3, 4, 2, &dev).unwrap();
    let names: Vec<String> = lstm
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names[..4],
        ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    );
    assert_eq!(names[4], "weight_ih_l1");
    assert_eq!(lstm.named_parameters()[0].1.shape(), [16, 3]);
    let e = lstm
        .forward(&Tensor::zeros(&[2, 5, 4], &dev).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("LSTM: expects an input [batch, time, 3], found [2, 5, 4]"),
        "{e}"
    );
    let x = Tensor::zeros(&[2, 5, 3], &dev).unwrap();
    let h = Tensor::zeros(&[1, 2, 4], &dev).unwrap();
    let e = lstm
        .forward_with(&x, Some((&h, &h)))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("LSTM: shapes [2, 2, 4] and [1, 2, 4] differ: the initial hidden state"),
        "{e}"
    );
    let e = Gru::new(3, 0, 1, &dev).err().unwrap().to_string();
    assert!(e.contains("hidden size 0 must be at least 1"), "{e}");
    let e = Rnn::new(3, 4, 0, &dev).err().unwrap().to_string();
    assert!(e.contains("num_layers must be at least 1"), "{e}");
}
