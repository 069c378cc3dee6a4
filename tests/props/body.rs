// The property suite's body, included by `tests/properties.rs` (the adapter's binding limit)
// and `tests/windows.rs` (a 16 KiB one), each defining `BINDING_LIMIT` and `mod common`.

use ferrograd::nn::loss::{self, Reduction};
use ferrograd::{BatchNormOptions, Conv2dOptions, Device, Pool2dOptions, Result, Tensor};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError};

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    Config {
        cases,
        failure_persistence: None, // no regression files written into the tree by CI
        ..Config::default()
    }
}

/// The sizes an axis takes: empty, one, small primes, and one past a 64-wide workgroup.
fn dim() -> impl Strategy<Value = usize> {
    prop::sample::select(vec![0usize, 1, 1, 2, 3, 5, 7, 65])
}

fn shape(max_rank: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(dim(), 0..=max_rank).prop_filter("at most 20k elements", |s| {
        s.iter().product::<usize>() <= 20_000
    })
}

/// How an input is seen: the op gets a view, not a dense tensor, unless `Dense`.
#[derive(Clone, Debug)]
enum View {
    Dense,
    /// The tensor is stored with these two axes swapped and transposed back: a strided view.
    Transposed(usize, usize),
    /// Stored with one more element at each end of axis 0 and narrowed to the middle.
    Narrowed,
    /// Stored reversed (axis order) and permuted back.
    Reversed,
}

fn view() -> impl Strategy<Value = View> {
    prop_oneof![
        Just(View::Dense),
        (0..4usize, 0..4usize).prop_map(|(a, b)| View::Transposed(a, b)),
        Just(View::Narrowed),
        Just(View::Reversed),
    ]
}

/// A seeded tensor of `shape` on `dev`, seen through `view` (values in [-2, 2)).
fn make(shape: &[usize], view: &View, seed: u64, dev: &Device) -> Result<Tensor> {
    let rank = shape.len();
    let values = |s: &[usize]| {
        common::uniform(s, -2.0, 2.0, seed)
            .to_device(dev)
            .and_then(|t| t.reshape(s))
    };
    match view {
        View::Transposed(a, b) if rank >= 2 => {
            let (a, b) = (a % rank, b % rank);
            let mut stored = shape.to_vec();
            stored.swap(a, b);
            values(&stored)?.transpose(a as isize, b as isize)
        }
        View::Narrowed if rank >= 1 => {
            let mut stored = shape.to_vec();
            stored[0] += 2;
            values(&stored)?.narrow(0, 1, shape[0])
        }
        View::Reversed if rank >= 2 => {
            let stored: Vec<usize> = shape.iter().rev().copied().collect();
            let perm: Vec<usize> = (0..rank).rev().collect();
            values(&stored)?.permute(&perm)
        }
        _ => values(shape),
    }
}

/// Runs `f` on the CPU and on the GPU (when there is one) and checks they agree.
fn agree(
    what: &str,
    tol: f32,
    f: impl Fn(&Device) -> Result<Tensor>,
) -> std::result::Result<(), TestCaseError> {
    let read = |dev: &Device| f(dev).and_then(|t| Ok((t.shape().to_vec(), t.to_vec()?)));
    let cpu = read(&Device::cpu());
    let Some(gpu) = common::gpu() else {
        return Ok(());
    };
    ferrograd::set_binding_limit(&gpu, BINDING_LIMIT);
    match (cpu, read(&gpu)) {
        (Err(_), Err(_)) => Ok(()),
        (Ok(c), Err(e)) => Err(TestCaseError::fail(format!(
            "{what}: the CPU gave {:?} but the GPU failed: {e}",
            c.0
        ))),
        (Err(e), Ok(g)) => Err(TestCaseError::fail(format!(
            "{what}: the GPU gave {:?} but the CPU failed: {e}",
            g.0
        ))),
        (Ok((cs, cv)), Ok((gs, gv))) => {
            prop_assert_eq!(&cs, &gs, "{}: shapes", what);
            for (i, (&c, &g)) in cv.iter().zip(&gv).enumerate() {
                let ok =
                    (c.is_nan() && g.is_nan()) || c == g || (c - g).abs() <= tol * (1.0 + c.abs());
                prop_assert!(
                    ok,
                    "{}: element {} is {} on the CPU, {} on the GPU",
                    what,
                    i,
                    c,
                    g
                );
            }
            Ok(())
        }
    }
}

/// A shape that broadcasts against `s`: some axes set to 1, some leading axes dropped.
fn broadcastable(s: Vec<usize>) -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    let rank = s.len();
    (prop::collection::vec(any::<bool>(), rank), 0..=rank).prop_map(move |(ones, drop)| {
        let b: Vec<usize> = s
            .iter()
            .zip(&ones)
            .map(|(&d, &one)| if one { 1 } else { d })
            .skip(drop)
            .collect();
        (s.clone(), b)
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn unary(s in shape(4), v in view(), seed in any::<u64>(), op in 0..9usize) {
        agree(&format!("unary {op} on {s:?} {v:?}"), 1e-4, |dev| {
            let x = make(&s, &v, seed, dev)?;
            match op {
                0 => x.exp(),
                1 => x.relu(),
                2 => x.tanh(),
                3 => x.sigmoid(),
                4 => x.abs()?.sqrt(),
                5 => x.abs()?.add_scalar(1.0)?.log(),
                6 => x.gelu(),
                7 => x.clamp(-0.5, 0.75),
                _ => x.contiguous(),
            }
        })?;
    }

    #[test]
    fn binary((a, b) in shape(4).prop_flat_map(broadcastable), swap in any::<bool>(),
              v in view(), seed in any::<u64>(), op in 0..8usize) {
        let (a, b) = if swap { (b, a) } else { (a, b) };
        agree(&format!("binary {op} on {a:?} and {b:?} {v:?}"), 1e-4, |dev| {
            let x = make(&a, &v, seed, dev)?;
            let y = make(&b, &View::Dense, seed ^ 1, dev)?;
            match op {
                0 => x.add(&y),
                1 => x.sub(&y),
                2 => x.mul(&y),
                3 => x.div(&y.abs()?.add_scalar(0.5)?),
                4 => x.maximum(&y),
                5 => x.abs()?.pow(&y),
                6 => x.gt(&y),
                _ => Tensor::where_(&x.gt_scalar(0.0)?, &x, &y),
            }
        })?;
    }

    #[test]
    fn matmul(batch in prop::sample::select(vec![0usize, 1, 3]), m in dim(), k in dim(),
              n in dim(), bt in any::<bool>(), seed in any::<u64>()) {
        agree(&format!("matmul [{batch}, {m}, {k}] x [{k}, {n}] (b transposed: {bt})"), 1e-3, |dev| {
            let a = make(&[batch, m, k], &View::Dense, seed, dev)?;
            let b = match bt {
                true => make(&[n, k], &View::Dense, seed ^ 2, dev)?.t()?,
                false => make(&[k, n], &View::Dense, seed ^ 2, dev)?,
            };
            a.matmul(&b)
        })?;
    }

    #[test]
    fn reductions(s in shape(4), v in view(), seed in any::<u64>(), axis in -4isize..4,
                  keep in any::<bool>(), op in 0..8usize) {
        agree(&format!("reduction {op} on {s:?} axis {axis} {v:?}"), 1e-3, |dev| {
            let x = make(&s, &v, seed, dev)?;
            match op {
                0 => x.sum(axis, keep),
                1 => x.mean(axis, keep),
                2 => x.max(axis, keep),
                3 => x.argmin(axis, keep),
                4 => x.sum_all(),
                5 => x.softmax(axis),
                6 => x.log_softmax(axis),
                _ => x.max_all(),
            }
        })?;
    }

    #[test]
    fn indexing(s in shape(3), v in view(), seed in any::<u64>(), axis in 0..3isize,
                idx in prop::collection::vec(-1i32..8, 0..6), op in 0..3usize) {
        agree(&format!("indexing {op} on {s:?} axis {axis} with {idx:?} {v:?}"), 0.0, |dev| {
            let x = make(&s, &v, seed, dev)?;
            let i: Vec<i32> = idx.clone();
            let index = Tensor::from_vec(i.clone(), &[i.len()], dev)?;
            match op {
                0 => x.index_select(axis, &index),
                1 => index.one_hot(5),
                _ => {
                    // An index the shape of x along every axis but `axis`, which has len(idx).
                    let ax = axis.rem_euclid(x.rank().max(1) as isize) as usize;
                    let mut ishape = x.shape().to_vec();
                    if ishape.is_empty() { return x.gather(axis, &index); }
                    ishape[ax] = i.len();
                    let n: usize = ishape.iter().product();
                    let vals = (0..n).map(|j| i[j % i.len().max(1)]).collect();
                    x.gather(axis, &Tensor::from_vec(vals, &ishape, dev)?)
                }
            }
        })?;
    }

    #[test]
    fn joining(s in shape(3), v in view(), seed in any::<u64>(), axis in -3isize..3,
               parts in 1..4usize, stack in any::<bool>()) {
        agree(&format!("{} of {parts} x {s:?} on axis {axis} {v:?}",
                       if stack { "stack" } else { "cat" }), 0.0, |dev| {
            let ts = (0..parts)
                .map(|p| make(&s, &v, seed ^ p as u64, dev))
                .collect::<Result<Vec<_>>>()?;
            let refs: Vec<&Tensor> = ts.iter().collect();
            if stack { Tensor::stack(&refs, axis) } else { Tensor::cat(&refs, axis) }
        })?;
    }

    #[test]
    fn convolution(n in 0..3usize, c in 1..3usize, h in 1..8usize, w in 1..8usize,
                   o in 1..4usize, k in 1..4usize, stride in 1..4usize, pad in 0..3usize,
                   dil in 1..3usize, seed in any::<u64>(), transposed in any::<bool>()) {
        let what = format!("conv [{n}, {c}, {h}, {w}] k {k} s {stride} p {pad} d {dil} (t: {transposed})");
        agree(&what, 1e-3, |dev| {
            let x = make(&[n, c, h, w], &View::Dense, seed, dev)?;
            let opts = Conv2dOptions::new().stride(stride).padding(pad).dilation(dil);
            match transposed {
                false => x.conv2d(&make(&[o, c, k, k], &View::Dense, seed ^ 3, dev)?, None, &opts),
                true => x.conv_transpose2d(&make(&[c, o, k, k], &View::Dense, seed ^ 3, dev)?,
                                           None, &opts),
            }
        })?;
    }

    #[test]
    fn pooling(n in 0..3usize, c in 1..3usize, h in 1..8usize, w in 1..8usize,
               k in 1..4usize, stride in 1..4usize, pad in 0..2usize, seed in any::<u64>(),
               op in 0..3usize) {
        agree(&format!("pool {op} [{n}, {c}, {h}, {w}] k {k} s {stride} p {pad}"), 1e-4, |dev| {
            let x = make(&[n, c, h, w], &View::Dense, seed, dev)?;
            let opts = Pool2dOptions::new(k).stride(stride).padding(pad);
            match op {
                0 => x.max_pool2d(&opts),
                1 => x.avg_pool2d(&opts),
                _ => x.adaptive_avg_pool2d([k, stride]),
            }
        })?;
    }

    #[test]
    fn normalisation(s in shape(4), v in view(), seed in any::<u64>(), layer in any::<bool>()) {
        agree(&format!("{} norm on {s:?} {v:?}", if layer { "layer" } else { "batch" }), 1e-3, |dev| {
            let x = make(&s, &v, seed, dev)?;
            match layer {
                true => x.layer_norm(&s[s.len().saturating_sub(1)..], None, None, 1e-5),
                false => x.batch_norm(None, None, None, &BatchNormOptions::default()),
            }
        })?;
    }

    #[test]
    fn losses(rows in dim(), classes in dim(), seed in any::<u64>(),
              targets in prop::collection::vec(-1i32..8, 0..70), smooth in any::<bool>()) {
        agree(&format!("cross entropy [{rows}, {classes}] targets {targets:?}"), 1e-4, |dev| {
            let x = make(&[rows, classes], &View::Dense, seed, dev)?;
            let t: Vec<i32> = (0..rows).map(|r| *targets.get(r).unwrap_or(&0)).collect();
            let t = Tensor::from_vec(t, &[rows], dev)?;
            let s = if smooth { 0.1 } else { 0.0 };
            loss::cross_entropy_with_smoothing(&x, &t, s, Reduction::Mean)
        })?;
    }

    #[test]
    fn gradients((a, b) in shape(3).prop_flat_map(broadcastable), seed in any::<u64>(),
                 op in 0..4usize) {
        // The gradient of a broadcast op and a reduction, both backends.
        agree(&format!("gradient {op} on {a:?} and {b:?}"), 1e-3, |dev| {
            let x = make(&a, &View::Dense, seed, dev)?.requires_grad();
            let y = make(&b, &View::Dense, seed ^ 5, dev)?.requires_grad();
            let out = match op {
                0 => x.mul(&y)?,
                1 => x.sub(&y)?.tanh()?,
                2 => x.maximum(&y)?,
                _ => x.add(&y)?.softmax(-1)?,
            };
            let g = out.exp()?.sum_all()?.backward()?;
            let gx = g.get(&x).cloned().unwrap_or(Tensor::zeros(x.shape(), dev)?);
            let gy = g.get(&y).cloned().unwrap_or(Tensor::zeros(y.shape(), dev)?);
            Tensor::cat(&[&gx.flatten()?, &gy.flatten()?], 0)
        })?;
    }

    #[test]
    fn optimizers(n in prop::sample::select(vec![1usize, 7, 65, 4099, 9000]), kind in 0..5usize,
                  seed in any::<u64>()) {
        use ferrograd::nn::Parameter;
        use ferrograd::optim::*;
        agree(&format!("optimizer {kind} on {n} parameters"), 1e-4, |dev| {
            let w = Parameter::new(make(&[n], &View::Dense, seed, dev)?);
            let ps = vec![w.clone()];
            let mut opt: Box<dyn Optimizer> = match kind {
                0 => Box::new(Sgd::new(ps, SgdConfig { lr: 0.1, momentum: 0.9, nesterov: true, ..Default::default() })?),
                1 => Box::new(Adam::new(ps, AdamConfig { weight_decay: 0.01, ..Default::default() })?),
                2 => Box::new(AdamW::new(ps, AdamConfig::adamw())?),
                3 => Box::new(RmsProp::new(ps, RmsPropConfig { momentum: 0.5, centered: true, ..Default::default() })?),
                _ => Box::new(Adagrad::new(ps, AdagradConfig::default())?),
            };
            for _ in 0..3 {
                let v = w.value();
                let g = v.mul(&v)?.sum_all()?.backward()?;
                opt.step(&g)?;
            }
            Ok(w.value())
        })?;
    }
}
