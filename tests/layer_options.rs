//! The layer options of issue 22 against PyTorch (`tests/data/make_torch_goldens.py`), on
//! both devices: `pad` and the convolutions' padding modes and `padding_same`; pooling's
//! `ceil_mode`, `count_include_pad`, dilation and adaptive max; Conv1d, 1-D pooling and
//! upsampling. Values and gradients, gradcheck, errors.

mod common;

use common::{assert_golden, check_grad, golden, load_golden, normal};
use ferrograd::nn::*;
use ferrograd::{
    Conv1dOptions, Conv2dOptions, Device, PadMode, Pool1dOptions, Pool2dOptions, Tensor,
    UpsampleMode,
};

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
    // The layer's "same" takes even kernels too: the odd row goes right and bottom.
    let conv = Conv2d::new(2, 3, 4, Conv2dOptions::new(), true, dev)
        .unwrap()
        .padding_same()
        .unwrap();
    let y = conv.forward(&img).unwrap();
    assert_eq!(y.shape(), &[2, 3, 4, 5]);
    let (w, b) = (conv.weight.value(), conv.bias.as_ref().unwrap().value());
    let manual = img.pad(&[1, 2, 1, 2], PadMode::default()).unwrap();
    let manual = manual.conv2d(&w, Some(&b), &Conv2dOptions::new()).unwrap();
    common::assert_close(
        &y.to_vec().unwrap(),
        &manual.to_vec().unwrap(),
        1e-6,
        1e-6,
        "same",
    );
    assert!(conv.describe().contains("padding=\"same\""));
    let strided = Conv2d::new(2, 3, 3, Conv2dOptions::new().stride(2), true, dev).unwrap();
    let m = strided.padding_same().unwrap_err().to_string();
    assert!(m.contains("Conv2d: \"same\" padding needs stride 1"), "{m}");
    let m = err(img.pad(&[0, usize::MAX], PadMode::Replicate));
    assert!(
        m.starts_with("pad: padding (0, 18446744073709551615)"),
        "{m}"
    );
    assert!(img.pad(&[0, usize::MAX], PadMode::Constant(0.0)).is_err());
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
    // A dilated window that steps over the whole image is refused, not pooled as -inf.
    let narrow = Tensor::zeros(&[1, 1, 3, 2], dev).unwrap();
    let gaps = Pool2dOptions {
        kernel: [1, 2],
        stride: [1, 1],
        padding: [0, 1],
        ..Pool2dOptions::new(1).dilation(3)
    };
    let m = narrow.max_pool2d(&gaps).unwrap_err().to_string();
    assert!(m.contains("has no tap inside the input"), "{m}");
    assert_eq!(
        AvgPool2d(o.count_include_pad(false)).describe(),
        "AvgPool2d(kernel_size=[3, 3], stride=[2, 2], padding=[1, 1], ceil_mode=true, count_include_pad=false)"
    );
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
    let m = err(img.upsample_scale([1e30, 1e30], Nearest));
    assert!(m.starts_with("upsample: the output size"), "{m}");
    let ints = Tensor::from_vec(vec![1i32; 4], &[1, 1, 2, 2], dev).unwrap();
    assert!(err(ints.upsample([3, 3], Bilinear)).starts_with("upsample:"));
    assert_eq!(ints.upsample([4, 4], Nearest).unwrap().numel(), 16);
    let m = err(img.max_pool1d(&Pool1dOptions::new(2)));
    assert!(m.starts_with("max_pool1d: input must be 3-D"), "{m}");
    let m = err(seq.avg_pool1d(&Pool1dOptions::new(2).padding(2)));
    assert!(m.starts_with("avg_pool1d:"), "{m}");
}

device_tests!(padding_modes, pooling_options, layers_1d_and_upsample);
