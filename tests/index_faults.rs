//! Out-of-range indices are errors on both devices. On the GPU the kernel records a fault in a
//! slot of its own, which a readback of its output, or of anything computed from it, reports;
//! a readback of any other tensor, on any thread, does not.

mod common;
use ferrograd::{Device, Tensor};

/// An `I32` index tensor on the CPU from integral values.
fn idx(v: &[f32]) -> Tensor {
    let ints: Vec<i32> = v.iter().map(|&x| x as i32).collect();
    Tensor::from_vec(ints, &[v.len()], &Device::cpu()).unwrap()
}

fn bad_indices_are_errors(dev: &Device) {
    let normal = common::normal;
    // On the GPU the fault is found at the next readback; it is an error either way.
    let x = normal(&[3, 4], 6).to_device(dev).unwrap();
    let check = |r: ferrograd::Result<Tensor>, op: &str, index: f64| {
        let err = r
            .and_then(|t| t.to_vec().map(|_| t))
            .expect_err("an out-of-range index must fail");
        let msg = err.to_string();
        assert!(msg.starts_with(op), "{msg}");
        assert!(
            msg.contains(&format!("index {index} is out of range")),
            "{msg}"
        );
    };
    check(
        x.index_select(0, &idx(&[0.0, 3.0]).to_device(dev).unwrap()),
        "index_select",
        3.0,
    );
    check(
        x.index_select(1, &idx(&[-1.0]).to_device(dev).unwrap()),
        "index_select",
        -1.0,
    );
    check(
        x.gather(1, &Tensor::from_vec(vec![4], &[1, 1], dev).unwrap()),
        "gather",
        4.0,
    );
    check(
        idx(&[0.0, 9.0]).to_device(dev).unwrap().one_hot(4),
        "one_hot",
        9.0,
    );
    // cross_entropy's fused kernel checks its class indices the same way (axis 1: classes).
    check(
        ferrograd::nn::loss::cross_entropy(
            &x,
            &idx(&[0.0, 4.0, 1.0]).to_device(dev).unwrap(),
            ferrograd::nn::loss::Reduction::Mean,
        ),
        "cross_entropy",
        4.0,
    );
    // nll gathers, and names itself.
    check(
        ferrograd::nn::loss::nll(
            &x,
            &idx(&[0.0, 7.0, 1.0]).to_device(dev).unwrap(),
            ferrograd::nn::loss::Reduction::Mean,
        ),
        "nll",
        7.0,
    );
    // The async read reports it the same way.
    check(
        x.index_select(0, &idx(&[7.0]).to_device(dev).unwrap())
            .and_then(|t| pollster::block_on(t.to_vec_async()).map(|_| t)),
        "index_select",
        7.0,
    );
    // After the error, the device works normally.
    assert_eq!(
        x.index_select(0, &idx(&[2.0]).to_device(dev).unwrap())
            .unwrap()
            .shape(),
        &[1, 4]
    );
    dev.synchronize().unwrap();
}

/// A fault is charged to the tensor it poisoned and to what is computed from it, every time
/// they are read, and never to an unrelated tensor, even one read on another thread meanwhile.
fn faults_stay_with_their_tensor(dev: &Device) {
    let x = common::normal(&[3, 4], 7).to_device(dev).unwrap();
    let bad_index = idx(&[0.0, 9.0]).to_device(dev).unwrap();
    let good = x.exp().unwrap();
    let Ok(bad) = x.index_select(0, &bad_index) else {
        assert!(dev.is_cpu(), "the GPU reports at readback");
        return; // the CPU refuses at once: nothing can be poisoned
    };
    let derived = bad.mul_scalar(2.0).unwrap().sum_all().unwrap();
    let later = x.add(&good).unwrap(); // recorded after the fault, unrelated
    assert!(good.to_vec().is_ok(), "an unrelated tensor read first");
    assert!(later.to_vec().is_ok());
    for t in [&derived, &bad, &derived] {
        let e = t.to_vec().expect_err("poisoned").to_string();
        assert!(
            e.starts_with("index_select: index 9 is out of range"),
            "{e}"
        );
    }
    // The input's gradient scatters through the same bad index: it is charged too.
    let xg = x.requires_grad();
    let loss = xg.index_select(0, &bad_index).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    assert!(grads.get(&xg).unwrap().to_vec().is_err());
    assert!(loss.to_vec().is_err());
    // Another thread reads clean tensors while this one holds a poisoned one.
    std::thread::scope(|s| {
        let h =
            s.spawn(|| (0..20).all(|i| x.add_scalar(i as f32).and_then(|t| t.to_vec()).is_ok()));
        let poisoned = x
            .gather(
                1,
                &Tensor::full_dtype(&[3, 1], 5.0, ferrograd::DType::I32, dev).unwrap(),
            )
            .unwrap();
        assert!(poisoned.to_vec().is_err());
        assert!(h.join().unwrap(), "a clean read on another thread failed");
    });
    drop((bad, derived, loss));
    dev.synchronize().unwrap();
    // Many poisoned tensors alive at once: each errors, and only with its own fault.
    let many: Vec<Tensor> = (0..1100)
        .map(|_| x.index_select(1, &bad_index).unwrap())
        .collect();
    assert!(many.iter().step_by(97).all(|t| t.to_vec().is_err()));
    assert!(good.to_vec().is_ok());
    drop(many);
    dev.synchronize().unwrap();
    assert!(x
        .index_select(0, &idx(&[2.0]).to_device(dev).unwrap())
        .unwrap()
        .to_vec()
        .is_ok());
}

device_tests!(bad_indices_are_errors, faults_stay_with_their_tensor);
