//! Creation, views (which must not copy), random tensors identical across devices, reading
//! back and display.

mod common;
use common::{assert_close, normal};
use ferrograd::{manual_seed, DType, Device, Generator, Tensor};

fn creation(dev: &Device) {
    let v = |t: ferrograd::Result<Tensor>| t.unwrap().to_vec().unwrap();
    assert_eq!(v(Tensor::zeros(&[2, 2], dev)), vec![0.0; 4]);
    assert_eq!(v(Tensor::ones(&[3], dev)), vec![1.0; 3]);
    assert_eq!(v(Tensor::full(&[2], 7.5, dev)), vec![7.5, 7.5]);
    assert_eq!(v(Tensor::full(&[], -2.0, dev)), vec![-2.0]);
    // past 65,535 workgroups of 64: the fill grid folds into 2-D
    let big = Tensor::full(&[65_535 * 64 + 129], 0.25, dev)
        .unwrap()
        .to_vec()
        .unwrap();
    assert!(big.iter().all(|&x| x == 0.25), "full: a wrong element");
    assert_eq!(v(Tensor::arange(0.0, 5.0, 2.0, dev)), vec![0.0, 2.0, 4.0]);
    assert_eq!(v(Tensor::arange(3.0, 0.0, -1.0, dev)), vec![3.0, 2.0, 1.0]);
    assert_eq!(
        v(Tensor::linspace(0.0, 1.0, 5, dev)),
        vec![0.0, 0.25, 0.5, 0.75, 1.0]
    );
    assert_eq!(
        v(Tensor::eye(3, dev)),
        vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    );
    let s = Tensor::scalar(2.5, dev).unwrap();
    assert_eq!((s.rank(), s.to_scalar().unwrap()), (0, 2.5));
    let e = Tensor::zeros(&[0, 3], dev).unwrap();
    assert_eq!((e.numel(), e.to_vec().unwrap().len()), (0, 0));
    assert_eq!(e.sum_all().unwrap().to_scalar().unwrap(), 0.0);
}

/// The global generator is shared by the test's CPU and GPU runs, which run in parallel.
static GLOBAL_SEED: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn random_is_seeded_and_device_independent(dev: &Device) {
    let _seed = GLOBAL_SEED.lock().unwrap_or_else(|e| e.into_inner());
    manual_seed(42);
    let a = Tensor::rand(&[1000], dev).unwrap().to_vec().unwrap();
    manual_seed(42);
    let b = Tensor::rand(&[1000], &Device::cpu())
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(a, b, "same seed, same values on every device");
    assert!(a.iter().all(|&x| (0.0..1.0).contains(&x)));
    let mean = a.iter().sum::<f32>() / 1000.0;
    assert!((mean - 0.5).abs() < 0.05, "uniform mean {mean}");
    let n = Tensor::randn_with(&[20_000], 1.0, 2.0, &mut Generator::new(7), dev).unwrap();
    let m = n.mean_all().unwrap().to_scalar().unwrap();
    let sd = n.var_all().unwrap().to_scalar().unwrap().sqrt();
    assert!(
        (m - 1.0).abs() < 0.05 && (sd - 2.0).abs() < 0.05,
        "normal mean {m} std {sd}"
    );
    let other = Tensor::randn_with(&[20_000], 1.0, 2.0, &mut Generator::new(8), dev).unwrap();
    assert_ne!(n.to_vec().unwrap(), other.to_vec().unwrap());
}

fn views_do_not_copy(dev: &Device) {
    let x = Tensor::arange(0.0, 24.0, 1.0, dev)
        .unwrap()
        .reshape(&[2, 3, 4])
        .unwrap();
    let views = [
        x.reshape(&[6, 4]).unwrap(),
        x.transpose(0, 2).unwrap(),
        x.permute(&[1, 2, 0]).unwrap(),
        x.narrow(1, 1, 2).unwrap(),
        x.slice(2, 1..3).unwrap(),
        x.unsqueeze(0).unwrap(),
        x.unsqueeze(0).unwrap().squeeze(0).unwrap(),
        x.narrow(0, 0, 1).unwrap().broadcast_to(&[5, 3, 4]).unwrap(),
        x.t().unwrap(),
    ];
    for v in &views {
        assert!(v.same_storage(&x), "a view of shape {:?} copied", v.shape());
    }
    let t = x.transpose(1, 2).unwrap();
    assert!(!t.is_contiguous());
    assert_eq!(t.shape(), &[2, 4, 3]);
    assert_eq!(&t.to_vec().unwrap()[..4], &[0.0, 4.0, 8.0, 1.0]);
    let c = t.contiguous().unwrap();
    assert!(c.is_contiguous() && !c.same_storage(&x));
    assert_eq!(c.to_vec().unwrap(), t.to_vec().unwrap());
    // reshape of a non-contiguous view copies, and keeps row-major order.
    assert_eq!(
        t.reshape(&[24]).unwrap().to_vec().unwrap()[..3],
        [0.0, 4.0, 8.0]
    );
    let n = x.narrow(2, 1, 2).unwrap();
    assert_eq!(n.to_vec().unwrap()[..4], [1.0, 2.0, 5.0, 6.0]);
    let b = Tensor::from_vec(vec![1.0, 2.0], &[2, 1], dev)
        .unwrap()
        .expand(&[2, 3])
        .unwrap();
    assert_eq!(b.to_vec().unwrap(), vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
}

fn ranks_zero_to_four(dev: &Device) {
    for shape in [&[][..], &[3], &[2, 3], &[2, 1, 3], &[2, 3, 1, 2]] {
        let x = normal(shape, 3);
        let y = x
            .to_device(dev)
            .unwrap()
            .mul(&x.to_device(dev).unwrap())
            .unwrap();
        assert_eq!(y.shape(), shape);
        let want: Vec<f32> = x.to_vec().unwrap().iter().map(|v| v * v).collect();
        assert_close(&y.to_vec().unwrap(), &want, 0.0, 0.0, "x*x");
    }
}

fn to_device_round_trip(dev: &Device) {
    let x = normal(&[3, 5], 9);
    let y = x.to_device(dev).unwrap().to_device(&Device::cpu()).unwrap();
    assert_eq!(x.to_vec().unwrap(), y.to_vec().unwrap());
    // A view moves as its elements.
    let t = x.t().unwrap().to_device(dev).unwrap();
    assert_eq!(t.to_vec().unwrap(), x.t().unwrap().to_vec().unwrap());
}

fn display(dev: &Device) {
    let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2], dev).unwrap();
    let s = format!("{x}");
    assert!(s.contains("[[1.0000, 2.0000],\n [3.0000, 4.0000]]"), "{s}");
    assert!(s.contains(&format!("shape=[2, 2], device={dev}")), "{s}");
    assert!(format!("{x:.1}").starts_with("[[1.0, 2.0],\n [3.0, 4.0]]"));
    assert!(format!("{x:.0}").starts_with("[[1, 2],\n [3, 4]]"));
    let big = Tensor::arange(0.0, 2000.0, 1.0, dev).unwrap();
    let s = format!("{big:?}");
    assert!(
        s.contains("[0.0000, 1.0000, 2.0000, ..., 1997.0000, 1998.0000, 1999.0000]"),
        "{s}"
    );
}

fn from_nested_arrays(dev: &Device) {
    let m = Tensor::new([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dev).unwrap();
    assert_eq!(m.shape(), &[2, 3]);
    assert_eq!(m.to_vec().unwrap(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(m.device(), dev);
    let cube = Tensor::new(vec![[[1, 2]], [[3, 4]], [[5, 6]]], dev).unwrap();
    assert_eq!((cube.shape(), cube.dtype()), (&[3, 1, 2][..], DType::I32));
    assert_eq!(Vec::<i32>::try_from(&cube).unwrap(), [1, 2, 3, 4, 5, 6]);
    let mask = Tensor::new(&[true, false][..], dev).unwrap();
    assert_eq!(mask.to_vec_as::<bool>().unwrap(), [true, false]);
    let s = Tensor::new(7.5, dev).unwrap();
    assert_eq!((s.shape(), s.item().unwrap()), (&[][..], 7.5));
    let empty = Tensor::new(Vec::<f32>::new(), dev).unwrap();
    assert_eq!(empty.shape(), &[0]);
    let e = Tensor::new(vec![vec![1.0, 2.0], vec![3.0]], dev).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Tensor::new: row 1 has shape [1] but row 0 has [2]: rows must agree"
    );
    assert_eq!(
        m.item().unwrap_err().to_string(),
        "item: expected a tensor with one element, found shape [2, 3]"
    );
    let e = Tensor::new(
        vec![vec![vec![1.0], vec![2.0]], vec![vec![3.0], vec![4.0, 5.0]]],
        dev,
    );
    assert_eq!(
        e.unwrap_err().to_string(),
        "Tensor::new: in row 1: row 1 has shape [2] but row 0 has [1]: rows must agree"
    );
    assert_eq!(m.sum_all().unwrap().item().unwrap(), 21.0);
    let i = m.argmax(1, false).unwrap().narrow(0, 1, 1).unwrap();
    assert_eq!(i.item_as::<i32>().unwrap(), 2);
    assert!(i.item_as::<f32>().is_err());
}

fn async_reads_match(dev: &Device) {
    let x = normal(&[5, 7], 11).to_device(dev).unwrap();
    let read = |t: &Tensor| pollster::block_on(t.to_vec_async()).unwrap();
    assert_eq!(read(&x), x.to_vec().unwrap());
    let tv = x.t().unwrap(); // non-contiguous: copied on the device first
    assert_eq!(read(&tv), tv.to_vec().unwrap());
    let s = x.slice(0, 2..4).unwrap().exp().unwrap(); // pending work is submitted by the read
    assert_eq!(read(&s), s.to_vec().unwrap());
    assert_eq!(read(&Tensor::zeros(&[0], dev).unwrap()), Vec::<f32>::new());
}

device_tests!(
    from_nested_arrays,
    async_reads_match,
    creation,
    random_is_seeded_and_device_independent,
    views_do_not_copy,
    ranks_zero_to_four,
    to_device_round_trip,
    display,
);
