//! Loads a checkpoint written by `mnist_cnn` or `mnist_mlp` and either reports its test-set
//! accuracy or classifies images of handwritten digits.
//!
//!     cargo run --release --example mnist_predict                         # test accuracy
//!     cargo run --release --example mnist_predict -- --model runs/mnist_mlp/model.safetensors
//!     cargo run --release --example mnist_predict -- digit.png photo.jpg  # images
//!     cargo run --release --example mnist_predict -- --help
//!
//! The checkpoint's `architecture` metadata says which model to build. An image may be any
//! size and a PNG, JPEG, BMP, GIF or WebP; it is prepared as MNIST's digits were: gray, light
//! on dark (a drawing on white paper is inverted), the digit cropped, scaled to fit 20×20 and
//! centred by its mass in 28×28 (`examples/common/digit.rs`).

#[path = "common/digit.rs"]
mod digit;
#[path = "common/mnist.rs"]
mod mnist;

use std::path::PathBuf;

use clap::Parser;
use ferrograd::data::{MNIST_MEAN, MNIST_STD};
use ferrograd::nn::{self, Module};
use ferrograd::{no_grad, Device, Error, Result, Tensor};
use mnist::cli::DeviceChoice;

/// Classifies digit images with a trained MNIST checkpoint, or scores it on the test set
#[derive(Parser, Debug)]
#[command(name = "mnist_predict")]
struct Cli {
    /// Images to classify (any size; PNG, JPEG, BMP, GIF or WebP); none: report the
    /// checkpoint's test-set accuracy
    images: Vec<PathBuf>,
    /// The checkpoint, written by mnist_cnn or mnist_mlp
    #[arg(
        long,
        value_name = "PATH",
        default_value = "runs/mnist_cnn/model.safetensors"
    )]
    model: PathBuf,
    /// Where to run
    #[arg(long, value_enum, default_value_t)]
    device: DeviceChoice,
    /// The directory with the four MNIST files, for the test set [default: the cache
    /// directory, downloading them there if missing]
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Fashion-MNIST's test set instead of MNIST's
    #[arg(long)]
    fashion: bool,
}

fn bad(msg: String) -> Error {
    Error::InvalidArgument {
        op: "mnist_predict",
        msg,
    }
}

fn main() {
    mnist::cli::init_logging();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let model_path = cli.model;
    if !model_path.exists() {
        return Err(bad(format!(
            "no checkpoint at {}: train one first (cargo run --release --example mnist_cnn), \
             or give --model PATH",
            model_path.display()
        )));
    }
    let device = cli.device.open()?;
    // The architecture comes from the checkpoint's metadata.
    let meta = nn::load_tensors(&model_path, &Device::cpu())?.metadata;
    let name = meta.get("architecture").map(String::as_str).unwrap_or("");
    let arch = mnist::Arch::from_name(name).ok_or_else(|| {
        bad(format!(
            "{} holds architecture {name:?}, not mnist_cnn or mnist_mlp",
            model_path.display()
        ))
    })?;
    let model = arch.build(&device)?;
    nn::load(&model_path, &model)?;
    model.eval();
    println!(
        "{} from {} on {}",
        arch.name(),
        model_path.display(),
        device.info()
    );

    if cli.images.is_empty() {
        let set = mnist::load_data(cli.data.as_deref(), cli.fashion)?;
        let (loss, acc) = mnist::evaluate(&model, &set.test, &device)?;
        println!(
            "test set: {} images, loss {loss:.4}, accuracy {acc:.2} %",
            set.test.len()
        );
        return Ok(());
    }
    for path in &cli.images {
        let pixels = digit::read_digit(path)?;
        let x: Vec<f32> = pixels
            .iter()
            .map(|&p| (f32::from(p) / 255.0 - MNIST_MEAN) / MNIST_STD)
            .collect();
        let x = Tensor::from_vec(x, &[1, 1, 28, 28], &device)?;
        let probs = no_grad(|| model.forward(&x)?.softmax(1))?.to_vec()?;
        let mut ranked: Vec<(usize, f32)> = probs.into_iter().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        println!("{}: class {}", path.display(), ranked[0].0);
        for (class, p) in &ranked[..3] {
            println!("  {class}: {:.2} %", p * 100.0);
        }
    }
    Ok(())
}
