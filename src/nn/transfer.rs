//! The cut of the experiment: layers 1..n from a base network, the rest fresh.

use super::params::Params;

/// What a transfer did, by parameter name.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TransferReport {
    /// Taken from the base network (layers 1..n).
    pub copied: Vec<String>,
    /// Taken from the fresh initialisation (layers n+1.. and the classifier).
    pub reinitialised: Vec<String>,
    /// Base parameters that were not used (layers above n, the base's classifier).
    pub left_out: Vec<String>,
}

/// Builds the starting point of AnB / BnB / random-baseline networks: the parameters of
/// layers 1..=n come from `base` bit for bit (shapes must match the fresh network's),
/// everything else from `fresh`. n = 0 copies nothing.
pub fn transfer(base: &Params, fresh: Params, n: usize) -> Result<(Params, TransferReport), String> {
    let layers = transferable_layers(&fresh);
    if n > layers {
        return Err(format!("cut n = {n} is above the network's {layers} transferable layers"));
    }
    let mut report = TransferReport { copied: Vec::new(), reinitialised: Vec::new(), left_out: Vec::new() };
    let mut out = Params::new();
    for (name, tensor) in fresh {
        match layer_of(&name) {
            Some(layer) if layer <= n => {
                let from = base.get(&name).ok_or_else(|| format!("base network has no `{name}` to copy"))?;
                if from.dims() != tensor.dims() || from.dtype() != tensor.dtype() {
                    return Err(format!(
                        "cannot copy `{name}`: base has {:?} {:?}, this network needs {:?} {:?}",
                        from.dtype(),
                        from.dims(),
                        tensor.dtype(),
                        tensor.dims()
                    ));
                }
                report.copied.push(name.clone());
                out.insert(name, from.clone());
            }
            _ => {
                report.reinitialised.push(name.clone());
                out.insert(name, tensor);
            }
        }
    }
    report.left_out = base.keys().filter(|k| !report.copied.contains(k)).cloned().collect();
    Ok((out, report))
}

/// The 1-based layer of "layers.K.weight"; None for the classifier.
fn layer_of(name: &str) -> Option<usize> {
    name.strip_prefix("layers.")?.split('.').next()?.parse().ok()
}

fn transferable_layers(params: &Params) -> usize {
    params.keys().filter_map(|k| layer_of(k)).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::params::tensor_bytes;
    use crate::nn::{LayerSpec, NetConfig, init};

    fn cfg(classes: usize) -> NetConfig {
        NetConfig {
            input: [1, 8, 8],
            layers: ["conv 4 3 pool", "conv 6 3", "fc 16", "fc 12"]
                .iter()
                .map(|l| LayerSpec::parse(l).unwrap())
                .collect(),
            classes,
        }
    }

    #[test]
    fn copies_below_the_cut_and_keeps_fresh_above() {
        let base = init(&cfg(5), 1);
        let fresh = init(&cfg(3), 2);
        for n in 0..=4 {
            let (out, report) = transfer(&base, fresh.clone(), n).unwrap();
            assert_eq!(out.len(), fresh.len());
            for (name, t) in &out {
                let layer = layer_of(name);
                let want = match layer {
                    Some(l) if l <= n => &base[name],
                    _ => &fresh[name],
                };
                assert_eq!(tensor_bytes(t).unwrap(), tensor_bytes(want).unwrap(), "n={n} {name}");
                // Base and fresh differ everywhere (different seeds), so the check bites.
                if name.ends_with("weight") && name.starts_with("layers.") {
                    assert_ne!(tensor_bytes(&base[name]).unwrap(), tensor_bytes(&fresh[name]).unwrap());
                }
            }
            assert_eq!(report.copied.len(), 2 * n);
            assert_eq!(report.reinitialised.len(), 2 * (4 - n) + 2);
            assert!(report.left_out.contains(&"classifier.weight".to_string()));
        }
    }

    #[test]
    fn refuses_bad_cuts_and_shapes() {
        let base = init(&cfg(5), 1);
        assert_eq!(
            transfer(&base, init(&cfg(3), 2), 5).unwrap_err(),
            "cut n = 5 is above the network's 4 transferable layers"
        );
        let mut other = cfg(3);
        other.layers[1] = LayerSpec::parse("conv 7 3").unwrap();
        let err = transfer(&base, init(&other, 2), 2).unwrap_err();
        assert!(err.starts_with("cannot copy `layers.2.bias`"), "{err}");
        assert!(transfer(&base, init(&other, 2), 1).is_ok());
    }
}
