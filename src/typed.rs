//! Tensors of a chosen dtype: typed creation (`full_dtype`, `zeros_dtype`, `ones_dtype`,
//! `rand_dtype`, `randn_dtype`, `randint`) and exact typed readback (`to_vec_as`). Conversion is `to_dtype`
//! (`ops/elementwise/mod.rs`); the dtypes themselves are in `dtype.rs`.

use crate::device::Device;
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::random::with_global;
use crate::shape::checked_numel;
use crate::storage::Storage;
use crate::tensor::{check_fits, Tensor};

impl Tensor {
    /// A tensor of `shape` filled with `value` in `dtype` (`value` must be one exactly: an
    /// integer in range for `I32`, 0 or 1 for `Bool`).
    ///
    /// ```
    /// use ferrograd::{DType, Device, Tensor};
    /// let t = Tensor::full_dtype(&[2], 16_777_217.0, DType::I32, &Device::cpu())?;
    /// assert_eq!(t.to_vec_as::<i32>()?, vec![16_777_217; 2]); // exact past 2^24
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub fn full_dtype(
        shape: &[usize],
        value: f64,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        Tensor::filled_as("full_dtype", shape, value, dtype, device)
    }

    /// Zeros of `dtype`.
    pub fn zeros_dtype(shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
        Tensor::filled_as("zeros_dtype", shape, 0.0, dtype, device)
    }

    /// Ones of `dtype`.
    pub fn ones_dtype(shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
        Tensor::filled_as("ones_dtype", shape, 1.0, dtype, device)
    }

    /// Uniform values in `[0, 1)` in the float dtype `dtype` (drawn in f32 from the global
    /// generator, as [`Tensor::rand`], and rounded once, so a value just under 1 may round to
    /// 1 in a half; `torch.rand(.., dtype=)`).
    ///
    /// # Errors
    /// `DType` for a dtype that is not `F32`, `F16` or `BF16` (integers: [`Tensor::randint`]).
    pub fn rand_dtype(shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
        random_float("rand_dtype", dtype)?;
        Tensor::rand(shape, device)?.to_dtype(dtype)
    }

    /// Standard normal values in the float dtype `dtype` (as [`Tensor::rand_dtype`]).
    pub fn randn_dtype(shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
        random_float("randn_dtype", dtype)?;
        Tensor::randn(shape, device)?.to_dtype(dtype)
    }

    /// Uniform random integers in `[lo, hi)` (`I32`) from the global generator, as
    /// `torch.randint`.
    pub fn randint(lo: i32, hi: i32, shape: &[usize], device: &Device) -> Result<Tensor> {
        if lo >= hi {
            return Err(Error::invalid(
                "randint",
                format!("the range {lo}..{hi} is empty"),
            ));
        }
        let n = checked_numel("randint", shape)?;
        check_fits(device, "randint", n)?;
        let mut data: Vec<i32> = Storage::host_buffer(device, "randint", n)?;
        with_global(|g| g.int_into(&mut data, n, lo, hi));
        Tensor::from_vec(data, shape, device)
    }

    /// The elements in row-major order as `T`, which must be this tensor's dtype's host type
    /// (`i32` for `I32`, `bool` for `Bool`, `f32` for `F32`).
    ///
    /// ```
    /// use ferrograd::{Device, Tensor};
    /// let x = Tensor::from_vec(vec![0.1, 0.9, 0.3, 0.2], &[2, 2], &Device::cpu())?;
    /// assert_eq!(x.argmax(1, false)?.to_vec_as::<i32>()?, vec![1, 0]);
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// `DType` naming both types when `T` is not this tensor's.
    pub fn to_vec_as<T: Element>(&self) -> Result<Vec<T>> {
        if T::DTYPE != self.dtype() {
            return Err(Error::DType {
                op: "to_vec_as",
                got: vec![self.dtype(), T::DTYPE],
                expected: "the tensor's own dtype",
                hint: "convert first with `.to_dtype`, or read f32 with `.to_vec()`",
            });
        }
        let data = self.read()?;
        // Matched above; `None` only for a dtype with no host type (F64), refused there too.
        T::from_host(data).ok_or_else(|| Error::invalid("to_vec_as", "no host type"))
    }

    /// The value of a one-element tensor (any shape: `[]`, `[1]`, `[1, 1]`) as `f32`, as
    /// PyTorch's `item()`: `loss.item()?` to log a loss.
    ///
    /// ```
    /// use ferrograd::{Device, Tensor};
    /// let x = Tensor::from_vec(vec![1.0, 2.0, 3.5], &[3], &Device::cpu())?;
    /// assert_eq!(x.sum_all()?.item()?, 6.5);
    /// assert_eq!(x.argmax(0, false)?.item_as::<i32>()?, 2);
    /// assert!(x.item().is_err()); // three elements
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// `NotScalar` naming the shape when the tensor does not hold exactly one element.
    pub fn item(&self) -> Result<f32> {
        self.one("item")?;
        Ok(self.to_vec()?[0])
    }

    /// [`item`](Tensor::item) under its older name.
    pub fn to_scalar(&self) -> Result<f32> {
        self.one("to_scalar")?;
        Ok(self.to_vec()?[0])
    }

    /// [`item`](Tensor::item) in the tensor's own host type `T` (exact for `I32`).
    ///
    /// # Errors
    /// As [`item`](Tensor::item), and `DType` when `T` is not the tensor's host type.
    pub fn item_as<T: Element>(&self) -> Result<T> {
        self.one("item_as")?;
        let mut v = self.to_vec_as::<T>().map_err(|e| e.in_op("item_as"))?;
        v.pop()
            .ok_or_else(|| Error::invalid("item_as", "no element"))
    }

    fn one(&self, op: &'static str) -> Result<()> {
        match self.numel() {
            1 => Ok(()),
            _ => Err(Error::NotScalar {
                op,
                shape: self.shape().to_vec(),
            }),
        }
    }
}

/// `dtype` as the dtype of random floats, or the error naming `op`.
fn random_float(op: &'static str, dtype: DType) -> Result<()> {
    match matches!(dtype, DType::F32 | DType::F16 | DType::BF16) {
        true => Ok(()),
        false => Err(Error::DType {
            op,
            got: vec![dtype],
            expected: "F32, F16 or BF16",
            hint: "draw integers with `Tensor::randint`",
        }),
    }
}

/// Host data [`Tensor::new`] makes a tensor of: a number, nested arrays, slices or `Vec`s of
/// [`Element`]s (`f32`, `i32`, `bool`, `f16`, `bf16`). The shape is the nesting's.
///
/// ```
/// use ferrograd::{Device, NdArray, Tensor};
/// let rows = vec![[1, 2, 3], [4, 5, 6]];
/// assert_eq!(rows.shape(), Ok(vec![2, 3]));
/// let t = Tensor::new(&rows, &Device::cpu())?; // I32, [2, 3]
/// assert_eq!(t.to_vec_as::<i32>()?, vec![1, 2, 3, 4, 5, 6]);
/// let ragged = vec![vec![1.0f32], vec![2.0, 3.0]];
/// assert!(ragged.shape().is_err()); // rows of one axis must agree
/// # Ok::<(), ferrograd::Error>(())
/// ```
pub trait NdArray {
    /// The element type, which gives the tensor's dtype.
    type Elem: Element;
    /// The shape, or a description of the first row whose length differs from the others'.
    fn shape(&self) -> std::result::Result<Vec<usize>, String>;
    /// Appends the elements in row-major order.
    fn flatten_into(&self, out: &mut Vec<Self::Elem>);
}

/// A number is a 0-dim array.
macro_rules! scalar_array {
    ($($t:ty),*) => {$(
        impl NdArray for $t {
            type Elem = $t;
            fn shape(&self) -> std::result::Result<Vec<usize>, String> {
                Ok(Vec::new())
            }
            fn flatten_into(&self, out: &mut Vec<$t>) {
                out.push(*self);
            }
        }
    )*};
}

scalar_array!(f32, i32, bool, half::f16, half::bf16);

impl<A: NdArray> NdArray for [A] {
    type Elem = A::Elem;
    fn shape(&self) -> std::result::Result<Vec<usize>, String> {
        let inner = match self.first() {
            Some(first) => first.shape()?,
            None => Vec::new(),
        };
        for (i, row) in self.iter().enumerate().skip(1) {
            let shape = row.shape().map_err(|why| format!("in row {i}: {why}"))?;
            if shape != inner {
                return Err(format!(
                    "row {i} has shape {shape:?} but row 0 has {inner:?}: rows must agree"
                ));
            }
        }
        Ok([self.len()].into_iter().chain(inner).collect())
    }
    fn flatten_into(&self, out: &mut Vec<A::Elem>) {
        self.iter().for_each(|row| row.flatten_into(out));
    }
}

impl<A: NdArray, const N: usize> NdArray for [A; N] {
    type Elem = A::Elem;
    fn shape(&self) -> std::result::Result<Vec<usize>, String> {
        self.as_slice().shape()
    }
    fn flatten_into(&self, out: &mut Vec<A::Elem>) {
        self.as_slice().flatten_into(out)
    }
}

impl<A: NdArray> NdArray for Vec<A> {
    type Elem = A::Elem;
    fn shape(&self) -> std::result::Result<Vec<usize>, String> {
        self.as_slice().shape()
    }
    fn flatten_into(&self, out: &mut Vec<A::Elem>) {
        self.as_slice().flatten_into(out)
    }
}

impl<A: NdArray + ?Sized> NdArray for &A {
    type Elem = A::Elem;
    fn shape(&self) -> std::result::Result<Vec<usize>, String> {
        (**self).shape()
    }
    fn flatten_into(&self, out: &mut Vec<A::Elem>) {
        (**self).flatten_into(out)
    }
}

impl Tensor {
    /// A tensor of host data whose nesting gives the shape: a number (shape `[]`), an array,
    /// slice or `Vec` (`[n]`), arrays of arrays (`[n, m]`), and so on.
    ///
    /// ```
    /// use ferrograd::{DType, Device, Tensor};
    /// let dev = Device::cpu();
    /// let m = Tensor::new(&[[1.0, 2.0], [3.0, 4.0]], &dev)?;
    /// assert_eq!(m.shape(), &[2, 2]);
    /// let labels = Tensor::new(vec![3, 1, 4], &dev)?; // I32
    /// assert_eq!(labels.dtype(), DType::I32);
    /// assert_eq!(Tensor::new(2.5, &dev)?.item()?, 2.5);
    /// assert!(Tensor::new(vec![vec![1.0], vec![2.0, 3.0]], &dev).is_err()); // ragged
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// `InvalidArgument` when rows of one axis differ in length (say which); as
    /// [`Tensor::from_vec`] otherwise.
    pub fn new(data: impl NdArray, device: &Device) -> Result<Tensor> {
        let shape = data
            .shape()
            .map_err(|why| Error::invalid("Tensor::new", why))?;
        let mut values = Vec::with_capacity(checked_numel("Tensor::new", &shape)?);
        data.flatten_into(&mut values);
        Tensor::from_vec(values, &shape, device).map_err(|e| e.in_op("Tensor::new"))
    }
}

/// `Vec::<T>::try_from(&tensor)` is [`Tensor::to_vec_as`].
impl<T: Element> TryFrom<&Tensor> for Vec<T> {
    type Error = Error;
    fn try_from(t: &Tensor) -> Result<Vec<T>> {
        t.to_vec_as()
    }
}
