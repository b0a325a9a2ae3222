//! The `network` and `training` settings shared by `train` and `transfer` stages,
//! usually given once at the top of the pipeline file and overridden per stage.
//!
//! ```yaml
//! network:
//!   layers: [conv 16 3 pool, conv 32 3 pool, fc 128 dropout]   # layers 1..L; the classifier follows
//! training:
//!   epochs: 8
//!   batch: 64
//!   lr: 0.02
//!   momentum: 0.9
//!   weight_decay: 5.0e-4
//!   schedule: cosine          # constant | step | cosine
//!   step_every: 3             # epochs between steps (schedule: step)
//!   gamma: 0.1                # factor per step (schedule: step)
//!   augment: {crop_pad: 0, flip: false}
//! ```

use serde::Serialize;

use crate::config::diagnostic::Diagnostics;
use crate::config::node::Value;
use crate::config::reader::MapReader;
use crate::nn::{Augment, Backend, LayerSpec, Schedule, TrainConfig};

/// The `network` settings as they enter a stage's key: the layers, without the input
/// shape and classes (those come from the data it is trained on). A layer is keyed by
/// its canonical text (`conv 8 3 pool`), so equal layers written differently are equal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkParams {
    pub layers: Vec<LayerSpec>,
}

pub fn read_network(m: &mut MapReader<'_>, diags: &mut Diagnostics) -> Option<NetworkParams> {
    let node = m.require("network", diags)?;
    let path = m.path("network");
    let mut inner = MapReader::new(node, path.clone(), diags)?;
    let layers_node = inner.require("layers", diags);
    inner.finish(diags);
    let layers_node = layers_node?;
    let lpath = path.key("layers");
    let Value::Seq(items) = &layers_node.value else {
        diags.error(layers_node.mark, &lpath, format!("expected a list of layers, found {}", layers_node.type_name()));
        return None;
    };
    if items.is_empty() {
        diags.error(layers_node.mark, &lpath, "a network needs at least one layer");
        return None;
    }
    let mut layers = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let text = match &item.value {
            Value::Str(s) => s.clone(),
            _ => {
                diags.error(
                    item.mark,
                    &lpath.index(i),
                    "expected a layer such as `conv 32 3 pool` or `fc 128 dropout`",
                );
                ok = false;
                continue;
            }
        };
        match LayerSpec::parse(&text) {
            Ok(l) => layers.push(l),
            Err(e) => {
                diags.error_help(item.mark, &lpath.index(i), format!("layer {}: {e}", i + 1), LAYER_HELP);
                ok = false;
            }
        }
    }
    ok.then_some(NetworkParams { layers })
}

const LAYER_HELP: &str = "layers read `conv OUT KERNEL [stride=S] [pad=P] [pool[=SIZE/STRIDE]] [lrn]` or \
                          `fc OUT [dropout[=P]]`";

/// The most epochs a stage may train: far past any schedule in the paper, well short of
/// a typo that would run for months.
pub const MAX_EPOCHS: usize = 100_000;
/// The largest batch.
pub const MAX_BATCH: usize = 1 << 16;
/// The widest padding for random crops.
pub const MAX_CROP_PAD: usize = 64;

/// The `training` settings, every default filled in.
pub fn read_training(m: &mut MapReader<'_>, diags: &mut Diagnostics) -> TrainingParams {
    let defaults = || TrainingParams {
        epochs: 8,
        batch: 64,
        lr: 0.02,
        momentum: 0.9,
        weight_decay: 5e-4,
        schedule: ScheduleParams::Cosine,
        augment: AugmentParams { crop_pad: 0, flip: false },
        device: None,
    };
    let read = |t: &mut MapReader<'_>, diags: &mut Diagnostics| {
        let d = defaults();
        let epochs = t.uint("epochs", d.epochs as u64, diags) as usize;
        let batch = t.uint("batch", d.batch as u64, diags) as usize;
        let lr = t.float("lr", d.lr, diags);
        let momentum = t.float("momentum", d.momentum, diags);
        let weight_decay = t.float("weight_decay", d.weight_decay, diags);
        let schedule = t.choice("schedule", &["constant", "step", "cosine"], "cosine", diags);
        let step_every = t.uint("step_every", 3, diags) as usize;
        let gamma = t.float("gamma", 0.1, diags);
        let augment = t
            .map("augment", diags, |a, diags| AugmentParams {
                crop_pad: a.uint("crop_pad", 0, diags) as usize,
                flip: a.boolean("flip", false, diags),
            })
            .unwrap_or(d.augment);
        if augment.crop_pad > MAX_CROP_PAD {
            let at = t.node().get("augment").map_or(t.node().mark, |n| n.mark);
            diags.error(at, &t.path("augment").key("crop_pad"), format!("crop_pad must be at most {MAX_CROP_PAD}"));
        }
        // A CPU run has no `device` in its key: the keys CPU runs always had.
        let device = match t.choice("device", &["cpu", "cuda"], "cpu", diags) {
            "cuda" => Some(Backend::Cuda),
            _ => None,
        };
        let at = |t: &MapReader<'_>, key: &str| t.node().get(key).map_or(t.node().mark, |n| n.mark);
        if !(1..=MAX_EPOCHS).contains(&epochs) {
            diags.error(at(t, "epochs"), &t.path("epochs"), format!("epochs must be between 1 and {MAX_EPOCHS}"));
        }
        if !(1..=MAX_BATCH).contains(&batch) {
            diags.error(at(t, "batch"), &t.path("batch"), format!("batch must be between 1 and {MAX_BATCH}"));
        }
        if lr < 0.0 || !(0.0..1.0).contains(&momentum) || weight_decay < 0.0 {
            diags.error(t.node().mark, &t.path("lr"), "lr and weight_decay must be >= 0, momentum in [0, 1)");
        }
        let schedule = match schedule {
            "constant" => ScheduleParams::Constant,
            "step" => ScheduleParams::Step { every: step_every.max(1), gamma },
            _ => ScheduleParams::Cosine,
        };
        TrainingParams { epochs, batch, lr, momentum, weight_decay, schedule, augment, device }
    };
    m.map("training", diags, read).unwrap_or_else(defaults)
}

/// The `training` settings as they enter a stage's key: every default filled in, one
/// field per setting that changes the trained bytes. Training runs from this struct
/// ([`TrainingParams::config`]), so no setting can change a result without being in the
/// key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainingParams {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub schedule: ScheduleParams,
    pub augment: AugmentParams,
    /// A GPU's bytes are not the CPU's: a GPU run is its own cache entry. CPU runs keep
    /// the key they always had (no `device` field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<Backend>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleParams {
    Constant,
    Cosine,
    Step { every: usize, gamma: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AugmentParams {
    pub crop_pad: usize,
    pub flip: bool,
}

impl TrainingParams {
    /// The training configuration these settings describe, for a network of `seed`.
    pub fn config(&self, seed: u64) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            batch: self.batch,
            lr: self.lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            schedule: match self.schedule {
                ScheduleParams::Constant => Schedule::Constant,
                ScheduleParams::Cosine => Schedule::Cosine,
                ScheduleParams::Step { every, gamma } => Schedule::Step { every, gamma },
            },
            augment: Augment { crop_pad: self.augment.crop_pad, flip: self.augment.flip },
            seed,
            frozen: 0,
            device: self.device.unwrap_or(Backend::Cpu),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trainer_gets_every_setting() {
        let p = TrainingParams {
            epochs: 7,
            batch: 16,
            lr: 0.03,
            momentum: 0.8,
            weight_decay: 1e-4,
            schedule: ScheduleParams::Step { every: 3, gamma: 0.5 },
            augment: AugmentParams { crop_pad: 2, flip: true },
            device: Some(Backend::Cuda),
        };
        let want = TrainConfig {
            epochs: 7,
            batch: 16,
            lr: 0.03,
            momentum: 0.8,
            weight_decay: 1e-4,
            schedule: Schedule::Step { every: 3, gamma: 0.5 },
            augment: Augment { crop_pad: 2, flip: true },
            seed: 5,
            frozen: 0,
            device: Backend::Cuda,
        };
        assert_eq!(p.config(5), want);
        let cpu = TrainingParams { device: None, schedule: ScheduleParams::Cosine, ..p };
        assert_eq!(cpu.config(5), TrainConfig { device: Backend::Cpu, schedule: Schedule::Cosine, ..want });
    }
}
