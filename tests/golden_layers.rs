//! Layers and recurrent networks against PyTorch's outputs for the same weights and inputs
//! (tests/data/make_torch_goldens.py), on both devices; gradcheck of the recurrent layers'
//! parameters through time; their errors.

mod common;

use common::{assert_golden, check_grad, golden, load_golden, normal};
use ferrograd::nn::*;
use ferrograd::{Conv2dOptions, Device, Pool2dOptions, Tensor};

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
    // Bidirectional, with lengths: through the masks and the reversed walk.
    let opts = RnnOptions {
        bidirectional: true,
        batch_first: true,
        ..Default::default()
    };
    let lstm = Lstm::with_options(3, 2, opts, &Device::cpu()).unwrap();
    let mut inputs = vec![x.clone()];
    inputs.extend(weights(&lstm));
    let refs: Vec<&Tensor> = inputs.iter().collect();
    let f = |t: &[Tensor]| {
        let m = Lstm::with_options(3, 2, opts, t[0].device())?;
        for ((_, p), v) in m.named_parameters().iter().zip(&t[1..]) {
            p.set(v.clone());
        }
        let (out, (h, _)) = m.forward_with_lengths(&t[0], &[4, 2], None)?;
        out.sum_all()?.add(&h.sum_all()?)
    };
    check_grad(dev, &refs, f, "bidirectional lstm with lengths");
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
