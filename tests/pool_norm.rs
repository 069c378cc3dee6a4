//! Pooling, batch norm, layer norm and dropout on both devices: forward against plain f64
//! loops, gradients by gradcheck (CPU) and against the CPU's (GPU), a hand-checked max-pool
//! golden, the error cases, and dropout's device-independent mask.

mod common;
use common::{assert_close, check_grad, normal, uniform};
use ferrograd::{BatchNormOptions, Device, Generator, Pool2dOptions, RunningStats, Tensor};

#[derive(Clone, Copy)]
enum Kind {
    Max,
    Avg,
    Adaptive,
}

/// Pooling in f64 by the definitions: windows `(start, end)` per output along each axis.
fn pool_ref(x: &Tensor, kind: Kind, o: &Pool2dOptions, out: [usize; 2]) -> Tensor {
    let s = x.shape().to_vec();
    let (planes, h, w) = (s[0] * s[1], s[2], s[3]);
    let v = x.to_vec().unwrap();
    let range = |a: usize, i: usize, size: usize| -> (isize, isize) {
        match kind {
            Kind::Adaptive => (
                ((i * size) / out[a]) as isize,
                ((i + 1) * size).div_ceil(out[a]) as isize,
            ),
            _ => {
                let st = (i * o.stride[a]) as isize - o.padding[a] as isize;
                (st, st + o.kernel[a] as isize)
            }
        }
    };
    let mut y = Vec::new();
    for p in 0..planes {
        for oy in 0..out[0] {
            for ox in 0..out[1] {
                let (y0, y1) = range(0, oy, h);
                let (x0, x1) = range(1, ox, w);
                let (mut best, mut sum, mut count) = (f64::NEG_INFINITY, 0.0, 0usize);
                for yy in y0..y1 {
                    for xx in x0..x1 {
                        count += 1; // padding counts for avg (count_include_pad)
                        if yy < 0 || xx < 0 || yy >= h as isize || xx >= w as isize {
                            continue;
                        }
                        let e = v[(p * h + yy as usize) * w + xx as usize] as f64;
                        best = best.max(e);
                        sum += e;
                    }
                }
                y.push(match kind {
                    Kind::Max => best,
                    _ => sum / count as f64,
                } as f32);
            }
        }
    }
    Tensor::from_vec(y, &[s[0], s[1], out[0], out[1]], &Device::cpu()).unwrap()
}

fn pooling_forward(dev: &Device) {
    let o = Pool2dOptions::new;
    let cases: Vec<([usize; 4], Pool2dOptions)> = vec![
        ([2, 3, 8, 8], o(2)),
        ([1, 2, 7, 9], o(3).stride(2).padding(1)),
        ([33, 1, 5, 5], o(2).stride(1)),
        ([2, 2, 11, 6], o(3).padding(1)),
        ([1, 1, 1, 1], o(1)),
    ];
    for (i, (shape, opts)) in cases.into_iter().enumerate() {
        let x = normal(&shape, 200 + i as u64);
        let xd = x.to_device(dev).unwrap();
        let out_size =
            |a: usize| (shape[2 + a] + 2 * opts.padding[a] - opts.kernel[a]) / opts.stride[a] + 1;
        let out = [out_size(0), out_size(1)];
        let what = format!("pool case {i} {shape:?} on {dev}");
        let e = pool_ref(&x, Kind::Max, &opts, out).to_vec().unwrap();
        assert_close(
            &xd.max_pool2d(&opts).unwrap().to_vec().unwrap(),
            &e,
            0.0,
            0.0,
            &what,
        );
        let e = pool_ref(&x, Kind::Avg, &opts, out).to_vec().unwrap();
        assert_close(
            &xd.avg_pool2d(&opts).unwrap().to_vec().unwrap(),
            &e,
            1e-5,
            1e-5,
            &what,
        );
    }
    // adaptive: shrinking, uneven, growing, global
    let x = normal(&[2, 3, 7, 10], 210);
    let xd = x.to_device(dev).unwrap();
    for out in [[3, 4], [7, 10], [2, 3], [9, 13], [1, 1]] {
        let e = pool_ref(&x, Kind::Adaptive, &Pool2dOptions::new(1), out);
        let y = xd.adaptive_avg_pool2d(out).unwrap();
        assert_eq!(y.shape(), e.shape());
        let what = format!("adaptive {out:?} on {dev}");
        assert_close(
            &y.to_vec().unwrap(),
            &e.to_vec().unwrap(),
            1e-5,
            1e-5,
            &what,
        );
    }
    let g = xd.global_avg_pool2d().unwrap();
    let m = x.mean(-1, true).unwrap().mean(-2, true).unwrap();
    assert_close(
        &g.to_vec().unwrap(),
        &m.to_vec().unwrap(),
        1e-5,
        1e-5,
        "global",
    );
}

fn pooling_gradients(dev: &Device) {
    // Normal inputs have no ties (almost surely), so max pooling is differentiable there.
    let x = normal(&[2, 2, 6, 7], 220);
    let o = Pool2dOptions::new(2);
    let o3 = Pool2dOptions::new(3).stride(2).padding(1);
    check_grad(dev, &[&x], |t| t[0].max_pool2d(&o), "max_pool2d");
    check_grad(
        dev,
        &[&x],
        |t| t[0].max_pool2d(&o3),
        "max_pool2d overlapping",
    );
    check_grad(dev, &[&x], |t| t[0].avg_pool2d(&o), "avg_pool2d");
    check_grad(dev, &[&x], |t| t[0].avg_pool2d(&o3), "avg_pool2d padded");
    check_grad(dev, &[&x], |t| t[0].adaptive_avg_pool2d([4, 3]), "adaptive");
    check_grad(
        dev,
        &[&x],
        |t| t[0].adaptive_avg_pool2d([8, 9]),
        "adaptive growing",
    );
    check_grad(dev, &[&x], |t| t[0].global_avg_pool2d(), "global");
    // a non-contiguous input: the transposed image
    check_grad(
        dev,
        &[&x],
        |t| t[0].transpose(2, 3)?.max_pool2d(&o),
        "max of a view",
    );
}

/// A max-pool golden with ties, exact by hand; PyTorch gives the same with:
/// ```python
/// import torch
/// x = torch.tensor([[1., 5, 2, 2], [3, 4, 2, 0], [9, 0, 6, 7], [1, 8, 7, 3]])
/// x = x.reshape(1, 1, 4, 4).requires_grad_()
/// y = torch.nn.functional.max_pool2d(x, 2)
/// y.backward(torch.tensor([[1., 2], [3, 4]]).reshape(1, 1, 2, 2))
/// print(y.flatten().tolist(), x.grad.flatten().tolist())
/// ```
/// The top-right window is all 2s and the bottom-right has two 7s: each gradient goes to the
/// first maximum in row-major order.
fn golden_max_pool(dev: &Device) {
    #[rustfmt::skip]
    let x = Tensor::from_vec(vec![
        1.0, 5.0, 2.0, 2.0,
        3.0, 4.0, 2.0, 0.0,
        9.0, 0.0, 6.0, 7.0,
        1.0, 8.0, 7.0, 3.0,
    ], &[1, 1, 4, 4], dev).unwrap().requires_grad();
    let (y, idx) = x.max_pool2d_with_indices(&Pool2dOptions::new(2)).unwrap();
    assert_eq!(y.to_vec().unwrap(), vec![5.0, 2.0, 9.0, 7.0]);
    assert_eq!(idx.to_vec().unwrap(), vec![1.0, 2.0, 8.0, 11.0]);
    let g = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2], dev).unwrap();
    let dx = y.backward_with(&g).unwrap();
    #[rustfmt::skip]
    let expected = vec![
        0.0, 1.0, 2.0, 0.0,
        0.0, 0.0, 0.0, 0.0,
        3.0, 0.0, 0.0, 4.0,
        0.0, 0.0, 0.0, 0.0,
    ];
    assert_eq!(dx.get(&x).unwrap().to_vec().unwrap(), expected);
}

/// NaN wins a max window (its last NaN, on both backends), a window of -inf gives -inf at
/// its first tap, and ties go to the first maximum.
fn max_pool_nan_and_infinities(dev: &Device) {
    let (nan, inf) = (f32::NAN, f32::INFINITY);
    #[rustfmt::skip]
    let x = Tensor::from_vec(vec![
        nan, 5.0, 3.0, nan,
        7.0, nan, 9.0, 1.0,
        -inf, -inf, 2.0, 2.0,
        -inf, -inf, 1.0, 0.0,
    ], &[1, 1, 4, 4], dev).unwrap();
    let (y, idx) = x.max_pool2d_with_indices(&Pool2dOptions::new(2)).unwrap();
    let y = y.to_vec().unwrap();
    assert!(y[0].is_nan() && y[1].is_nan(), "{y:?} on {dev}");
    assert_eq!(&y[2..], &[-inf, 2.0], "on {dev}");
    assert_eq!(idx.to_vec().unwrap(), vec![5.0, 3.0, 8.0, 10.0], "on {dev}");
}

/// Rows of many windows with ties, NaNs and -inf, checked value and index against the rule
/// (first maximum in row-major order, last NaN, an all -inf window at its first tap): the CPU
/// runs whole windows a vector of them at a time (stride 1 and 2 along a row), with the
/// windows past a row's end read from the next row and dropped.
fn max_pool_wide_rows(dev: &Device) {
    let cases = [
        ([2, 3, 6, 40], Pool2dOptions::new(2)),
        ([1, 2, 5, 37], Pool2dOptions::new(3).stride(1)),
        ([1, 1, 7, 70], Pool2dOptions::new(3).stride(2)),
    ];
    for (i, (shape, o)) in cases.into_iter().enumerate() {
        let [n, c, h, w] = shape;
        // Small integers, so windows tie; a NaN and a -inf now and then.
        let mut v: Vec<f32> = uniform(&shape, -3.0, 3.0, 900 + i as u64)
            .to_vec()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(k, &u)| match k % 23 {
                5 | 17 => f32::NAN,
                9 => f32::NEG_INFINITY,
                _ => u.round(),
            })
            .collect();
        if i == 0 {
            // Window (0, 17) of the first plane all -inf, in a row's second vector of windows.
            for k in [34, 35, w + 34, w + 35] {
                v[k] = f32::NEG_INFINITY;
            }
        }
        let x = Tensor::from_vec(v.clone(), &shape, dev).unwrap();
        let (y, idx) = x.max_pool2d_with_indices(&o).unwrap();
        let out = |a: usize| (shape[2 + a] - o.kernel[a]) / o.stride[a] + 1;
        let (oh, ow) = (out(0), out(1));
        let (y, idx) = (y.to_vec().unwrap(), idx.to_vec().unwrap());
        for p in 0..n * c {
            for (oy, ox) in (0..oh).flat_map(|oy| (0..ow).map(move |ox| (oy, ox))) {
                let mut at = None::<usize>;
                for ky in 0..o.kernel[0] {
                    for kx in 0..o.kernel[1] {
                        let k = (oy * o.stride[0] + ky) * w + ox * o.stride[1] + kx;
                        let (e, best) = (v[p * h * w + k], at.map(|a| v[p * h * w + a]));
                        if best.is_none_or(|b| e.is_nan() || (!b.is_nan() && e > b)) {
                            at = Some(k);
                        }
                    }
                }
                let (at, o_) = (at.unwrap(), p * oh * ow + oy * ow + ox);
                let want = v[p * h * w + at];
                let what = format!("case {i} plane {p} window ({oy}, {ox}) on {dev}");
                assert_eq!(idx[o_], at as f32, "{what}");
                assert!(
                    y[o_] == want || (y[o_].is_nan() && want.is_nan()),
                    "{what}: {} against {want}",
                    y[o_]
                );
            }
        }
    }
}

fn pooling_errors(dev: &Device) {
    let x = Tensor::zeros(&[1, 2, 4, 4], dev).unwrap();
    let msg = |r: ferrograd::Result<Tensor>| r.unwrap_err().to_string();
    let m = msg(x.max_pool2d(&Pool2dOptions::new(5)));
    assert!(
        m.contains("max_pool2d") && m.contains("kernel height 5"),
        "{m}"
    );
    let m = msg(x.avg_pool2d(&Pool2dOptions::new(2).padding(2)));
    assert!(
        m.contains("padding [2, 2] must be at most half the kernel [2, 2]"),
        "{m}"
    );
    let m = msg(x.max_pool2d(&Pool2dOptions::new(2).stride(0)));
    assert!(m.contains("at least 1"), "{m}");
    let m = msg(x.adaptive_avg_pool2d([0, 2]));
    assert!(
        m.contains("adaptive_avg_pool2d") && m.contains("[0, 2]"),
        "{m}"
    );
    let m = msg(Tensor::zeros(&[2, 4, 4], dev)
        .unwrap()
        .max_pool2d(&Pool2dOptions::new(2)));
    assert!(m.contains("4-D") && m.contains("[2, 4, 4]"), "{m}");
}

/// Normalisation in f64 over `[outer, groups, inner]` with per-group mean/biased variance.
fn norm_ref(x: &[f32], outer: usize, groups: usize, inner: usize, eps: f64) -> Vec<f32> {
    let mut y = vec![0f32; x.len()];
    for g in 0..groups {
        let idx: Vec<usize> = (0..outer)
            .flat_map(|o| (0..inner).map(move |i| (o * groups + g) * inner + i))
            .collect();
        let n = idx.len() as f64;
        let mean = idx.iter().map(|&i| x[i] as f64).sum::<f64>() / n;
        let var = idx
            .iter()
            .map(|&i| (x[i] as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        for &i in &idx {
            y[i] = ((x[i] as f64 - mean) / (var + eps).sqrt()) as f32;
        }
    }
    y
}

fn batch_norm_forward(dev: &Device) {
    let d = |t: &Tensor| t.to_device(dev).unwrap();
    for (i, shape) in [
        vec![5, 3],
        vec![4, 3, 7],
        vec![3, 4, 5, 6],
        vec![33, 2, 3, 3],
    ]
    .into_iter()
    .enumerate()
    {
        let c = shape[1];
        let inner: usize = shape[2..].iter().product();
        let x = uniform(&shape, -2.0, 3.0, 230 + i as u64);
        let w = normal(&[c], 240 + i as u64);
        let b = normal(&[c], 250 + i as u64);
        let mut stats = RunningStats::new(c, dev).unwrap();
        let opts = BatchNormOptions::default();
        let y = d(&x)
            .batch_norm(Some(&mut stats), Some(&d(&w)), Some(&d(&b)), &opts)
            .unwrap();
        let xh = norm_ref(&x.to_vec().unwrap(), shape[0], c, inner, 1e-5);
        let (wv, bv) = (w.to_vec().unwrap(), b.to_vec().unwrap());
        let e: Vec<f32> = xh
            .iter()
            .enumerate()
            .map(|(k, v)| v * wv[(k / inner) % c] + bv[(k / inner) % c])
            .collect();
        let what = format!("batch_norm {shape:?} on {dev}");
        assert_close(&y.to_vec().unwrap(), &e, 1e-4, 1e-4, &what);
        // Running statistics: 0.9 * (0, 1) + 0.1 * (batch mean, unbiased batch variance).
        let count = shape[0] * inner;
        let per_channel = |f: &dyn Fn(&[f64]) -> f64| -> Vec<f32> {
            let xv = x.to_vec().unwrap();
            (0..c)
                .map(|ch| {
                    let v: Vec<f64> = (0..xv.len())
                        .filter(|k| (k / inner) % c == ch)
                        .map(|k| xv[k] as f64)
                        .collect();
                    f(&v) as f32
                })
                .collect()
        };
        let mean = per_channel(&|v| v.iter().sum::<f64>() / v.len() as f64);
        let uvar = per_channel(&|v| {
            let m = v.iter().sum::<f64>() / v.len() as f64;
            v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (count - 1) as f64
        });
        let em: Vec<f32> = mean.iter().map(|m| 0.1 * m).collect();
        let ev: Vec<f32> = uvar.iter().map(|v| 0.9 + 0.1 * v).collect();
        assert_close(
            &stats.mean.to_vec().unwrap(),
            &em,
            1e-5,
            1e-4,
            "running mean",
        );
        assert_close(&stats.var.to_vec().unwrap(), &ev, 1e-5, 1e-4, "running var");
        // Evaluation uses the running statistics.
        let eval = BatchNormOptions {
            training: false,
            ..opts
        };
        let y = d(&x)
            .batch_norm(Some(&mut stats), None, None, &eval)
            .unwrap();
        let (rm, rv) = (stats.mean.to_vec().unwrap(), stats.var.to_vec().unwrap());
        let e: Vec<f32> = x
            .to_vec()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(k, v)| {
                let ch = (k / inner) % c;
                (v - rm[ch]) / (rv[ch] + 1e-5).sqrt()
            })
            .collect();
        assert_close(&y.to_vec().unwrap(), &e, 1e-4, 1e-4, "batch_norm eval");
    }
}

fn batch_norm_gradients(dev: &Device) {
    let x = normal(&[4, 3, 2, 3], 260);
    let w = normal(&[3], 261);
    let b = normal(&[3], 262);
    let train = BatchNormOptions::default();
    check_grad(
        dev,
        &[&x, &w, &b],
        |t| t[0].batch_norm(None, Some(&t[1]), Some(&t[2]), &train),
        "batch_norm 2d",
    );
    let x1 = normal(&[6, 4], 263);
    check_grad(
        dev,
        &[&x1],
        |t| t[0].batch_norm(None, None, None, &train),
        "batch_norm 1d",
    );
    // Evaluation: an affine map of x with the running statistics as constants.
    let eval = BatchNormOptions {
        training: false,
        ..train
    };
    check_grad(
        dev,
        &[&x, &w, &b],
        |t| {
            let d = t[0].device();
            let mut stats = RunningStats {
                mean: Tensor::from_vec(vec![0.1, -0.2, 0.3], &[3], d)?,
                var: Tensor::from_vec(vec![0.5, 1.5, 2.0], &[3], d)?,
            };
            t[0].batch_norm(Some(&mut stats), Some(&t[1]), Some(&t[2]), &eval)
        },
        "batch_norm eval",
    );
}

fn layer_norm_forward_and_grad(dev: &Device) {
    let x = normal(&[3, 4, 5], 270);
    let w = normal(&[4, 5], 271);
    let b = normal(&[4, 5], 272);
    let y = x
        .to_device(dev)
        .unwrap()
        .layer_norm(&[4, 5], None, None, 1e-5)
        .unwrap();
    let e = norm_ref(&x.to_vec().unwrap(), 1, 3, 20, 1e-5);
    assert_close(&y.to_vec().unwrap(), &e, 1e-4, 1e-4, "layer_norm");
    check_grad(
        dev,
        &[&x, &w, &b],
        |t| t[0].layer_norm(&[4, 5], Some(&t[1]), Some(&t[2]), 1e-5),
        "layer_norm 2 axes",
    );
    let (w1, b1) = (normal(&[5], 273), normal(&[5], 274));
    check_grad(
        dev,
        &[&x, &w1, &b1],
        |t| t[0].layer_norm(&[5], Some(&t[1]), Some(&t[2]), 1e-5),
        "layer_norm last axis",
    );
    // a row longer than a workgroup, a non-contiguous input
    let long = normal(&[2, 131], 275);
    check_grad(
        dev,
        &[&long],
        |t| t[0].layer_norm(&[131], None, None, 1e-5),
        "long rows",
    );
    check_grad(
        dev,
        &[&x],
        |t| t[0].transpose(0, 2)?.layer_norm(&[3], None, None, 1e-5),
        "view",
    );
}

fn norm_errors(dev: &Device) {
    let x = Tensor::zeros(&[4, 3, 5], dev).unwrap();
    let bn = BatchNormOptions::default();
    let msg = |r: ferrograd::Result<Tensor>| r.unwrap_err().to_string();
    let w4 = Tensor::zeros(&[4], dev).unwrap();
    let m = msg(x.batch_norm(None, Some(&w4), None, &bn));
    assert!(
        m.contains("batch_norm") && m.contains("[3] and [4]") && m.contains("weight"),
        "{m}"
    );
    let m = msg(Tensor::zeros(&[1, 3], dev)
        .unwrap()
        .batch_norm(None, None, None, &bn));
    assert!(m.contains("more than one value per channel"), "{m}");
    let m = msg(x.batch_norm(
        None,
        None,
        None,
        &BatchNormOptions {
            momentum: 2.0,
            ..bn
        },
    ));
    assert!(m.contains("momentum 2"), "{m}");
    let mut bad = RunningStats::new(5, dev).unwrap();
    let m = msg(x.batch_norm(Some(&mut bad), None, None, &bn));
    assert!(m.contains("running mean"), "{m}");
    let m = msg(Tensor::zeros(&[4], dev)
        .unwrap()
        .batch_norm(None, None, None, &bn));
    assert!(m.contains("[N, C, ..]"), "{m}");
    let m = msg(x.layer_norm(&[3], None, None, 1e-5));
    assert!(m.contains("layer_norm") && m.contains("trailing"), "{m}");
    let m = msg(x.layer_norm(&[5], Some(&w4), None, 1e-5));
    assert!(m.contains("[5] and [4]"), "{m}");
    let m = msg(x.dropout(1.5, true));
    assert!(m.contains("dropout") && m.contains("1.5"), "{m}");
}

fn dropout(dev: &Device) {
    let x = Tensor::ones(&[1000], dev).unwrap();
    let y = x.dropout_with(0.25, true, &mut Generator::new(7)).unwrap();
    let v = y.to_vec().unwrap();
    // Kept values are scaled by 1 / (1 - p); about a quarter are dropped.
    assert!(v.iter().all(|&e| e == 0.0 || e == 1.0 / 0.75));
    let dropped = v.iter().filter(|&&e| e == 0.0).count();
    assert!(
        (200..300).contains(&dropped),
        "dropped {dropped} of 1000 at p = 0.25"
    );
    // The same seed gives the same mask on every device.
    let cpu = Tensor::ones(&[1000], &Device::cpu())
        .unwrap()
        .dropout_with(0.25, true, &mut Generator::new(7))
        .unwrap();
    assert_eq!(
        v,
        cpu.to_vec().unwrap(),
        "mask differs between {dev} and cpu"
    );
    // A different seed, a different mask.
    let other = x.dropout_with(0.25, true, &mut Generator::new(8)).unwrap();
    assert_ne!(v, other.to_vec().unwrap());
    // Evaluation and p = 0 are the identity; p = 1 drops everything.
    let mut gen = Generator::new(9);
    assert!(x
        .dropout_with(0.5, false, &mut gen)
        .unwrap()
        .same_storage(&x));
    let keep_all = x.dropout_with(0.0, true, &mut gen).unwrap();
    assert_eq!(keep_all.to_vec().unwrap(), vec![1.0; 1000]);
    let drop_all = x.dropout_with(1.0, true, &mut gen).unwrap();
    assert_eq!(drop_all.to_vec().unwrap(), vec![0.0; 1000]);
    // The gradient is the mask: checked with a fresh generator of one seed per call.
    let xs = normal(&[3, 7], 280);
    check_grad(
        dev,
        &[&xs],
        |t| t[0].dropout_with(0.3, true, &mut Generator::new(11)),
        "dropout",
    );
}

/// The global generator: `manual_seed` makes `dropout` repeatable, on both devices alike. One
/// test, not a CPU/GPU pair: the pair would run in parallel and race on the global generator
/// (nothing else in this file draws from it).
#[test]
fn dropout_follows_manual_seed() {
    let mut devices = vec![Device::cpu()];
    devices.extend(common::gpu());
    let masks: Vec<Vec<f32>> = devices
        .iter()
        .flat_map(|d| {
            let x = Tensor::ones(&[257], d).unwrap();
            [3, 3].map(|seed| {
                ferrograd::manual_seed(seed);
                x.dropout(0.5, true).unwrap().to_vec().unwrap()
            })
        })
        .collect();
    assert!(
        masks.iter().all(|m| m == &masks[0]),
        "manual_seed(3) gave different masks"
    );
    assert!(masks[0].contains(&0.0) && masks[0].contains(&2.0));
}

device_tests!(
    max_pool_nan_and_infinities,
    max_pool_wide_rows,
    pooling_forward,
    pooling_gradients,
    golden_max_pool,
    pooling_errors,
    batch_norm_forward,
    batch_norm_gradients,
    layer_norm_forward_and_grad,
    norm_errors,
    dropout,
);
