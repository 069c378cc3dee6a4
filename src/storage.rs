//! Where tensor data lives: one [`Storage`] enum over the two backends, and the small
//! [`Backend`] trait both implement. The specs below are computed once, here or in `tensor`,
//! so the CPU and the GPU are handed exactly the same description of every op.

use crate::cpu::CpuStorage;
use crate::error::{Error, Result};
use crate::gpu::GpuStorage;
use crate::op::{BinaryOp, ReduceOp, UnaryOp};
use crate::shape::{collapse, Collapsed, Layout};

/// Which elementwise kernel runs over a [`Strided`] spec.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Elementwise {
    /// `out = op(a)`: operands `[a]`.
    Unary(UnaryOp),
    /// `out = a op b`: operands `[a, b]`.
    Binary(BinaryOp),
    /// `out = cond != 0 ? a : b`: operands `[cond, a, b]`.
    Where,
}

/// Operands walked together over one (collapsed) shape: element `i` of the output (row-major
/// over `shape`) reads operand `j` at `offsets[j] + sum_d idx_d * strides[j][d]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Strided {
    pub shape: Vec<usize>,
    pub strides: Vec<Vec<usize>>,
    pub offsets: Vec<usize>,
}

impl Strided {
    /// Collapses layouts that all have the same shape.
    pub fn new(op: &'static str, layouts: &[&Layout]) -> Result<Strided> {
        let shape = layouts[0].shape();
        let strides: Vec<&[usize]> = layouts.iter().map(|l| l.strides()).collect();
        let Collapsed { shape, strides } = collapse(op, shape, &strides)?;
        Ok(Strided {
            shape,
            strides,
            offsets: layouts.iter().map(|l| l.offset()).collect(),
        })
    }
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// One operand of a matmul: element `[b, r, c]` at `offset + b*batch + r*row + c*col`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MatOperand {
    pub offset: usize,
    pub batch: usize,
    pub row: usize,
    pub col: usize,
}

/// `out[b] = a[b] (m×k) · b[b] (k×n)` for `b in 0..batch`; the output is contiguous.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MatmulSpec {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: MatOperand,
    pub b: MatOperand,
}

/// A contiguous input seen as `[outer, len, inner]`, reduced (or normalised) along `len`.
/// `numel` bounds the flat index, which lets a full reduction use a ragged last row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LineSpec {
    pub offset: usize,
    pub outer: usize,
    pub len: usize,
    pub inner: usize,
    pub numel: usize,
}

/// `out[i] = input[base(i) + index(i) * axis_stride]`, where `strided` walks `[input, index]`
/// over the output shape (the input's `axis` stride set to 0). Used by gather and index_select.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GatherSpec {
    pub strided: Strided,
    pub axis: usize,
    pub axis_size: usize,
    pub axis_stride: usize,
}

/// What both backends implement. Every method returns a fresh, contiguous storage.
pub(crate) trait Backend: Sized {
    fn elementwise(inputs: &[&Self], spec: &Strided, kind: Elementwise) -> Result<Self>;
    fn matmul(a: &Self, b: &Self, spec: &MatmulSpec) -> Result<Self>;
    /// Output `[outer, inner]`.
    fn reduce(&self, spec: &LineSpec, op: ReduceOp) -> Result<Self>;
    /// Output `[outer, len, inner]`.
    fn softmax(&self, spec: &LineSpec, log: bool) -> Result<Self>;
    /// Softmax's gradient from its output `y` (read through `spec`) and the upstream gradient
    /// `g` (the same `[outer, len, inner]`, starting at `grad_offset`). Output `[outer, len, inner]`.
    fn softmax_backward(
        y: &Self,
        g: &Self,
        spec: &LineSpec,
        grad_offset: usize,
        log: bool,
    ) -> Result<Self>;
    fn gather(input: &Self, index: &Self, spec: &GatherSpec, op: &'static str) -> Result<Self>;
    /// `out[j, c] = (index[j] == c)` for `c in 0..classes`; `spec` walks the index.
    fn one_hot(&self, spec: &Strided, classes: usize) -> Result<Self>;
    /// Copies each part into a fresh buffer of `numel`; a part's spec walks `[dst, src]`.
    fn cat(parts: &[(&Self, Strided)], numel: usize) -> Result<Self>;
    /// The elements of `layout`, in row-major order.
    fn to_vec(&self, layout: &Layout) -> Result<Vec<f32>>;
}

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

impl Storage {
    pub fn elementwise(
        inputs: &[&Storage],
        spec: &Strided,
        kind: Elementwise,
        op: &'static str,
    ) -> Result<Storage> {
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
    }

    pub fn matmul(&self, rhs: &Storage, spec: &MatmulSpec) -> Result<Storage> {
        on_backend!("matmul", self, rhs, |a, b| Backend::matmul(a, b, spec))
    }

    pub fn reduce(&self, spec: &LineSpec, op: ReduceOp) -> Result<Storage> {
        on_backend!(op.name(), self, |s| s.reduce(spec, op))
    }

    pub fn softmax(&self, spec: &LineSpec, log: bool) -> Result<Storage> {
        on_backend!("softmax", self, |s| s.softmax(spec, log))
    }

    pub fn softmax_backward(
        &self,
        g: &Storage,
        spec: &LineSpec,
        grad_offset: usize,
        log: bool,
    ) -> Result<Storage> {
        on_backend!("softmax_backward", self, g, |y, g| {
            Backend::softmax_backward(y, g, spec, grad_offset, log)
        })
    }

    pub fn gather(&self, index: &Storage, spec: &GatherSpec, op: &'static str) -> Result<Storage> {
        on_backend!(op, self, index, |a, i| Backend::gather(a, i, spec, op))
    }

    pub fn one_hot(&self, spec: &Strided, classes: usize) -> Result<Storage> {
        on_backend!("one_hot", self, |s| s.one_hot(spec, classes))
    }

    pub fn cat(parts: &[(&Storage, Strided)], numel: usize) -> Result<Storage> {
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
    }

    pub fn to_vec(&self, layout: &Layout) -> Result<Vec<f32>> {
        match self {
            Storage::Cpu(s) => s.to_vec(layout),
            Storage::Gpu(s) => s.to_vec(layout),
        }
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
