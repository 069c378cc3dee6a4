//! `ferrograd::profile`: ops are timed by name and backend while it is on, and not while it
//! is off. One test, since the profile is process-wide.

mod common;
use ferrograd::{profile, Conv2dOptions, Device};

fn conv_step(dev: &Device) {
    // Both operands track gradients, so the backward pass computes the input's gradient too.
    let x = common::normal(&[2, 3, 9, 9], 1)
        .to_device(dev)
        .unwrap()
        .requires_grad();
    let w = common::normal(&[4, 3, 3, 3], 2)
        .to_device(dev)
        .unwrap()
        .requires_grad();
    let y = x
        .conv2d(&w, None, &Conv2dOptions::new().padding(1))
        .unwrap();
    let loss = y.relu().unwrap().sum_all().unwrap();
    loss.backward().unwrap();
    loss.to_scalar().unwrap();
}

#[test]
fn profile_counts_ops_by_backend() {
    profile::enable(false);
    profile::reset();
    conv_step(&Device::cpu());
    assert!(profile::entries().is_empty(), "off: nothing is timed");

    profile::enable(true);
    let mut devices = vec![Device::cpu()];
    devices.extend(common::gpu());
    for dev in &devices {
        conv_step(dev);
    }
    let rows = profile::entries();
    profile::enable(false);
    for dev in &devices {
        let backend = if dev.is_gpu() { "gpu" } else { "cpu" };
        let ops = [
            "conv2d",
            "conv2d_backward",
            "relu",
            "relu_backward",
            "sum",
            "to_vec",
        ];
        for op in ops {
            let row = rows
                .iter()
                .find(|r| r.op == op && r.backend == backend)
                .unwrap_or_else(|| panic!("no {op} on {backend} in {rows:?}"));
            assert!(row.calls >= 1 && !row.total.is_zero(), "{row:?}");
        }
    }
    let report = profile::report();
    assert!(report.starts_with("| op | backend | calls |"), "{report}");
    assert!(report.contains("| conv2d | cpu |"), "{report}");
    // Heaviest first.
    assert!(
        rows.windows(2).all(|w| w[0].total >= w[1].total),
        "{rows:?}"
    );
    profile::reset();
    assert!(profile::entries().is_empty());
}
