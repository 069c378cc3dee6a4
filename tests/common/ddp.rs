//! Data-parallel equivalence, shared by `tests/distributed.rs` (threads) and `tests/mpi.rs`
//! (processes): two epochs of SGD with momentum on 24 samples, single-process on batches of
//! 2B or on 2 ranks with B each (three steps an epoch either way), must end with the same
//! parameters.
#![allow(dead_code)]

use ferrograd::data::{DataLoader, TensorDataset};
use ferrograd::distributed::{DistributedDataParallel, ProcessGroup};
use ferrograd::nn::loss::{cross_entropy, Reduction};
use ferrograd::nn::{Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential};
use ferrograd::optim::{Optimizer, Sgd, SgdConfig};
use ferrograd::{Conv2dOptions, Device, Gradients, Pool2dOptions, Result, Tensor};

// The including test file declares `mod common`.
use crate::common::normal;

/// Samples per rank per step.
pub const BATCH: usize = 4;
/// One sample's shape for each model.
pub const MLP_INPUT: [usize; 1] = [6];
pub const CNN_INPUT: [usize; 3] = [1, 6, 6];

/// 24 seeded inputs of shape `input` and their classes (0, 1 or 2), on the CPU.
pub fn data(input: &[usize]) -> (Tensor, Tensor) {
    let mut shape = vec![24];
    shape.extend_from_slice(input);
    let y = Tensor::from_vec((0..24).map(|i| i * 7 % 3).collect(), &[24], &Device::cpu());
    (normal(&shape, 11), y.unwrap())
}

/// Whether replicas on `a` and `b` must agree bit for bit: the same kind of device, or the CPU
/// and a software adapter (llvmpipe rounds as the CPU does). A hardware GPU may fuse
/// multiply-adds in the optimizer's update, so CPU and GPU replicas agree only to rounding.
pub fn bitwise(a: &Device, b: &Device) -> bool {
    a.is_gpu() == b.is_gpu() || [a, b].iter().all(|d| d.is_cpu() || d.info().is_software())
}

/// Data-parallel parameters against single-process ones: f32 rounding apart (the mean over
/// 2B is summed in another order than the mean of two means over B).
pub fn assert_matches(got: &[Vec<f32>], want: &[Vec<f32>], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: parameter count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "{what}: parameter {i}");
        for (j, (&a, &e)) in g.iter().zip(w).enumerate() {
            assert!(
                (a - e).abs() <= 1e-6 + 1e-5 * e.abs(),
                "{what}: parameter {i}, element {j}: {a} against {e} single-process"
            );
        }
    }
}

pub fn mlp(dev: &Device) -> Result<Sequential> {
    Ok(Sequential::new()
        .add(Linear::new(6, 16, true, dev)?)
        .add(ReLU)
        .add(Linear::new(16, 3, true, dev)?))
}

pub fn cnn(dev: &Device) -> Result<Sequential> {
    let conv = |i, o| Conv2d::new(i, o, 3, Conv2dOptions::new().padding(1), true, dev);
    Ok(Sequential::new()
        .add(conv(1, 4)?)
        .add(ReLU)
        .add(MaxPool2d(Pool2dOptions::new(2)))
        .add(Flatten)
        .add(Linear::new(4 * 3 * 3, 3, true, dev)?))
}

/// Two epochs of SGD with momentum: single-process on batches of `batch` (`group` None), or
/// as rank `g.rank()` of 2 on its shard of each epoch (rows `rank, rank + 2, ...` of the
/// shuffled order) with batches of `batch`. Returns the final parameters.
pub fn train(
    build: fn(&Device) -> Result<Sequential>,
    x: &Tensor,
    y: &Tensor,
    batch: usize,
    dev: &Device,
    group: Option<&dyn ProcessGroup>,
) -> Result<Vec<Vec<f32>>> {
    let net = build(dev)?;
    // Seeded weights (the global generator is shared by the ranks' threads); rank 1 draws
    // others, which `DistributedDataParallel::new` must replace with rank 0's.
    let seed = 100 * group.map_or(0, |g| g.rank() as u64);
    for (i, p) in net.parameters().iter().enumerate() {
        let v = p.value();
        p.set(
            normal(v.shape(), seed + i as u64)
                .mul_scalar(0.3)?
                .to_device(dev)?,
        );
    }
    let data = TensorDataset::new(x.to_device(dev)?, y.to_device(dev)?)?;
    let loader = DataLoader::over(data, batch, dev)?.shuffle(3);
    match group {
        None => fit(&net, &loader, |loss| loss.backward()),
        Some(g) => {
            // Small buckets, so the gradients go in several.
            let ddp = DistributedDataParallel::new(net, g)?.with_bucket_bytes(300)?;
            fit(&ddp, &loader.shard(g.rank(), 2)?, |loss| ddp.backward(loss))
        }
    }
}

fn fit(
    model: &impl Module,
    loader: &DataLoader<TensorDataset>,
    backward: impl Fn(&Tensor) -> Result<Gradients>,
) -> Result<Vec<Vec<f32>>> {
    let cfg = SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        ..Default::default()
    };
    let mut opt = Sgd::new(model.parameters(), cfg)?;
    for epoch in 0..2 {
        for b in loader.epoch(epoch) {
            let b = b?;
            let loss = cross_entropy(&model.forward(&b.inputs)?, &b.targets, Reduction::Mean)?;
            opt.step(&backward(&loss)?)?;
        }
    }
    model
        .parameters()
        .iter()
        .map(|p| p.value().to_vec())
        .collect()
}
