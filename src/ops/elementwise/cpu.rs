//! Elementwise ops on the CPU: unary, binary and `where`, each operand read through its own
//! strides (broadcasts and transposed views need no copy).
//!
//! Speed comes from three things, each measured on `cargo bench --bench elementwise`:
//! - the op's `match` sits outside the loop: the ops a training step runs most get a loop of
//!   their own (`with_unary!`, `with_binary!`); the rest share one that matches per element;
//! - the output is walked one row of the innermost axis at a time, and each operand's row is a
//!   dense slice, one broadcast value, or (rarely) strided, so the common cases are plain
//!   slice loops the compiler vectorises;
//! - those loops run under `pulp::Arch::dispatch`, which compiles them for AVX-512, AVX2+FMA or
//!   baseline SSE2 and picks one at run time (the default target is baseline x86-64, and CI
//!   must not depend on `-C target-cpu=native`).

use rayon::prelude::*;

use super::spec::{Elementwise, Strided};
use crate::cpu::buffers;
use crate::cpu::walk::{StridedWalk, PAR_THRESHOLD};
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
            UnaryOp::Gelu => {
                let $f = |x| UnaryOp::Gelu.eval(x);
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

/// Where one operand's values for one output segment are: `start` in its data, then one every
/// `stride` elements (1: a dense slice; 0: one value broadcast along the segment).
#[derive(Clone, Copy)]
struct Run {
    start: usize,
    stride: usize,
}

// out[i] = f(a[i])
#[inline(always)]
fn map1<T: Real>(out: &mut [T], a: &[T], ra: Run, f: impl Fn(T) -> T) {
    let n = out.len();
    pulp::Arch::new().dispatch(|| match ra.stride {
        1 => out
            .iter_mut()
            .zip(&a[ra.start..ra.start + n])
            .for_each(|(o, &x)| *o = f(x)),
        0 => out.fill(f(a[ra.start])),
        s => out
            .iter_mut()
            .enumerate()
            .for_each(|(i, o)| *o = f(a[ra.start + i * s])),
    })
}

// out[i] = f(a[i], b[i])
#[inline(always)]
fn map2<T: Real>(out: &mut [T], a: &[T], ra: Run, b: &[T], rb: Run, f: impl Fn(T, T) -> T) {
    let n = out.len();
    pulp::Arch::new().dispatch(|| match (ra.stride, rb.stride) {
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
    })
}

// out[i] = cond[i] != 0 ? a[i] : b[i]
fn map3<T: Real>(out: &mut [T], data: &[&[T]], runs: &[Run]) {
    let at = |j: usize, i: usize| data[j][runs[j].start + i * runs[j].stride];
    for (i, o) in out.iter_mut().enumerate() {
        *o = if at(0, i) != T::zero() {
            at(1, i)
        } else {
            at(2, i)
        };
    }
}

/// Calls `seg(out_segment, runs)` for every segment of `out` (the flat output over
/// `spec.shape`) that lies in one row of the innermost axis, in parallel chunks when large.
fn for_segments<T: Real>(out: &mut [T], spec: &Strided, seg: impl Fn(&mut [T], &[Run]) + Sync) {
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

// out (spec's shape) = kind(inputs), each input read through its strides.
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
        Elementwise::Where => for_segments(&mut out, spec, |o, r| map3(o, data, r)),
    }
    Ok(out)
}
