//! A trained network on disk: `model.safetensors` (f32, parameter names as in
//! [`Params`], loadable with `safetensors.torch.load_file`) and `config.json` (the
//! [`NetConfig`], layers as text). Each file is published atomically.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use super::atomic::{write_atomic, write_bytes_atomic};
use super::config::NetConfig;
use super::error::NnError;
use super::params::{Params, check_params};

pub const MODEL_FILE: &str = "model.safetensors";
const CONFIG_FILE: &str = "config.json";

pub fn save_checkpoint(dir: &Path, cfg: &NetConfig, params: &Params) -> Result<(), NnError> {
    cfg.validate().map_err(NnError::Config)?;
    check_params(cfg, params)?;
    std::fs::create_dir_all(dir).map_err(|e| NnError::io(dir, e))?;
    let tensors: HashMap<&str, Tensor> = params.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let model_path = dir.join(MODEL_FILE);
    write_atomic(&model_path, |tmp| {
        candle_core::safetensors::save(&tensors, tmp)
            .map_err(|source| NnError::WriteTensors { path: model_path.clone(), source })
    })?;
    let mut json = serde_json::to_vec_pretty(cfg).expect("config serialises");
    json.push(b'\n');
    write_bytes_atomic(&dir.join(CONFIG_FILE), &json)
}

/// Reads a checkpoint back and checks that the tensors fit the config.
pub fn load_checkpoint(dir: &Path) -> Result<(NetConfig, Params), NnError> {
    let config_path = dir.join(CONFIG_FILE);
    let text = std::fs::read(&config_path).map_err(|e| NnError::io(&config_path, e))?;
    let cfg: NetConfig =
        serde_json::from_slice(&text).map_err(|source| NnError::Json { path: config_path.clone(), source })?;
    cfg.validate().map_err(NnError::Config)?;
    let model_path = dir.join(MODEL_FILE);
    if !model_path.exists() {
        return Err(NnError::io(&model_path, std::io::Error::from(std::io::ErrorKind::NotFound)));
    }
    let params: Params = candle_core::safetensors::load(&model_path, &Device::Cpu)
        .map_err(|source| NnError::ReadTensors { path: model_path.clone(), source })?
        .into_iter()
        .collect();
    check_params(&cfg, &params)?;
    Ok((cfg, params))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::init;
    use crate::nn::params::tensor_bytes;
    use crate::nn::synthetic::tiny_net;

    #[test]
    fn round_trips_names_shapes_bytes_and_config() {
        let cfg = tiny_net();
        let params = init(&cfg, 5);
        let dir = tempfile::tempdir().unwrap();
        save_checkpoint(dir.path(), &cfg, &params).unwrap();
        let (cfg2, params2) = load_checkpoint(dir.path()).unwrap();
        assert_eq!(cfg2, cfg);
        assert_eq!(
            params2.keys().collect::<Vec<_>>(),
            vec![
                "classifier.bias",
                "classifier.weight",
                "layers.1.bias",
                "layers.1.weight",
                "layers.2.bias",
                "layers.2.weight",
                "layers.3.bias",
                "layers.3.weight"
            ]
        );
        for (name, t) in &params {
            assert_eq!(params2[name].dims(), t.dims(), "{name}");
            assert_eq!(tensor_bytes(&params2[name]).unwrap(), tensor_bytes(t).unwrap());
        }
        assert_eq!(params2["layers.3.weight"].dims(), &[16, 24]);
        let json = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        assert!(json.contains("\"conv 6 3 pool lrn\""), "{json}");
        // No temporary files left behind.
        let names: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn a_damaged_header_is_named_with_its_file_and_cause() {
        let cfg = tiny_net();
        let dir = tempfile::tempdir().unwrap();
        save_checkpoint(dir.path(), &cfg, &init(&cfg, 5)).unwrap();
        let model = dir.path().join(MODEL_FILE);
        let mut bytes = std::fs::read(&model).unwrap();
        bytes[8..16].copy_from_slice(b"{garbag!");
        std::fs::write(&model, bytes).unwrap();
        let e = load_checkpoint(dir.path()).unwrap_err();
        let chain = crate::causes::chain(&e);
        assert_eq!(chain[0], format!("cannot read tensors from {}", model.display()));
        assert!(chain.len() >= 2, "the cause is kept: {chain:?}");
    }

    #[test]
    fn load_rejects_a_mismatched_model() {
        let cfg = tiny_net();
        let dir = tempfile::tempdir().unwrap();
        save_checkpoint(dir.path(), &cfg, &init(&cfg, 5)).unwrap();
        let mut other = cfg.clone();
        other.classes = 3;
        std::fs::write(dir.path().join("config.json"), serde_json::to_vec(&other).unwrap()).unwrap();
        let err = load_checkpoint(dir.path()).unwrap_err();
        assert_eq!(err.to_string(), "parameter classifier.weight: shape [4, 16], expected [3, 16]");
    }
}
