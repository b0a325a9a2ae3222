//! Helpers for the kernels' tests: seeded random tensors and a relative comparison.

use candle_core::{Device, Tensor};

use crate::rng::Rng;

/// Standard-normal values from our seeded stream.
pub(super) fn random(dims: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    let len = dims.iter().product();
    Tensor::from_vec((0..len).map(|_| rng.normal()).collect::<Vec<f32>>(), dims, &Device::Cpu).unwrap()
}

/// Every value within 1e-4 of the reference, relative to the reference's largest
/// magnitude (sums of many terms land near zero, where an element-wise relative test
/// would only measure rounding).
pub(super) fn assert_close(ours: &Tensor, reference: &Tensor, case: &str) {
    assert_eq!(ours.dims(), reference.dims(), "{case}");
    let a = ours.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = reference.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(worst <= 1e-4 * scale, "{case}: max difference {worst} against scale {scale}");
}
