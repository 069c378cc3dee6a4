//! What every bench shares: the devices to compare and a timer that synchronizes the device
//! before reading the clock.

use std::time::{Duration, Instant};

use ferrograd::{Device, Tensor};

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
pub fn timed(dev: &Device, iters: u64, f: impl Fn() -> Tensor) -> Duration {
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
