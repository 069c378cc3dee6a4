//! conv2d, conv_transpose2d, conv1d, unfold2d and fold2d on both devices: forward against a
//! plain f64 loop, gradients by gradcheck (CPU) and against the CPU's (GPU), hand-checked
//! golden values, shape errors, and the >65,535-workgroup path.

mod common;
use common::{assert_close, check_grad, normal, uniform};
use ferrograd::{Conv1dOptions, Conv2dOptions, Device, Error, Tensor};

/// Direct convolution in f64: x [n, c, h, w], w [o, c/g, kh, kw] -> [n, o, oh, ow].
fn conv_ref(x: &Tensor, w: &Tensor, b: Option<&Tensor>, o: &Conv2dOptions) -> Tensor {
    let (xs, ws) = (x.shape().to_vec(), w.shape().to_vec());
    let (xv, wv) = (x.to_vec().unwrap(), w.to_vec().unwrap());
    let bv = b.map(|b| b.to_vec().unwrap());
    let (n, c, h, wd) = (xs[0], xs[1], xs[2], xs[3]);
    let (oc, cg, kh, kw) = (ws[0], ws[1], ws[2], ws[3]);
    let og = oc / o.groups;
    let out = |a: usize, size: usize, k: usize| {
        (size + 2 * o.padding[a] - o.dilation[a] * (k - 1) - 1) / o.stride[a] + 1
    };
    let (oh, ow) = (out(0, h, kh), out(1, wd, kw));
    let mut y = vec![0f32; n * oc * oh * ow];
    for ni in 0..n {
        for co in 0..oc {
            let grp = co / og;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut s = bv.as_ref().map_or(0.0, |b| b[co] as f64);
                    for ci in 0..cg {
                        let cin = grp * cg + ci;
                        for ki in 0..kh {
                            for kj in 0..kw {
                                let yy = (oy * o.stride[0] + ki * o.dilation[0]) as isize
                                    - o.padding[0] as isize;
                                let xx = (ox * o.stride[1] + kj * o.dilation[1]) as isize
                                    - o.padding[1] as isize;
                                if yy < 0 || xx < 0 || yy >= h as isize || xx >= wd as isize {
                                    continue;
                                }
                                let xi = ((ni * c + cin) * h + yy as usize) * wd + xx as usize;
                                let wi = ((co * cg + ci) * kh + ki) * kw + kj;
                                s += xv[xi] as f64 * wv[wi] as f64;
                            }
                        }
                    }
                    y[((ni * oc + co) * oh + oy) * ow + ox] = s as f32;
                }
            }
        }
    }
    Tensor::from_vec(y, &[n, oc, oh, ow], &Device::cpu()).unwrap()
}

/// The shapes the issue asks for: odd sizes, stride 2, padding 0/1/2, dilation 2, groups 2,
/// 1×1 kernels, batch 1 and 33. (input, weight, options)
fn configs() -> Vec<([usize; 4], [usize; 4], Conv2dOptions)> {
    let o = Conv2dOptions::new();
    vec![
        ([1, 1, 5, 7], [2, 1, 3, 3], o),
        ([2, 3, 9, 11], [4, 3, 3, 3], o.padding(1)),
        ([2, 3, 9, 11], [5, 3, 3, 2], o.stride(2).padding(2)),
        ([1, 2, 13, 10], [3, 2, 3, 3], o.dilation(2).padding(1)),
        ([2, 4, 7, 7], [6, 2, 3, 3], o.groups(2).padding(1)),
        ([3, 5, 6, 5], [7, 5, 1, 1], o),
        ([2, 3, 9, 8], [4, 3, 3, 3], o.dilation(2).padding(2)),
        ([2, 2, 3, 4], [3, 2, 5, 5], o.padding(2)),
        ([33, 3, 8, 8], [4, 3, 3, 3], o.stride(2).padding(1)),
        (
            [2, 2, 11, 9],
            [2, 2, 3, 5],
            Conv2dOptions {
                stride: [2, 1],
                padding: [0, 2],
                dilation: [1, 2],
                ..o
            },
        ),
    ]
}

fn conv2d_forward(dev: &Device) {
    for (i, (xs, ws, o)) in configs().into_iter().enumerate() {
        let x = normal(&xs, 10 + i as u64);
        let w = normal(&ws, 20 + i as u64);
        let b = normal(&[ws[0]], 30 + i as u64);
        let expected = conv_ref(&x, &w, Some(&b), &o);
        let (xd, wd, bd) = (
            x.to_device(dev).unwrap(),
            w.to_device(dev).unwrap(),
            b.to_device(dev).unwrap(),
        );
        let y = xd.conv2d(&wd, Some(&bd), &o).unwrap();
        assert_eq!(y.shape(), expected.shape(), "config {i}");
        let what = format!("conv2d config {i} {xs:?} {ws:?} on {dev}");
        assert_close(
            &y.to_vec().unwrap(),
            &expected.to_vec().unwrap(),
            1e-4,
            1e-4,
            &what,
        );
    }
}

fn conv2d_gradients(dev: &Device) {
    // Small shapes (gradcheck perturbs every element) covering each option.
    let o = Conv2dOptions::new();
    let cases = [
        ([1, 2, 5, 4], [3, 2, 3, 3], o.padding(1)),
        ([2, 2, 6, 5], [2, 2, 2, 3], o.stride(2).padding(1)),
        ([1, 2, 7, 7], [2, 2, 3, 3], o.dilation(2)),
        ([1, 4, 4, 5], [4, 2, 3, 3], o.groups(2).padding(2)),
        ([2, 3, 3, 3], [2, 3, 1, 1], o),
        // Stride 1 and as many windows per row as pixels: the CPU's one-span unfold and fold,
        // dilated, rectangular, and with a kernel wider than the image.
        ([1, 2, 6, 5], [2, 2, 3, 3], o.dilation(2).padding(2)),
        (
            [1, 2, 4, 6],
            [2, 2, 3, 5],
            Conv2dOptions {
                padding: [1, 2],
                ..o
            },
        ),
        ([2, 1, 3, 3], [2, 1, 5, 5], o.padding(2)),
    ];
    for (i, (xs, ws, opts)) in cases.into_iter().enumerate() {
        let x = normal(&xs, 40 + i as u64);
        let w = normal(&ws, 50 + i as u64);
        let b = normal(&[ws[0]], 60 + i as u64);
        check_grad(
            dev,
            &[&x, &w, &b],
            |t| t[0].conv2d(&t[1], Some(&t[2]), &opts),
            &format!("conv2d grad case {i}"),
        );
    }
}

fn conv2d_batch33_gradients(dev: &Device) {
    if !dev.is_gpu() {
        return; // the CPU's gradients are gradchecked above; this compares the GPU to them
    }
    let x = normal(&[33, 3, 9, 8], 70);
    let w = normal(&[5, 3, 3, 3], 71);
    let b = normal(&[5], 72);
    let o = Conv2dOptions::new().stride(2).padding(1);
    check_grad(
        dev,
        &[&x, &w, &b],
        |t| t[0].conv2d(&t[1], Some(&t[2]), &o),
        "conv2d batch 33",
    );
}

/// Batches the CPU splits into several blocks with a ragged last one (`ops/conv/cpu.rs` sizes
/// blocks to ~1 MiB of scratch: three of these images, so blocks of 3 and 2). The forward
/// pass against the f64 loop (groups 2); the gradients (groups 1) against their definitions
/// built from other ops: the input's is conv_transpose2d of the output gradient, the
/// weight's `sum_n g_n · unfold(x)_nᵀ`.
fn conv2d_blocks(dev: &Device) {
    let o = Conv2dOptions::new().padding(1);
    let x = normal(&[5, 8, 33, 33], 150);
    let (w2, w1) = (normal(&[8, 4, 3, 3], 151), normal(&[8, 8, 3, 3], 152));
    let b = normal(&[8], 153);
    let on = |t: &Tensor| t.to_device(dev).unwrap();
    let g2 = o.groups(2);
    let y = on(&x).conv2d(&on(&w2), Some(&on(&b)), &g2).unwrap();
    let expected = conv_ref(&x, &w2, Some(&b), &g2).to_vec().unwrap();
    assert_close(
        &y.to_vec().unwrap(),
        &expected,
        1e-4,
        1e-4,
        "blocked conv2d",
    );
    // Groups whose products are deep (72 taps each: stored [windows, o], then transposed),
    // in blocks of 4 and 1 images.
    let xg = normal(&[5, 16, 20, 20], 155);
    let wg = normal(&[8, 8, 3, 3], 156);
    let y = on(&xg).conv2d(&on(&wg), Some(&on(&b)), &g2).unwrap();
    let expected = conv_ref(&xg, &wg, Some(&b), &g2).to_vec().unwrap();
    let what = "deep grouped conv2d";
    assert_close(&y.to_vec().unwrap(), &expected, 1e-4, 1e-4, what);

    let (xd, wd) = (on(&x).requires_grad(), on(&w1).requires_grad());
    let y = xd.conv2d(&wd, None, &o).unwrap();
    let g = normal(y.shape(), 154);
    let grads = y.backward_with(&on(&g)).unwrap();
    let gd = on(&g);
    let dx = gd.conv_transpose2d(&on(&w1), None, &o).unwrap();
    let cols = on(&x).unfold2d([3, 3], &o).unwrap(); // [n, c*9, l]
    let dw = gd
        .reshape(&[5, 8, 33 * 33])
        .unwrap()
        .matmul(&cols.transpose(1, 2).unwrap())
        .unwrap()
        .sum(0, false)
        .unwrap();
    let got = |t: &Tensor| grads.get(t).unwrap().to_vec().unwrap();
    let what = format!("blocked conv2d gradients on {dev}");
    assert_close(&got(&xd), &dx.to_vec().unwrap(), 1e-4, 1e-4, &what);
    assert_close(&got(&wd), &dw.to_vec().unwrap(), 1e-3, 1e-4, &what);
}

/// A padding and stride so large that the padded image would hold ~10^13 elements while the
/// output has a handful: computed (as PyTorch does), not an allocation failure.
fn huge_padding_and_stride(dev: &Device) {
    let x = Tensor::from_vec(vec![2.0], &[1, 1, 1, 1], dev).unwrap();
    let w = Tensor::from_vec(vec![3.0], &[1, 1, 1, 1], dev).unwrap();
    // Windows at -2^20 and 2^20 along each axis: all padding.
    let o = Conv2dOptions::new().padding(1 << 20).stride(1 << 21);
    let y = x.conv2d(&w, None, &o).unwrap();
    assert_eq!(y.shape(), &[1, 1, 2, 2]);
    assert_eq!(y.to_vec().unwrap(), vec![0.0; 4]);
    // Windows at -2^20, 0 and 2^20: the middle one reads the pixel.
    let o = Conv2dOptions::new().padding(1 << 20).stride(1 << 20);
    let y = x.conv2d(&w, None, &o).unwrap();
    assert_eq!(y.shape(), &[1, 1, 3, 3]);
    let mut expected = vec![0.0; 9];
    expected[4] = 6.0;
    assert_eq!(y.to_vec().unwrap(), expected);
    let cols = x.unfold2d([1, 1], &o).unwrap();
    assert_eq!(
        cols.to_vec().unwrap(),
        expected.iter().map(|v| v / 3.0).collect::<Vec<_>>()
    );
}

/// Taps that only ever read padding (a 1×5 kernel over a 1×1 image padded by 2 along the
/// width: only the middle tap reaches the pixel), through conv2d, its gradients and unfold.
fn taps_only_in_padding(dev: &Device) {
    let x = Tensor::from_vec(vec![2.0], &[1, 1, 1, 1], dev).unwrap();
    let w = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0], &[1, 1, 1, 5], dev).unwrap();
    let o = Conv2dOptions {
        padding: [0, 2],
        ..Conv2dOptions::new()
    };
    let (xg, wg) = (x.requires_grad(), w.requires_grad());
    let y = xg.conv2d(&wg, None, &o).unwrap();
    assert_eq!(y.to_vec().unwrap(), vec![6.0], "on {dev}");
    let g = y.sum_all().unwrap().backward().unwrap();
    assert_eq!(g.get(&xg).unwrap().to_vec().unwrap(), vec![3.0], "on {dev}");
    let dw = g.get(&wg).unwrap().to_vec().unwrap();
    assert_eq!(dw, vec![0.0, 0.0, 2.0, 0.0, 0.0], "on {dev}");
    let cols = x.unfold2d([1, 5], &o).unwrap().to_vec().unwrap();
    assert_eq!(cols, vec![0.0, 0.0, 2.0, 0.0, 0.0], "on {dev}");
}

/// conv_transpose2d in f64 by its definition: each input pixel scatters `x * w` through the
/// kernel. x [n, c, h, w], w [c, o/g, kh, kw].
fn conv_transpose_ref(x: &Tensor, w: &Tensor, o: &Conv2dOptions) -> Vec<f32> {
    let (xs, ws) = (x.shape().to_vec(), w.shape().to_vec());
    let (xv, wv) = (x.to_vec().unwrap(), w.to_vec().unwrap());
    let (n, c, h, wd) = (xs[0], xs[1], xs[2], xs[3]);
    let (og, kh, kw) = (ws[1], ws[2], ws[3]);
    let g = o.groups;
    let oc = og * g;
    let size = |a: usize, s: usize, k: usize| {
        (s - 1) * o.stride[a] - 2 * o.padding[a] + o.dilation[a] * (k - 1) + o.output_padding[a] + 1
    };
    let (oh, ow) = (size(0, h, kh), size(1, wd, kw));
    let mut y = vec![0f64; n * oc * oh * ow];
    for ni in 0..n {
        for ci in 0..c {
            let grp = ci / (c / g);
            for i in 0..h {
                for j in 0..wd {
                    let v = xv[((ni * c + ci) * h + i) * wd + j] as f64;
                    for co in 0..og {
                        for ki in 0..kh {
                            for kj in 0..kw {
                                let yy = (i * o.stride[0] + ki * o.dilation[0]) as isize
                                    - o.padding[0] as isize;
                                let xx = (j * o.stride[1] + kj * o.dilation[1]) as isize
                                    - o.padding[1] as isize;
                                if yy < 0 || xx < 0 || yy >= oh as isize || xx >= ow as isize {
                                    continue;
                                }
                                let out_c = grp * og + co;
                                let wi = ((ci * og + co) * kh + ki) * kw + kj;
                                let yi = ((ni * oc + out_c) * oh + yy as usize) * ow + xx as usize;
                                y[yi] += v * wv[wi] as f64;
                            }
                        }
                    }
                }
            }
        }
    }
    y.into_iter().map(|v| v as f32).collect()
}

fn conv_transpose2d_forward_and_grad(dev: &Device) {
    let o = Conv2dOptions::new();
    let cases = [
        ([1, 2, 4, 5], [2, 3, 3, 3], o),
        (
            [2, 2, 5, 4],
            [2, 2, 3, 3],
            o.stride(2).padding(1).output_padding(1),
        ),
        ([1, 4, 3, 3], [4, 1, 2, 2], o.groups(2).stride(2)),
        ([1, 1, 4, 4], [1, 2, 3, 3], o.dilation(2).padding(1)),
    ];
    for (i, (xs, ws, opts)) in cases.into_iter().enumerate() {
        let x = normal(&xs, 80 + i as u64);
        let w = normal(&ws, 90 + i as u64);
        let expected = conv_transpose_ref(&x, &w, &opts);
        let y = x
            .to_device(dev)
            .unwrap()
            .conv_transpose2d(&w.to_device(dev).unwrap(), None, &opts)
            .unwrap();
        let what = format!("conv_transpose2d case {i} on {dev}");
        assert_close(&y.to_vec().unwrap(), &expected, 1e-4, 1e-4, &what);
        let b = normal(&[ws[1] * opts.groups], 100 + i as u64);
        check_grad(
            dev,
            &[&x, &w, &b],
            |t| t[0].conv_transpose2d(&t[1], Some(&t[2]), &opts),
            &what,
        );
    }
}

fn conv_transpose_is_conv_input_gradient(dev: &Device) {
    // d/dx sum(conv2d(x, w) * g) = conv_transpose2d(g, w) with the same options
    let o = Conv2dOptions::new().stride(2).padding(1);
    let x = normal(&[2, 3, 7, 7], 110)
        .to_device(dev)
        .unwrap()
        .requires_grad();
    let w = normal(&[4, 3, 3, 3], 111).to_device(dev).unwrap();
    let y = x.conv2d(&w, None, &o).unwrap();
    let g = normal(y.shape(), 112).to_device(dev).unwrap();
    let dx = y.backward_with(&g).unwrap();
    let dx = dx.get(&x).unwrap();
    let t = g.conv_transpose2d(&w, None, &o).unwrap();
    assert_eq!(t.shape(), x.shape());
    assert_close(
        &t.to_vec().unwrap(),
        &dx.to_vec().unwrap(),
        1e-5,
        1e-5,
        "transpose = grad",
    );
}

fn conv1d_forward_and_grad(dev: &Device) {
    let o = Conv1dOptions {
        stride: 2,
        padding: 1,
        dilation: 1,
        groups: 1,
    };
    let x = normal(&[2, 3, 11], 120);
    let w = normal(&[4, 3, 3], 121);
    let b = normal(&[4], 122);
    // The same conv as a 2-D one with a height-1 image.
    let o2 = Conv2dOptions {
        stride: [1, 2],
        padding: [0, 1],
        ..Conv2dOptions::new()
    };
    let expected = conv_ref(
        &x.unsqueeze(2).unwrap(),
        &w.unsqueeze(2).unwrap(),
        Some(&b),
        &o2,
    );
    let dv = |t: &Tensor| t.to_device(dev).unwrap();
    let y = dv(&x).conv1d(&dv(&w), Some(&dv(&b)), &o).unwrap();
    assert_eq!(y.shape(), &[2, 4, 6]);
    assert_close(
        &y.to_vec().unwrap(),
        &expected.to_vec().unwrap(),
        1e-4,
        1e-4,
        "conv1d",
    );
    let og = Conv1dOptions {
        groups: 3,
        dilation: 2,
        ..Conv1dOptions::default()
    };
    let wg = normal(&[3, 1, 2], 123);
    check_grad(
        dev,
        &[&x, &w, &b],
        |t| t[0].conv1d(&t[1], Some(&t[2]), &o),
        "conv1d grad",
    );
    check_grad(
        dev,
        &[&x, &wg],
        |t| t[0].conv1d(&t[1], None, &og),
        "conv1d groups 3",
    );
}

fn unfold_fold(dev: &Device) {
    let o = Conv2dOptions::new().stride(2).padding(1);
    let x = normal(&[2, 3, 5, 6], 130);
    let xd = x.to_device(dev).unwrap();
    let cols = xd.unfold2d([3, 2], &o).unwrap();
    // 3 × 3 windows over 7 × 8 padded: ceil-free (7-3)/2+1 = 3 by (8-2)/2+1 = 4
    assert_eq!(cols.shape(), &[2, 3 * 3 * 2, 12]);
    // fold of unfold multiplies each pixel by the number of windows covering it: fold(ones)
    let ones = Tensor::ones(cols.shape(), dev).unwrap();
    let cover = ones.fold2d([5, 6], [3, 2], &o).unwrap();
    let back = cols.fold2d([5, 6], [3, 2], &o).unwrap();
    let expected = x.mul(&cover.to_device(&Device::cpu()).unwrap()).unwrap();
    assert_close(
        &back.to_vec().unwrap(),
        &expected.to_vec().unwrap(),
        1e-5,
        1e-5,
        "fold∘unfold",
    );
    check_grad(dev, &[&x], |t| t[0].unfold2d([3, 2], &o), "unfold2d grad");
    let c = normal(&[1, 4, 9], 131);
    let od = Conv2dOptions::new().dilation(2);
    check_grad(
        dev,
        &[&c],
        |t| t[0].fold2d([5, 5], [2, 2], &od),
        "fold2d grad",
    );
}

/// Golden values, exact integers worked by hand; PyTorch prints the same with:
/// ```python
/// import torch
/// x = torch.arange(1., 17.).reshape(1, 1, 4, 4).requires_grad_()
/// w = torch.tensor([[1., 2.], [3., 4.]]).reshape(1, 1, 2, 2).requires_grad_()
/// b = torch.tensor([0.5]).requires_grad_()
/// y = torch.nn.functional.conv2d(x, w, b)
/// y.sum().backward()
/// print(y.flatten().tolist(), x.grad.flatten().tolist(), w.grad.flatten().tolist(), b.grad)
/// ```
/// y[i, j] = 40 i + 10 j + 44.5; dw[a, b] = sum of the 3×3 block at (a, b); dx[p, q] = sum of
/// the weights whose tap covers (p, q); db = 9.
fn golden_conv2d(dev: &Device) {
    let x = Tensor::arange(1.0, 17.0, 1.0, dev)
        .unwrap()
        .reshape(&[1, 1, 4, 4])
        .unwrap()
        .requires_grad();
    let w = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2], dev)
        .unwrap()
        .requires_grad();
    let b = Tensor::from_vec(vec![0.5], &[1], dev)
        .unwrap()
        .requires_grad();
    let y = x.conv2d(&w, Some(&b), &Conv2dOptions::new()).unwrap();
    let expect_y: Vec<f32> = (0..9)
        .map(|k| 40.0 * (k / 3) as f32 + 10.0 * (k % 3) as f32 + 44.5)
        .collect();
    assert_eq!(y.to_vec().unwrap(), expect_y);
    let grads = y.sum_all().unwrap().backward().unwrap();
    #[rustfmt::skip]
    let dx = vec![
        1.0, 3.0, 3.0, 2.0,
        4.0, 10.0, 10.0, 6.0,
        4.0, 10.0, 10.0, 6.0,
        3.0, 7.0, 7.0, 4.0,
    ];
    assert_eq!(grads.get(&x).unwrap().to_vec().unwrap(), dx);
    assert_eq!(
        grads.get(&w).unwrap().to_vec().unwrap(),
        vec![54.0, 63.0, 90.0, 99.0]
    );
    assert_eq!(grads.get(&b).unwrap().to_vec().unwrap(), vec![9.0]);
}

fn errors(dev: &Device) {
    let x = Tensor::zeros(&[2, 4, 6, 6], dev).unwrap();
    let w = Tensor::zeros(&[8, 4, 3, 3], dev).unwrap();
    let o = Conv2dOptions::new();
    let msg = |r: ferrograd::Result<Tensor>| r.unwrap_err().to_string();

    let m = msg(x.conv2d(&Tensor::zeros(&[8, 3, 3, 3], dev).unwrap(), None, &o));
    assert!(
        m.contains("conv2d") && m.contains("4 channels") && m.contains("expects 3"),
        "{m}"
    );
    let m = msg(x.conv2d(&w, None, &o.groups(3)));
    assert!(
        m.contains("groups 3 must divide the input channels 4"),
        "{m}"
    );
    let m = msg(x.conv2d(
        &Tensor::zeros(&[6, 2, 3, 3], dev).unwrap(),
        None,
        &o.groups(4),
    ));
    assert!(m.contains("expects 8"), "{m}"); // 2 per group × 4 groups
    let m = msg(x.conv2d(
        &Tensor::zeros(&[8, 4, 9, 3], dev).unwrap(),
        None,
        &o.padding(1),
    ));
    assert!(
        m.contains("kernel height 9") && m.contains("padded input height 8"),
        "{m}"
    );
    let m = msg(x.conv2d(&w, None, &o.stride(0)));
    assert!(
        m.contains("stride [0, 0]") && m.contains("at least 1"),
        "{m}"
    );
    let m = msg(x.conv2d(&w, Some(&Tensor::zeros(&[7], dev).unwrap()), &o));
    assert!(m.contains("bias") && m.contains("[7]"), "{m}");
    let m = msg(Tensor::zeros(&[4, 6, 6], dev).unwrap().conv2d(&w, None, &o));
    assert!(m.contains("4-D") && m.contains("[4, 6, 6]"), "{m}");
    let m = msg(x.conv2d(&w, None, &o.output_padding(1)));
    assert!(m.contains("output_padding"), "{m}");
    let wt = Tensor::zeros(&[4, 2, 3, 3], dev).unwrap();
    let m = msg(x.conv_transpose2d(&wt, None, &o.stride(2).output_padding(2)));
    assert!(m.contains("output_padding [2, 2] must be smaller"), "{m}");
    let m = msg(x.conv_transpose2d(&Tensor::zeros(&[3, 2, 3, 3], dev).unwrap(), None, &o));
    assert!(
        m.contains("conv_transpose2d") && m.contains("first axis 3"),
        "{m}"
    );
    let m = msg(Tensor::zeros(&[1, 18, 7], dev)
        .unwrap()
        .fold2d([4, 4], [3, 3], &o));
    assert!(m.contains("7 columns") && m.contains("4 windows"), "{m}");
    let m =
        msg(Tensor::zeros(&[2, 3, 5], dev)
            .unwrap()
            .conv1d(&w, None, &Conv1dOptions::default()));
    assert!(m.contains("conv1d") && m.contains("3-D"), "{m}");
    if dev.is_gpu() {
        let m = msg(x.conv2d(
            &Tensor::zeros(&[8, 4, 3, 3], &Device::cpu()).unwrap(),
            None,
            &o,
        ));
        assert!(m.contains("different devices"), "{m}");
    }
    assert!(matches!(
        x.conv2d(&w, None, &o.groups(0)),
        Err(Error::InvalidArgument { op: "conv2d", .. })
    ));
}

/// 64×32×28×28 through a 3×3 conv: im2col writes 64·288·784 = 14.4 M columns, 226 k
/// workgroups of 64, so the launch grid folds into 2-D.
fn large_activation(dev: &Device) {
    let x = uniform(&[64, 32, 28, 28], -1.0, 1.0, 140);
    let w = uniform(&[2, 32, 3, 3], -0.2, 0.2, 141);
    let o = Conv2dOptions::new().padding(1);
    let y = x
        .to_device(dev)
        .unwrap()
        .conv2d(&w.to_device(dev).unwrap(), None, &o)
        .unwrap();
    assert_eq!(y.shape(), &[64, 2, 28, 28]);
    let got = y.to_vec().unwrap();
    // Spot-check planes against the f64 reference on a slice of the batch (first and last).
    for n in [0, 63] {
        let xs = x.narrow(0, n, 1).unwrap();
        let e = conv_ref(&xs, &w, None, &o).to_vec().unwrap();
        let plane = 2 * 28 * 28;
        assert_close(
            &got[n * plane..(n + 1) * plane],
            &e,
            1e-4,
            1e-4,
            "large conv2d",
        );
    }
}

device_tests!(
    conv2d_forward,
    conv2d_gradients,
    conv2d_batch33_gradients,
    conv_transpose2d_forward_and_grad,
    conv_transpose_is_conv_input_gradient,
    conv1d_forward_and_grad,
    unfold_fold,
    golden_conv2d,
    errors,
    large_activation,
    conv2d_blocks,
    huge_padding_and_stride,
    taps_only_in_padding,
);
