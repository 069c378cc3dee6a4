//! GPU-vs-CPU kernel benches: matmul (square sizes) and elementwise add. Each case runs on the
//! CPU backend and on the GPU in one criterion group; bench IDs carry the device tag
//! (`cpu`, `wgpu-llvmpipe-...-software`, ...) so software-adapter numbers cannot pass for GPU
//! numbers. The device is synchronized before the clock stops.
//!
//! `cargo bench --bench kernels` (filter with e.g. `-- matmul/512`).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferrograd::{Device, Generator, Tensor};

fn devices() -> Vec<Device> {
    let mut devs = vec![Device::cpu()];
    match Device::gpu() {
        Ok(g) => {
            eprintln!("GPU: {}", g.info());
            devs.push(g);
        }
        Err(e) => eprintln!("no GPU, CPU only: {e}"),
    }
    devs
}

/// Times `iters` runs of `f`, synchronizing the device before reading the clock.
fn timed(dev: &Device, iters: u64, f: impl Fn() -> Tensor) -> Duration {
    let start = Instant::now();
    let mut keep = Vec::with_capacity(8);
    for _ in 0..iters {
        keep.push(f());
        if keep.len() == 8 {
            keep.clear(); // bounded memory; buffers go back to the pool
        }
    }
    dev.synchronize().expect("synchronize");
    start.elapsed()
}

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

criterion_group!(benches, matmul, add);
criterion_main!(benches);
