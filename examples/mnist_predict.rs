//! Loads a checkpoint written by `mnist_cnn` or `mnist_mlp` and either reports its test-set
//! accuracy or classifies one 28×28 grayscale PNG.
//!
//!     cargo run --release --example mnist_predict                         # test accuracy
//!     cargo run --release --example mnist_predict -- --model runs/mnist_mlp/model.safetensors
//!     cargo run --release --example mnist_predict -- digit.png            # one image
//!
//! Flags: `--model PATH` (default `runs/mnist_cnn/model.safetensors`), `--device cpu|gpu|best`,
//! `--data DIR`, `--fashion`. The checkpoint's `architecture` metadata says which model to
//! build. An image drawn dark on light (a white background) is inverted to MNIST's light on
//! dark.

#[path = "common/mnist.rs"]
mod mnist;

use std::path::{Path, PathBuf};

use ferrograd::data::{MNIST_MEAN, MNIST_STD};
use ferrograd::nn::{self, Module};
use ferrograd::{no_grad, Device, Error, Result, Tensor};

fn bad(msg: String) -> Error {
    Error::InvalidArgument {
        op: "mnist_predict",
        msg,
    }
}

/// A 28×28 image as bytes, light on dark: 8-bit grayscale, gray+alpha, RGB or RGBA PNGs are
/// accepted; other sizes are an error.
fn read_png(path: &Path) -> Result<Vec<u8>> {
    let file_err = |msg: String| Error::File {
        op: "mnist_predict",
        path: path.display().to_string(),
        msg,
    };
    let file = std::fs::File::open(path).map_err(|e| file_err(e.to_string()))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    // 16-bit samples become 8-bit, palettes become RGB.
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .map_err(|e| file_err(format!("not a readable PNG: {e}")))?;
    let (w, h) = (reader.info().width, reader.info().height);
    if (w, h) != (28, 28) {
        return Err(file_err(format!(
            "the image is {w}x{h}; MNIST models take 28x28 (resize it first)"
        )));
    }
    let mut buf = vec![0; reader.output_buffer_size().unwrap_or(0)];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| file_err(format!("corrupt PNG data: {e}")))?;
    let channels = info.color_type.samples();
    let gray: Vec<u8> = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|px| match channels {
            1 | 2 => px[0],
            _ => {
                ((u32::from(px[0]) * 299 + u32::from(px[1]) * 587 + u32::from(px[2]) * 114) / 1000)
                    as u8
            }
        })
        .collect();
    // MNIST digits are white on black; a drawing on white paper is the other way round.
    let border: Vec<u32> = (0..28)
        .flat_map(|i| [i, 27 * 28 + i, i * 28, i * 28 + 27])
        .map(|i| u32::from(gray[i]))
        .collect();
    let mean = border.iter().sum::<u32>() / border.len() as u32;
    Ok(if mean > 127 {
        println!("(light background: inverting the image)");
        gray.iter().map(|&p| 255 - p).collect()
    } else {
        gray
    })
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let mut model_path = PathBuf::from("runs/mnist_cnn/model.safetensors");
    let (mut device, mut data, mut fashion, mut image) = ("best".to_string(), None, false, None);
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| bad(format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--model" => model_path = PathBuf::from(value()?),
            "--device" => device = value()?,
            "--data" => data = Some(PathBuf::from(value()?)),
            "--fashion" => fashion = true,
            flag if flag.starts_with("--") => return Err(bad(format!("unknown flag {flag:?}"))),
            file => image = Some(PathBuf::from(file)),
        }
    }
    if !model_path.exists() {
        return Err(bad(format!(
            "no checkpoint at {}: train one first (cargo run --release --example mnist_cnn), \
             or give --model PATH",
            model_path.display()
        )));
    }
    let device = mnist::parse_device(&device)?;
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

    match image {
        Some(png) => {
            let pixels = read_png(&png)?;
            let x: Vec<f32> = pixels
                .iter()
                .map(|&p| (f32::from(p) / 255.0 - MNIST_MEAN) / MNIST_STD)
                .collect();
            let x = Tensor::from_vec(x, &[1, 1, 28, 28], &device)?;
            let probs = no_grad(|| model.forward(&x)?.softmax(1))?.to_vec()?;
            let mut ranked: Vec<(usize, f32)> = probs.into_iter().enumerate().collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
            println!("{}: class {}", png.display(), ranked[0].0);
            for (class, p) in &ranked[..3] {
                println!("  {class}: {:.2} %", p * 100.0);
            }
        }
        None => {
            let set = mnist::load_data(data.as_deref(), fashion)?;
            let (loss, acc) = mnist::evaluate(&model, &set.test, &device)?;
            println!(
                "test set: {} images, loss {loss:.4}, accuracy {acc:.2} %",
                set.test.len()
            );
        }
    }
    Ok(())
}
