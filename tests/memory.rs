//! Memory stays flat: a loop of 1,000 op chains, and 200 training steps, leave `memory_stats().live_bytes` where it
//! started, and after warm-up the GPU pool serves every buffer. The counters are per device and
//! process-wide, so this test has a binary of its own and runs its devices one after the other.

mod common;
use common::normal;
use ferrograd::{Device, Tensor};

fn memory_stays_flat(dev: &Device) {
    // Warm the pool, then 1,000 op chains must leave live bytes where they started.
    let x = normal(&[64, 33], 1).to_device(dev).unwrap();
    let w = normal(&[33, 16], 2).to_device(dev).unwrap();
    let step = || {
        x.matmul(&w)
            .unwrap()
            .relu()
            .unwrap()
            .softmax(-1)
            .unwrap()
            .sum_all()
            .unwrap()
    };
    // Warm up the way the loop runs: the previous result is alive while the next one is made.
    let mut last = Some(step());
    last = Some(step()).or(last);
    drop(last);
    dev.synchronize().unwrap();
    let before = dev.memory_stats();
    let mut last = None;
    for _ in 0..1000 {
        last = Some(step());
    }
    drop(last);
    dev.synchronize().unwrap();
    let after = dev.memory_stats();
    if dev.is_gpu() {
        assert_eq!(
            after.live_bytes, before.live_bytes,
            "live bytes grew: {before:?} -> {after:?}"
        );
        assert_eq!(
            after.created_buffers, before.created_buffers,
            "the pool should serve every buffer"
        );
    } else {
        assert_eq!(
            after.live_bytes, before.live_bytes,
            "live bytes grew: {before:?} -> {after:?}"
        );
    }
}

/// Training steps (forward, backward, update) free their graphs: live bytes after 200 steps
/// are where they were after the warm-up steps.
fn training_stays_flat(dev: &Device) {
    let x = normal(&[32, 8], 3).to_device(dev).unwrap();
    let y = normal(&[32, 1], 4).to_device(dev).unwrap();
    let mut w1 = normal(&[8, 16], 5).to_device(dev).unwrap().requires_grad();
    let mut w2 = normal(&[16, 1], 6).to_device(dev).unwrap().requires_grad();
    let mut step = || {
        let h = x.matmul(&w1).unwrap().tanh().unwrap();
        let loss = h
            .matmul(&w2)
            .unwrap()
            .sub(&y)
            .unwrap()
            .square()
            .unwrap()
            .mean_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        ferrograd::no_grad(|| {
            let update = |w: &Tensor| {
                let g = grads.get(w).unwrap().mul_scalar(0.01).unwrap();
                w.sub(&g).unwrap().requires_grad()
            };
            w1 = update(&w1);
            w2 = update(&w2);
        });
        loss
    };
    for _ in 0..3 {
        step();
    }
    dev.synchronize().unwrap();
    let before = dev.memory_stats();
    let mut last = 0.0;
    for _ in 0..200 {
        last = step().to_scalar().unwrap();
    }
    assert!(last.is_finite());
    dev.synchronize().unwrap();
    let after = dev.memory_stats();
    assert_eq!(
        after.live_bytes, before.live_bytes,
        "training on {dev}: live bytes grew: {before:?} -> {after:?}"
    );
    if dev.is_gpu() {
        assert_eq!(
            after.created_buffers, before.created_buffers,
            "training on {dev}: the pool should serve every buffer"
        );
    }
}

/// A model trained with Adam: after the first steps no buffer is created (the optimizer's new
/// parameter and state buffers come from the pool) and live bytes stay flat.
fn adam_training_stays_flat(dev: &Device) {
    use ferrograd::nn::{loss, Linear, Module, ReLU, Sequential};
    use ferrograd::optim::{Adam, AdamConfig, Optimizer};
    let x = normal(&[32, 8], 3).to_device(dev).unwrap();
    let y = normal(&[32, 1], 4).to_device(dev).unwrap();
    let model = Sequential::new()
        .add(Linear::new(8, 16, true, dev).unwrap())
        .add(ReLU)
        .add(Linear::new(16, 1, true, dev).unwrap());
    let mut opt = Adam::new(model.parameters(), AdamConfig::default()).unwrap();
    let mut step = || {
        let l = loss::mse(&model.forward(&x).unwrap(), &y, loss::Reduction::Mean).unwrap();
        opt.step(&l.backward().unwrap()).unwrap();
        l
    };
    for _ in 0..3 {
        step();
    }
    dev.synchronize().unwrap();
    let before = dev.memory_stats();
    let first = step().to_scalar().unwrap();
    let mut last = first;
    for _ in 0..100 {
        last = step().to_scalar().unwrap();
    }
    assert!(
        last < first,
        "Adam did not reduce the loss: {first} -> {last}"
    );
    dev.synchronize().unwrap();
    let after = dev.memory_stats();
    assert_eq!(
        after.live_bytes, before.live_bytes,
        "Adam on {dev}: live bytes grew: {before:?} -> {after:?}"
    );
    if dev.is_gpu() {
        assert_eq!(
            after.created_buffers, before.created_buffers,
            "Adam on {dev}: the pool should serve every buffer"
        );
    }
}

/// Backward frees each node's saved tensors: with the loss still alive (and so its graph's
/// nodes), only the loss's own storage remains afterwards.
fn backward_frees_the_graph(dev: &Device) {
    let x = normal(&[128, 128], 7)
        .to_device(dev)
        .unwrap()
        .requires_grad();
    dev.synchronize().unwrap();
    let before = dev.memory_stats().live_bytes;
    let mut h = x.clone();
    for _ in 0..8 {
        h = h.tanh().unwrap().mul_scalar(1.5).unwrap(); // 2 x 64 KiB saved per round
    }
    let loss = h.sum_all().unwrap();
    drop(h);
    let with_graph = dev.memory_stats().live_bytes;
    assert!(
        with_graph - before > 1 << 20,
        "the graph should hold > 1 MiB: {before} -> {with_graph}"
    );
    drop(loss.backward().unwrap());
    dev.synchronize().unwrap();
    let after = dev.memory_stats().live_bytes;
    assert!(
        after - before <= 1024,
        "{dev}: backward left {} bytes of graph alive ({before} -> {with_graph} -> {after})",
        after - before
    );
    drop(loss);
}

#[test]
fn cpu_then_gpu() {
    memory_stays_flat(&Device::cpu());
    training_stays_flat(&Device::cpu());
    adam_training_stays_flat(&Device::cpu());
    backward_frees_the_graph(&Device::cpu());
    cpu_pool_recycles(&Device::cpu());
    bytes_by_dtype(&Device::cpu());
    if let Some(dev) = common::gpu() {
        bytes_by_dtype(&dev);
        memory_stays_flat(&dev);
        training_stays_flat(&dev);
        adam_training_stays_flat(&dev);
        backward_frees_the_graph(&dev);
        gpu_step_is_batched(&dev);
        fused_linear_saves_dispatches(&dev);
    }
}

/// `memory_stats().by_dtype` counts a tensor's bytes under its dtype, a half at 2 bytes an
/// element (the GPU's are packed), and gives them back when it drops.
fn bytes_by_dtype(dev: &Device) {
    use ferrograd::DType;
    let n = 1 << 16; // a size class of its own on both backends
    let before = dev.memory_stats();
    let f = Tensor::zeros(&[n], dev).unwrap();
    let h = Tensor::zeros_dtype(&[n], DType::F16, dev).unwrap();
    let i = Tensor::zeros_dtype(&[n], DType::I32, dev).unwrap();
    let during = dev.memory_stats();
    let grew = |d: DType| during.live_bytes_of(d) - before.live_bytes_of(d);
    assert_eq!(grew(DType::F32), 4 * n as u64, "{dev}");
    assert_eq!(grew(DType::F16), 2 * n as u64, "{dev}");
    assert_eq!(grew(DType::I32), 4 * n as u64, "{dev}");
    let total: u64 = during.by_dtype.iter().map(|(_, b)| b).sum();
    assert_eq!(
        total, during.live_bytes,
        "{dev}: the dtypes add up to the live bytes"
    );
    drop((f, h, i));
    let after = dev.memory_stats();
    for d in [DType::F32, DType::F16, DType::I32] {
        assert_eq!(
            after.live_bytes_of(d),
            before.live_bytes_of(d),
            "{dev}: {d}"
        );
    }
}

/// Linear followed by ReLU in a `Sequential` is one fused matmul: two dispatches fewer than
/// the same product with its bias add and ReLU run as ops of their own.
fn fused_linear_saves_dispatches(dev: &Device) {
    use ferrograd::nn::{Linear, Module, ReLU, Sequential};
    let layer = Linear::new(24, 16, true, dev).unwrap();
    let (w, b) = (layer.weight.value(), layer.bias.as_ref().unwrap().value());
    let net = Sequential::new().add(layer).add(ReLU);
    let x = normal(&[5, 24], 3).to_device(dev).unwrap();
    let dispatches = |f: &dyn Fn() -> Tensor| {
        let before = dev.dispatch_stats().dispatches;
        let y = ferrograd::no_grad(f);
        let n = dev.dispatch_stats().dispatches - before;
        (n, y.to_vec().unwrap())
    };
    let (fused, got) = dispatches(&|| net.forward(&x).unwrap());
    let (plain, want) = dispatches(&|| {
        let y = x.matmul(&w.t().unwrap()).unwrap().add(&b).unwrap();
        y.relu().unwrap()
    });
    common::assert_close(&got, &want, 1e-5, 1e-5, "fused linear");
    assert_eq!(
        plain - fused,
        2,
        "Linear-ReLU should save the bias and ReLU passes ({fused} against {plain} dispatches)"
    );
}

/// A small CNN training step on the GPU, as the MNIST example runs it (a fresh batch uploaded,
/// forward, backward, Adam): once warm it compiles no pipeline, creates no buffer, reads
/// nothing back, and goes out in a few submits however many kernels it records.
fn gpu_step_is_batched(dev: &Device) {
    use ferrograd::nn::{loss, Conv2d, Dropout, Flatten, Linear, MaxPool2d, Module, ReLU};
    use ferrograd::optim::{Adam, AdamConfig, Optimizer};
    use ferrograd::{Conv2dOptions, Pool2dOptions};
    let same = Conv2dOptions::new().padding(1);
    let model = ferrograd::nn::Sequential::new()
        .add(Conv2d::new(1, 4, 3, same, true, dev).unwrap())
        .add(ReLU)
        .add(MaxPool2d(Pool2dOptions::new(2)))
        .add(Flatten)
        .add(Linear::new(4 * 6 * 6, 16, true, dev).unwrap())
        .add(ReLU)
        .add(Dropout::new(0.5).unwrap())
        .add(Linear::new(16, 10, true, dev).unwrap());
    let mut opt = Adam::new(model.parameters(), AdamConfig::default()).unwrap();
    let labels = Tensor::from_vec((0..8).map(|i| i % 10).collect(), &[8], dev).unwrap();
    let mut seed = 20;
    let mut step = || {
        seed += 1;
        let x = normal(&[8, 1, 12, 12], seed).to_device(dev).unwrap(); // the loader's upload
        let logits = model.forward(&x).unwrap();
        let l = loss::cross_entropy(&logits, &labels, loss::Reduction::Mean).unwrap();
        opt.step(&l.backward().unwrap()).unwrap();
        l
    };
    // Warm up as measured: the last loss stays alive while the next step runs.
    let mut last = step();
    for _ in 0..2 {
        last = step();
    }
    dev.synchronize().unwrap();
    let (before, mem_before) = (dev.dispatch_stats(), dev.memory_stats());
    const STEPS: u64 = 4;
    for _ in 0..STEPS {
        last = step();
    }
    let after = dev.dispatch_stats();
    let per_step = |a: u64, b: u64| (a - b) as f64 / STEPS as f64;
    eprintln!(
        "gpu step: {:.0} dispatches, {:.1} submits per step",
        per_step(after.dispatches, before.dispatches),
        per_step(after.submits, before.submits)
    );
    assert_eq!(
        after.pipelines, before.pipelines,
        "a warm step compiled a pipeline"
    );
    assert_eq!(
        after.readbacks, before.readbacks,
        "a step read back from the GPU"
    );
    assert!(
        per_step(after.dispatches, before.dispatches) >= 30.0,
        "expected a step of many kernels: {before:?} -> {after:?}"
    );
    assert!(
        per_step(after.submits, before.submits) <= 2.0,
        "a step should go out in a submit or two: {before:?} -> {after:?}"
    );
    assert!(last.to_scalar().unwrap().is_finite());
    assert_eq!(
        dev.memory_stats().created_buffers,
        mem_before.created_buffers,
        "a warm step created a buffer"
    );
}

/// The CPU keeps large freed buffers for reuse (a training step allocates the same ones every
/// step), hands them out again with the right contents, and `empty_cache` frees them.
fn cpu_pool_recycles(dev: &Device) {
    const LEN: usize = 70_001; // a length no other test here allocates
    let x = Tensor::full(&[LEN], 1.5, dev).unwrap();
    let pooled = dev.memory_stats().pooled_bytes;
    drop(x.add_scalar(1.0).unwrap());
    let after_drop = dev.memory_stats();
    assert!(
        after_drop.pooled_bytes >= pooled + 4 * LEN as u64,
        "a freed {LEN}-element buffer should be kept: {pooled} -> {after_drop:?}"
    );
    // The next tensor of that length reuses it, and its contents are its own.
    let y = x.mul_scalar(2.0).unwrap();
    assert!(y.to_vec().unwrap().iter().all(|&v| v == 3.0));
    let z = Tensor::zeros(&[LEN], dev).unwrap().add(&x).unwrap();
    assert!(z.to_vec().unwrap().iter().all(|&v| v == 1.5));
    drop((y, z));
    dev.empty_cache();
    assert_eq!(
        dev.memory_stats().pooled_bytes,
        0,
        "empty_cache frees the pool"
    );
}
