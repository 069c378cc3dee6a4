//! Reductions and softmax on both devices, and the CPU against plain f64 references.

mod common;
use common::{assert_close, normal, parity};
use ferrograd::{Device, Tensor};

/// f64 reference: reduce a row-major [outer, len, inner] array along len.
fn ref_lines(
    x: &[f32],
    outer: usize,
    len: usize,
    inner: usize,
    f: impl Fn(&[f64]) -> f64,
) -> Vec<f32> {
    let mut out = Vec::new();
    for o in 0..outer {
        for i in 0..inner {
            let line: Vec<f64> = (0..len)
                .map(|l| f64::from(x[(o * len + l) * inner + i]))
                .collect();
            out.push(f(&line) as f32);
        }
    }
    out
}

#[test]
fn cpu_reductions_match_f64_reference() {
    let (o, l, i) = (3, 1001, 4);
    let x = normal(&[o, l, i], 9);
    let xv = x.to_vec().unwrap();
    let sum = |v: &[f64]| v.iter().sum::<f64>();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let var = |v: &[f64]| {
        let m = mean(v);
        v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64
    };
    let max = |v: &[f64]| v.iter().cloned().fold(f64::MIN, f64::max);
    let argmax = |v: &[f64]| {
        v.iter()
            .enumerate()
            .fold((0, f64::MIN), |b, (j, &x)| if x > b.1 { (j, x) } else { b })
            .0 as f64
    };
    assert_close(
        &x.sum(1, false).unwrap().to_vec().unwrap(),
        &ref_lines(&xv, o, l, i, sum),
        1e-5,
        1e-5,
        "sum",
    );
    assert_close(
        &x.mean(1, false).unwrap().to_vec().unwrap(),
        &ref_lines(&xv, o, l, i, mean),
        1e-6,
        1e-5,
        "mean",
    );
    assert_close(
        &x.var(1, false).unwrap().to_vec().unwrap(),
        &ref_lines(&xv, o, l, i, var),
        1e-5,
        1e-5,
        "var",
    );
    assert_close(
        &x.max(1, false).unwrap().to_vec().unwrap(),
        &ref_lines(&xv, o, l, i, max),
        0.0,
        0.0,
        "max",
    );
    assert_close(
        &x.argmax(1, false).unwrap().to_vec().unwrap(),
        &ref_lines(&xv, o, l, i, argmax),
        0.0,
        0.0,
        "argmax",
    );
    let total: f64 = xv.iter().map(|&v| f64::from(v)).sum();
    assert!((f64::from(x.sum_all().unwrap().to_scalar().unwrap()) - total).abs() < 1e-3);
}

#[test]
fn cpu_softmax_matches_f64_reference() {
    let x = normal(&[5, 37], 3).mul_scalar(4.0).unwrap();
    let xv = x.to_vec().unwrap();
    let mut want = Vec::new();
    let mut want_log = Vec::new();
    for r in 0..5 {
        let row: Vec<f64> = xv[r * 37..(r + 1) * 37]
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let m = row.iter().cloned().fold(f64::MIN, f64::max);
        let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
        want.extend(row.iter().map(|v| ((v - m).exp() / s) as f32));
        want_log.extend(row.iter().map(|v| (v - m - s.ln()) as f32));
    }
    assert_close(
        &x.softmax(1).unwrap().to_vec().unwrap(),
        &want,
        1e-7,
        1e-5,
        "softmax",
    );
    assert_close(
        &x.log_softmax(1).unwrap().to_vec().unwrap(),
        &want_log,
        1e-5,
        1e-5,
        "log_softmax",
    );
}

fn reductions_along_each_axis(dev: &Device) {
    let x = normal(&[3, 17, 5, 2], 11);
    for axis in [-4isize, -3, -2, -1, 0, 1, 2, 3] {
        for keepdim in [false, true] {
            let w = format!("axis {axis} keepdim {keepdim}");
            parity(
                dev,
                &[&x],
                |t| t[0].sum(axis, keepdim),
                1e-5,
                1e-5,
                &format!("sum {w}"),
            );
            parity(
                dev,
                &[&x],
                |t| t[0].mean(axis, keepdim),
                1e-6,
                1e-5,
                &format!("mean {w}"),
            );
            parity(
                dev,
                &[&x],
                |t| t[0].max(axis, keepdim),
                0.0,
                0.0,
                &format!("max {w}"),
            );
            parity(
                dev,
                &[&x],
                |t| t[0].min(axis, keepdim),
                0.0,
                0.0,
                &format!("min {w}"),
            );
            parity(
                dev,
                &[&x],
                |t| t[0].argmax(axis, keepdim),
                0.0,
                0.0,
                &format!("argmax {w}"),
            );
            parity(
                dev,
                &[&x],
                |t| t[0].argmin(axis, keepdim),
                0.0,
                0.0,
                &format!("argmin {w}"),
            );
            parity(
                dev,
                &[&x],
                |t| t[0].var(axis, keepdim),
                1e-5,
                1e-4,
                &format!("var {w}"),
            );
        }
    }
    // A non-contiguous input, rank 0 and size-1 axes.
    parity(
        dev,
        &[&x],
        |t| t[0].permute(&[2, 0, 3, 1])?.sum(1, false),
        1e-5,
        1e-5,
        "sum of a permuted view",
    );
    let s = Tensor::from_vec(vec![4.0], &[], &Device::cpu()).unwrap();
    parity(
        dev,
        &[&s],
        |t| t[0].sum(0, false),
        0.0,
        0.0,
        "sum of a 0-D tensor",
    );
    parity(
        dev,
        &[&s],
        |t| t[0].argmax_all(),
        0.0,
        0.0,
        "argmax of a 0-D tensor",
    );
}

fn full_reductions(dev: &Device) {
    // 1, a prime, and sizes past one 4096-row (the GPU's two-pass path).
    for (k, n) in [1usize, 97, 4096, 4097, 100_003].into_iter().enumerate() {
        let x = normal(&[n], 20 + k as u64);
        parity(
            dev,
            &[&x],
            |t| t[0].sum_all(),
            1e-3,
            1e-4,
            &format!("sum_all {n}"),
        );
        parity(
            dev,
            &[&x],
            |t| t[0].mean_all(),
            1e-5,
            1e-4,
            &format!("mean_all {n}"),
        );
        parity(
            dev,
            &[&x],
            |t| t[0].max_all(),
            0.0,
            0.0,
            &format!("max_all {n}"),
        );
        parity(
            dev,
            &[&x],
            |t| t[0].min_all(),
            0.0,
            0.0,
            &format!("min_all {n}"),
        );
        parity(
            dev,
            &[&x],
            |t| t[0].argmax_all(),
            0.0,
            0.0,
            &format!("argmax_all {n}"),
        );
        parity(
            dev,
            &[&x],
            |t| t[0].argmin_all(),
            0.0,
            0.0,
            &format!("argmin_all {n}"),
        );
    }
    let x = normal(&[31, 7], 40);
    parity(dev, &[&x], |t| t[0].var_all(), 1e-5, 1e-4, "var_all");
}

fn ties_and_nan(dev: &Device) {
    // The first extremum wins ties; NaN wins over numbers (PyTorch's rules).
    let x = Tensor::from_vec(vec![1.0, 3.0, 3.0, 0.0, 0.0, 2.0], &[6], dev).unwrap();
    assert_eq!(x.argmax_all().unwrap().to_scalar().unwrap(), 1.0);
    assert_eq!(x.argmin_all().unwrap().to_scalar().unwrap(), 3.0);
    let long: Vec<f32> = (0..300).map(|i| (i % 7) as f32).collect(); // ties across threads
    let t = Tensor::from_vec(long, &[2, 150], dev).unwrap();
    assert_eq!(
        t.argmax(1, false).unwrap().to_vec().unwrap(),
        vec![6.0, 3.0]
    );
    let n = Tensor::from_vec(vec![1.0, f32::NAN, 5.0], &[3], dev).unwrap();
    assert!(n.max_all().unwrap().to_scalar().unwrap().is_nan());
    assert_eq!(n.argmax_all().unwrap().to_scalar().unwrap(), 1.0);
}

fn many_lines(dev: &Device) {
    // More than 65,535 output lines: one workgroup per line must fold into a 2-D grid.
    let x = normal(&[70_001, 3], 50);
    parity(
        dev,
        &[&x],
        |t| t[0].sum(1, false),
        1e-5,
        1e-5,
        "sum over 70,001 rows",
    );
    parity(
        dev,
        &[&x],
        |t| t[0].softmax(1),
        1e-6,
        1e-5,
        "softmax over 70,001 rows",
    );
}

fn softmax_axes(dev: &Device) {
    let x = normal(&[4, 6, 5], 60).mul_scalar(3.0).unwrap();
    for axis in [0isize, 1, 2, -1] {
        parity(
            dev,
            &[&x],
            |t| t[0].softmax(axis),
            1e-6,
            1e-5,
            &format!("softmax axis {axis}"),
        );
        parity(
            dev,
            &[&x],
            |t| t[0].log_softmax(axis),
            1e-5,
            1e-5,
            &format!("log_softmax axis {axis}"),
        );
    }
    let long = normal(&[3, 1000], 61);
    parity(
        dev,
        &[&long],
        |t| t[0].softmax(1),
        1e-7,
        1e-4,
        "softmax of long rows",
    );
    parity(
        dev,
        &[&long],
        |t| t[0].t()?.log_softmax(0),
        1e-5,
        1e-5,
        "log_softmax of a transposed view",
    );
}

fn softmax_extremes(dev: &Device) {
    // Rows of length 1 give exactly 1 (log 0); ±1e4 inputs neither overflow nor vanish.
    let one = Tensor::from_vec(vec![3.0, -1e4, 1e4], &[3, 1], dev).unwrap();
    assert_eq!(
        one.softmax(1).unwrap().to_vec().unwrap(),
        vec![1.0, 1.0, 1.0]
    );
    assert_eq!(
        one.log_softmax(1).unwrap().to_vec().unwrap(),
        vec![0.0, 0.0, 0.0]
    );
    let big = Tensor::from_vec(
        vec![1e4, 1e4 - 1.0, -1e4, -1e4, -1e4 + 2.0, -1e4],
        &[2, 3],
        dev,
    )
    .unwrap();
    let p = big.softmax(1).unwrap().to_vec().unwrap();
    assert_close(
        &p,
        &[
            0.7310586, 0.26894143, 0.0, 0.10650698, 0.78698605, 0.10650698,
        ],
        1e-6,
        1e-5,
        "softmax ±1e4",
    );
    let lp = big.log_softmax(1).unwrap().to_vec().unwrap();
    assert_close(
        &lp[..2],
        &[-0.31326166, -1.3132616],
        1e-5,
        1e-5,
        "log_softmax 1e4",
    );
    assert!(lp.iter().all(|v| v.is_finite()));
}

device_tests!(
    reductions_along_each_axis,
    full_reductions,
    ties_and_nan,
    many_lines,
    softmax_axes,
    softmax_extremes
);
