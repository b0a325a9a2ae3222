//! Test fixtures: a tiny network and a small, separable image problem drawn from our
//! Rng: 4 classes of 1x8x8 images, each class a bright quadrant on a dark background,
//! plus noise.

use super::{Augment, Backend, Images, LayerSpec, NetConfig, Schedule, TrainConfig};
use crate::rng::Rng;

pub(crate) struct Owned {
    pub pixels: Vec<u8>,
    pub labels: Vec<u16>,
}

impl Owned {
    pub fn images(&self) -> Images<'_> {
        Images { pixels: &self.pixels, labels: &self.labels, shape: [1, 8, 8] }
    }
}

pub(crate) fn quadrants(per_class: usize, seed: u64) -> Owned {
    let mut rng = Rng::new(seed);
    let mut pixels = Vec::with_capacity(per_class * 4 * 64);
    let mut labels = Vec::new();
    for i in 0..per_class * 4 {
        let class = i % 4;
        let (qy, qx) = (class / 2, class % 2);
        for y in 0..8 {
            for x in 0..8 {
                let lit = y / 4 == qy && x / 4 == qx;
                let base = if lit { 170.0 } else { 60.0 };
                let v = base + 30.0 * rng.normal();
                pixels.push(v.clamp(0.0, 255.0) as u8);
            }
        }
        labels.push(class as u16);
    }
    Owned { pixels, labels }
}

pub(crate) fn tiny_net() -> NetConfig {
    NetConfig {
        input: [1, 8, 8],
        layers: ["conv 4 3 pool", "conv 6 3 pool lrn", "fc 16 dropout=0.25"]
            .iter()
            .map(|l| LayerSpec::parse(l).unwrap())
            .collect(),
        classes: 4,
    }
}

pub(crate) fn train_config(epochs: usize, frozen: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch: 16,
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 5e-4,
        schedule: Schedule::Step { every: 2, gamma: 0.5 },
        augment: Augment { crop_pad: 1, flip: true },
        seed: 7,
        frozen,
        device: Backend::Cpu,
    }
}
