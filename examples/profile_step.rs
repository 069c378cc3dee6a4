//! Where a training step's time goes, op by op: one MNIST training step (forward, cross
//! entropy, backward, Adam; batch 64, random images) run a few times to warm up, then timed
//! with `ferrograd::profile`.
//!
//!     cargo run --release --example profile_step               # CNN on the CPU
//!     cargo run --release --example profile_step -- gpu mlp    # device: cpu | gpu; model: cnn | mlp
//!     cargo run --release --example profile_step -- conv2      # one conv layer: conv1 | conv2
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

use ferrograd::{profile, Device};

const WARM_UP: usize = 3;
const STEPS: usize = 10;

fn main() -> ferrograd::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dev = match args.iter().any(|a| a == "gpu") {
        true => Device::gpu()?,
        false => Device::cpu(),
    };
    let has = |a: &str| args.iter().any(|x| x == a);
    let case = if has("conv1") || has("conv2") {
        let layer = usize::from(has("conv2"));
        common::cases::conv2d().swap_remove(layer)
    } else if has("mlp") {
        common::cases::train_step("mlp", |d: &Device| mnist::Arch::Mlp.build(d).expect("mlp"))
    } else {
        common::cases::train_step("cnn", |d: &Device| mnist::Arch::Cnn.build(d).expect("cnn"))
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
