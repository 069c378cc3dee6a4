//! The tensor handle: creation, reading back, and views. A [`Tensor`] is an `Arc` over shared
//! storage plus a [`Layout`]; views (reshape of a contiguous tensor, transpose, permute,
//! broadcast, narrow, squeeze/unsqueeze) build a new layout over the same storage. Ops live in
//! `ops/` (one folder per op family), formatting in `display.rs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::autograd::{record, untracked, BackOp, Tracking};
use crate::device::Device;
use crate::dtype::{exact_value, DType, Element, HostData};
use crate::error::{Error, Result};
use crate::shape::{checked_numel, fits_kernel, normalize_axis, Layout};
use crate::storage::Storage;

/// An n-dimensional array on a [`Device`], of one [`DType`] (`F32` unless made otherwise).
/// Cloning is cheap (an `Arc`).
///
/// ```
/// use ferrograd::{Device, Tensor};
/// let dev = Device::cpu();
/// let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2], &dev)?;
/// let b = a.transpose(0, 1)?; // a view: no copy
/// assert_eq!(b.to_vec()?, vec![1.0, 3.0, 2.0, 4.0]);
/// let y = (&b + &a * &b)?; // operators return a Result too: never a panic
/// assert_eq!(y.to_vec()?, vec![2.0, 9.0, 8.0, 20.0]);
/// # Ok::<(), ferrograd::Error>(())
/// ```
///
/// Operators `+ - * /` and unary `-` take tensors and `f32`s; a tensor operator also takes a
/// `Result<Tensor>`, so `(&b + &a * &b)?` needs one `?` (Rust allows no operator between a
/// `Result` and a number: `((&a + &b)? * 2.0)?`).
#[derive(Clone)]
pub struct Tensor(Arc<TensorData>);

pub(crate) struct TensorData {
    pub storage: Arc<Storage>,
    pub layout: Layout,
    pub device: Device,
    /// Unique per handle built (clones share it): the key of [`crate::Gradients`].
    pub id: u64,
    /// Whether autograd follows this tensor, and the node that made it.
    pub tracking: Tracking,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

impl Tensor {
    pub(crate) fn from_parts(storage: Arc<Storage>, layout: Layout, device: Device) -> Tensor {
        Tensor::tracked(storage, layout, device, Tracking::None)
    }

    pub(crate) fn tracked(
        storage: Arc<Storage>,
        layout: Layout,
        device: Device,
        tracking: Tracking,
    ) -> Tensor {
        Tensor(Arc::new(TensorData {
            storage,
            layout,
            device,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            tracking,
        }))
    }

    /// The same data and layout under a new handle with `tracking`.
    pub(crate) fn with_tracking(&self, tracking: Tracking) -> Tensor {
        Tensor::tracked(
            self.0.storage.clone(),
            self.0.layout.clone(),
            self.0.device.clone(),
            tracking,
        )
    }

    pub(crate) fn id(&self) -> u64 {
        self.0.id
    }
    pub(crate) fn tracking(&self) -> &Tracking {
        &self.0.tracking
    }

    /// The node behind this handle, if this was the last handle to it (for dropping graphs
    /// without recursion; see `autograd::Node`'s `Drop`).
    pub(crate) fn into_node(self) -> Option<Arc<crate::autograd::Node>> {
        match Arc::try_unwrap(self.0).ok()?.tracking {
            Tracking::Node(node) => Some(node),
            _ => None,
        }
    }

    /// A contiguous tensor over freshly computed storage.
    pub(crate) fn from_storage(storage: Storage, shape: &[usize], device: &Device) -> Tensor {
        Tensor::from_parts(Arc::new(storage), Layout::contiguous(shape), device.clone())
    }

    /// A view of the same storage with another layout.
    pub(crate) fn with_layout(&self, layout: Layout) -> Tensor {
        Tensor::from_parts(self.0.storage.clone(), layout, self.0.device.clone())
    }

    pub(crate) fn storage(&self) -> &Storage {
        &self.0.storage
    }
    pub(crate) fn layout(&self) -> &Layout {
        &self.0.layout
    }

    // ---- creation ----

    /// A tensor of `shape` holding `data` in row-major order; its dtype is the element type's
    /// (`f32`: `F32`, `i32`: `I32`, `bool`: `Bool`).
    ///
    /// ```
    /// use ferrograd::{DType, Device, Tensor};
    /// let dev = Device::cpu();
    /// let x = Tensor::from_vec(vec![1.0, 2.0], &[2], &dev)?;
    /// let i = Tensor::from_vec(vec![1, 2], &[2], &dev)?;
    /// assert_eq!((x.dtype(), i.dtype()), (DType::F32, DType::I32));
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// `ElementCount` if `data.len()` is not the product of `shape`; `TooLarge` if it does not
    /// fit the device.
    pub fn from_vec<T: Element>(data: Vec<T>, shape: &[usize], device: &Device) -> Result<Tensor> {
        Tensor::from_host(T::into_host(data), shape, device)
    }

    /// A tensor of host data of any dtype (a checkpoint's).
    pub(crate) fn from_host(data: HostData, shape: &[usize], device: &Device) -> Result<Tensor> {
        check_count("from_vec", shape, data.len())?;
        let storage = Storage::from_host(device, data, "from_vec")?;
        Ok(Tensor::from_storage(storage, shape, device))
    }

    /// An f64 tensor on [`Device::cpu_f64`] (gradcheck's perturbed inputs).
    pub(crate) fn from_f64(data: Vec<f64>, shape: &[usize]) -> Result<Tensor> {
        check_count("from_f64", shape, data.len())?;
        Ok(Tensor::from_storage(
            Storage::from_f64(data),
            shape,
            &Device::cpu_f64(),
        ))
    }

    /// The elements in f64: exact for every dtype.
    pub(crate) fn to_vec_f64(&self) -> Result<Vec<f64>> {
        Ok(self.read()?.into_f64())
    }

    /// Like [`Tensor::from_vec`], copying from a slice.
    pub fn from_slice<T: Element>(data: &[T], shape: &[usize], device: &Device) -> Result<Tensor> {
        Tensor::from_vec(data.to_vec(), shape, device)
    }

    /// A 0-D tensor holding `value`.
    pub fn scalar(value: f32, device: &Device) -> Result<Tensor> {
        Tensor::from_vec(vec![value], &[], device)
    }

    /// A tensor of `shape` filled with `value`.
    pub fn full(shape: &[usize], value: f32, device: &Device) -> Result<Tensor> {
        Tensor::filled("full", shape, value, device)
    }

    /// A tensor of `shape` filled with 0.
    ///
    /// ```
    /// use ferrograd::{Device, Tensor};
    /// let z = Tensor::zeros(&[2, 3], &Device::cpu())?;
    /// assert_eq!((z.shape(), z.to_vec()?), (&[2, 3][..], vec![0.0; 6]));
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub fn zeros(shape: &[usize], device: &Device) -> Result<Tensor> {
        Tensor::filled("zeros", shape, 0.0, device)
    }

    /// A tensor of `shape` filled with 1.
    pub fn ones(shape: &[usize], device: &Device) -> Result<Tensor> {
        Tensor::filled("ones", shape, 1.0, device)
    }

    fn filled(op: &'static str, shape: &[usize], value: f32, device: &Device) -> Result<Tensor> {
        Tensor::filled_as(op, shape, f64::from(value), DType::F32, device)
    }

    pub(crate) fn filled_as(
        op: &'static str,
        shape: &[usize],
        value: f64,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        let value = exact_value(op, value, dtype)?;
        let n = checked_numel(op, shape)?;
        check_fits(device, op, n)?;
        // On a GPU a fill kernel: no host buffer, no upload (autograd makes zeros this way).
        let storage = Storage::fill(device, n, value, dtype, op)?;
        Ok(Tensor::from_storage(storage, shape, device))
    }

    /// `[start, start + step, ...]` up to but excluding `end` (1-D).
    pub fn arange(start: f32, end: f32, step: f32, device: &Device) -> Result<Tensor> {
        if step == 0.0
            || !step.is_finite()
            || !start.is_finite()
            || !end.is_finite()
            || (end - start) / step < 0.0
        {
            return Err(Error::invalid(
                "arange",
                format!("cannot go from {start} to {end} in steps of {step}"),
            ));
        }
        // `as` saturates: a count past usize::MAX (a tiny step) is refused by the size check.
        let n = ((end - start) / step).ceil() as usize;
        let mut data = host_buffer(device, "arange", n)?;
        data.extend((0..n).map(|i| start + i as f32 * step));
        Tensor::from_vec(data, &[n], device)
    }

    /// `steps` evenly spaced values from `start` to `end` inclusive (1-D).
    pub fn linspace(start: f32, end: f32, steps: usize, device: &Device) -> Result<Tensor> {
        let mut data = host_buffer(device, "linspace", steps)?;
        data.extend((0..steps).map(|i| match steps {
            1 => start,
            _ => start + (end - start) * (i as f32 / (steps - 1) as f32),
        }));
        Tensor::from_vec(data, &[steps], device)
    }

    /// The `n × n` identity matrix.
    pub fn eye(n: usize, device: &Device) -> Result<Tensor> {
        let numel = n
            .checked_mul(n)
            .ok_or_else(|| Error::invalid("eye", format!("{n} x {n} overflows")))?;
        let mut data = host_buffer(device, "eye", numel)?;
        data.resize(numel, 0.0);
        data.iter_mut().step_by(n + 1).for_each(|x| *x = 1.0);
        Tensor::from_vec(data, &[n, n], device)
    }

    // ---- properties ----

    /// The length of each axis (`[]` for a scalar).
    pub fn shape(&self) -> &[usize] {
        self.0.layout.shape()
    }
    /// Same as [`Tensor::shape`].
    pub fn dims(&self) -> &[usize] {
        self.shape()
    }
    /// The number of axes.
    pub fn rank(&self) -> usize {
        self.0.layout.rank()
    }
    /// The number of elements: the product of the shape.
    pub fn numel(&self) -> usize {
        self.0.layout.numel()
    }
    /// Elements to step over in storage per step along each axis (0 on a broadcast axis).
    pub fn strides(&self) -> &[usize] {
        self.0.layout.strides()
    }
    /// True when the elements lie in row-major order with no gaps (not a transposed, sliced
    /// or expanded view).
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }
    /// The device holding the data.
    pub fn device(&self) -> &Device {
        &self.0.device
    }
    /// The element type.
    pub fn dtype(&self) -> DType {
        self.storage().dtype()
    }
    /// Whether this tensor lives on a GPU and is larger than one of its bindings: kernels that
    /// bind their operands whole take another path then (see `gpu/window.rs`).
    pub(crate) fn past_one_binding(&self) -> bool {
        self.storage().past_one_binding()
    }

    /// True when both handles view the same storage (a view of the other, or a clone).
    pub fn same_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0.storage, &other.0.storage)
    }

    // ---- reading ----

    /// The elements in row-major order as `f32`, whatever the dtype (integers rounded to the
    /// nearest f32, `true` as 1.0; [`Tensor::to_vec_as`] reads them exactly). On the GPU this
    /// waits for pending work, and reports late errors: an out-of-range index in a gather
    /// this tensor was computed from, say.
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        Ok(self.read()?.into_f32())
    }

    /// The elements in row-major order, in the tensor's dtype.
    pub(crate) fn read(&self) -> Result<crate::dtype::HostData> {
        if !fits_kernel(&[self.layout()]) {
            return self.contiguous()?.read();
        }
        match self.storage().read(self.layout()) {
            // A GPU view one flat piece of which reads past a binding: copied in tiles first.
            Err(e) if e.needs_tiles() => self.copy_in_tiles("to_vec")?.read(),
            r => r,
        }
    }

    /// [`Tensor::to_vec`] as a future that never blocks the thread: what WebGPU in a browser,
    /// which cannot block, needs. On the CPU it is ready at once. On native GPUs the future
    /// drives wgpu itself (a non-blocking poll each time it is polled), so any executor
    /// works, `pollster::block_on` included.
    ///
    /// ```
    /// use ferrograd::{Device, Tensor};
    /// let t = Tensor::arange(0.0, 4.0, 1.0, &Device::cpu())?;
    /// assert_eq!(pollster::block_on(t.to_vec_async())?, vec![0.0, 1.0, 2.0, 3.0]);
    /// # Ok::<(), ferrograd::Error>(())
    /// ```
    pub async fn to_vec_async(&self) -> Result<Vec<f32>> {
        match self.device().is_gpu() {
            true => Ok(self.storage().read_async(self.layout()).await?.into_f32()),
            false => self.to_vec(),
        }
    }

    /// A copy on `device` (the same handle if it is already there).
    pub fn to_device(&self, device: &Device) -> Result<Tensor> {
        if self.device() == device {
            return Ok(self.clone());
        }
        let data = match self.read()? {
            // gradcheck's f64 values leaving its device become the target's floats.
            HostData::F64(v) if device.float_dtype() != DType::F64 => {
                HostData::F32(v.into_iter().map(|x| x as f32).collect())
            }
            data => data,
        };
        check_count("to_device", self.shape(), data.len())?;
        let storage = Storage::from_host(device, data, "to_device")?;
        let out = Tensor::from_storage(storage, self.shape(), device);
        Ok(record(out, BackOp::ToDevice { x: self.clone() }))
    }

    /// This tensor with row-major storage: itself if already contiguous, else a copy.
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        if !fits_kernel(&[self.layout()]) {
            if self.numel() == 0 {
                // nothing to copy
                return Tensor::zeros_dtype(self.shape(), self.dtype(), self.device());
            }
            // More axes than a kernel indexes, even merged: copy each slice of the first axis
            // (one axis fewer each) and join them.
            let parts = (0..self.shape()[0])
                .map(|i| self.narrow(0, i, 1)?.squeeze(0)?.contiguous()?.unsqueeze(0))
                .collect::<Result<Vec<_>>>()?;
            return Tensor::cat(&parts.iter().collect::<Vec<_>>(), 0)
                .map_err(|e| e.in_op("contiguous"));
        }
        self.unary(crate::ops::elementwise::op::UnaryOp::Identity, "contiguous")
    }

    /// Row-major storage starting at element 0 (itself when it already is, else a copy): the
    /// form the conv, pooling and norm kernels read.
    pub(crate) fn dense(&self) -> Result<Tensor> {
        if self.is_contiguous() && self.layout().offset() == 0 {
            return Ok(self.clone());
        }
        self.unary(crate::ops::elementwise::op::UnaryOp::Identity, "contiguous")
    }

    // ---- views ----

    /// The same elements in a new shape with the same number of elements. A view when the
    /// tensor is contiguous, a copy otherwise.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let n = checked_numel("reshape", shape)?;
        if n != self.numel() {
            return Err(Error::ShapeMismatch {
                op: "reshape",
                lhs: self.shape().to_vec(),
                rhs: shape.to_vec(),
                why: format!(
                    "hold different numbers of elements ({} vs {n})",
                    self.numel()
                ),
            });
        }
        if shape == self.shape() {
            // Nothing to do, and no copy of a strided view (autograd reshapes gradients back
            // to their input's shape, often the shape they already have).
            return Ok(self.clone());
        }
        let out = untracked(|| {
            let t = self.contiguous()?;
            Ok(t.with_layout(t.layout().reshaped(shape)))
        })?;
        Ok(record(out, BackOp::Reshape { x: self.clone() }))
    }

    /// All elements as one axis.
    pub fn flatten(&self) -> Result<Tensor> {
        self.reshape(&[self.numel()])
    }

    /// Swaps two axes (negative axes count from the end). A view.
    pub fn transpose(&self, a: isize, b: isize) -> Result<Tensor> {
        let (a, b) = (
            normalize_axis("transpose", a, self.rank())?,
            normalize_axis("transpose", b, self.rank())?,
        );
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// Swaps the last two axes (a matrix transpose). A view.
    pub fn t(&self) -> Result<Tensor> {
        if self.rank() < 2 {
            return Err(Error::invalid(
                "t",
                format!("needs at least 2 axes, found shape {:?}", self.shape()),
            ));
        }
        self.transpose(-2, -1)
    }

    /// Reorders the axes: axis `i` of the result is axis `perm[i]` of `self`. A view.
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        let out = self.with_layout(self.layout().permuted("permute", perm)?);
        Ok(record(
            out,
            BackOp::Permute {
                x: self.clone(),
                perm: perm.to_vec(),
            },
        ))
    }

    /// Repeats size-1 axes (and adds leading axes) to reach `shape`. A view: nothing is copied.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let out = self.with_layout(self.layout().broadcast_to("broadcast_to", shape)?);
        Ok(record(out, BackOp::Broadcast { x: self.clone() }))
    }

    /// Same as [`Tensor::broadcast_to`] (PyTorch's name).
    pub fn expand(&self, shape: &[usize]) -> Result<Tensor> {
        self.broadcast_to(shape).map_err(|e| e.in_op("expand"))
    }

    /// `len` elements of `axis` starting at `start`. A view.
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Result<Tensor> {
        let axis = normalize_axis("narrow", axis, self.rank())?;
        let out = self.with_layout(self.layout().narrowed("narrow", axis, start, len)?);
        Ok(record(
            out,
            BackOp::Narrow {
                x: self.clone(),
                axis,
                start,
            },
        ))
    }

    /// Elements `range` of `axis` (`t.slice(0, 1..3)`). A view.
    pub fn slice(&self, axis: isize, range: std::ops::Range<usize>) -> Result<Tensor> {
        if range.end < range.start {
            return Err(Error::invalid(
                "slice",
                format!("range {range:?} is reversed"),
            ));
        }
        self.narrow(axis, range.start, range.end - range.start)
    }

    /// Removes `axis`, which must have size 1. A view.
    pub fn squeeze(&self, axis: isize) -> Result<Tensor> {
        let a = normalize_axis("squeeze", axis, self.rank())?;
        if self.shape()[a] != 1 {
            return Err(Error::invalid(
                "squeeze",
                format!(
                    "axis {axis} has size {} (must be 1) in shape {:?}",
                    self.shape()[a],
                    self.shape()
                ),
            ));
        }
        let out = self.with_layout(self.layout().squeezed(a));
        Ok(record(
            out,
            BackOp::Squeeze {
                x: self.clone(),
                axis: a,
            },
        ))
    }

    /// Inserts a size-1 axis at `axis` (in `-(rank+1)..=rank`). A view.
    pub fn unsqueeze(&self, axis: isize) -> Result<Tensor> {
        let a = normalize_axis("unsqueeze", axis, self.rank() + 1)?;
        let out = self.with_layout(self.layout().unsqueezed(a));
        Ok(record(
            out,
            BackOp::Unsqueeze {
                x: self.clone(),
                axis: a,
            },
        ))
    }
}

/// `got` elements must fill `shape` exactly.
fn check_count(op: &'static str, shape: &[usize], got: usize) -> Result<()> {
    let expected = checked_numel(op, shape)?;
    if got != expected {
        return Err(Error::ElementCount {
            op,
            shape: shape.to_vec(),
            expected,
            got,
        });
    }
    Ok(())
}

/// An empty host buffer with room for the `n` elements of a new tensor on `device`, or an
/// error naming `op` and the bytes: on the CPU it is the tensor's own buffer, from the pool
/// and under the memory limit; for a GPU it is the upload, refused when the tensor could not
/// be bound.
pub(crate) fn host_buffer(device: &Device, op: &'static str, n: usize) -> Result<Vec<f32>> {
    check_fits(device, op, n)?;
    Storage::host_buffer(device, op, n)
}

/// Refuses a tensor of `n` elements that cannot fit on `device` before a host buffer is built.
pub(crate) fn check_fits(device: &Device, op: &'static str, n: usize) -> Result<()> {
    if let Some(ctx) = device.gpu_context() {
        let bytes = (n as u64).saturating_mul(4);
        if bytes > ctx.max_tensor_bytes() {
            return Err(Error::TooLarge {
                op,
                bytes,
                limit: ctx.max_tensor_bytes(),
                what: "max_buffer_size",
            });
        }
    }
    Ok(())
}
