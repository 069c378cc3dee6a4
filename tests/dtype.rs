//! Integer and boolean tensors on both devices: creation and readback, conversions, the I32
//! and Bool kernels against host references, promotion, I32 indices past 2^24, and the dtype
//! errors.

mod common;
use common::{normal, parity};
use ferrograd::nn::loss::{cross_entropy, Reduction};
use ferrograd::{DType, Device, Error, Tensor};

/// Seeded integers in `lo..hi` on the CPU (from an explicit generator: tests run in
/// parallel, and the global one is shared).
fn ints(shape: &[usize], lo: i32, hi: i32, seed: u64) -> Tensor {
    let u = common::uniform(shape, lo as f32, hi as f32, seed);
    u.to_dtype(DType::I32).unwrap()
}

fn creation_and_readback(dev: &Device) {
    let i = Tensor::from_vec(vec![1, -2, i32::MAX], &[3], dev).unwrap();
    assert_eq!(i.dtype(), DType::I32);
    assert_eq!(i.to_vec_as::<i32>().unwrap(), vec![1, -2, i32::MAX]);
    let b = Tensor::from_vec(vec![true, false], &[2], dev).unwrap();
    assert_eq!(b.dtype(), DType::Bool);
    assert_eq!(b.to_vec().unwrap(), vec![1.0, 0.0]); // any dtype reads back as f32
    let f = Tensor::full_dtype(&[2, 2], 16_777_217.0, DType::I32, dev).unwrap();
    assert_eq!(f.to_vec_as::<i32>().unwrap(), vec![16_777_217; 4]);
    let r = Tensor::randint(-3, 4, &[200], dev)
        .unwrap()
        .to_vec_as::<i32>()
        .unwrap();
    assert!(r.iter().all(|v| (-3..4).contains(v)), "{r:?}");
    assert!(
        (-3..4).all(|v| r.contains(&v)),
        "200 draws miss a value: {r:?}"
    );
    let z = Tensor::zeros_dtype(&[3], DType::Bool, dev).unwrap();
    assert_eq!(z.to_vec_as::<bool>().unwrap(), vec![false; 3]);
    // Views of integers copy their bits exactly (small i32s are f32 denormals as bits).
    let m = Tensor::from_vec((1..=6).collect(), &[2, 3], dev).unwrap();
    let t = m.t().unwrap().contiguous().unwrap();
    assert_eq!(t.to_vec_as::<i32>().unwrap(), vec![1, 4, 2, 5, 3, 6]);
    let c = Tensor::cat(&[&m, &m.narrow(1, 1, 1).unwrap()], 1).unwrap();
    assert_eq!(c.dtype(), DType::I32);
    assert_eq!(c.to_vec_as::<i32>().unwrap(), vec![1, 2, 3, 2, 4, 5, 6, 5]);
    assert_eq!(
        m.to_device(&Device::cpu())
            .unwrap()
            .to_vec_as::<i32>()
            .unwrap(),
        (1..=6).collect::<Vec<_>>()
    );
    // Printing shows integers and the dtype.
    assert!(format!("{m}").contains("[[1, 2, 3],"), "{m}");
    assert!(format!("{m}").contains("dtype=I32"), "{m}");
}

fn conversions(dev: &Device) {
    let x = Tensor::from_vec(
        vec![-1.7, -0.5, 0.0, 2.9, f32::NAN, 3e9, -3e9, f32::INFINITY],
        &[8],
        dev,
    )
    .unwrap();
    // Toward zero, saturating, NaN to 0 (Rust's `as`).
    assert_eq!(
        x.to_dtype(DType::I32).unwrap().to_vec_as::<i32>().unwrap(),
        vec![-1, 0, 0, 2, 0, i32::MAX, i32::MIN, i32::MAX]
    );
    assert_eq!(
        x.to_dtype(DType::Bool)
            .unwrap()
            .to_vec_as::<bool>()
            .unwrap(),
        vec![true, true, false, true, true, true, true, true]
    );
    let i = Tensor::from_vec(vec![-3, 0, 7], &[3], dev).unwrap();
    assert_eq!(
        i.to_dtype(DType::F32).unwrap().to_vec().unwrap(),
        vec![-3.0, 0.0, 7.0]
    );
    assert_eq!(
        i.to_dtype(DType::Bool)
            .unwrap()
            .to_vec_as::<bool>()
            .unwrap(),
        vec![true, false, true]
    );
    let b = Tensor::from_vec(vec![true, false], &[2], dev).unwrap();
    assert_eq!(
        b.to_dtype(DType::I32).unwrap().to_vec_as::<i32>().unwrap(),
        vec![1, 0]
    );
    assert_eq!(
        b.to_dtype(DType::F32).unwrap().to_vec().unwrap(),
        vec![1.0, 0.0]
    );
    let r = normal(&[37], 3).mul_scalar(50.0).unwrap();
    for d in [DType::I32, DType::Bool] {
        parity(dev, &[&r], |t| t[0].to_dtype(d), 0.0, 0.0, "to_dtype");
        parity(
            dev,
            &[&r],
            |t| t[0].to_dtype(d)?.to_dtype(DType::F32),
            0.0,
            0.0,
            "round trip",
        );
    }
}

fn integer_arithmetic(dev: &Device) {
    // Awkward sizes: 1, a prime, past one workgroup and a broadcast.
    for (n, seed) in [(1usize, 1u64), (131, 2), (4099, 3)] {
        let a = ints(&[n], -1000, 1000, seed);
        let b = ints(&[n], -1000, 1000, seed + 10);
        let (av, bv) = (a.to_vec_as::<i32>().unwrap(), b.to_vec_as::<i32>().unwrap());
        let (ad, bd) = (a.to_device(dev).unwrap(), b.to_device(dev).unwrap());
        let check = |got: Tensor, f: &dyn Fn(i32, i32) -> i32, what: &str| {
            assert_eq!(got.dtype(), DType::I32, "{what}");
            let want: Vec<i32> = av.iter().zip(&bv).map(|(&x, &y)| f(x, y)).collect();
            assert_eq!(got.to_vec_as::<i32>().unwrap(), want, "{what} n={n}");
        };
        check(ad.add(&bd).unwrap(), &|x, y| x + y, "add");
        check(ad.sub(&bd).unwrap(), &|x, y| x - y, "sub");
        check(ad.mul(&bd).unwrap(), &|x, y| x * y, "mul");
        check(ad.maximum(&bd).unwrap(), &|x, y| x.max(y), "maximum");
        check(ad.neg().unwrap(), &|x, _| -x, "neg");
        check(ad.abs().unwrap(), &|x, _| x.abs(), "abs");
        check(ad.relu().unwrap(), &|x, _| x.max(0), "relu");
        check(
            ad.clamp(-5.0, 5.0).unwrap(),
            &|x, _| x.clamp(-5, 5),
            "clamp",
        );
        check(ad.mul_scalar(3.0).unwrap(), &|x, _| x * 3, "mul_scalar");
        check(ad.sub_scalar(7.0).unwrap(), &|x, _| x - 7, "x - 7");
        let lt = ad.lt(&bd).unwrap();
        assert_eq!(lt.dtype(), DType::Bool);
        let want: Vec<bool> = av.iter().zip(&bv).map(|(x, y)| x < y).collect();
        assert_eq!(lt.to_vec_as::<bool>().unwrap(), want);
    }
    // Wrapping, as PyTorch's int32 and WGSL's i32.
    let big = Tensor::from_vec(vec![i32::MAX, i32::MIN], &[2], dev).unwrap();
    assert_eq!(
        big.add_scalar(1.0).unwrap().to_vec_as::<i32>().unwrap(),
        vec![i32::MIN, i32::MIN + 1]
    );
    // Exact comparisons with a scalar that is not an integer.
    let x = Tensor::from_vec(vec![16_777_217, 2, 3, -3], &[4], dev).unwrap();
    let bools = |t: Tensor| t.to_vec_as::<bool>().unwrap();
    assert_eq!(
        bools(x.eq_scalar(16_777_216.0).unwrap()),
        [false, false, false, false]
    );
    assert_eq!(bools(x.lt_scalar(2.5).unwrap()), [false, true, false, true]);
    assert_eq!(bools(x.ge_scalar(2.5).unwrap()), [true, false, true, false]);
    assert_eq!(bools(x.gt_scalar(-2.5).unwrap()), [true, true, true, false]);
    assert_eq!(bools(x.eq_scalar(2.5).unwrap()), [false; 4]);
    assert_eq!(bools(x.ne_scalar(f32::NAN).unwrap()), [true; 4]);
    assert_eq!(bools(x.lt_scalar(3e9).unwrap()), [true; 4]);
    // What has no integer kernel computes in f32, as PyTorch's int / int.
    let q = x.narrow(0, 1, 2).unwrap().div_scalar(2.0).unwrap();
    assert_eq!(
        (q.dtype(), q.to_vec().unwrap()),
        (DType::F32, vec![1.0, 1.5])
    );
    let e = x.narrow(0, 1, 1).unwrap().exp().unwrap();
    assert_eq!(e.dtype(), DType::F32);
    let half = x.mul_scalar(0.5).unwrap();
    assert_eq!(half.dtype(), DType::F32);
}

fn promotion_and_logic(dev: &Device) {
    let x = normal(&[3, 4], 5).to_device(dev).unwrap();
    let mask = x.gt_scalar(0.0).unwrap();
    assert_eq!(mask.dtype(), DType::Bool);
    // Bool * F32 -> F32 (the mask as 0/1), I32 + F32 -> F32, Bool + I32 -> I32.
    let masked = mask.mul(&x).unwrap();
    assert_eq!(masked.dtype(), DType::F32);
    assert_eq!(
        masked.to_vec().unwrap(),
        x.relu().unwrap().to_vec().unwrap()
    );
    let i = Tensor::from_vec(vec![1, 2, 3, 4], &[4], dev).unwrap();
    assert_eq!(i.add(&x).unwrap().dtype(), DType::F32);
    assert_eq!(mask.add(&i).unwrap().dtype(), DType::I32);
    assert_eq!(mask.sum_all().unwrap().dtype(), DType::I32); // counts the true elements
    let count = mask
        .to_vec_as::<bool>()
        .unwrap()
        .iter()
        .filter(|&&b| b)
        .count();
    assert_eq!(
        mask.sum_all().unwrap().to_vec_as::<i32>().unwrap(),
        vec![count as i32]
    );
    // Logical ops.
    let p = Tensor::from_vec(vec![true, true, false, false], &[4], dev).unwrap();
    let q = Tensor::from_vec(vec![true, false, true, false], &[4], dev).unwrap();
    let bools = |t: Tensor| t.to_vec_as::<bool>().unwrap();
    assert_eq!(
        bools(p.logical_and(&q).unwrap()),
        [true, false, false, false]
    );
    assert_eq!(bools(p.logical_or(&q).unwrap()), [true, true, true, false]);
    assert_eq!(
        bools(p.logical_xor(&q).unwrap()),
        [false, true, true, false]
    );
    assert_eq!(bools(p.logical_not().unwrap()), [false, false, true, true]);
    assert_eq!(bools(p.eq(&q).unwrap()), [true, false, false, true]);
    assert_eq!(bools(i.logical_not().unwrap()), [false; 4]);
    // where_ with a Bool condition, values promoted.
    let w = Tensor::where_(&p, &i, &Tensor::scalar(-0.5, dev).unwrap()).unwrap();
    assert_eq!(
        (w.dtype(), w.to_vec().unwrap()),
        (DType::F32, vec![1.0, 2.0, -0.5, -0.5])
    );
    let wi = Tensor::where_(&p, &i, &i.neg().unwrap()).unwrap();
    assert_eq!(wi.to_vec_as::<i32>().unwrap(), vec![1, 2, -3, -4]);
    // Integer results do not track gradients; a float mask passes them on.
    let v = x.requires_grad();
    let l = v
        .mul(&v.gt_scalar(0.0).unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
    let g = l.backward().unwrap();
    let want: Vec<f32> = x
        .to_vec()
        .unwrap()
        .iter()
        .map(|&a| f32::from(u8::from(a > 0.0)))
        .collect();
    assert_eq!(g.get(&v).unwrap().to_vec().unwrap(), want);
    assert!(!i.requires_grad().tracks_grad());
}

fn integer_reductions(dev: &Device) {
    // Lines, columns, one long line past the two-pass threshold (4096), a prime.
    for (shape, seed) in [
        (vec![7usize, 131], 1u64),
        (vec![131, 7], 2),
        (vec![1, 9001], 3),
    ] {
        let a = ints(&shape, -50, 50, seed);
        for axis in [0isize, 1] {
            parity(dev, &[&a], |t| t[0].sum(axis, false), 0.0, 0.0, "I32 sum");
            parity(dev, &[&a], |t| t[0].max(axis, true), 0.0, 0.0, "I32 max");
            parity(dev, &[&a], |t| t[0].min(axis, false), 0.0, 0.0, "I32 min");
            parity(
                dev,
                &[&a],
                |t| t[0].argmax(axis, false),
                0.0,
                0.0,
                "I32 argmax",
            );
            parity(
                dev,
                &[&a],
                |t| t[0].argmin(axis, false),
                0.0,
                0.0,
                "I32 argmin",
            );
        }
        parity(dev, &[&a], |t| t[0].sum_all(), 0.0, 0.0, "I32 sum_all");
        parity(dev, &[&a], |t| t[0].max_all(), 0.0, 0.0, "I32 max_all");
        let host = a.to_vec_as::<i32>().unwrap();
        let total: i32 = host.iter().sum();
        let got = a.to_device(dev).unwrap().sum_all().unwrap();
        assert_eq!(got.to_vec_as::<i32>().unwrap(), vec![total]);
        assert_eq!(got.dtype(), DType::I32);
    }
    // Exact past 2^24, where f32 would round.
    let big = Tensor::from_vec(vec![16_777_217, 16_777_216, 16_777_218], &[3], dev).unwrap();
    assert_eq!(
        big.argmax(0, false).unwrap().to_vec_as::<i32>().unwrap(),
        vec![2]
    );
    assert_eq!(
        big.min_all().unwrap().to_vec_as::<i32>().unwrap(),
        vec![16_777_216]
    );
    // argmax of floats is I32 on both devices; the mean of integers is a float.
    let x = normal(&[5, 9], 8);
    parity(
        dev,
        &[&x],
        |t| t[0].argmax(1, false),
        0.0,
        0.0,
        "F32 argmax",
    );
    let m = Tensor::from_vec(vec![1, 2], &[2], dev)
        .unwrap()
        .mean_all()
        .unwrap();
    assert_eq!((m.dtype(), m.to_vec().unwrap()), (DType::F32, vec![1.5]));
}

fn indices_past_2_pow_24(dev: &Device) {
    // An I32 index into a 20 M-row table: rows f32 indices could not name.
    let n = 20_000_000;
    let table = Tensor::from_vec((0..n as i32).collect(), &[n], dev).unwrap();
    let at = Tensor::from_vec(vec![16_777_217, 19_999_999, 3], &[3], dev).unwrap();
    let got = table.index_select(0, &at).unwrap();
    assert_eq!(
        got.to_vec_as::<i32>().unwrap(),
        vec![16_777_217, 19_999_999, 3]
    );
    let g = table
        .reshape(&[n, 1])
        .unwrap()
        .gather(0, &at.reshape(&[3, 1]).unwrap())
        .unwrap();
    assert_eq!(
        g.to_vec_as::<i32>().unwrap(),
        vec![16_777_217, 19_999_999, 3]
    );
}

fn dtype_errors(dev: &Device) {
    let x = normal(&[2, 3], 9).to_device(dev).unwrap();
    let msg = |r: ferrograd::Result<Tensor>| r.unwrap_err().to_string();
    let f_index = Tensor::from_vec(vec![0.0, 1.0], &[2], dev).unwrap();
    assert_eq!(
        msg(x.index_select(1, &f_index)),
        "index_select: expects I32 indices, got F32; convert with `.to_dtype(DType::I32)` \
         (floats are truncated toward zero)"
    );
    assert!(msg(f_index.one_hot(3)).starts_with("one_hot: expects I32 indices, got F32"));
    let logits = normal(&[2, 3], 10).to_device(dev).unwrap();
    assert!(msg(cross_entropy(&logits, &f_index, Reduction::Mean))
        .starts_with("cross_entropy: expects I32 indices, got F32"));
    let b = x.gt_scalar(0.0).unwrap();
    let e = b.matmul(&b.t().unwrap()).unwrap_err();
    assert!(matches!(&e, Error::DType { op: "matmul", .. }), "{e}");
    assert!(e.to_string().contains("Bool"), "{e}");
    assert!(
        msg(Tensor::where_(&x, &x, &x)).starts_with("where_: expects a Bool condition, got F32")
    );
    let e = x.to_vec_as::<i32>().unwrap_err().to_string();
    assert!(
        e.starts_with("to_vec_as: expects the tensor's own dtype, got F32 and I32"),
        "{e}"
    );
    assert!(msg(Tensor::full_dtype(&[1], 0.5, DType::I32, dev))
        .contains("0.5 is not a value of dtype I32"));
    assert!(msg(Tensor::full_dtype(&[1], 2.0, DType::Bool, dev))
        .contains("2 is not a value of dtype Bool"));
    assert!(msg(x.to_dtype(DType::F64))
        .starts_with("to_dtype: expects F32, F16, BF16, I32 or Bool, got F64"));
    assert!(msg(Tensor::randint(3, 3, &[1], dev)).contains("empty"));
    if dev.is_gpu() {
        let cpu_idx = Tensor::from_vec(vec![0], &[1], &Device::cpu()).unwrap();
        assert!(matches!(
            x.index_select(0, &cpu_idx).unwrap_err(),
            Error::DeviceMismatch { .. }
        ));
    }
}

device_tests!(
    creation_and_readback,
    conversions,
    integer_arithmetic,
    promotion_and_logic,
    integer_reductions,
    indices_past_2_pow_24,
    dtype_errors
);
