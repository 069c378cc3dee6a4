//! What every family's uniform parameter struct is built with: [`wgsl_struct!`], which declares
//! a `#[repr(C)]` struct mirrored field by field by its shader's WGSL `Params` (the families
//! declare theirs beside their launchers, in `ops/*/gpu.rs`), and the checked conversions to
//! the `u32`s kernels index with. Arrays of 8 `u32` are `array<vec4<u32>, 2>` in WGSL.

use super::kernels::Shader;
use crate::error::{Error, Result};
use crate::shape::MAX_KERNEL_DIMS;

/// (name, byte offset, byte size) of each field of a struct, in order.
pub type Fields = Vec<(&'static str, usize, usize)>;

/// A Rust struct that mirrors a WGSL `Params` struct field by field.
pub trait WgslStruct: bytemuck::Pod {
    /// The shaders whose `Params` this struct mirrors: a dispatch of any other shader's
    /// kernel with it is refused (`GpuContext::dispatch`).
    const SHADERS: &'static [Shader];
    /// (name, byte offset, byte size) of each field, in order: what `tests/contract.rs`
    /// compares with the WGSL struct naga reads.
    fn fields() -> Fields;
}

/// Declares a `#[repr(C)]`, `Pod` parameter struct, the shaders it mirrors and its
/// [`WgslStruct`] field table, so the contract test can hold it against each shader's struct:
/// `wgsl_struct! { pub struct NormParams for [Norm] { pub outer: u32, .. } }`.
macro_rules! wgsl_struct {
    ($(#[$meta:meta])* pub struct $name:ident for [$($shader:ident),+] {
        $($(#[$fmeta:meta])* pub $field:ident: $ty:ty,)*
    }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $crate::gpu::params::WgslStruct for $name {
            const SHADERS: &'static [$crate::gpu::kernels::Shader] =
                &[$($crate::gpu::kernels::Shader::$shader),+];
            fn fields() -> $crate::gpu::params::Fields {
                vec![$((
                    stringify!($field),
                    std::mem::offset_of!($name, $field),
                    std::mem::size_of::<$ty>(),
                )),*]
            }
        }
    };
}
pub(crate) use wgsl_struct;

/// Converts a size or offset to the `u32` the kernels index with.
pub fn u32_of(op: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::TooLarge {
        op,
        bytes: (v as u64).saturating_mul(4),
        limit: u64::from(u32::MAX) * 4,
        what: "kernels index with 32-bit integers",
    })
}

pub(crate) fn axes(op: &'static str, v: &[usize]) -> Result<[u32; MAX_KERNEL_DIMS]> {
    let mut out = [0u32; MAX_KERNEL_DIMS];
    for (o, &x) in out.iter_mut().zip(v) {
        *o = u32_of(op, x)?;
    }
    Ok(out)
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

pub(crate) fn fault_code(op: &str) -> u32 {
    FAULT_OPS.iter().position(|&o| o == op).unwrap_or(0) as u32
}
