//! One whole training step (forward, cross entropy, backward, Adam) of the MNIST MLP and CNN
//! (the models of `examples/common/mnist.rs`) at batch 64, CPU backend and GPU side by side.
//! Throughput in images; `train_step_f16` is the same in mixed precision (`--precision f16`).
//! `cargo bench --bench train_step`.

mod common;

#[path = "../examples/common/mnist.rs"]
mod mnist;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use ferrograd::{DType, Device};
use mnist::Arch;

fn train_step(c: &mut Criterion) {
    let cases = vec![
        common::cases::train_step("mlp", |d: &Device| Arch::Mlp.build(d).expect("mlp")),
        common::cases::train_step("cnn", |d: &Device| Arch::Cnn.build(d).expect("cnn")),
        common::cases::train_step_in("mlp", |d| Arch::Mlp.build(d).expect("mlp"), DType::F16),
        common::cases::train_step_in("cnn", |d| Arch::Cnn.build(d).expect("cnn"), DType::F16),
    ];
    common::run(c, "train_step", cases, Duration::from_secs(5));
}

criterion_group!(benches, train_step);
criterion_main!(benches);
