//! A network's parameters by name, and their seeded initialisation.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor};

use super::config::NetConfig;
use super::error::NnError;
use crate::rng::Rng;

/// Parameters by name: "layers.1.weight", "layers.1.bias", ..., "classifier.weight",
/// "classifier.bias". A BTreeMap so that iteration order, and with it every byte that
/// is derived from it, does not depend on hashing.
pub type Params = BTreeMap<String, Tensor>;

/// Fresh parameters for `cfg`, deterministic in `seed`.
///
/// Weights are Kaiming-normal for the ReLU layers (std = sqrt(2 / fan_in)) and
/// LeCun-normal for the classifier, which has no ReLU (std = sqrt(1 / fan_in)); biases
/// are zero. Each tensor draws from its own stream, `Rng::derive(seed, "init/NAME")`,
/// so a tensor's values depend only on the seed, its name and its shape: layers above
/// the cut of a transfer are exactly the fresh network's, whatever is below.
///
/// Panics if `cfg` is invalid (validate it first).
pub fn init(cfg: &NetConfig, seed: u64) -> Params {
    let mut params = Params::new();
    for (name, shape) in cfg.param_shapes() {
        let len: usize = shape.iter().product();
        let values = if name.ends_with(".bias") {
            vec![0f32; len]
        } else {
            let fan_in: usize = shape[1..].iter().product();
            let gain = if name.starts_with("classifier.") { 1.0 } else { 2.0 };
            let std = (gain / fan_in as f64).sqrt() as f32;
            let mut rng = Rng::derive(seed, &format!("init/{name}"));
            (0..len).map(|_| rng.normal() * std).collect()
        };
        let tensor = Tensor::from_vec(values, shape, &Device::Cpu).expect("shape matches length");
        params.insert(name, tensor);
    }
    params
}

/// Checks that `params` has exactly the tensors `cfg` needs, as f32 with the right
/// shapes.
pub(crate) fn check_params(cfg: &NetConfig, params: &Params) -> Result<(), NnError> {
    let shapes = cfg.param_shapes();
    for (name, shape) in &shapes {
        let t = params.get(name).ok_or_else(|| NnError::params(name, "missing"))?;
        if t.dtype() != DType::F32 {
            return Err(NnError::params(name, format!("dtype {:?}, expected f32", t.dtype())));
        }
        if t.dims() != shape.as_slice() {
            return Err(NnError::params(name, format!("shape {:?}, expected {:?}", t.dims(), shape)));
        }
    }
    if let Some(extra) = params.keys().find(|k| !shapes.iter().any(|(n, _)| n == *k)) {
        return Err(NnError::params(extra, "not a parameter of this network"));
    }
    Ok(())
}

/// The bytes of a tensor as stored (f32 little-endian on x86), for byte-exact
/// comparisons and hashing.
pub(crate) fn tensor_bytes(t: &Tensor) -> Result<Vec<u8>, NnError> {
    let values = t.flatten_all()?.to_vec1::<f32>()?;
    Ok(values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::LayerSpec;

    #[test]
    fn init_is_deterministic_and_scaled() {
        let cfg = NetConfig {
            input: [1, 8, 8],
            layers: vec![LayerSpec::parse("conv 16 3").unwrap(), LayerSpec::parse("fc 64").unwrap()],
            classes: 4,
        };
        let a = init(&cfg, 1);
        let b = init(&cfg, 1);
        let c = init(&cfg, 2);
        check_params(&cfg, &a).unwrap();
        for (name, t) in &a {
            assert_eq!(tensor_bytes(t).unwrap(), tensor_bytes(&b[name]).unwrap(), "{name}");
        }
        let w = &a["layers.2.weight"];
        assert_ne!(tensor_bytes(w).unwrap(), tensor_bytes(&c["layers.2.weight"]).unwrap());
        let var: f32 = w.sqr().unwrap().mean_all().unwrap().to_scalar().unwrap();
        let want = 2.0 / (16.0 * 64.0);
        assert!((var / want - 1.0).abs() < 0.1, "{var} vs {want}");
        assert!(a["layers.1.bias"].to_vec1::<f32>().unwrap().iter().all(|&v| v == 0.0));
    }
}
