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

use serde::{Deserialize, Deserializer, Serialize, de};

use crate::config::params::{Located, error_with_help};
use crate::nn::{Augment, Backend, LayerSpec, Schedule, TrainConfig};

/// The `network` settings as they enter a stage's key: the layers, without the input
/// shape and classes (those come from the data it is trained on). A layer is keyed by
/// its canonical text (`conv 8 3 pool`), so equal layers written differently are equal.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkParams {
    #[serde(deserialize_with = "layers")]
    pub layers: Vec<LayerSpec>,
}

/// Layers as text, each problem reported at its own layer with its 1-based number.
fn layers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<LayerSpec>, D::Error> {
    let written = Vec::<Layer>::deserialize(d)?;
    if written.is_empty() {
        return Err(de::Error::custom("a network needs at least one layer"));
    }
    Ok(written.into_iter().map(|l| l.0).collect())
}

struct Layer(LayerSpec);

impl<'de> Deserialize<'de> for Layer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Layer, D::Error> {
        let text = Located::<String>::deserialize(d)?;
        let number = text.index.map_or(1, |i| i + 1);
        LayerSpec::parse(&text.value)
            .map(Layer)
            .map_err(|e| error_with_help(format!("layer {number}: {e}"), LAYER_HELP))
    }
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

/// The `training` settings as written; [`TrainingSettings::params`] gives what enters
/// the key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingSettings {
    #[serde(deserialize_with = "epochs")]
    epochs: usize,
    #[serde(deserialize_with = "batch")]
    batch: usize,
    #[serde(deserialize_with = "non_negative")]
    lr: f64,
    #[serde(deserialize_with = "momentum")]
    momentum: f64,
    #[serde(deserialize_with = "non_negative")]
    weight_decay: f64,
    schedule: ScheduleName,
    /// Epochs between steps (`schedule: step`).
    step_every: usize,
    /// The factor per step (`schedule: step`).
    gamma: f64,
    augment: AugmentParams,
    device: Backend,
}

impl Default for TrainingSettings {
    fn default() -> TrainingSettings {
        TrainingSettings {
            epochs: 8,
            batch: 64,
            lr: 0.02,
            momentum: 0.9,
            weight_decay: 5e-4,
            schedule: ScheduleName::Cosine,
            step_every: 3,
            gamma: 0.1,
            augment: AugmentParams::default(),
            device: Backend::Cpu,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ScheduleName {
    Constant,
    Step,
    Cosine,
}

fn epochs<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    within(d, "epochs", 1, MAX_EPOCHS)
}

fn batch<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    within(d, "batch", 1, MAX_BATCH)
}

fn crop_pad<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let v = usize::deserialize(d)?;
    if v > MAX_CROP_PAD {
        return Err(de::Error::custom(format!("crop_pad must be at most {MAX_CROP_PAD}")));
    }
    Ok(v)
}

fn within<'de, D: Deserializer<'de>>(d: D, name: &str, lo: usize, hi: usize) -> Result<usize, D::Error> {
    let v = u64::deserialize(d)?;
    match usize::try_from(v) {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        _ => Err(de::Error::custom(format!("{name} must be between {lo} and {hi}"))),
    }
}

fn non_negative<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if v < 0.0 {
        return Err(de::Error::custom(format!("expected a number at least 0, found `{v}`")));
    }
    Ok(v)
}

fn momentum<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if !(0.0..1.0).contains(&v) {
        return Err(de::Error::custom(format!("momentum must be in [0, 1), not {v}")));
    }
    Ok(v)
}

impl TrainingSettings {
    /// What enters the key, every default filled in.
    pub fn params(&self) -> TrainingParams {
        TrainingParams {
            epochs: self.epochs,
            batch: self.batch,
            lr: self.lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            schedule: match self.schedule {
                ScheduleName::Constant => ScheduleParams::Constant,
                ScheduleName::Step => ScheduleParams::Step { every: self.step_every.max(1), gamma: self.gamma },
                ScheduleName::Cosine => ScheduleParams::Cosine,
            },
            augment: self.augment,
            // A CPU run has no `device` in its key: the keys CPU runs always had.
            device: (self.device != Backend::Cpu).then_some(self.device),
        }
    }
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

/// Random crops (the image padded by `crop_pad` on each side) and flips.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentParams {
    #[serde(deserialize_with = "crop_pad")]
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
