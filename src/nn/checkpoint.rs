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

use half::{bf16, f16};

use super::Module;
use crate::device::Device;
use crate::dtype::{DType, HostData};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// What [`load_tensors`] read: the tensors in file order of names, and the metadata.
///
/// ```
/// use ferrograd::nn::{self, Checkpoint};
/// use ferrograd::{Device, Tensor};
/// let dev = Device::cpu();
/// let file = format!("ferrograd-doc-{}.safetensors", std::process::id());
/// let path = std::env::temp_dir().join(file); // one per process
/// let w = Tensor::new([[1.0, 2.0], [3.0, 4.0]], &dev)?;
/// nn::save_tensors(&path, &[("w".to_string(), w)], &[("note", "an example")])?;
/// let ckpt: Checkpoint = nn::load_tensors(&path, &dev)?;
/// assert_eq!(ckpt.tensors[0].0, "w");
/// assert_eq!(ckpt.tensors[0].1.to_vec()?, vec![1.0, 2.0, 3.0, 4.0]);
/// assert_eq!(ckpt.metadata["note"], "an example");
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Debug)]
pub struct Checkpoint {
    /// Each tensor with its name, sorted by name.
    pub tensors: Vec<(String, Tensor)>,
    /// The header's `__metadata__` entries (empty when the file has none).
    pub metadata: HashMap<String, String>,
}

fn file_error(op: &'static str, path: &Path, msg: impl Into<String>) -> Error {
    Error::File {
        op,
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

/// Writes `tensors` (each in its dtype: `F32`, `F16`, `BF16`, `I32`, `BOOL`) and `metadata` to a
/// safetensors file. The file is written next to `path` and renamed into place, so a crash
/// never leaves half a checkpoint under its name.
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
        let (dtype, bytes) = encode(t.read()?);
        data.push((name.clone(), dtype, t.shape().to_vec(), bytes));
    }
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes)
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

/// Host data as a safetensors dtype and little-endian bytes (`F64`, gradcheck's, as `F32`).
fn encode(data: HostData) -> (Dtype, Vec<u8>) {
    let data = match data {
        HostData::F64(v) => HostData::F32(v.into_iter().map(|x| x as f32).collect()),
        data => data,
    };
    let dtype = match data.dtype() {
        DType::F32 | DType::F64 => Dtype::F32,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::BF16,
        DType::I32 => Dtype::I32,
        DType::Bool => Dtype::BOOL,
    };
    (dtype, data.to_le_bytes())
}

/// Reads every tensor of a safetensors file onto `device`, each in its own dtype where
/// ferrograd has it (`F32`, `F16`, `BF16`, `I32`, `BOOL`); `F64` is rounded to `F32`, and the
/// other integer types (PyTorch's `int64` labels, `uint8` images) become `I32`, an error
/// naming the tensor if a value does not fit. A truncated or corrupt file is an error saying
/// so; the header is checked against the file's real length before anything is allocated
/// for it.
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
        let values = host_data(view.dtype(), view.data())
            .map_err(|why| file_error(op, path, format!("{name}: {why}")))?;
        let t = Tensor::from_host(values, view.shape(), device).map_err(|e| e.in_op(op))?;
        tensors.insert(name, t);
    }
    Ok(Checkpoint {
        tensors: tensors.into_iter().collect(),
        metadata,
    })
}

/// Little-endian elements of `dtype` as host data (see [`load_tensors`] for the mapping).
fn host_data(dtype: Dtype, b: &[u8]) -> std::result::Result<HostData, String> {
    fn each<T, const N: usize>(b: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
        b.chunks_exact(N)
            .map(|c| f(c.try_into().unwrap_or([0; N])))
            .collect()
    }
    // Integers of another width as i32, or the first that does not fit.
    fn ints<const N: usize>(
        b: &[u8],
        f: impl Fn([u8; N]) -> i128,
    ) -> std::result::Result<HostData, String> {
        each(b, f)
            .into_iter()
            .map(|x| i32::try_from(x).map_err(|_| format!("{x} does not fit an I32 tensor")))
            .collect::<std::result::Result<_, _>>()
            .map(HostData::I32)
    }
    Ok(match dtype {
        Dtype::F32 => HostData::F32(each(b, f32::from_le_bytes)),
        Dtype::F64 => HostData::F32(each(b, |c| f64::from_le_bytes(c) as f32)),
        Dtype::F16 => HostData::F16(each(b, f16::from_le_bytes)),
        Dtype::BF16 => HostData::BF16(each(b, bf16::from_le_bytes)),
        Dtype::I32 => HostData::I32(each(b, i32::from_le_bytes)),
        Dtype::BOOL => HostData::Bool(each(b, |c: [u8; 1]| c[0] != 0)),
        Dtype::I64 => ints(b, |c| i64::from_le_bytes(c).into())?,
        Dtype::U64 => ints(b, |c| u64::from_le_bytes(c).into())?,
        Dtype::U32 => ints(b, |c| u32::from_le_bytes(c).into())?,
        Dtype::I16 => ints(b, |c| i16::from_le_bytes(c).into())?,
        Dtype::U16 => ints(b, |c| u16::from_le_bytes(c).into())?,
        Dtype::I8 => ints(b, |c: [u8; 1]| (c[0] as i8).into())?,
        Dtype::U8 => ints(b, |c: [u8; 1]| c[0].into())?,
        other => return Err(format!("unsupported dtype {other:?}")),
    })
}

/// Saves a module's parameters and buffers by name, with metadata `ferrograd_version` and
/// `architecture` (free text; the examples put the model's constructor there).
///
/// ```
/// use ferrograd::nn::{self, Linear};
/// use ferrograd::Device;
/// let dev = Device::cpu();
/// let model = Linear::new(4, 2, true, &dev)?;
/// let file = format!("ferrograd-save-{}.safetensors", std::process::id());
/// let path = std::env::temp_dir().join(file); // one per process
/// nn::save(&path, &model, "Linear(4, 2)")?;
/// let restored = Linear::new(4, 2, true, &dev)?; // other random weights
/// let metadata = nn::load(&path, &restored)?;
/// assert_eq!(metadata["architecture"], "Linear(4, 2)");
/// assert_eq!(restored.weight.value().to_vec()?, model.weight.value().to_vec()?);
/// # Ok::<(), ferrograd::Error>(())
/// ```
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
///
/// ```
/// use ferrograd::nn::{self, Linear};
/// use ferrograd::Device;
/// let dev = Device::cpu();
/// let file = format!("ferrograd-load-{}.safetensors", std::process::id());
/// let path = std::env::temp_dir().join(file); // one per process
/// nn::save(&path, &Linear::new(4, 2, true, &dev)?, "Linear(4, 2)")?;
/// let err = nn::load(&path, &Linear::new(3, 2, true, &dev)?).unwrap_err();
/// assert!(err.to_string().contains("weight: expected [2, 3], found [2, 4]"));
/// # Ok::<(), ferrograd::Error>(())
/// ```
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
    // Move (and convert to each parameter's dtype: a half model loads an f32 checkpoint)
    // everything first, so a failure (a full GPU) leaves the module as it was.
    let moved: Vec<Tensor> = updates
        .iter()
        .map(|(param, t)| {
            let v = param.value();
            t.to_device(v.device())?.to_dtype(v.dtype())
        })
        .collect::<Result<_>>()?;
    for ((param, _), t) in updates.iter().zip(moved) {
        param.set(t);
    }
    Ok(ckpt.metadata)
}
