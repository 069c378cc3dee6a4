//! A CNN at a large batch (issue 25): convolution splits its im2col columns over the batch
//! within a memory budget, so the MNIST CNN's evaluation at batch 1,000 runs on llvmpipe, whose
//! largest binding (128 MiB) is smaller than the second conv's columns (225 MB). The chunked
//! results and gradients equal the ones computed a small batch at a time.

mod common;

use common::{assert_close, normal};
use ferrograd::{Conv2dOptions, Device, Pool2dOptions, Result, Tensor};

/// The MNIST CNN of the examples, functionally: conv 1→32, pool, conv 32→64, pool, 3136→128→10.
struct Cnn {
    w: [Tensor; 4],
    b: [Tensor; 4],
}

impl Cnn {
    fn new(dev: &Device) -> Cnn {
        let t = |s: &[usize], seed| {
            normal(s, seed)
                .mul_scalar(0.1)
                .unwrap()
                .to_device(dev)
                .unwrap()
        };
        Cnn {
            w: [
                t(&[32, 1, 3, 3], 1),
                t(&[64, 32, 3, 3], 2),
                t(&[128, 3136], 3),
                t(&[10, 128], 4),
            ],
            b: [t(&[32], 5), t(&[64], 6), t(&[128], 7), t(&[10], 8)],
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let same = Conv2dOptions::new().padding(1);
        let pool = Pool2dOptions::new(2);
        let h = x
            .conv2d(&self.w[0], Some(&self.b[0]), &same)?
            .relu()?
            .max_pool2d(&pool)?;
        let h = h
            .conv2d(&self.w[1], Some(&self.b[1]), &same)?
            .relu()?
            .max_pool2d(&pool)?;
        let h = h.reshape(&[x.shape()[0], 3136])?;
        let relu = ferrograd::Activation::Relu;
        let h = h.linear(&self.w[2], Some(&self.b[2]), relu)?;
        h.linear(
            &self.w[3],
            Some(&self.b[3]),
            ferrograd::Activation::Identity,
        )
    }
}

fn images(n: usize, dev: &Device) -> Tensor {
    common::uniform(&[n, 1, 28, 28], 0.0, 1.0, 11)
        .to_device(dev)
        .unwrap()
}

/// The forward pass at batch 1,000 equals the same images 100 at a time.
fn cnn_forward_at_batch_1000(dev: &Device) {
    let cnn = Cnn::new(dev);
    let x = images(1000, dev);
    let all = cnn.forward(&x).unwrap().to_vec().unwrap();
    let mut parts = Vec::new();
    for s in (0..1000).step_by(100) {
        parts.extend(
            cnn.forward(&x.narrow(0, s, 100).unwrap())
                .unwrap()
                .to_vec()
                .unwrap(),
        );
    }
    assert_close(
        &all,
        &parts,
        1e-4,
        1e-4,
        "batch 1,000 against batches of 100",
    );
}

device_tests!(cnn_forward_at_batch_1000);

/// Gradients through a chunked conv are the sums over the chunks (CPU: the backward pass at
/// this size is minutes on llvmpipe).
#[test]
fn chunked_conv_gradients() {
    let dev = Device::cpu();
    let x = normal(&[600, 32, 14, 14], 12).requires_grad(); // columns: 600 x 288 x 196 floats
    let w = normal(&[8, 32, 3, 3], 13).requires_grad();
    let same = Conv2dOptions::new().padding(1);
    let loss = |x: &Tensor| -> Tensor {
        x.conv2d(&w, None, &same)
            .unwrap()
            .tanh()
            .unwrap()
            .sum_all()
            .unwrap()
    };
    let g = loss(&x).backward().unwrap();
    let (gx, gw) = (g.get(&x).unwrap().to_vec().unwrap(), g.get(&w).unwrap());
    let mut gx_parts = Vec::new();
    let mut gw_sum = Tensor::zeros(w.shape(), &dev).unwrap();
    for s in (0..600).step_by(100) {
        let xs = x.detach().narrow(0, s, 100).unwrap().requires_grad();
        let gs = loss(&xs).backward().unwrap();
        gx_parts.extend(gs.get(&xs).unwrap().to_vec().unwrap());
        gw_sum = gw_sum.add(gs.get(&w).unwrap()).unwrap();
    }
    assert_close(&gx, &gx_parts, 1e-5, 1e-4, "input gradient");
    let (gw, gw_sum) = (gw.to_vec().unwrap(), gw_sum.to_vec().unwrap());
    assert_close(&gw, &gw_sum, 1e-2, 1e-4, "weight gradient");
}

/// At batch 4,096 the first conv's output alone (411 MB) is three bindings of llvmpipe's: the
/// matmul, the ReLU and the pooling over it run in pieces. The logits equal the CPU's.
#[test]
fn cnn_forward_at_batch_4096() {
    let Some(gpu) = common::gpu() else { return };
    let cpu = Device::cpu();
    let expected = Cnn::new(&cpu)
        .forward(&images(4096, &cpu))
        .unwrap()
        .to_vec()
        .unwrap();
    let got = Cnn::new(&gpu)
        .forward(&images(4096, &gpu))
        .unwrap()
        .to_vec()
        .unwrap();
    assert_close(
        &got,
        &expected,
        1e-3,
        1e-3,
        "batch 4,096 on the GPU against the CPU",
    );
}
