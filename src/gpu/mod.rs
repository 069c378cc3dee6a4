//! The wgpu backend: [`GpuStorage`] (a pooled buffer) and the launchers that turn each op's
//! spec into a typed parameter struct and one or two dispatches. Nothing here waits for the
//! GPU except `to_vec`.

pub(crate) mod context;
pub(crate) mod fault;
pub(crate) mod grid;
pub(crate) mod kernels;
pub(crate) mod nn;
pub(crate) mod params;
pub(crate) mod pool;

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;

use context::GpuContext;
use fault::Fault;
use grid::groups_for;
use kernels::Kernel;
use params::{CrossEntropyParams, ElementwiseParams, IndexParams, LineParams, MatmulParams};

use crate::error::{Error, Result};
use crate::op::{ReduceOp, UnaryOp};
use crate::shape::Layout;
use crate::storage::{
    Backend, CrossEntropySpec, Elementwise, GatherSpec, LineSpec, MatOperand, MatmulSpec, NormSpec,
    OptimSpec, PoolKind, Strided, Window2d,
};

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
    fn new_fault(&mut self) -> Result<u32> {
        let f = fault::new_fault(&self.ctx)?;
        let base = f.slot * (fault::SLOT_BYTES / 4) as u32;
        self.faults.push(f);
        Ok(base)
    }

    /// The slots a readback of this storage checks.
    fn fault_slots(&self) -> Vec<u32> {
        self.faults.iter().map(|f| f.slot).collect()
    }

    /// `len` copies of `value`, written by a kernel (nothing crosses from the host).
    pub fn fill(
        ctx: &Arc<GpuContext>,
        op: &'static str,
        len: usize,
        value: f32,
    ) -> Result<GpuStorage> {
        let out = GpuStorage::alloc(ctx, op, len)?;
        let spec = Strided::new(op, &[&Layout::contiguous(&[len])])?;
        let params = ElementwiseParams::new(op, &spec, value, 0.0)?;
        ctx.dispatch(
            Kernel::Fill,
            0,
            &params,
            &[(1, out.buffer())],
            groups_for(len),
            op,
        )?;
        Ok(out)
    }

    /// [`Backend::to_vec`] without blocking (see `GpuContext::read_async`).
    pub async fn to_vec_async(&self, layout: &Layout) -> Result<Vec<f32>> {
        if layout.is_contiguous() {
            let (offset, n) = (layout.offset(), layout.numel());
            let slots = self.fault_slots();
            return self
                .ctx
                .read_async(self.buffer(), offset, n, &slots, "to_vec_async")
                .await;
        }
        let spec = Strided::new("to_vec_async", &[layout])?;
        let dense = GpuStorage::elementwise(&[self], &spec, Elementwise::Unary(UnaryOp::Identity))?;
        let (n, slots) = (layout.numel(), self.fault_slots());
        self.ctx
            .read_async(dense.buffer(), 0, n, &slots, "to_vec_async")
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
    fn elementwise(inputs: &[&Self], spec: &Strided, kind: Elementwise) -> Result<Self> {
        let ctx = inputs[0].context();
        let n = spec.numel();
        let out = GpuStorage::alloc(ctx, "elementwise", n)?;
        let (kernel, code, (alpha, beta)) = match kind {
            Elementwise::Unary(op) => (Kernel::Unary, op.code(), op.params()),
            Elementwise::Binary(op) => (Kernel::Binary, op.code(), (0.0, 0.0)),
            Elementwise::Where => (Kernel::Where, 0, (0.0, 0.0)),
        };
        let params = ElementwiseParams::new("elementwise", spec, alpha, beta)?;
        let mut bindings = vec![(1, out.buffer())];
        bindings.extend(
            inputs
                .iter()
                .enumerate()
                .map(|(j, s)| (2 + j as u32, s.buffer())),
        );
        ctx.dispatch(
            kernel,
            code,
            &params,
            &bindings,
            groups_for(n),
            "elementwise",
        )?;
        Ok(out.inherit(inputs))
    }

    fn matmul(a: &Self, b: &Self, bias: Option<&Self>, s: &MatmulSpec) -> Result<Self> {
        let out = matmul(a, b, bias, s)?;
        Ok(out.inherit(&[a, b].into_iter().chain(bias).collect::<Vec<_>>()))
    }

    fn reduce(&self, spec: &LineSpec, op: ReduceOp) -> Result<Self> {
        let ctx = self.context();
        let lines = spec.outer * spec.inner;
        let out = GpuStorage::alloc(ctx, op.name(), lines)?.inherit(&[self]);
        let params = LineParams::new(op.name(), spec)?;
        let bindings = [(1, out.buffer()), (2, self.buffer())];
        if spec.inner == 1 {
            ctx.dispatch(
                Kernel::ReduceLines,
                op.code(),
                &params,
                &bindings,
                lines,
                op.name(),
            )?;
        } else {
            ctx.dispatch(
                Kernel::ReduceColumns,
                op.code(),
                &params,
                &bindings,
                groups_for(lines),
                op.name(),
            )?;
        }
        Ok(out)
    }

    fn softmax(&self, spec: &LineSpec, log: bool) -> Result<Self> {
        let ctx = self.context();
        let op = if log { "log_softmax" } else { "softmax" };
        let out = GpuStorage::alloc(ctx, op, spec.outer * spec.len * spec.inner)?.inherit(&[self]);
        let params = LineParams::new(op, spec)?;
        let lines = spec.outer * spec.inner;
        let bindings = [(1, out.buffer()), (2, self.buffer())];
        if spec.inner == 1 {
            ctx.dispatch(
                Kernel::SoftmaxLines,
                u32::from(log),
                &params,
                &bindings,
                lines,
                op,
            )?;
        } else {
            ctx.dispatch(
                Kernel::SoftmaxColumns,
                u32::from(log),
                &params,
                &bindings,
                groups_for(lines),
                op,
            )?;
        }
        Ok(out)
    }

    fn softmax_backward(
        y: &Self,
        g: &Self,
        spec: &LineSpec,
        grad_offset: usize,
        log: bool,
    ) -> Result<Self> {
        let ctx = y.context();
        let op = "softmax_backward";
        let out = GpuStorage::alloc(ctx, op, spec.outer * spec.len * spec.inner)?.inherit(&[y, g]);
        let mut params = LineParams::new(op, spec)?;
        params.grad_offset = params::u32_of(op, grad_offset)?;
        let lines = spec.outer * spec.inner;
        let bindings = [(1, out.buffer()), (2, y.buffer()), (3, g.buffer())];
        // Same split as the forward pass: a workgroup per row, or an invocation per column.
        let (kernel, groups) = if spec.inner == 1 {
            (Kernel::SoftmaxBackwardLines, lines)
        } else {
            (Kernel::SoftmaxBackwardColumns, groups_for(lines))
        };
        ctx.dispatch(kernel, u32::from(log), &params, &bindings, groups, op)?;
        Ok(out)
    }

    fn cross_entropy(x: &Self, target: &Self, spec: &CrossEntropySpec) -> Result<(Self, Self)> {
        let ctx = x.context();
        let op = "cross_entropy";
        // Both outputs carry the inputs' faults and the slot this launch may fault into.
        let mut loss = GpuStorage::alloc(ctx, op, spec.rows)?.inherit(&[x, target]);
        let fault_base = loss.new_fault()?;
        let lse = GpuStorage::alloc(ctx, op, spec.rows)?.inherit(&[&loss]);
        let bindings = [
            (1, loss.buffer()),
            (2, x.buffer()),
            (3, target.buffer()),
            (4, ctx.fault_buffer()),
            (5, lse.buffer()),
        ];
        let params = CrossEntropyParams::new(spec, fault_base)?;
        // One workgroup per row, as softmax_lines.
        ctx.dispatch(
            Kernel::CrossEntropyRows,
            0,
            &params,
            &bindings,
            spec.rows,
            op,
        )?;
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
        let bindings = [
            (1, out.buffer()),
            (2, x.buffer()),
            (3, target.buffer()),
            (4, ctx.fault_buffer()),
            (6, lse.buffer()),
            (7, g.buffer()),
        ];
        let params = CrossEntropyParams::new(spec, 0)?;
        ctx.dispatch(
            Kernel::CrossEntropyBackward,
            0,
            &params,
            &bindings,
            groups_for(n),
            op,
        )?;
        Ok(out)
    }

    fn gather(input: &Self, index: &Self, spec: &GatherSpec, op: &'static str) -> Result<Self> {
        let ctx = input.context();
        let n = spec.strided.numel();
        let mut out = GpuStorage::alloc(ctx, op, n)?.inherit(&[input, index]);
        let fault_base = out.new_fault()?;
        let params = IndexParams::new(
            op,
            &spec.strided,
            n,
            spec.axis_size,
            spec.axis_stride,
            spec.axis,
            fault_base,
        )?;
        let bindings = [
            (1, out.buffer()),
            (2, input.buffer()),
            (3, index.buffer()),
            (4, ctx.fault_buffer()),
        ];
        ctx.dispatch(Kernel::Gather, 0, &params, &bindings, groups_for(n), op)?;
        Ok(out)
    }

    fn one_hot(&self, spec: &Strided, classes: usize) -> Result<Self> {
        let ctx = self.context();
        let n = spec.numel() * classes;
        let mut out = GpuStorage::alloc(ctx, "one_hot", n)?.inherit(&[self]);
        let fault_base = out.new_fault()?;
        let params = IndexParams::new("one_hot", spec, n, classes, 0, 0, fault_base)?;
        let bindings = [
            (1, out.buffer()),
            (3, self.buffer()),
            (4, ctx.fault_buffer()),
        ];
        ctx.dispatch(
            Kernel::OneHot,
            0,
            &params,
            &bindings,
            groups_for(n),
            "one_hot",
        )?;
        Ok(out)
    }

    fn cat(parts: &[(&Self, Strided)], numel: usize) -> Result<Self> {
        let ctx = parts[0].0.context();
        let sources: Vec<&GpuStorage> = parts.iter().map(|p| p.0).collect();
        let out = GpuStorage::alloc(ctx, "cat", numel)?.inherit(&sources);
        for (src, spec) in parts {
            let params = ElementwiseParams::new("cat", spec, 0.0, 0.0)?;
            let bindings = [(1, out.buffer()), (2, src.buffer())];
            ctx.dispatch(
                Kernel::CopyInto,
                0,
                &params,
                &bindings,
                groups_for(spec.numel()),
                "cat",
            )?;
        }
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
        let slots = self.fault_slots();
        if layout.is_contiguous() {
            let (offset, n) = (layout.offset(), layout.numel());
            return self.ctx.read(self.buffer(), offset, n, &slots, "to_vec");
        }
        let spec = Strided::new("to_vec", &[layout])?;
        let dense = GpuStorage::elementwise(&[self], &spec, Elementwise::Unary(UnaryOp::Identity))?;
        self.ctx
            .read(dense.buffer(), 0, layout.numel(), &slots, "to_vec")
    }
}

/// The matmul kernel choice and launch (outputs carry no faults yet: the caller adds them).
fn matmul(
    a: &GpuStorage,
    b: &GpuStorage,
    bias: Option<&GpuStorage>,
    s: &MatmulSpec,
) -> Result<GpuStorage> {
    let ctx = a.context();
    let epilogue = Epilogue::new(a, bias, s);
    if s.k == 0 && epilogue.constant == 0 {
        // Every output is an empty sum. (With an epilogue the kernels run: their k loop
        // is empty and each output is act(0 + bias).)
        return GpuStorage::from_slice(ctx, "matmul", &vec![0.0; s.batch * s.m * s.n]);
    }
    if uses_tiled(ctx) {
        return launch_matmul(Kernel::MatmulTiled, a, b, &epilogue, s);
    }
    // The subgroup kernels read B's rows as vec4s or, for a transposed B (x · Wᵀ in a
    // Linear layer), A's rows and B's columns as vec4s along k. Any other B is copied dense
    // first, which costs far less than the portable kernel's scalar reads (see
    // `matmul_subgroup.wgsl`).
    if ctx.subgroups_of_8 && s.n % 4 == 0 && SUBGROUP_MATMUL.load(Ordering::Relaxed) {
        if vec4_rows(&s.b) {
            return launch_matmul(Kernel::MatmulSubgroup, a, b, &epilogue, s);
        }
        if vec4_columns(s) {
            return launch_matmul(Kernel::MatmulSubgroupNt, a, b, &epilogue, s);
        }
        let batch = if s.b.batch == 0 { 1 } else { s.batch };
        let spec = Strided {
            shape: vec![batch, s.k, s.n],
            strides: vec![vec![s.b.batch, s.b.row, s.b.col]],
            offsets: vec![s.b.offset],
        };
        let dense = GpuStorage::elementwise(&[b], &spec, Elementwise::Unary(UnaryOp::Identity))?;
        let b_dense = MatOperand {
            offset: 0,
            batch: if s.b.batch == 0 { 0 } else { s.k * s.n },
            row: s.n,
            col: 1,
        };
        let s = MatmulSpec { b: b_dense, ..*s };
        return launch_matmul(Kernel::MatmulSubgroup, a, &dense, &epilogue, &s);
    }
    // B read as vec4 rows when its layout allows it (the common, non-transposed case).
    let kernel = if s.n % 4 == 0 && vec4_rows(&s.b) {
        Kernel::MatmulTile8Vec4
    } else {
        Kernel::MatmulTile4
    };
    launch_matmul(kernel, a, b, &epilogue, s)
}

/// Whether the subgroup matmul may be picked where the adapter allows it (tests turn it off to
/// exercise the portable kernels on the same adapter).
static SUBGROUP_MATMUL: AtomicBool = AtomicBool::new(true);

/// Lets the subgroup matmul be picked (the default) or not. For tests and benches that compare
/// it with the portable kernels; results agree either way.
#[doc(hidden)]
pub fn set_subgroup_matmul(on: bool) {
    SUBGROUP_MATMUL.store(on, Ordering::Relaxed);
}

/// Whether matmuls on `dev` run `matmul_subgroup.wgsl` (where their layout allows it).
#[doc(hidden)]
pub fn uses_subgroup_matmul(dev: &crate::Device) -> bool {
    dev.is_gpu()
        && SUBGROUP_MATMUL.load(Ordering::Relaxed)
        && context::shared().is_ok_and(|c| c.subgroups_of_8 && !uses_tiled(&c))
}

/// The workgroup-memory kernel: 0 picks it by adapter type (hardware discrete GPUs), 1
/// forces it on, 2 off.
static TILED_MATMUL: AtomicU8 = AtomicU8::new(0);

/// Forces `matmul_tiled` on or off (`None`: by adapter type, the default), so tests can run
/// it on any adapter. Results agree either way.
#[doc(hidden)]
pub fn set_tiled_matmul(on: Option<bool>) {
    let v = match on {
        None => 0,
        Some(true) => 1,
        Some(false) => 2,
    };
    TILED_MATMUL.store(v, Ordering::Relaxed);
}

/// Whether matmuls run `matmul_tiled`: on discrete GPUs, where staging tiles in workgroup
/// memory pays. Not on CPU-type adapters (llvmpipe), where workgroup memory is ordinary memory
/// behind barriers and the register-tiled kernels win (see `shared/PERF.md`).
fn uses_tiled(ctx: &GpuContext) -> bool {
    match TILED_MATMUL.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => ctx.info.kind == crate::device::DeviceKind::DiscreteGpu,
    }
}

/// B's rows can be read as vec4: column stride 1, every row, batch and the offset 4-aligned.
fn vec4_rows(b: &MatOperand) -> bool {
    b.col == 1 && b.row % 4 == 0 && b.offset % 4 == 0 && b.batch % 4 == 0
}

/// Whether `matmul_subgroup_nt` can read A's rows and B's columns as vec4s along k.
fn vec4_columns(s: &MatmulSpec) -> bool {
    let (a, b) = (&s.a, &s.b);
    let b_transposed = MatOperand {
        row: b.col,
        col: b.row,
        ..*b
    };
    s.k % 4 == 0 && vec4_rows(a) && vec4_rows(&b_transposed)
}

/// The matmul kernels' fused epilogue (`matmul_common.wgsl`): the `EPILOGUE` pipeline
/// constant and the buffer for binding 6.
struct Epilogue<'a> {
    constant: u32,
    /// The bias, or A's buffer as a stand-in the kernel never reads.
    bias: &'a wgpu::Buffer,
}

impl<'a> Epilogue<'a> {
    fn new(a: &'a GpuStorage, bias: Option<&'a GpuStorage>, s: &MatmulSpec) -> Epilogue<'a> {
        const HAS_BIAS: u32 = 256;
        let act = s.act.unary().code();
        match bias {
            Some(bias) if s.bias.is_some() => Epilogue {
                constant: act | HAS_BIAS,
                bias: bias.buffer(),
            },
            _ => Epilogue {
                constant: act,
                bias: a.buffer(),
            },
        }
    }
}

/// Launches one matmul kernel over the output's tiles. Each kernel's launch geometry is here:
/// (tile rows, tile columns, whether out and B bind as vec4 arrays at 4 and 5 rather than as
/// f32 arrays at 1 and 3, whether a whole workgroup owns a tile rather than one invocation).
///   - `MatmulTile4` / `MatmulTile8Vec4`: 4x4 / 8x8 per invocation, any strides / vec4 B.
///   - `MatmulSubgroup`: one 8-lane workgroup per 16 x 128 tile; needs `vec4_rows(b)`, n % 4 == 0.
///   - `MatmulSubgroupNt`: the same for a transposed B, with A at binding 7 (as vec4s); needs
///     `vec4_columns`, n % 4 == 0.
///   - `MatmulTiled`: one 64-invocation workgroup per 64 x 64 tile, any strides.
fn launch_matmul(
    kernel: Kernel,
    a: &GpuStorage,
    b: &GpuStorage,
    epilogue: &Epilogue,
    s: &MatmulSpec,
) -> Result<GpuStorage> {
    let (rows, cols, vec4, per_workgroup) = match kernel {
        Kernel::MatmulTile4 => (4, 4, false, false),
        Kernel::MatmulTile8Vec4 => (8, 8, true, false),
        Kernel::MatmulSubgroup | Kernel::MatmulSubgroupNt => (16, 128, true, true),
        Kernel::MatmulTiled => (64, 64, false, true),
        _ => {
            return Err(Error::invalid(
                "matmul",
                format!("{kernel:?} is not a matmul kernel"),
            ))
        }
    };
    let ctx = a.context();
    let out = GpuStorage::alloc(ctx, "matmul", s.batch * s.m * s.n)?;
    let params = MatmulParams::new(s, rows, cols)?;
    let tiles = s.batch * s.m.div_ceil(rows) * s.n.div_ceil(cols);
    let groups = if per_workgroup {
        tiles
    } else {
        groups_for(tiles)
    };
    let (out_at, b_at) = if vec4 { (4, 5) } else { (1, 3) };
    let a_at = if kernel == Kernel::MatmulSubgroupNt {
        7
    } else {
        2
    };
    let bindings = [
        (out_at, out.buffer()),
        (a_at, a.buffer()),
        (b_at, b.buffer()),
        (6, epilogue.bias),
    ];
    ctx.dispatch(
        kernel,
        epilogue.constant,
        &params,
        &bindings,
        groups,
        "matmul",
    )?;
    Ok(out)
}
