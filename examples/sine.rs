//! Fits y = sin(x) on [-π, π] with a 1→64→64→1 tanh network written with raw tensor ops and
//! trained by plain full-batch gradient descent: autograd end to end, no module API.
//!
//!     cargo run --release --example sine            # the best device
//!     cargo run --release --example sine -- cpu     # or: gpu, both
//!     cargo run --release --example sine -- gpu 500 # fewer steps (500 will miss the target)
//!
//! Target: mean squared error below 1e-3 (the run fails if it is not reached).

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

#[allow(dead_code)] // the shortened run in tests/autograd.rs includes this file as a module
fn main() -> Result<()> {
    let devices = match std::env::args().nth(1).as_deref() {
        Some("cpu") => vec![Device::cpu()],
        Some("gpu") => vec![Device::gpu()?],
        Some("both") => vec![Device::cpu(), Device::gpu()?],
        _ => vec![Device::best()],
    };
    // An optional second argument shortens or lengthens the run.
    let steps = match std::env::args().nth(2) {
        Some(s) => s.parse().map_err(|_| ferrograd::Error::InvalidArgument {
            op: "sine",
            msg: format!("steps must be a positive integer, got {s:?}"),
        })?,
        None => 3000,
    };
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
