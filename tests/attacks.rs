//! The adversarial example's attacks (`examples/adversarial.rs`) on a CNN trained on a subset
//! of the real MNIST (`../shared/data/mnist`, or `$FERROGRAD_MNIST`), on both devices.

mod common;

#[path = "../examples/adversarial.rs"]
mod adversarial;

use adversarial::mnist::{self, Arch, Options};
use common::devices;
use common::mnist_data as data;
use ferrograd::nn::Module;

/// The adversarial example's attacks, softened, on both devices: on a CNN trained on 2,000
/// images, FGSM at ε = 0.2 costs at least 15 points of accuracy on 100 test digits, PGD-5
/// nearly as much or more (within 5), FGSM at ε = 0 (its gradient still computed) changes
/// nothing, and every attacked pixel stays in [0, 1] and within ε of the original (a broken
/// input gradient leaves the accuracy where it was).
#[test]
fn adversarial_examples_flip_predictions() {
    let Some(data) = data() else { return };
    for dev in devices() {
        let o = Options {
            test_limit: Some(200),
            verbose: false,
            ..mnist::study_options(&dev, 1, Some(2000))
        };
        let (model, _) = mnist::train(Arch::Cnn, &data, &o).unwrap();
        model.eval();
        model.freeze();
        let loader = ferrograd::data::DataLoader::new(&data.test, 100, &dev).unwrap();
        let b = loader.epoch(0).next().unwrap().unwrap();
        let (x, y) = (&b.inputs, &b.targets);
        let correct = |adv: &ferrograd::Tensor| {
            let logits = adversarial::logits(&model, adv).unwrap();
            let pred = logits.argmax(1, false).unwrap();
            pred.eq(y)
                .unwrap()
                .sum_all()
                .unwrap()
                .item_as::<i32>()
                .unwrap()
        };
        let clean = correct(x);
        assert_eq!(
            correct(&adversarial::fgsm(&model, x, y, 0.0).unwrap()),
            clean
        );
        let f = adversarial::fgsm(&model, x, y, 0.2).unwrap();
        let mut gen = ferrograd::Generator::new(1);
        let p = adversarial::pgd(&model, x, y, 0.2, 5, &mut gen).unwrap();
        let (fc, pc) = (correct(&f), correct(&p));
        assert!(clean - fc >= 15, "{dev}: FGSM: {clean} -> {fc} of 100");
        assert!(pc <= fc + 5, "{dev}: PGD {pc} vs FGSM {fc} of 100");
        for adv in [&f, &p] {
            let (a, o) = (adv.to_vec().unwrap(), x.to_vec().unwrap());
            assert!(a
                .iter()
                .zip(&o)
                .all(|(a, o)| (0.0..=1.0).contains(a) && (a - o).abs() <= 0.2 + 1e-6));
        }
    }
}
