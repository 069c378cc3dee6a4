//! Softmax along rows of `[rows, cols]`, CPU backend and GPU side by side; bytes/s counts one
//! read and one write per element. `cargo bench --bench softmax`.

mod common;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

fn softmax(c: &mut Criterion) {
    let shapes = [
        (64, 10),
        (256, 1000),
        (1024, 1024),
        (128, 4096),
        (4096, 128),
    ];
    let cases = common::cases::softmax(&shapes);
    common::run(c, "softmax", cases, Duration::from_secs(2));
}

criterion_group!(benches, softmax);
criterion_main!(benches);
