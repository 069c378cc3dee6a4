//! cumsum, cumprod and prod on both devices: values against closed forms (and PyTorch's
//! conventions: an empty product is 1, zeros keep exact gradients), gradcheck along each
//! axis of a 3-D tensor and through views, awkward sizes against the CPU (0, 1, primes, a
//! long line, more lines than 65,535 workgroups hold), halves, and errors.

mod common;

use common::{assert_close, check_grad, normal, uniform};
use ferrograd::{DType, Device, Tensor};

fn values(dev: &Device) {
    let x = Tensor::new([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dev).unwrap();
    let v = |t: ferrograd::Result<Tensor>| t.unwrap().to_vec().unwrap();
    assert_eq!(v(x.cumsum(1)), [1.0, 3.0, 6.0, 4.0, 9.0, 15.0]);
    assert_eq!(v(x.cumsum(-2)), [1.0, 2.0, 3.0, 5.0, 7.0, 9.0]);
    assert_eq!(v(x.cumprod(1)), [1.0, 2.0, 6.0, 4.0, 20.0, 120.0]);
    assert_eq!(v(x.prod(1, false)), [6.0, 120.0]);
    assert_eq!(x.prod(0, true).unwrap().shape(), &[1, 3]);
    assert_eq!(v(x.prod(0, true)), [4.0, 10.0, 18.0]);
    assert_eq!(x.prod_all().unwrap().item().unwrap(), 720.0);
    // Through a view: the transpose's rows are x's columns.
    assert_eq!(v(x.t().unwrap().cumsum(1)), [1.0, 5.0, 2.0, 7.0, 3.0, 9.0]);
    // Empty: an empty product is 1; cumsum of nothing is nothing. 0-D: itself.
    let e = Tensor::zeros(&[2, 0], dev).unwrap();
    assert_eq!(v(e.prod(1, false)), [1.0, 1.0]);
    assert_eq!(e.cumsum(1).unwrap().shape(), &[2, 0]);
    let s = Tensor::new(3.0, dev).unwrap();
    assert_eq!(s.cumsum(0).unwrap().item().unwrap(), 3.0);
    assert_eq!(s.prod(0, false).unwrap().shape(), &[] as &[usize]);
    // Zeros: the gradient of a product at its zero is the product of the others.
    let z = Tensor::new([2.0, 0.0, 3.0, 0.5], dev)
        .unwrap()
        .requires_grad();
    let g = z.prod_all().unwrap().backward().unwrap();
    assert_eq!(v(Ok(g.get(&z).unwrap().clone())), [0.0, 3.0, 0.0, 0.0]);
    let c = z.cumprod(0).unwrap();
    assert_eq!(v(Ok(c.clone())), [2.0, 0.0, 0.0, 0.0]);
    let g = c.sum_all().unwrap().backward().unwrap();
    // d/dx_k sum_i prod_{j<=i} x_j: [1 + 0, 2 + 2·3 + 2·3·0.5, 0, 0]
    assert_eq!(v(Ok(g.get(&z).unwrap().clone())), [1.0, 11.0, 0.0, 0.0]);
    // NaN and infinities flow through as in IEEE arithmetic.
    let n = Tensor::new([1.0, f32::NAN, 2.0], dev).unwrap();
    assert!(v(n.cumsum(0))[1..].iter().all(|x| x.is_nan()));
    let i = Tensor::new([f32::INFINITY, -1.0], dev).unwrap();
    assert_eq!(v(i.cumprod(0)), [f32::INFINITY, f32::NEG_INFINITY]);
}

fn gradients(dev: &Device) {
    let x = normal(&[3, 4, 5], 1);
    for axis in 0..3 {
        let what = format!("axis {axis}");
        check_grad(dev, &[&x], |t| t[0].cumsum(axis), &format!("cumsum {what}"));
        check_grad(
            dev,
            &[&x],
            |t| t[0].cumprod(axis),
            &format!("cumprod {what}"),
        );
        check_grad(
            dev,
            &[&x],
            |t| t[0].prod(axis, false),
            &format!("prod {what}"),
        );
    }
    check_grad(dev, &[&x], |t| t[0].prod_all(), "prod_all");
    // A view with an offset, and a gradient that is itself a view (from a narrow).
    check_grad(
        dev,
        &[&x],
        |t| {
            t[0].narrow(1, 1, 2)?
                .permute(&[2, 0, 1])?
                .cumprod(2)?
                .narrow(0, 1, 3)
        },
        "cumprod of a permuted narrow",
    );
}

fn awkward_sizes(dev: &Device) {
    // (shape, axis): empty, single, primes, one long line, many lines (4.3 M elements in
    // lines of 1: more than 65,535 workgroups of 64 invocations).
    let cases: [(&[usize], usize); 9] = [
        (&[0], 0),
        (&[1], 0),
        (&[7, 13], 1),
        (&[13, 7], 0),
        (&[5, 3, 11], 1),
        (&[3, 2_053, 2], 1), // three chunks of 1,024 per line on the GPU, two lines apart
        (&[100_003], 0),
        (&[1_100_000], 0), // 1,075 chunks: their carries are scanned in chunks too
        (&[65_535 * 64 + 1000, 1], 1),
    ];
    for (i, &(shape, axis)) in cases.iter().enumerate() {
        let x = uniform(shape, 0.5, 1.5, 10 + i as u64);
        let what = format!("{shape:?} along {axis}");
        // A sum of up to 1e5 values in f32 (GPU) against f64 (CPU): a few ulps of the total.
        common::parity(
            dev,
            &[&x],
            |t| t[0].cumsum(axis as isize),
            1e-4,
            1e-5,
            &what,
        );
        if shape.iter().product::<usize>() < 1000 {
            common::parity(
                dev,
                &[&x],
                |t| t[0].cumprod(axis as isize),
                1e-6,
                1e-5,
                &what,
            );
        }
    }
    // The gradients walk lines backwards: across chunks too.
    let x = uniform(&[3, 2_053, 2], 0.9, 1.1, 5);
    let w = uniform(&[3, 2_053, 2], -1.0, 1.0, 6);
    for prod in [false, true] {
        let grad = |t: &[Tensor]| {
            let x = t[0].requires_grad();
            let y = if prod { x.cumprod(1)? } else { x.cumsum(1)? };
            let g = y.mul(&t[1])?.sum_all()?.backward()?;
            Ok(g.get(&x).expect("a gradient").clone())
        };
        let what = format!("the gradient across chunks (product: {prod})");
        common::parity(dev, &[&x, &w], grad, 1e-3, 1e-4, &what);
    }
    // Halves: computed in f32 and rounded once, the same on both devices.
    let h = uniform(&[4, 9], 0.5, 1.5, 3).to_dtype(DType::F16).unwrap();
    let hd = h.to_device(dev).unwrap();
    let y = hd.cumsum(1).unwrap();
    assert_eq!(y.dtype(), DType::F16);
    let cpu = h.cumsum(1).unwrap().to_vec().unwrap();
    assert_close(&y.to_vec().unwrap(), &cpu, 0.0, 1e-3, "f16 cumsum");
}

fn errors(dev: &Device) {
    let i = Tensor::from_vec(vec![1i32, 2, 3], &[3], dev).unwrap();
    let m = i.cumsum(0).unwrap_err().to_string();
    assert!(m.starts_with("cumsum:") && m.contains("I32"), "{m}");
    let x = Tensor::zeros(&[2, 3], dev).unwrap();
    let m = x.cumprod(2).unwrap_err().to_string();
    assert!(m.starts_with("cumprod:") && m.contains('2'), "{m}");
    let m = x.prod(-3, false).unwrap_err().to_string();
    assert!(m.starts_with("prod:"), "{m}");
    if dev.is_gpu() {
        // Past one binding: a clear error naming the op, not a crash. On a device of its own,
        // so the small limit does not reach the other tests' device.
        let own = Device::open_gpu().unwrap();
        ferrograd::set_binding_limit(&own, Some(4096));
        let big = Tensor::zeros(&[2048], &own).unwrap();
        let m = big.cumsum(0).unwrap_err().to_string();
        assert!(m.starts_with("cumsum:") && m.contains("binding"), "{m}");
    }
}

device_tests!(values, gradients, awkward_sizes, errors);
