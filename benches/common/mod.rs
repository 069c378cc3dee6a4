//! What every bench shares: the devices to compare, a timer that synchronizes the device
//! before reading the clock, the cases (`cases.rs`, shared with `examples/bench_report.rs`) and
//! the runner that puts each case's CPU and GPU runs side by side in one criterion group.

#![allow(dead_code)] // each bench uses part of it

pub mod cases;
pub mod raw;

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use ferrograd::{Device, Tensor};

use cases::{Case, Work};

/// The CPU backend, and the GPU when there is one (any adapter; its tag says which kind).
pub fn devices() -> Vec<Device> {
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
pub fn timed(dev: &Device, iters: u64, mut f: impl FnMut() -> Tensor) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        // Each result is dropped at once, as in a training loop: its buffer goes back to the
        // pool (a GPU run reuses it in queue order, so nothing waits). Keeping a few alive
        // made the CPU allocator return and re-fault memory every round (512² matmul: -40 %).
        drop(f());
    }
    dev.synchronize().expect("synchronize");
    start.elapsed()
}

/// Runs `cases` on every device in criterion group `group`. Bench IDs are
/// `<group> [unit]/<op>/<device tag>/<size>`, e.g. `elementwise/add/wgpu-llvmpipe-cpu/1e6` or
/// `matmul [elem = FLOP]/cpu/512`. Criterion has no FLOP
/// unit, so FLOP counts go in as elements and the group name says so (`matmul [elem = FLOP]`);
/// byte counts show as bytes/s, images and ops as elements (`[elem = image]`, `[elem = op]`).
pub fn run(c: &mut Criterion, group: &str, cases: Vec<Case>, measurement: Duration) {
    let unit = match cases.first().map(|c| c.work) {
        Some(Work::Flops(_)) => " [elem = FLOP]",
        Some(Work::Images(_)) => " [elem = image]",
        Some(Work::Ops(_)) => " [elem = op]",
        _ => "",
    };
    let mut g = c.benchmark_group(format!("{group}{unit}"));
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(measurement);
    for dev in devices() {
        let tag = dev.info().tag();
        for case in &cases {
            let mut run = (case.setup)(&dev);
            run().to_vec().expect("warm-up"); // pipelines and the buffer pool, before timing
            g.throughput(match case.work {
                Work::Flops(f) => Throughput::Elements(f as u64),
                Work::Bytes(b) => Throughput::Bytes(b as u64),
                Work::Images(n) | Work::Ops(n) => Throughput::Elements(n as u64),
            });
            // `add/cpu/1e6` in group `elementwise`; just `cpu/512` in group `matmul`.
            let op = case.family.strip_prefix(group).unwrap_or(&case.family);
            let op = op.trim_start_matches('/');
            let name = if op.is_empty() {
                tag.clone()
            } else {
                format!("{op}/{tag}")
            };
            let id = BenchmarkId::new(name, &case.size);
            g.bench_function(id, |b| b.iter_custom(|iters| timed(&dev, iters, &mut run)));
        }
    }
    g.finish();
}
