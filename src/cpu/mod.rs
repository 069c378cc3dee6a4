//! The CPU backend: the reference every GPU kernel is tested against, and the fallback where no
//! adapter exists. Loops are written to be checked by eye; large ones are split over cores with
//! rayon, and matmul goes through a GEMM crate (see `matmul.rs`).

use crate::ops::conv::cpu as conv;
use crate::ops::elementwise::cpu as elementwise;
use crate::ops::index::cpu as index;
use crate::ops::loss::cpu as loss;
use crate::ops::matmul::cpu as matmul;
use crate::ops::norm::cpu as norm;
use crate::ops::optim::cpu as optim;
use crate::ops::pool::cpu as pooling;
use crate::ops::reduce::cpu as reduce;
use crate::ops::scan::cpu as scan;
pub(crate) mod buffers;
pub(crate) mod storage;
pub(crate) mod walk;

use storage::by_precision;
pub(crate) use storage::{memory_stats, CpuElem, CpuStorage};

use crate::backend::{
    Backend, ConvSpec, CrossEntropySpec, Elementwise, GatherSpec, LineSpec, MatmulSpec, NormSpec,
    OptimSpec, PoolKind, ScanSpec, Strided, Window2d,
};
use crate::dtype::{index_error, one_dtype, DType, HostData};
use crate::error::{Error, Result};
use crate::ops::reduce::spec::ReduceOp;
use crate::shape::Layout;

/// The precision a CPU device computes in: f32, or f64 for gradcheck.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Precision {
    F32,
    F64,
}

impl Backend for CpuStorage {
    type Context = Precision;

    fn from_host(ctx: &Precision, data: HostData, _op: &'static str) -> Result<Self> {
        Ok(CpuStorage::from_host(data, *ctx == Precision::F64))
    }

    fn fill(
        ctx: &Precision,
        len: usize,
        value: f64,
        dtype: DType,
        op: &'static str,
    ) -> Result<Self> {
        fn filled<T: CpuElem>(op: &'static str, len: usize, value: T) -> Result<CpuStorage> {
            let mut v = buffers::with_capacity(op, len)?;
            v.resize(len, value);
            Ok(CpuStorage::new(v))
        }
        match (dtype, ctx) {
            (DType::F32, Precision::F64) | (DType::F64, _) => filled(op, len, value),
            (DType::F32, Precision::F32) => filled(op, len, value as f32),
            (DType::I32, _) => filled(op, len, value as i32),
            (DType::Bool, _) => filled(op, len, value != 0.0),
            // Through f32, as the GPU's fill word (one rounding rule for both backends).
            (DType::F16, _) => filled(op, len, half::f16::from_f32(value as f32)),
            (DType::BF16, _) => filled(op, len, half::bf16::from_f32(value as f32)),
        }
    }

    fn dropout_mask(
        ctx: &Precision,
        len: usize,
        key: u64,
        threshold: u32,
        scale: f32,
    ) -> Result<Self> {
        let v = crate::ops::random::cpu::dropout_mask(len, key, threshold, scale)?;
        <CpuStorage as Backend>::from_host(ctx, HostData::F32(v), "dropout")
    }
    fn elementwise(inputs: &[&Self], spec: &Strided, kind: Elementwise) -> Result<Self> {
        elementwise::run(inputs, spec, kind)
    }

    fn matmul(a: &Self, b: &Self, bias: Option<&Self>, spec: &MatmulSpec) -> Result<Self> {
        match bias {
            None => by_precision!("matmul", [a, b], |x, y| Ok(CpuStorage::new(
                matmul::matmul(x, y, None, spec)?
            ))),
            Some(c) => by_precision!("matmul", [a, b, c], |x, y, z| Ok(CpuStorage::new(
                matmul::matmul(x, y, Some(z), spec)?
            ))),
        }
    }

    fn reduce(&self, spec: &LineSpec, op: ReduceOp) -> Result<Self> {
        use CpuStorage as S;
        let arg = matches!(op, ReduceOp::ArgMax | ReduceOp::ArgMin);
        Ok(match self {
            S::F32(x) if arg => S::new(reduce::arg_reduce(x, spec, op, f32::is_nan)?),
            S::F64(x) if arg => S::new(reduce::arg_reduce(x, spec, op, f64::is_nan)?),
            S::I32(x) if arg => S::new(reduce::arg_reduce(x, spec, op, |_| false)?),
            S::I32(x) => S::new(reduce::reduce_i32(x, spec, op)?),
            _ => by_precision!(op.name(), [self], |x| Ok(CpuStorage::new(reduce::reduce(
                x, spec, op
            )?)))?,
        })
    }

    fn softmax(&self, spec: &LineSpec, log: bool) -> Result<Self> {
        by_precision!("softmax", [self], |x| Ok(CpuStorage::new(reduce::softmax(
            x, spec, log
        )?)))
    }

    fn softmax_backward(
        y: &Self,
        g: &Self,
        spec: &LineSpec,
        grad_offset: usize,
        log: bool,
    ) -> Result<Self> {
        by_precision!("softmax_backward", [y, g], |y, g| Ok(CpuStorage::new(
            reduce::softmax_backward(y, &g[grad_offset..], spec, log)?
        )))
    }

    fn gather(input: &Self, index: &Self, spec: &GatherSpec, op: &'static str) -> Result<Self> {
        use CpuStorage as S;
        let S::I32(i) = index else {
            return Err(index_error(op, index.dtype()));
        };
        Ok(match input {
            S::F32(x) => S::new(index::gather(x, i, spec, op)?),
            S::F64(x) => S::new(index::gather(x, i, spec, op)?),
            S::I32(x) => S::new(index::gather(x, i, spec, op)?),
            S::Bool(x) => S::new(index::gather(x, i, spec, op)?),
            S::F16(x) => S::new(index::gather(x, i, spec, op)?),
            S::BF16(x) => S::new(index::gather(x, i, spec, op)?),
        })
    }

    fn one_hot(&self, spec: &Strided, classes: usize) -> Result<Self> {
        match self {
            CpuStorage::I32(i) => Ok(CpuStorage::new(index::one_hot(i, spec, classes)?)),
            _ => Err(index_error("one_hot", self.dtype())),
        }
    }

    fn cat(parts: &[(&Self, Strided)], numel: usize) -> Result<Self> {
        let dtypes: Vec<DType> = parts.iter().map(|p| p.0.dtype()).collect();
        match one_dtype("cat", &dtypes)? {
            DType::F64 => index::cat::<f64>(parts, numel),
            DType::I32 => index::cat::<i32>(parts, numel),
            DType::Bool => index::cat::<bool>(parts, numel),
            DType::F32 => index::cat::<f32>(parts, numel),
            DType::F16 => index::cat::<half::f16>(parts, numel),
            DType::BF16 => index::cat::<half::bf16>(parts, numel),
        }
    }

    fn empty_like(&self, dtype: DType, len: usize, op: &'static str) -> Result<Self> {
        use buffers::for_overwrite as fresh;
        Ok(match dtype {
            DType::F32 => CpuStorage::new(fresh::<f32>(op, len)?),
            DType::F64 => CpuStorage::new(fresh::<f64>(op, len)?),
            DType::I32 => CpuStorage::new(fresh::<i32>(op, len)?),
            DType::Bool => CpuStorage::new(fresh::<bool>(op, len)?),
            DType::F16 => CpuStorage::new(fresh::<half::f16>(op, len)?),
            DType::BF16 => CpuStorage::new(fresh::<half::bf16>(op, len)?),
        })
    }

    fn write_at(&mut self, src: &Self, at: usize, op: &'static str) -> Result<()> {
        fn copy<T: Copy>(dst: &mut [T], src: &[T], at: usize, op: &'static str) -> Result<()> {
            let len = dst.len();
            let dst = dst.get_mut(at..at + src.len()).ok_or_else(|| {
                Error::invalid(op, format!("{} elements from {at} pass {len}", src.len()))
            })?;
            dst.copy_from_slice(src);
            Ok(())
        }
        use CpuStorage as S;
        match (self, src) {
            (S::F32(d), S::F32(s)) => copy(d, s, at, op),
            (S::F64(d), S::F64(s)) => copy(d, s, at, op),
            (S::I32(d), S::I32(s)) => copy(d, s, at, op),
            (S::Bool(d), S::Bool(s)) => copy(d, s, at, op),
            (S::F16(d), S::F16(s)) => copy(d, s, at, op),
            (S::BF16(d), S::BF16(s)) => copy(d, s, at, op),
            (d, s) => one_dtype(op, &[d.dtype(), s.dtype()]).map(|_| ()),
        }
    }

    fn unfold(&self, win: &Window2d) -> Result<Self> {
        by_precision!("unfold2d", [self], |x| Ok(CpuStorage::new(conv::unfold(
            x, win
        )?)))
    }

    fn fold(&self, win: &Window2d) -> Result<Self> {
        by_precision!("fold2d", [self], |x| Ok(CpuStorage::new(conv::fold(
            x, win
        )?)))
    }

    fn conv2d(
        x: &Self,
        w: &Self,
        bias: Option<&Self>,
        spec: &ConvSpec,
    ) -> Result<(Self, Option<Self>)> {
        let out = match bias {
            None => by_precision!("conv2d", [x, w], |x, w| Ok(CpuStorage::new(conv::conv2d(
                x, w, None, spec
            )?))),
            Some(b) => by_precision!("conv2d", [x, w, b], |x, w, b| Ok(CpuStorage::new(
                conv::conv2d(x, w, Some(b), spec)?
            ))),
        };
        Ok((out?, None))
    }

    fn conv2d_backward(
        x: &Self,
        w: &Self,
        g: &Self,
        _cols: Option<&Self>,
        spec: &ConvSpec,
        input_grad: bool,
    ) -> Result<(Option<Self>, Self)> {
        by_precision!("conv2d_backward", [x, w, g], |x, w, g| {
            let (dx, dw) = conv::conv2d_backward(x, w, g, spec, input_grad)?;
            Ok((dx.map(CpuStorage::new), CpuStorage::new(dw)))
        })
    }

    fn pool(&self, win: &Window2d, kind: PoolKind, indices: bool) -> Result<(Self, Option<Self>)> {
        by_precision!("pool2d", [self], |x| {
            let (out, arg) = pooling::pool(x, win, kind, indices)?;
            Ok((CpuStorage::new(out), arg.map(CpuStorage::new)))
        })
    }

    fn pool_backward(
        g: &Self,
        argmax: Option<&Self>,
        win: &Window2d,
        kind: PoolKind,
    ) -> Result<Self> {
        match argmax {
            Some(a) => by_precision!("pool2d_backward", [g, a], |g, a| Ok(CpuStorage::new(
                pooling::pool_backward(g, Some(a), win, kind)?
            ))),
            None => by_precision!("pool2d_backward", [g], |g| Ok(CpuStorage::new(
                pooling::pool_backward(g, None, win, kind)?
            ))),
        }
    }

    fn normalize(&self, spec: &NormSpec) -> Result<(Self, Self)> {
        by_precision!("normalize", [self], |x| {
            let (y, stats) = norm::normalize(x, spec)?;
            Ok((CpuStorage::new(y), CpuStorage::new(stats)))
        })
    }

    fn normalize_backward(xhat: &Self, g: &Self, stats: &Self, spec: &NormSpec) -> Result<Self> {
        by_precision!("normalize_backward", [xhat, g, stats], |y, g, s| Ok(
            CpuStorage::new(norm::normalize_backward(y, g, s, spec)?)
        ))
    }

    fn optim_step(
        param: &Self,
        grad: &Self,
        state: &Self,
        spec: &OptimSpec,
        skip: Option<&Self>,
    ) -> Result<(Self, Self)> {
        // The flag is in host memory here: reading it costs nothing.
        let skipped = match skip {
            Some(CpuStorage::Bool(v)) => v.first().copied().unwrap_or(false),
            Some(s) => return Err(crate::dtype::flag_error("optimizer step", s.dtype())),
            None => false,
        };
        by_precision!("optimizer step", [param, grad, state], |p, g, s| {
            if skipped {
                let (p, s) = (&p[..spec.numel], &s[..spec.numel * spec.state_rows()]);
                let op = "optimizer step";
                return Ok((
                    CpuStorage::new(buffers::copied(op, p)?),
                    CpuStorage::new(buffers::copied(op, s)?),
                ));
            }
            let (p, s) = optim::step(p, g, s, spec)?;
            Ok((CpuStorage::new(p), CpuStorage::new(s)))
        })
    }

    fn cross_entropy(x: &Self, target: &Self, spec: &CrossEntropySpec) -> Result<(Self, Self)> {
        let t = labels("cross_entropy", target)?;
        by_precision!("cross_entropy", [x], |x| {
            let (loss, lse) = loss::cross_entropy(x, t, spec)?;
            Ok((CpuStorage::new(loss), CpuStorage::new(lse)))
        })
    }

    fn cross_entropy_backward(
        x: &Self,
        target: &Self,
        lse: &Self,
        g: &Self,
        spec: &CrossEntropySpec,
    ) -> Result<Self> {
        let t = labels("cross_entropy", target)?;
        by_precision!("cross_entropy", [x, lse, g], |x, l, g| Ok(CpuStorage::new(
            loss::cross_entropy_backward(x, t, l, g, spec)?
        )))
    }

    fn scan(x: &Self, spec: &ScanSpec) -> Result<Self> {
        by_precision!("scan", [x], |x| Ok(CpuStorage::new(scan::scan(x, spec)?)))
    }

    fn read(&self, layout: &Layout) -> Result<HostData> {
        CpuStorage::read(self, layout)
    }

    fn dtype(&self) -> DType {
        CpuStorage::dtype(self)
    }
}

/// The `I32` class indices of a loss, or the dtype error.
fn labels<'a>(op: &'static str, target: &'a CpuStorage) -> Result<&'a [i32]> {
    match target {
        CpuStorage::I32(t) => Ok(t),
        _ => Err(index_error(op, target.dtype())),
    }
}
