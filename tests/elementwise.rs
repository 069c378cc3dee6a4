//! Unary, binary, scalar and where ops on both devices: awkward sizes, ranks 0–4, broadcasting
//! along each axis, non-contiguous inputs, and one op past 65,535 workgroups.

mod common;
use common::{assert_close, normal, parity, uniform};
use ferrograd::{Device, Tensor};

const SIZES: [&[usize]; 6] = [&[], &[1], &[7], &[97], &[3, 65], &[2, 3, 5, 7]];

fn unary_ops(dev: &Device) {
    for (i, shape) in SIZES.iter().enumerate() {
        let x = normal(shape, i as u64).mul_scalar(3.0).unwrap();
        let pos = uniform(shape, 0.1, 5.0, 10 + i as u64);
        type F = fn(&Tensor) -> ferrograd::Result<Tensor>;
        let ops: [(&str, F, bool); 17] = [
            ("neg", |t| t.neg(), false),
            ("abs", |t| t.abs(), false),
            ("exp", |t| t.exp(), false),
            ("log", |t| t.log(), true),
            ("sqrt", |t| t.sqrt(), true),
            ("square", |t| t.square(), false),
            ("relu", |t| t.relu(), false),
            ("sigmoid", |t| t.sigmoid(), false),
            ("tanh", |t| t.tanh(), false),
            ("gelu", |t| t.gelu(), false),
            ("gelu_tanh", |t| t.gelu_tanh(), false),
            ("leaky_relu", |t| t.leaky_relu(0.1), false),
            ("clamp", |t| t.clamp(-1.0, 0.5), false),
            ("add_scalar", |t| t.add_scalar(2.5), false),
            ("pow_scalar", |t| t.pow_scalar(3.0), false),
            ("rsub", |t| 1.0 - t, false),
            ("rdiv", |t| 2.0 / t, true),
        ];
        for (name, f, positive) in ops {
            let input = if positive { &pos } else { &x };
            parity(
                dev,
                &[input],
                |t| f(&t[0]),
                1e-5,
                1e-4,
                &format!("{name} {shape:?}"),
            );
        }
    }
}

fn unary_values(dev: &Device) {
    let x = Tensor::from_vec(vec![-1e4, -2.0, -0.5, 0.0, 0.5, 2.0, 1e4], &[7], dev).unwrap();
    let v = |t: ferrograd::Result<Tensor>| t.unwrap().to_vec().unwrap();
    assert_close(
        &v(x.relu()),
        &[0.0, 0.0, 0.0, 0.0, 0.5, 2.0, 1e4],
        0.0,
        0.0,
        "relu",
    );
    assert_close(
        &v(x.tanh()),
        &[
            -1.0,
            -0.9640276,
            -0.46211717,
            0.0,
            0.46211717,
            0.9640276,
            1.0,
        ],
        1e-6,
        1e-5,
        "tanh",
    );
    assert_close(
        &v(x.sigmoid()),
        &[0.0, 0.11920292, 0.37754068, 0.5, 0.62245935, 0.8807971, 1.0],
        1e-6,
        1e-5,
        "sigmoid",
    );
    // torch.nn.functional.gelu(x, approximate="tanh")
    assert_close(
        &v(x.gelu_tanh()),
        &[
            -0.0,
            -0.04540229,
            -0.15428598,
            0.0,
            0.345714,
            1.9545977,
            1e4,
        ],
        1e-6,
        1e-5,
        "gelu_tanh",
    );
    let s = Tensor::from_vec(vec![-1.0, 0.0, 4.0], &[3], dev).unwrap();
    let logs = v(s.log());
    assert!(logs[0].is_nan() && logs[1] == f32::NEG_INFINITY && (logs[2] - 4f32.ln()).abs() < 1e-6);
    assert!(v(s.sqrt())[0].is_nan());
    let base = Tensor::from_vec(vec![-2.0, -2.0, -2.0, 0.0, 3.0], &[5], dev).unwrap();
    let expo = Tensor::from_vec(vec![2.0, 3.0, 0.5, 0.0, -1.0], &[5], dev).unwrap();
    let p = v(base.pow(&expo));
    assert_close(
        &[p[0], p[1], p[3], p[4]],
        &[4.0, -8.0, 1.0, 1.0 / 3.0],
        1e-5,
        1e-5,
        "pow",
    );
    assert!(p[2].is_nan(), "(-2)^0.5 is NaN");
}

fn binary_broadcast(dev: &Device) {
    // Broadcasting along each axis of a rank-3 shape, plus rank 0 and rank 4 pairs.
    let pairs: [(&[usize], &[usize]); 8] = [
        (&[4, 5, 6], &[4, 5, 6]),
        (&[4, 5, 6], &[1, 5, 6]),
        (&[4, 5, 6], &[4, 1, 6]),
        (&[4, 5, 6], &[4, 5, 1]),
        (&[4, 1, 6], &[1, 5, 1]),
        (&[], &[3, 2]),
        (&[2, 1, 3, 1], &[5, 1, 7]),
        (&[13], &[1]),
    ];
    for (k, (sa, sb)) in pairs.iter().enumerate() {
        let a = normal(sa, 100 + k as u64);
        let b = uniform(sb, 0.5, 2.0, 200 + k as u64); // positive: safe for div and pow
        type F = fn(&Tensor, &Tensor) -> ferrograd::Result<Tensor>;
        let ops: [(&str, F); 7] = [
            ("add", |a, b| a.add(b)),
            ("sub", |a, b| a.sub(b)),
            ("mul", |a, b| a.mul(b)),
            ("div", |a, b| a.div(b)),
            ("pow", |a, b| a.abs()?.pow(b)),
            ("maximum", |a, b| a.maximum(b)),
            ("minimum", |a, b| a.minimum(b)),
        ];
        for (name, f) in ops {
            parity(
                dev,
                &[&a, &b],
                |t| f(&t[0], &t[1]),
                1e-5,
                1e-4,
                &format!("{name} {sa:?} {sb:?}"),
            );
        }
    }
}

fn comparisons(dev: &Device) {
    // Rounded values so equal pairs occur.
    let a = normal(&[6, 7], 1)
        .mul_scalar(2.0)
        .unwrap()
        .to_vec()
        .unwrap();
    let a = Tensor::from_vec(
        a.iter().map(|x| x.round()).collect(),
        &[6, 7],
        &Device::cpu(),
    )
    .unwrap();
    let b = normal(&[7], 2).mul_scalar(2.0).unwrap().to_vec().unwrap();
    let b = Tensor::from_vec(b.iter().map(|x| x.round()).collect(), &[7], &Device::cpu()).unwrap();
    type F = fn(&Tensor, &Tensor) -> ferrograd::Result<Tensor>;
    let ops: [(&str, F); 7] = [
        ("eq", |a, b| a.eq(b)),
        ("ne", |a, b| a.ne(b)),
        ("lt", |a, b| a.lt(b)),
        ("le", |a, b| a.le(b)),
        ("gt", |a, b| a.gt(b)),
        ("ge", |a, b| a.ge(b)),
        ("ge_scalar", |a, _| a.ge_scalar(0.0)),
    ];
    for (name, f) in ops {
        parity(dev, &[&a, &b], |t| f(&t[0], &t[1]), 0.0, 0.0, name);
    }
    let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3], dev).unwrap();
    assert_eq!(
        x.lt_scalar(2.0).unwrap().to_vec().unwrap(),
        vec![1.0, 0.0, 0.0]
    );
    assert_eq!(
        x.eq_scalar(2.0).unwrap().to_vec().unwrap(),
        vec![0.0, 1.0, 0.0]
    );
}

fn where_select(dev: &Device) {
    let cond = uniform(&[5, 1], 0.0, 1.0, 3).gt_scalar(0.5).unwrap();
    let a = normal(&[5, 4], 4);
    let b = normal(&[4], 5);
    parity(
        dev,
        &[&cond, &a, &b],
        |t| Tensor::where_(&t[0], &t[1], &t[2]),
        0.0,
        0.0,
        "where_",
    );
    let c = Tensor::from_vec(vec![true, false], &[2], dev).unwrap();
    let y = Tensor::where_(
        &c,
        &Tensor::full(&[2], 7.0, dev).unwrap(),
        &Tensor::scalar(-1.0, dev).unwrap(),
    )
    .unwrap();
    assert_eq!(y.to_vec().unwrap(), vec![7.0, -1.0]);
}

fn non_contiguous_inputs(dev: &Device) {
    let a = normal(&[6, 9], 7);
    let b = normal(&[9, 6], 8);
    // Transposed, sliced and broadcast views as operands.
    parity(
        dev,
        &[&a, &b],
        |t| t[0].add(&t[1].t()?),
        1e-6,
        1e-6,
        "add transposed",
    );
    parity(
        dev,
        &[&a],
        |t| t[0].narrow(1, 2, 5)?.exp(),
        1e-6,
        1e-5,
        "exp of a slice",
    );
    parity(
        dev,
        &[&a, &b],
        |t| t[0].slice(0, 1..4)?.mul(&t[1].t()?.narrow(0, 2, 3)?),
        1e-6,
        1e-6,
        "mul slices",
    );
    parity(
        dev,
        &[&a],
        |t| t[0].permute(&[1, 0])?.contiguous(),
        0.0,
        0.0,
        "contiguous of a transpose",
    );
    parity(
        dev,
        &[&a],
        |t| t[0].unsqueeze(1)?.broadcast_to(&[6, 3, 9])?.sigmoid(),
        1e-6,
        1e-5,
        "broadcast view",
    );
}

fn beyond_65535_workgroups(dev: &Device) {
    // 65,535 workgroups x 64 invocations = 4,194,240; go past it so the grid must fold.
    let n = 65_535 * 64 + 1000;
    let x = Tensor::arange(0.0, n as f32, 1.0, &Device::cpu()).unwrap();
    let y = x
        .to_device(dev)
        .unwrap()
        .mul_scalar(2.0)
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(y.len(), n);
    for i in [0, 1, 4_194_239, 4_194_240, n - 1] {
        assert_eq!(y[i], 2.0 * i as f32, "element {i}");
    }
}

fn non_finite_checks(dev: &Device) {
    let x = Tensor::from_vec(
        vec![1.0, f32::NAN, f32::INFINITY, 0.0, -f32::INFINITY, -3.0],
        &[2, 3],
        dev,
    )
    .unwrap();
    assert_eq!(x.count_non_finite().unwrap(), 3);
    assert!(!x.all_finite().unwrap());
    assert!(x.narrow(1, 0, 1).unwrap().all_finite().unwrap());
    // NaN survives relu and clamp, and maximum propagates it.
    let v = x.relu().unwrap().to_vec().unwrap();
    assert!(v[1].is_nan() && v[4] == 0.0);
    assert!(x.clamp(-1.0, 1.0).unwrap().to_vec().unwrap()[1].is_nan());
    assert!(x.maximum_scalar(0.0).unwrap().to_vec().unwrap()[1].is_nan());
}

fn operator_sugar(dev: &Device) {
    let a = Tensor::from_vec(vec![1.0, 2.0], &[2], dev).unwrap();
    let b = Tensor::from_vec(vec![3.0, 5.0], &[2], dev).unwrap();
    let y = (((&a + &b).unwrap() * 2.0).unwrap() - (-&a)).unwrap();
    assert_eq!(y.to_vec().unwrap(), vec![9.0, 16.0]);
    assert_eq!((&b / &a).unwrap().to_vec().unwrap(), vec![3.0, 2.5]);
    // Owned operands, a Result on either side, a scalar on the left.
    let z = (1.0 - ((a.clone() * b.clone()) / (&a + 1.0).unwrap()).unwrap()).unwrap();
    assert_eq!(z.to_vec().unwrap(), vec![-0.5, 1.0 - 10.0 / 3.0]);
    let w = ((&a - &b).unwrap() + (&a * &b)).unwrap();
    assert_eq!(w.to_vec().unwrap(), vec![1.0, 7.0]);
}

device_tests!(
    unary_ops,
    unary_values,
    binary_broadcast,
    comparisons,
    where_select,
    non_contiguous_inputs,
    beyond_65535_workgroups,
    non_finite_checks,
    operator_sugar,
);

/// The CPU walks each output row as a dense slice, a broadcast value or a strided run, in
/// tasks of 16,384 elements over rows that do not divide them: large broadcast, transposed
/// and `where` operands, checked against values computed here element by element.
#[test]
fn cpu_rows_across_task_boundaries() {
    let (r, c) = (37, 1031); // 38,147 elements: parallel, rows straddle the tasks
    let a = normal(&[r, c], 1);
    let row = normal(&[c], 2);
    let col = normal(&[r, 1], 3);
    let (av, rv, cv) = (
        a.to_vec().unwrap(),
        row.to_vec().unwrap(),
        col.to_vec().unwrap(),
    );
    // Dense + broadcast row, broadcast column - dense.
    let got = a.add(&row).unwrap().to_vec().unwrap();
    let want: Vec<f32> = (0..r * c).map(|i| av[i] + rv[i % c]).collect();
    assert_eq!(got, want, "a + row");
    let got = col.sub(&a).unwrap().to_vec().unwrap();
    let want: Vec<f32> = (0..r * c).map(|i| cv[i / c] - av[i]).collect();
    assert_eq!(got, want, "col - a");
    // A transposed view (stride r along its rows), unary and binary.
    let at = a.t().unwrap(); // [c, r]
    let tv = |i: usize| av[(i % r) * c + i / r];
    let got = at.relu().unwrap().to_vec().unwrap();
    let want: Vec<f32> = (0..r * c).map(|i| tv(i).max(0.0)).collect();
    assert_eq!(got, want, "relu(aᵀ)");
    let got = at
        .mul(&col.reshape(&[r]).unwrap())
        .unwrap()
        .to_vec()
        .unwrap();
    let want: Vec<f32> = (0..r * c).map(|i| tv(i) * cv[i % r]).collect();
    assert_eq!(got, want, "aᵀ * col");
    // where: a broadcast condition picks from a dense and a transposed-back operand.
    let cond = row.gt_scalar(0.0).unwrap();
    let got = Tensor::where_(&cond, &a, &at.t().unwrap().neg().unwrap())
        .unwrap()
        .to_vec()
        .unwrap();
    let want: Vec<f32> = (0..r * c)
        .map(|i| if rv[i % c] > 0.0 { av[i] } else { -av[i] })
        .collect();
    assert_eq!(got, want, "where");
    // Zero-size operands, broadcast and permuted: empty results of the right shape.
    let empty = Tensor::zeros(&[0, 5], &Device::cpu()).unwrap();
    assert_eq!(
        empty.add(&row.narrow(0, 0, 5).unwrap()).unwrap().shape(),
        &[0, 5]
    );
    assert_eq!(empty.t().unwrap().relu().unwrap().shape(), &[5, 0]);
    let e3 = Tensor::zeros(&[3, 0, 2], &Device::cpu()).unwrap();
    let cond = e3.to_dtype(ferrograd::DType::Bool).unwrap();
    let picked = Tensor::where_(&cond, &e3, &row.narrow(0, 0, 2).unwrap()).unwrap();
    assert_eq!(picked.shape(), &[3, 0, 2]);
}
