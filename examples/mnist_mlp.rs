//! The MNIST MLP: flatten → linear(784→256)–ReLU → linear(256→10), Adam 1e-3, batch 64.
//!
//!     cargo run --release --example mnist_mlp                           # 10 epochs, best device
//!     cargo run --release --example mnist_mlp -- --data ../shared/data/mnist --target-acc 98.0
//!     cargo run --release --example mnist_mlp -- --help
//!
//! Reaches about 98 % test accuracy. Writes `runs/mnist_mlp/model.safetensors`, `metrics.csv`
//! and `metrics.svg`; `mnist_predict` reads the checkpoint.

#[path = "common/mnist.rs"]
mod mnist;

fn main() {
    if let Err(e) = mnist::main_for(
        mnist::Arch::Mlp,
        "Trains the MNIST MLP (784 - 256 - 10) with Adam",
    ) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
