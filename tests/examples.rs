//! Shortened runs of the training examples (`examples/classify.rs`, `examples/regression.rs`)
//! on each device. They seed the global generator, so each test runs its devices in turn.

mod common;

#[path = "../examples/regression.rs"]
#[allow(dead_code)]
mod regression; // includes classify.rs

use common::devices;
use regression::classify;

#[test]
fn classify_reaches_full_accuracy() {
    for dev in devices() {
        // 400 of the example's 1,000 steps already separate the spirals.
        let acc = classify::train(&dev, 400, 0).unwrap();
        assert_eq!(acc, 100.0, "two spirals on {dev}: {acc} %");
    }
}

#[test]
fn regression_fits_to_the_noise() {
    for dev in devices() {
        let rmse = regression::fit(&dev, 1500, false).unwrap();
        assert!(
            rmse <= 1.1 * regression::NOISE,
            "CO2 regression on {dev}: held-out RMSE {rmse} g/km"
        );
    }
}
