//! A warm CPU training step allocates nothing new: every buffer of a poolable size comes from
//! the CPU's pool (`MemoryStats::created_buffers` stays flat), as `tests/memory.rs` checks for
//! the GPU. Its own test binary: the CPU pool and its counters are process-wide, so another
//! test running beside it would allocate into the same count.

mod common;
use common::normal;
use ferrograd::nn::{loss, Conv2d, Dropout, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential};
use ferrograd::optim::{Adam, AdamConfig, Optimizer};
use ferrograd::{Conv2dOptions, Device, Pool2dOptions, Tensor};

#[test]
fn warm_cpu_cnn_step_allocates_nothing_new() {
    let dev = Device::cpu();
    let same = Conv2dOptions::new().padding(1);
    // The MNIST CNN's shape at a smaller batch: buffers large enough to be pooled.
    let model = Sequential::new()
        .add(Conv2d::new(1, 8, 3, same, true, &dev).unwrap())
        .add(ReLU)
        .add(MaxPool2d(Pool2dOptions::new(2)))
        .add(Conv2d::new(8, 16, 3, same, true, &dev).unwrap())
        .add(ReLU)
        .add(MaxPool2d(Pool2dOptions::new(2)))
        .add(Flatten)
        .add(Linear::new(16 * 7 * 7, 64, true, &dev).unwrap())
        .add(ReLU)
        .add(Dropout::new(0.5).unwrap())
        .add(Linear::new(64, 10, true, &dev).unwrap());
    let mut opt = Adam::new(model.parameters(), AdamConfig::default()).unwrap();
    let labels = Tensor::from_vec((0..32).map(|i| i % 10).collect(), &[32], &dev).unwrap();
    let mut seed = 40;
    let mut step = || {
        seed += 1;
        let x = normal(&[32, 1, 28, 28], seed); // a fresh batch, as the loader makes
        let logits = model.forward(&x).unwrap();
        let l = loss::cross_entropy(&logits, &labels, loss::Reduction::Mean).unwrap();
        opt.step(&l.backward().unwrap()).unwrap();
        l
    };
    // Warm up as a training loop runs: the last loss stays alive while the next step runs.
    let mut last = step();
    for _ in 0..3 {
        last = step();
    }
    let before = dev.memory_stats();
    for _ in 0..5 {
        last = step();
    }
    let after = dev.memory_stats();
    assert!(last.to_scalar().unwrap().is_finite());
    assert!(
        before.created_buffers > 0,
        "the warm-up allocated: {before:?}"
    );
    assert_eq!(
        after.created_buffers, before.created_buffers,
        "a warm CPU step allocated new buffers: {before:?} -> {after:?}"
    );
}
