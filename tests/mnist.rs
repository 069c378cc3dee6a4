//! The MNIST examples' training loop (`examples/common/mnist.rs`) on a subset of the real data
//! (`../shared/data/mnist`, or `$FERROGRAD_MNIST`): 5,000 training images, scored on the first
//! 2,000 test images, on the CPU and on the GPU adapter. The models start from the global
//! seed, so the tests take a lock and run their devices in turn.

mod common;

#[path = "../examples/common/digit.rs"]
mod digit;
#[path = "../examples/saliency.rs"]
mod saliency;

use common::devices;
use std::sync::Mutex;

use ferrograd::nn;
use ferrograd::nn::Module;
use ferrograd::{DType, Device};
use saliency::mnist::{self, Arch, Options};

static SEED_LOCK: Mutex<()> = Mutex::new(());

use common::mnist_data as data;

fn subset(arch: Arch, dev: &Device, epochs: usize) -> Options {
    Options {
        device: dev.clone(),
        epochs,
        limit: Some(5000),
        test_limit: Some(2000),
        save: None,
        verbose: false,
        ..Options::defaults(arch)
    }
}

/// Trains `arch` on each device and checks the final test accuracy against `floor` (a few
/// points under what the CPU reaches, so that a different float order cannot fail it, while
/// a broken gradient, optimizer or loader, which stays near 10 %, does).
fn learns(arch: Arch, epochs: usize, floor: f32) {
    learns_in(arch, epochs, floor, DType::F32);
}

fn learns_in(arch: Arch, epochs: usize, floor: f32, precision: DType) {
    let Some(data) = data() else { return };
    let _seed = SEED_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    for dev in devices() {
        let o = Options {
            precision,
            ..subset(arch, &dev, epochs)
        };
        let (model, reports) = mnist::train(arch, &data, &o).unwrap();
        let params = model.parameters();
        assert!(params.iter().all(|p| p.value().dtype() == precision));
        let last = reports.last().unwrap();
        eprintln!("{} on {dev}: {last:?}", arch.name());
        assert_eq!(reports.len(), epochs);
        assert!(
            last.test_acc >= floor,
            "{} on {dev}: test accuracy {:.2} % < {floor} %",
            arch.name(),
            last.test_acc
        );
        assert!(last.train_loss < reports[0].train_loss || epochs == 1);
    }
}

#[test]
fn mlp_learns_on_a_subset() {
    learns(Arch::Mlp, 3, 85.0);
}

#[test]
fn cnn_learns_on_a_subset() {
    learns(Arch::Cnn, 1, 85.0);
}

/// Mixed precision (`--precision f16`: half weights and activations, f32 master weights and
/// loss, a GradScaler) learns as well on a subset.
#[test]
fn f16_mlp_and_cnn_learn_on_a_subset() {
    learns_in(Arch::Mlp, 1, 80.0, DType::F16);
    learns_in(Arch::Cnn, 1, 85.0, DType::F16);
}

#[test]
fn a_run_writes_checkpoint_metrics_and_plot() {
    let Some(data) = data() else { return };
    let _seed = SEED_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("ferrograd-mnist-run-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    let path = dir.join("model.safetensors");
    let o = Options {
        limit: Some(1000),
        test_limit: Some(500),
        epochs: 2,
        save: Some(path.clone()),
        ..subset(Arch::Mlp, &Device::cpu(), 2)
    };
    let (_, reports) = mnist::train(Arch::Mlp, &data, &o).unwrap();

    // The checkpoint reloads into a fresh model with the same test accuracy.
    let fresh = Arch::Mlp.build(&Device::cpu()).unwrap();
    let meta = nn::load(&path, &fresh).unwrap();
    assert_eq!(meta["architecture"], "mnist_mlp");
    let (_, acc) = mnist::evaluate(&fresh, &data.test.take(500), &Device::cpu()).unwrap();
    assert_eq!(acc, reports[1].test_acc);

    // The running curve (every plotted training point), then train and test per epoch.
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "epoch,split,loss,accuracy,seconds");
    let running = lines.iter().filter(|l| l.contains(",running,")).count();
    assert!(running >= 2, "{csv}");
    assert_eq!(lines.len(), 1 + running + 4, "{csv}");
    let tail = &lines[1 + running..];
    assert!(
        tail[0].starts_with("1,train,") && tail[3].starts_with("2,test,"),
        "{csv}"
    );

    // The plot: an SVG with both panels' axis labels and a point per test result.
    let svg = std::fs::read_to_string(dir.join("metrics.svg")).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
    for label in [
        "epoch",
        "mean cross entropy",
        "accuracy (%)",
        "train (running)",
    ] {
        assert!(svg.contains(label), "no {label:?} in the plot");
    }
    assert_eq!(
        svg.matches("<circle").count(),
        2 * 2,
        "a dot per test epoch and panel"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The pixels' centre of mass `(x, y)` of a 28×28 image, by pixel index.
fn centre_of_mass(img: &[u8]) -> (f64, f64) {
    let (mut m, mut x, mut y) = (0.0, 0.0, 0.0);
    for (i, &p) in img.iter().enumerate() {
        let v = f64::from(p);
        m += v;
        x += v * (i % 28) as f64;
        y += v * (i / 28) as f64;
    }
    (x / m, y / m)
}

/// A dark bar drawn on white paper, off-centre in a 300×200 JPEG, becomes a light bar 20
/// pixels tall centred in 28×28; a blank page and a file that is no image are errors.
#[test]
fn a_digit_photo_is_prepared_as_mnist() {
    let dir = std::env::temp_dir().join(format!("ferrograd-digit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bar = image::GrayImage::from_fn(300, 200, |x, y| {
        let ink = (40..52).contains(&x) && (30..150).contains(&y);
        image::Luma([if ink { 20 } else { 235 }])
    });
    let path = dir.join("bar.jpg");
    bar.save(&path).unwrap();
    let img = digit::read_digit(&path).unwrap();
    assert_eq!(img.len(), 784);
    let rows: Vec<usize> = (0..28)
        .filter(|r| img[r * 28..r * 28 + 28].iter().any(|&p| p > 128))
        .collect();
    assert_eq!(rows.len(), 20, "the bar's height: {rows:?}");
    let (cx, cy) = centre_of_mass(&img);
    assert!(
        (cx - 14.0).abs() < 0.6 && (cy - 14.0).abs() < 0.6,
        "({cx}, {cy})"
    );
    assert!(img[0] < 8 && img[783] < 8, "the background is dark");

    let blank = image::GrayImage::from_pixel(50, 50, image::Luma([255]));
    blank.save(dir.join("blank.png")).unwrap();
    let e = digit::read_digit(&dir.join("blank.png")).unwrap_err();
    assert!(e.to_string().contains("holds no digit"), "{e}");
    std::fs::write(dir.join("text.png"), b"not an image").unwrap();
    let e = digit::read_digit(&dir.join("text.png")).unwrap_err();
    assert!(e.to_string().contains("text.png"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// MNIST's own test digits, blown up 4×, drawn dark on white with uneven margins and saved as
/// PNG, come back close to the originals: MNIST prepared them the same way.
#[test]
fn mnist_digits_survive_the_round_trip() {
    let Some(data) = data() else { return };
    let dir = std::env::temp_dir().join(format!("ferrograd-digits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut correlations = Vec::new();
    for i in 0..50 {
        let original = &data.test.images[i * 784..(i + 1) * 784];
        let small = image::GrayImage::from_fn(28, 28, |x, y| {
            image::Luma([255 - original[(y * 28 + x) as usize]])
        });
        let big = image::imageops::resize(&small, 112, 112, image::imageops::FilterType::Triangle);
        let mut page = image::GrayImage::from_pixel(112 + 50, 112 + 70, image::Luma([255]));
        image::imageops::overlay(&mut page, &big, 37, 11);
        let path = dir.join(format!("{i}.png"));
        page.save(&path).unwrap();
        let back = digit::read_digit(&path).unwrap();
        let mean = |v: &[u8]| v.iter().map(|&p| f64::from(p)).sum::<f64>() / 784.0;
        let (ma, mb) = (mean(original), mean(&back));
        let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
        for (&a, &b) in original.iter().zip(&back) {
            let (a, b) = (f64::from(a) - ma, f64::from(b) - mb);
            ab += a * b;
            aa += a * a;
            bb += b * b;
        }
        correlations.push(ab / (aa * bb).sqrt());
    }
    let mean = correlations.iter().sum::<f64>() / correlations.len() as f64;
    let worst = correlations.iter().cloned().fold(1.0, f64::min);
    eprintln!("correlation with the originals: mean {mean:.3}, worst {worst:.3}");
    assert!(
        mean > 0.9 && worst > 0.6,
        "mean {mean:.3}, worst {worst:.3}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The saliency example's claim, softened, on both devices: a CNN trained on 2,000 images
/// puts more than 1.5 times the gradient on stroke pixels as on the other pixels (a broken
/// input gradient gives about 1 or nothing); the input gradient has the input's shape.
#[test]
fn saliency_rests_on_the_strokes() {
    let Some(data) = data() else { return };
    let _seed = SEED_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    for dev in devices() {
        let o = Options {
            test_limit: Some(200),
            verbose: false,
            ..mnist::study_options(&dev, 1, Some(2000))
        };
        let (model, _) = mnist::train(Arch::Cnn, &data, &o).unwrap();
        model.eval();
        model.freeze();
        let ratio = saliency::stroke_ratio(&model, &data.test, 100, &dev).unwrap();
        assert!(ratio > 1.5, "{dev}: stroke/background saliency {ratio}");
        let x = ferrograd::Tensor::zeros(&[2, 1, 28, 28], &dev).unwrap();
        let (g, classes) = saliency::input_gradient(&model, &x, None).unwrap();
        assert_eq!(
            (g.shape(), classes.shape()),
            (&[2, 1, 28, 28][..], &[2][..])
        );
    }
}
