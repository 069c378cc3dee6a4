//! The transfer-learning example (`examples/transfer.rs`) on subsets of the real MNIST
//! (`../shared/data/mnist`, or `$FERROGRAD_MNIST`), on both devices, asserting a softened
//! version of its claim.

mod common;

#[path = "../examples/transfer.rs"]
mod transfer;

use common::devices;
use common::mnist_data as data;
use ferrograd::manual_seed;
use ferrograd::nn::Module;

/// The transfer example's comparison, softened, on both devices: features pretrained on
/// digits 0–4 of 3,000 images, loaded from their checkpoint and frozen, stay bit for bit as
/// saved while the head trains on 10 images per digit 5–9, and beat training from scratch on
/// 500 test digits by at least 3 points.
#[test]
fn transfer_reuses_frozen_features() {
    let Some(data) = data() else { return };
    let dir = std::env::temp_dir().join(format!("ferrograd-transfer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for dev in devices() {
        manual_seed(1);
        let pre = transfer::Net::new(5, &dev).unwrap();
        let pretrain = transfer::select(&data.train.take(3000), &[0, 1, 2, 3, 4], None);
        transfer::fit(&pre, &pretrain, 1, 32, 1, &dev).unwrap();
        let path = dir.join(format!(
            "backbone-{}.safetensors",
            if dev.is_cpu() { "cpu" } else { "gpu" }
        ));
        ferrograd::nn::save(&path, &pre.features, "features").unwrap();

        let few = transfer::select(&data.train, &[5, 6, 7, 8, 9], Some(10));
        assert_eq!(few.len(), 50);
        assert!(few.labels.iter().all(|&l| l < 5));
        let test = transfer::select(&data.test, &[5, 6, 7, 8, 9], None).take(500);

        // Frozen features do not move.
        let net = transfer::Net::new(5, &dev).unwrap();
        ferrograd::nn::load(&path, &net.features).unwrap();
        net.features.freeze();
        let before = values(&net.features);
        assert_eq!(before, values(&pre.features));
        transfer::fit(&net, &few, 2, 25, 3, &dev).unwrap();
        assert_eq!(
            values(&net.features),
            before,
            "{dev}: frozen features moved"
        );

        let o = transfer::compare(&path, &few, &test, 20, &dev).unwrap();
        assert!(
            o.frozen >= o.scratch + 3.0,
            "{dev}: frozen {} vs scratch {}",
            o.frozen,
            o.scratch
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn values(m: &dyn Module) -> Vec<Vec<f32>> {
    m.parameters()
        .iter()
        .map(|p| p.value().to_vec().unwrap())
        .collect()
}
