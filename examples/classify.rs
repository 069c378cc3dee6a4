//! Two interleaved spirals, classified by a 2→64→64→2 MLP trained with Adam and cross
//! entropy: the `nn`, `nn::loss` and `optim` APIs end to end.
//!
//!     cargo run --release --example classify                   # the best device
//!     cargo run --release --example classify -- --device cpu    # or gpu
//!     cargo run --release --example classify -- --steps 500     # shorter (may miss 100 %)
//!
//! Target: 100 % training accuracy (the run exits non-zero if it is not reached).

#[path = "common/cli.rs"]
mod cli;

use ferrograd::nn::{loss, Linear, Module, ReLU, Sequential};
use ferrograd::optim::{Adam, AdamConfig, Optimizer};
use ferrograd::{manual_seed, Device, Generator, Result, Tensor};

/// Points per spiral.
pub const PER_CLASS: usize = 200;

/// `[2 * PER_CLASS, 2]` points and their classes `[2 * PER_CLASS]` (0 or 1): two spirals of
/// 2.5 turns, the second the first rotated by π, with a little noise.
pub fn spirals(dev: &Device) -> Result<(Tensor, Tensor)> {
    let mut gen = Generator::new(3);
    let noise = Tensor::randn_with(&[2 * PER_CLASS, 2], 0.0, 0.02, &mut gen, &Device::cpu())?;
    let noise = noise.to_vec()?;
    let (mut xy, mut labels) = (Vec::new(), Vec::new());
    for class in 0..2 {
        for i in 0..PER_CLASS {
            let t = i as f32 / PER_CLASS as f32; // 0..1 along the arm
            let angle = t * 2.5 * 2.0 * std::f32::consts::PI + class as f32 * std::f32::consts::PI;
            let r = 0.1 + 0.9 * t;
            let k = 2 * (class * PER_CLASS + i);
            xy.extend([r * angle.cos() + noise[k], r * angle.sin() + noise[k + 1]]);
            labels.push(class as i32);
        }
    }
    Ok((
        Tensor::from_vec(xy, &[2 * PER_CLASS, 2], dev)?,
        Tensor::from_vec(labels, &[2 * PER_CLASS], dev)?,
    ))
}

/// Trains for `steps` full-batch Adam steps and returns the final training accuracy in %.
pub fn train(dev: &Device, steps: usize, log_every: usize) -> Result<f32> {
    manual_seed(1); // the layers' initial weights
    let (x, y) = spirals(dev)?;
    let model = Sequential::new()
        .add(Linear::new(2, 64, true, dev)?)
        .add(ReLU)
        .add(Linear::new(64, 64, true, dev)?)
        .add(ReLU)
        .add(Linear::new(64, 2, true, dev)?);
    let cfg = AdamConfig {
        lr: 0.01,
        ..Default::default()
    };
    let mut opt = Adam::new(model.parameters(), cfg)?;
    let accuracy = |logits: &Tensor| -> Result<f32> {
        let right = logits.argmax(1, false)?.eq(&y)?.mean_all()?;
        Ok(right.to_scalar()? * 100.0)
    };
    for step in 1..=steps {
        let logits = model.forward(&x)?;
        let l = loss::cross_entropy(&logits, &y, loss::Reduction::Mean)?;
        opt.step(&l.backward()?)?;
        // Reading back waits for the device: only when logging.
        if log_every > 0 && step % log_every == 0 {
            let acc = accuracy(&logits)?;
            println!(
                "  step {step:>5}  loss {:.4}  accuracy {acc:.1} %",
                l.to_scalar()?
            );
        }
    }
    accuracy(&model.forward(&x)?)
}

/// `--device` and `--steps`, shared with `regression`.
#[derive(clap::Parser, Debug)]
pub struct Cli {
    /// Where to train
    #[arg(long, value_enum, default_value_t)]
    pub device: cli::DeviceChoice,
    /// Optimizer steps [default: 1000 here, 1500 for regression]
    #[arg(long, value_name = "N", value_parser = cli::positive)]
    pub steps: Option<usize>,
}

/// The device and step count from the command line (`--help` lists them; a bad value exits
/// with status 2 and says why).
pub fn args(
    name: &'static str,
    about: &'static str,
    default_steps: usize,
) -> Result<(Device, usize)> {
    use clap::{CommandFactory, FromArgMatches};
    cli::init_logging();
    let matches = Cli::command().name(name).about(about).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    Ok((cli.device.open()?, cli.steps.unwrap_or(default_steps)))
}

#[allow(dead_code)] // tests/examples.rs includes this file as a module
fn main() -> Result<()> {
    let (dev, steps) = args(
        "classify",
        "Two spirals classified by a 2-64-64-2 MLP, trained to 100 % accuracy",
        1000,
    )?;
    println!("two spirals, {} points, on {}", 2 * PER_CLASS, dev.info());
    let start = std::time::Instant::now();
    let acc = train(&dev, steps, 250)?;
    println!("training accuracy {acc:.1} % in {:.1?}", start.elapsed());
    if acc < 100.0 {
        eprintln!("FAILED: accuracy {acc:.1} % is below the 100 % target");
        std::process::exit(1);
    }
    Ok(())
}
