//! Uniform parameter structs, `#[repr(C)]` and mirrored field by field by the `Params` struct
//! of the WGSL file named on each. Arrays of 8 `u32` are `array<vec4<u32>, 2>` in WGSL.

use bytemuck::{Pod, Zeroable};

use crate::backend::{
    CrossEntropySpec, LineSpec, MatmulSpec, NormSpec, OptimSpec, Strided, Window2d,
};
use crate::error::{Error, Result};
use crate::shape::MAX_KERNEL_DIMS;

/// A Rust struct that mirrors a WGSL `Params` struct field by field.
pub trait WgslStruct {
    /// (name, byte offset, byte size) of each field, in order: what `tests/contract.rs`
    /// compares with the WGSL struct naga reads.
    fn fields() -> Vec<(&'static str, usize, usize)>;
}

/// Declares a `#[repr(C)]`, `Pod` parameter struct and its [`WgslStruct`] field table, so the
/// contract test can hold it against the shader's struct.
macro_rules! wgsl_struct {
    ($(#[$meta:meta])* pub struct $name:ident {
        $($(#[$fmeta:meta])* pub $field:ident: $ty:ty,)*
    }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Pod, Zeroable)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl WgslStruct for $name {
            fn fields() -> Vec<(&'static str, usize, usize)> {
                vec![$((
                    stringify!($field),
                    std::mem::offset_of!($name, $field),
                    std::mem::size_of::<$ty>(),
                )),*]
            }
        }
    };
}

/// Converts a size or offset to the `u32` the kernels index with.
pub fn u32_of(op: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::TooLarge {
        op,
        bytes: (v as u64).saturating_mul(4),
        limit: u64::from(u32::MAX) * 4,
        what: "kernels index with 32-bit integers",
    })
}

fn axes(op: &'static str, v: &[usize]) -> Result<[u32; MAX_KERNEL_DIMS]> {
    let mut out = [0u32; MAX_KERNEL_DIMS];
    for (o, &x) in out.iter_mut().zip(v) {
        *o = u32_of(op, x)?;
    }
    Ok(out)
}

wgsl_struct! {
    /// `shaders/elementwise.wgsl` `Params`.
    pub struct ElementwiseParams {
        /// Elements in this dispatch (a piece's, over a tensor larger than one binding).
        pub numel: u32,
        pub rank: u32,
        pub alpha: f32,
        pub beta: f32,
        /// `[0..3]`: each operand's offset; `[3]`: the piece's first element (`gpu/window.rs`).
        pub offsets: [u32; 4],
        pub shape: [u32; 8],
        pub strides: [[u32; 8]; 3],
    }
}

impl ElementwiseParams {
    pub fn new(op: &'static str, spec: &Strided, alpha: f32, beta: f32) -> Result<Self> {
        let mut p = ElementwiseParams {
            numel: u32_of(op, spec.numel())?,
            rank: spec.shape.len() as u32,
            alpha,
            beta,
            offsets: [0; 4],
            shape: axes(op, &spec.shape)?,
            strides: [[0; 8]; 3],
        };
        for (j, (s, &o)) in spec.strides.iter().zip(&spec.offsets).enumerate() {
            p.strides[j] = axes(op, s)?;
            p.offsets[j] = u32_of(op, o)?;
        }
        Ok(p)
    }
}

wgsl_struct! {
    /// `shaders/index.wgsl` `Params`.
    pub struct IndexParams {
        pub numel: u32,
        pub rank: u32,
        pub axis_size: u32,
        pub axis_stride: u32,
        pub offsets: [u32; 4],
        pub shape: [u32; 8],
        pub strides: [[u32; 8]; 2],
        pub op_code: u32,
        pub axis: u32,
        /// The first word of this launch's fault slot (`gpu/fault.rs`).
        pub fault_base: u32,
        pub _pad: u32,
    }
}

impl IndexParams {
    /// `spec` walks `[input, index]` (gather) or `[_, index]` (one_hot, whose `numel` is
    /// `spec.numel() * classes`).
    pub fn new(
        op: &'static str,
        spec: &Strided,
        numel: usize,
        axis_size: usize,
        axis_stride: usize,
        axis: usize,
        fault_base: u32,
    ) -> Result<Self> {
        let mut p = IndexParams {
            numel: u32_of(op, numel)?,
            rank: spec.shape.len() as u32,
            axis_size: u32_of(op, axis_size)?,
            axis_stride: u32_of(op, axis_stride)?,
            offsets: [0; 4],
            shape: axes(op, &spec.shape)?,
            strides: [[0; 8]; 2],
            op_code: fault_code(op),
            axis: axis as u32,
            fault_base,
            _pad: 0,
        };
        // gather walks [input, index] (slots 0, 1); one_hot walks [index] alone (slot 1).
        let slots: &[usize] = if spec.strides.len() == 2 {
            &[0, 1]
        } else {
            &[1]
        };
        for (k, &slot) in slots.iter().enumerate() {
            p.strides[slot] = axes(op, &spec.strides[k])?;
            p.offsets[slot] = u32_of(op, spec.offsets[k])?;
        }
        Ok(p)
    }
}

/// Op names carried through the GPU fault slots (see `gpu/fault.rs`).
pub const FAULT_OPS: [&str; 6] = [
    "unknown",
    "gather",
    "index_select",
    "one_hot",
    "cross_entropy",
    "nll",
];

fn fault_code(op: &str) -> u32 {
    FAULT_OPS.iter().position(|&o| o == op).unwrap_or(0) as u32
}

wgsl_struct! {
    /// `shaders/loss.wgsl` `Params`.
    pub struct CrossEntropyParams {
        pub rows: u32,
        pub classes: u32,
        pub g_offset: u32,
        pub g_stride: u32,
        pub smoothing: f32,
        pub op_code: u32,
        /// The first word of the forward launch's fault slot (`gpu/fault.rs`).
        pub fault_base: u32,
        pub _pad: u32,
    }
}

impl CrossEntropyParams {
    pub fn new(s: &CrossEntropySpec, fault_base: u32) -> Result<Self> {
        let op = "cross_entropy";
        Ok(CrossEntropyParams {
            rows: u32_of(op, s.rows)?,
            classes: u32_of(op, s.classes)?,
            g_offset: u32_of(op, s.g_offset)?,
            g_stride: u32_of(op, s.g_stride)?,
            smoothing: s.smoothing,
            op_code: fault_code(op),
            fault_base,
            _pad: 0,
        })
    }
}

wgsl_struct! {
    /// `shaders/reduce.wgsl` and `shaders/softmax.wgsl` `Params`.
    pub struct LineParams {
        pub offset: u32,
        pub outer: u32,
        pub len: u32,
        pub inner: u32,
        pub numel: u32,
        pub lines: u32,
        /// Softmax backward: where the upstream gradient starts in its buffer.
        pub grad_offset: u32,
        /// Where the output starts in its binding (a window's piece; 0 otherwise).
        pub out_offset: u32,
    }
}

impl LineParams {
    pub fn new(op: &'static str, s: &LineSpec) -> Result<Self> {
        Ok(LineParams {
            offset: u32_of(op, s.offset)?,
            outer: u32_of(op, s.outer)?,
            len: u32_of(op, s.len)?,
            inner: u32_of(op, s.inner)?,
            numel: u32_of(op, s.numel)?,
            lines: u32_of(op, s.outer * s.inner)?,
            grad_offset: 0,
            out_offset: 0,
        })
    }
}

wgsl_struct! {
    /// `shaders/matmul_common.wgsl` `Params`.
    pub struct MatmulParams {
        pub batch: u32,
        pub m: u32,
        pub n: u32,
        pub k: u32,
        // Each operand's offset, batch stride, row stride and column stride.
        pub a_offset: u32,
        pub a_batch: u32,
        pub a_row: u32,
        pub a_col: u32,
        pub b_offset: u32,
        pub b_batch: u32,
        pub b_row: u32,
        pub b_col: u32,
        /// Zeros when there is no bias.
        pub bias_offset: u32,
        pub bias_batch: u32,
        pub bias_row: u32,
        pub bias_col: u32,
        pub tiles_m: u32,
        pub tiles_n: u32,
        /// Where the output starts in its binding (a window's piece; 0 otherwise).
        pub out_offset: u32,
        pub _pad: u32,
    }
}

impl MatmulParams {
    /// `rows` x `cols` outputs per tile.
    pub fn new(s: &MatmulSpec, rows: usize, cols: usize) -> Result<Self> {
        let op = "matmul";
        let o = |x: &crate::backend::MatOperand| -> Result<[u32; 4]> {
            Ok([
                u32_of(op, x.offset)?,
                u32_of(op, x.batch)?,
                u32_of(op, x.row)?,
                u32_of(op, x.col)?,
            ])
        };
        let [a_offset, a_batch, a_row, a_col] = o(&s.a)?;
        let [b_offset, b_batch, b_row, b_col] = o(&s.b)?;
        let bias = s.bias.as_ref().map(o).transpose()?;
        let [bias_offset, bias_batch, bias_row, bias_col] = bias.unwrap_or([0; 4]);
        Ok(MatmulParams {
            batch: u32_of(op, s.batch)?,
            m: u32_of(op, s.m)?,
            n: u32_of(op, s.n)?,
            k: u32_of(op, s.k)?,
            a_offset,
            a_batch,
            a_row,
            a_col,
            b_offset,
            b_batch,
            b_row,
            b_col,
            bias_offset,
            bias_batch,
            bias_row,
            bias_col,
            tiles_m: u32_of(op, s.m.div_ceil(rows))?,
            tiles_n: u32_of(op, s.n.div_ceil(cols))?,
            out_offset: 0,
            _pad: 0,
        })
    }
}

wgsl_struct! {
    /// `shaders/conv.wgsl` and `shaders/pool.wgsl` `Params`; pairs are `[h, w]`.
    pub struct WindowParams {
        pub n: u32,
        pub c: u32,
        /// Invocations: column entries, image pixels or pooled outputs.
        pub numel: u32,
        /// Pooling: `PoolKind::code`.
        pub kind: u32,
        pub size: [u32; 2],
        pub kernel: [u32; 2],
        pub stride: [u32; 2],
        pub pad: [u32; 2],
        pub dilation: [u32; 2],
        pub out: [u32; 2],
    }
}

impl WindowParams {
    pub fn new(op: &'static str, w: &Window2d, numel: usize, kind: u32) -> Result<Self> {
        let pair =
            |v: [usize; 2]| -> Result<[u32; 2]> { Ok([u32_of(op, v[0])?, u32_of(op, v[1])?]) };
        // Every index the kernels form stays below the larger buffer.
        u32_of(op, w.cols_numel().max(w.image_numel()))?;
        Ok(WindowParams {
            n: u32_of(op, w.n)?,
            c: u32_of(op, w.c)?,
            numel: u32_of(op, numel)?,
            kind,
            size: pair(w.size)?,
            kernel: pair(w.kernel)?,
            stride: pair(w.stride)?,
            pad: pair(w.pad)?,
            dilation: pair(w.dilation)?,
            out: pair(w.out)?,
        })
    }
}

wgsl_struct! {
    /// `shaders/norm.wgsl` `Params`.
    pub struct NormParams {
        pub outer: u32,
        pub groups: u32,
        pub inner: u32,
        pub count: u32,
        pub eps: f32,
        pub _pad: [u32; 3],
    }
}

impl NormParams {
    pub fn new(op: &'static str, s: &NormSpec) -> Result<Self> {
        u32_of(op, s.numel())?;
        Ok(NormParams {
            outer: u32_of(op, s.outer)?,
            groups: u32_of(op, s.groups)?,
            inner: u32_of(op, s.inner)?,
            count: u32_of(op, s.count())?,
            eps: s.eps,
            _pad: [0; 3],
        })
    }
}

wgsl_struct! {
    /// `shaders/random.wgsl` `Params`.
    pub struct MaskParams {
        pub numel: u32,
        pub key_lo: u32,
        pub key_hi: u32,
        pub threshold: u32,
        pub scale: f32,
        /// The first element of this dispatch (a piece of a mask larger than one binding).
        pub first: u32,
        pub _pad: [u32; 2],
    }
}

wgsl_struct! {
    /// `shaders/optim.wgsl` `Params`.
    pub struct OptimParams {
        pub numel: u32,
        pub flags: u32,
        pub _pad: [u32; 2],
        pub lr: f32,
        pub weight_decay: f32,
        pub eps: f32,
        pub beta1: f32,
        pub beta2: f32,
        pub dampening: f32,
        pub bias1: f32,
        pub bias2_sqrt: f32,
    }
}

impl OptimParams {
    pub fn new(op: &'static str, s: &OptimSpec) -> Result<Self> {
        Ok(OptimParams {
            numel: u32_of(op, s.numel)?,
            flags: s.flags,
            _pad: [0; 2],
            lr: s.lr,
            weight_decay: s.weight_decay,
            eps: s.eps,
            beta1: s.beta1,
            beta2: s.beta2,
            dampening: s.dampening,
            bias1: s.bias1,
            bias2_sqrt: s.bias2_sqrt,
        })
    }
}
