//! Memory stays flat: a loop of 1,000 op chains leaves `memory_stats().live_bytes` where it
//! started, and after warm-up the GPU pool serves every buffer. The counters are per device and
//! process-wide, so this test has a binary of its own and runs its devices one after the other.

mod common;
use common::normal;
use ferrograd::Device;

fn memory_stays_flat(dev: &Device) {
    // Warm the pool, then 1,000 op chains must leave live bytes where they started.
    let x = normal(&[64, 33], 1).to_device(dev).unwrap();
    let w = normal(&[33, 16], 2).to_device(dev).unwrap();
    let step = || {
        x.matmul(&w)
            .unwrap()
            .relu()
            .unwrap()
            .softmax(-1)
            .unwrap()
            .sum_all()
            .unwrap()
    };
    // Warm up the way the loop runs: the previous result is alive while the next one is made.
    let mut last = Some(step());
    last = Some(step()).or(last);
    drop(last);
    dev.synchronize().unwrap();
    let before = dev.memory_stats();
    let mut last = None;
    for _ in 0..1000 {
        last = Some(step());
    }
    drop(last);
    dev.synchronize().unwrap();
    let after = dev.memory_stats();
    if dev.is_gpu() {
        assert_eq!(
            after.live_bytes, before.live_bytes,
            "live bytes grew: {before:?} -> {after:?}"
        );
        assert_eq!(
            after.created_buffers, before.created_buffers,
            "the pool should serve every buffer"
        );
    } else {
        assert_eq!(
            after.live_bytes, before.live_bytes,
            "live bytes grew: {before:?} -> {after:?}"
        );
    }
}

#[test]
fn cpu_then_gpu() {
    memory_stays_flat(&Device::cpu());
    if let Some(dev) = common::gpu() {
        memory_stays_flat(&dev);
    }
}
