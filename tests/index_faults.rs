//! Out-of-range indices are errors on both devices. On the GPU the kernel records a fault
//! that the next readback or `synchronize` on the device reports, from whichever thread reads:
//! so this test has a binary of its own, where no other test shares the device.

mod common;
use ferrograd::{Device, Tensor};

fn idx(v: &[f32]) -> Tensor {
    Tensor::from_slice(v, &[v.len()], &Device::cpu()).unwrap()
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
        x.gather(1, &Tensor::from_vec(vec![0.5], &[1, 1], dev).unwrap()),
        "gather",
        0.5,
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

device_tests!(bad_indices_are_errors);
