//! Matrix products on the CPU backend and the GPU, side by side: squares 64…2048 and the MNIST
//! MLP's and CNN's linear layers at batch 64 (`64x784x256` is m×k×n). Throughput in FLOP
//! (`2·m·k·n`). `cargo bench --bench matmul` (filter: `-- 512`).

mod common;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

fn matmul(c: &mut Criterion) {
    let cases = common::cases::matmul(&[64, 128, 256, 512, 1024, 2048]);
    common::run(c, "matmul", cases, Duration::from_secs(3));
}

criterion_group!(benches, matmul);
criterion_main!(benches);
