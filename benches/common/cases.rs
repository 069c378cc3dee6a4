//! The benchmark cases, shared by the criterion benches (one file per op family) and by
//! `examples/bench_report.rs`, so both time the same work. A case builds its inputs on a device
//! once, outside the clock, and returns the closure that is timed; `work` is what one run does,
//! in FLOP or in bytes moved, for an honest throughput label.

use ferrograd::nn::{loss, Module};
use ferrograd::optim::{Adam, AdamConfig, GradScaler, GradScalerConfig, Optimizer};
use ferrograd::{manual_seed, Conv2dOptions, DType, Device, Generator, Tensor};

/// What one run of a case does.
#[derive(Clone, Copy, Debug)]
pub enum Work {
    /// Floating-point operations (a multiply-add is two).
    Flops(f64),
    /// Bytes read and written, counting each f32 of each operand once.
    Bytes(f64),
    /// Images through a training step.
    Images(f64),
    /// Ops launched (for launch overhead: the rate shows as time per op).
    Ops(f64),
}

/// A timed closure: one run, returning a tensor whose readiness means the run is done.
pub type Run = Box<dyn FnMut() -> Tensor>;

pub struct Case {
    /// `matmul`, `conv2d`, `elementwise/relu`, ...
    pub family: String,
    /// The size as shown (`512`, `64x784x256`, `1e6`).
    pub size: String,
    /// Elements of the main operand, to order sizes when finding a crossover.
    pub scale: f64,
    pub work: Work,
    /// Builds the inputs on a device and returns the run.
    pub setup: Box<dyn Fn(&Device) -> Run>,
}

fn rand(shape: &[usize], seed: u64, dev: &Device) -> Tensor {
    let mut g = Generator::new(seed);
    Tensor::rand_with(shape, -1.0, 1.0, &mut g, dev).expect("random input")
}

fn sci(n: usize) -> String {
    let e = (n as f64).log10().round() as i32;
    if 10usize.pow(e as u32) == n {
        format!("1e{e}")
    } else {
        n.to_string()
    }
}

/// The family name of a case in `dtype`: `matmul`, `matmul_f16`.
fn in_dtype(family: &str, dtype: DType) -> String {
    match dtype {
        DType::F32 => family.into(),
        d => format!("{family}_{}", d.to_string().to_lowercase()),
    }
}

/// Square products n×n·n×n, and the two MNIST linear layers at batch 64.
pub fn matmul(square: &[usize]) -> Vec<Case> {
    matmul_in(square, DType::F32)
}

/// [`matmul`] with operands of `dtype` (an `F16` product accumulates in f32).
pub fn matmul_in(square: &[usize], dtype: DType) -> Vec<Case> {
    let mut shapes: Vec<(usize, usize, usize, String)> =
        square.iter().map(|&n| (n, n, n, n.to_string())).collect();
    shapes.push((64, 784, 256, "64x784x256".into()));
    shapes.push((64, 3136, 128, "64x3136x128".into()));
    shapes
        .into_iter()
        .map(|(m, k, n, size)| Case {
            family: in_dtype("matmul", dtype),
            size,
            scale: (m * k + k * n) as f64,
            work: Work::Flops(2.0 * (m * k * n) as f64),
            setup: Box::new(move |dev| {
                let (a, b) = (rand(&[m, k], 1, dev), rand(&[k, n], 2, dev));
                let (a, b) = (a.to_dtype(dtype).expect("a"), b.to_dtype(dtype).expect("b"));
                Box::new(move || a.matmul(&b).expect("matmul"))
            }),
        })
        .collect()
}

/// The MNIST CNN's two conv layers (3×3, padding 1, batch 64), forward and backward: weight and
/// bias gradients always, the input gradient for the second layer only (the first layer's
/// input is the image), as in training.
pub fn conv2d() -> Vec<Case> {
    conv2d_in(DType::F32)
}

/// [`conv2d`] with input, weight and bias of `dtype`.
pub fn conv2d_in(dtype: DType) -> Vec<Case> {
    [(1usize, 32usize, 28usize), (32, 64, 14)]
        .into_iter()
        .map(|(cin, cout, hw)| {
            let forward = 2.0 * (64 * cout * hw * hw * cin * 9) as f64;
            let grads = if cin == 1 { 2.0 } else { 3.0 }; // fwd + dW (+ dX)
            Case {
                family: in_dtype("conv2d_fwd_bwd", dtype),
                size: format!("64x{cin}x{hw}x{hw}->{cout}"),
                scale: (64 * cin * hw * hw) as f64,
                work: Work::Flops(grads * forward),
                setup: Box::new(move |dev| {
                    let r =
                        |shape: &[usize], seed| rand(shape, seed, dev).to_dtype(dtype).expect("x");
                    let x = r(&[64, cin, hw, hw], 3);
                    let x = if cin == 1 { x } else { x.requires_grad() };
                    let w = r(&[cout, cin, 3, 3], 4).requires_grad();
                    let b = r(&[cout], 5).requires_grad();
                    let o = Conv2dOptions::new().padding(1);
                    Box::new(move || {
                        let y = x.conv2d(&w, Some(&b), &o).expect("conv2d");
                        let g = y.sum_all().expect("sum").backward().expect("backward");
                        g.get(&w).expect("weight gradient").clone()
                    })
                }),
            }
        })
        .collect()
}

/// Launch overhead: `ops` tiny ops (64 elements each, one kernel each) recorded back to back
/// and synchronized once, as a training step's small kernels are; time per op is the cost of
/// one dispatch inside a step.
pub fn dispatch_chain(ops: usize) -> Case {
    Case {
        family: "dispatch".into(),
        size: format!("{ops}x64"),
        scale: ops as f64,
        work: Work::Ops(ops as f64),
        setup: Box::new(move |dev| {
            let x = rand(&[64], 8, dev);
            Box::new(move || {
                let mut y = x.clone();
                for _ in 0..ops {
                    y = y.add_scalar(1.0).expect("add_scalar");
                }
                y
            })
        }),
    }
}

/// Unary and binary elementwise ops over `sizes` elements.
pub fn elementwise(sizes: &[usize]) -> Vec<Case> {
    type Op = fn(&Tensor, &Tensor) -> Tensor;
    let ops: [(&str, f64, Op); 7] = [
        ("add", 12.0, |a, b| a.add(b).expect("add")),
        ("relu", 8.0, |a, _| a.relu().expect("relu")),
        ("leaky_relu", 8.0, |a, _| {
            a.leaky_relu(0.2).expect("leaky_relu")
        }),
        // The tanh form, as bench_torch.py's `approximate="tanh"` and BENCHMARKS.md's rows.
        ("gelu", 8.0, |a, _| a.gelu_tanh().expect("gelu")),
        ("exp", 8.0, |a, _| a.exp().expect("exp")),
        ("sigmoid", 8.0, |a, _| a.sigmoid().expect("sigmoid")),
        // A mask, as backward builds them: 4 bytes read, a 1-byte Bool written.
        ("gt_scalar", 5.0, |a, _| {
            a.gt_scalar(0.5).expect("gt_scalar")
        }),
    ];
    let mut cases = Vec::new();
    for (name, bytes, op) in ops {
        for &n in sizes {
            cases.push(Case {
                family: format!("elementwise/{name}"),
                size: sci(n),
                scale: n as f64,
                work: Work::Bytes(bytes * n as f64),
                setup: Box::new(move |dev| {
                    let (a, b) = (rand(&[n], 6, dev), rand(&[n], 7, dev));
                    Box::new(move || op(&a, &b))
                }),
            });
        }
    }
    // `where_(cond, a, b)`: a Bool and two f32 read, one f32 written.
    for &n in sizes {
        cases.push(Case {
            family: "elementwise/where".into(),
            size: sci(n),
            scale: n as f64,
            work: Work::Bytes(13.0 * n as f64),
            setup: Box::new(move |dev| {
                let (a, b) = (rand(&[n], 6, dev), rand(&[n], 7, dev));
                let cond = a.gt_scalar(0.5).expect("gt_scalar");
                Box::new(move || Tensor::where_(&cond, &a, &b).expect("where_"))
            }),
        });
    }
    cases
}

/// Softmax along the rows of `[rows, cols]`.
pub fn softmax(shapes: &[(usize, usize)]) -> Vec<Case> {
    shapes
        .iter()
        .map(|&(r, c)| Case {
            family: "softmax".into(),
            size: format!("{r}x{c}"),
            scale: (r * c) as f64,
            work: Work::Bytes(8.0 * (r * c) as f64),
            setup: Box::new(move |dev| {
                let x = rand(&[r, c], 8, dev);
                Box::new(move || x.softmax(-1).expect("softmax"))
            }),
        })
        .collect()
}

/// `sum_all` over n elements, and row sums of `[n / 1000, 1000]`.
pub fn reduce(sizes: &[usize]) -> Vec<Case> {
    let mut cases = Vec::new();
    for &n in sizes {
        cases.push(Case {
            family: "reduce/sum_all".into(),
            size: sci(n),
            scale: n as f64,
            work: Work::Bytes(4.0 * n as f64),
            setup: Box::new(move |dev| {
                let x = rand(&[n], 9, dev);
                Box::new(move || x.sum_all().expect("sum_all"))
            }),
        });
        let rows = (n / 1000).max(1);
        cases.push(Case {
            family: "reduce/sum_rows".into(),
            size: format!("{rows}x1000"),
            scale: (rows * 1000) as f64,
            work: Work::Bytes(4.0 * (rows * 1000 + rows) as f64),
            setup: Box::new(move |dev| {
                let x = rand(&[rows, 1000], 10, dev);
                Box::new(move || x.sum(1, false).expect("sum"))
            }),
        });
    }
    cases
}

/// One whole training step (forward, cross entropy, backward, Adam) of each MNIST model at
/// batch 64 on random images; the models are `examples/common/mnist.rs`'s (`build`).
pub fn train_step<M: Module + 'static>(name: &str, build: fn(&Device) -> M) -> Case {
    train_step_in(name, build, DType::F32)
}

/// [`train_step`] in mixed precision when `dtype` is a half, as `--precision` trains: the
/// model and images in `dtype`, the loss in f32, f32 master weights, and for `F16` a
/// `GradScaler`.
pub fn train_step_in<M: Module + 'static>(
    name: &str,
    build: fn(&Device) -> M,
    dtype: DType,
) -> Case {
    Case {
        family: in_dtype("train_step", dtype),
        size: format!("{name}/64"),
        scale: 64.0,
        work: Work::Images(64.0),
        setup: Box::new(move |dev| {
            manual_seed(1);
            let model = build(dev);
            model.to_dtype(dtype).expect("to_dtype");
            let mut opt = Adam::new(model.parameters(), AdamConfig::default()).expect("adam");
            let mut scaler = (dtype == DType::F16)
                .then(|| GradScaler::new(dev, GradScalerConfig::default()).expect("scaler"));
            let x = rand(&[64, 1, 28, 28], 11, dev).to_dtype(dtype).expect("x");
            let labels: Vec<i32> = (0..64).map(|i| i % 10).collect();
            let y = Tensor::from_vec(labels, &[64], dev).expect("labels");
            Box::new(move || {
                let logits = model.forward(&x).expect("forward");
                let logits = logits.to_dtype(DType::F32).expect("f32 logits");
                let l = loss::cross_entropy(&logits, &y, loss::Reduction::Mean).expect("loss");
                match &mut scaler {
                    Some(s) => {
                        let mut g = s.scale(&l).expect("scale").backward().expect("backward");
                        s.step(&mut opt, &mut g).expect("step");
                        s.update().expect("update");
                    }
                    None => opt.step(&l.backward().expect("backward")).expect("step"),
                }
                l
            })
        }),
    }
}
