//! Safetensors checkpoints: save -> load gives identical outputs on both devices; a file
//! PyTorch wrote (tests/data/make_torch_goldens.py) loads and reproduces PyTorch's output;
//! missing, unexpected, mis-shaped, truncated and corrupt files give errors that say so, and
//! leave the model unchanged.

mod common;

use common::{assert_golden, golden};
use ferrograd::nn::{self, *};
use ferrograd::{Conv2dOptions, Device, Pool2dOptions, Tensor};
use std::path::PathBuf;

/// The architecture of tests/data/torch_model.safetensors.
fn small_cnn(dev: &Device) -> Sequential {
    Sequential::new()
        .add(Conv2d::new(1, 4, 3, Conv2dOptions::new().padding(1), true, dev).unwrap())
        .add(BatchNorm2d::new_2d(4, dev).unwrap())
        .add(ReLU)
        .add(MaxPool2d(Pool2dOptions::new(2)))
        .add(Flatten)
        .add(Linear::new(64, 10, true, dev).unwrap())
}

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A scratch path unique to this test and device.
fn scratch(name: &str, dev: &Device) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrograd-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!(
        "{}-{name}",
        if dev.is_gpu() { "gpu" } else { "cpu" }
    ))
}

fn pytorch_file_loads(dev: &Device) {
    let model = small_cnn(dev);
    let meta = nn::load(data("torch_model.safetensors"), &model).unwrap();
    assert_eq!(meta.get("format").map(String::as_str), Some("pt"));
    model.eval();
    let out = model.forward(&golden("model.input", dev)).unwrap();
    assert_eq!(out.device(), dev);
    assert_golden(&out, "model.output", 1e-5, 1e-4);
}

fn save_load_round_trip(dev: &Device) {
    let a = small_cnn(dev);
    // Move the batch-norm statistics so the buffers matter.
    a.forward(&common::normal(&[4, 1, 8, 8], 1).to_device(dev).unwrap())
        .unwrap();
    a.eval();
    let path = scratch("round.safetensors", dev);
    nn::save(&path, &a, "small_cnn").unwrap();
    let b = small_cnn(dev);
    b.eval();
    let x = golden("model.input", dev);
    let before = b.forward(&x).unwrap().to_vec().unwrap();
    let meta = nn::load(&path, &b).unwrap();
    assert_eq!(meta["architecture"], "small_cnn");
    assert_eq!(meta["ferrograd_version"], env!("CARGO_PKG_VERSION"));
    let (ya, yb) = (
        a.forward(&x).unwrap().to_vec().unwrap(),
        b.forward(&x).unwrap().to_vec().unwrap(),
    );
    assert_eq!(ya, yb, "outputs differ after load");
    assert_ne!(before, yb, "the load changed nothing");
    for (n, p) in b.named_state() {
        assert_eq!(
            p.value().device(),
            dev,
            "{n} was not loaded onto the model's device"
        );
    }
    // Buffers stay frozen, parameters trainable.
    let state = b.named_state();
    let find = |n: &str| state.iter().find(|(k, _)| k == n).unwrap().1.is_trainable();
    assert!(find("0.weight") && !find("1.running_mean") && !find("1.num_batches_tracked"));
    std::fs::remove_file(&path).ok();
}

/// Every dtype is saved as itself and loads back bit for bit; a half model loads an f32
/// checkpoint (converted to its dtype).
fn dtypes_round_trip(dev: &Device) {
    use ferrograd::half::{bf16, f16};
    use ferrograd::DType;
    let x = common::normal(&[3, 5], 2).to_device(dev).unwrap();
    let tensors = vec![
        ("f32".to_string(), x.clone()),
        ("f16".to_string(), x.to_dtype(DType::F16).unwrap()),
        ("bf16".to_string(), x.to_dtype(DType::BF16).unwrap()),
        (
            "i32".to_string(),
            Tensor::from_vec(vec![-7, 0, i32::MAX], &[3], dev).unwrap(),
        ),
        ("bool".to_string(), x.gt_scalar(0.0).unwrap()),
    ];
    let path = scratch("dtypes.safetensors", dev);
    nn::save_tensors(&path, &tensors, &[]).unwrap();
    let back = nn::load_tensors(&path, dev).unwrap().tensors;
    for (name, t) in &tensors {
        let (_, b) = back.iter().find(|(n, _)| n == name).unwrap();
        assert_eq!((b.dtype(), b.shape()), (t.dtype(), t.shape()), "{name}");
        assert_eq!(b.to_vec().unwrap(), t.to_vec().unwrap(), "{name}");
    }
    let get = |n: &str| back.iter().find(|(m, _)| m == n).unwrap().1.clone();
    assert_eq!(
        get("f16").to_vec_as::<f16>().unwrap(),
        tensors[1].1.to_vec_as::<f16>().unwrap()
    );
    assert_eq!(
        get("bf16").to_vec_as::<bf16>().unwrap(),
        tensors[2].1.to_vec_as::<bf16>().unwrap()
    );
    // An f32 checkpoint into a bf16 model: the parameters take the model's dtype.
    let a = small_cnn(dev);
    let path = scratch("for_half.safetensors", dev);
    nn::save(&path, &a, "small_cnn").unwrap();
    let b = small_cnn(dev);
    b.to_dtype(DType::BF16).unwrap();
    nn::load(&path, &b).unwrap();
    for ((_, pa), (_, pb)) in a.named_parameters().iter().zip(b.named_parameters()) {
        assert_eq!(pb.value().dtype(), DType::BF16);
        let want = pa.value().to_dtype(DType::BF16).unwrap().to_vec().unwrap();
        assert_eq!(pb.value().to_vec().unwrap(), want);
    }
}

device_tests!(pytorch_file_loads, save_load_round_trip, dtypes_round_trip);

/// What `safetensors.torch.save_file({"w": w.half(), "b": b.bfloat16(), "y": labels})` writes
/// (float16, bfloat16 and int64 little-endian bytes) loads in those dtypes, the labels as I32;
/// an int64 that does not fit is an error naming the tensor.
#[test]
fn pytorch_half_and_int64_tensors_load() {
    use ferrograd::half::{bf16, f16};
    use ferrograd::DType;
    use safetensors::tensor::{Dtype, TensorView};
    let w: Vec<u8> = [0.5f32, -1.25]
        .iter()
        .flat_map(|&v| f16::from_f32(v).to_le_bytes())
        .collect();
    let b: Vec<u8> = [3.0f32]
        .iter()
        .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
        .collect();
    let y: Vec<u8> = [2i64, 0, 9].iter().flat_map(|v| v.to_le_bytes()).collect();
    let big: Vec<u8> = (1i64 << 40).to_le_bytes().to_vec();
    let file = |extra: bool| {
        let mut views = vec![
            ("w", TensorView::new(Dtype::F16, vec![2], &w).unwrap()),
            ("b", TensorView::new(Dtype::BF16, vec![1], &b).unwrap()),
            ("y", TensorView::new(Dtype::I64, vec![3], &y).unwrap()),
        ];
        if extra {
            views.push(("big", TensorView::new(Dtype::I64, vec![1], &big).unwrap()));
        }
        safetensors::tensor::serialize(views, None).unwrap()
    };
    let dev = Device::cpu();
    let ckpt = nn::load_tensors_from_bytes(&file(false), &dev).unwrap();
    let get = |n: &str| ckpt.tensors.iter().find(|(m, _)| m == n).unwrap().1.clone();
    assert_eq!(get("w").dtype(), DType::F16);
    assert_eq!(get("w").to_vec().unwrap(), vec![0.5, -1.25]);
    assert_eq!(
        get("b").to_vec_as::<bf16>().unwrap(),
        vec![bf16::from_f32(3.0)]
    );
    assert_eq!(get("y").to_vec_as::<i32>().unwrap(), vec![2, 0, 9]);
    let e = message(nn::load_tensors_from_bytes(&file(true), &dev));
    assert!(
        e.contains("big: 1099511627776 does not fit an I32 tensor"),
        "{e}"
    );
}

fn message(r: ferrograd::Result<impl std::fmt::Debug>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

#[test]
fn mismatched_models_list_every_problem() {
    let dev = Device::cpu();
    let other = Sequential::new()
        .add(Conv2d::new(1, 2, 3, Conv2dOptions::new().padding(1), true, &dev).unwrap())
        .add(BatchNorm2d::new_2d(4, &dev).unwrap())
        .add(ReLU)
        .add(MaxPool2d(Pool2dOptions::new(2)))
        .add(Flatten)
        .add(Linear::new(64, 10, false, &dev).unwrap())
        .add(Linear::new(10, 10, true, &dev).unwrap());
    let before: Vec<Vec<f32>> = other
        .parameters()
        .iter()
        .map(|p| p.value().to_vec().unwrap())
        .collect();
    let m = message(nn::load(data("torch_model.safetensors"), &other));
    assert!(
        m.contains("torch_model.safetensors: the checkpoint does not fit the model"),
        "{m}"
    );
    assert!(
        m.contains("0.weight: expected [2, 1, 3, 3], found [4, 1, 3, 3]"),
        "{m}"
    );
    assert!(m.contains("0.bias: expected [2], found [4]"), "{m}");
    assert!(
        m.contains("6.weight: missing") && m.contains("6.bias: missing"),
        "{m}"
    );
    assert!(m.contains("5.bias: unexpected"), "{m}");
    let after: Vec<Vec<f32>> = other
        .parameters()
        .iter()
        .map(|p| p.value().to_vec().unwrap())
        .collect();
    assert_eq!(before, after, "a failed load changed the model");
}

#[test]
fn bad_files_are_errors() {
    let dev = Device::cpu();
    let model = small_cnn(&dev);
    let good = std::fs::read(data("torch_model.safetensors")).unwrap();
    let path = scratch("bad.safetensors", &dev);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good[..good.len() - 10].to_vec()),
        ("header cut", good[..20].to_vec()),
        ("empty", Vec::new()),
        ("garbage", b"this is not a checkpoint at all".to_vec()),
        (
            "huge header length",
            [&u64::MAX.to_le_bytes()[..], &good[8..]].concat(),
        ),
    ];
    for (what, bytes) in cases {
        std::fs::write(&path, bytes).unwrap();
        let m = message(nn::load(&path, &model));
        assert!(
            m.contains("load: ") && m.contains("bad.safetensors"),
            "{what}: {m}"
        );
        assert!(m.contains("not a valid safetensors file"), "{what}: {m}");
    }
    let m = message(nn::load("/nonexistent/model.safetensors", &model));
    assert!(m.contains("/nonexistent/model.safetensors"), "{m}");
    // Duplicate names cannot be written.
    let t = Tensor::zeros(&[1], &dev).unwrap();
    let m = message(nn::save_tensors(
        &path,
        &[("a".into(), t.clone()), ("a".into(), t)],
        &[],
    ));
    assert!(m.contains("the name \"a\" appears twice"), "{m}");
    std::fs::remove_file(&path).ok();
}

/// A file ferrograd wrote earlier (tests/data/ferrograd_model.safetensors) still loads: the
/// format is stable. Loading it in PyTorch is checked by tests/data/check_in_pytorch.py.
#[test]
fn our_checked_in_file_loads() {
    let dev = Device::cpu();
    let model = small_cnn(&dev);
    let meta = nn::load(data("ferrograd_model.safetensors"), &model).unwrap();
    assert_eq!(meta["architecture"], "small_cnn (tests/checkpoint.rs)");
    model.eval();
    let out = model.forward(&golden("model.input", &dev)).unwrap();
    let expected = nn::load_tensors(data("ferrograd_model_output.safetensors"), &dev).unwrap();
    let want = expected.tensors[0].1.to_vec().unwrap();
    // Same weights, same input: equal up to rounding (the GEMM kernel, and so the order of
    // its sums, depends on the CPU's vector width).
    let got = out.to_vec().unwrap();
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
            "output {i}: {g} vs {w}"
        );
    }
}

/// Writes tests/data/ferrograd_model*.safetensors (run by hand with `--ignored`).
#[test]
#[ignore]
fn write_checked_in_file() {
    let dev = Device::cpu();
    ferrograd::manual_seed(5);
    let model = small_cnn(&dev);
    model.forward(&common::normal(&[4, 1, 8, 8], 9)).unwrap();
    model.eval();
    nn::save(
        data("ferrograd_model.safetensors"),
        &model,
        "small_cnn (tests/checkpoint.rs)",
    )
    .unwrap();
    let out = model.forward(&golden("model.input", &dev)).unwrap();
    nn::save_tensors(
        data("ferrograd_model_output.safetensors"),
        &[("output".into(), out)],
        &[],
    )
    .unwrap();
}
