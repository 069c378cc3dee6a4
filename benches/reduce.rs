//! Reductions: `sum_all` of 1e3…1e7 elements and row sums of `[n / 1000, 1000]`, CPU backend
//! and GPU side by side; bytes/s counts the input read once. `cargo bench --bench reduce`.

mod common;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

fn reduce(c: &mut Criterion) {
    let cases = common::cases::reduce(&[1_000, 10_000, 100_000, 1_000_000, 10_000_000]);
    common::run(c, "reduce", cases, Duration::from_secs(2));
}

criterion_group!(benches, reduce);
criterion_main!(benches);
