//! cat, stack, index_select, gather and one_hot on both devices.

mod common;
use common::{normal, parity};
use ferrograd::{Device, Tensor};

/// An `I32` index tensor on the CPU from integral values.
fn idx(v: &[f32]) -> Tensor {
    let ints: Vec<i32> = v.iter().map(|&x| x as i32).collect();
    Tensor::from_vec(ints, &[v.len()], &Device::cpu()).unwrap()
}

fn cat_and_stack(dev: &Device) {
    let a = normal(&[2, 3, 4], 1);
    let b = normal(&[2, 5, 4], 2);
    let c = normal(&[3, 4, 2], 3);
    parity(
        dev,
        &[&a, &b],
        |t| Tensor::cat(&[&t[0], &t[1], &t[0]], 1),
        0.0,
        0.0,
        "cat axis 1",
    );
    parity(
        dev,
        &[&a, &c],
        |t| Tensor::cat(&[&t[0], &t[1].permute(&[2, 0, 1])?], 0),
        0.0,
        0.0,
        "cat a permuted view",
    );
    parity(
        dev,
        &[&a],
        |t| Tensor::cat(&[&t[0], &t[0].narrow(2, 1, 0)?], 2),
        0.0,
        0.0,
        "cat with an empty part",
    );
    parity(
        dev,
        &[&a],
        |t| Tensor::stack(&[&t[0], &t[0].neg()?], -1),
        0.0,
        0.0,
        "stack last",
    );
    parity(
        dev,
        &[&a],
        |t| Tensor::stack(&[&t[0]], 0),
        0.0,
        0.0,
        "stack one",
    );
    let x = Tensor::from_vec(vec![1.0, 2.0], &[2], dev).unwrap();
    let y = Tensor::from_vec(vec![3.0], &[1], dev).unwrap();
    assert_eq!(
        Tensor::cat(&[&x, &y], 0).unwrap().to_vec().unwrap(),
        vec![1.0, 2.0, 3.0]
    );
    let s = Tensor::stack(&[&x, &x], 0).unwrap();
    assert_eq!(
        (s.shape(), s.to_vec().unwrap()),
        (&[2usize, 2][..], vec![1.0, 2.0, 1.0, 2.0])
    );
}

fn index_select(dev: &Device) {
    let x = normal(&[5, 7, 3], 4);
    let i = idx(&[4.0, 0.0, 0.0, 2.0]);
    for axis in [0isize, 1, 2] {
        parity(
            dev,
            &[&x, &i],
            |t| t[0].index_select(axis, &t[1].clamp(0.0, 2.0)?),
            0.0,
            0.0,
            &format!("index_select axis {axis}"),
        );
    }
    parity(
        dev,
        &[&x, &i],
        |t| t[0].t()?.index_select(0, &t[1].clamp(0.0, 2.0)?),
        0.0,
        0.0,
        "index_select of a view",
    );
    let m = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2], dev).unwrap();
    let r = m
        .index_select(0, &idx(&[2.0, 0.0]).to_device(dev).unwrap())
        .unwrap();
    assert_eq!(r.to_vec().unwrap(), vec![5.0, 6.0, 1.0, 2.0]);
}

fn gather(dev: &Device) {
    let x = normal(&[4, 6], 5);
    let index = Tensor::from_vec(vec![0, 3, 3, 1, 2, 0, 1, 1, 3], &[3, 3], &Device::cpu()).unwrap();
    parity(
        dev,
        &[&x, &index],
        |t| t[0].gather(0, &t[1]),
        0.0,
        0.0,
        "gather axis 0",
    );
    parity(
        dev,
        &[&x, &index],
        |t| t[0].gather(1, &t[1]),
        0.0,
        0.0,
        "gather axis 1",
    );
    let m = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2], dev).unwrap();
    let g = m
        .gather(
            1,
            &Tensor::from_vec(vec![0, 0, 1, 0], &[2, 2], dev).unwrap(),
        )
        .unwrap();
    assert_eq!(g.to_vec().unwrap(), vec![1.0, 1.0, 4.0, 3.0]); // torch.gather's doc example
}

fn one_hot(dev: &Device) {
    let labels = Tensor::from_vec(vec![0, 2, 1, 2], &[2, 2], dev).unwrap();
    let o = labels.one_hot(3).unwrap();
    assert_eq!(o.shape(), &[2, 2, 3]);
    assert_eq!(o.dtype(), ferrograd::DType::I32); // as torch's one_hot (int64 there)
    assert_eq!(
        o.to_vec_as::<i32>().unwrap(),
        vec![1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1]
    );
    let many = idx(&(0..1000).map(|i| (i * 7 % 10) as f32).collect::<Vec<_>>());
    parity(
        dev,
        &[&many],
        |t| t[0].one_hot(10),
        0.0,
        0.0,
        "one_hot 1000 x 10",
    );
}

device_tests!(cat_and_stack, index_select, gather, one_hot);
