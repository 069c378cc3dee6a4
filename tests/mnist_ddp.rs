//! `examples/mnist_ddp.rs` on a subset of the real MNIST files: one rank reproduces
//! `mnist_cnn` exactly (same seed, same batches, same steps), and two ranks (two CPU ranks,
//! two devices on the GPU adapter, CPU + GPU) end with identical replicas (the example fails
//! if the ranks' parameter hashes differ) and the accuracy of one rank within noise.

mod common;

#[path = "../examples/mnist_ddp.rs"]
#[allow(dead_code)]
mod mnist_ddp;

use std::path::PathBuf;
use std::sync::Mutex;

use ferrograd::Device;
use mnist_ddp::mnist::{self, cli::DeviceChoice, Arch, Options};
use mnist_ddp::Cli;

/// The models start from the global seed: one test at a time.
static SEED_LOCK: Mutex<()> = Mutex::new(());

fn subset(devices: usize) -> Cli {
    Cli {
        devices,
        device: DeviceChoice::Cpu,
        epochs: 1,
        batch_size: 64,
        lr: 1e-3,
        data: None,
        limit: Some(3000),
        test_limit: Some(1000),
        seed: 1,
        save: PathBuf::new(),
        no_save: true,
        target_acc: None,
    }
}

#[test]
fn one_rank_is_mnist_cnn_exactly() {
    let Some(data) = common::mnist_data() else {
        return;
    };
    let _seed = SEED_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dev = Device::cpu();
    let o = Options {
        device: dev.clone(),
        epochs: 1,
        limit: Some(3000),
        test_limit: Some(1000),
        save: None,
        verbose: false,
        ..Options::defaults(Arch::Cnn)
    };
    let (_, single) = mnist::train(Arch::Cnn, &data, &o).unwrap();
    let ddp = mnist_ddp::train(&[dev], &data, &subset(1)).unwrap();
    let (a, b) = (&single[0], &ddp[0]);
    assert_eq!((a.train_loss, a.train_acc), (b.train_loss, b.train_acc));
    assert_eq!((a.test_loss, a.test_acc), (b.test_loss, b.test_acc));
}

#[test]
fn two_ranks_train_identical_replicas_on_each_pair_of_devices() {
    let Some(data) = common::mnist_data() else {
        return;
    };
    let _seed = SEED_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let one = mnist_ddp::train(&[Device::cpu()], &data, &subset(1)).unwrap()[0].test_acc;
    let mut pairs = vec![vec![Device::cpu(), Device::cpu()]];
    if let Some(gpu) = common::gpu() {
        pairs.push(vec![gpu.clone(), Device::open_gpu().unwrap()]);
        // The example fails unless the replicas agree bit for bit, which the CPU and a
        // hardware GPU need not (see `DistributedDataParallel`).
        if gpu.info().is_software() {
            pairs.push(vec![Device::cpu(), gpu]);
        }
    }
    for devices in pairs {
        // Fails inside if the ranks' parameter hashes differ.
        let two = mnist_ddp::train(&devices, &data, &subset(2)).unwrap()[0].test_acc;
        eprintln!("{devices:?}: {two:.2} % (one rank: {one:.2} %)");
        // Only dropout's masks differ from one rank (each rank draws its own): on 3,000
        // images that moves the accuracy by a point or two, a broken reduction by far more.
        assert!(
            (two - one).abs() <= 3.0,
            "{devices:?}: {two} % against {one} % on one rank"
        );
    }
    // A global batch that does not split over the ranks is refused.
    let odd = Cli {
        batch_size: 63,
        ..subset(2)
    };
    let err = mnist_ddp::train(&[Device::cpu(), Device::cpu()], &data, &odd).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mnist_ddp: --batch-size 63 does not split evenly over 2 ranks"
    );
}
