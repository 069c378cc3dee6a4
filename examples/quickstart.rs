//! The README's first program: tensors on a device, a matmul, relu, softmax, read back.
//!
//! `cargo run --release --example quickstart` (add `-- gpu` to run on any adapter, software
//! ones like llvmpipe included; the default picks a hardware GPU or the CPU backend).

#[path = "common/cli.rs"]
mod cli;

use clap::Parser;
use ferrograd::Tensor;

/// The README's first program: a matmul, relu and softmax on a device, read back
#[derive(Parser, Debug)]
#[command(name = "quickstart")]
struct Cli {
    /// Where to run (gpu: any adapter, software ones like llvmpipe included)
    #[arg(value_enum, default_value_t)]
    device: cli::DeviceChoice,
}

fn main() -> ferrograd::Result<()> {
    cli::init_logging();
    let dev = Cli::parse().device.open()?;
    println!("device: {}", dev.info());

    let x = Tensor::from_vec(vec![1.0, -2.0, 3.0, 0.5, 0.0, -1.0], &[2, 3], &dev)?;
    let w = Tensor::from_vec(vec![0.5, -1.0, 1.0, 2.0, -0.5, 0.0], &[3, 2], &dev)?;
    let h = x.matmul(&w)?.relu()?; // [2, 3] . [3, 2] -> [2, 2]
    let p = h.softmax(-1)?;
    println!("relu(x.w) =\n{h}");
    println!("softmax   =\n{p}");
    println!("row sums  = {:?}", p.sum(-1, false)?.to_vec()?);
    println!("argmax    = {:?}", p.argmax(-1, false)?.to_vec_as::<i32>()?);
    Ok(())
}
