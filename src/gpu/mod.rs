//! The wgpu backend: [`GpuStorage`] (a pooled buffer) and the launchers that turn each op's
//! spec into a typed parameter struct and one or two dispatches. Nothing here waits for the
//! GPU except `to_vec`.

pub(crate) mod context;
pub mod contract;
mod elementwise;
pub(crate) mod fault;
pub(crate) mod grid;
mod index;
pub(crate) mod kernels;
mod loss;
mod matmul;
pub(crate) mod nn;
pub(crate) mod params;
pub(crate) mod pool;
mod readback;
mod reduce;
mod window;

use std::sync::Arc;

use context::GpuContext;
use fault::Fault;

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
    Backend, CrossEntropySpec, Elementwise, GatherSpec, LineSpec, MatmulSpec, NormSpec, OptimSpec,
    PoolKind, Strided, Window2d,
};
use crate::error::Result;
use crate::op::{ReduceOp, UnaryOp};
use crate::shape::Layout;

/// A tensor buffer on the GPU; returns to the pool when dropped.
pub(crate) struct GpuStorage {
    ctx: Arc<GpuContext>,
    buffer: Option<wgpu::Buffer>,
    len: usize,
    /// The fault slots of the index kernels this data was computed from (`fault.rs`): a
    /// readback reports a fault recorded in any of them. Empty for almost every tensor.
    faults: Vec<Arc<Fault>>,
}

impl std::fmt::Debug for GpuStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuStorage({} f32 on {})", self.len, self.ctx.info.name)
    }
}

impl Drop for GpuStorage {
    fn drop(&mut self) {
        if let Some(buf) = self.buffer.take() {
            self.ctx.release_buffer(buf);
        }
    }
}

impl GpuStorage {
    /// An uninitialised buffer for `len` f32s (every kernel writes all of its output).
    pub fn alloc(ctx: &Arc<GpuContext>, op: &'static str, len: usize) -> Result<GpuStorage> {
        let (buf, _) = ctx.alloc_buffer(op, len)?;
        Ok(GpuStorage {
            ctx: ctx.clone(),
            buffer: Some(buf),
            len,
            faults: Vec::new(),
        })
    }

    pub fn from_slice(ctx: &Arc<GpuContext>, op: &'static str, data: &[f32]) -> Result<GpuStorage> {
        let (buf, reused) = ctx.alloc_buffer(op, data.len())?;
        ctx.write(&buf, data, reused)?;
        Ok(GpuStorage {
            ctx: ctx.clone(),
            buffer: Some(buf),
            len: data.len(),
            faults: Vec::new(),
        })
    }

    /// This output charged with every fault its `inputs` carry: a bad index upstream poisons
    /// what is computed from it.
    fn inherit(mut self, inputs: &[&GpuStorage]) -> GpuStorage {
        let lists = inputs.iter().map(|s| &s.faults[..]);
        self.faults = fault::union(lists.chain([&self.faults[..]]));
        self
    }

    /// A fresh fault slot for a kernel that checks indices, charged to this output; returns
    /// the slot's first word, for the kernel's parameters.
    fn new_fault(&mut self, op: &'static str) -> Result<u32> {
        let f = fault::new_fault(&self.ctx, op)?;
        let base = f.base();
        self.faults.push(f);
        Ok(base)
    }

    /// Marks the faults this storage's launch took as recorded (see `Fault::recorded`).
    fn recorded(&self) {
        self.faults.iter().for_each(|f| f.recorded());
    }

    /// What a readback of this storage checks.
    fn check(&self) -> fault::Check<'_> {
        fault::Check::Faults(&self.faults)
    }

    /// `len` copies of `value`, written by a kernel (nothing crosses from the host).
    pub fn fill(
        ctx: &Arc<GpuContext>,
        op: &'static str,
        len: usize,
        value: f32,
    ) -> Result<GpuStorage> {
        let out = GpuStorage::alloc(ctx, op, len)?;
        elementwise::fill(&out, len, value, op)?;
        Ok(out)
    }

    /// [`Backend::to_vec`] without blocking (see `GpuContext::read_async`).
    pub async fn to_vec_async(&self, layout: &Layout) -> Result<Vec<f32>> {
        if layout.is_contiguous() {
            let (offset, n) = (layout.offset(), layout.numel());
            return self
                .ctx
                .read_async(self.buffer(), offset, n, self.check(), "to_vec_async")
                .await;
        }
        let spec = Strided::new("to_vec_async", &[layout])?;
        let dense = GpuStorage::elementwise(&[self], &spec, Elementwise::Unary(UnaryOp::Identity))?;
        let n = layout.numel();
        self.ctx
            .read_async(dense.buffer(), 0, n, self.check(), "to_vec_async")
            .await
    }

    pub fn buffer(&self) -> &wgpu::Buffer {
        // Only `Drop` takes the buffer out.
        self.buffer
            .as_ref()
            .unwrap_or_else(|| unreachable!("GPU storage used after drop"))
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }
}

impl Backend for GpuStorage {
    type Context = Arc<GpuContext>;

    fn from_host(ctx: &Arc<GpuContext>, data: Vec<f32>, op: &'static str) -> Result<Self> {
        GpuStorage::from_slice(ctx, op, &data)
    }

    fn fill(ctx: &Arc<GpuContext>, len: usize, value: f32, op: &'static str) -> Result<Self> {
        GpuStorage::fill(ctx, op, len, value)
    }

    fn dropout_mask(
        ctx: &Arc<GpuContext>,
        len: usize,
        key: u64,
        threshold: u32,
        scale: f32,
    ) -> Result<Self> {
        nn::dropout_mask(ctx, len, key, threshold, scale)
    }
    fn elementwise(inputs: &[&Self], spec: &Strided, kind: Elementwise) -> Result<Self> {
        Ok(elementwise::elementwise(inputs, spec, kind)?.inherit(inputs))
    }

    fn matmul(a: &Self, b: &Self, bias: Option<&Self>, s: &MatmulSpec) -> Result<Self> {
        let out = matmul::matmul(a, b, bias, s)?;
        Ok(out.inherit(&[a, b].into_iter().chain(bias).collect::<Vec<_>>()))
    }

    fn reduce(&self, spec: &LineSpec, op: ReduceOp) -> Result<Self> {
        Ok(reduce::reduce(self, spec, op)?.inherit(&[self]))
    }

    fn softmax(&self, spec: &LineSpec, log: bool) -> Result<Self> {
        Ok(reduce::softmax(self, spec, log)?.inherit(&[self]))
    }

    fn softmax_backward(
        y: &Self,
        g: &Self,
        spec: &LineSpec,
        grad_offset: usize,
        log: bool,
    ) -> Result<Self> {
        let out = reduce::softmax_backward(y, g, spec, grad_offset, log)?;
        Ok(out.inherit(&[y, g]))
    }

    fn cross_entropy(x: &Self, target: &Self, spec: &CrossEntropySpec) -> Result<(Self, Self)> {
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
        let mut out = GpuStorage::alloc(input.context(), op, n)?.inherit(&[input, index]);
        let fault_base = out.new_fault(op)?;
        index::gather(&out, input, index, spec, fault_base, op)?;
        out.recorded();
        Ok(out)
    }

    fn one_hot(&self, spec: &Strided, classes: usize) -> Result<Self> {
        let n = spec.numel() * classes;
        let mut out = GpuStorage::alloc(self.context(), "one_hot", n)?.inherit(&[self]);
        let fault_base = out.new_fault("one_hot")?;
        index::one_hot(&out, self, spec, classes, fault_base)?;
        out.recorded();
        Ok(out)
    }

    fn cat(parts: &[(&Self, Strided)], numel: usize) -> Result<Self> {
        let ctx = parts[0].0.context();
        let sources: Vec<&GpuStorage> = parts.iter().map(|p| p.0).collect();
        let out = GpuStorage::alloc(ctx, "cat", numel)?.inherit(&sources);
        elementwise::cat(&out, parts)?;
        Ok(out)
    }

    fn unfold(&self, win: &Window2d) -> Result<Self> {
        Ok(nn::unfold(self, win)?.inherit(&[self]))
    }

    fn fold(&self, win: &Window2d) -> Result<Self> {
        Ok(nn::fold(self, win)?.inherit(&[self]))
    }

    fn pool(&self, win: &Window2d, kind: PoolKind) -> Result<(Self, Option<Self>)> {
        let (out, arg) = nn::pool(self, win, kind)?;
        Ok((out.inherit(&[self]), arg.map(|a| a.inherit(&[self]))))
    }

    fn pool_backward(
        g: &Self,
        argmax: Option<&Self>,
        win: &Window2d,
        kind: PoolKind,
    ) -> Result<Self> {
        let inputs: Vec<&Self> = [g].into_iter().chain(argmax).collect();
        Ok(nn::pool_backward(g, argmax, win, kind)?.inherit(&inputs))
    }

    fn normalize(&self, spec: &NormSpec) -> Result<(Self, Self)> {
        let (y, stats) = nn::normalize(self, spec)?;
        Ok((y.inherit(&[self]), stats.inherit(&[self])))
    }

    fn normalize_backward(xhat: &Self, g: &Self, stats: &Self, spec: &NormSpec) -> Result<Self> {
        Ok(nn::normalize_backward(xhat, g, stats, spec)?.inherit(&[xhat, g, stats]))
    }

    fn optim_step(
        param: &Self,
        grad: &Self,
        state: &Self,
        spec: &OptimSpec,
    ) -> Result<(Self, Self)> {
        let (p, s) = nn::optim_step(param, grad, state, spec)?;
        let inputs = [param, grad, state];
        Ok((p.inherit(&inputs), s.inherit(&inputs)))
    }

    fn to_vec(&self, layout: &Layout) -> Result<Vec<f32>> {
        if layout.is_contiguous() {
            let (offset, n) = (layout.offset(), layout.numel());
            return self
                .ctx
                .read(self.buffer(), offset, n, self.check(), "to_vec");
        }
        let spec = Strided::new("to_vec", &[layout])?;
        let dense = GpuStorage::elementwise(&[self], &spec, Elementwise::Unary(UnaryOp::Identity))?;
        self.ctx
            .read(dense.buffer(), 0, layout.numel(), self.check(), "to_vec")
    }
}
