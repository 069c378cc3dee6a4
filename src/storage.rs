//! Where tensor data lives: one [`Storage`] enum over the two backends. Its methods are the
//! only calls into a backend (the [`Backend`] trait in `backend.rs`): each matches the
//! operands' variant and hands the spec to that backend.

use crate::backend::{
    Backend, ConvSpec, CrossEntropySpec, Elementwise, GatherSpec, LineSpec, MatmulSpec, NormSpec,
    OptimSpec, PoolKind, ScanSpec, Strided, Window2d,
};
use crate::cpu::{CpuStorage, Precision};
use crate::device::{Device, Inner};
use crate::dtype::{DType, HostData};
use crate::error::{Error, Result};
use crate::gpu::GpuStorage;
use crate::ops::reduce::spec::ReduceOp;
use crate::profile;
use crate::shape::Layout;

mod half;
mod profiled;
use half::{half_of, in_pieces, widened};
use profiled::Readback;

/// A tensor's buffer on one of the two backends.
#[derive(Debug)]
pub(crate) enum Storage {
    Cpu(CpuStorage),
    Gpu(GpuStorage),
}

/// Applies `$body` to the matching backend storages (all on one device).
macro_rules! on_backend {
    ($op:expr, $s:ident, |$v:ident| $body:expr) => {
        match $s {
            Storage::Cpu($v) => Ok(Storage::Cpu($body?)),
            Storage::Gpu($v) => Ok(Storage::Gpu($body?)),
        }
    };
    ($op:expr, $s:ident, $t:ident, |$v:ident, $w:ident| $body:expr) => {
        match ($s, $t) {
            (Storage::Cpu($v), Storage::Cpu($w)) => Ok(Storage::Cpu($body?)),
            (Storage::Gpu($v), Storage::Gpu($w)) => Ok(Storage::Gpu($body?)),
            _ => Err(Error::invalid($op, "operands on different backends")),
        }
    };
}

/// Runs `$body` with the backend type `$B` and its context `$ctx` of `$device`, wrapping the
/// storage it makes in the matching variant.
macro_rules! on_device {
    ($device:expr, |$B:ident, $ctx:ident| $body:expr) => {
        match &$device.0 {
            Inner::Cpu | Inner::CpuF64 => {
                type $B = CpuStorage;
                let $ctx = &match &$device.0 {
                    Inner::CpuF64 => Precision::F64,
                    _ => Precision::F32,
                };
                Ok(Storage::Cpu($body?))
            }
            Inner::Gpu(c) => {
                type $B = GpuStorage;
                let $ctx = c;
                Ok(Storage::Gpu($body?))
            }
        }
    };
}

impl Storage {
    /// A storage on `device` holding `data`.
    pub fn from_host(device: &Device, data: HostData, op: &'static str) -> Result<Storage> {
        profile::time(op, || {
            on_device!(device, |B, ctx| <B as Backend>::from_host(ctx, data, op))
        })
    }

    /// `len` copies of `value` (exactly a value of `dtype`) on `device`.
    pub fn fill(
        device: &Device,
        len: usize,
        value: f64,
        dtype: DType,
        op: &'static str,
    ) -> Result<Storage> {
        profile::time(op, || {
            on_device!(device, |B, ctx| <B as Backend>::fill(
                ctx, len, value, dtype, op
            ))
        })
    }

    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        match self {
            Storage::Cpu(s) => Backend::dtype(s),
            Storage::Gpu(s) => Backend::dtype(s),
        }
    }

    /// A dropout mask of `len` values on `device` (see [`Backend::dropout_mask`]).
    pub fn dropout_mask(
        device: &Device,
        len: usize,
        key: u64,
        threshold: u32,
        scale: f32,
    ) -> Result<Storage> {
        profile::time("dropout_mask", || {
            on_device!(device, |B, ctx| <B as Backend>::dropout_mask(
                ctx, len, key, threshold, scale
            ))
        })
    }

    /// An f64 CPU storage (gradcheck's perturbed inputs, on `Device::cpu_f64`).
    pub fn from_f64(data: Vec<f64>) -> Storage {
        Storage::Cpu(CpuStorage::new(data))
    }

    /// An empty host buffer with room for `n` elements of a new tensor on `device`, or an
    /// error naming `op` and the bytes: on the CPU it becomes the tensor's own buffer (from
    /// the CPU's recycled buffers, under its memory limit); for a GPU it is the upload.
    pub fn host_buffer<T: crate::cpu::CpuElem>(
        device: &Device,
        op: &'static str,
        n: usize,
    ) -> Result<Vec<T>> {
        if device.is_cpu() {
            return crate::cpu::buffers::with_capacity(op, n);
        }
        let mut v = Vec::new();
        v.try_reserve_exact(n).map_err(|_| Error::OutOfMemory {
            op,
            bytes: (n as u64).saturating_mul(size_of::<T>() as u64),
            why: "the host buffer for the upload was refused by the system allocator".into(),
        })?;
        Ok(v)
    }

    /// Whether this is a GPU buffer larger than one of its bindings: kernels that bind their
    /// operands whole take another path then (see `gpu/window.rs`).
    pub fn past_one_binding(&self) -> bool {
        match self {
            Storage::Gpu(s) => s.buffer().size() > s.context().max_binding_bytes(),
            Storage::Cpu(_) => false,
        }
    }

    /// [`Storage::read`] without blocking the thread on a GPU.
    pub async fn read_async(&self, layout: &Layout) -> Result<HostData> {
        match self {
            Storage::Gpu(s) => s.read_async(layout).await,
            Storage::Cpu(s) => s.read(layout),
        }
    }
    pub fn elementwise(
        inputs: &[&Storage],
        spec: &Strided,
        kind: Elementwise,
        op: &'static str,
    ) -> Result<Storage> {
        profile::time(op, || {
            if let Some(cpu) = inputs
                .iter()
                .map(|s| s.as_cpu())
                .collect::<Option<Vec<_>>>()
            {
                return Ok(Storage::Cpu(CpuStorage::elementwise(&cpu, spec, kind)?));
            }
            if let Some(gpu) = inputs
                .iter()
                .map(|s| s.as_gpu())
                .collect::<Option<Vec<_>>>()
            {
                return Ok(Storage::Gpu(GpuStorage::elementwise(&gpu, spec, kind)?));
            }
            Err(Error::invalid(op, "operands on different backends"))
        })
    }

    pub fn matmul(
        &self,
        rhs: &Storage,
        bias: Option<&Storage>,
        spec: &MatmulSpec,
    ) -> Result<Storage> {
        let values: Vec<&Storage> = [self, rhs].into_iter().chain(bias).collect();
        if let Some(h) = half_of(&values) {
            let c = bias.map(Storage::widen).transpose()?;
            let out = self.widen()?.matmul(&*rhs.widen()?, c.as_deref(), spec)?;
            return out.narrow(h);
        }
        profile::time("matmul", || match (self, rhs, bias) {
            (Storage::Cpu(a), Storage::Cpu(b), None) => {
                Ok(Storage::Cpu(Backend::matmul(a, b, None, spec)?))
            }
            (Storage::Cpu(a), Storage::Cpu(b), Some(Storage::Cpu(c))) => {
                Ok(Storage::Cpu(Backend::matmul(a, b, Some(c), spec)?))
            }
            (Storage::Gpu(a), Storage::Gpu(b), None) => {
                Ok(Storage::Gpu(Backend::matmul(a, b, None, spec)?))
            }
            (Storage::Gpu(a), Storage::Gpu(b), Some(Storage::Gpu(c))) => {
                Ok(Storage::Gpu(Backend::matmul(a, b, Some(c), spec)?))
            }
            _ => Err(Error::invalid("matmul", "operands on different backends")),
        })
    }

    pub fn reduce(&self, spec: &LineSpec, op: ReduceOp) -> Result<Storage> {
        if let Some(h) = half_of(&[self]) {
            return self.widen()?.reduce(spec, op)?.narrow(h); // arg-reductions stay I32
        }
        profile::time(op.name(), || {
            on_backend!(op.name(), self, |s| s.reduce(spec, op))
        })
    }

    pub fn softmax(&self, spec: &LineSpec, log: bool) -> Result<Storage> {
        if let Some(h) = half_of(&[self]) {
            return self.widen()?.softmax(spec, log)?.narrow(h);
        }
        profile::time(if log { "log_softmax" } else { "softmax" }, || {
            on_backend!("softmax", self, |s| s.softmax(spec, log))
        })
    }

    pub fn softmax_backward(
        &self,
        g: &Storage,
        spec: &LineSpec,
        grad_offset: usize,
        log: bool,
    ) -> Result<Storage> {
        if let Some(h) = half_of(&[self, g]) {
            let y = self.widen()?;
            return y
                .softmax_backward(&*g.widen()?, spec, grad_offset, log)?
                .narrow(h);
        }
        profile::time("softmax_backward", || {
            on_backend!("softmax_backward", self, g, |y, g| {
                Backend::softmax_backward(y, g, spec, grad_offset, log)
            })
        })
    }

    pub fn gather(&self, index: &Storage, spec: &GatherSpec, op: &'static str) -> Result<Storage> {
        if let Some(h) = half_of(&[self]) {
            return self.widen()?.gather(index, spec, op)?.narrow(h);
        }
        profile::time(op, || {
            on_backend!(op, self, index, |a, i| Backend::gather(a, i, spec, op))
        })
    }

    pub fn one_hot(&self, spec: &Strided, classes: usize) -> Result<Storage> {
        profile::time("one_hot", || {
            on_backend!("one_hot", self, |s| s.one_hot(spec, classes))
        })
    }

    pub fn cat(parts: &[(&Storage, Strided)], numel: usize) -> Result<Storage> {
        let stores: Vec<&Storage> = parts.iter().map(|p| p.0).collect();
        if let Some(h) = half_of(&stores) {
            let (wide, index) = widened(&stores)?;
            let parts: Vec<_> = (index.iter().zip(parts))
                .map(|(&i, p)| (&*wide[i], p.1.clone()))
                .collect();
            return Storage::cat(&parts, numel)?.narrow(h);
        }
        profile::time("cat", || {
            if let Some(cpu) = parts
                .iter()
                .map(|(s, sp)| s.as_cpu().map(|c| (c, sp.clone())))
                .collect::<Option<Vec<_>>>()
            {
                return Ok(Storage::Cpu(CpuStorage::cat(&cpu, numel)?));
            }
            if let Some(gpu) = parts
                .iter()
                .map(|(s, sp)| s.as_gpu().map(|g| (g, sp.clone())))
                .collect::<Option<Vec<_>>>()
            {
                return Ok(Storage::Gpu(GpuStorage::cat(&gpu, numel)?));
            }
            Err(Error::invalid("cat", "operands on different backends"))
        })
    }

    pub fn unfold(&self, win: &Window2d) -> Result<Storage> {
        if let Some(h) = half_of(&[self]) {
            return self.widen()?.unfold(win)?.narrow(h);
        }
        profile::time("unfold2d", || {
            on_backend!("unfold2d", self, |s| s.unfold(win))
        })
    }

    pub fn fold(&self, win: &Window2d) -> Result<Storage> {
        if let Some(h) = half_of(&[self]) {
            return self.widen()?.fold(win)?.narrow(h);
        }
        profile::time("fold2d", || on_backend!("fold2d", self, |s| s.fold(win)))
    }

    /// conv2d's output, and the columns the backend kept for the backward pass, if any.
    pub fn conv2d(
        &self,
        w: &Storage,
        bias: Option<&Storage>,
        spec: &ConvSpec,
    ) -> Result<(Storage, Option<Storage>)> {
        let values: Vec<&Storage> = [self, w].into_iter().chain(bias).collect();
        if let Some(h) = half_of(&values) {
            let (w, b) = (w.widen()?, bias.map(Storage::widen).transpose()?);
            let (win, out) = (&spec.win, [(h, spec.out_c * spec.windows())]);
            let piece = |x: &Storage, n: usize| {
                let part = ConvSpec {
                    win: Window2d { n, ..*win },
                    ..*spec
                };
                Ok(vec![x.conv2d(&w, b.as_deref(), &part)?.0])
            };
            let per_image = win.image_numel() / win.n.max(1);
            // The GPU unfolds a piece's images whole: their columns are alive in it.
            let cols = match self {
                Storage::Gpu(_) => win.cols_numel() / win.n.max(1),
                Storage::Cpu(_) => 0,
            };
            let sizes = [win.n, per_image, cols];
            if let Some(mut y) = in_pieces(self, sizes, &out, "conv2d", piece)? {
                return Ok((y.remove(0), None)); // no columns: the backward pass unfolds
            }
            // The columns kept for the backward pass stay F32.
            let (y, cols) = self.widen()?.conv2d(&w, b.as_deref(), spec)?;
            return Ok((y.narrow(h)?, cols));
        }
        let mixed = || Error::invalid("conv2d", "operands on different backends");
        profile::time("conv2d", || match (self, w, bias) {
            (Storage::Cpu(x), Storage::Cpu(w), b) => {
                let b = b.map(|b| b.as_cpu().ok_or_else(mixed)).transpose()?;
                let (y, cols) = Backend::conv2d(x, w, b, spec)?;
                Ok((Storage::Cpu(y), cols.map(Storage::Cpu)))
            }
            (Storage::Gpu(x), Storage::Gpu(w), b) => {
                let b = b.map(|b| b.as_gpu().ok_or_else(mixed)).transpose()?;
                let (y, cols) = Backend::conv2d(x, w, b, spec)?;
                Ok((Storage::Gpu(y), cols.map(Storage::Gpu)))
            }
            _ => Err(mixed()),
        })
    }

    /// The weight and (when `input_grad`) input gradients of conv2d from `g`, reusing the
    /// columns the forward pass kept (`cols`), if any.
    pub fn conv2d_backward(
        &self,
        w: &Storage,
        g: &Storage,
        cols: Option<&Storage>,
        spec: &ConvSpec,
        input_grad: bool,
    ) -> Result<(Storage, Option<Storage>)> {
        if let Some(h) = half_of(&[self, w, g]) {
            let (x, w, g) = (self.widen()?, w.widen()?, g.widen()?);
            let (dw, dx) = x.conv2d_backward(&w, &g, cols, spec, input_grad)?;
            return Ok((dw.narrow(h)?, dx.map(|d| d.narrow(h)).transpose()?));
        }
        profile::time("conv2d_backward", || match (self, w, g) {
            (Storage::Cpu(x), Storage::Cpu(w), Storage::Cpu(g)) => {
                let cols = cols.and_then(Storage::as_cpu);
                let (dx, dw) = Backend::conv2d_backward(x, w, g, cols, spec, input_grad)?;
                Ok((Storage::Cpu(dw), dx.map(Storage::Cpu)))
            }
            (Storage::Gpu(x), Storage::Gpu(w), Storage::Gpu(g)) => {
                let cols = cols.and_then(Storage::as_gpu);
                let (dx, dw) = Backend::conv2d_backward(x, w, g, cols, spec, input_grad)?;
                Ok((Storage::Gpu(dw), dx.map(Storage::Gpu)))
            }
            _ => Err(Error::invalid(
                "conv2d_backward",
                "operands on different backends",
            )),
        })
    }

    /// The pooled output, and for max pooling when `indices` the arg-max (F32).
    pub fn pool(
        &self,
        win: &Window2d,
        kind: PoolKind,
        indices: bool,
    ) -> Result<(Storage, Option<Storage>)> {
        if let Some(h) = half_of(&[self]) {
            let per_out = win.out_numel() / win.n.max(1);
            let indices = indices && kind.is_max();
            let outs = [(h, per_out), (DType::F32, per_out)];
            let outs = &outs[..1 + usize::from(indices)];
            let piece = |x: &Storage, n: usize| {
                let (y, arg) = x.pool(&Window2d { n, ..*win }, kind, indices)?;
                Ok([y].into_iter().chain(arg).collect())
            };
            let per_image = win.image_numel() / win.n.max(1);
            if let Some(mut y) = in_pieces(self, [win.n, per_image, 0], outs, "pool2d", piece)? {
                let arg = indices.then(|| y.pop()).flatten();
                return Ok((y.remove(0), arg));
            }
            let (y, argmax) = self.widen()?.pool(win, kind, indices)?;
            return Ok((y.narrow(h)?, argmax));
        }
        profile::time("pool2d", || match self {
            Storage::Cpu(s) => {
                let (o, i) = s.pool(win, kind, indices)?;
                Ok((Storage::Cpu(o), i.map(Storage::Cpu)))
            }
            Storage::Gpu(s) => {
                let (o, i) = s.pool(win, kind, indices)?;
                Ok((Storage::Gpu(o), i.map(Storage::Gpu)))
            }
        })
    }

    pub fn pool_backward(
        &self,
        argmax: Option<&Storage>,
        win: &Window2d,
        kind: PoolKind,
    ) -> Result<Storage> {
        if let Some(h) = half_of(&[self]) {
            return self.widen()?.pool_backward(argmax, win, kind)?.narrow(h);
        }
        profile::time("pool2d_backward", || {
            let op = "pool2d_backward";
            match (self, argmax) {
                (Storage::Cpu(g), None) => {
                    Ok(Storage::Cpu(Backend::pool_backward(g, None, win, kind)?))
                }
                (Storage::Cpu(g), Some(Storage::Cpu(i))) => {
                    Ok(Storage::Cpu(Backend::pool_backward(g, Some(i), win, kind)?))
                }
                (Storage::Gpu(g), None) => {
                    Ok(Storage::Gpu(Backend::pool_backward(g, None, win, kind)?))
                }
                (Storage::Gpu(g), Some(Storage::Gpu(i))) => {
                    Ok(Storage::Gpu(Backend::pool_backward(g, Some(i), win, kind)?))
                }
                _ => Err(Error::invalid(op, "operands on different backends")),
            }
        })
    }

    pub fn normalize(&self, spec: &NormSpec) -> Result<(Storage, Storage)> {
        if let Some(h) = half_of(&[self]) {
            let (y, stats) = self.widen()?.normalize(spec)?; // statistics stay F32
            return Ok((y.narrow(h)?, stats));
        }
        profile::time("normalize", || match self {
            Storage::Cpu(s) => {
                let (y, st) = s.normalize(spec)?;
                Ok((Storage::Cpu(y), Storage::Cpu(st)))
            }
            Storage::Gpu(s) => {
                let (y, st) = s.normalize(spec)?;
                Ok((Storage::Gpu(y), Storage::Gpu(st)))
            }
        })
    }

    pub fn normalize_backward(
        &self,
        g: &Storage,
        stats: &Storage,
        spec: &NormSpec,
    ) -> Result<Storage> {
        if let Some(h) = half_of(&[self, g]) {
            let (y, g) = (self.widen()?, g.widen()?);
            return y.normalize_backward(&g, stats, spec)?.narrow(h);
        }
        profile::time("normalize_backward", || match (self, g, stats) {
            (Storage::Cpu(y), Storage::Cpu(g), Storage::Cpu(s)) => {
                Ok(Storage::Cpu(Backend::normalize_backward(y, g, s, spec)?))
            }
            (Storage::Gpu(y), Storage::Gpu(g), Storage::Gpu(s)) => {
                Ok(Storage::Gpu(Backend::normalize_backward(y, g, s, spec)?))
            }
            _ => Err(Error::invalid(
                "normalize_backward",
                "operands on different backends",
            )),
        })
    }

    pub fn cross_entropy(
        &self,
        target: &Storage,
        spec: &CrossEntropySpec,
    ) -> Result<(Storage, Storage)> {
        if let Some(h) = half_of(&[self]) {
            let (loss, lse) = self.widen()?.cross_entropy(target, spec)?; // lse stays F32
            return Ok((loss.narrow(h)?, lse));
        }
        profile::time("cross_entropy", || match (self, target) {
            (Storage::Cpu(x), Storage::Cpu(t)) => {
                let (l, s) = Backend::cross_entropy(x, t, spec)?;
                Ok((Storage::Cpu(l), Storage::Cpu(s)))
            }
            (Storage::Gpu(x), Storage::Gpu(t)) => {
                let (l, s) = Backend::cross_entropy(x, t, spec)?;
                Ok((Storage::Gpu(l), Storage::Gpu(s)))
            }
            _ => Err(Error::invalid(
                "cross_entropy",
                "operands on different backends",
            )),
        })
    }

    pub fn cross_entropy_backward(
        &self,
        target: &Storage,
        lse: &Storage,
        g: &Storage,
        spec: &CrossEntropySpec,
    ) -> Result<Storage> {
        if let Some(h) = half_of(&[self, g]) {
            let (x, g) = (self.widen()?, g.widen()?);
            return x.cross_entropy_backward(target, lse, &g, spec)?.narrow(h);
        }
        profile::time("cross_entropy_backward", || match (self, target, lse, g) {
            (Storage::Cpu(x), Storage::Cpu(t), Storage::Cpu(s), Storage::Cpu(g)) => Ok(
                Storage::Cpu(Backend::cross_entropy_backward(x, t, s, g, spec)?),
            ),
            (Storage::Gpu(x), Storage::Gpu(t), Storage::Gpu(s), Storage::Gpu(g)) => Ok(
                Storage::Gpu(Backend::cross_entropy_backward(x, t, s, g, spec)?),
            ),
            _ => Err(Error::invalid(
                "cross_entropy",
                "operands on different backends",
            )),
        })
    }

    pub fn optim_step(
        &self,
        grad: &Storage,
        state: &Storage,
        spec: &OptimSpec,
        skip: Option<&Storage>,
    ) -> Result<(Storage, Storage)> {
        if let Some(h) = half_of(&[self, grad]) {
            let (p, g, st) = (self.widen()?, grad.widen()?, state.widen()?);
            let (p, s) = p.optim_step(&g, &st, spec, skip)?;
            return Ok((p.narrow(h)?, s.narrow(state.dtype())?));
        }
        let mixed = || Error::invalid("optimizer step", "operands on different backends");
        profile::time("optim_step", || match (self, grad, state) {
            (Storage::Cpu(p), Storage::Cpu(g), Storage::Cpu(s)) => {
                let skip = skip.map(|k| k.as_cpu().ok_or_else(mixed)).transpose()?;
                let (p, s) = Backend::optim_step(p, g, s, spec, skip)?;
                Ok((Storage::Cpu(p), Storage::Cpu(s)))
            }
            (Storage::Gpu(p), Storage::Gpu(g), Storage::Gpu(s)) => {
                let skip = skip.map(|k| k.as_gpu().ok_or_else(mixed)).transpose()?;
                let (p, s) = Backend::optim_step(p, g, s, spec, skip)?;
                Ok((Storage::Gpu(p), Storage::Gpu(s)))
            }
            _ => Err(Error::invalid(
                "optimizer step",
                "operands on different backends",
            )),
        })
    }

    pub fn scan(&self, spec: &ScanSpec) -> Result<Storage> {
        if let Some(h) = half_of(&[self]) {
            return self.widen()?.scan(spec)?.narrow(h);
        }
        profile::time("scan", || {
            on_backend!("scan", self, |x| Backend::scan(x, spec))
        })
    }

    /// The elements of `layout` in row-major order, in the storage's dtype.
    pub fn read(&self, layout: &Layout) -> Result<HostData> {
        let read = profile::time("to_vec", || match self {
            Storage::Cpu(s) => Ok(Readback("cpu", Backend::read(s, layout)?)),
            Storage::Gpu(s) => Ok(Readback("gpu", Backend::read(s, layout)?)),
        })?;
        Ok(read.1)
    }

    fn as_cpu(&self) -> Option<&CpuStorage> {
        match self {
            Storage::Cpu(s) => Some(s),
            Storage::Gpu(_) => None,
        }
    }
    fn as_gpu(&self) -> Option<&GpuStorage> {
        match self {
            Storage::Gpu(s) => Some(s),
            Storage::Cpu(_) => None,
        }
    }
}
