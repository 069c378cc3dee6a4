//! Bounded fuzzing of the two file readers (issue 25): seeded mutations of valid IDX files and
//! safetensors checkpoints, read from memory. Neither reader may panic, abort or allocate what a
//! header claims; whatever they accept must be self-consistent. `FERROGRAD_FUZZ_ITERS` raises
//! the iteration count (default 3,000 per reader) for long runs.

mod common;

use common::{gzip, idx_file as idx};
use ferrograd::data::ImageSet;
use ferrograd::nn::{load_tensors_from_bytes, save_tensors};
use ferrograd::{Device, Generator, Tensor};

fn iterations() -> usize {
    std::env::var("FERROGRAD_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000)
}

/// One random change: flip, overwrite with an extreme byte, insert, delete, truncate, or
/// write a big-endian u32 (header dimensions live there) at a random place.
fn mutate(bytes: &mut Vec<u8>, g: &mut Generator) {
    let r = |g: &mut Generator, n: usize| (g.next_key() % n.max(1) as u64) as usize;
    let at = r(g, bytes.len());
    match r(g, 6) {
        0 if !bytes.is_empty() => bytes[at] ^= 1 << r(g, 8),
        1 if !bytes.is_empty() => bytes[at] = [0, 0xff, 0x7f, 0x80][r(g, 4)],
        2 => bytes.insert(at, g.next_key() as u8),
        3 if !bytes.is_empty() => {
            bytes.remove(at);
        }
        4 => bytes.truncate(at),
        _ => {
            let v = [u32::MAX, 1 << 31, 0, 1 << 16, 60_000][r(g, 5)].to_be_bytes();
            for (i, b) in v.iter().enumerate() {
                if let Some(x) = bytes.get_mut(at + i) {
                    *x = *b;
                }
            }
        }
    }
}

#[test]
fn idx_reader_survives_mutations() {
    let images = idx(&[3, 4, 5], &(0..60).map(|i| i as u8).collect::<Vec<_>>());
    let labels = idx(&[3], &[1, 7, 9]);
    let valid = ImageSet::from_idx_bytes(&images, &labels).unwrap();
    assert_eq!((valid.len(), valid.height, valid.width), (3, 4, 5));
    let mut g = Generator::new(25);
    let (mut ok, mut err) = (0, 0);
    for i in 0..iterations() {
        // Mutate raw or gzipped bytes, the images or the labels, one to four times.
        let (mut im, mut lb) = (images.clone(), labels.clone());
        let gz = i % 3 == 0;
        if gz {
            (im, lb) = (gzip(&im), gzip(&lb));
        }
        let target = if g.next_key().is_multiple_of(2) {
            &mut im
        } else {
            &mut lb
        };
        for _ in 0..1 + g.next_key() % 4 {
            mutate(target, &mut g);
        }
        match ImageSet::from_idx_bytes(&im, &lb) {
            Ok(set) => {
                ok += 1;
                set.validate().expect("an accepted set is consistent");
            }
            Err(e) => {
                err += 1;
                let m = e.to_string();
                assert!(m.contains("<images>") || m.contains("<labels>"), "{m}");
            }
        }
    }
    assert!(
        err > 0 && ok > 0,
        "{ok} accepted, {err} refused: the mutations do too little"
    );
}

#[test]
fn safetensors_reader_survives_mutations() {
    let dev = Device::cpu();
    let path =
        std::env::temp_dir().join(format!("ferrograd-fuzz-{}.safetensors", std::process::id()));
    let tensors = vec![
        (
            "a".to_string(),
            Tensor::arange(0.0, 6.0, 1.0, &dev)
                .unwrap()
                .reshape(&[2, 3])
                .unwrap(),
        ),
        ("b.weight".to_string(), Tensor::ones(&[4], &dev).unwrap()),
        ("s".to_string(), Tensor::scalar(2.5, &dev).unwrap()),
    ];
    save_tensors(&path, &tensors, &[("architecture", "fuzz")]).unwrap();
    let valid = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(
        load_tensors_from_bytes(&valid, &dev).unwrap().tensors.len(),
        3
    );
    let mut g = Generator::new(26);
    let (mut ok, mut err) = (0, 0);
    for _ in 0..iterations() {
        let mut bytes = valid.clone();
        for _ in 0..1 + g.next_key() % 4 {
            mutate(&mut bytes, &mut g);
        }
        match load_tensors_from_bytes(&bytes, &dev) {
            Ok(c) => {
                ok += 1;
                for (name, t) in &c.tensors {
                    assert_eq!(t.to_vec().unwrap().len(), t.numel(), "{name}");
                }
            }
            Err(e) => {
                err += 1;
                assert!(e.to_string().starts_with("load: "), "{e}");
            }
        }
    }
    assert!(
        err > 0 && ok > 0,
        "{ok} accepted, {err} refused: the mutations do too little"
    );
}
