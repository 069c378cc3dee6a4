//! The MNIST CNN of `mnist_cnn`, trained data-parallel: each rank (a thread with its own
//! device) takes its shard of every global batch, and [`DistributedDataParallel`] averages
//! the gradients over the ranks after each backward, so every rank takes the step
//! `mnist_cnn` takes on the whole batch and the replicas stay identical.
//!
//! ```text
//! cargo run --release --example mnist_ddp -- --devices 2               # 2 ranks, best device
//! cargo run --release --example mnist_ddp -- --devices 2 --device cpu --epochs 1 \
//!     --data ../shared/data/mnist
//! cargo run --release --example mnist_ddp -- --devices 1 --device cpu   # the 1-rank baseline
//!
//! cargo build --release --features mpi --example mnist_ddp              # over MPI (Open MPI)
//! mpirun -np 2 target/release/examples/mnist_ddp --device cpu --data ../shared/data/mnist
//! mpirun -np 4 --hostfile hosts target/release/examples/mnist_ddp --data DIR  # 2 machines
//! ```
//!
//! Under `mpirun` (with the `mpi` feature) each process is one rank and `--devices` is
//! ignored: `-np` sets the ranks.
//!
//! With `--device gpu` the ranks get the hardware GPUs in turn ([`Device::gpus`]); where there
//! are fewer than `--devices`, they share the adapter `Device::gpu()` picks, each with a device
//! of its own ([`Device::open_gpu`]), which tests the multi-device path but adds no speed. The
//! global batch is `--batch-size` (64, as `mnist_cnn`), split evenly over the ranks; the
//! training set is split by [`DataLoader::shard`]. Each rank prints its throughput and a hash
//! of its parameters (the same on every rank); rank 0 evaluates, prints the aggregate
//! throughput, and writes `runs/mnist_ddp/model.safetensors` (loadable by `mnist_predict`)
//! with `metrics.csv` and `metrics.svg` beside it.

#[path = "common/mnist.rs"]
pub mod mnist;

use std::path::PathBuf;
use std::time::Instant;

use ferrograd::data::{DataLoader, Mnist, MNIST_MEAN, MNIST_STD};
use ferrograd::distributed::{self, DistributedDataParallel, ProcessGroup};
use ferrograd::nn::loss::{self, Reduction};
use ferrograd::nn::Module;
use ferrograd::optim::{Adam, AdamConfig, Optimizer};
use ferrograd::{manual_seed, Device, Error, Result};
use mnist::{cli, Arch, EpochReport, Tally};

/// Trains the MNIST CNN data-parallel over several devices in this process
#[derive(clap::Parser, Debug)]
#[command(name = "mnist_ddp")]
pub struct Cli {
    /// Ranks, one thread and device each
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = cli::positive)]
    pub devices: usize,
    /// The kind of device each rank gets
    #[arg(long, value_enum, default_value_t)]
    pub device: cli::DeviceChoice,
    /// Passes over the training set
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = cli::positive)]
    pub epochs: usize,
    /// Images per global step, split evenly over the ranks
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = cli::positive)]
    pub batch_size: usize,
    /// Adam's learning rate
    #[arg(long, value_name = "X", default_value_t = 1e-3, value_parser = cli::positive_f32)]
    pub lr: f32,
    /// The directory with the four MNIST files [default: the cache directory, downloading]
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Train on the first N images only (quick runs)
    #[arg(long, value_name = "N", value_parser = cli::positive)]
    pub limit: Option<usize>,
    /// Seed of the initial weights and the shuffling
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// The checkpoint rank 0 writes; metrics.csv and metrics.svg go beside it
    #[arg(
        long,
        value_name = "PATH",
        default_value = "runs/mnist_ddp/model.safetensors"
    )]
    pub save: PathBuf,
    /// Write no files
    #[arg(long)]
    pub no_save: bool,
    /// Evaluate on the first N test images only (tests)
    #[arg(long, value_name = "N", value_parser = cli::positive, hide = true)]
    pub test_limit: Option<usize>,
    /// Exit with status 1 if the final test accuracy is below P %
    #[arg(long, value_name = "P", value_parser = cli::percent)]
    pub target_acc: Option<f32>,
}

fn main() {
    cli::init_logging();
    let args: Cli = clap::Parser::parse();
    #[cfg(feature = "mpi")]
    if distributed::MpiGroup::launched() {
        return match run_mpi(&args) {
            Ok(reports) => mnist::check_target(&reports, args.target_acc),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        };
    }
    match run(&args) {
        Ok(reports) => mnist::check_target(&reports, args.target_acc),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

/// The devices of `n` ranks.
pub fn devices(choice: cli::DeviceChoice, n: usize) -> Result<Vec<Device>> {
    if choice == cli::DeviceChoice::Cpu {
        return Ok(vec![Device::cpu(); n]);
    }
    let hardware = Device::gpus(); // opens every GPU: only when GPUs are wanted
    if choice == cli::DeviceChoice::Best && hardware.is_empty() {
        return Ok(vec![Device::cpu(); n]);
    }
    if hardware.len() >= n {
        return Ok(hardware[..n].to_vec());
    }
    let mut all = vec![Device::gpu()?];
    for _ in 1..n {
        all.push(Device::open_gpu()?);
    }
    Ok(all)
}

fn run(a: &Cli) -> Result<Vec<EpochReport>> {
    let devices = devices(a.device, a.devices)?;
    for (rank, d) in devices.iter().enumerate() {
        println!("rank {rank}: {}", d.info());
    }
    let data = mnist::load_data(a.data.as_deref(), false)?;
    train(&devices, &data, a)
}

/// This process as one rank of an MPI job (`mpirun -np N`; built with `--features mpi`):
/// `--device` chooses the kind, and a rank takes the GPU of its local rank (in turn over the
/// machine's hardware GPUs). A rank that fails aborts the job, so the others do not wait.
#[cfg(feature = "mpi")]
fn run_mpi(a: &Cli) -> Result<Vec<EpochReport>> {
    use distributed::MpiGroup;
    let g = MpiGroup::init()?;
    let local = MpiGroup::local_rank();
    let outcome = (|| {
        let dev = match a.device {
            cli::DeviceChoice::Cpu => Device::cpu(),
            choice => match Device::gpus() {
                gpus if !gpus.is_empty() => gpus[local % gpus.len()].clone(),
                _ if choice == cli::DeviceChoice::Best => Device::cpu(),
                _ => Device::gpu()?,
            },
        };
        println!(
            "rank {} of {} (MPI): {}",
            g.rank(),
            g.world_size(),
            dev.info()
        );
        // The first rank of each machine loads first (downloading if it must), so that the
        // others do not write the same files at once.
        if local == 0 {
            let data = mnist::load_data(a.data.as_deref(), false);
            g.barrier()?;
            Ok((dev, data?))
        } else {
            g.barrier()?;
            Ok((dev, mnist::load_data(a.data.as_deref(), false)?))
        }
    })()
    .and_then(|(dev, data)| {
        if !a.batch_size.is_multiple_of(g.world_size()) {
            return Err(bad(format!(
                "--batch-size {} does not split evenly over {} ranks",
                a.batch_size,
                g.world_size()
            )));
        }
        train_rank(&g, &dev, &data, a)
    });
    outcome.map_err(|e| {
        eprintln!("rank {}: error: {e}", g.rank());
        g.abort(1)
    })
}

/// Trains on `devices`, one rank each, as `a` says; rank 0's per-epoch reports.
pub fn train(devices: &[Device], data: &Mnist, a: &Cli) -> Result<Vec<EpochReport>> {
    if !devices.is_empty() && !a.batch_size.is_multiple_of(devices.len()) {
        return Err(bad(format!(
            "--batch-size {} does not split evenly over {} ranks",
            a.batch_size,
            devices.len()
        )));
    }
    let mut reports = distributed::run_on(devices, |g, dev| train_rank(g, dev, data, a))?;
    Ok(reports.swap_remove(0))
}

/// What each rank runs. Rank 0 returns the per-epoch reports (its evaluation); the others an
/// empty list.
fn train_rank(
    g: &dyn ProcessGroup,
    dev: &Device,
    data: &Mnist,
    a: &Cli,
) -> Result<Vec<EpochReport>> {
    let (rank, world) = (g.rank(), g.world_size());
    // Rank 0 draws the model from the seed as `mnist_cnn` does, alone (the ranks share the
    // global generator); the others' draws are replaced by rank 0's in `new`.
    if rank == 0 {
        manual_seed(a.seed);
    }
    let model = match rank {
        0 => Arch::Cnn.build(dev).and_then(|m| g.barrier().map(|_| m))?,
        _ => g.barrier().and_then(|_| Arch::Cnn.build(dev))?,
    };
    let model = DistributedDataParallel::new(model, g)?;
    let mut opt = Adam::new(
        model.parameters(),
        AdamConfig {
            lr: a.lr,
            ..Default::default()
        },
    )?;
    let train_set = mnist::first(&data.train, a.limit);
    let loader = DataLoader::new(&train_set, a.batch_size / world, dev)?
        .shuffle(a.seed)
        .normalize(MNIST_MEAN, MNIST_STD)?
        .shard(rank, world)?;
    let (mut reports, mut curve) = (Vec::new(), Vec::new());
    for epoch in 1..=a.epochs {
        model.train();
        let start = Instant::now();
        let mut tally = Tally::new(dev)?;
        for batch in loader.epoch(epoch as u64 - 1) {
            let batch = batch?;
            let logits = model.forward(&batch.inputs)?;
            let l = loss::cross_entropy(&logits, &batch.targets, Reduction::Mean)?;
            opt.step(&model.backward(&l)?)?;
            tally.add(
                &logits,
                &batch.targets,
                &l.mul_scalar(batch.targets.numel() as f32)?,
            )?;
        }
        let sums = tally.read()?; // waits for the device
        let seconds = start.elapsed().as_secs_f64();
        let rate = sums.images as f64 / seconds;
        println!(
            "rank {rank}: epoch {epoch}: {} images in {seconds:.1} s, {rate:.0} images/s",
            sums.images
        );
        // Everyone's images and time, for the aggregate.
        let mine: Vec<u8> = [sums.images as f64, seconds]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let all = g.all_gather_bytes("throughput", &mine)?;
        if rank != 0 {
            continue;
        }
        let figures: Vec<(f64, f64)> = all
            .iter()
            .map(|b| {
                let at = |i: usize| b.get(i..i + 8).and_then(|x| x.try_into().ok());
                (
                    f64::from_le_bytes(at(0).unwrap_or_default()),
                    f64::from_le_bytes(at(8).unwrap_or_default()),
                )
            })
            .collect();
        let images: f64 = figures.iter().map(|f| f.0).sum();
        let slowest = figures.iter().map(|f| f.1).fold(0.0, f64::max);
        let (train_loss, train_acc) = sums.means();
        let test_set = mnist::first(&data.test, a.test_limit);
        let (test_loss, test_acc) = mnist::evaluate(model.module(), &test_set, dev)?;
        println!(
            "epoch {epoch}/{}: {world} ranks, {images:.0} images in {slowest:.1} s, {:.0} images/s in all | \
             rank 0 train loss {train_loss:.4} acc {train_acc:.2} % | test loss {test_loss:.4} acc {test_acc:.2} %",
            a.epochs,
            images / slowest
        );
        curve.push((epoch as f64, train_loss, train_acc));
        reports.push(EpochReport {
            epoch,
            train_loss,
            train_acc,
            test_loss,
            test_acc,
            seconds: slowest,
            images_per_s: images / slowest,
        });
        if !a.no_save {
            mnist::save_run(&a.save, Arch::Cnn, model.module(), &reports, &curve)?;
        }
    }
    // The replicas must be bit for bit the same: each rank prints a hash of its parameters.
    let hash = parameter_hash(&model)?;
    println!("rank {rank}: parameter hash {hash:016x}");
    let hashes = g.all_gather_bytes("parameter hash", &hash.to_le_bytes())?;
    if hashes.iter().any(|h| h.as_slice() != hash.to_le_bytes()) {
        return Err(bad("the ranks' parameters differ"));
    }
    if rank == 0 && !a.no_save {
        println!(
            "saved {} (and metrics.csv, metrics.svg beside it)",
            a.save.display()
        );
    }
    Ok(reports)
}

/// FNV-1a over the parameters' f32 bytes, in order.
fn parameter_hash(model: &impl Module) -> Result<u64> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in model.parameters() {
        for x in p.value().to_vec()? {
            for b in x.to_le_bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    Ok(h)
}

fn bad(msg: impl Into<String>) -> Error {
    Error::InvalidArgument {
        op: "mnist_ddp",
        msg: msg.into(),
    }
}
