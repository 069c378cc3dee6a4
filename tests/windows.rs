//! The property suite of `tests/properties.rs` again, on a GPU told that one binding holds
//! 32 KiB (`ferrograd::set_binding_limit`): every op that splits its work over tensors larger
//! than a binding (`src/gpu/window.rs`) does so here on small, random, strided tensors, and
//! must still agree with the CPU.

/// 8,192 floats: the suite's larger tensors (up to 20,000 elements) take several pieces.
const BINDING_LIMIT: Option<u64> = Some(32 << 10);

mod common;

include!("props/body.rs");

/// A conv whose input is past the limit runs in batch chunks, each a view of the whole input's
/// storage; unfold and pooling must bind each chunk's own images (their sizes come from the
/// geometry, not from the storage).
#[test]
fn conv_and_pool_in_chunks_of_a_larger_input() {
    let Some(gpu) = common::gpu() else { return };
    ferrograd::set_binding_limit(&gpu, BINDING_LIMIT);
    // 38 KB, 29 KB of columns per image: chunks of one image
    let x = common::uniform(&[12, 2, 20, 20], -1.0, 1.0, 3);
    let w = common::uniform(&[3, 2, 3, 3], -1.0, 1.0, 4);
    let f = |x: &Tensor, w: &Tensor| -> Result<Tensor> {
        let y = x.conv2d(w, None, &Conv2dOptions::new().padding(1))?;
        Tensor::cat(
            &[
                &y.flatten()?,
                &x.max_pool2d(&Pool2dOptions::new(2))?.flatten()?,
            ],
            0,
        )
    };
    let expected = f(&x, &w).unwrap().to_vec().unwrap();
    let (xg, wg) = (x.to_device(&gpu).unwrap(), w.to_device(&gpu).unwrap());
    let got = f(&xg, &wg).unwrap().to_vec().unwrap();
    common::assert_close(&got, &expected, 1e-4, 1e-4, "chunked conv and pooling");
}

/// Lines longer than a binding: arg-max/min in parts (the best part's index), and softmax and
/// its gradient across an outer axis (in parts along an inner one).
#[test]
fn long_lines_in_parts() {
    let Some(gpu) = common::gpu() else { return };
    ferrograd::set_binding_limit(&gpu, BINDING_LIMIT);
    let mut v = common::uniform(&[20_000], -1.0, 1.0, 5).to_vec().unwrap();
    v[12_345] = 3.0; // one maximum, past the first part
    v[17_000] = -3.0;
    let x = Tensor::from_vec(v, &[20_000], &Device::cpu()).unwrap();
    let y = common::uniform(&[65, 65, 4], -2.0, 2.0, 6);
    type Op = Box<dyn Fn(&Tensor, &Tensor) -> Result<Tensor>>;
    let cases: Vec<(&str, Op)> = vec![
        ("argmax_all", Box::new(|x, _| x.argmax_all())),
        ("argmin(0)", Box::new(|x, _| x.argmin(0, false))),
        (
            "argmax(0) of [10000, 2]",
            Box::new(|x, _| x.reshape(&[10_000, 2])?.argmax(0, true)),
        ),
        (
            "max(0) of [10000, 2]",
            Box::new(|x, _| x.reshape(&[10_000, 2])?.max(0, false)),
        ),
        ("softmax(0)", Box::new(|_, y| y.softmax(0))),
        (
            "log_softmax(0)'s gradient",
            Box::new(|_, y| {
                let y = y.requires_grad();
                let g = y.log_softmax(0)?.exp()?.mul(&y)?.sum_all()?.backward()?;
                Ok(g.get(&y).unwrap().clone())
            }),
        ),
    ];
    for (what, f) in cases {
        let expected = f(&x, &y).unwrap().to_vec().unwrap();
        let (xg, yg) = (x.to_device(&gpu).unwrap(), y.to_device(&gpu).unwrap());
        let got = f(&xg, &yg)
            .unwrap_or_else(|e| panic!("{what}: {e}"))
            .to_vec()
            .unwrap();
        common::assert_close(&got, &expected, 1e-5, 1e-4, what);
    }
}
