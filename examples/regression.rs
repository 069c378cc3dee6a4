//! Multi-input linear regression on a synthetic fuel-economy table: predict a car's CO2
//! emissions (g/km) from its engine size (L), cylinders and fuel use (L/100 km). The features
//! are standardised (mean 0, std 1, statistics from the training rows) before an
//! `nn::Linear(3, 1)` is fitted with Adam on the MSE; the run prints the held-out error.
//!
//!     cargo run --release --example regression                  # the best device
//!     cargo run --release --example regression -- --device cpu  # or gpu; --steps N
//!
//! The table follows CO2 = 23.2 × fuel use + 1.5 × engine size + noise (std 4 g/km): petrol
//! gives about 2.32 kg of CO2 per litre. Target: held-out RMSE within 10 % of the noise.

#[path = "classify.rs"]
#[allow(dead_code)]
pub mod classify; // for `args` (and for tests/examples.rs)

use ferrograd::nn::{loss, Linear, Module};
use ferrograd::optim::{Adam, AdamConfig, Optimizer};
use ferrograd::{manual_seed, Device, Generator, Result, Tensor};

pub const NOISE: f32 = 4.0;
const ROWS: usize = 600;
const TRAIN: usize = 500;

/// `[ROWS, 3]` features (engine L, cylinders, fuel L/100 km) and `[ROWS, 1]` CO2 g/km.
pub fn table() -> Result<(Vec<f32>, Vec<f32>)> {
    let cpu = Device::cpu();
    let mut gen = Generator::new(11);
    let u = Tensor::rand_with(&[ROWS], 0.0, 1.0, &mut gen, &cpu)?.to_vec()?;
    let n = Tensor::randn_with(&[ROWS, 2], 0.0, 1.0, &mut gen, &cpu)?.to_vec()?;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..ROWS {
        let engine = 1.0 + 5.0 * u[i]; // 1.0 .. 6.0 L
        let cylinders = match engine {
            e if e < 1.4 => 3.0,
            e if e < 2.6 => 4.0,
            e if e < 3.8 => 6.0,
            e if e < 5.2 => 8.0,
            _ => 12.0,
        };
        let fuel = 3.5 + 1.7 * engine + 0.6 * n[2 * i]; // L/100 km
        x.extend([engine, cylinders, fuel]);
        y.push(23.2 * fuel + 1.5 * engine + NOISE * n[2 * i + 1]);
    }
    Ok((x, y))
}

/// Fits for `steps` and returns the held-out RMSE in g/km.
pub fn fit(dev: &Device, steps: usize, log: bool) -> Result<f32> {
    manual_seed(2);
    let (x, y) = table()?;
    let x = Tensor::from_vec(x, &[ROWS, 3], dev)?;
    let y = Tensor::from_vec(y, &[ROWS, 1], dev)?;
    let (x_train, y_train) = (x.narrow(0, 0, TRAIN)?, y.narrow(0, 0, TRAIN)?);
    let (x_test, y_test) = (
        x.narrow(0, TRAIN, ROWS - TRAIN)?,
        y.narrow(0, TRAIN, ROWS - TRAIN)?,
    );

    // Standardise with the training rows' statistics: [1, 3] and [1, 1].
    let (mean, std) = (x_train.mean(0, true)?, x_train.var(0, true)?.sqrt()?);
    let (y_mean, y_std) = (y_train.mean(0, true)?, y_train.var(0, true)?.sqrt()?);
    let scale = |x: &Tensor| x.sub(&mean)?.div(&std);
    let (xs, ys) = (scale(&x_train)?, y_train.sub(&y_mean)?.div(&y_std)?);

    let model = Linear::new(3, 1, true, dev)?;
    let cfg = AdamConfig {
        lr: 0.05,
        ..Default::default()
    };
    let mut opt = Adam::new(model.parameters(), cfg)?;
    for step in 1..=steps {
        let l = loss::mse(&model.forward(&xs)?, &ys, loss::Reduction::Mean)?;
        opt.step(&l.backward()?)?;
        if log && step % 100 == 0 {
            println!("  step {step:>4}  scaled mse {:.5}", l.to_scalar()?);
        }
    }
    // Predictions in g/km: undo the target scaling.
    let pred = model.forward(&scale(&x_test)?)?.mul(&y_std)?.add(&y_mean)?;
    let rmse = loss::mse(&pred, &y_test, loss::Reduction::Mean)?
        .sqrt()?
        .to_scalar()?;
    if log {
        // Coefficients per original unit: w / std_feature * std_y.
        let w = model.weight.value().div(&std)?.mul(&y_std)?.to_vec()?;
        println!(
            "  fitted g/km per unit: engine {:.2}, cylinders {:.2}, fuel {:.2} (true: 1.5, 0, 23.2)",
            w[0], w[1], w[2]
        );
    }
    Ok(rmse)
}

fn main() -> Result<()> {
    let (dev, steps) = classify::args(
        "regression",
        "CO2 emissions from engine size, cylinders and fuel use: a linear model by gradient descent",
        1500,
    )?;
    println!(
        "CO2 regression, {TRAIN} training and {} held-out rows, on {}",
        ROWS - TRAIN,
        dev.info()
    );
    let rmse = fit(&dev, steps, true)?;
    println!("held-out RMSE {rmse:.2} g/km (noise std {NOISE} g/km)");
    if rmse.is_nan() || rmse > 1.1 * NOISE {
        eprintln!("FAILED: RMSE {rmse:.2} is more than 10 % above the noise {NOISE}");
        std::process::exit(1);
    }
    Ok(())
}
