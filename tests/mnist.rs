//! The MNIST examples' training loop (`examples/common/mnist.rs`) on a subset of the real data
//! (`../shared/data/mnist`, or `$FERROGRAD_MNIST`): 5,000 training images, scored on the first
//! 2,000 test images, on the CPU and on the GPU adapter. The models start from the global
//! seed, so the tests take a lock and run their devices in turn.

mod common;

#[path = "../examples/common/mnist.rs"]
mod mnist;

use std::path::PathBuf;
use std::sync::Mutex;

use ferrograd::data::Mnist;
use ferrograd::nn;
use ferrograd::nn::Module;
use ferrograd::{DType, Device};
use mnist::{Arch, Options};

static SEED_LOCK: Mutex<()> = Mutex::new(());

fn data() -> Option<Mnist> {
    let dir = std::env::var_os("FERROGRAD_MNIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist"));
    match Mnist::load(&dir) {
        Ok(m) => Some(m),
        Err(e) => {
            eprintln!("SKIPPED: no MNIST at {} ({e})", dir.display());
            None
        }
    }
}

fn devices() -> Vec<Device> {
    let mut all = vec![Device::cpu()];
    all.extend(common::gpu());
    all
}

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

    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "epoch,split,loss,accuracy,seconds");
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(
        lines[1].starts_with("1,train,") && lines[4].starts_with("2,test,"),
        "{csv}"
    );

    let png = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(dir.join("metrics.png")).unwrap(),
    ));
    let reader = png.read_info().unwrap();
    assert_eq!((reader.info().width, reader.info().height), (960, 400));
    std::fs::remove_dir_all(&dir).ok();
}
