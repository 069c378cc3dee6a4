//! Half-precision tensors (`F16`, `BF16`) on both devices: the conversions bit for bit against
//! the `half` crate (every half, and f32s chosen to round every way), creation and views, ops
//! computed through f32 against an f32 reference rounded once, promotion, gradients through
//! casts and of half leaves, and the errors.

mod common;
use common::{assert_close, check_grad, normal, parity};
use ferrograd::half::{bf16, f16};
use ferrograd::{set_binding_limit, DType, Device, Error, Generator, Tensor};

/// Every 16-bit pattern.
fn all_bits() -> Vec<u16> {
    (0..=u16::MAX).collect()
}

/// f32 bit patterns that exercise half rounding: random ones, values around the rounding
/// points of both halves (ties to even, just above and below), the f16 overflow edge and
/// subnormals, zeros, infinities and NaNs.
fn awkward_f32s() -> Vec<f32> {
    let mut g = Generator::new(7);
    let random = Tensor::rand_with(&[20_000], 0.0, 1.0, &mut g, &Device::cpu()).unwrap();
    let mut v: Vec<f32> = random
        .to_vec()
        .unwrap()
        .iter()
        .map(|&u| f32::from_bits((f64::from(u) * f64::from(u32::MAX)) as u32))
        .collect();
    for base in [1.0f32, 1.5, 3.0, 65504.0, 6.1e-5, 6.0e-8, 1e-40, 3.0e38] {
        let b = base.to_bits();
        for tail in [
            0x0fffu32, 0x1000, 0x1001, 0x2fff, 0x3000, 0x7fff, 0x8000, 0x8001, 0x18000,
        ] {
            for sign in [0, 0x8000_0000u32] {
                v.push(f32::from_bits(((b & !0x1ffff) | tail) ^ sign));
            }
        }
    }
    v.extend([
        0.0,
        -0.0,
        65519.99,
        65520.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MAX,
        f32::MIN_POSITIVE,
    ]);
    v
}

/// A half tensor's elements as bits.
fn half_bits(t: &Tensor) -> Vec<u16> {
    match t.dtype() {
        DType::F16 => t
            .to_vec_as::<f16>()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect(),
        _ => t
            .to_vec_as::<bf16>()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect(),
    }
}

/// `v` rounded to the half `dtype` by the `half` crate, as bits.
fn rounded(v: &[f32], dtype: DType) -> Vec<u16> {
    match dtype {
        DType::F16 => v.iter().map(|&f| f16::from_f32(f).to_bits()).collect(),
        _ => v.iter().map(|&f| bf16::from_f32(f).to_bits()).collect(),
    }
}

/// Bits equal, NaN payloads included.
fn same_bits(got: &[u16], want: &[u16], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(g == w, "{what}: element {i}: got {g:#06x}, want {w:#06x}");
    }
}

fn conversions_bit_exact(dev: &Device) {
    // Every f16 and bf16 widens exactly to f32.
    let h: Vec<f16> = all_bits().into_iter().map(f16::from_bits).collect();
    let t = Tensor::from_vec(h.clone(), &[h.len()], dev).unwrap();
    assert_eq!(t.dtype(), DType::F16);
    // Every pattern comes back as it went in, whole and from a view at an odd element.
    same_bits(&half_bits(&t), &all_bits(), "f16 round trip");
    let odd = half_bits(&t.narrow(0, 1, h.len() - 2).unwrap());
    same_bits(&odd, &all_bits()[1..h.len() - 1], "f16 view round trip");
    let wide = t.to_dtype(DType::F32).unwrap().to_vec().unwrap();
    for (x, w) in h.iter().zip(&wide) {
        assert!(
            x.to_f32().to_bits() == w.to_bits(),
            "f16 {:#06x} widened to {w}",
            x.to_bits()
        );
    }
    let b: Vec<bf16> = all_bits().into_iter().map(bf16::from_bits).collect();
    let t = Tensor::from_vec(b.clone(), &[b.len()], dev).unwrap();
    let wide = t.to_dtype(DType::F32).unwrap().to_vec().unwrap();
    for (x, w) in b.iter().zip(&wide) {
        assert!(
            x.to_f32().to_bits() == w.to_bits(),
            "bf16 {:#06x} widened to {w}",
            x.to_bits()
        );
    }
    // f32 -> half rounds to nearest even, as the half crate, at odd and even lengths.
    for n in [1, 2, 3, 4099] {
        let v: Vec<f32> = awkward_f32s().into_iter().rev().take(n).collect();
        let x = Tensor::from_vec(v.clone(), &[n], dev).unwrap();
        for dtype in [DType::F16, DType::BF16] {
            let got = half_bits(&x.to_dtype(dtype).unwrap());
            same_bits(
                &got,
                &rounded(&v, dtype),
                &format!("f32 -> {dtype}, n = {n}"),
            );
        }
    }
    let v = awkward_f32s();
    let x = Tensor::from_vec(v.clone(), &[v.len()], dev).unwrap();
    // Through a view at an odd element: the strided cast kernel, not the whole-buffer one.
    let view = x.narrow(0, 1, v.len() - 1).unwrap();
    for dtype in [DType::F16, DType::BF16] {
        let h = view.to_dtype(dtype).unwrap();
        same_bits(
            &half_bits(&h),
            &rounded(&v[1..], dtype),
            "strided f32 -> half",
        );
        // And back from a half view at an odd element (the strided kernel reading halves).
        let odd = h.narrow(0, 1, h.numel() - 1).unwrap();
        let back = odd.to_dtype(DType::F32).unwrap().to_vec().unwrap();
        let want_back: Vec<u32> = h.to_vec().unwrap()[1..]
            .iter()
            .map(|x| x.to_bits())
            .collect();
        assert_eq!(
            back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            want_back
        );
    }
    let got = half_bits(&x.to_dtype(DType::F16).unwrap());
    same_bits(&got, &rounded(&v, DType::F16), "f32 -> f16");
    // Between the halves and to the other dtypes, through f32.
    let hb = t.to_dtype(DType::F16).unwrap().to_vec_as::<f16>().unwrap();
    let want: Vec<f16> = b.iter().map(|x| f16::from_f32(x.to_f32())).collect();
    same_bits(
        &hb.iter().map(|h| h.to_bits()).collect::<Vec<_>>(),
        &want.iter().map(|h| h.to_bits()).collect::<Vec<_>>(),
        "bf16 -> f16",
    );
    let s = Tensor::from_vec(
        [-2.75f32, -0.5, 0.0, 1.5, 70000.0]
            .map(f16::from_f32)
            .to_vec(),
        &[5],
        dev,
    )
    .unwrap();
    assert_eq!(
        s.to_dtype(DType::I32).unwrap().to_vec_as::<i32>().unwrap(),
        vec![-2, 0, 0, 1, i32::MAX] // 70000 overflows f16: +inf saturates
    );
    assert_eq!(
        s.to_dtype(DType::Bool)
            .unwrap()
            .to_vec_as::<bool>()
            .unwrap(),
        vec![true, true, false, true, true]
    );
    let i = Tensor::from_vec(vec![3, -7, 65_536], &[3], dev).unwrap();
    assert_eq!(
        i.to_dtype(DType::BF16).unwrap().to_vec().unwrap(),
        vec![3.0, -7.0, 65_536.0]
    );
}

/// The casts over tensors larger than one binding (a small limit makes them so).
fn conversions_in_pieces(dev: &Device) {
    if !dev.is_gpu() {
        return; // the CPU has no bindings; its casts are the reference above
    }
    let v: Vec<f32> = awkward_f32s().into_iter().take(10_001).collect();
    let x = Tensor::from_vec(v.clone(), &[v.len()], dev).unwrap();
    set_binding_limit(dev, Some(4096));
    let h = x.to_dtype(DType::F16).unwrap();
    let back = h.to_dtype(DType::F32).unwrap();
    let got = h.to_vec_as::<f16>();
    // An op on halves past one binding (widened, computed, narrowed in pieces).
    let tail = h.narrow(0, 1, 10_000).unwrap(); // a view starting at an odd element
    let sum = tail.add(&tail).and_then(|t| t.to_vec());
    set_binding_limit(dev, None);
    let want = rounded(&v, DType::F16);
    let got: Vec<u16> = got.unwrap().iter().map(|h| h.to_bits()).collect();
    same_bits(&got, &want, "f32 -> f16 in pieces");
    let want_sum: Vec<f32> = want[1..]
        .iter()
        .map(|&w| f16::from_f32(2.0 * f16::from_bits(w).to_f32()).to_f32())
        .collect();
    assert_close(&sum.unwrap(), &want_sum, 0.0, 0.0, "f16 add in pieces");
    let back = back.to_vec().unwrap();
    for (w, b) in want.iter().zip(&back) {
        let e = f16::from_bits(*w).to_f32();
        assert!(
            e.to_bits() == b.to_bits() || (e.is_nan() && b.is_nan()),
            "{e} vs {b}"
        );
    }
}

fn creation_and_views(dev: &Device) {
    let h = Tensor::from_vec([1.5f32, -2.0, 0.1].map(f16::from_f32).to_vec(), &[3], dev).unwrap();
    assert_eq!(h.dtype(), DType::F16);
    assert_eq!(
        h.to_vec().unwrap(),
        vec![1.5, -2.0, f16::from_f32(0.1).to_f32()]
    );
    for dtype in [DType::F16, DType::BF16] {
        let f = Tensor::full_dtype(&[5], 0.1, dtype, dev).unwrap();
        let want = match dtype {
            DType::F16 => f16::from_f32(0.1).to_f32(),
            _ => bf16::from_f32(0.1).to_f32(),
        };
        assert_eq!(f.to_vec().unwrap(), vec![want; 5], "{dtype} full");
        assert_eq!(
            Tensor::ones_dtype(&[3], dtype, dev)
                .unwrap()
                .to_vec()
                .unwrap(),
            vec![1.0; 3]
        );
        let m = Tensor::arange(0.0, 15.0, 1.0, dev)
            .unwrap()
            .reshape(&[3, 5])
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        assert_eq!(m.dtype(), dtype);
        // A transposed view, a narrowed one (starting at an odd element), a cat, a gather.
        let t = m.t().unwrap().contiguous().unwrap();
        assert_eq!(t.dtype(), dtype);
        assert_eq!(t.to_vec().unwrap()[..4], [0.0, 5.0, 10.0, 1.0]);
        let n = m.narrow(1, 1, 3).unwrap();
        assert_eq!(
            n.to_vec().unwrap(),
            vec![1.0, 2.0, 3.0, 6.0, 7.0, 8.0, 11.0, 12.0, 13.0]
        );
        let c = Tensor::cat(&[&m, &n], 1).unwrap();
        assert_eq!((c.dtype(), c.shape()), (dtype, &[3, 8][..]));
        assert_eq!(c.to_vec().unwrap()[5..8], [1.0, 2.0, 3.0]);
        let idx = Tensor::from_vec(vec![2, 0], &[2], dev).unwrap();
        let rows = m.index_select(0, &idx).unwrap();
        assert_eq!(rows.dtype(), dtype);
        assert_eq!(
            rows.to_vec().unwrap()[..6],
            [10.0, 11.0, 12.0, 13.0, 14.0, 0.0]
        );
        let moved = m.to_device(&Device::cpu()).unwrap();
        assert_eq!(
            (moved.dtype(), moved.to_vec().unwrap()),
            (dtype, m.to_vec().unwrap())
        );
        assert!(format!("{m}").contains(&format!("dtype={dtype}")), "{m}");
        let r = Tensor::rand_dtype(&[300], dtype, dev).unwrap();
        assert_eq!(r.dtype(), dtype);
        let v = r.to_vec().unwrap();
        assert!(v.iter().all(|x| (0.0..=1.0).contains(x)), "{dtype} rand");
        let n = Tensor::randn_dtype(&[300], dtype, dev)
            .unwrap()
            .to_vec()
            .unwrap();
        assert!(
            n.iter().any(|&x| x < -0.5) && n.iter().any(|&x| x > 0.5),
            "{dtype} randn"
        );
    }
    let e = Tensor::rand_dtype(&[2], DType::I32, dev)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("rand_dtype: expects F32, F16 or BF16, got I32"),
        "{e}"
    );
}

/// `f` on half inputs against the f32 result on the same (rounded) values, rounded once:
/// within two units in the last place of the half.
fn through_f32(dev: &Device) {
    let x = normal(&[7, 13], 1);
    let w = normal(&[13, 5], 2);
    let img = normal(&[2, 3, 6, 5], 3);
    let k = normal(&[4, 3, 3, 3], 4);
    type Op = fn(&[Tensor]) -> ferrograd::Result<Tensor>;
    let ops: [(&str, Op); 9] = [
        ("add", |t| t[0].add(&t[0].exp()?)),
        ("mul_scalar", |t| t[0].mul_scalar(0.3)),
        ("tanh", |t| t[0].tanh()),
        ("matmul", |t| t[0].matmul(&t[1])),
        ("sum", |t| t[0].sum(1, false)),
        ("softmax", |t| t[0].softmax(1)),
        ("max", |t| t[0].max(0, true)),
        ("conv2d", |t| t[2].conv2d(&t[3], None, &Default::default())),
        ("layer_norm", |t| t[0].layer_norm(&[13], None, None, 1e-5)),
    ];
    for dtype in [DType::F16, DType::BF16] {
        let ulp = if dtype == DType::F16 {
            2f32.powi(-10)
        } else {
            2f32.powi(-7)
        };
        let halves: Vec<Tensor> = [&x, &w, &img, &k]
            .iter()
            .map(|t| t.to_dtype(dtype).unwrap())
            .collect();
        for (name, f) in ops {
            let wide: Vec<Tensor> = halves
                .iter()
                .map(|t| t.to_dtype(DType::F32).unwrap())
                .collect();
            let want = f(&wide).unwrap().to_dtype(dtype).unwrap();
            let on_dev: Vec<Tensor> = halves.iter().map(|t| t.to_device(dev).unwrap()).collect();
            let got = f(&on_dev).unwrap_or_else(|e| panic!("{name} {dtype}: {e}"));
            assert_eq!(got.dtype(), dtype, "{name}: a half op gives a half");
            assert_close(
                &got.to_vec().unwrap(),
                &want.to_vec().unwrap(),
                1e-3,
                2.0 * ulp,
                &format!("{name} {dtype} on {dev}"),
            );
        }
        parity(
            dev,
            &[&halves[0]],
            |t| t[0].relu()?.mean_all(),
            1e-3,
            2.0 * ulp,
            "mean",
        );
    }
}

/// Elementwise ops on halves at awkward sizes and through a transposed view, against the f32
/// result rounded once.
fn elementwise_sizes(dev: &Device) {
    for dtype in [DType::F16, DType::BF16] {
        let ulp = if dtype == DType::F16 {
            2f32.powi(-10)
        } else {
            2f32.powi(-7)
        };
        for n in [0usize, 1, 131, 4099] {
            let a = normal(&[n], 11).to_dtype(dtype).unwrap();
            let b = normal(&[n], 12).to_dtype(dtype).unwrap();
            let f = |a: &Tensor, b: &Tensor| -> Tensor {
                let m = a.gt(b).unwrap();
                let s = a
                    .mul(b)
                    .unwrap()
                    .sigmoid()
                    .unwrap()
                    .add_scalar(0.5)
                    .unwrap();
                Tensor::where_(&m, &s, &a.relu().unwrap()).unwrap()
            };
            let wide = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
            let want = f(&wide(&a), &wide(&b)).to_dtype(dtype).unwrap();
            let got = f(&a.to_device(dev).unwrap(), &b.to_device(dev).unwrap());
            assert_eq!(got.dtype(), dtype);
            let what = format!("{dtype} n={n} on {dev}");
            assert_close(
                &got.to_vec().unwrap(),
                &want.to_vec().unwrap(),
                0.0,
                ulp,
                &what,
            );
        }
        let m = normal(&[13, 7], 13).to_dtype(dtype).unwrap();
        let t = m.to_device(dev).unwrap().t().unwrap().exp().unwrap();
        let want = m.to_dtype(DType::F32).unwrap().t().unwrap().exp().unwrap();
        let want = want.to_dtype(dtype).unwrap().to_vec().unwrap();
        assert_close(
            &t.to_vec().unwrap(),
            &want,
            0.0,
            ulp,
            "exp of a transposed half",
        );
    }
}

fn promotion(dev: &Device) {
    let h = Tensor::ones_dtype(&[2], DType::F16, dev).unwrap();
    let b = Tensor::ones_dtype(&[2], DType::BF16, dev).unwrap();
    let f = Tensor::ones(&[2], dev).unwrap();
    let i = Tensor::from_vec(vec![2, 3], &[2], dev).unwrap();
    assert_eq!(h.add(&f).unwrap().dtype(), DType::F32);
    assert_eq!(h.add(&b).unwrap().dtype(), DType::F32);
    let hi = h.mul(&i).unwrap();
    assert_eq!(
        (hi.dtype(), hi.to_vec().unwrap()),
        (DType::F16, vec![2.0, 3.0])
    );
    assert_eq!(b.mul_scalar(2.0).unwrap().dtype(), DType::BF16);
    // A 0-dim operand does not promote a dimensioned one of its category (as PyTorch).
    let two = Tensor::scalar(2.0, dev).unwrap();
    assert_eq!(h.mul(&two).unwrap().dtype(), DType::F16);
    assert_eq!(two.mul(&b).unwrap().dtype(), DType::BF16);
    assert_eq!(i.mul(&two).unwrap().dtype(), DType::F32); // another category: it promotes
    let h0 = Tensor::scalar(1.0, dev)
        .unwrap()
        .to_dtype(DType::F16)
        .unwrap();
    assert_eq!(h0.add(&f).unwrap().dtype(), DType::F32);
    let cmp = h.lt(&i.to_dtype(DType::F16).unwrap()).unwrap();
    assert_eq!(cmp.to_vec_as::<bool>().unwrap(), vec![true, true]);
    assert_eq!(
        hi.argmax(0, false).unwrap().to_vec_as::<i32>().unwrap(),
        vec![1]
    );
    let w = Tensor::where_(&cmp, &h, &hi).unwrap();
    assert_eq!(w.dtype(), DType::F16);
    let d = h.dropout_with(0.5, true, &mut Generator::new(3)).unwrap();
    assert_eq!(d.dtype(), DType::F16);
}

fn gradients(dev: &Device) {
    // Through a cast: d/dx sum(f16(x)^2) = 2 f16(x), as an F32 gradient for the F32 input.
    let x = normal(&[9], 5).to_device(dev).unwrap().requires_grad();
    let loss = x
        .to_dtype(DType::F16)
        .unwrap()
        .square()
        .unwrap()
        .sum_all()
        .unwrap();
    assert_eq!(loss.dtype(), DType::F16);
    let grads = loss.backward().unwrap();
    let g = grads.get(&x).unwrap();
    assert_eq!(g.dtype(), DType::F32);
    let want: Vec<f32> = x
        .to_vec()
        .unwrap()
        .iter()
        .map(|&v| f16::from_f32(2.0 * f16::from_f32(v).to_f32()).to_f32())
        .collect();
    assert_close(
        &g.to_vec().unwrap(),
        &want,
        0.0,
        1e-3,
        "grad through a cast",
    );
    // A half leaf gets a half gradient.
    for dtype in [DType::F16, DType::BF16] {
        let w = normal(&[4, 3], 6)
            .to_dtype(dtype)
            .unwrap()
            .to_device(dev)
            .unwrap()
            .requires_grad();
        let a = normal(&[5, 4], 7)
            .to_dtype(dtype)
            .unwrap()
            .to_device(dev)
            .unwrap();
        let loss = a.matmul(&w).unwrap().relu().unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let g = grads.get(&w).unwrap();
        assert_eq!(g.dtype(), dtype);
        let (a32, w32) = (
            a.to_dtype(DType::F32).unwrap(),
            w.to_dtype(DType::F32).unwrap().requires_grad(),
        );
        let l32 = a32.matmul(&w32).unwrap().relu().unwrap().sum_all().unwrap();
        let want = l32.backward().unwrap().get(&w32).unwrap().to_vec().unwrap();
        let tol = if dtype == DType::F16 { 2e-3 } else { 1.6e-2 };
        assert_close(&g.to_vec().unwrap(), &want, tol, tol, "half leaf gradient");
    }
    // to_dtype's rule against finite differences (gradcheck runs in f64).
    check_grad(
        dev,
        &[&normal(&[6], 8)],
        |t| t[0].to_dtype(DType::F16)?.mul(&t[0]),
        "to_dtype",
    );
}

/// The backward passes of the families that run through F32 (conv, pooling, norms, softmax,
/// cross entropy, gathers, matmul): half gradients against the f32 gradients at the same
/// (rounded) point, within the half's precision, on both devices.
fn half_gradients_match_f32(dev: &Device) {
    use ferrograd::nn::loss::{cross_entropy, Reduction};
    use ferrograd::Pool2dOptions;
    let img = normal(&[2, 3, 6, 6], 21);
    let k = normal(&[4, 3, 3, 3], 22).mul_scalar(0.3).unwrap();
    let labels = Tensor::from_vec(vec![1, 3], &[2], &Device::cpu()).unwrap();
    let idx = Tensor::from_vec(vec![2, 0, 2], &[3], &Device::cpu()).unwrap();
    let f = |t: &[Tensor], labels: &Tensor, idx: &Tensor| -> ferrograd::Result<Tensor> {
        let y = t[0].conv2d(&t[1], None, &ferrograd::Conv2dOptions::new().padding(1))?;
        let y = y.max_pool2d(&Pool2dOptions::new(2))?.relu()?; // [2, 4, 3, 3]
        let y = y.reshape(&[2, 36])?.layer_norm(&[36], None, None, 1e-5)?;
        let z = y.index_select(1, idx)?.softmax(1)?.sum(1, true)?; // [2, 1]
        let logits = y.narrow(1, 0, 4)?.mul(&z)?.to_dtype(DType::F32)?;
        cross_entropy(&logits, labels, Reduction::Mean)
    };
    for dtype in [DType::F16, DType::BF16] {
        // Relative to the gradient's norm: a half rounds each op's result (about 2^-11 and
        // 2^-8 relative), and those errors add up through the chain.
        let tol = if dtype == DType::F16 { 5e-3 } else { 3e-2 };
        let grads = |d: DType, dev: &Device| -> Vec<Vec<f32>> {
            let vars: Vec<Tensor> = [&img, &k]
                .iter()
                .map(|t| t.to_dtype(dtype).unwrap().to_dtype(d).unwrap())
                .map(|t| t.to_device(dev).unwrap().requires_grad())
                .collect();
            let (l, i) = (labels.to_device(dev).unwrap(), idx.to_device(dev).unwrap());
            let g = f(&vars, &l, &i).unwrap().backward().unwrap();
            vars.iter()
                .map(|v| {
                    let g = g.get(v).unwrap();
                    assert_eq!(g.dtype(), d);
                    g.to_vec().unwrap()
                })
                .collect()
        };
        let want = grads(DType::F32, &Device::cpu());
        for (g, w) in grads(dtype, dev).iter().zip(&want) {
            let norm = |v: &mut dyn Iterator<Item = f32>| v.map(|x| x * x).sum::<f32>().sqrt();
            let err = norm(&mut g.iter().zip(w).map(|(a, b)| a - b));
            let scale = norm(&mut w.iter().copied());
            assert!(scale > 1e-3, "a gradient of norm {scale} tests nothing");
            assert!(
                err <= tol * scale,
                "{dtype} on {dev}: |g - g32| = {err}, |g32| = {scale}"
            );
        }
    }
}

fn errors(dev: &Device) {
    let h = Tensor::ones_dtype(&[2, 2], DType::F16, dev).unwrap();
    let f = Tensor::ones(&[2, 2], dev).unwrap();
    let e = h.matmul(&f).unwrap_err();
    assert!(matches!(&e, Error::DType { .. }), "{e}");
    assert!(
        e.to_string().contains("F16") && e.to_string().contains("F32"),
        "{e}"
    );
    // A half product with an F32 bias is refused too (no silent promotion inside the kernel).
    let bias = Tensor::zeros(&[2], dev).unwrap();
    let e = h
        .linear(&h, Some(&bias), ferrograd::Activation::Identity)
        .unwrap_err();
    assert!(matches!(&e, Error::DType { .. }), "{e}");
    let e = f.to_vec_as::<f16>().unwrap_err().to_string();
    assert!(e.contains("got F32 and F16"), "{e}");
    let i = Tensor::from_vec(vec![0], &[1], dev).unwrap();
    let e = h
        .index_select(0, &i.to_dtype(DType::F16).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("expects I32 indices, got F16"), "{e}");
}

/// Conv and pooling on a half batch large enough to run in pieces of a few images
/// (`storage/half.rs`: past 16 MiB of f32 on the CPU; on the GPU, under a small binding
/// limit): an odd batch, and outputs of an odd size per image, so pieces end on half words
/// and the last is short. Against the op on the widened batch, rounded once.
fn per_image_ops_in_pieces(dev: &Device) {
    if dev.is_gpu() {
        set_binding_limit(dev, Some(256 << 10));
    }
    // Images, and channels to pool: one image must fit the small binding on the GPU.
    match dev.is_gpu() {
        true => in_pieces(dev, 9, 3),
        false => in_pieces(dev, 121, 23),
    }
    set_binding_limit(dev, None);
}

fn in_pieces(dev: &Device, n: usize, c: usize) {
    let img = normal(&[n, 2, 37, 41], 5);
    let k = normal(&[23, 2, 3, 3], 6);
    let bias = normal(&[23], 7);
    let features = normal(&[n, c, 37, 41], 8);
    let pool = ferrograd::Pool2dOptions::new(2);
    type Op = fn(&[Tensor]) -> ferrograd::Result<Tensor>;
    let ops: [(&str, Op); 4] = [
        ("conv2d", |t| {
            let o = ferrograd::Conv2dOptions::new().padding(1);
            t[0].conv2d(&t[1], Some(&t[2]), &o)?.relu()
        }),
        ("max_pool2d", |t| {
            t[3].max_pool2d(&ferrograd::Pool2dOptions::new(2))
        }),
        ("avg_pool2d", |t| {
            t[3].avg_pool2d(&ferrograd::Pool2dOptions::new(2))
        }),
        ("max_pool2d without grad", |t| {
            ferrograd::no_grad(|| t[3].max_pool2d(&ferrograd::Pool2dOptions::new(3)))
        }),
    ];
    for dtype in [DType::F16, DType::BF16] {
        let ulp = 2f32.powi(if dtype == DType::F16 { -10 } else { -7 });
        let halves: Vec<Tensor> = [&img, &k, &bias, &features]
            .iter()
            .map(|t| t.to_dtype(dtype).unwrap().to_device(dev).unwrap())
            .collect();
        let wide: Vec<Tensor> = halves
            .iter()
            .map(|t| t.to_dtype(DType::F32).unwrap())
            .collect();
        for (name, f) in ops {
            let want = f(&wide).unwrap().to_dtype(dtype).unwrap();
            let got = f(&halves).unwrap_or_else(|e| panic!("{name} {dtype}: {e}"));
            assert_eq!(got.dtype(), dtype);
            assert_eq!(got.shape(), want.shape());
            assert_close(
                &got.to_vec().unwrap(),
                &want.to_vec().unwrap(),
                1e-3,
                2.0 * ulp,
                &format!("{name} {dtype} in pieces on {dev}"),
            );
        }
        // The arg-max comes through the pieces too: the gradient of max pooling.
        let x = halves[3].to_dtype(DType::F32).unwrap().requires_grad();
        let h = x.to_dtype(dtype).unwrap();
        let (y, idx) = h.max_pool2d_with_indices(&pool).unwrap();
        let (_, want_idx) = wide[3].max_pool2d_with_indices(&pool).unwrap();
        assert_eq!(idx.to_vec().unwrap(), want_idx.to_vec().unwrap(), "{dtype}");
        let g = y
            .to_dtype(DType::F32)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let dx = g.get(&x).unwrap().to_vec().unwrap();
        assert_eq!(
            dx.iter().filter(|&&v| v == 1.0).count(),
            y.numel(),
            "{dtype}"
        );
        assert_eq!(
            dx.iter().filter(|&&v| v == 0.0).count(),
            x.numel() - y.numel()
        );
    }
}

device_tests!(
    conversions_bit_exact,
    conversions_in_pieces,
    creation_and_views,
    through_f32,
    elementwise_sizes,
    promotion,
    gradients,
    half_gradients_match_f32,
    per_image_ops_in_pieces,
    errors
);
