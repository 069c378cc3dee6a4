//! Several devices in one process and data-parallel training over threads: collectives on odd
//! sizes and every dtype, failures that end in errors rather than hangs, the sampler's shards,
//! and the equivalence of K data-parallel steps on 2 ranks with single-process training on
//! the concatenated batches, on two CPU ranks, two devices on one GPU adapter, and CPU + GPU.

mod common;
#[path = "common/ddp.rs"]
mod ddp;

use std::time::{Duration, Instant};

use ferrograd::data::{DataLoader, TensorDataset};
use ferrograd::distributed::{self, DistributedDataParallel, ProcessGroup, Reduce, ThreadGroup};
use ferrograd::nn::{Linear, Module, Sequential};
use ferrograd::{DType, Device, Error, Result, Tensor};

use common::{assert_close, normal};

/// Pairs of devices for two ranks: two CPU ranks, and where there is a GPU, two devices on
/// its adapter and CPU + GPU.
fn pairs() -> Vec<[Device; 2]> {
    let mut all = vec![[Device::cpu(), Device::cpu()]];
    if let Some(gpu) = common::gpu() {
        let second = Device::open_gpu().expect("a second device on the adapter");
        all.push([gpu.clone(), second]);
        all.push([Device::cpu(), gpu]);
    }
    all
}

#[test]
fn open_gpu_gives_separate_devices_and_to_device_moves_between_them() {
    let Some(a) = common::gpu() else { return };
    let b = Device::open_gpu().unwrap();
    assert_ne!(a, b);
    assert_ne!(a.to_string(), b.to_string(), "two devices print apart");
    let x = normal(&[3, 5], 1).to_device(&a).unwrap().requires_grad();
    let err = x.add(&Tensor::ones(&[3, 5], &b).unwrap()).unwrap_err();
    assert!(matches!(err, Error::DeviceMismatch { .. }), "{err}");
    // GPU -> GPU is a copy through the host, and differentiable.
    let y = x.to_device(&b).unwrap();
    assert_eq!(y.device(), &b);
    assert_eq!(y.to_vec().unwrap(), x.to_vec().unwrap());
    let grads = y
        .mul_scalar(3.0)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let g = grads.get(&x).unwrap();
    assert_eq!(g.device(), &a);
    assert_eq!(g.to_vec().unwrap(), vec![3.0; 15]);
    // Each device counts its own work.
    b.synchronize().unwrap();
    assert!(b.dispatch_stats().dispatches > 0);
    // Every hardware GPU is listed once, and never a software one.
    let gpus = Device::gpus();
    assert!(gpus.iter().all(|d| !d.info().is_software()));
    assert_eq!(gpus, Device::gpus());
}

#[test]
fn module_to_device_moves_every_parameter_and_buffer() {
    let dev = common::gpu().unwrap_or_else(Device::cpu);
    let net = Sequential::new()
        .add(Linear::new(3, 4, true, &Device::cpu()).unwrap())
        .add(ferrograd::nn::BatchNorm::new_1d(4, &Device::cpu()).unwrap());
    let before: Vec<Vec<f32>> = net
        .named_state()
        .iter()
        .map(|(_, p)| p.value().to_vec().unwrap())
        .collect();
    let held = net.parameters()[0].clone();
    net.to_device(&dev).unwrap();
    for (name, p) in net.named_state() {
        assert_eq!(p.value().device(), &dev, "{name}");
    }
    assert_eq!(
        held.value().device(),
        &dev,
        "a parameter held elsewhere sees the move"
    );
    assert!(net.parameters().iter().all(|p| p.value().tracks_grad()));
    let after: Vec<Vec<f32>> = net
        .named_state()
        .iter()
        .map(|(_, p)| p.value().to_vec().unwrap())
        .collect();
    assert_eq!(before, after);
    assert_eq!(
        net.forward(&Tensor::ones(&[2, 3], &dev).unwrap())
            .unwrap()
            .shape(),
        &[2, 4]
    );
}

#[test]
fn collectives_on_odd_sizes_and_dtypes() {
    for devices in pairs() {
        let out = distributed::run_on(&devices, |g, dev| {
            let r = g.rank() as f32;
            for n in [0usize, 1, 7, 257, 100_003] {
                let t = Tensor::arange(0.0, n as f32, 1.0, dev)?.add_scalar(r)?;
                let sum = g.all_reduce(&t, Reduce::Sum)?;
                let want: Vec<f32> = (0..n).map(|i| 2.0 * i as f32 + 1.0).collect();
                assert_eq!(sum.to_vec()?, want, "sum of {n} on {dev}");
                assert_eq!(sum.device(), dev);
                let mean = g.all_reduce(&t.reshape(&[n, 1])?, Reduce::Mean)?;
                assert_eq!(mean.shape(), &[n, 1]);
                assert_close(
                    &mean.to_vec()?,
                    &want.iter().map(|x| x / 2.0).collect::<Vec<_>>(),
                    0.0,
                    0.0,
                    "mean",
                );
            }
            // I32 sums exactly past 2^24; halves round-trip through f32.
            let big = Tensor::from_vec(vec![16_777_217 + g.rank() as i32, -3], &[2], dev)?;
            assert_eq!(
                g.all_reduce(&big, Reduce::Sum)?.to_vec_as::<i32>()?,
                vec![33_554_435, -6]
            );
            let half = Tensor::full(&[3], 0.5, dev)?.to_dtype(DType::F16)?;
            let h = g.all_reduce(&half, Reduce::Sum)?;
            assert_eq!((h.dtype(), h.to_vec()?), (DType::F16, vec![1.0; 3]));
            // Broadcast keeps the dtype, bit for bit.
            for t in [
                Tensor::from_vec(vec![g.rank() == 0, true, false], &[3], dev)?,
                Tensor::from_vec(vec![7 * g.rank() as i32 + 1, 2], &[1, 2], dev)?,
                normal(&[5], 10 + g.rank() as u64)
                    .to_device(dev)?
                    .to_dtype(DType::BF16)?,
            ] {
                let root = g.broadcast(&t, 0)?;
                let expect = distributed_expect_root(g, &t)?;
                assert_eq!((root.dtype(), root.shape()), (t.dtype(), t.shape()));
                assert_eq!(root.to_vec()?, expect);
            }
            g.barrier()?;
            // Mismatched shapes are an error on every rank, naming both.
            let odd = Tensor::zeros(&[2 + g.rank()], dev)?;
            let err = g.all_reduce(&odd, Reduce::Sum).unwrap_err();
            assert!(
                err.to_string()
                    .contains("F32 [2] tensor (Sum), rank 1 a F32 [3]")
                    || err
                        .to_string()
                        .contains("F32 [3] tensor (Sum), rank 0 a F32 [2]"),
                "{err}"
            );
            let bad = Tensor::from_vec(vec![true], &[1], dev)?;
            assert!(matches!(
                g.all_reduce(&bad, Reduce::Sum),
                Err(Error::DType { .. })
            ));
            Ok(g.rank())
        })
        .unwrap_or_else(|e| panic!("{devices:?}: {e}"));
        assert_eq!(out, vec![0, 1]);
    }
}

/// Rank 0's values of `t` (a second way to the answer: an all-gather of f32 bytes).
fn distributed_expect_root(g: &ThreadGroup, t: &Tensor) -> Result<Vec<f32>> {
    let mine: Vec<u8> = t.to_vec()?.iter().flat_map(|x| x.to_le_bytes()).collect();
    let all = g.all_gather_bytes("expect", &mine)?;
    Ok(all[0]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

#[test]
fn a_failing_rank_makes_the_others_fail_not_hang() {
    let devices = [Device::cpu(), Device::cpu(), Device::cpu()];
    // An error returned before a collective: the others' all_reduce fails, and run_on reports
    // the cause.
    let start = Instant::now();
    let err = distributed::run_on(&devices, |g, dev| {
        if g.rank() == 1 {
            return Err(Error::InvalidArgument {
                op: "my_step",
                msg: "bad batch".into(),
            });
        }
        let t = Tensor::ones(&[4], dev)?;
        g.all_reduce(&t, Reduce::Sum)?;
        g.all_reduce(&t, Reduce::Sum).map(|_| ())
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "my_step: bad batch");
    // A panic.
    let err = distributed::run_on(&devices, |g, dev| {
        if g.rank() == 2 {
            panic!("boom in rank 2");
        }
        g.all_reduce(&Tensor::ones(&[4], dev)?, Reduce::Mean)
            .map(|_| ())
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "run_on on rank 2: panicked: boom in rank 2"
    );
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "no waiting on the default timeout"
    );

    // A rank that stops calling collectives: the others time out, naming it.
    let ranks = ThreadGroup::new(2, Duration::from_millis(300)).unwrap();
    let errs: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = ranks
            .into_iter()
            .map(|g| {
                s.spawn(move || {
                    let mut v = vec![1.0f32; 3];
                    if g.rank() == 1 {
                        std::thread::sleep(Duration::from_millis(900));
                    }
                    g.all_reduce_sum_f32("step", &mut v)
                        .unwrap_err()
                        .to_string()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        errs[0],
        "step on rank 0: this rank waited 300ms in step for ranks [1], which never came"
    );
    assert_eq!(
        errs[1],
        "step on rank 1: rank 0 waited 300ms in step for ranks [1], which never came"
    );

    // Different collectives on different ranks.
    let err = distributed::run_on(&devices[..2], |g, dev| match g.rank() {
        0 => g.barrier(),
        _ => g
            .all_reduce(&Tensor::ones(&[1], dev)?, Reduce::Sum)
            .map(|_| ()),
    })
    .unwrap_err();
    assert!(
        err.to_string().contains("while another rank called"),
        "{err}"
    );
}

#[test]
fn ranks_that_disagree_get_errors() {
    let devices = [Device::cpu(), Device::cpu()];
    // Different roots, and different reductions.
    let err = distributed::run_on(&devices, |g, dev| {
        g.broadcast(&Tensor::ones(&[2], dev)?, g.rank()).map(|_| ())
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("(root 0), rank 1 a F32 [2] tensor (root 1)")
            || err
                .to_string()
                .contains("(root 1), rank 0 a F32 [2] tensor (root 0)"),
        "{err}"
    );
    let err = distributed::run_on(&devices, |g, dev| {
        let how = [Reduce::Sum, Reduce::Mean][g.rank()];
        g.all_reduce(&Tensor::ones(&[2], dev)?, how).map(|_| ())
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("(Sum), rank 1 a F32 [2] tensor (Mean)")
            || err
                .to_string()
                .contains("(Mean), rank 0 a F32 [2] tensor (Sum)"),
        "{err}"
    );
    // Ranks that froze different layers (with the same count of trainable parameters).
    let err = distributed::run_on(&devices, |g, dev| {
        let net = Sequential::new()
            .add(Linear::new(3, 3, false, dev)?)
            .add(Linear::new(3, 3, false, dev)?);
        let ddp = DistributedDataParallel::new(net, g)?;
        ddp.parameters()[g.rank()].set_trainable(false);
        let y = ddp.forward(&Tensor::ones(&[1, 3], dev)?)?.sum_all()?;
        ddp.backward(&y).map(|_| ())
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("the ranks train different parameters"),
        "{err}"
    );
    // No timeout at all is allowed.
    let ranks = ThreadGroup::new(2, Duration::MAX).unwrap();
    std::thread::scope(|s| {
        for g in ranks {
            s.spawn(move || g.barrier().unwrap());
        }
    });
}

#[test]
fn ddp_refuses_different_models() {
    let devices = [Device::cpu(), Device::cpu()];
    let err = distributed::run_on(&devices, |g, dev| {
        let hidden = 4 + g.rank();
        let net = Sequential::new().add(Linear::new(3, hidden, true, dev)?);
        DistributedDataParallel::new(net, g).map(|_| ())
    })
    .unwrap_err();
    // Both ranks see it; either may report first.
    assert_eq!(
        err.to_string().replace("on rank 1:", "on rank 0:"),
        "DistributedDataParallel::new on rank 0: the ranks built different models: entry 0 of \
         the state is `0.weight: F32 [4, 3]` on rank 0 and `0.weight: F32 [5, 3]` on rank 1 \
         (3 and 3 entries)"
    );
}

#[test]
fn sampler_shards_are_disjoint_covering_and_seeded() {
    let dev = Device::cpu();
    for (n, world, drop) in [
        (10, 2, false),
        (11, 3, false),
        (11, 3, true),
        (2, 3, false),
        (0, 2, false),
    ] {
        let data = TensorDataset::new(
            Tensor::arange(0.0, n as f32, 1.0, &dev)
                .unwrap()
                .reshape(&[n, 1])
                .unwrap(),
            Tensor::zeros(&[n], &dev).unwrap(),
        )
        .unwrap();
        let loader = DataLoader::over(data, 2, &dev)
            .unwrap()
            .shuffle(7)
            .drop_last(drop);
        let shard = |rank: usize, epoch: u64| -> Vec<f32> {
            let l = loader.clone().shard(rank, world).unwrap();
            let rows: Vec<f32> = l
                .epoch(epoch)
                .flat_map(|b| b.unwrap().inputs.to_vec().unwrap())
                .collect();
            assert_eq!(l.epoch(epoch).count(), l.len());
            rows
        };
        let shards: Vec<Vec<f32>> = (0..world).map(|r| shard(r, 0)).collect();
        let per = shards[0].len();
        let want_per = if drop {
            (n / world) / 2 * 2
        } else {
            n.div_ceil(world)
        };
        assert!(
            shards.iter().all(|s| s.len() == per),
            "{n}/{world}: equal shards"
        );
        assert_eq!(per, want_per, "{n}/{world} drop {drop}");
        let mut all: Vec<f32> = shards.concat();
        all.sort_by(f32::total_cmp);
        let distinct = {
            let mut d = all.clone();
            d.dedup();
            d
        };
        if drop {
            assert_eq!(distinct.len(), all.len(), "disjoint");
        } else {
            assert_eq!(
                distinct,
                (0..n).map(|i| i as f32).collect::<Vec<_>>(),
                "covering"
            );
            assert_eq!(all.len(), per * world);
        }
        assert_eq!(shard(1 % world, 0), shards[1 % world], "deterministic");
        if n >= 10 {
            assert_ne!(shard(0, 1), shards[0], "a new order each epoch");
        }
    }
    let loader = DataLoader::over(
        TensorDataset::new(
            Tensor::zeros(&[4, 1], &dev).unwrap(),
            Tensor::zeros(&[4], &dev).unwrap(),
        )
        .unwrap(),
        2,
        &dev,
    )
    .unwrap();
    let err = loader.shard(2, 2).unwrap_err();
    assert_eq!(
        err.to_string(),
        "DataLoader::shard: rank 2 is not a rank of a group of 2"
    );
}

fn check_equivalence(build: fn(&Device) -> Result<Sequential>, input: &[usize], what: &str) {
    let (x, y) = ddp::data(input);
    let single = ddp::train(build, &x, &y, 2 * ddp::BATCH, &Device::cpu(), None).unwrap();
    for devices in pairs() {
        let ranks = distributed::run_on(&devices, |g, dev| {
            ddp::train(build, &x, &y, ddp::BATCH, dev, Some(g))
        })
        .unwrap_or_else(|e| panic!("{what} on {devices:?}: {e}"));
        if ddp::bitwise(&devices[0], &devices[1]) {
            assert_eq!(ranks[0], ranks[1], "{what} on {devices:?}: replicas differ");
        }
        ddp::assert_matches(&ranks[0], &single, &format!("{what} on {devices:?}"));
    }
}

#[test]
fn ddp_on_two_ranks_matches_single_process_training_mlp() {
    check_equivalence(ddp::mlp, &ddp::MLP_INPUT, "MLP");
}

#[test]
fn ddp_on_two_ranks_matches_single_process_training_cnn() {
    check_equivalence(ddp::cnn, &ddp::CNN_INPUT, "CNN");
}
