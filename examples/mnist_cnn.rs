//! The MNIST CNN: conv(1→32, 3×3, pad 1)–ReLU–maxpool 2 → conv(32→64)–ReLU–maxpool 2 →
//! flatten → linear(3136→128)–ReLU–dropout → linear(128→10), Adam 1e-3, batch 64.
//!
//!     cargo run --release --example mnist_cnn                           # 3 epochs, best device
//!     cargo run --release --example mnist_cnn -- --data ../shared/data/mnist --epochs 3 \
//!         --target-acc 99.0
//!     cargo run --release --example mnist_cnn -- --device gpu --epochs 1 --target-acc 98.0
//!     cargo run --release --example mnist_cnn -- --help
//!
//! Reaches about 98.5 % test accuracy after one epoch and 99 % within three. Writes
//! `runs/mnist_cnn/model.safetensors`, `metrics.csv` and `metrics.svg`; `mnist_predict` reads
//! the checkpoint.

#[path = "common/mnist.rs"]
mod mnist;

fn main() {
    if let Err(e) = mnist::main_for(
        mnist::Arch::Cnn,
        "Trains the MNIST CNN (conv 32 - conv 64 - linear 128 - linear 10) with Adam",
    ) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
