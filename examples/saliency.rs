//! Which pixels a decision rests on: saliency maps of the MNIST CNN. Trains the CNN for an
//! epoch (or loads a `mnist_cnn` checkpoint), freezes it, and takes the gradient of each test
//! image's predicted logit with respect to its pixels:
//! - vanilla gradient, `|∂ logit_c / ∂ x|`;
//! - SmoothGrad, the vanilla map averaged over noisy copies of the image (σ = 0.15 of the
//!   input range), which removes the speckle;
//! - gradient × input, `|∂ logit_c / ∂ x · x|` (the pixel's contribution to a linear model).
//!
//! ```text
//! cargo run --release --example saliency                        # train 1 epoch, best device
//! cargo run --release --example saliency -- --model runs/mnist_cnn/model.safetensors
//! cargo run --release --example saliency -- --quick --device gpu
//! ```
//!
//! Writes `runs/saliency/saliency.png` (a row per digit: input, vanilla, SmoothGrad,
//! gradient × input, the vanilla map over the digit). Its claim, checked at the end (exit
//! status 1 if missed): on the test digits the mean vanilla saliency of stroke pixels
//! (input > 0.5) is at least twice that of background pixels.

#[path = "common/mnist.rs"]
pub mod mnist;
#[path = "common/picture.rs"]
mod picture;

use std::path::PathBuf;

use ferrograd::data::{ImageSet, MNIST_MEAN, MNIST_STD};
use ferrograd::nn::{self, Module};
use ferrograd::{DType, Device, Error, Generator, Result, Tensor};
use mnist::cli;

/// The claim: stroke saliency over background saliency.
pub const TARGET_RATIO: f32 = 2.0;

/// Shows which pixels the MNIST CNN's decisions rest on (vanilla gradient, SmoothGrad,
/// gradient × input)
#[derive(clap::Parser, Debug)]
#[command(name = "saliency")]
struct Cli {
    #[command(flatten)]
    run: cli::StudyArgs,
    /// A mnist_cnn checkpoint to explain instead of training one
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
    /// Test images the claim is measured on
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = cli::positive)]
    eval: usize,
    /// Where saliency.png goes
    #[arg(long, value_name = "DIR", default_value = "runs/saliency")]
    out: PathBuf,
}

/// The three maps of a batch, each `[b, 784]` on the host.
pub struct Maps {
    pub vanilla: Vec<f32>,
    pub smooth: Vec<f32>,
    pub times_input: Vec<f32>,
}

/// `∂ logit_c / ∂ x` for each image of `x` `[b, 1, 28, 28]` (normalised) at its predicted
/// class `c`, and the classes. The model must be in eval mode (each image's logits then depend
/// on that image only, so one backward of the sum of the picked logits gives every image's
/// gradient) and frozen (no parameter gradient is computed).
/// With `class`, the gradient of that class's logit instead (SmoothGrad keeps the clean
/// image's class for every noisy copy).
pub fn input_gradient(
    model: &dyn Module,
    x: &Tensor,
    class: Option<&Tensor>,
) -> Result<(Tensor, Tensor)> {
    let x = x.detach().requires_grad();
    let logits = model.forward(&x)?; // [b, 10]
    let predicted = match class {
        Some(c) => c.clone(),
        None => logits.argmax(1, false)?, // [b] I32
    };
    let pick = predicted.one_hot(10)?.to_dtype(DType::F32)?; // [b, 10]
    let grads = logits.mul(&pick)?.sum_all()?.backward()?;
    let g = grads
        .get(&x)
        .cloned()
        .ok_or_else(|| Error::InvalidArgument {
            op: "saliency",
            msg: "the input got no gradient".into(),
        })?;
    Ok((g, predicted))
}

/// The three maps of the images `set.images[first..first + b]`.
pub fn maps(
    model: &dyn Module,
    set: &ImageSet,
    first: usize,
    b: usize,
    dev: &Device,
) -> Result<Maps> {
    let px = set.pixels();
    let raw: Vec<f32> = set.images[first * px..(first + b) * px]
        .iter()
        .map(|&p| f32::from(p) / 255.0)
        .collect();
    let normalised: Vec<f32> = raw.iter().map(|v| (v - MNIST_MEAN) / MNIST_STD).collect();
    let x = Tensor::from_vec(normalised, &[b, 1, set.height, set.width], dev)?;
    let (g, class) = input_gradient(model, &x, None)?;
    let vanilla = g.abs()?;
    // SmoothGrad: noise of 0.15 of the (normalised) input range, 16 draws.
    let (draws, sigma) = (16, 0.15 / MNIST_STD);
    let mut gen = Generator::new(7);
    let mut smooth = Tensor::zeros(x.shape(), dev)?;
    for _ in 0..draws {
        let noise = Tensor::randn_with(x.shape(), 0.0, sigma, &mut gen, dev)?;
        let (noisy, _) = input_gradient(model, &x.add(&noise)?, Some(&class))?;
        smooth = smooth.add(&noisy.abs()?)?;
    }
    let smooth = smooth.div_scalar(draws as f32)?;
    // Gradient × input, with the input as pixels in [0, 1] (0 is the background).
    let raw_t = Tensor::from_vec(raw, x.shape(), dev)?;
    let times_input = g.mul(&raw_t)?.abs()?;
    Ok(Maps {
        vanilla: vanilla.to_vec()?,
        smooth: smooth.to_vec()?,
        times_input: times_input.to_vec()?,
    })
}

/// Mean vanilla saliency on stroke pixels (input > 0.5) over that on the other pixels
/// (background and stroke edges), on the first `n` images of `set`, in batches of 100.
pub fn stroke_ratio(model: &dyn Module, set: &ImageSet, n: usize, dev: &Device) -> Result<f32> {
    let (mut stroke, mut background) = ((0.0f64, 0usize), (0.0f64, 0usize));
    let px = set.pixels();
    let n = n.min(set.len());
    for first in (0..n).step_by(100) {
        let b = 100.min(n - first);
        let pixels: Vec<f32> = set.images[first * px..(first + b) * px]
            .iter()
            .map(|&p| (f32::from(p) / 255.0 - MNIST_MEAN) / MNIST_STD)
            .collect();
        let x = Tensor::from_vec(pixels, &[b, 1, set.height, set.width], dev)?;
        let vanilla = input_gradient(model, &x, None)?.0.abs()?.to_vec()?;
        for (i, &s) in vanilla.iter().enumerate() {
            let ink = set.images[first * px + i] > 127;
            let acc = if ink { &mut stroke } else { &mut background };
            acc.0 += f64::from(s);
            acc.1 += 1;
        }
    }
    let mean = |(sum, count): (f64, usize)| sum / count.max(1) as f64;
    Ok((mean(stroke) / mean(background).max(1e-30)) as f32)
}

/// A row per image: input, vanilla, SmoothGrad, gradient × input, vanilla over the input.
fn picture(
    model: &dyn Module,
    set: &ImageSet,
    rows: usize,
    dev: &Device,
) -> Result<Vec<Vec<picture::Tile>>> {
    let m = maps(model, set, 0, rows, dev)?;
    let px = set.pixels();
    Ok((0..rows)
        .map(|r| {
            let image: Vec<f32> = set.images[r * px..(r + 1) * px]
                .iter()
                .map(|&p| f32::from(p) / 255.0)
                .collect();
            let part = |v: &[f32]| v[r * px..(r + 1) * px].to_vec();
            vec![
                picture::gray(&image),
                picture::heat(&part(&m.vanilla)),
                picture::heat(&part(&m.smooth)),
                picture::heat(&part(&m.times_input)),
                picture::overlay(&image, &part(&m.vanilla)),
            ]
        })
        .collect())
}

#[allow(dead_code)] // tests/mnist.rs includes this file as a module
fn main() {
    use clap::Parser;
    cli::init_logging();
    match run(Cli::parse()) {
        Ok(ratio) if ratio >= TARGET_RATIO => {}
        Ok(ratio) => {
            eprintln!("FAILED: stroke/background saliency {ratio:.2} is below {TARGET_RATIO}");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

fn run(args: Cli) -> Result<f32> {
    let run = &args.run;
    let dev = run.device.open()?;
    println!("device: {}", dev.info());
    let data = mnist::load_data(run.data.as_deref(), false)?;
    let model = match &args.model {
        Some(path) => {
            let model = mnist::Arch::Cnn.build(&dev)?;
            nn::load(path, &model)?;
            println!("loaded {}", path.display());
            model
        }
        None => {
            let o = mnist::study_options(&dev, run.epochs, run.quick.then_some(3000));
            mnist::train(mnist::Arch::Cnn, &data, &o)?.0
        }
    };
    model.eval();
    model.freeze(); // only input gradients from here on
    let eval = if run.quick { 100 } else { args.eval };
    let ratio = stroke_ratio(&model, &data.test, eval, &dev)?;
    let path = args.out.join("saliency.png");
    picture::write_grid(&path, &picture(&model, &data.test, 8, &dev)?, 28)?;
    println!(
        "mean saliency on stroke pixels / on background, {eval} test digits: {ratio:.2} \
         (target {TARGET_RATIO}); wrote {}",
        path.display()
    );
    Ok(ratio)
}
