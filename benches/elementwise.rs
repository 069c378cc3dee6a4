//! Elementwise ops (add, relu, leaky_relu, gelu, exp, gt_scalar, where) over 1e3…1e7
//! elements, CPU backend and GPU side by side, bytes/s counting each operand read and the
//! result written once; and autograd's fused backward kernels against the op compositions
//! they replace.
//! Also the launch overhead of a chain of tiny ops (`dispatch`).
//! `cargo bench --bench elementwise` (filter: `-- relu`).

mod common;

use std::time::Duration;

use common::{devices, timed};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferrograd::op::BinaryOp;
use ferrograd::{Generator, Tensor};

fn elementwise(c: &mut Criterion) {
    let sizes = [1_000, 10_000, 100_000, 1_000_000, 10_000_000];
    let cases = common::cases::elementwise(&sizes);
    common::run(c, "elementwise", cases, Duration::from_secs(2));
    // Launch overhead: 100 tiny ops per synchronize.
    let chain = vec![common::cases::dispatch_chain(100)];
    common::run(c, "dispatch", chain, Duration::from_secs(2));
    // Its floor: the same chain in raw wgpu on the same adapter (`common/raw.rs`).
    let Some(gpu) = devices().into_iter().find(|d| d.is_gpu()) else {
        return;
    };
    let Some(raw) = common::raw::RawChain::new(&gpu.info().name, 100) else {
        eprintln!("raw wgpu: adapter {} not found", gpu.info().name);
        return;
    };
    let mut g = c.benchmark_group("dispatch floor [elem = op]");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(raw.ops() as u64));
    let id = BenchmarkId::new(format!("raw-wgpu/{}", gpu.info().tag()), "100x64");
    g.bench_function(id, |b| b.iter_custom(|iters| raw.run(iters)));
    g.finish();
}

/// The ReLU mask, sigmoid from its saved output, and softmax along rows: fused backward kernel
/// against the forward-op composition, on 1000×1000.
fn backward(c: &mut Criterion) {
    let mut g = c.benchmark_group("backward");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
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
                Box::new(|| (up.mul(&y).unwrap() * (1.0 - &y).unwrap()).unwrap()),
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

criterion_group!(benches, elementwise, backward);
criterion_main!(benches);
