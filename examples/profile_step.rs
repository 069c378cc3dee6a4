//! Where a training step's time goes, op by op: one MNIST training step (forward, cross
//! entropy, backward, Adam; batch 64, random images) run a few times to warm up, then timed
//! with `ferrograd::profile`.
//!
//!     cargo run --release --example profile_step                  # CNN on the CPU
//!     cargo run --release --example profile_step -- mlp --device gpu
//!     cargo run --release --example profile_step -- conv2         # one conv layer
//!
//! `conv1` and `conv2` are the CNN's two conv layers alone, forward and backward
//! (`bench_report`'s `conv2d_fwd_bwd` cases).
//!
//! On a GPU each op is waited for before its clock stops, so the times are the kernels' but
//! the step is slower than an unprofiled one (see `ferrograd::profile`).

#[path = "../benches/common/mod.rs"]
mod common; // the benches' cases: `train_step` is the same step `bench_report` times
#[path = "common/mnist.rs"]
mod mnist;

use clap::Parser;
use ferrograd::{profile, Device};

const WARM_UP: usize = 3;
const STEPS: usize = 10;

/// What to profile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
enum Case {
    /// One training step of the MNIST CNN
    #[default]
    Cnn,
    /// One training step of the MNIST MLP
    Mlp,
    /// The CNN's first conv layer alone, forward and backward
    Conv1,
    /// The CNN's second conv layer alone, forward and backward
    Conv2,
}

/// Times one MNIST training step (or conv layer) op by op with ferrograd::profile
#[derive(Parser, Debug)]
#[command(name = "profile_step")]
struct Cli {
    /// What to profile
    #[arg(value_enum, default_value_t)]
    case: Case,
    /// Where to run
    #[arg(long, value_enum, default_value_t = mnist::cli::DeviceChoice::Cpu)]
    device: mnist::cli::DeviceChoice,
}

fn main() -> ferrograd::Result<()> {
    mnist::cli::init_logging();
    let cli = Cli::parse();
    let dev = cli.device.open()?;
    let case = match cli.case {
        Case::Conv1 | Case::Conv2 => {
            common::cases::conv2d().swap_remove(usize::from(cli.case == Case::Conv2))
        }
        Case::Mlp => {
            common::cases::train_step("mlp", |d: &Device| mnist::Arch::Mlp.build(d).expect("mlp"))
        }
        Case::Cnn => {
            common::cases::train_step("cnn", |d: &Device| mnist::Arch::Cnn.build(d).expect("cnn"))
        }
    };
    println!("{} {} on {}", case.family, case.size, dev.info());
    let mut run = (case.setup)(&dev);
    for _ in 0..WARM_UP {
        run().to_vec()?;
    }
    profile::reset();
    profile::enable(true);
    let start = std::time::Instant::now();
    for _ in 0..STEPS {
        run().to_vec()?;
    }
    let elapsed = start.elapsed();
    profile::enable(false);
    println!(
        "{STEPS} runs, {:.2} ms per run (profiled)\n",
        elapsed.as_secs_f64() * 1e3 / STEPS as f64
    );
    println!("{}", profile::report());
    Ok(())
}
