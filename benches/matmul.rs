//! Matrix products on the CPU backend and the GPU, side by side: squares 64…2048 and the MNIST
//! MLP's and CNN's linear layers at batch 64 (`64x784x256` is m×k×n). Throughput in FLOP
//! (`2·m·k·n`). `cargo bench --bench matmul` (filter: `-- 512`).
//!
//! Group `matmul baseline` calls the `gemm` crate directly on the same operands, into a buffer
//! allocated once: the bar the CPU backend's matmul (which also allocates its output) is held
//! to.

// The baseline calls `gemm::gemm`, which takes raw pointers.
#![allow(unsafe_code)]

mod common;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferrograd::{DType, Device, Generator, Tensor};

const SQUARES: [usize; 6] = [64, 128, 256, 512, 1024, 2048];

fn matmul(c: &mut Criterion) {
    let cases = common::cases::matmul(&SQUARES);
    common::run(c, "matmul", cases, Duration::from_secs(3));
    // F16 operands (computed in f32, rounded once): up to 512, the software adapter is slow.
    let cases = common::cases::matmul_in(&SQUARES[..4], DType::F16);
    common::run(c, "matmul_f16", cases, Duration::from_secs(3));
}

fn gemm_baseline(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul baseline [elem = FLOP]");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3));
    let dev = Device::cpu();
    for n in SQUARES {
        let mut rng = Generator::new(1);
        let a = Tensor::rand_with(&[n, n], -1.0, 1.0, &mut rng, &dev).unwrap();
        let b = Tensor::rand_with(&[n, n], -1.0, 1.0, &mut rng, &dev).unwrap();
        let (a, b) = (a.to_vec().unwrap(), b.to_vec().unwrap());
        let mut out = vec![0f32; n * n];
        let par = gemm::Parallelism::Rayon(rayon::current_num_threads());
        g.throughput(Throughput::Elements(2 * (n * n * n) as u64));
        g.bench_function(BenchmarkId::new("gemm-crate", n), |bch| {
            bch.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    // SAFETY: a, b and out each hold n×n f32, row-major (row stride n,
                    // column stride 1), and out is borrowed mutably for the call.
                    unsafe {
                        gemm::gemm(
                            n,
                            n,
                            n,
                            out.as_mut_ptr(),
                            1,
                            n as isize,
                            false,
                            a.as_ptr(),
                            1,
                            n as isize,
                            b.as_ptr(),
                            1,
                            n as isize,
                            0.0f32,
                            1.0f32,
                            false,
                            false,
                            false,
                            par,
                        );
                    }
                }
                start.elapsed()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, matmul, gemm_baseline);
criterion_main!(benches);
