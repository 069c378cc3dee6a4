//! Conversions between dtypes on the CPU (`Elementwise::Cast`, `Tensor::to_dtype`): the
//! `half` crate's slice conversions for dense F32 <-> half, else one element at a time
//! through `cpu::apply1`.

use half::{bf16, f16};
use rayon::prelude::*;

use super::cpu::apply1;
use super::spec::Strided;
use crate::cpu::buffers::{self, Pooled};
use crate::cpu::storage::CpuStorage;
use crate::cpu::walk::PAR_THRESHOLD;
use crate::dtype::DType;
use crate::error::Result;
use crate::shape::Layout;

/// F32 <-> F16/BF16 over a contiguous range: the `half` crate's slice conversions (F16C
/// instructions where the CPU has them, eight at a time), in parallel chunks. The same
/// rounding as the element-by-element path; `None` for any other cast or walk.
fn convert_dense(a: &CpuStorage, spec: &Strided, to: DType) -> Result<Option<CpuStorage>> {
    use half::slice::HalfFloatSliceExt;
    use CpuStorage as S;
    let r = match (spec.shape.as_slice(), spec.strides[0].as_slice()) {
        ([n], [1]) => spec.offsets[0]..spec.offsets[0] + n,
        _ => return Ok(None),
    };
    fn chunked<I: Sync, O: Pooled + Send>(
        src: &[I],
        f: impl Fn(&[I], &mut [O]) + Sync,
    ) -> Result<Vec<O>> {
        let mut out = buffers::for_overwrite("to_dtype", src.len())?;
        out.par_chunks_mut(PAR_THRESHOLD)
            .zip(src.par_chunks(PAR_THRESHOLD))
            .for_each(|(o, i)| f(i, o));
        Ok(out)
    }
    Ok(Some(match (a, to) {
        (S::F16(a), DType::F32) => S::new(chunked(&a[r], |i, o| i.convert_to_f32_slice(o))?),
        (S::BF16(a), DType::F32) => S::new(chunked(&a[r], |i, o| i.convert_to_f32_slice(o))?),
        (S::F32(a), DType::F16) => S::new(chunked(&a[r], |i, o: &mut [f16]| {
            o.convert_from_f32_slice(i)
        })?),
        (S::F32(a), DType::BF16) => S::new(chunked(&a[r], |i, o: &mut [bf16]| {
            o.convert_from_f32_slice(i)
        })?),
        _ => return Ok(None),
    }))
}

/// `a` converted to `to` (the rules are on `Elementwise::Cast`). A half goes through f32
/// both ways, exactly as the GPU's casts do: widening a half is exact, and a value rounds to a
/// half once, from f32, to nearest even (`half::f16::from_f32`).
pub(super) fn cast(a: &CpuStorage, spec: &Strided, to: DType) -> Result<CpuStorage> {
    use CpuStorage as S;
    // f64 -> i32 with Rust's `as`: toward zero, saturating, NaN to 0.
    let f2i = |x: f64| x as i32;
    let dense = || Strided::new("to_dtype", &[&Layout::contiguous(&[spec.numel()])]);
    if let Some(s) = convert_dense(a, spec, to)? {
        return Ok(s);
    }
    Ok(match (a, to) {
        (S::F16(a), DType::F32) => S::new(apply1(a, spec, f16::to_f32)?),
        (S::BF16(a), DType::F32) => S::new(apply1(a, spec, bf16::to_f32)?),
        (S::F16(_) | S::BF16(_), _) => cast(&cast(a, spec, DType::F32)?, &dense()?, to)?,
        (S::F32(a), DType::F16) => S::new(apply1(a, spec, f16::from_f32)?),
        (S::F32(a), DType::BF16) => S::new(apply1(a, spec, bf16::from_f32)?),
        (_, DType::F16 | DType::BF16) => cast(&cast(a, spec, DType::F32)?, &dense()?, to)?,
        (S::F32(a), DType::F32) => S::new(apply1(a, spec, |x| x)?),
        (S::F32(a), DType::F64) => S::new(apply1(a, spec, f64::from)?),
        (S::F32(a), DType::I32) => S::new(apply1(a, spec, move |x| f2i(f64::from(x)))?),
        (S::F32(a), DType::Bool) => S::new(apply1(a, spec, |x| x != 0.0)?),
        (S::F64(a), DType::F32) => S::new(apply1(a, spec, |x| x as f32)?),
        (S::F64(a), DType::F64) => S::new(apply1(a, spec, |x| x)?),
        (S::F64(a), DType::I32) => S::new(apply1(a, spec, f2i)?),
        (S::F64(a), DType::Bool) => S::new(apply1(a, spec, |x| x != 0.0)?),
        (S::I32(a), DType::F32) => S::new(apply1(a, spec, |x| x as f32)?),
        (S::I32(a), DType::F64) => S::new(apply1(a, spec, f64::from)?),
        (S::I32(a), DType::I32) => S::new(apply1(a, spec, |x| x)?),
        (S::I32(a), DType::Bool) => S::new(apply1(a, spec, |x| x != 0)?),
        (S::Bool(a), DType::F32) => S::new(apply1(a, spec, f32::from)?),
        (S::Bool(a), DType::F64) => S::new(apply1(a, spec, |x| f64::from(u8::from(x)))?),
        (S::Bool(a), DType::I32) => S::new(apply1(a, spec, i32::from)?),
        (S::Bool(a), DType::Bool) => S::new(apply1(a, spec, |x| x)?),
    })
}
