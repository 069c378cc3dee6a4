//! Launchers for the elementwise family (`shaders/elementwise.wgsl`): unary, binary, where,
//! fill and the strided copy behind `cat` and `contiguous`. Each walks a [`Strided`] spec, so
//! over a tensor larger than one binding it runs in pieces of the flat index range, binding
//! the window of each operand a piece touches (`gpu/window.rs`); the kernel adds the piece's first
//! index (`offsets[3]`) to find its elements.

use super::spec::{Elementwise, Strided};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::gpu::grid::groups_for;
use crate::gpu::kernels::bind::elementwise::{A, B, C, OUT};
use crate::gpu::kernels::Kernel;
use crate::gpu::params::{axes, u32_of, wgsl_struct};
use crate::gpu::storage::{words, GpuStorage};
use crate::gpu::window::{plan_flat, span, Window};
use crate::ops::elementwise::op::UnaryCode;
use crate::shape::Layout;

/// The bindings of the output and the inputs, in the order a launch lists them.
const OPERANDS: [u32; 4] = [OUT, A, B, C];

/// Where the output of a strided launch goes.
pub(crate) enum Out {
    /// Dense: element `i` of the walk at `out[i]`.
    Dense,
    /// Strided: spec operand 0 is the destination inside `out` (copy_into).
    Operand0,
}

/// Runs `kernel` over `spec`'s `n` elements, writing `out` (binding 1) from `inputs` (bindings
/// 2.., spec operands `first_input..`). One dispatch when every buffer fits a binding; else one
/// per piece, each binding only the windows it touches.
#[allow(clippy::too_many_arguments)]
pub(crate) fn launch(
    kernel: Kernel,
    code: u32,
    mut params: ElementwiseParams,
    spec: &Strided,
    out: &GpuStorage,
    out_at: Out,
    inputs: &[&GpuStorage],
    op: &'static str,
) -> Result<()> {
    let ctx = out.context();
    let n = spec.numel();
    let max = ctx.max_binding_bytes();
    let buffers = std::iter::once(out).chain(inputs.iter().copied());
    if buffers.clone().all(|s| s.buffer().size() <= max) {
        let bindings: Vec<_> = buffers
            .enumerate()
            .map(|(j, s)| (OPERANDS[j], s.buffer()))
            .collect();
        // The op kernels write a half output a word (two elements) per invocation; fill's
        // spec already counts words.
        let pairs = matches!(kernel, Kernel::Unary | Kernel::Binary | Kernel::Where);
        let invocations = match pairs && out.dtype().is_half() {
            true => n.div_ceil(2),
            false => n,
        };
        return ctx.dispatch(
            kernel,
            code,
            &params,
            &bindings,
            groups_for(invocations),
            op,
        );
    }
    if pairs_or_halves(kernel, out, inputs) {
        // `elementwise` widens halves before a windowed launch: pieces count whole words.
        return Err(Error::invalid(
            op,
            "internal: packed halves in a windowed launch",
        ));
    }
    // Spec operand of each input: copy_into's spec walks [dst, src]; the others [inputs..].
    let first_input = match out_at {
        Out::Dense => 0,
        Out::Operand0 => 1,
    };
    let align = (ctx.binding_align() / 4) as usize;
    let ranges = |first: usize, len: usize| -> Vec<(usize, usize)> {
        let out_range = match out_at {
            Out::Dense => (first, first + len),
            Out::Operand0 => span(spec, 0, first, len),
        };
        let ins = (0..inputs.len()).map(|j| span(spec, first_input + j, first, len));
        std::iter::once(out_range).chain(ins).collect()
    };
    let pieces = plan_flat(n, align, (max / 4) as usize, ranges).ok_or(Error::TooLarge {
        op,
        bytes: out.buffer().size(),
        limit: max,
        what: "max_storage_buffer_binding_size: an operand's strides spread one piece past it",
    })?;
    for piece in pieces {
        params.numel = u32_of(op, piece.len)?;
        params.offsets[3] = piece.first as u32;
        // Offsets become relative to each window; u32 arithmetic wraps back in the kernel
        // when a window starts past an operand's base offset.
        let rebase = |j: usize, w: &Window| (spec.offsets[j] as u32).wrapping_sub(w.0 as u32);
        if let Out::Operand0 = out_at {
            params.offsets[0] = rebase(0, &piece.windows[0]);
        }
        for j in 0..inputs.len() {
            params.offsets[first_input + j] = rebase(first_input + j, &piece.windows[1 + j]);
        }
        let bindings: Vec<_> = std::iter::once(out)
            .chain(inputs.iter().copied())
            .zip(&piece.windows)
            .enumerate()
            .map(|(j, (s, &w))| (OPERANDS[j], s.buffer(), Some(w)))
            .collect();
        ctx.dispatch_windows(kernel, code, &params, &bindings, groups_for(piece.len), op)?;
    }
    Ok(())
}

/// Whether a launch involves packed halves (fill's and copy_into's aside, whose specs count
/// words), which the windowed path does not split.
fn pairs_or_halves(kernel: Kernel, out: &GpuStorage, inputs: &[&GpuStorage]) -> bool {
    !matches!(kernel, Kernel::Fill | Kernel::CopyInto)
        && std::iter::once(out)
            .chain(inputs.iter().copied())
            .any(|s| s.dtype().is_half())
}

/// `out = kind(inputs)` elementwise over `spec` (a fresh dense output). The ops above checked
/// the dtypes (`ops/elementwise/mod.rs`): the kernel reads the words as `p.dtype`.
pub(crate) fn elementwise(
    inputs: &[&GpuStorage],
    spec: &Strided,
    kind: Elementwise,
) -> Result<GpuStorage> {
    let ctx = inputs[0].context();
    let op = "elementwise";
    let dtypes: Vec<DType> = inputs.iter().map(|s| s.dtype()).collect();
    let out_dtype = kind.out_dtype(&dtypes);
    // A whole dense buffer between F32 and a half (what `storage/half.rs` asks for around
    // every other op): the plain pack/unpack kernels, cheaper than the strided walk.
    let whole = spec.shape.len() == 1 && spec.strides[0] == [1] && spec.offsets[0] == 0;
    if let (Elementwise::Cast(to), true) = (kind, whole && spec.numel() == inputs[0].len()) {
        match (dtypes[0], to) {
            (d, DType::F32) if d.is_half() => return Ok(widen(inputs[0])?.inherit(inputs)),
            (DType::F32, t) if t.is_half() => return narrow(inputs[0], t),
            _ => {}
        }
    }
    // Halves (packed two to a word) are read and written by the kernels themselves when every
    // buffer fits one binding; past that, the op runs on F32 widened from them (`widen`, whose
    // pieces keep words whole) and its result is rounded back (`narrow`).
    let max = ctx.max_binding_bytes();
    let fits = inputs.iter().all(|s| s.buffer().size() <= max)
        && (words(spec.numel(), out_dtype) as u64) * 4 <= max;
    if !fits && dtypes.iter().chain([&out_dtype]).any(|d| d.is_half()) {
        let wide = inputs
            .iter()
            .map(|s| s.dtype().is_half().then(|| widen(s)).transpose())
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&GpuStorage> = (inputs.iter().zip(&wide))
            .map(|(s, w)| w.as_ref().unwrap_or(s))
            .collect();
        let wide_kind = match kind {
            Elementwise::Cast(to) if to.is_half() => Elementwise::Cast(DType::F32),
            k => k,
        };
        let out = elementwise(&refs, spec, wide_kind)?;
        return match out_dtype.is_half() {
            true => narrow(&out, out_dtype),
            false => Ok(out),
        };
    }
    let out = GpuStorage::alloc_as(ctx, op, spec.numel(), out_dtype)?;
    let (kernel, code, (alpha, beta), ints) = match kind {
        Elementwise::Unary(u) => (Kernel::Unary, u.code(), u.params(), u.int_params()),
        Elementwise::Binary(b) => (Kernel::Binary, b.code(), (0.0, 0.0), (0, 0)),
        Elementwise::Where => (Kernel::Where, 0, (0.0, 0.0), (0, 0)),
        Elementwise::Cast(_) => (Kernel::Unary, UnaryCode::Cast.code(), (0.0, 0.0), (0, 0)),
    };
    let mut params = ElementwiseParams::new(op, spec, alpha, beta)?;
    // Where's operand 0 is its Bool condition: the values are operands 1 and 2.
    let values = dtypes[usize::from(kind == Elementwise::Where)];
    params.dtype = values.gpu_code(op)?;
    params.out_dtype = out_dtype.gpu_code(op)?;
    (params.ialpha, params.ibeta) = ints;
    launch(kernel, code, params, spec, &out, Out::Dense, inputs, op)?;
    Ok(out)
}

/// `len` copies of `value` (exactly a value of `out`'s dtype) into `out` (nothing crosses
/// from the host: the kernel writes the word).
pub(crate) fn fill(out: &GpuStorage, len: usize, value: f64, op: &'static str) -> Result<()> {
    // The kernel writes words: a half's word holds two copies (rounded from f32, as the CPU's
    // fill).
    let spec = Strided::new(op, &[&Layout::contiguous(&[words(len, out.dtype())])])?;
    let mut params = ElementwiseParams::new(op, &spec, 0.0, 0.0)?;
    let twice = |h: u16| u32::from(h) | u32::from(h) << 16;
    let word = match out.dtype() {
        DType::I32 => value as i32 as u32,
        DType::Bool => u32::from(value != 0.0),
        DType::F16 => twice(half::f16::from_f32(value as f32).to_bits()),
        DType::BF16 => twice(half::bf16::from_f32(value as f32).to_bits()),
        _ => (value as f32).to_bits(),
    };
    params.ialpha = word as i32;
    launch(Kernel::Fill, 0, params, &spec, out, Out::Dense, &[], op)
}

/// A half storage (`F16` or `BF16`, all of its elements) widened to F32, exactly.
pub(crate) fn widen(h: &GpuStorage) -> Result<GpuStorage> {
    let out = GpuStorage::alloc_as(h.context(), "to_dtype", h.len(), DType::F32)?;
    halves(Kernel::UnpackHalf, h.dtype(), &out, h, h.len())?;
    Ok(out)
}

/// Dense F32 `f` rounded to `to` (`F16` or `BF16`) to nearest even, as the `half` crate.
pub(crate) fn narrow(f: &GpuStorage, to: DType) -> Result<GpuStorage> {
    let out = GpuStorage::alloc_as(f.context(), "to_dtype", f.len(), to)?;
    halves(Kernel::PackHalf, to, &out, f, words(f.len(), to))?;
    Ok(out.inherit(&[f]))
}

/// Runs `kernel` (`PackHalf` or `UnpackHalf`) with one invocation per word of `out`, `n` of
/// them, in pieces whose windows fit a binding. Packing, output word `k` reads F32s `2k` and
/// `2k + 1`; unpacking, output F32 `k` reads half `k & 1` of word `k / 2`. A piece starts at a
/// multiple of twice the binding alignment, so both windows start aligned.
fn halves(
    kernel: Kernel,
    half: DType,
    out: &GpuStorage,
    input: &GpuStorage,
    n: usize,
) -> Result<()> {
    let (ctx, op) = (out.context(), "to_dtype");
    let pack = kernel == Kernel::PackHalf;
    let spec = Strided::new(op, &[&Layout::contiguous(&[n])])?;
    let mut params = ElementwiseParams::new(op, &spec, 0.0, 0.0)?;
    params.dtype = half.gpu_code(op)?;
    params.out_dtype = params.dtype;
    let align = (ctx.binding_align() / 4) as usize * 2;
    let chunk = ((ctx.max_binding_bytes() / 8) as usize / align * align).max(align);
    let mut first = 0;
    while first < n {
        let len = chunk.min(n - first);
        // The input window: the F32s a piece packs (all there are at the end, an odd count),
        // or the half words it unpacks.
        let (in_first, in_len) = match pack {
            true => (2 * first, (2 * len).min(input.len() - 2 * first)),
            false => (first / 2, len.div_ceil(2)),
        };
        params.numel = u32_of(op, len)?;
        params.offsets[1] = u32_of(op, in_len)?; // F32s in the window (the last may be alone)
        let bindings = [
            (OUT, out.buffer(), Some((first as u64, len as u64))),
            (A, input.buffer(), Some((in_first as u64, in_len as u64))),
        ];
        ctx.dispatch_windows(kernel, 0, &params, &bindings, groups_for(len), op)?;
        first += len;
    }
    Ok(())
}

wgsl_struct! {
    /// `shaders/elementwise.wgsl` `Params`.
    pub struct ElementwiseParams for [Elementwise] {
        /// Elements in this dispatch (a piece's, over a tensor larger than one binding).
        pub numel: u32,
        pub rank: u32,
        pub alpha: f32,
        pub beta: f32,
        /// `[0..3]`: each operand's offset; `[3]`: the piece's first element (`gpu/window.rs`).
        pub offsets: [u32; 4],
        pub shape: [u32; 8],
        pub strides: [[u32; 8]; 3],
        /// `DTYPE_*` of the inputs (of where's values) and of the output.
        pub dtype: u32,
        pub out_dtype: u32,
        /// The scalar parameters as integers (I32 inputs), and fill's word.
        pub ialpha: i32,
        pub ibeta: i32,
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
            dtype: 0,
            out_dtype: 0,
            ialpha: 0,
            ibeta: 0,
        };
        for (j, (s, &o)) in spec.strides.iter().zip(&spec.offsets).enumerate() {
            p.strides[j] = axes(op, s)?;
            p.offsets[j] = u32_of(op, o)?;
        }
        Ok(p)
    }
}
