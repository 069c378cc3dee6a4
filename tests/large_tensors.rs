//! Tensors larger than one binding (issue 25). A GPU tensor may be as large as one buffer
//! (`max_buffer_size`, 2 GiB on llvmpipe) although a kernel binds at most
//! `max_storage_buffer_binding_size` (128 MiB there): elementwise ops, copies, fills,
//! reductions, softmax, matmul, indexing, dropout and cross entropy run in pieces, each
//! binding the windows it touches; normalisation and the optimizer step are composed from
//! those. Each op here, on a 160 MB tensor, is compared with the CPU.

mod common;

use common::assert_close;
use ferrograd::{Device, Tensor};

const ROWS: usize = 5000;
const COLS: usize = 8000; // 40 M elements, 160 MB

/// `f` on the CPU and on the GPU, compared within `|a - e| <= atol + rtol |e|` (the GPU's f32
/// tree sums against the CPU's f64: a row sum of 8,000 values is good to ~1e-4 absolute).
fn agree(
    gpu: &Device,
    x: &Tensor,
    what: &str,
    (atol, rtol): (f32, f32),
    f: impl Fn(&Tensor) -> ferrograd::Result<Tensor>,
) {
    let expected = f(x).unwrap_or_else(|e| panic!("{what} on the CPU: {e}"));
    let got = f(&x.to_device(gpu).unwrap()).unwrap_or_else(|e| panic!("{what} on the GPU: {e}"));
    assert_eq!(got.shape(), expected.shape(), "{what}");
    let (g, e) = (got.to_vec().unwrap(), expected.to_vec().unwrap());
    assert_close(&g, &e, atol, rtol, what);
}

#[test]
fn ops_on_tensors_larger_than_one_binding() {
    let Some(gpu) = common::gpu() else { return };
    let x = common::uniform(&[ROWS, COLS], -1.0, 1.0, 40);
    let bias = common::uniform(&[COLS], -1.0, 1.0, 41);
    let b = bias.to_device(&gpu).unwrap();
    agree(&gpu, &x, "upload and read back", (0.0, 0.0), |x| {
        Ok(x.clone())
    });
    agree(&gpu, &x, "exp", (0.0, 1e-6), |x| x.exp());
    agree(&gpu, &x, "add a broadcast row", (0.0, 0.0), |x| {
        let b = if x.device().is_gpu() {
            b.clone()
        } else {
            bias.clone()
        };
        x.add(&b)
    });
    agree(&gpu, &x, "where", (0.0, 0.0), |x| {
        Tensor::where_(&x.gt_scalar(0.0)?, x, &x.mul_scalar(0.5)?)
    });
    agree(&gpu, &x, "copy of a narrowed view", (0.0, 0.0), |x| {
        x.narrow(1, 100, 7000)?.contiguous()
    });
    // Each output row of a transposed copy reads a column across the whole source: in tiles.
    agree(&gpu, &x, "copy of the transpose", (0.0, 0.0), |x| {
        x.t()?.contiguous()
    });
    agree(&gpu, &x, "exp of the transpose", (0.0, 1e-6), |x| {
        x.t()?.exp()
    });
    agree(&gpu, &x, "cat", (0.0, 0.0), |x| {
        Tensor::cat(&[&x.narrow(0, 0, 2000)?, &x.narrow(0, 2000, 3000)?], 0)
    });
    agree(&gpu, &x, "sum_all", (0.05, 1e-4), |x| x.sum_all());
    agree(&gpu, &x, "sum of rows", (1e-3, 1e-4), |x| x.sum(-1, false));
    agree(&gpu, &x, "max of rows", (0.0, 0.0), |x| x.max(1, true));
    agree(&gpu, &x, "softmax", (1e-9, 1e-4), |x| x.softmax(-1));
    agree(&gpu, &x, "log_softmax's gradient", (1e-7, 1e-3), |x| {
        let x = x.requires_grad();
        let g = x
            .log_softmax(-1)?
            .mul_scalar(0.5)?
            .exp()?
            .sum_all()?
            .backward()?;
        Ok(g.get(&x).unwrap().clone())
    });
    let ones = Tensor::ones(&[ROWS * COLS], &gpu).unwrap();
    assert_eq!(
        ones.sum_all().unwrap().to_scalar().unwrap(),
        (ROWS * COLS) as f32
    );
    let w = common::uniform(&[COLS, 3], -0.1, 0.1, 42);
    agree(&gpu, &x, "matmul", (1e-3, 1e-3), |x| {
        x.matmul(&w.to_device(x.device())?)
    });
    agree(&gpu, &x, "linear with bias and ReLU", (1e-3, 1e-3), |x| {
        let dev = x.device();
        let (wt, b) = (
            w.t()?.contiguous()?.to_device(dev)?,
            bias.narrow(0, 0, 3)?.to_device(dev)?,
        );
        x.linear(&wt, Some(&b), ferrograd::Activation::Relu)
    });
    agree(&gpu, &x, "batched matmul", (1e-3, 1e-3), |x| {
        x.reshape(&[500, 10, COLS])?
            .matmul(&w.to_device(x.device())?)
    });
    agree(&gpu, &x, "dropout", (0.0, 0.0), |x| {
        x.dropout_with(0.3, true, &mut ferrograd::Generator::new(7))
    });
    let labels: Vec<i32> = (0..ROWS).map(|i| (i * 37 % COLS) as i32).collect();
    agree(
        &gpu,
        &x,
        "cross entropy and its gradient",
        (1e-5, 1e-3),
        |x| {
            let x = x.requires_grad();
            let t = Tensor::from_slice(&labels, &[ROWS], x.device())?;
            let loss =
                ferrograd::nn::loss::cross_entropy(&x, &t, ferrograd::nn::loss::Reduction::Sum)?;
            let g = loss.backward()?.get(&x).unwrap().clone();
            Tensor::cat(&[&g.flatten()?, &loss.mul_scalar(1e-4)?.reshape(&[1])?], 0)
        },
    );
    // A table that fits one binding (80 MB), picked into an output that does not (144 MB).
    let rows: Vec<i32> = (0..9000).map(|i| (i * 7 % ROWS) as i32).collect();
    agree(&gpu, &x, "index_select", (0.0, 0.0), |x| {
        let table = x.narrow(1, 0, 4000)?.contiguous()?;
        table.index_select(0, &Tensor::from_slice(&rows, &[9000], x.device())?)
    });
    agree(&gpu, &x, "gather", (0.0, 0.0), |x| {
        let cols: Vec<i32> = (0..ROWS * 3000).map(|i| (i * 13 % COLS) as i32).collect();
        x.gather(1, &Tensor::from_vec(cols, &[ROWS, 3000], x.device())?)
    });
    agree(&gpu, &x, "one_hot", (0.0, 0.0), |x| {
        Tensor::from_slice(&labels, &[ROWS], x.device())?.one_hot(COLS)
    });
    // Rows picked from an input larger than one binding (any row may be read): in parts.
    agree(&gpu, &x, "index_select from the whole", (0.0, 0.0), |x| {
        x.index_select(0, &Tensor::from_slice(&rows[..10], &[10], x.device())?)
    });
    agree(&gpu, &x, "gather from the whole", (0.0, 0.0), |x| {
        let picks: Vec<i32> = (0..COLS).map(|i| (i * 31 % ROWS) as i32).collect();
        x.gather(0, &Tensor::from_vec(picks, &[1, COLS], x.device())?)
    });
    let bad = Tensor::from_slice(&[1, 5000], &[2], &gpu).unwrap();
    let m = x
        .to_device(&gpu)
        .unwrap()
        .index_select(0, &bad)
        .and_then(|t| t.to_vec());
    let m = m.unwrap_err().to_string();
    assert!(
        m.starts_with("index_select: index 5000 is out of range"),
        "{m}"
    );
    agree(&gpu, &x, "layer_norm", (1e-4, 1e-4), |x| {
        x.layer_norm(&[COLS], None, None, 1e-5)
    });
    agree(&gpu, &x, "batch_norm and its gradient", (1e-4, 1e-3), |x| {
        let x = x.reshape(&[ROWS, 8, 1000])?.requires_grad();
        let opts = ferrograd::BatchNormOptions::default();
        let y = x.batch_norm(None, None, None, &opts)?;
        let g = y.mul(&y)?.sum_all()?.backward()?.get(&x).unwrap().clone();
        Tensor::cat(&[&y.flatten()?.narrow(0, 0, 1000)?, &g.flatten()?], 0)
    });
    // With AMSGrad and maximize, so the composed step runs both flags' branches.
    agree(&gpu, &x, "two Adam steps", (1e-5, 1e-4), |x| {
        use ferrograd::optim::{Adam, AdamConfig, Optimizer};
        let w = ferrograd::nn::Parameter::new(x.clone());
        let cfg = AdamConfig {
            amsgrad: true,
            maximize: true,
            ..Default::default()
        };
        let mut opt = Adam::new(vec![w.clone()], cfg)?;
        for _ in 0..2 {
            let v = w.value();
            opt.step(&v.mul(&v)?.sum_all()?.backward()?)?;
        }
        Ok(w.value())
    });
}
