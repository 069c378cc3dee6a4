//! The matmul launchers: the kernel choice per device and operand layout, and the fused
//! epilogue (bias and activation) that Linear and Conv2d run in the same kernel.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use super::context::{self, GpuContext};
use super::grid::groups_for;
use super::kernels::Kernel;
use super::params::MatmulParams;
use super::GpuStorage;
use crate::error::{Error, Result};
use crate::op::UnaryOp;
use crate::storage::{Backend, Elementwise, MatOperand, MatmulSpec, Strided};

/// The matmul kernel choice and launch (outputs carry no faults yet: the caller adds them).
pub(super) fn matmul(
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
