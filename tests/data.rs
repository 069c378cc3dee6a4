//! The MNIST reader on the real files (../shared/data/mnist) and on small IDX files built here
//! with every kind of damage; the DataLoader's batching, shuffling and normalisation.

mod common;
use common::{gzip, idx_file as idx};

use std::path::{Path, PathBuf};

use ferrograd::data::{
    Augment, DataLoader, Dataset, ImageSet, Mnist, TensorDataset, MNIST_MEAN, MNIST_STD,
};
use ferrograd::{DType, Device, Tensor};

/// The shared MNIST copy (`$FERROGRAD_MNIST` overrides), or `None` with a printed reason.
fn shared_mnist() -> Option<PathBuf> {
    let dir = std::env::var_os("FERROGRAD_MNIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist"));
    if dir.join("train-images-idx3-ubyte.gz").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: no MNIST files in {} (set FERROGRAD_MNIST)",
            dir.display()
        );
        None
    }
}

#[test]
fn real_mnist_loads() {
    let Some(dir) = shared_mnist() else { return };
    let m = Mnist::load(&dir).unwrap();
    assert_eq!((m.train.len(), m.test.len()), (60_000, 10_000));
    assert_eq!(
        (m.train.height, m.train.width, m.train.classes),
        (28, 28, 10)
    );
    assert_eq!(m.train.images.len(), 60_000 * 784);
    // The well-known first labels of each split.
    assert_eq!(&m.train.labels[..5], &[5, 0, 4, 1, 9]);
    assert_eq!(&m.test.labels[..3], &[7, 2, 1]);
    let mut counts = [0usize; 10];
    m.train
        .labels
        .iter()
        .for_each(|&l| counts[usize::from(l)] += 1);
    assert!(
        counts.iter().all(|&c| (5_400..=6_800).contains(&c)),
        "{counts:?}"
    );
    // The pixel mean is MNIST's published 0.1307.
    let mean =
        m.train.images.iter().map(|&p| f64::from(p)).sum::<f64>() / (60_000.0 * 784.0 * 255.0);
    assert!((mean - f64::from(MNIST_MEAN)).abs() < 1e-4, "{mean}");
}

/// A directory holding a tiny valid MNIST (3 training and 2 test images of 2×2), with
/// `change` applied to the named file's bytes before it is written (gzipped if `gz`).
fn tiny(tag: &str, gz: bool, file: &str, change: impl Fn(Vec<u8>) -> Vec<u8>) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrograd-mnist-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = [
        (
            "train-images-idx3-ubyte",
            idx(&[3, 2, 2], &[0, 255, 128, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
        ),
        ("train-labels-idx1-ubyte", idx(&[3], &[3, 1, 4])),
        ("t10k-images-idx3-ubyte", idx(&[2, 2, 2], &[9; 8])),
        ("t10k-labels-idx1-ubyte", idx(&[2], &[0, 9])),
    ];
    for (name, bytes) in files {
        let bytes = if name == file { change(bytes) } else { bytes };
        let (path, bytes) = match gz {
            true => (dir.join(format!("{name}.gz")), gzip(&bytes)),
            false => (dir.join(name), bytes),
        };
        std::fs::write(path, bytes).unwrap();
    }
    dir
}

#[test]
fn tiny_files_load_raw_and_gzipped() {
    for gz in [false, true] {
        let dir = tiny(&format!("ok{gz}"), gz, "", |b| b);
        let m = Mnist::load(&dir).unwrap();
        assert_eq!(m.train.labels, [3, 1, 4]);
        assert_eq!((m.train.height, m.train.width), (2, 2));
        assert_eq!(&m.train.images[..4], &[0, 255, 128, 1]);
        assert_eq!(m.test.len(), 2);
        std::fs::remove_dir_all(dir).ok();
    }
}

#[test]
fn multi_member_gzip_is_read_whole() {
    // Two gzip members back to back: the header in one, the data in the next.
    let dir = tiny("multi", true, "", |b| b);
    let labels = idx(&[3], &[3, 1, 4]);
    let mut two = gzip(&labels[..6]);
    two.extend(gzip(&labels[6..]));
    std::fs::write(dir.join("train-labels-idx1-ubyte.gz"), two).unwrap();
    let m = Mnist::load(&dir).unwrap();
    assert_eq!(m.train.labels, [3, 1, 4]);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn damaged_files_are_errors() {
    // (tag, file, damage, expected message)
    type Damage = Box<dyn Fn(Vec<u8>) -> Vec<u8>>;
    let cases: Vec<(&str, &str, Damage, &str)> = vec![
        (
            "magic",
            "train-images-idx3-ubyte",
            Box::new(|mut b| {
                b[2] = 0x0d;
                b
            }),
            "wrong magic number 00000d03",
        ),
        (
            "rank",
            "train-labels-idx1-ubyte",
            Box::new(|mut b| {
                b[3] = 3;
                b
            }),
            "expected 00000801",
        ),
        (
            "truncated",
            "train-images-idx3-ubyte",
            Box::new(|b| b[..b.len() - 3].to_vec()),
            "truncated: the header [3, 2, 2] promises 12 bytes of data, the file has 9",
        ),
        (
            "header cut",
            "t10k-labels-idx1-ubyte",
            Box::new(|b| b[..6].to_vec()),
            "truncated: could not read dimension 0",
        ),
        (
            "trailing",
            "t10k-images-idx3-ubyte",
            Box::new(|mut b| {
                b.push(1);
                b
            }),
            "more data than the header [2, 2, 2] declares",
        ),
        (
            "huge",
            "train-images-idx3-ubyte",
            Box::new(|_| idx(&[u32::MAX, 60_000, 60_000], &[1, 2, 3])),
            "exceed the 1 GiB limit",
        ),
        (
            "count",
            "train-labels-idx1-ubyte",
            Box::new(|_| idx(&[2], &[1, 2])),
            "holds 2 labels but",
        ),
        (
            "label",
            "t10k-labels-idx1-ubyte",
            Box::new(|_| idx(&[2], &[0, 10])),
            "label 1 is 10, outside 0..10",
        ),
    ];
    for gz in [false, true] {
        for (tag, file, change, expect) in &cases {
            let dir = tiny(&format!("{tag}{gz}"), gz, file, change);
            let e = Mnist::load(&dir).unwrap_err().to_string();
            assert!(e.contains(expect), "{tag} (gz {gz}): {e}");
            let named = if *tag == "count" {
                "train-labels"
            } else {
                file
            };
            assert!(
                e.contains(named),
                "{tag}: the error should name the file: {e}"
            );
            if *tag != "count" && *tag != "label" {
                assert!(e.contains("delete it and download it again"), "{tag}: {e}");
            }
            std::fs::remove_dir_all(dir).ok();
        }
    }
    // A gzip stream cut short.
    let dir = tiny("cutgz", true, "", |b| b);
    let path = dir.join("train-images-idx3-ubyte.gz");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 12]).unwrap();
    let e = Mnist::load(&dir).unwrap_err().to_string();
    assert!(
        e.contains("train-images-idx3-ubyte.gz") && e.contains("download it again"),
        "{e}"
    );
    std::fs::remove_dir_all(dir).ok();

    let e = Mnist::load("/nonexistent-dir").unwrap_err().to_string();
    assert!(
        e.contains("not found") && e.contains("t10k-labels-idx1-ubyte.gz"),
        "{e}"
    );
}

fn set(n: usize) -> ImageSet {
    ImageSet {
        images: (0..n * 4).map(|i| (i % 256) as u8).collect(),
        labels: (0..n).map(|i| (i % 10) as u8).collect(),
        height: 2,
        width: 2,
        classes: 10,
    }
}

fn loader_batches(dev: &Device) {
    let s = set(23);
    let l = DataLoader::new(&s, 5, dev).unwrap();
    assert_eq!(l.len(), 5);
    let batches: Vec<_> = l.epoch(0).map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 5);
    assert_eq!(batches[0].inputs.shape(), &[5, 1, 2, 2]);
    assert_eq!(batches[4].inputs.shape(), &[3, 1, 2, 2]);
    assert_eq!(batches[0].inputs.device(), dev);
    // In file order, scaled to [0, 1].
    let first = batches[0].inputs.to_vec().unwrap();
    assert_eq!(&first[..4], &[0.0, 1.0 / 255.0, 2.0 / 255.0, 3.0 / 255.0]);
    assert_eq!(
        batches[1].targets.to_vec().unwrap(),
        [5.0, 6.0, 7.0, 8.0, 9.0]
    );

    let l = DataLoader::new(&s, 5, dev)
        .unwrap()
        .drop_last(true)
        .shuffle(42);
    assert_eq!(l.len(), 4);
    let order = |epoch| -> Vec<f32> {
        l.epoch(epoch)
            .flat_map(|b| b.unwrap().inputs.to_vec().unwrap().into_iter().step_by(4))
            .collect()
    };
    let (a, b, c) = (order(0), order(0), order(1));
    assert_eq!(a.len(), 20);
    assert_eq!(a, b, "the same seed and epoch must give the same order");
    assert_ne!(a, c, "each epoch should have its own order");
    let mut seen: Vec<u32> = a.iter().map(|v| (v * 255.0 / 4.0).round() as u32).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 20, "an epoch repeats an image");

    let l = DataLoader::new(&s, 64, dev)
        .unwrap()
        .normalize(MNIST_MEAN, MNIST_STD)
        .unwrap();
    let v = l.epoch(0).next().unwrap().unwrap().inputs.to_vec().unwrap();
    assert!((v[0] - (0.0 - MNIST_MEAN) / MNIST_STD).abs() < 1e-6);
}

/// A `TensorDataset` of rows `[i, 10 i]` and `I32` targets `i`: every epoch gives each row
/// once, with its own target, shuffled per epoch, on the loader's device (also when the
/// dataset's tensors live on another).
fn tensor_dataset(dev: &Device) {
    let n = 23;
    let x: Vec<f32> = (0..n).flat_map(|i| [i as f32, 10.0 * i as f32]).collect();
    let y: Vec<i32> = (0..n as i32).collect();
    for home in [Device::cpu(), dev.clone()] {
        let data = TensorDataset::new(
            Tensor::from_vec(x.clone(), &[n, 2], &home).unwrap(),
            Tensor::from_vec(y.clone(), &[n], &home).unwrap(),
        )
        .unwrap();
        assert_eq!(data.len(), n);
        let loader = DataLoader::over(&data, 5, dev).unwrap().shuffle(3);
        assert_eq!(loader.len(), 5);
        let mut seen = Vec::new();
        for batch in loader.epoch(1) {
            let b = batch.unwrap();
            assert_eq!(b.inputs.device(), dev);
            assert_eq!(b.targets.dtype(), DType::I32);
            let rows = b.inputs.to_vec().unwrap();
            for (r, t) in rows.chunks(2).zip(b.targets.to_vec_as::<i32>().unwrap()) {
                assert_eq!(r, [t as f32, 10.0 * t as f32], "a row lost its target");
                seen.push(t);
            }
        }
        let order = seen.clone();
        seen.sort_unstable();
        assert_eq!(seen, y, "an epoch must give every row once");
        assert_ne!(order, y, "shuffled");
        let dropped = DataLoader::over(&data, 5, dev).unwrap().drop_last(true);
        assert_eq!(dropped.epoch(0).count(), 4);
    }
    // An image set is a dataset too: pixels in [0, 1], labels as targets.
    let s = set(7);
    let b = DataLoader::over(&s, 7, dev)
        .unwrap()
        .epoch(0)
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(b.inputs.shape(), &[7, 1, 2, 2]);
    assert_eq!(b.targets.to_vec_as::<i32>().unwrap(), [0, 1, 2, 3, 4, 5, 6]);
}

device_tests!(loader_batches, tensor_dataset);

#[test]
fn tensor_dataset_errors() {
    let dev = Device::cpu();
    let t = |shape: &[usize]| Tensor::zeros(shape, &dev).unwrap();
    let e = TensorDataset::new(t(&[3, 2]), t(&[4]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("[3, 2] and targets [4] must have as many rows (3 and 4)"),
        "{e}"
    );
    let e = TensorDataset::new(t(&[]), t(&[1])).unwrap_err().to_string();
    assert!(
        e.contains("inputs must have a first axis of samples"),
        "{e}"
    );
    if let Some(gpu) = common::gpu() {
        let other = Tensor::zeros(&[3], &gpu).unwrap();
        let e = TensorDataset::new(t(&[3, 2]), other)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("TensorDataset"), "{e}");
    }
    let data = TensorDataset::new(t(&[2, 1]), t(&[2])).unwrap();
    assert!(DataLoader::over(&data, 0, &dev).is_err());
}

#[test]
fn inconsistent_sets_are_errors() {
    let dev = Device::cpu();
    let mut short = set(3);
    short.images.pop();
    let e = DataLoader::new(&short, 2, &dev).unwrap_err().to_string();
    assert_eq!(
        e,
        "DataLoader: 11 image bytes do not hold 3 images of 2 x 2 (one per label)"
    );
    assert_eq!(short.take(3).len(), 2, "take stops at the last whole image");
    let mut label = set(3);
    label.labels[1] = 10;
    let e = label.validate().unwrap_err().to_string();
    assert_eq!(e, "ImageSet: label 10 of image 1 is not below classes 10");
    let empty = ImageSet {
        height: 0,
        ..set(0)
    };
    assert!(empty.validate().is_err());
    assert!(set(0).validate().is_ok());
}

#[test]
fn loader_errors() {
    let s = set(3);
    let dev = Device::cpu();
    let e = DataLoader::new(&s, 0, &dev).unwrap_err().to_string();
    assert!(e.contains("batch size must be at least 1"), "{e}");
    let e = DataLoader::new(&s, 2, &dev)
        .unwrap()
        .normalize(0.0, 0.0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("std > 0, found 0 and 0"), "{e}");
}

/// One 9×9 image, background but for `pixels` (y, x) set to 255.
fn dot(pixels: &[(usize, usize)]) -> ImageSet {
    let mut images = vec![0u8; 81];
    for &(y, x) in pixels {
        images[y * 9 + x] = 255;
    }
    ImageSet {
        images,
        labels: vec![0],
        height: 9,
        width: 9,
        classes: 10,
    }
}

/// The augmented image of `epoch`, as bytes (the loader scales to [0, 1]).
fn augmented(s: &ImageSet, a: Augment, epoch: u64) -> Vec<u8> {
    let l = DataLoader::new(s, 1, &Device::cpu())
        .unwrap()
        .shuffle(7)
        .augment(a)
        .unwrap();
    let b = l.epoch(epoch).next().unwrap().unwrap();
    let v = b.inputs.to_vec().unwrap();
    v.iter().map(|p| (p * 255.0).round() as u8).collect()
}

#[test]
fn augmentation() {
    // Translation moves a dot by whole pixels within ±2, keeping its value.
    let s = dot(&[(4, 4)]);
    let shift = Augment {
        translate: 2,
        ..Default::default()
    };
    let mut offsets = std::collections::HashSet::new();
    for epoch in 0..200 {
        let img = augmented(&s, shift, epoch);
        let lit: Vec<usize> = (0..81).filter(|&i| img[i] > 0).collect();
        assert_eq!(lit.len(), 1, "epoch {epoch}: {img:?}");
        assert_eq!(img[lit[0]], 255);
        let (dy, dx) = (lit[0] as i32 / 9 - 4, lit[0] as i32 % 9 - 4);
        assert!(dy.abs() <= 2 && dx.abs() <= 2, "shift ({dy}, {dx})");
        offsets.insert((dy, dx));
    }
    assert_eq!(
        offsets.len(),
        25,
        "all 25 shifts should turn up in 200 draws"
    );
    assert_eq!(augmented(&s, shift, 3), augmented(&s, shift, 3));

    // Flip mirrors left-right about half of the time.
    let s = dot(&[(1, 1), (1, 2)]);
    let flip = Augment {
        hflip: true,
        ..Default::default()
    };
    let mirrored = dot(&[(1, 7), (1, 6)]).images;
    let flips = (0..100)
        .filter(|&e| {
            let img = augmented(&s, flip, e);
            assert!(img == s.images || img == mirrored, "{img:?}");
            img == mirrored
        })
        .count();
    assert!((30..=70).contains(&flips), "{flips} flips in 100");

    // Rotation keeps the dot's distance to the centre and turns it by at most the angle.
    let s = dot(&[(4, 7)]); // 3 px right of centre: angle 0
    let rot = Augment {
        rotate_degrees: 60.0,
        ..Default::default()
    };
    let mut angles = Vec::new();
    for epoch in 0..50 {
        let img = augmented(&s, rot, epoch);
        let (mut m, mut my, mut mx) = (0.0, 0.0, 0.0);
        for (i, &p) in img.iter().enumerate() {
            let p = f64::from(p);
            m += p;
            my += p * (i / 9) as f64;
            mx += p * (i % 9) as f64;
        }
        let (y, x) = (my / m - 4.0, mx / m - 4.0);
        let r = (y * y + x * x).sqrt();
        assert!((r - 3.0).abs() < 0.35, "epoch {epoch}: radius {r}");
        let angle = y.atan2(x).to_degrees();
        assert!(angle.abs() <= 62.0, "epoch {epoch}: angle {angle}");
        angles.push(angle);
    }
    let spread = angles.iter().cloned().fold(f64::MIN, f64::max)
        - angles.iter().cloned().fold(f64::MAX, f64::min);
    assert!(spread > 60.0, "angles should spread over ±60°: {angles:?}");

    // Bad settings are errors, naming the values.
    let bad = |a: Augment| {
        DataLoader::new(&s, 1, &Device::cpu())
            .unwrap()
            .augment(a)
            .unwrap_err()
            .to_string()
    };
    let e = bad(Augment {
        rotate_degrees: 200.0,
        ..Default::default()
    });
    assert!(e.contains("augment") && e.contains("200 degrees"), "{e}");
    let e = bad(Augment {
        translate: 10,
        ..Default::default()
    });
    assert!(e.contains("9x9") && e.contains("10 px"), "{e}");
}

/// A dataset asked for a sample past its end says so instead of panicking.
#[test]
fn out_of_range_samples_are_errors() {
    let dev = Device::cpu();
    let mut gen = ferrograd::Generator::new(0);
    let s = set(3);
    let e = s
        .get_batch(&[0, 3], &mut gen, &dev)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("index 3 is out of range for a dataset of 3 samples"),
        "{e}"
    );
    let data = TensorDataset::new(
        Tensor::zeros(&[2, 1], &dev).unwrap(),
        Tensor::zeros(&[2], &dev).unwrap(),
    )
    .unwrap();
    let e = data
        .get_batch(&[5], &mut gen, &dev)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("TensorDataset::get_batch: index 5"), "{e}");
    let mut broken = set(3);
    broken.images.pop();
    assert!(broken.get_batch(&[0], &mut gen, &dev).is_err());
}
