//! Elementwise ops on the CPU: unary, binary and `where`, each operand read through its own
//! strides (broadcasts and transposed views need no copy).
//!
//! Speed comes from three things, each measured on `cargo bench --bench elementwise`:
//! - the op's `match` sits outside the loop: the ops a training step runs most get a loop of
//!   their own (`with_unary!`, `with_binary!`); the rest share one that matches per element;
//! - the output is walked one row of the innermost axis at a time, and each operand's row is a
//!   dense slice, one broadcast value, or (rarely) strided, so the common cases are plain
//!   slice loops the compiler vectorises;
//! - those loops run under `walk::vectorized`, which compiles them for AVX-512, AVX2+FMA or
//!   baseline SSE2 and picks one at run time (the default target is baseline x86-64, and CI
//!   must not depend on `-C target-cpu=native`).

use half::{bf16, f16};
use rayon::prelude::*;

use super::spec::{Elementwise, Strided};
use crate::cpu::buffers::{self, Pooled};
use crate::cpu::storage::{CpuElem, CpuStorage};
use crate::cpu::walk::{vectorized, StridedWalk, PAR_THRESHOLD};
use crate::dtype::DType;
use crate::error::Error;
use crate::error::Result;
use crate::ops::elementwise::op::{BinaryOp, UnaryOp};
use crate::real::Real;

/// Elements per rayon task.
const CHUNK: usize = 1 << 14;

/// Binds `$f` to `op` as a closure and evaluates `$body`, with a separate copy of `$body` for
/// each hot op so that the op's `match` folds away inside the loop.
macro_rules! with_unary {
    ($op:expr, |$f:ident| $body:expr) => {
        match $op {
            UnaryOp::Identity => {
                let $f = |x| UnaryOp::Identity.eval(x);
                $body
            }
            UnaryOp::Neg => {
                let $f = |x| UnaryOp::Neg.eval(x);
                $body
            }
            UnaryOp::Abs => {
                let $f = |x| UnaryOp::Abs.eval(x);
                $body
            }
            UnaryOp::Relu => {
                let $f = |x| UnaryOp::Relu.eval(x);
                $body
            }
            UnaryOp::Square => {
                let $f = |x| UnaryOp::Square.eval(x);
                $body
            }
            UnaryOp::Sqrt => {
                let $f = |x| UnaryOp::Sqrt.eval(x);
                $body
            }
            UnaryOp::Exp => {
                let $f = |x| UnaryOp::Exp.eval(x);
                $body
            }
            UnaryOp::Sigmoid => {
                let $f = |x| UnaryOp::Sigmoid.eval(x);
                $body
            }
            UnaryOp::Tanh => {
                let $f = |x| UnaryOp::Tanh.eval(x);
                $body
            }
            UnaryOp::GeluTanh => {
                let $f = |x| UnaryOp::GeluTanh.eval(x);
                $body
            }
            // GAN discriminators run it on every activation (25x faster than the shared loop
            // on 1e6 elements: `cargo bench --bench elementwise -- leaky_relu`).
            UnaryOp::LeakyRelu(slope) => {
                let $f = move |x| UnaryOp::LeakyRelu(slope).eval(x);
                $body
            }
            UnaryOp::Silu => {
                let $f = |x| UnaryOp::Silu.eval(x);
                $body
            }
            UnaryOp::Scalar(BinaryOp::Add, s) => {
                let $f = move |x| UnaryOp::Scalar(BinaryOp::Add, s).eval(x);
                $body
            }
            UnaryOp::Scalar(BinaryOp::Mul, s) => {
                let $f = move |x| UnaryOp::Scalar(BinaryOp::Mul, s).eval(x);
                $body
            }
            op => {
                let $f = move |x| op.eval(x);
                $body
            }
        }
    };
}

/// `with_unary!` for binary ops.
macro_rules! with_binary {
    ($op:expr, |$f:ident| $body:expr) => {
        match $op {
            BinaryOp::Add => {
                let $f = |a, b| BinaryOp::Add.eval(a, b);
                $body
            }
            BinaryOp::Sub => {
                let $f = |a, b| BinaryOp::Sub.eval(a, b);
                $body
            }
            BinaryOp::Mul => {
                let $f = |a, b| BinaryOp::Mul.eval(a, b);
                $body
            }
            BinaryOp::Div => {
                let $f = |a, b| BinaryOp::Div.eval(a, b);
                $body
            }
            BinaryOp::ReluBackward => {
                let $f = |a, b| BinaryOp::ReluBackward.eval(a, b);
                $body
            }
            op => {
                let $f = move |a, b| op.eval(a, b);
                $body
            }
        }
    };
}

/// `with_binary!` for the ops that give `Bool`: `$f(a, b)` is the truth value, with the
/// comparison fixed outside the loop (comparisons build the masks backward uses: 23x faster
/// than matching per element on 1e6 elements, `cargo bench --bench elementwise -- gt_scalar`).
macro_rules! with_compare {
    ($op:expr, |$f:ident| $body:expr) => {
        match $op {
            BinaryOp::Eq => {
                let $f = |a, b| BinaryOp::Eq.eval(a, b) != 0.0;
                $body
            }
            BinaryOp::Ne => {
                let $f = |a, b| BinaryOp::Ne.eval(a, b) != 0.0;
                $body
            }
            BinaryOp::Lt => {
                let $f = |a, b| BinaryOp::Lt.eval(a, b) != 0.0;
                $body
            }
            BinaryOp::Le => {
                let $f = |a, b| BinaryOp::Le.eval(a, b) != 0.0;
                $body
            }
            BinaryOp::Gt => {
                let $f = |a, b| BinaryOp::Gt.eval(a, b) != 0.0;
                $body
            }
            BinaryOp::Ge => {
                let $f = |a, b| BinaryOp::Ge.eval(a, b) != 0.0;
                $body
            }
            op => {
                let $f = move |a, b| op.eval(a, b) != 0.0;
                $body
            }
        }
    };
}

/// Where one operand's values for one output segment are: `start` in its data, then one every
/// `stride` elements (1: a dense slice; 0: one value broadcast along the segment).
#[derive(Clone, Copy)]
struct Run {
    start: usize,
    stride: usize,
}

// out[i] = f(a[i])
#[inline(always)]
fn map1<T: Copy, O: Copy>(out: &mut [O], a: &[T], ra: Run, f: impl Fn(T) -> O) {
    let n = out.len();
    vectorized(
        #[inline(always)]
        || match ra.stride {
            1 => out
                .iter_mut()
                .zip(&a[ra.start..ra.start + n])
                .for_each(|(o, &x)| *o = f(x)),
            0 => out.fill(f(a[ra.start])),
            s => out
                .iter_mut()
                .enumerate()
                .for_each(|(i, o)| *o = f(a[ra.start + i * s])),
        },
    )
}

// out[i] = f(a[i], b[i])
#[inline(always)]
fn map2<T: Copy, O: Copy>(
    out: &mut [O],
    a: &[T],
    ra: Run,
    b: &[T],
    rb: Run,
    f: impl Fn(T, T) -> O,
) {
    let n = out.len();
    vectorized(
        #[inline(always)]
        || match (ra.stride, rb.stride) {
            (1, 1) => {
                let (a, b) = (&a[ra.start..ra.start + n], &b[rb.start..rb.start + n]);
                out.iter_mut()
                    .zip(a.iter().zip(b))
                    .for_each(|(o, (&x, &y))| *o = f(x, y))
            }
            (1, 0) => {
                let y = b[rb.start];
                out.iter_mut()
                    .zip(&a[ra.start..ra.start + n])
                    .for_each(|(o, &x)| *o = f(x, y))
            }
            (0, 1) => {
                let x = a[ra.start];
                out.iter_mut()
                    .zip(&b[rb.start..rb.start + n])
                    .for_each(|(o, &y)| *o = f(x, y))
            }
            (sa, sb) => out
                .iter_mut()
                .enumerate()
                .for_each(|(i, o)| *o = f(a[ra.start + i * sa], b[rb.start + i * sb])),
        },
    )
}

// out[i] = cond[i] ? a[i] : b[i]. Dense operands, and a scalar `b` (a mask's `where_(c, x,
// 0)`), get loops of their own that vectorise, and the choice is a select, not a branch (a
// mask is as unpredictable as its data): 11x faster on 1e6 random conditions, `cargo bench
// --bench elementwise -- where`.
#[inline(always)]
fn map3<T: Copy>(out: &mut [T], cond: &[bool], a: &[T], b: &[T], runs: &[Run]) {
    let n = out.len();
    let dense = |r: Run| r.start..r.start + n;
    vectorized(
        #[inline(always)]
        || match (runs[0].stride, runs[1].stride, runs[2].stride) {
            (1, 1, 1) => {
                let (c, a, b) = (
                    &cond[dense(runs[0])],
                    &a[dense(runs[1])],
                    &b[dense(runs[2])],
                );
                for (o, ((&c, &x), &y)) in out.iter_mut().zip(c.iter().zip(a).zip(b)) {
                    *o = std::hint::select_unpredictable(c, x, y);
                }
            }
            (1, 1, 0) => {
                let (c, a, y) = (&cond[dense(runs[0])], &a[dense(runs[1])], b[runs[2].start]);
                for (o, (&c, &x)) in out.iter_mut().zip(c.iter().zip(a)) {
                    *o = std::hint::select_unpredictable(c, x, y);
                }
            }
            _ => {
                let at = |j: usize, i: usize| runs[j].start + i * runs[j].stride;
                for (i, o) in out.iter_mut().enumerate() {
                    *o = std::hint::select_unpredictable(cond[at(0, i)], a[at(1, i)], b[at(2, i)]);
                }
            }
        },
    )
}

/// Calls `seg(out_segment, runs)` for every segment of `out` (the flat output over
/// `spec.shape`) that lies in one row of the innermost axis, in parallel chunks when large.
fn for_segments<T: Send>(out: &mut [T], spec: &Strided, seg: impl Fn(&mut [T], &[Run]) + Sync) {
    let rank = spec.shape.len();
    let outer = rank.saturating_sub(1);
    let row_len = spec.shape.last().copied().unwrap_or(1).max(1);
    let rows = Strided {
        shape: spec.shape[..outer].to_vec(),
        strides: spec.strides.iter().map(|s| s[..outer].to_vec()).collect(),
        offsets: spec.offsets.clone(),
    };
    let inner: Vec<usize> = spec
        .strides
        .iter()
        .map(|s| s.last().copied().unwrap_or(0))
        .collect();
    // One task: flat output elements first..first + chunk.len().
    let task = |first: usize, chunk: &mut [T]| {
        let mut walk = StridedWalk::new(&rows, first / row_len);
        let mut col = first % row_len;
        let mut runs: Vec<Run> = inner
            .iter()
            .map(|&stride| Run { start: 0, stride })
            .collect();
        let mut rest = chunk;
        while !rest.is_empty() {
            let (head, tail) = rest.split_at_mut((row_len - col).min(rest.len()));
            for ((r, &o), &s) in runs.iter_mut().zip(&walk.offsets).zip(&inner) {
                r.start = o + col * s;
            }
            seg(head, &runs);
            rest = tail;
            col = 0;
            walk.advance();
        }
    };
    if out.len() >= PAR_THRESHOLD {
        out.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(c, chunk)| task(c * CHUNK, chunk));
    } else {
        task(0, out);
    }
}

// out (spec's shape) = kind(inputs), each input read through its strides: any dtypes.
pub(crate) fn run(inputs: &[&CpuStorage], spec: &Strided, kind: Elementwise) -> Result<CpuStorage> {
    use CpuStorage as S;
    let out_dtype = kind.out_dtype(&inputs.iter().map(|s| s.dtype()).collect::<Vec<_>>());
    let unsupported = || {
        let got = inputs.iter().map(|s| s.dtype()).collect();
        Error::DType {
            op: "elementwise",
            got,
            expected: "operands of one dtype that the op takes",
            hint: "convert with `.to_dtype`",
        }
    };
    Ok(match (kind, inputs) {
        (Elementwise::Cast(to), [a]) => super::cast::cast(a, spec, to)?,
        (Elementwise::Where, [S::Bool(c), a, b]) => match (a, b) {
            (S::F32(a), S::F32(b)) => S::new(select(c, a, b, spec)?),
            (S::F64(a), S::F64(b)) => S::new(select(c, a, b, spec)?),
            (S::I32(a), S::I32(b)) => S::new(select(c, a, b, spec)?),
            (S::Bool(a), S::Bool(b)) => S::new(select(c, a, b, spec)?),
            (S::F16(a), S::F16(b)) => S::new(select(c, a, b, spec)?),
            (S::BF16(a), S::BF16(b)) => S::new(select(c, a, b, spec)?),
            _ => return Err(unsupported()),
        },
        (Elementwise::Unary(_) | Elementwise::Binary(_), [S::F16(_), ..]) => {
            match inputs
                .iter()
                .map(|s| f16::view(s))
                .collect::<Option<Vec<_>>>()
            {
                Some(data) => on_halves(&data, spec, kind)?,
                None => return Err(unsupported()),
            }
        }
        (Elementwise::Unary(_) | Elementwise::Binary(_), [S::BF16(_), ..]) => {
            match inputs
                .iter()
                .map(|s| bf16::view(s))
                .collect::<Option<Vec<_>>>()
            {
                Some(data) => on_halves(&data, spec, kind)?,
                None => return Err(unsupported()),
            }
        }
        (Elementwise::Unary(UnaryOp::Scalar(cmp, s)), [S::F32(a)]) if cmp.gives_bool() => {
            with_compare!(cmp, |f| S::new(apply1(a, spec, move |x| f(x, s))?))
        }
        (Elementwise::Unary(UnaryOp::Scalar(cmp, s)), [S::F64(a)]) if cmp.gives_bool() => {
            let s = f64::from(s);
            with_compare!(cmp, |f| S::new(apply1(a, spec, move |x| f(x, s))?))
        }
        (Elementwise::Unary(op), [S::F32(a)]) if op.gives_bool() => {
            S::new(apply1(a, spec, move |x| op.eval(x) != 0.0)?)
        }
        (Elementwise::Unary(op), [S::F64(a)]) if op.gives_bool() => {
            S::new(apply1(a, spec, move |x| op.eval(x) != 0.0)?)
        }
        (Elementwise::Binary(op), [S::F32(a), S::F32(b)]) if op.gives_bool() => {
            with_compare!(op, |f| S::new(apply2(a, b, spec, f)?))
        }
        (Elementwise::Binary(op), [S::F64(a), S::F64(b)]) if op.gives_bool() => {
            with_compare!(op, |f| S::new(apply2(a, b, spec, f)?))
        }
        (Elementwise::Unary(_) | Elementwise::Binary(_), [S::F32(_), ..]) => {
            match inputs
                .iter()
                .map(|s| f32::view(s))
                .collect::<Option<Vec<_>>>()
            {
                Some(data) => S::new(elementwise(&data, spec, kind)?),
                None => return Err(unsupported()),
            }
        }
        (Elementwise::Unary(_) | Elementwise::Binary(_), [S::F64(_), ..]) => {
            match inputs
                .iter()
                .map(|s| f64::view(s))
                .collect::<Option<Vec<_>>>()
            {
                Some(data) => S::new(elementwise(&data, spec, kind)?),
                None => return Err(unsupported()),
            }
        }
        (Elementwise::Unary(op), [S::I32(a)]) if op.on_i32() => match out_dtype {
            DType::Bool => S::new(apply1(a, spec, move |x| op.eval_i32(x) != 0)?),
            _ => S::new(apply1(a, spec, move |x| op.eval_i32(x))?),
        },
        (Elementwise::Binary(op), [S::I32(a), S::I32(b)]) if op.on_i32() => match out_dtype {
            DType::Bool => S::new(apply2(a, b, spec, move |x, y| op.eval_i32(x, y) != 0)?),
            _ => S::new(apply2(a, b, spec, move |x, y| op.eval_i32(x, y))?),
        },
        (Elementwise::Unary(UnaryOp::Identity), [S::Bool(a)]) => S::new(apply1(a, spec, |x| x)?),
        (Elementwise::Unary(UnaryOp::LogicalNot), [S::Bool(a)]) => {
            S::new(apply1(a, spec, |x: bool| !x)?)
        }
        // Truth values: ==, != and the logical ops (the others count Bool as I32 first).
        (Elementwise::Binary(op), [S::Bool(a), S::Bool(b)]) if op.gives_bool() => {
            S::new(apply2(a, b, spec, move |x: bool, y: bool| {
                op.eval_i32(i32::from(x), i32::from(y)) != 0
            })?)
        }
        _ => return Err(unsupported()),
    })
}

/// A 16-bit float, computed in f32.
trait Half: CpuElem + Pooled {
    const DTYPE: DType;
    fn widen(self) -> f32;
    fn narrow(x: f32) -> Self;
}
impl Half for f16 {
    const DTYPE: DType = DType::F16;
    fn widen(self) -> f32 {
        self.to_f32()
    }
    fn narrow(x: f32) -> f16 {
        f16::from_f32(x)
    }
}
impl Half for bf16 {
    const DTYPE: DType = DType::BF16;
    fn widen(self) -> f32 {
        self.to_f32()
    }
    fn narrow(x: f32) -> bf16 {
        bf16::from_f32(x)
    }
}

/// A unary or binary op on halves: each element widened to f32, computed as the F32 kernel
/// computes it (`eval`), and rounded once to the half (or tested `!= 0` for a `Bool` result).
/// One pass, with no F32 copy of the operands or the result.
fn on_halves<H: Half>(data: &[&[H]], spec: &Strided, kind: Elementwise) -> Result<CpuStorage> {
    use CpuStorage as S;
    Ok(match kind {
        Elementwise::Unary(op) if op.gives_bool() => S::new(apply1(data[0], spec, move |x: H| {
            op.eval(x.widen()) != 0.0
        })?),
        Elementwise::Binary(op) if op.gives_bool() => {
            S::new(apply2(data[0], data[1], spec, move |x: H, y: H| {
                op.eval(x.widen(), y.widen()) != 0.0
            })?)
        }
        Elementwise::Unary(op) => with_unary!(op, |f| {
            S::new(apply1(data[0], spec, move |x: H| H::narrow(f(x.widen())))?)
        }),
        Elementwise::Binary(op) => with_binary!(op, |f| {
            S::new(apply2(data[0], data[1], spec, move |x: H, y: H| {
                H::narrow(f(x.widen(), y.widen()))
            })?)
        }),
        Elementwise::Where | Elementwise::Cast(_) => {
            return Err(crate::cpu::storage::float_mismatch(
                "elementwise",
                &[H::DTYPE],
            ))
        }
    })
}

/// `f` of each element of `a` walked by `spec`.
pub(super) fn apply1<T: Copy + Sync, O: Pooled>(
    a: &[T],
    spec: &Strided,
    f: impl Fn(T) -> O + Sync + Copy,
) -> Result<Vec<O>> {
    let mut out = buffers::for_overwrite("elementwise", spec.numel())?;
    if !out.is_empty() {
        for_segments(&mut out, spec, |o, r| map1(o, a, r[0], f));
    }
    Ok(out)
}

/// `f` of each pair of elements of `a` and `b` walked by `spec`.
fn apply2<T: Copy + Sync, O: Pooled>(
    a: &[T],
    b: &[T],
    spec: &Strided,
    f: impl Fn(T, T) -> O + Sync + Copy,
) -> Result<Vec<O>> {
    let mut out = buffers::for_overwrite("elementwise", spec.numel())?;
    if !out.is_empty() {
        for_segments(&mut out, spec, |o, r| map2(o, a, r[0], b, r[1], f));
    }
    Ok(out)
}

// out = cond ? a : b (spec walks [cond, a, b])
fn select<T: Pooled>(cond: &[bool], a: &[T], b: &[T], spec: &Strided) -> Result<Vec<T>> {
    let mut out = buffers::for_overwrite("where_", spec.numel())?;
    if !out.is_empty() {
        for_segments(&mut out, spec, |o, r| map3(o, cond, a, b, r));
    }
    Ok(out)
}

// out (spec's shape) = kind(inputs) for float ops, each input read through its strides.
pub(crate) fn elementwise<T: Real>(
    data: &[&[T]],
    spec: &Strided,
    kind: Elementwise,
) -> Result<Vec<T>> {
    let mut out = buffers::for_overwrite("elementwise", spec.numel())?;
    if out.is_empty() {
        return Ok(out); // a zero-size axis: no rows to walk (and the walk would divide by it)
    }
    match kind {
        Elementwise::Unary(op) => with_unary!(op, |f| {
            for_segments(&mut out, spec, |o, r| map1(o, data[0], r[0], f))
        }),
        Elementwise::Binary(op) => with_binary!(op, |f| {
            for_segments(&mut out, spec, |o, r| {
                map2(o, data[0], r[0], data[1], r[1], f)
            })
        }),
        // `run` handles these (their operands are not all of one float type).
        Elementwise::Where | Elementwise::Cast(_) => {}
    }
    Ok(out)
}
