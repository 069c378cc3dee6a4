//! Element types: [`DType`], the host types that map onto them ([`Element`]), and the rules
//! that pick the dtype of a mixed operation ([`DType::promote`]).
//!
//! On the GPU `F32`, `I32` and `Bool` are one 32-bit word per element (`Bool` is 0 or 1 in a
//! `u32`; WGSL has no byte-sized storage), and kernels read and write the words as raw bits
//! (`bitcast`), so a copy, a gather or a `cat` moves integers exactly whatever their bits.
//! `F16` and `BF16` are packed two to a word (element `2k` in the low half of word `k`). Every
//! op on them computes in f32 and rounds its result once, the same way on both backends: the
//! elementwise kernels read and write halves directly (`shaders/elementwise.wgsl` on the
//! GPU); every other op widens its half operands to F32 at the door (`storage/half.rs`).

use half::{bf16, f16};

use crate::error::{Error, Result};

/// The element type of a tensor.
///
/// | dtype | CPU | GPU | host type |
/// |---|---|---|---|
/// | `F32` (default) | yes | yes | `f32` |
/// | `I32` | yes | yes | `i32` |
/// | `Bool` | yes | yes (one `u32` per element) | `bool` |
/// | `F16` | yes | yes (two per `u32`) | [`half::f16`] |
/// | `BF16` | yes | yes (two per `u32`) | [`half::bf16`] |
/// | `F64` | inside [`crate::gradcheck`] only (its finite differences run in f64) | no | — |
///
/// ```
/// use ferrograd::{DType, Device, Tensor};
/// let dev = Device::cpu();
/// let labels = Tensor::from_vec(vec![2, 0, 1], &[3], &dev)?; // i32 data: an I32 tensor
/// assert_eq!(labels.dtype(), DType::I32);
/// let x = Tensor::from_vec(vec![0.5, 2.0, -1.0], &[3], &dev)?;
/// let mask = x.gt_scalar(0.0)?; // comparisons give Bool
/// assert_eq!(mask.dtype(), DType::Bool);
/// assert_eq!(mask.to_vec_as::<bool>()?, vec![true, true, false]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DType {
    /// IEEE single precision, the default.
    F32,
    /// IEEE double precision: the CPU backend's f64 mode inside [`crate::gradcheck`] only.
    F64,
    /// 32-bit signed integer (indices, labels).
    I32,
    /// A truth value: 1 byte per element on the CPU, one `u32` (0 or 1) on the GPU.
    Bool,
    /// IEEE half precision (5 exponent bits, 10 mantissa bits).
    F16,
    /// bfloat16 (f32's 8 exponent bits, 7 mantissa bits).
    BF16,
}

impl DType {
    /// Every dtype.
    pub const ALL: [DType; 6] = [
        DType::F32,
        DType::F64,
        DType::I32,
        DType::Bool,
        DType::F16,
        DType::BF16,
    ];

    /// This dtype's position in [`DType::ALL`] (per-dtype counters index by it).
    pub(crate) fn index(self) -> usize {
        DType::ALL.iter().position(|&d| d == self).unwrap_or(0) // every dtype is in ALL
    }

    /// A floating-point dtype (gradients flow only through these).
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
    }

    /// `F16` or `BF16`: stored in 16 bits, computed in f32.
    pub fn is_half(self) -> bool {
        matches!(self, DType::F16 | DType::BF16)
    }

    /// Bytes per element in a CPU buffer (on the GPU `F32`, `I32` and `Bool` take 4, the
    /// halves 2).
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F64 => 8,
            DType::Bool => 1,
            DType::F16 | DType::BF16 => 2,
        }
    }

    /// The order of [`DType::promote`]: a dtype converts to any of higher rank.
    fn rank(self) -> u8 {
        match self {
            DType::Bool => 0,
            DType::I32 => 1,
            DType::F16 | DType::BF16 => 2,
            DType::F32 => 3,
            DType::F64 => 4,
        }
    }

    /// The dtype two operands of different dtypes are computed in, as PyTorch's promotion
    /// table does for these types: `Bool < I32 < F16, BF16 < F32 < F64`, the higher wins
    /// (`bool * f32 -> f32`, `i32 + f16 -> f16`, `bool + i32 -> i32`), and `F16` with `BF16`
    /// gives `F32`.
    pub fn promote(self, other: DType) -> DType {
        match self.rank().cmp(&other.rank()) {
            std::cmp::Ordering::Equal if self != other => DType::F32, // F16 with BF16
            std::cmp::Ordering::Less => other,
            _ => self,
        }
    }

    /// PyTorch's dtype category: 0 for `Bool`, 1 for integers, 2 for floats. A 0-dim operand
    /// takes part in promotion only against one of a lower category.
    pub(crate) fn category(self) -> u8 {
        match self {
            DType::Bool => 0,
            DType::I32 => 1,
            _ => 2,
        }
    }

    /// The dtypes a GPU buffer holds, in the order of their kernel codes (`DTYPE_F32` = 0,
    /// `DTYPE_I32`, `DTYPE_BOOL`, `DTYPE_F16`, `DTYPE_BF16` in WGSL).
    pub(crate) const ON_GPU: [DType; 5] =
        [DType::F32, DType::I32, DType::Bool, DType::F16, DType::BF16];

    /// The code kernels switch on, or the error (naming `op`) of a dtype the GPU does not hold.
    pub(crate) fn gpu_code(self, op: &'static str) -> Result<u32> {
        match DType::ON_GPU.iter().position(|&d| d == self) {
            Some(i) => Ok(i as u32),
            None => Err(not_on_gpu(op, self)),
        }
    }
}

/// The error of a dtype the GPU does not hold (`F64`), naming `op`.
pub(crate) fn not_on_gpu(op: &'static str, got: DType) -> Error {
    Error::DType {
        op,
        got: vec![got],
        expected: "a dtype the GPU holds (F32, F16, BF16, I32 or Bool)",
        hint: "F64 is computed only inside gradcheck for now",
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// A float dtype, or an error naming `op` and `got`, with the conversion that fixes it.
pub(crate) fn require_float(op: &'static str, got: DType) -> Result<()> {
    match got.is_float() {
        true => Ok(()),
        false => Err(Error::DType {
            op,
            got: vec![got],
            expected: "a float tensor (F32, F16 or BF16)",
            hint: "convert with `.to_dtype(DType::F32)`",
        }),
    }
}

/// An `I32` index tensor, or an error naming `op` and the dtype it got.
pub(crate) fn require_index(op: &'static str, got: DType) -> Result<()> {
    match got {
        DType::I32 => Ok(()),
        _ => Err(index_error(op, got)),
    }
}

/// The error of an index (or class label) tensor of dtype `got`, not `I32`.
pub(crate) fn index_error(op: &'static str, got: DType) -> Error {
    Error::DType {
        op,
        got: vec![got],
        expected: "I32 indices",
        hint: "convert with `.to_dtype(DType::I32)` (floats are truncated toward zero)",
    }
}

/// The error of a skip flag (`Optimizer::skip_steps_if`) of dtype `got`, not `Bool`.
pub(crate) fn flag_error(op: &'static str, got: DType) -> Error {
    Error::DType {
        op,
        got: vec![got],
        expected: "a Bool flag",
        hint: "make one with a comparison, or `.to_dtype(DType::Bool)`",
    }
}

/// The one dtype of `got` (the parts of a `cat`), or the error naming `op` and them.
pub(crate) fn one_dtype(op: &'static str, got: &[DType]) -> Result<DType> {
    match got.first() {
        Some(&d) if got.iter().all(|&x| x == d) => Ok(d),
        _ => Err(Error::DType {
            op,
            got: got.to_vec(),
            expected: "operands of one dtype",
            hint: "convert with `.to_dtype`",
        }),
    }
}

/// Host data of one dtype: what a tensor is built from and read back into. (Public only so
/// [`Element`]'s hidden methods can name it; the module is private.)
#[derive(Debug)]
pub enum HostData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I32(Vec<i32>),
    Bool(Vec<bool>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
}

impl HostData {
    pub fn len(&self) -> usize {
        match self {
            HostData::F32(v) => v.len(),
            HostData::F64(v) => v.len(),
            HostData::I32(v) => v.len(),
            HostData::Bool(v) => v.len(),
            HostData::F16(v) => v.len(),
            HostData::BF16(v) => v.len(),
        }
    }

    pub fn dtype(&self) -> DType {
        match self {
            HostData::F32(_) => DType::F32,
            HostData::F64(_) => DType::F64,
            HostData::I32(_) => DType::I32,
            HostData::Bool(_) => DType::Bool,
            HostData::F16(_) => DType::F16,
            HostData::BF16(_) => DType::BF16,
        }
    }

    /// The values as f32 (integers rounded to the nearest f32, `true` as 1).
    pub fn into_f32(self) -> Vec<f32> {
        match self {
            HostData::F32(v) => v,
            HostData::F64(v) => v.into_iter().map(|x| x as f32).collect(),
            HostData::I32(v) => v.into_iter().map(|x| x as f32).collect(),
            HostData::Bool(v) => v.into_iter().map(f32::from).collect(),
            HostData::F16(v) => v.into_iter().map(f16::to_f32).collect(),
            HostData::BF16(v) => v.into_iter().map(bf16::to_f32).collect(),
        }
    }

    /// The values as f64 (exact for every dtype here).
    pub fn into_f64(self) -> Vec<f64> {
        match self {
            HostData::F32(v) => v.into_iter().map(f64::from).collect(),
            HostData::F64(v) => v,
            HostData::I32(v) => v.into_iter().map(f64::from).collect(),
            HostData::Bool(v) => v.into_iter().map(|b| f64::from(u8::from(b))).collect(),
            HostData::F16(v) => v.into_iter().map(f16::to_f64).collect(),
            HostData::BF16(v) => v.into_iter().map(bf16::to_f64).collect(),
        }
    }

    /// The elements as little-endian bytes (`Bool`: one byte each, 0 or 1): what checkpoints
    /// store and collectives send.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        fn le<T, const N: usize>(v: &[T], f: impl Fn(&T) -> [u8; N]) -> Vec<u8> {
            v.iter().flat_map(f).collect()
        }
        match self {
            HostData::F32(v) => le(v, |x| x.to_le_bytes()),
            HostData::F64(v) => le(v, |x| x.to_le_bytes()),
            HostData::I32(v) => le(v, |x| x.to_le_bytes()),
            HostData::Bool(v) => le(v, |&x| [u8::from(x)]),
            HostData::F16(v) => le(v, |x| x.to_le_bytes()),
            HostData::BF16(v) => le(v, |x| x.to_le_bytes()),
        }
    }

    /// [`HostData::to_le_bytes`] read back as `dtype` (a trailing partial element is
    /// ignored; callers check the count).
    pub fn from_le_bytes(dtype: DType, b: &[u8]) -> HostData {
        fn each<T, const N: usize>(b: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
            b.chunks_exact(N)
                .map(|c| f(c.try_into().unwrap_or([0; N])))
                .collect()
        }
        match dtype {
            DType::F32 => HostData::F32(each(b, f32::from_le_bytes)),
            DType::F64 => HostData::F64(each(b, f64::from_le_bytes)),
            DType::I32 => HostData::I32(each(b, i32::from_le_bytes)),
            DType::Bool => HostData::Bool(each(b, |c: [u8; 1]| c[0] != 0)),
            DType::F16 => HostData::F16(each(b, f16::from_le_bytes)),
            DType::BF16 => HostData::BF16(each(b, bf16::from_le_bytes)),
        }
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for i32 {}
    impl Sealed for bool {}
    impl Sealed for half::f16 {}
    impl Sealed for half::bf16 {}
}

/// A host type a tensor can be built from and read back into: `f32`, `i32`, `bool`,
/// [`half::f16`] or [`half::bf16`] ([`crate::Tensor::from_vec`], [`crate::Tensor::to_vec_as`]).
///
/// Only one primitive float type implements it, so `vec![1.0, 2.0]` stays an `F32` tensor and
/// `vec![1, 2]` is `I32`, with no suffixes.
///
/// ```
/// use ferrograd::half::f16;
/// use ferrograd::{DType, Device, Element, Result, Tensor};
/// /// A tensor of `values` and back, exactly, in `T`'s dtype.
/// fn round_trip<T: Element + PartialEq + std::fmt::Debug>(values: Vec<T>) -> Result<()> {
///     let t = Tensor::from_vec(values.clone(), &[values.len()], &Device::cpu())?;
///     assert_eq!(t.dtype(), T::DTYPE);
///     assert_eq!(t.to_vec_as::<T>()?, values);
///     Ok(())
/// }
/// round_trip(vec![1.5f32, -2.0])?;
/// round_trip(vec![3, 16_777_217])?; // I32: exact past 2^24
/// round_trip(vec![true, false])?;
/// round_trip(vec![f16::from_f32(0.5)])?;
/// assert_eq!(<bool as Element>::DTYPE, DType::Bool);
/// # Ok::<(), ferrograd::Error>(())
/// ```
pub trait Element: sealed::Sealed + Copy + Send + Sync + 'static {
    /// The dtype of a tensor of these.
    const DTYPE: DType;
    #[doc(hidden)]
    fn into_host(v: Vec<Self>) -> HostData;
    #[doc(hidden)]
    fn from_host(h: HostData) -> Option<Vec<Self>>;
}

macro_rules! element {
    ($t:ty, $d:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$d;
            fn into_host(v: Vec<Self>) -> HostData {
                HostData::$d(v)
            }
            fn from_host(h: HostData) -> Option<Vec<Self>> {
                match h {
                    HostData::$d(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}
element!(f32, F32);
element!(i32, I32);
element!(bool, Bool);
element!(f16, F16);
element!(bf16, BF16);

/// `value` as an element of `dtype`, or an error naming `op` when it is not one exactly
/// (a fraction or an out-of-range value for `I32`, anything but 0 or 1 for `Bool`).
pub(crate) fn exact_value(op: &'static str, value: f64, dtype: DType) -> Result<f64> {
    let ok = match dtype {
        // A float takes any value (a half rounds it to nearest even, as `half::f16::from_f32`).
        DType::F32 | DType::F64 | DType::F16 | DType::BF16 => true,
        DType::I32 => value.fract() == 0.0 && (-2_147_483_648.0..=2_147_483_647.0).contains(&value),
        DType::Bool => value == 0.0 || value == 1.0,
    };
    match ok {
        true => Ok(value),
        false => Err(Error::invalid(
            op,
            format!("{value} is not a value of dtype {dtype}"),
        )),
    }
}
