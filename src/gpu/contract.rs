//! The Rust side of the Rust↔WGSL contract, as plain data for `tests/contract.rs`, which holds
//! it against the WGSL that naga reads: each shader's `Params` struct (size, field names,
//! offsets and sizes) against its `#[repr(C)]` mirror, its bindings against the registry's
//! table, each kernel's entry point and the bindings it uses. Not a stable API.

use super::kernels::{self, Access, Kernel, Shader};
use super::params::{Fields, WgslStruct};
use crate::ops::conv::gpu::WindowParams;
use crate::ops::elementwise::gpu::ElementwiseParams;
use crate::ops::index::gpu::IndexParams;
use crate::ops::loss::gpu::CrossEntropyParams;
use crate::ops::matmul::gpu::MatmulParams;
use crate::ops::norm::gpu::NormParams;
use crate::ops::optim::gpu::OptimParams;
use crate::ops::random::gpu::MaskParams;
use crate::ops::reduce::gpu::LineParams;
use crate::ops::scan::gpu::ScanParams;

/// One shader as the registry declares it.
#[derive(Clone, Debug)]
pub struct ShaderContract {
    /// The file the shader is known by.
    pub file: &'static str,
    /// The WGSL compiled for it (generated constants, `common.wgsl`, its files).
    pub source: String,
    /// The Rust mirrors that claim this shader's `Params` (`wgsl_struct! { .. for [..] }`),
    /// each as (size in bytes, (name, offset, size) of each field in order): exactly one.
    pub params: Vec<(usize, Fields)>,
    /// (WGSL name, binding number, read-only) of each storage binding in the table.
    pub bindings: Vec<(String, u32, bool)>,
}

/// One kernel as the registry declares it.
#[derive(Clone, Debug)]
pub struct KernelContract {
    /// The file of the shader the kernel belongs to (a [`ShaderContract::file`]).
    pub file: &'static str,
    /// The WGSL entry point the pipeline runs.
    pub entry_point: &'static str,
    /// The `override` constant that specialises the kernel (`"OP"`), if any.
    pub override_name: Option<&'static str>,
    /// The storage bindings a dispatch binds, besides the parameters at 0.
    pub bindings: Vec<u32>,
}

/// Every shader in the registry.
pub fn shaders() -> Vec<ShaderContract> {
    Shader::ALL
        .iter()
        .map(|&s| ShaderContract {
            file: s.file_name(),
            source: s.source(),
            params: mirrors()
                .into_iter()
                .filter(|(shaders, ..)| shaders.contains(&s))
                .map(|(_, size, fields)| (size, fields))
                .collect(),
            bindings: s
                .bindings()
                .iter()
                .map(|b| (b.name.to_lowercase(), b.number, b.access == Access::Read))
                .collect(),
        })
        .collect()
}

/// A parameter struct: the shaders it mirrors, its size, its fields.
type Mirror = (&'static [Shader], usize, Fields);

/// Every parameter struct of every family, as (the shaders it mirrors, size, fields). A struct
/// missing here leaves its shaders unclaimed, which the contract test reports.
fn mirrors() -> Vec<Mirror> {
    fn of<P: WgslStruct>() -> Mirror {
        (P::SHADERS, std::mem::size_of::<P>(), P::fields())
    }
    vec![
        of::<ElementwiseParams>(),
        of::<MatmulParams>(),
        of::<LineParams>(),
        of::<CrossEntropyParams>(),
        of::<IndexParams>(),
        of::<WindowParams>(),
        of::<NormParams>(),
        of::<MaskParams>(),
        of::<OptimParams>(),
        of::<ScanParams>(),
    ]
}

/// Every kernel in the registry.
pub fn kernels() -> Vec<KernelContract> {
    Kernel::ALL
        .iter()
        .map(|&k| KernelContract {
            file: k.shader().file_name(),
            entry_point: k.entry_point(),
            override_name: k.override_name(),
            bindings: k.bindings().to_vec(),
        })
        .collect()
}

/// Every `.wgsl` file the registry compiles, as written (name, text): the shared prelude and
/// each shader's files.
pub fn files() -> Vec<(&'static str, &'static str)> {
    let mut out = vec![kernels::COMMON];
    for s in Shader::ALL {
        for &f in s.files() {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    out
}

/// The generated WGSL constants (op codes, flags, the workgroup size).
pub fn constants() -> String {
    kernels::wgsl_constants()
}
