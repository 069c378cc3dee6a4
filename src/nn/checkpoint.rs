//! Checkpoints as safetensors files, through the `safetensors` crate: the format PyTorch
//! (`safetensors.torch.save_file`), candle and Burn read, with names matching the module tree
//! (`"features.0.weight"`) and metadata (crate version, architecture).
//!
//! ```no_run
//! use ferrograd::nn::{self, Linear, Module};
//! use ferrograd::Device;
//! let dev = Device::cpu();
//! let model = Linear::new(4, 2, true, &dev)?;
//! nn::save("model.safetensors", &model, "Linear(4, 2)")?;
//! let restored = Linear::new(4, 2, true, &dev)?;
//! nn::load("model.safetensors", &restored)?; // now equal to `model`
//! # Ok::<(), ferrograd::Error>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::Module;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// What [`load_tensors`] read: the tensors in file order of names, and the metadata.
#[derive(Debug)]
pub struct Checkpoint {
    pub tensors: Vec<(String, Tensor)>,
    pub metadata: HashMap<String, String>,
}

fn file_error(op: &'static str, path: &Path, msg: impl Into<String>) -> Error {
    Error::File {
        op,
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

/// Writes `tensors` (as f32) and `metadata` to a safetensors file. The file is written next to
/// `path` and renamed into place, so a crash never leaves half a checkpoint under its name.
pub fn save_tensors(
    path: impl AsRef<Path>,
    tensors: &[(String, Tensor)],
    metadata: &[(&str, &str)],
) -> Result<()> {
    let (op, path) = ("save", path.as_ref());
    let mut seen = std::collections::HashSet::new();
    let mut data = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        if !seen.insert(name.as_str()) {
            return Err(file_error(
                op,
                path,
                format!("the name {name:?} appears twice"),
            ));
        }
        let bytes: Vec<u8> = bytemuck::cast_slice(&t.to_vec()?).to_vec();
        data.push((name.clone(), t.shape().to_vec(), bytes));
    }
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| file_error(op, path, e.to_string()))
        })
        .collect::<Result<_>>()?;
    let mut meta: HashMap<String, String> = HashMap::from([("format".into(), "pt".into())]);
    meta.extend(metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let part = path.with_extension("safetensors.part");
    safetensors::tensor::serialize_to_file(views, Some(meta), &part)
        .map_err(|e| file_error(op, &part, e.to_string()))?;
    std::fs::rename(&part, path).map_err(|e| file_error(op, path, e.to_string()))
}

/// Reads every tensor of a safetensors file onto `device`, converting float, integer and bool
/// dtypes to f32. A truncated or corrupt file is an error saying so; the header is checked
/// against the file's real length before anything is allocated for it.
pub fn load_tensors(path: impl AsRef<Path>, device: &Device) -> Result<Checkpoint> {
    let (op, path) = ("load", path.as_ref());
    let bytes = std::fs::read(path).map_err(|e| file_error(op, path, e.to_string()))?;
    decode(&bytes, path, device)
}

/// [`load_tensors`] from the bytes of a safetensors file (errors name it `<bytes>`): for
/// checkpoints embedded in a program or fetched by other means.
pub fn load_tensors_from_bytes(bytes: &[u8], device: &Device) -> Result<Checkpoint> {
    decode(bytes, Path::new("<bytes>"), device)
}

fn decode(bytes: &[u8], path: &Path, device: &Device) -> Result<Checkpoint> {
    let op = "load";
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        file_error(
            op,
            path,
            format!("not a valid safetensors file (truncated or corrupt?): {e}"),
        )
    })?;
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| file_error(op, path, format!("unreadable header: {e}")))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    // BTreeMap: a stable (sorted) order, whatever order the header lists them in.
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        let values = to_f32(view.dtype(), view.data()).ok_or_else(|| {
            file_error(
                op,
                path,
                format!("{name}: unsupported dtype {:?}", view.dtype()),
            )
        })?;
        let t = Tensor::from_vec(values, view.shape(), device).map_err(|e| e.in_op(op))?;
        tensors.insert(name, t);
    }
    Ok(Checkpoint {
        tensors: tensors.into_iter().collect(),
        metadata,
    })
}

/// Little-endian elements of `dtype` as f32, or `None` for a dtype without a clear f32 value.
fn to_f32(dtype: Dtype, b: &[u8]) -> Option<Vec<f32>> {
    fn each<const N: usize>(b: &[u8], f: impl Fn([u8; N]) -> f32) -> Vec<f32> {
        b.chunks_exact(N)
            .map(|c| f(c.try_into().unwrap_or([0; N])))
            .collect()
    }
    Some(match dtype {
        Dtype::F32 => each(b, f32::from_le_bytes),
        Dtype::F64 => each(b, |c| f64::from_le_bytes(c) as f32),
        Dtype::F16 => each(b, |c| f16_to_f32(u16::from_le_bytes(c))),
        Dtype::BF16 => each(b, |c| {
            f32::from_bits(u32::from(u16::from_le_bytes(c)) << 16)
        }),
        Dtype::I64 => each(b, |c| i64::from_le_bytes(c) as f32),
        Dtype::I32 => each(b, |c| i32::from_le_bytes(c) as f32),
        Dtype::I16 => each(b, |c| f32::from(i16::from_le_bytes(c))),
        Dtype::I8 => each(b, |c: [u8; 1]| f32::from(c[0] as i8)),
        Dtype::U8 | Dtype::BOOL => each(b, |c: [u8; 1]| f32::from(c[0])),
        _ => return None,
    })
}

/// IEEE half to single precision.
fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f32::from(h & 0x3ff);
    sign * match exp {
        0 => frac * 2f32.powi(-24),
        31 if frac == 0.0 => f32::INFINITY,
        31 => f32::NAN,
        _ => (1.0 + frac / 1024.0) * 2f32.powi(exp - 15),
    }
}

/// Saves a module's parameters and buffers by name, with metadata `ferrograd_version` and
/// `architecture` (free text; the examples put the model's constructor there).
pub fn save(path: impl AsRef<Path>, module: &dyn Module, architecture: &str) -> Result<()> {
    let tensors: Vec<(String, Tensor)> = module
        .named_state()
        .into_iter()
        .map(|(n, p)| (n, p.value()))
        .collect();
    save_tensors(
        path,
        &tensors,
        &[
            ("ferrograd_version", env!("CARGO_PKG_VERSION")),
            ("architecture", architecture),
        ],
    )
}

/// Loads a checkpoint into `module`, each tensor onto its parameter's device. Strict: a
/// missing, unexpected or mis-shaped tensor is listed in one error (`conv1.weight: expected
/// [32, 1, 3, 3], found [16, 1, 3, 3]`) and then nothing is changed. Returns the metadata.
pub fn load(path: impl AsRef<Path>, module: &dyn Module) -> Result<HashMap<String, String>> {
    let path = path.as_ref();
    let ckpt = load_tensors(path, &Device::cpu())?;
    let state = module.named_state();
    let mut file: HashMap<&str, &Tensor> =
        ckpt.tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut problems = Vec::new();
    let mut updates = Vec::new();
    for (name, param) in &state {
        match file.remove(name.as_str()) {
            None => problems.push(format!("{name}: missing")),
            Some(t) if t.shape() != param.shape().as_slice() => problems.push(format!(
                "{name}: expected {:?}, found {:?}",
                param.shape(),
                t.shape()
            )),
            Some(t) => updates.push((param, t)),
        }
    }
    let mut unexpected: Vec<&str> = file.into_keys().collect();
    unexpected.sort_unstable();
    problems.extend(unexpected.iter().map(|n| format!("{n}: unexpected")));
    if !problems.is_empty() {
        return Err(file_error(
            "load",
            path,
            format!(
                "the checkpoint does not fit the model: {}",
                problems.join("; ")
            ),
        ));
    }
    // Move everything first, so a failure (a full GPU) leaves the module as it was.
    let moved: Vec<Tensor> = updates
        .iter()
        .map(|(param, t)| t.to_device(param.value().device()))
        .collect::<Result<_>>()?;
    for ((param, _), t) in updates.iter().zip(moved) {
        param.set(t);
    }
    Ok(ckpt.metadata)
}
