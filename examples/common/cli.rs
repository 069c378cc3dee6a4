//! What every example's command line shares (parsed with `clap`): the device choice, value
//! checks for numbers that must be positive, and the logger that shows why `Device::best()`
//! chose its device (`RUST_LOG=ferrograd=info`).

#![allow(dead_code)] // each example uses part of it

use std::path::PathBuf;

use clap::ValueEnum;
use ferrograd::{DType, Device, Result};

/// Where to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum DeviceChoice {
    /// A hardware GPU if there is one, else the CPU backend
    #[default]
    Best,
    /// The CPU backend
    Cpu,
    /// The best GPU adapter, software ones (llvmpipe) included; an error if there is none
    Gpu,
}

impl DeviceChoice {
    pub fn open(self) -> Result<Device> {
        match self {
            DeviceChoice::Best => Ok(Device::best()),
            DeviceChoice::Cpu => Ok(Device::cpu()),
            DeviceChoice::Gpu => Device::gpu(),
        }
    }
}

/// A whole number of at least 1 (`--epochs 0` is refused, not a run that trains nothing).
pub fn positive(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a whole number")),
    }
}

/// A finite number above 0 (a learning rate, a noise level).
pub fn positive_f32(s: &str) -> std::result::Result<f32, String> {
    match s.parse::<f32>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        Ok(x) => Err(format!("{x} must be finite and above 0")),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

/// A percentage in [0, 100].
pub fn percent(s: &str) -> std::result::Result<f32, String> {
    match s.parse::<f32>() {
        Ok(x) if (0.0..=100.0).contains(&x) => Ok(x),
        Ok(x) => Err(format!("{x} is not a percentage in [0, 100]")),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

/// Logs to stderr at the level `RUST_LOG` sets (nothing by default): `RUST_LOG=ferrograd=info`
/// shows which adapter a device uses and why `best` chose it.
pub fn init_logging() {
    let _ = env_logger::builder().format_timestamp(None).try_init();
}

/// Ends an example that checks claims: exit status 0 when `outcome` holds no missed claim;
/// else each missed claim (or the error) on stderr and status 1.
pub fn finish(outcome: Result<Vec<String>>) {
    match outcome {
        Ok(missed) if missed.is_empty() => {}
        Ok(missed) => {
            missed.iter().for_each(|m| eprintln!("FAILED: {m}"));
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

/// The MNIST training examples' flags (`mnist_cnn`, `mnist_mlp`); their defaults that depend on
/// the model are `None` here and filled in by `Options::parse`.
#[derive(clap::Parser, Debug)]
pub struct TrainCli {
    /// Where to train
    #[arg(long, value_enum, default_value_t)]
    pub device: DeviceChoice,
    /// Passes over the training set [default: 3 for the CNN, 10 for the MLP]
    #[arg(long, value_name = "N", value_parser = positive)]
    pub epochs: Option<usize>,
    /// Images per step
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = positive)]
    pub batch_size: usize,
    /// Adam's learning rate
    #[arg(long, value_name = "X", default_value_t = 1e-3, value_parser = positive_f32)]
    pub lr: f32,
    /// Anneal the rate to 0 along a cosine over the run [the MLP's default]
    #[arg(long, conflicts_with = "constant_lr")]
    pub cosine: bool,
    /// Keep the rate constant [the CNN's default]
    #[arg(long)]
    pub constant_lr: bool,
    /// The directory with the four MNIST files [default: the cache directory, downloading
    /// them there if missing]
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Fashion-MNIST instead of MNIST
    #[arg(long)]
    pub fashion: bool,
    /// Train on the first N images only (quick runs)
    #[arg(long, value_name = "N", value_parser = positive)]
    pub limit: Option<usize>,
    /// Seed of the initial weights, the shuffling and dropout
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Random shifts and rotations (and flips for --fashion)
    #[arg(long)]
    pub augment: bool,
    /// The checkpoint; metrics.csv and metrics.svg go beside it [default:
    /// runs/<example>/model.safetensors]
    #[arg(long, value_name = "PATH", conflicts_with = "no_save")]
    pub save: Option<PathBuf>,
    /// Write no files
    #[arg(long)]
    pub no_save: bool,
    /// Exit with status 1 if the final test accuracy is below P %
    #[arg(long, value_name = "P", value_parser = percent)]
    pub target_acc: Option<f32>,
    /// Steps between progress updates
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = positive)]
    pub log_every: usize,
    /// The model's float type: f16 and bf16 train in mixed precision (half weights and
    /// activations, f32 master weights and loss; f16 scales the loss)
    #[arg(long, value_enum, default_value_t)]
    pub precision: Precision,
}

/// `--precision`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Precision {
    #[default]
    F32,
    F16,
    Bf16,
}

impl Precision {
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
            Precision::Bf16 => DType::BF16,
        }
    }
}

/// The flags of the examples that train an MNIST CNN to study it (`saliency`, `adversarial`).
#[derive(clap::Args, Debug)]
pub struct StudyArgs {
    /// Where to run
    #[arg(long, value_enum, default_value_t)]
    pub device: DeviceChoice,
    /// Training epochs of each model
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = positive)]
    pub epochs: usize,
    /// The directory with the four MNIST files [default: the cache directory, downloading]
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// A quick run for tests and slow devices: train on 3,000 images, measure on fewer
    #[arg(long)]
    pub quick: bool,
}
