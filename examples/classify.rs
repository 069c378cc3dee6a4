//! Two interleaved spirals, classified by a 2→64→64→2 MLP trained with Adam and cross
//! entropy: the `nn`, `nn::loss` and `optim` APIs end to end.
//!
//!     cargo run --release --example classify                   # the best device
//!     cargo run --release --example classify -- --device cpu    # or gpu
//!     cargo run --release --example classify -- --steps 500     # shorter (may miss 100 %)
//!
//! Target: 100 % training accuracy (the run exits non-zero if it is not reached).

use ferrograd::nn::{loss, Linear, Module, ReLU, Sequential};
use ferrograd::optim::{Adam, AdamConfig, Optimizer};
use ferrograd::{manual_seed, Device, Error, Generator, Result, Tensor};

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

/// `--device cpu|gpu|best` and `--steps N` from the command line.
pub fn args(default_steps: usize) -> Result<(Device, usize)> {
    let bad = |msg: String| Error::InvalidArgument { op: "args", msg };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (mut dev, mut steps) = (None, default_steps);
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| bad(format!("{flag} needs a value")))?;
        match flag.as_str() {
            "--device" => {
                dev = Some(match value.as_str() {
                    "cpu" => Device::cpu(),
                    "gpu" => Device::gpu()?,
                    "best" => Device::best(),
                    other => {
                        return Err(bad(format!("--device is cpu, gpu or best, not {other:?}")))
                    }
                })
            }
            "--steps" => {
                steps = value
                    .parse()
                    .map_err(|_| bad(format!("--steps needs a whole number, not {value:?}")))?
            }
            other => {
                return Err(bad(format!(
                    "unknown flag {other:?} (try --device, --steps)"
                )))
            }
        }
    }
    Ok((dev.unwrap_or_else(Device::best), steps))
}

#[allow(dead_code)] // tests/examples.rs includes this file as a module
fn main() -> Result<()> {
    let (dev, steps) = args(1000)?;
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
