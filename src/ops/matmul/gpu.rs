//! The matmul launchers: the kernel choice per device and operand layout, and the fused
//! epilogue (bias and activation) that Linear and Conv2d run in the same kernel.

use super::spec::{MatOperand, MatmulSpec};
use crate::backend::Backend;
use crate::device_info::MatmulKernels;
use crate::error::{Error, Result};
use crate::gpu::grid::groups_for;
use crate::gpu::kernels::bind::{matmul as bind, matmul_subgroup};
use crate::gpu::kernels::{Kernel, EPILOGUE_HAS_BIAS};
use crate::gpu::params::{u32_of, wgsl_struct};
use crate::gpu::storage::GpuStorage;
use crate::gpu::window::Window;
use crate::ops::elementwise::op::UnaryOp;
use crate::ops::elementwise::spec::{Elementwise, Strided};

wgsl_struct! {
    /// `shaders/matmul_common.wgsl` `Params`.
    pub struct MatmulParams for [Matmul, MatmulSubgroup] {
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
        let o = |x: &MatOperand| -> Result<[u32; 4]> {
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

// One launcher binds both matmul shaders' kernels, so their shared bindings agree.
const _: () = assert!(
    bind::A == matmul_subgroup::A
        && bind::OUT4 == matmul_subgroup::OUT4
        && bind::B4 == matmul_subgroup::B4
        && bind::BIAS == matmul_subgroup::BIAS
);

/// The matmul kernel choice and launch (outputs carry no faults yet: the caller adds them).
pub(crate) fn matmul(
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
    let family = ctx.matmul_kernels();
    if family == MatmulKernels::WorkgroupTiles {
        return launch_matmul(Kernel::MatmulTiled, a, b, &epilogue, s);
    }
    // The subgroup kernels read B's rows as vec4s or, for a transposed B (x · Wᵀ in a
    // Linear layer), A's rows and B's columns as vec4s along k. Any other B is copied dense
    // first, which costs far less than the portable kernel's scalar reads (see
    // `matmul_subgroup.wgsl`).
    if family == MatmulKernels::Subgroup && s.n.is_multiple_of(4) {
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
    let kernel = if s.n.is_multiple_of(4) && vec4_rows(&s.b) {
        Kernel::MatmulTile8Vec4
    } else {
        Kernel::MatmulTile4
    };
    launch_matmul(kernel, a, b, &epilogue, s)
}

/// B's rows can be read as vec4: column stride 1, every row, batch and the offset 4-aligned.
fn vec4_rows(b: &MatOperand) -> bool {
    b.col == 1 && b.row.is_multiple_of(4) && b.offset.is_multiple_of(4) && b.batch.is_multiple_of(4)
}

/// Whether `matmul_subgroup_nt` can read A's rows and B's columns as vec4s along k.
fn vec4_columns(s: &MatmulSpec) -> bool {
    let (a, b) = (&s.a, &s.b);
    let b_transposed = MatOperand {
        row: b.col,
        col: b.row,
        ..*b
    };
    s.k.is_multiple_of(4) && vec4_rows(a) && vec4_rows(&b_transposed)
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
        let act = s.act.unary().code();
        match bias {
            Some(bias) if s.bias.is_some() => Epilogue {
                constant: act | EPILOGUE_HAS_BIAS,
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
    let (out_at, b_at) = if vec4 {
        (bind::OUT4, bind::B4)
    } else {
        (bind::OUT, bind::B)
    };
    let a_at = if kernel == Kernel::MatmulSubgroupNt {
        matmul_subgroup::A4
    } else {
        bind::A
    };
    let buffers = [out.buffer(), a.buffer(), b.buffer(), epilogue.bias];
    let max = ctx.max_binding_bytes();
    let pieces = match buffers.iter().all(|buf| buf.size() <= max) {
        true => vec![(*s, None, 0)], // one dispatch, whole buffers
        false => plan(
            s,
            ctx.binding_align() as usize / 4,
            (max / 4) as usize,
            &buffers,
        )
        .ok_or(Error::TooLarge {
            op: "matmul",
            bytes: buffers.iter().map(|b| b.size()).max().unwrap_or(0),
            limit: max,
            what: "max_storage_buffer_binding_size: one matrix of the batch is larger",
        })?
        .into_iter()
        .map(|(spec, windows, out_offset)| (spec, Some(windows), out_offset))
        .collect(),
    };
    for (spec, windows, out_offset) in pieces {
        let mut params = MatmulParams::new(&spec, rows, cols)?;
        params.out_offset = out_offset as u32;
        let tiles = spec.batch * spec.m.div_ceil(rows) * spec.n.div_ceil(cols);
        let groups = if per_workgroup {
            tiles
        } else {
            groups_for(tiles)
        };
        let w = |i: usize| windows.map(|w: [Window; 4]| w[i]);
        let bindings = [
            (out_at, buffers[0], w(0)),
            (a_at, buffers[1], w(1)),
            (b_at, buffers[2], w(2)),
            (bind::BIAS, buffers[3], w(3)),
        ];
        ctx.dispatch_windows(
            kernel,
            epilogue.constant,
            &params,
            &bindings,
            groups,
            "matmul",
        )?;
    }
    Ok(out)
}

/// Pieces of a matmul whose operands do not fit one binding: whole batch entries when they
/// fit, else rows of one entry. Each piece is a spec over its own batch entries and rows, with
/// offsets relative to its windows `[out, a, b, bias]` (the bias window is A's when there is no
/// bias: the kernel binds A there and never reads it), and where its output starts in the out
/// window. `None` when one B, or one row, is larger than a binding.
fn plan(
    s: &MatmulSpec,
    align: usize,
    max: usize,
    buffers: &[&wgpu::Buffer; 4],
) -> Option<Vec<(MatmulSpec, [Window; 4], usize)>> {
    let (m, n, k) = (s.m, s.n, s.k);
    if m * n == 0 || s.batch == 0 {
        return Some(Vec::new()); // no output: nothing to launch
    }
    let k1 = k.saturating_sub(1); // k = 0 still runs (the epilogue writes act(bias))
                                  // The elements an operand reads over `c` batch entries of `r` rows, from its offset.
    let a_span = |c: usize, r: usize| (c - 1) * s.a.batch + (r - 1) * s.a.row + k1 * s.a.col + 1;
    let b_span = |c: usize| (c - 1) * s.b.batch + k1 * s.b.row + (n - 1) * s.b.col + 1;
    let bias_span = |c: usize, r: usize| {
        s.bias.map_or(1, |o| {
            (c - 1) * o.batch + (r - 1) * o.row + (n - 1) * o.col + 1
        })
    };
    let fits = |c: usize, r: usize| {
        [c * r * n, a_span(c, r), b_span(c), bias_span(c, r)]
            .iter()
            .all(|&len| len + 2 * align + 4 <= max)
    };
    // Batch entries per piece, else rows per piece within one entry: the most that fit.
    let most = |upto: usize, fit: &dyn Fn(usize) -> bool| -> Option<usize> {
        let (mut lo, mut hi) = (0, upto); // lo fits (or is 0), nothing past hi does
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if fit(mid) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        (lo > 0).then_some(lo)
    };
    let by_batch = most(s.batch, &|c| fits(c, m));
    let by_rows = most(m, &|r| fits(1, r));
    let mut pieces = Vec::new();
    let mut piece = |b0: usize, c: usize, r0: usize, r: usize| {
        let shift = |o: &MatOperand, b0: usize, r0: usize| o.offset + b0 * o.batch + r0 * o.row;
        let a_off = shift(&s.a, b0, r0);
        let b_off = s.b.offset + b0 * s.b.batch;
        let out_first = (b0 * m + r0) * n;
        let wa = window(a_off, a_span(c, r), align, buffers[1]);
        let wb = window(b_off, b_span(c), align, buffers[2]);
        let (wbias, bias) = match s.bias {
            Some(o) => {
                let off = shift(&o, b0, r0);
                let w = window(off, bias_span(c, r), align, buffers[3]);
                (
                    w,
                    Some(MatOperand {
                        offset: off - w.0 as usize,
                        ..o
                    }),
                )
            }
            None => (wa, None),
        };
        let wout = window(out_first, c * r * n, align, buffers[0]);
        let out_offset = out_first - wout.0 as usize;
        let spec = MatmulSpec {
            batch: c,
            m: r,
            a: MatOperand {
                offset: a_off - wa.0 as usize,
                ..s.a
            },
            b: MatOperand {
                offset: b_off - wb.0 as usize,
                ..s.b
            },
            bias,
            ..*s
        };
        pieces.push((spec, [wout, wa, wb, wbias], out_offset));
    };
    match (by_batch, by_rows) {
        (Some(c), _) => (0..s.batch)
            .step_by(c)
            .for_each(|b0| piece(b0, c.min(s.batch - b0), 0, m)),
        (None, Some(r)) => (0..s.batch).for_each(|b0| {
            (0..m)
                .step_by(r)
                .for_each(|r0| piece(b0, 1, r0, r.min(m - r0)))
        }),
        (None, None) => return None,
    }
    Some(pieces)
}

/// The binding window for `len` elements from `first`: its start aligned down, its length
/// rounded up to whole vec4s (kernels read some operands as vec4 arrays) within the buffer.
fn window(first: usize, len: usize, align: usize, buffer: &wgpu::Buffer) -> Window {
    let start = first / align * align;
    let end = (first + len)
        .next_multiple_of(4)
        .min((buffer.size() / 4) as usize);
    (start as u64, (end - start) as u64)
}
