//! Fits y = sin(x) on [-π, π] with a 1→64→64→1 tanh network written with raw tensor ops and
//! trained by plain full-batch gradient descent: autograd end to end, no module API.
//!
//!     cargo run --release --example sine                             # the best device
//!     cargo run --release --example sine -- --device cpu             # or: gpu, both
//!     cargo run --release --example sine -- --device gpu --steps 500 # misses the target
//!
//! Target: mean squared error below 1e-3 (the run fails if it is not reached).

#[path = "common/cli.rs"]
mod cli;

use ferrograd::{no_grad, Device, Generator, Result, Tensor};

/// Training points and the MSE the run must reach.
pub const POINTS: usize = 256;
pub const TARGET_MSE: f32 = 1e-3;

/// Trains for `steps` and returns the final MSE, printing it every `log_every` steps (0: never).
pub fn train(dev: &Device, steps: usize, log_every: usize) -> Result<f32> {
    let x = Tensor::linspace(-std::f32::consts::PI, std::f32::consts::PI, POINTS, dev)?
        .reshape(&[POINTS, 1])?; // [N, 1]
                                 // The targets are data: sin is computed on the host once (the crate has no sin op).
    let targets: Vec<f32> = x.to_vec()?.iter().map(|v| v.sin()).collect();
    let y = Tensor::from_vec(targets, &[POINTS, 1], dev)?; // [N, 1]

    // PyTorch's nn.Linear init: weights and biases ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), the
    // same on every device for a given seed. Random biases spread the tanh units' centres
    // over the interval, which is most of what fitting a curve needs.
    let mut gen = Generator::new(7);
    let mut layer = |fan_in: usize, fan_out: usize| -> Result<[Tensor; 2]> {
        let k = (1.0 / fan_in as f32).sqrt();
        let w = Tensor::rand_with(&[fan_in, fan_out], -k, k, &mut gen, dev)?;
        let b = Tensor::rand_with(&[fan_out], -k, k, &mut gen, dev)?;
        Ok([w.requires_grad(), b.requires_grad()])
    };
    let mut params: Vec<Tensor> = [layer(1, 64)?, layer(64, 64)?, layer(64, 1)?].concat();

    let lr = 0.1;
    let mut mse = f32::NAN;
    for step in 1..=steps {
        // forward: [N, 1] -> [N, 64] -> [N, 64] -> [N, 1]
        let h1 = x.matmul(&params[0])?.add(&params[1])?.tanh()?;
        let h2 = h1.matmul(&params[2])?.add(&params[3])?.tanh()?;
        let pred = h2.matmul(&params[4])?.add(&params[5])?;
        let loss = pred.sub(&y)?.square()?.mean_all()?;

        let grads = loss.backward()?;
        // p <- p - lr * dL/dp, outside the graph; the result is a fresh leaf.
        params = no_grad(|| {
            params
                .iter()
                .map(|p| {
                    let g = grads.get(p).expect("every parameter reaches the loss");
                    Ok(p.sub(&g.mul_scalar(lr)?)?.requires_grad())
                })
                .collect::<Result<Vec<_>>>()
        })?;

        // Reading the loss waits for the device, so only do it when printing or at the end.
        if step == steps || (log_every > 0 && step % log_every == 0) {
            mse = loss.to_scalar()?;
            if log_every > 0 {
                println!("  step {step:>5}  mse {mse:.6}");
            }
        }
    }
    Ok(mse)
}

/// Where to fit: one device, or the CPU and then the GPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
enum Devices {
    /// A hardware GPU if there is one, else the CPU backend
    #[default]
    Best,
    /// The CPU backend
    Cpu,
    /// The best GPU adapter, software ones included
    Gpu,
    /// The CPU, then the GPU
    Both,
}

/// Fits y = sin(x) with a 1-64-64-1 tanh network written with raw tensor ops
#[derive(clap::Parser, Debug)]
#[command(name = "sine")]
struct Cli {
    /// Where to fit
    #[arg(long, value_enum, default_value_t)]
    device: Devices,
    /// Gradient-descent steps (the target needs about 3000)
    #[arg(long, value_name = "N", default_value_t = 3000, value_parser = cli::positive)]
    steps: usize,
}

#[allow(dead_code)] // the shortened run in tests/autograd.rs includes this file as a module
fn main() -> Result<()> {
    use clap::Parser;
    cli::init_logging();
    let args = Cli::parse();
    let devices = match args.device {
        Devices::Best => vec![Device::best()],
        Devices::Cpu => vec![Device::cpu()],
        Devices::Gpu => vec![Device::gpu()?],
        Devices::Both => vec![Device::cpu(), Device::gpu()?],
    };
    let steps = args.steps;
    for dev in devices {
        println!("fitting sin(x) on {}", dev.info());
        let start = std::time::Instant::now();
        let mse = train(&dev, steps, 500)?;
        println!("final mse {mse:.6} in {:.1?}", start.elapsed());
        if mse.is_nan() || mse >= TARGET_MSE {
            eprintln!("FAILED: mse {mse} did not reach the target {TARGET_MSE}");
            std::process::exit(1);
        }
    }
    Ok(())
}
