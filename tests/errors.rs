//! Every error the foundation can return, produced on purpose, with its message checked: the
//! op is named, and so are the offending values.

mod common;
use ferrograd::{DType, Device, Error, Tensor};

fn msg<T: std::fmt::Debug>(r: ferrograd::Result<T>) -> String {
    r.expect_err("should fail").to_string()
}

fn shape_errors(dev: &Device) {
    let a = Tensor::zeros(&[2, 3], dev).unwrap();
    let b = Tensor::zeros(&[4, 5], dev).unwrap();
    assert_eq!(
        msg(a.matmul(&b)),
        "matmul: shapes [2, 3] and [4, 5] cannot be multiplied (inner dimensions 3 and 4 differ)"
    );
    assert_eq!(
        msg(a.add(&b)),
        "add: shapes [2, 3] and [4, 5] cannot be broadcast together (axis 1 from the right: 3 vs 5)"
    );
    assert!(msg(Tensor::from_vec(vec![1.0; 5], &[2, 3], dev))
        .contains("from_vec: shape [2, 3] holds 6 elements but 5 were given"));
    assert!(msg(a.reshape(&[4]))
        .contains("reshape: shapes [2, 3] and [4] hold different numbers of elements (6 vs 4)"));
    assert!(msg(a.broadcast_to(&[3, 3]))
        .starts_with("broadcast_to: shapes [2, 3] and [3, 3] cannot be broadcast"));
    assert!(msg(Tensor::cat(&[&a, &b], 0))
        .starts_with("cat: shapes [2, 3] and [4, 5] differ off the joined axis 0"));
    assert!(msg(Tensor::stack(&[&a, &b], 0)).starts_with("stack: shapes [2, 3] and [4, 5] differ"));
    assert!(
        msg(a.gather(0, &Tensor::zeros_dtype(&[3], DType::I32, dev).unwrap()))
            .starts_with("gather: shapes [2, 3] and [3] do not fit")
    );
    assert!(
        msg(a.index_select(0, &Tensor::zeros_dtype(&[1, 1], DType::I32, dev).unwrap()))
            .contains("indices must be 1-D, found shape [1, 1]")
    );
    assert!(msg(a.to_scalar())
        .contains("to_scalar: expected a tensor with one element, found shape [2, 3]"));
    assert!(msg(Tensor::scalar(1.0, dev).unwrap().matmul(&a))
        .contains("matmul needs at least 1-D operands"));
    // linear: x [2, 3], weight [out, in], bias [out]
    let relu = ferrograd::Activation::Relu;
    assert_eq!(
        msg(a.linear(&b, None, relu)),
        "linear: shapes [2, 3] and [4, 5] do not fit: the input needs 5 features on its last axis"
    );
    let w = Tensor::zeros(&[4, 3], dev).unwrap();
    assert_eq!(
        msg(a.linear(&w, Some(&a), relu)),
        "linear: shapes [2, 3] and [2, 3] do not fit: the bias must be [4], one value per output"
    );
    assert!(
        msg(a.linear(&Tensor::zeros(&[3], dev).unwrap(), None, relu))
            .contains("the weight must be 2-D, [out_features, in_features]")
    );
}

fn axis_errors(dev: &Device) {
    let a = Tensor::zeros(&[2, 3], dev).unwrap();
    assert_eq!(
        msg(a.sum(2, false)),
        "sum: axis 2 is out of range for a tensor of rank 2 (valid: -2..=1)"
    );
    assert_eq!(
        msg(a.softmax(-3)),
        "softmax: axis -3 is out of range for a tensor of rank 2 (valid: -2..=1)"
    );
    assert!(msg(a.transpose(0, 5)).starts_with("transpose: axis 5 is out of range"));
    assert!(msg(a.permute(&[0, 0]))
        .contains("permute: [0, 0] is not a permutation of the 2 axes of shape [2, 3]"));
    assert!(
        msg(a.narrow(1, 2, 2)).contains("narrow: range 2..4 is out of bounds for axis 1 of size 3")
    );
    assert!(msg(a.squeeze(0)).contains("squeeze: axis 0 has size 2 (must be 1)"));
    assert!(msg(Tensor::zeros(&[0], dev).unwrap().max_all())
        .contains("max: cannot reduce a tensor with no elements (shape [0])"));
    assert!(msg(Tensor::zeros(&[2, 0], dev).unwrap().min(1, false))
        .contains("min: cannot reduce axis 1, which is empty in shape [2, 0]"));
    assert!(msg(Tensor::arange(0.0, 1.0, 0.0, dev))
        .contains("arange: cannot go from 0 to 1 in steps of 0"));
    assert!(msg(a.clamp(1.0, 0.0)).contains("clamp: min 1 must not exceed max 0"));
    assert!(msg(a.one_hot(0)).contains("one_hot: classes must be at least 1"));
}

fn index_error_names_values(dev: &Device) {
    // On the GPU the fault is reported by the output's readback.
    let a = Tensor::zeros(&[2, 3], dev).unwrap();
    assert_eq!(
        msg(a
            .index_select(1, &Tensor::from_vec(vec![3], &[1], dev).unwrap())
            .and_then(|t| t.to_vec())),
        "index_select: index 3 is out of range for axis 1 of size 3"
    );
}

device_tests!(shape_errors, axis_errors, index_error_names_values);

#[test]
fn device_mismatch_names_both_devices() {
    let Some(gpu) = common::gpu() else { return };
    let a = Tensor::zeros(&[2], &Device::cpu()).unwrap();
    let b = Tensor::zeros(&[2], &gpu).unwrap();
    let m = msg(a.add(&b));
    assert!(
        m.starts_with("add: operands are on different devices (cpu and gpu:"),
        "{m}"
    );
    assert!(m.contains("to_device"), "{m}");
    let w = Tensor::zeros(&[3, 2], &gpu).unwrap();
    let m = msg(a.linear(&w, None, ferrograd::Activation::Identity));
    assert!(
        m.starts_with("linear: operands are on different devices"),
        "{m}"
    );
}

#[test]
fn too_large_for_the_device() {
    let Some(gpu) = common::gpu() else { return };
    // 2^31 f32s (8 GiB) exceed any binding limit; the error comes before any allocation.
    let e = Tensor::zeros(&[1 << 16, 1 << 15], &gpu).expect_err("too large");
    assert!(matches!(e, Error::TooLarge { op: "zeros", .. }), "{e:?}");
    assert!(
        e.to_string().contains("bytes exceed the device limit of"),
        "{e}"
    );
}

#[test]
fn operators_return_errors_not_panics() {
    let a = Tensor::zeros(&[2], &Device::cpu()).unwrap();
    let b = Tensor::zeros(&[3], &Device::cpu()).unwrap();
    let e = (&a + &b).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("add: shapes [2] and [3] cannot be broadcast"),
        "{e}"
    );
    // In a chain, the first error is the result, with the op that failed named.
    let e = (&a - (&b * &a) + &a).unwrap_err();
    assert!(e.to_string().starts_with("mul: shapes [3] and [2]"), "{e}");
    let e = ((&a * 2.0).unwrap() - &b).unwrap_err();
    assert!(e.to_string().starts_with("sub: shapes [2] and [3]"), "{e}");
}

#[test]
fn no_adapter_message_says_what_to_do() {
    let e = Error::NoAdapter {
        reason: "wgpu found no adapter".into(),
    };
    let m = e.to_string();
    assert!(
        m.contains("mesa-vulkan-drivers") && m.contains("Device::cpu()"),
        "{m}"
    );
}
