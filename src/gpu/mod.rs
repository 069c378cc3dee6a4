//! The wgpu backend: [`GpuStorage`] (a pooled buffer) and the launchers that turn each op's
//! spec into a typed parameter struct and one or two dispatches. Nothing here waits for the
//! GPU except `to_vec`.

pub(crate) mod adapters;
pub(crate) mod context;
pub mod contract;
use crate::ops::conv::gpu as conv;
use crate::ops::elementwise::gpu as elementwise;
use crate::ops::index::gpu as index;
use crate::ops::loss::gpu as loss;
use crate::ops::matmul::gpu as matmul;
use crate::ops::norm::gpu as norm;
use crate::ops::optim::gpu as optim;
use crate::ops::pool::gpu as pooling;
use crate::ops::random::gpu as random;
use crate::ops::reduce::gpu as reduce;
use crate::ops::scan::gpu as scan;
pub(crate) mod buffers;
pub(crate) mod fault;
pub(crate) mod grid;
pub(crate) mod kernels;
pub(crate) mod params;
pub(crate) mod readback;
pub(crate) mod storage;
pub(crate) mod window;

use std::sync::Arc;

use context::GpuContext;
use storage::words;
pub(crate) use storage::GpuStorage;

/// Makes `dev` (a GPU) split its work as if one binding held at most `bytes` (`None`: the
/// adapter's own limit), so tests run the windowed paths for tensors larger than a binding on
/// small tensors. No effect on the CPU.
pub fn set_binding_limit(dev: &crate::Device, bytes: Option<u64>) {
    if let Some(ctx) = dev.gpu_context() {
        let v = bytes.unwrap_or(0);
        ctx.binding_override
            .store(v, std::sync::atomic::Ordering::Relaxed);
    }
}

use crate::backend::{
    Backend, ConvSpec, CrossEntropySpec, Elementwise, GatherSpec, LineSpec, MatmulSpec, NormSpec,
    OptimSpec, PoolKind, ScanSpec, Strided, Window2d,
};
use crate::dtype::{one_dtype, require_index, DType, HostData};
use crate::error::{Error, Result};
use crate::ops::elementwise::op::UnaryOp;
use crate::ops::reduce::spec::ReduceOp;
use crate::shape::Layout;

impl GpuStorage {
    /// [`Backend::read`] without blocking (see `GpuContext::read_async`).
    pub async fn read_async(&self, layout: &Layout) -> Result<HostData> {
        let (dense, offset) = self.readable(layout)?;
        let buf = dense.as_ref().unwrap_or(self).buffer();
        let (first, count) = word_span(self.dtype(), offset, layout.numel());
        let words = (self.ctx)
            .read_async(buf, first, count, self.check(), "to_vec_async")
            .await?;
        Ok(GpuStorage::decode(
            self.dtype(),
            words,
            offset,
            layout.numel(),
        ))
    }

    /// Where a readback of `layout` reads: this buffer from the view's offset (in elements)
    /// when the view is contiguous, else a dense copy (returned) from 0.
    fn readable(&self, layout: &Layout) -> Result<(Option<GpuStorage>, usize)> {
        if layout.is_contiguous() {
            return Ok((None, layout.offset()));
        }
        let spec = Strided::new("to_vec", &[layout])?;
        let identity = Elementwise::Unary(UnaryOp::Identity);
        Ok((Some(GpuStorage::elementwise(&[self], &spec, identity)?), 0))
    }
}

/// The words holding `n` elements of `dtype` from element `offset`: (first word, count). Halves
/// are read packed, as they are (no widening), and unpacked on the host.
fn word_span(dtype: DType, offset: usize, n: usize) -> (usize, usize) {
    match dtype.is_half() {
        true => (offset / 2, (offset + n).div_ceil(2) - offset / 2),
        false => (offset, n),
    }
}

/// Refuses a kernel that moves whole words packed halves (`storage/half.rs` widens them first:
/// this keeps two halves from ever moving as one element).
fn whole_words(op: &'static str, operands: &[&GpuStorage]) -> Result<()> {
    match operands.iter().any(|s| s.dtype().is_half()) {
        true => Err(crate::cpu::storage::float_mismatch(
            op,
            &operands.iter().map(|s| s.dtype()).collect::<Vec<_>>(),
        )),
        false => Ok(()),
    }
}

/// Refuses a float-only kernel operands of another dtype (the ops above check first: this
/// keeps the bits of an integer from ever being read as a float).
fn floats(op: &'static str, operands: &[&GpuStorage]) -> Result<()> {
    match operands.iter().all(|s| s.dtype() == DType::F32) {
        true => Ok(()),
        false => Err(Error::DType {
            op,
            got: operands.iter().map(|s| s.dtype()).collect(),
            expected: "F32 operands",
            hint: "convert with `.to_dtype(DType::F32)`",
        }),
    }
}

impl Backend for GpuStorage {
    type Context = Arc<GpuContext>;

    fn from_host(ctx: &Arc<GpuContext>, data: HostData, op: &'static str) -> Result<Self> {
        GpuStorage::from_host(ctx, op, data)
    }

    fn fill(
        ctx: &Arc<GpuContext>,
        len: usize,
        value: f64,
        dtype: DType,
        op: &'static str,
    ) -> Result<Self> {
        dtype.gpu_code(op)?;
        let out = GpuStorage::alloc_as(ctx, op, len, dtype)?;
        elementwise::fill(&out, len, value, op)?;
        Ok(out)
    }

    fn dropout_mask(
        ctx: &Arc<GpuContext>,
        len: usize,
        key: u64,
        threshold: u32,
        scale: f32,
    ) -> Result<Self> {
        random::dropout_mask(ctx, len, key, threshold, scale)
    }
    fn elementwise(inputs: &[&Self], spec: &Strided, kind: Elementwise) -> Result<Self> {
        Ok(elementwise::elementwise(inputs, spec, kind)?.inherit(inputs))
    }

    fn matmul(a: &Self, b: &Self, bias: Option<&Self>, s: &MatmulSpec) -> Result<Self> {
        floats(
            "matmul",
            &[a, b].into_iter().chain(bias).collect::<Vec<_>>(),
        )?;
        let out = matmul::matmul(a, b, bias, s)?;
        Ok(out.inherit(&[a, b].into_iter().chain(bias).collect::<Vec<_>>()))
    }

    fn reduce(&self, spec: &LineSpec, op: ReduceOp) -> Result<Self> {
        Ok(reduce::reduce(self, spec, op)?.inherit(&[self]))
    }

    fn softmax(&self, spec: &LineSpec, log: bool) -> Result<Self> {
        floats("softmax", &[self])?;
        Ok(reduce::softmax(self, spec, log)?.inherit(&[self]))
    }

    fn softmax_backward(
        y: &Self,
        g: &Self,
        spec: &LineSpec,
        grad_offset: usize,
        log: bool,
    ) -> Result<Self> {
        floats("softmax_backward", &[y, g])?;
        let out = reduce::softmax_backward(y, g, spec, grad_offset, log)?;
        Ok(out.inherit(&[y, g]))
    }

    fn cross_entropy(x: &Self, target: &Self, spec: &CrossEntropySpec) -> Result<(Self, Self)> {
        floats("cross_entropy", &[x])?;
        require_index("cross_entropy", target.dtype())?;
        let ctx = x.context();
        let op = "cross_entropy";
        // Both outputs carry the inputs' faults and the slot this launch may fault into.
        let mut loss = GpuStorage::alloc(ctx, op, spec.rows)?.inherit(&[x, target]);
        let fault_base = loss.new_fault(op)?;
        let lse = GpuStorage::alloc(ctx, op, spec.rows)?.inherit(&[&loss]);
        loss::forward(x, target, &loss, &lse, spec, fault_base)?;
        loss.recorded();
        Ok((loss, lse))
    }

    fn cross_entropy_backward(
        x: &Self,
        target: &Self,
        lse: &Self,
        g: &Self,
        spec: &CrossEntropySpec,
    ) -> Result<Self> {
        floats("cross_entropy", &[x, lse, g])?;
        require_index("cross_entropy", target.dtype())?;
        let ctx = x.context();
        let op = "cross_entropy";
        let n = spec.rows * spec.classes;
        // The forward pass reported bad classes; this launch only inherits that slot.
        let out = GpuStorage::alloc(ctx, op, n)?.inherit(&[x, target, lse, g]);
        loss::backward(x, target, lse, g, &out, spec)?;
        Ok(out)
    }

    fn gather(input: &Self, index: &Self, spec: &GatherSpec, op: &'static str) -> Result<Self> {
        let n = spec.strided.numel();
        require_index(op, index.dtype())?;
        whole_words(op, &[input])?;
        let out = GpuStorage::alloc_as(input.context(), op, n, input.dtype())?;
        let mut out = out.inherit(&[input, index]);
        let fault_base = out.new_fault(op)?;
        index::gather(&out, input, index, spec, fault_base, op)?;
        out.recorded();
        Ok(out)
    }

    fn one_hot(&self, spec: &Strided, classes: usize) -> Result<Self> {
        let n = spec.numel() * classes;
        require_index("one_hot", self.dtype())?;
        let out = GpuStorage::alloc_as(self.context(), "one_hot", n, DType::I32)?;
        let mut out = out.inherit(&[self]);
        let fault_base = out.new_fault("one_hot")?;
        index::one_hot(&out, self, spec, classes, fault_base)?;
        out.recorded();
        Ok(out)
    }

    fn cat(parts: &[(&Self, Strided)], numel: usize) -> Result<Self> {
        let ctx = parts[0].0.context();
        let sources: Vec<&GpuStorage> = parts.iter().map(|p| p.0).collect();
        let dtypes: Vec<DType> = sources.iter().map(|s| s.dtype()).collect();
        let dtype = one_dtype("cat", &dtypes)?;
        whole_words("cat", &sources)?;
        let out = GpuStorage::alloc_as(ctx, "cat", numel, dtype)?.inherit(&sources);
        index::cat(&out, parts)?;
        Ok(out)
    }

    fn empty_like(&self, dtype: DType, len: usize, op: &'static str) -> Result<Self> {
        GpuStorage::alloc_as(self.context(), op, len, dtype)
    }

    fn write_at(&mut self, src: &Self, at: usize, op: &'static str) -> Result<()> {
        one_dtype(op, &[self.dtype(), src.dtype()])?;
        let (end, half) = (at + src.len(), self.dtype().is_half());
        // Whole words: a half's `at` even, and an odd count only where it ends the storage
        // (its last word's high half is padding).
        let torn = half && (at % 2 == 1 || (src.len() % 2 == 1 && end < self.len()));
        if end > self.len() || torn {
            return Err(Error::invalid(
                op,
                format!(
                    "{} elements of {:?} cannot be written from {at} into {}",
                    src.len(),
                    src.dtype(),
                    self.len()
                ),
            ));
        }
        let (at, len) = (words(at, self.dtype()), words(src.len(), self.dtype()));
        let spec = Strided {
            shape: vec![len],
            strides: vec![vec![1], vec![1]],
            offsets: vec![at, 0],
        };
        index::cat(self, &[(src, spec)])?;
        self.absorb_faults(src);
        Ok(())
    }

    fn unfold(&self, win: &Window2d) -> Result<Self> {
        floats("unfold2d", &[self])?;
        Ok(conv::unfold(self, win)?.inherit(&[self]))
    }

    fn fold(&self, win: &Window2d) -> Result<Self> {
        floats("fold2d", &[self])?;
        Ok(conv::fold(self, win)?.inherit(&[self]))
    }

    // Both are made of ops that carry their inputs' faults.
    fn conv2d(
        x: &Self,
        w: &Self,
        bias: Option<&Self>,
        spec: &ConvSpec,
    ) -> Result<(Self, Option<Self>)> {
        floats(
            "conv2d",
            &[x, w].into_iter().chain(bias).collect::<Vec<_>>(),
        )?;
        conv::conv2d(x, w, bias, spec)
    }

    fn conv2d_backward(
        x: &Self,
        w: &Self,
        g: &Self,
        cols: Option<&Self>,
        spec: &ConvSpec,
        input_grad: bool,
    ) -> Result<(Option<Self>, Self)> {
        floats("conv2d_backward", &[x, w, g])?;
        conv::conv2d_backward(x, w, g, cols, spec, input_grad)
    }

    fn pool(&self, win: &Window2d, kind: PoolKind, indices: bool) -> Result<(Self, Option<Self>)> {
        floats("pool2d", &[self])?;
        let (out, arg) = pooling::pool(self, win, kind, indices)?;
        Ok((out.inherit(&[self]), arg.map(|a| a.inherit(&[self]))))
    }

    fn pool_backward(
        g: &Self,
        argmax: Option<&Self>,
        win: &Window2d,
        kind: PoolKind,
    ) -> Result<Self> {
        floats("pool2d_backward", &[g])?;
        let inputs: Vec<&Self> = [g].into_iter().chain(argmax).collect();
        Ok(pooling::pool_backward(g, argmax, win, kind)?.inherit(&inputs))
    }

    fn normalize(&self, spec: &NormSpec) -> Result<(Self, Self)> {
        floats("normalize", &[self])?;
        let (y, stats) = norm::normalize(self, spec)?;
        Ok((y.inherit(&[self]), stats.inherit(&[self])))
    }

    fn normalize_backward(xhat: &Self, g: &Self, stats: &Self, spec: &NormSpec) -> Result<Self> {
        floats("normalize_backward", &[xhat, g, stats])?;
        Ok(norm::normalize_backward(xhat, g, stats, spec)?.inherit(&[xhat, g, stats]))
    }

    fn optim_step(
        param: &Self,
        grad: &Self,
        state: &Self,
        spec: &OptimSpec,
        skip: Option<&Self>,
    ) -> Result<(Self, Self)> {
        floats("optimizer step", &[param, grad, state])?;
        if let Some(s) = skip.filter(|s| s.dtype() != DType::Bool) {
            return Err(crate::dtype::flag_error("optimizer step", s.dtype()));
        }
        let (p, s) = optim::optim_step(param, grad, state, spec, skip)?;
        let inputs = [param, grad, state];
        Ok((p.inherit(&inputs), s.inherit(&inputs)))
    }

    fn scan(x: &Self, spec: &ScanSpec) -> Result<Self> {
        floats("scan", &[x])?;
        Ok(scan::scan(x, spec)?.inherit(&[x]))
    }

    fn read(&self, layout: &Layout) -> Result<HostData> {
        let (dense, offset) = self.readable(layout)?;
        let buf = dense.as_ref().unwrap_or(self).buffer();
        let (first, count) = word_span(self.dtype(), offset, layout.numel());
        let words = (self.ctx).read(buf, first, count, self.check(), "to_vec")?;
        Ok(GpuStorage::decode(
            self.dtype(),
            words,
            offset,
            layout.numel(),
        ))
    }

    fn dtype(&self) -> DType {
        GpuStorage::dtype(self)
    }
}
