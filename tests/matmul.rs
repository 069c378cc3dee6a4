//! matmul on both devices: sizes that are 1, prime and not multiples of the tiles, every GPU
//! kernel (subgroup, vec4 and strided), transposed and broadcast operands, batches, 1-D
//! operands, a grid past 65,535 workgroups, the fused bias + activation epilogue (`linear`);
//! the CPU against a plain f64 reference.

mod common;
use common::{assert_close, normal, parity};
use ferrograd::{Activation, Device, MatmulKernels, Tensor};

/// GPU (or CPU) `a.matmul(b)` against the CPU result.
fn check(dev: &Device, a: &Tensor, b: &Tensor, what: &str) {
    parity(dev, &[a, b], |t| t[0].matmul(&t[1]), 1e-4, 1e-4, what);
}

/// Plain f64 triple loop over row-major `a` (m×k) and `b` (k×n).
fn reference(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k)
                .map(|p| f64::from(a[i * k + p]) * f64::from(b[p * n + j]))
                .sum::<f64>() as f32;
        }
    }
    out
}

#[test]
fn cpu_matches_f64_reference() {
    for (s, &(m, k, n)) in [(1, 1, 1), (7, 13, 5), (64, 65, 63), (128, 96, 130)]
        .iter()
        .enumerate()
    {
        let a = normal(&[m, k], s as u64);
        let b = normal(&[k, n], 50 + s as u64);
        let got = a.matmul(&b).unwrap().to_vec().unwrap();
        let want = reference(&a.to_vec().unwrap(), &b.to_vec().unwrap(), m, k, n);
        assert_close(&got, &want, 1e-4, 1e-4, &format!("cpu matmul {m}x{k}x{n}"));
    }
}

fn shapes(dev: &Device) {
    // n % 4 == 0 takes the subgroup kernel (16 x 128 tiles) or the vec4 one; the others take
    // the strided 4x4 one. Rows and columns that cross the tile edges by one.
    for (s, &(m, k, n)) in [
        (1, 1, 1),
        (1, 7, 4),
        (7, 13, 5),
        (17, 3, 20),
        (33, 64, 36),
        (64, 65, 63),
        (9, 0, 4),
        (16, 5, 128),
        (17, 31, 132),
        (47, 9, 260),
    ]
    .iter()
    .enumerate()
    {
        let a = normal(&[m, k], s as u64);
        let b = normal(&[k, n], 70 + s as u64);
        check(dev, &a, &b, &format!("matmul {m}x{k}x{n}"));
    }
}

fn transposed_operands(dev: &Device) {
    let a = normal(&[12, 9], 1); // used as a.t(): 9 x 12
    let b = normal(&[16, 12], 2); // used as b.t(): 12 x 16
    parity(
        dev,
        &[&a, &b],
        |t| t[0].t()?.matmul(&t[1].t()?),
        1e-4,
        1e-4,
        "aT bT",
    );
    parity(
        dev,
        &[&a, &b],
        |t| t[0].t()?.matmul(&t[1].t()?.contiguous()?),
        1e-4,
        1e-4,
        "aT b",
    );
    check(dev, &b, &a, "a b (16x12 . 12x9)");
    // A · Bᵀ with both read along k (the subgroup NT kernel when k % 4 == 0 and n % 4 == 0):
    // more columns than one 128-wide tile, rows across the 16-row tile edge, and column
    // slices whose offsets are (4) or are not (1) multiples of 4.
    let x = normal(&[33, 24], 3);
    let w = normal(&[132, 24], 4);
    for (start, len) in [(0, 24), (4, 16), (1, 16), (0, 4)] {
        parity(
            dev,
            &[&x, &w],
            |t| {
                t[0].narrow(1, start, len)?
                    .matmul(&t[1].narrow(1, start, len)?.t()?)
            },
            1e-4,
            1e-4,
            &format!("a bT, k columns {start}..{}", start + len),
        );
    }
    // A column slice: offsets that are not multiples of 4.
    parity(
        dev,
        &[&b, &a],
        |t| t[0].narrow(1, 3, 9)?.matmul(&t[1].narrow(0, 1, 9)?),
        1e-4,
        1e-4,
        "slices",
    );
}

fn batched(dev: &Device) {
    let a = normal(&[3, 5, 7], 1);
    let b = normal(&[3, 7, 8], 2);
    check(dev, &a, &b, "[3,5,7].[3,7,8]");
    let w = normal(&[7, 6], 3);
    check(dev, &a, &w, "batch . matrix");
    let c = normal(&[2, 1, 5, 7], 4);
    let d = normal(&[4, 7, 3], 5);
    check(dev, &c, &d, "[2,1,5,7].[4,7,3]");
    // A shared left operand (batch stride 0), as in conv2d's weight · columns.
    let wl = normal(&[6, 7], 7);
    let cols = normal(&[5, 7, 20], 8);
    check(dev, &wl, &cols, "matrix . batch");
    // A transposed right operand with a batch (copied dense for the subgroup kernel).
    let bt = normal(&[3, 8, 7], 9);
    parity(
        dev,
        &[&a, &bt],
        |t| t[0].matmul(&t[1].transpose(1, 2)?),
        1e-4,
        1e-4,
        "batch . batchᵀ",
    );
    // The same with k % 4 == 0 (the NT kernel), for a batch of B and for one shared B.
    let a8 = normal(&[3, 5, 8], 12);
    let bt8 = normal(&[3, 12, 8], 13);
    parity(
        dev,
        &[&a8, &bt8],
        |t| t[0].matmul(&t[1].transpose(1, 2)?),
        1e-4,
        1e-4,
        "batch . batchᵀ, k = 8",
    );
    parity(
        dev,
        &[&a8, &bt8],
        |t| t[0].matmul(&t[1].narrow(0, 1, 1)?.squeeze(0)?.t()?),
        1e-4,
        1e-4,
        "batch . matrixᵀ, k = 8",
    );
    // Batch axes that do not flatten to one stride (a permuted view).
    let e = normal(&[4, 2, 5, 7], 6);
    parity(
        dev,
        &[&e, &d],
        |t| t[0].permute(&[1, 0, 2, 3])?.matmul(&t[1]),
        1e-4,
        1e-4,
        "permuted batch",
    );
}

fn vectors(dev: &Device) {
    let m = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3], dev).unwrap();
    let v = Tensor::from_vec(vec![1.0, 0.0, -1.0], &[3], dev).unwrap();
    let mv = m.matmul(&v).unwrap();
    assert_eq!(mv.shape(), &[2]);
    assert_eq!(mv.to_vec().unwrap(), vec![-2.0, -2.0]);
    let vv = v.matmul(&v).unwrap();
    assert_eq!(vv.shape(), &[] as &[usize]);
    assert_eq!(vv.to_scalar().unwrap(), 2.0);
}

/// More output tiles than one grid axis holds (65,535): the grid folds into 2-D.
fn many_tiles(dev: &Device) {
    let a = normal(&[70_000, 1, 2], 10);
    let b = normal(&[70_000, 2, 4], 11);
    check(dev, &a, &b, "70000 batches of 1x2 . 2x4");
}

/// `linear`: bias and activation in the matmul's epilogue, on every kernel path (n % 4 == 0
/// or not, widths across the 128-column subgroup tile, batched inputs, k = 0), against the
/// unfused ops on the same device and against the CPU.
fn fused_epilogue(dev: &Device) {
    let acts = [
        Activation::Identity,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
    ];
    let shapes: [(&[usize], usize); 9] = [
        (&[1, 1], 1),
        (&[17, 12], 132), // k % 4 == 0: the subgroup NT kernel reads x and w along k
        (&[3, 5, 8], 4),
        (&[7, 13], 5),
        (&[17, 31], 132),
        (&[3, 5, 9], 12),
        (&[64, 20], 130),
        (&[2, 3], 4),
        (&[5, 0], 8), // no inputs: act(bias) on every row
    ];
    for (s, &(xs, out)) in shapes.iter().enumerate() {
        let inputs = *xs.last().unwrap();
        let x = normal(xs, 200 + s as u64);
        let w = normal(&[out, inputs], 300 + s as u64);
        let b = normal(&[out], 400 + s as u64);
        for act in acts {
            let what = format!("linear {xs:?}->{out} {act:?}");
            parity(
                dev,
                &[&x, &w, &b],
                |t| t[0].linear(&t[1], Some(&t[2]), act),
                1e-4,
                1e-4,
                &what,
            );
            parity(
                dev,
                &[&x, &w],
                |t| t[0].linear(&t[1], None, act),
                1e-4,
                1e-4,
                &format!("{what} without bias"),
            );
            // The fused result is the unfused one, on this device.
            let [xd, wd, bd] = [&x, &w, &b].map(|t| t.to_device(dev).unwrap());
            let fused = xd.linear(&wd, Some(&bd), act).unwrap();
            let plain = act
                .apply(&xd.matmul(&wd.t().unwrap()).unwrap().add(&bd).unwrap())
                .unwrap();
            assert_close(
                &fused.to_vec().unwrap(),
                &plain.to_vec().unwrap(),
                1e-5,
                1e-5,
                &format!("{what}: fused against unfused"),
            );
        }
    }
    // A 1-D input gives a 1-D output.
    let v = normal(&[6], 9);
    let w = normal(&[3, 6], 10);
    let y = v
        .to_device(dev)
        .unwrap()
        .linear(&w.to_device(dev).unwrap(), None, Activation::Tanh)
        .unwrap();
    assert_eq!(y.shape(), &[3]);
}

/// A named check, run on one device.
type Case = (&'static str, fn(&Device));

const CASES: [Case; 6] = [
    ("shapes", shapes),
    ("transposed_operands", transposed_operands),
    ("batched", batched),
    ("vectors", vectors),
    ("many_tiles", many_tiles),
    ("fused_epilogue", fused_epilogue),
];

#[test]
fn cpu() {
    for (_, case) in CASES {
        case(&Device::cpu());
    }
}

/// Every case under each matmul kernel family this adapter can run, in one test: the choice
/// belongs to the device, which every test of this binary shares.
#[test]
fn gpu() {
    let Some(dev) = common::gpu() else { return };
    let chosen = dev.matmul_kernels().expect("a GPU has a matmul family");
    eprintln!("{}: matmul kernels {chosen:?}", dev.info().name);
    if dev.info().name.contains("llvmpipe") {
        // lavapipe has 8-wide subgroups: the fast kernel must be the one it picks.
        assert_eq!(chosen, MatmulKernels::Subgroup, "llvmpipe's matmul family");
    }
    for family in [
        MatmulKernels::Subgroup,
        MatmulKernels::Registers,
        MatmulKernels::WorkgroupTiles,
    ] {
        if let Err(e) = dev.set_matmul_kernels(Some(family)) {
            // Only the subgroup family may be refused, by an adapter without 8-lane subgroups.
            assert_eq!(family, MatmulKernels::Subgroup, "{e}");
            assert!(!dev.info().name.contains("llvmpipe"), "{e}");
            continue;
        }
        assert_eq!(dev.matmul_kernels(), Some(family));
        for (name, case) in CASES {
            eprintln!("gpu {name}, {family:?}");
            case(&dev);
        }
    }
    dev.set_matmul_kernels(None).unwrap();
    assert_eq!(dev.matmul_kernels(), Some(chosen));
}

#[test]
fn matmul_kernels_on_the_cpu_is_an_error() {
    let dev = Device::cpu();
    assert_eq!(dev.matmul_kernels(), None);
    let e = dev
        .set_matmul_kernels(Some(MatmulKernels::Registers))
        .unwrap_err();
    assert!(e.to_string().contains("set_matmul_kernels"), "{e}");
}
