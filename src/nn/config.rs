//! The network as data: input shape, transferable layers, classes. Everything about
//! shapes (each layer's output, each parameter's shape and name) is derived here, so
//! init, transfer, training and checkpoints agree on them.

use serde::{Deserialize, Serialize};

use super::layer_spec::LayerSpec;

/// A network: `layers` (1-based, the transferable ones) followed by the classifier, a
/// fully connected layer with `classes` outputs that is always re-initialised.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NetConfig {
    /// Channels, height, width.
    pub input: [usize; 3],
    pub layers: Vec<LayerSpec>,
    pub classes: usize,
}

/// The name of a parameter of transferable layer `layer` (1-based): "layers.3.weight".
pub fn layer_param(layer: usize, kind: &str) -> String {
    format!("layers.{layer}.{kind}")
}

pub const CLASSIFIER_WEIGHT: &str = "classifier.weight";
pub const CLASSIFIER_BIAS: &str = "classifier.bias";

/// The most parameters a network may have: 500 million f32 weights are 2 GB, and
/// training keeps their gradients and momentum beside them.
pub const MAX_PARAMS: usize = 500_000_000;

/// The most values one layer may compute per image; a batch holds this many per image
/// for each layer, forward and backward.
pub const MAX_ACTIVATIONS: usize = 1 << 24;

impl NetConfig {
    /// L, the number of transferable layers; the cut n ranges over 0..=L.
    pub fn transferable(&self) -> usize {
        self.layers.len()
    }

    /// Checks that the shapes work out, reporting every problem at once ("; "-joined).
    pub fn validate(&self) -> Result<(), String> {
        match self.walk() {
            Ok(_) => Ok(()),
            Err(problems) => Err(problems.join("; ")),
        }
    }

    /// The output shape (C, H, W) of every transferable layer; fc layers give (out, 1, 1).
    /// The config must be valid.
    pub fn shapes(&self) -> Vec<[usize; 3]> {
        self.walk().expect("shapes() of an unvalidated NetConfig")
    }

    /// Every parameter's name and shape, in network order. Layouts follow PyTorch:
    /// conv weight (out, in, k, k), fc weight (out, in), biases (out).
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        self.param_shapes_of(&self.shapes())
    }

    fn param_shapes_of(&self, shapes: &[[usize; 3]]) -> Vec<(String, Vec<usize>)> {
        let mut prev = self.input;
        let mut out = Vec::with_capacity(2 * self.layers.len() + 2);
        for (i, (layer, shape)) in self.layers.iter().zip(shapes.iter().copied()).enumerate() {
            let weight = match *layer {
                LayerSpec::Conv { out, kernel, .. } => vec![out, prev[0], kernel, kernel],
                LayerSpec::Fc { out, .. } => vec![out, prev.iter().product()],
            };
            out.push((layer_param(i + 1, "weight"), weight));
            out.push((layer_param(i + 1, "bias"), vec![layer.out()]));
            prev = shape;
        }
        out.push((CLASSIFIER_WEIGHT.to_string(), vec![self.classes, prev.iter().product()]));
        out.push((CLASSIFIER_BIAS.to_string(), vec![self.classes]));
        out
    }

    /// Multiply-adds, counted twice, of one image's forward pass: each layer's weights
    /// times the positions it is applied at. The config must be valid.
    pub fn forward_flops(&self) -> f64 {
        let mut prev = self.input;
        let mut flops = 0.0;
        for (layer, shape) in self.layers.iter().zip(self.shapes()) {
            flops += match *layer {
                LayerSpec::Conv { out, kernel, stride, pad, .. } => {
                    let at = |size: usize| ((size + 2 * pad).saturating_sub(kernel) / stride.max(1) + 1) as f64;
                    2.0 * (out * prev[0] * kernel * kernel) as f64 * at(prev[1]) * at(prev[2])
                }
                LayerSpec::Fc { out, .. } => 2.0 * (out * prev.iter().product::<usize>()) as f64,
            };
            prev = shape;
        }
        flops + 2.0 * (self.classes * prev.iter().product::<usize>()) as f64
    }

    fn walk(&self) -> Result<Vec<[usize; 3]>, Vec<String>> {
        let mut problems = Vec::new();
        let [c, h, w] = self.input;
        if c == 0 || h == 0 || w == 0 {
            problems.push(format!("input {c}x{h}x{w} has an empty dimension"));
        }
        if self.classes < 2 {
            problems.push(format!("classes is {}: expected at least 2", self.classes));
        }
        let mut shape = self.input;
        let mut shapes = Vec::with_capacity(self.layers.len());
        let mut seen_fc = false;
        for (i, layer) in self.layers.iter().enumerate() {
            let n = i + 1;
            match *layer {
                LayerSpec::Conv { out, kernel, stride, pad, pool, .. } => {
                    if seen_fc {
                        problems
                            .push(format!("layer {n} (`{}`): a conv layer cannot follow an fc layer", layer.to_text()));
                    }
                    let conv = |size: usize| (size + 2 * pad).checked_sub(kernel).map(|d| d / stride.max(1) + 1);
                    let pooled = |size: usize| match pool {
                        None => Some(size),
                        Some((k, s)) => size.checked_sub(k).map(|d| d / s.max(1) + 1),
                    };
                    match (conv(shape[1]).and_then(pooled), conv(shape[2]).and_then(pooled)) {
                        (Some(h), Some(w)) if h > 0 && w > 0 => shape = [out, h, w],
                        _ => {
                            problems.push(format!(
                                "layer {n} (`{}`): input {}x{}x{} is too small for it",
                                layer.to_text(),
                                shape[0],
                                shape[1],
                                shape[2]
                            ));
                            // Keep walking with a placeholder so later layers are checked too.
                            shape = [out, 1, 1];
                        }
                    }
                    if pad >= kernel {
                        problems.push(format!(
                            "layer {n} (`{}`): pad {pad} must be smaller than the kernel {kernel}",
                            layer.to_text()
                        ));
                    }
                }
                LayerSpec::Fc { out, .. } => {
                    seen_fc = true;
                    shape = [out, 1, 1];
                }
            }
            if layer.out() == 0 {
                problems.push(format!("layer {n}: zero outputs"));
            }
            shapes.push(shape);
        }
        if problems.is_empty() {
            // Sizes are checked before anything is allocated: an allocation that fails
            // aborts the process, and no stage may do that.
            let params: usize = self
                .param_shapes_of(&shapes)
                .iter()
                .map(|(_, s)| s.iter().fold(1usize, |a, d| a.saturating_mul(*d)))
                .fold(0, usize::saturating_add);
            if params > MAX_PARAMS {
                problems.push(format!("the network has {params} parameters; at most {MAX_PARAMS} are supported"));
            }
            let widest =
                shapes.iter().chain([&self.input]).map(|s| s.iter().fold(1usize, |a, d| a.saturating_mul(*d))).max();
            if let Some(w) = widest.filter(|w| *w > MAX_ACTIVATIONS) {
                problems
                    .push(format!("a layer computes {w} values per image; at most {MAX_ACTIVATIONS} are supported"));
            }
        }
        if problems.is_empty() { Ok(shapes) } else { Err(problems) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(input: [usize; 3], layers: &[&str], classes: usize) -> NetConfig {
        NetConfig { input, layers: layers.iter().map(|l| LayerSpec::parse(l).unwrap()).collect(), classes }
    }

    #[test]
    fn sizes_that_would_not_fit_in_memory_are_refused_before_allocating() {
        // 3x1024x1024 inputs into 1,048,576 units: 3.3e12 weights.
        let e = cfg([3, 1024, 1024], &["fc 1048576"], 10).validate().unwrap_err();
        assert!(e.contains("parameters; at most 500000000"), "{e}");
        // 1,048,576 channels of 64x64: 4.3e9 values per image.
        let e = cfg([1, 64, 64], &["conv 1048576 3"], 10).validate().unwrap_err();
        assert!(e.contains("values per image; at most"), "{e}");
        assert!(cfg([3, 32, 32], &["conv 64 3 pool", "fc 512"], 10).validate().is_ok());
    }

    #[test]
    fn forward_flops_count_each_layers_weights_where_they_apply() {
        // conv: 4 x 1 x 3 x 3 weights at 8 x 8 positions; fc: 16 x 256; classifier 4 x 16.
        let c = cfg([1, 8, 8], &["conv 4 3", "fc 16"], 4);
        assert_eq!(c.forward_flops(), 2.0 * (36.0 * 64.0 + 16.0 * 256.0 + 4.0 * 16.0));
    }

    #[test]
    fn alexnet_shapes_work_out() {
        let alex = cfg(
            [3, 227, 227],
            &[
                "conv 96 11 stride=4 pad=0 pool=3/2 lrn",
                "conv 256 5 pool=3/2 lrn",
                "conv 384 3",
                "conv 384 3",
                "conv 256 3 pool=3/2",
                "fc 4096 dropout",
                "fc 4096 dropout",
            ],
            500,
        );
        alex.validate().unwrap();
        assert_eq!(alex.transferable(), 7);
        assert_eq!(alex.shapes()[0], [96, 27, 27]);
        assert_eq!(alex.shapes()[4], [256, 6, 6]);
        let params = alex.param_shapes();
        assert_eq!(params[0], ("layers.1.weight".into(), vec![96, 3, 11, 11]));
        assert_eq!(params[10], ("layers.6.weight".into(), vec![4096, 9216]));
        assert_eq!(params[15], ("classifier.bias".into(), vec![500]));
    }

    #[test]
    fn reports_every_problem() {
        let bad = cfg([1, 4, 4], &["fc 8", "conv 8 3", "conv 8 9 pad=0"], 1);
        let err = bad.validate().unwrap_err();
        assert_eq!(
            err,
            "classes is 1: expected at least 2; \
             layer 2 (`conv 8 3`): a conv layer cannot follow an fc layer; \
             layer 3 (`conv 8 9 pad=0`): a conv layer cannot follow an fc layer; \
             layer 3 (`conv 8 9 pad=0`): input 8x1x1 is too small for it"
        );
    }

    #[test]
    fn json_has_layers_as_text() {
        let c = cfg([1, 8, 8], &["conv 4 3 pool", "fc 16 dropout"], 4);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"input":[1,8,8],"layers":["conv 4 3 pool","fc 16 dropout"],"classes":4}"#);
        assert_eq!(serde_json::from_str::<NetConfig>(&json).unwrap(), c);
        let err =
            serde_json::from_str::<NetConfig>(r#"{"input":[1,8,8],"layers":["conv 4 x"],"classes":4}"#).unwrap_err();
        assert!(err.to_string().contains("bad kernel size `x`"), "{err}");
    }
}
