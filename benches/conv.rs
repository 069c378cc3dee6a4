//! conv2d forward and forward+backward for the two conv layers of the MNIST CNN, on the CPU
//! backend and the GPU in one group (IDs carry the device tag). Forward+backward computes the
//! input, weight and bias gradients from a fixed upstream gradient. Throughput is FLOP: the
//! forward's `2·N·O·C·KH·KW·OH·OW`, three times that with the two gradient GEMMs.
//!
//! `cargo bench --bench conv` (filter with e.g. `-- conv2d/fwd+bwd`).

mod common;

use std::time::Duration;

use common::{devices, timed};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferrograd::{Conv2dOptions, DType, Generator, Tensor};

/// (name, input [n, c, h, w], output channels): 3×3 kernels, padding 1.
const LAYERS: [(&str, [usize; 4], usize); 2] = [
    ("64x1x28x28->32", [64, 1, 28, 28], 32),
    ("64x32x14x14->64", [64, 32, 14, 14], 64),
];

fn conv2d(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv2d [elem = FLOP]");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let opts = Conv2dOptions::new().padding(1);
    for dev in devices() {
        for (name, [n, ch, h, w], out) in LAYERS {
            let mut rng = Generator::new(3);
            let x = Tensor::rand_with(&[n, ch, h, w], -1.0, 1.0, &mut rng, &dev).unwrap();
            let wt = Tensor::rand_with(&[out, ch, 3, 3], -0.3, 0.3, &mut rng, &dev).unwrap();
            let b = Tensor::rand_with(&[out], -0.1, 0.1, &mut rng, &dev).unwrap();
            let seed = Tensor::rand_with(&[n, out, h, w], -1.0, 1.0, &mut rng, &dev).unwrap();
            let (xv, wv, bv) = (x.requires_grad(), wt.requires_grad(), b.requires_grad());
            let step = || {
                let y = xv.conv2d(&wv, Some(&bv), &opts).unwrap();
                let grads = y.backward_with(&seed).unwrap();
                grads.get(&wv).unwrap().clone()
            };
            step().to_vec().unwrap(); // build pipelines, warm the buffer pool
            let flop = (2 * n * out * ch * 9 * h * w) as u64;
            let id = format!("{}/{name}", dev.info().tag());
            g.throughput(Throughput::Elements(flop));
            g.bench_function(BenchmarkId::new("fwd", &id), |bch| {
                bch.iter_custom(|iters| {
                    timed(&dev, iters, || x.conv2d(&wt, Some(&b), &opts).unwrap())
                })
            });
            g.throughput(Throughput::Elements(3 * flop));
            g.bench_function(BenchmarkId::new("fwd+bwd", &id), |bch| {
                bch.iter_custom(|iters| timed(&dev, iters, step))
            });
        }
    }
    g.finish();
}

/// Both layers forward and backward with F16 input, weight and bias (computed in f32,
/// rounded once), as the CNN trains with `--precision f16`.
fn conv2d_f16(c: &mut Criterion) {
    let cases = common::cases::conv2d_in(DType::F16);
    common::run(c, "conv2d_f16", cases, Duration::from_secs(3));
}

criterion_group!(benches, conv2d, conv2d_f16);
criterion_main!(benches);
