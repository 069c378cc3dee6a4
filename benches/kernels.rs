//! GPU-vs-CPU kernel benches: matmul (square sizes), elementwise add, and autograd's fused
//! backward kernels against the compositions they replace. Each case runs on the
//! CPU backend and on the GPU in one criterion group; bench IDs carry the device tag
//! (`cpu`, `wgpu-llvmpipe-...-software`, ...) so software-adapter numbers cannot pass for GPU
//! numbers. The device is synchronized before the clock stops.
//!
//! `cargo bench --bench kernels` (filter with e.g. `-- matmul/512`).

mod common;

use std::time::Duration;

use common::{devices, timed};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferrograd::op::BinaryOp;
use ferrograd::{Generator, Tensor};

fn matmul(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for dev in devices() {
        for n in [256usize, 512, 1024, 2048] {
            let mut rng = Generator::new(1);
            let a = Tensor::rand_with(&[n, n], -1.0, 1.0, &mut rng, &dev).unwrap();
            let b = Tensor::rand_with(&[n, n], -1.0, 1.0, &mut rng, &dev).unwrap();
            a.matmul(&b).unwrap().to_vec().unwrap(); // build pipelines before timing
            g.throughput(Throughput::Elements((2 * n * n * n) as u64)); // FLOP per iteration
            g.bench_with_input(BenchmarkId::new(dev.info().tag(), n), &n, |bch, _| {
                bch.iter_custom(|iters| timed(&dev, iters, || a.matmul(&b).unwrap()))
            });
        }
    }
    g.finish();
}

fn add(c: &mut Criterion) {
    let mut g = c.benchmark_group("add");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for dev in devices() {
        for n in [1_000usize, 1_000_000, 10_000_000] {
            let mut rng = Generator::new(2);
            let a = Tensor::rand_with(&[n], -1.0, 1.0, &mut rng, &dev).unwrap();
            let b = Tensor::rand_with(&[n], -1.0, 1.0, &mut rng, &dev).unwrap();
            a.add(&b).unwrap().to_vec().unwrap();
            g.throughput(Throughput::Bytes((12 * n) as u64)); // two reads + one write of f32
            g.bench_with_input(BenchmarkId::new(dev.info().tag(), n), &n, |bch, _| {
                bch.iter_custom(|iters| timed(&dev, iters, || a.add(&b).unwrap()))
            });
        }
    }
    g.finish();
}

/// Autograd's dedicated backward kernels against the forward-op compositions they replace:
/// the ReLU mask, sigmoid from its saved output, and softmax along rows.
fn backward(c: &mut Criterion) {
    let mut g = c.benchmark_group("backward");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for dev in devices() {
        let n = 1_000_000usize;
        let mut rng = Generator::new(3);
        let x = Tensor::rand_with(&[1000, 1000], -1.0, 1.0, &mut rng, &dev).unwrap();
        let up = Tensor::rand_with(&[1000, 1000], -1.0, 1.0, &mut rng, &dev).unwrap();
        let y = x.sigmoid().unwrap();
        let p = x.softmax(-1).unwrap();
        type Case<'a> = (&'a str, Box<dyn Fn() -> Tensor + 'a>);
        let cases: Vec<Case> = vec![
            (
                "relu/fused",
                Box::new(|| x.binary_op(&up, BinaryOp::ReluBackward).unwrap()),
            ),
            (
                "relu/composed",
                Box::new(|| up.mul(&x.gt_scalar(0.0).unwrap()).unwrap()),
            ),
            (
                "sigmoid/fused",
                Box::new(|| y.binary_op(&up, BinaryOp::SigmoidBackward).unwrap()),
            ),
            (
                "sigmoid/composed", // g * y * (1 - y)
                Box::new(|| up.mul(&y).unwrap().mul(&(1.0 - &y)).unwrap()),
            ),
            (
                "softmax/fused",
                Box::new(|| p.softmax_backward(&up, -1, false).unwrap()),
            ),
            (
                "softmax/composed", // y * (g - sum(g * y))
                Box::new(|| {
                    let s = up.mul(&p).unwrap().sum(-1, true).unwrap();
                    p.mul(&up.sub(&s).unwrap()).unwrap()
                }),
            ),
        ];
        for (name, f) in &cases {
            f().to_vec().unwrap(); // build pipelines before timing
            g.throughput(Throughput::Elements(n as u64));
            g.bench_function(BenchmarkId::new(*name, dev.info().tag()), |bch| {
                bch.iter_custom(|iters| timed(&dev, iters, f))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, matmul, add, backward);
criterion_main!(benches);
