//! `train` and `transfer`: the networks of the experiment.
//!
//! ```yaml
//! stages:
//!   base:                         # baseA, baseB
//!     matrix: {half: [A, B]}
//!     train: {data: "split.${half}", seed: 0}
//!   transfer:                     # AnB, BnB (frozen) and AnB+, BnB+ (fine-tuned)
//!     matrix: {from: [A, B], n: [1, 2, 3], ft: [false, true]}
//!     transfer: {base: "base[half=${from}]", n: "${n}", target: split.B, fine_tune: "${ft}"}
//!   random:                       # the random-filter baseline: no base, layers 1..n frozen at init
//!     matrix: {n: [1, 2, 3]}
//!     transfer: {base: null, n: "${n}", target: split.B}
//! ```
//!
//! A transfer copies layers 1..n of the base bit for bit, initialises layers n+1.. and
//! the classifier from its own seed, and trains on the target half with layers 1..n
//! frozen (no update, no weight decay, no momentum) or learning (`fine_tune: true`).
//! `classifier: keep` also copies the classifier, for a second, fine-tuning phase on a
//! network first trained frozen on the same half.
//!
//! Outputs: `network/` (model.safetensors + config.json, loadable in PyTorch),
//! `log.json` (per epoch), `metrics.json` (on the target's test part) and `info.json`
//! (the treatment in the paper's words: baseB, AnB, BnB+, random, ...).

use std::io::Write as _;

use serde_json::json;

use serde::Deserialize;

use super::network::{NetworkParams, TrainingParams, TrainingSettings};
use crate::config::params::{Located, Params};
use crate::data::Half;
use crate::kind::{Input, Kind, RunContext, StageFailure, Task};
use crate::nn::{
    CLASSIFIER_BIAS, CLASSIFIER_WEIGHT, Images, NetConfig, NnError, TrainHooks, evaluate, init, load_checkpoint,
    save_checkpoint, train, transfer,
};
use crate::report::Treatment;

pub struct TrainKind;
pub struct TransferKind;

impl Kind for TrainKind {
    fn name(&self) -> &'static str {
        "train"
    }

    fn version(&self) -> u32 {
        1
    }

    fn trains_network(&self) -> bool {
        true
    }

    fn sections(&self) -> &'static [&'static str] {
        &["network", "training"]
    }

    fn check(&self, p: &mut Params<'_>) -> Option<Box<dyn Task>> {
        let TrainInput { data, seed, network, training } = p.read()?;
        Some(Box::new(NetTask {
            target: data,
            target_key: "data",
            base: None,
            params: NetParams { network, training: training.params(), seed, transfer: None },
        }))
    }
}

/// A `train` stage as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainInput {
    /// The half it trains on and is scored on (its test part).
    data: Located<String>,
    #[serde(default)]
    seed: u64,
    network: NetworkParams,
    #[serde(default)]
    training: TrainingSettings,
}

/// A `transfer` stage as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferInput {
    /// The stage that trained the base network; null for the random baseline.
    #[serde(deserialize_with = "nullable")]
    base: Option<Located<String>>,
    /// The half it trains on and is scored on.
    target: Located<String>,
    /// The cut: layers 1..n come from the base.
    #[serde(default)]
    n: usize,
    /// Whether layers 1..n learn too (AnB+) or stay frozen (AnB).
    #[serde(default)]
    fine_tune: bool,
    #[serde(default)]
    classifier: Classifier,
    #[serde(default)]
    seed: u64,
    network: NetworkParams,
    #[serde(default)]
    training: TrainingSettings,
}

/// A value that must be written, as a stage name or null.
fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Located<String>>, D::Error> {
    Option::<Located<String>>::deserialize(d)
}

impl Kind for TransferKind {
    fn name(&self) -> &'static str {
        "transfer"
    }

    fn version(&self) -> u32 {
        1
    }

    fn trains_network(&self) -> bool {
        true
    }

    fn sections(&self) -> &'static [&'static str] {
        &["network", "training"]
    }

    fn check(&self, p: &mut Params<'_>) -> Option<Box<dyn Task>> {
        let TransferInput { base, target, n, fine_tune, classifier, seed, network, training } = p.read()?;
        if n > network.layers.len() {
            p.problem("n", format!("n = {n}, but the network has {} transferable layers", network.layers.len()));
        }
        if base.is_none() && fine_tune {
            p.problem_help(
                "fine_tune",
                "a random baseline with every layer learning is just training from scratch",
                "use a `train` stage for that, or `fine_tune: false`",
            );
        }
        // `n: 0` with no base is a network trained from scratch, keyed as one.
        let transfer = (base.is_some() || n > 0).then_some(TransferParams {
            n,
            fine_tune,
            classifier,
            random_base: base.is_none(),
        });
        Some(Box::new(NetTask {
            target,
            target_key: "target",
            base,
            params: NetParams { network, training: training.params(), seed, transfer },
        }))
    }
}

/// Everything a network's bytes depend on besides its data and its base: the key's
/// `params`, and the only place the task reads its settings from.
#[derive(Debug, serde::Serialize)]
struct NetParams {
    network: NetworkParams,
    training: TrainingParams,
    seed: u64,
    /// For a transfer (and the random baseline): the cut and what happens above it.
    #[serde(flatten)]
    transfer: Option<TransferParams>,
}

#[derive(Debug, serde::Serialize)]
struct TransferParams {
    n: usize,
    fine_tune: bool,
    classifier: Classifier,
    /// No base: layers 1..n stay at their random initialisation.
    random_base: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum Classifier {
    #[default]
    Reinit,
    Keep,
}

#[derive(Debug)]
struct NetTask {
    /// The half to train on (and evaluate on, its test part), and the key it was given
    /// under (`data` for `train`, `target` for `transfer`).
    target: Located<String>,
    target_key: &'static str,
    /// `None` for a base network and for the random baseline.
    base: Option<Located<String>>,
    params: NetParams,
}

impl NetTask {
    /// The network's starting parameters: fresh from the seed, or for a transfer the
    /// base's layers 1..n copied over them (and its classifier, when kept); also the
    /// base's info and what was copied.
    fn starting_params(
        &self,
        ctx: &RunContext<'_>,
        cfg: &NetConfig,
        seed: u64,
        log: &mut std::fs::File,
    ) -> Result<(crate::nn::Params, Option<NetInfo>, Option<crate::nn::TransferReport>), StageFailure> {
        let fresh = init(cfg, seed);
        if self.base.is_none() {
            return Ok((fresh, None, None));
        }
        let base_dir = super::input_dir(ctx, "base", "")?;
        let (base_cfg, base_params) = load_checkpoint(&base_dir.join("network"))
            .map_err(|e| StageFailure::caused("cannot load the base network", e))?;
        check_compatible(&base_cfg, cfg, self.n(), self.keep_classifier())?;
        let (mut params, report) = transfer(&base_params, fresh, self.n()).map_err(StageFailure::new)?;
        if self.keep_classifier() {
            for name in [CLASSIFIER_WEIGHT, CLASSIFIER_BIAS] {
                params.insert(name.to_string(), base_params[name].clone());
            }
        }
        let _ = writeln!(
            log,
            "transfer: copied {} tensors ({}), re-initialised {}",
            report.copied.len(),
            report.copied.join(", "),
            report.reinitialised.len()
        );
        let info: NetInfo = super::read_typed(&base_dir.join("info.json"))?;
        Ok((params, Some(info), Some(report)))
    }

    fn is_transfer(&self) -> bool {
        self.params.transfer.is_some()
    }

    /// The cut: layers 1..n come from the base (or stay random); 0 for a base.
    fn n(&self) -> usize {
        self.params.transfer.as_ref().map_or(0, |t| t.n)
    }

    /// Whether layers 1..n learn; a base network learns everywhere.
    fn fine_tune(&self) -> bool {
        self.params.transfer.as_ref().is_none_or(|t| t.fine_tune)
    }

    fn keep_classifier(&self) -> bool {
        self.params.transfer.as_ref().is_some_and(|t| t.classifier == Classifier::Keep)
    }
}

impl Task for NetTask {
    fn params(&self) -> crate::key::Params {
        crate::kind::params_json(&self.params)
    }

    fn inputs(&self) -> Vec<Input> {
        let mut v = vec![Input::stage("data", &self.target, self.target_key)];
        if let Some(base) = &self.base {
            v.push(Input::stage("base", base, "base"));
        }
        v
    }

    fn outputs(&self) -> Vec<String> {
        ["network", "log.json", "metrics.json", "info.json"].map(String::from).to_vec()
    }

    fn max_threads(&self) -> usize {
        64
    }

    /// Training's forward and backward passes (three forward passes' worth) over the
    /// half's training images for every epoch, and one forward pass over its test
    /// images, for the image size the half's files show (square, grey or colour).
    fn expected_flops(&self, size: &dyn Fn(&str, &str) -> Option<u64>) -> Option<f64> {
        let train = size("data", "train.labels.u16le")? / 2;
        let test = size("data", "test.labels.u16le").unwrap_or(0) / 2;
        let image = size("data", "train.pixels.u8")? / train.max(1);
        let side = |c: u64| (1..=4096u64).find(|s| s * s * c >= image).filter(|s| s * s * c == image);
        let input = match (side(1), side(3)) {
            (Some(s), _) => [1, s as usize, s as usize],
            (None, Some(s)) => [3, s as usize, s as usize],
            _ => return None,
        };
        let cfg = NetConfig { input, layers: self.params.network.layers.clone(), classes: 10 };
        cfg.validate().ok()?;
        let epochs = self.params.training.epochs as f64;
        Some(cfg.forward_flops() * (3.0 * epochs * train as f64 + test as f64))
    }

    /// A frozen transfer trains the layers above the cut on features computed once.
    fn short(&self) -> bool {
        self.is_transfer() && !self.fine_tune() && self.n() > 0
    }

    fn gpus(&self) -> u32 {
        u32::from(self.params.training.device == Some(crate::nn::Backend::Cuda))
    }

    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageFailure> {
        let fail = |e: NnError| match e {
            NnError::Cancelled => StageFailure::interrupted(),
            other => StageFailure::from(other),
        };
        let data_dir = super::input_dir(ctx, "data", "")?;
        let half = Half::read(&data_dir)?;
        let split: SplitInfo = super::read_typed(&data_dir.join("split.json"))?;
        let cfg =
            NetConfig { input: half.shape, layers: self.params.network.layers.clone(), classes: half.classes.len() };
        let mut tc = self.params.training.config(self.params.seed);
        cfg.validate().map_err(|e| StageFailure::new(format!("network: {e}")))?;
        check_memory(&cfg, tc.batch)?;
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(ctx.log_path)
            .map_err(|e| StageFailure::caused("cannot open the stage log", e))?;
        let (params, base_info, transferred) = self.starting_params(ctx, &cfg, tc.seed, &mut log)?;
        tc.frozen = if self.fine_tune() { 0 } else { self.n() };
        let train_images = Images { pixels: &half.train.pixels, labels: &half.train.labels, shape: half.shape };
        let test_images = Images { pixels: &half.test.pixels, labels: &half.test.labels, shape: half.shape };
        let mut hooks = TrainHooks {
            state_dir: Some(ctx.resume_dir.to_path_buf()),
            cancel: Some(ctx.cancel),
            on_batch: None,
            on_epoch: Some(epoch_logger(&log, tc.epochs, ctx.progress)?),
        };
        let pool = super::pool(ctx.threads)?;
        let (trained, epochs_log) =
            pool.install(|| train(&cfg, params, &train_images, Some(&test_images), &tc, &mut hooks)).map_err(fail)?;
        drop(hooks);
        let metrics = pool.install(|| evaluate(&cfg, &trained, &test_images)).map_err(fail)?;
        let _ = writeln!(log, "test: top-1 {:.2}% on {} images", metrics.top1 * 100.0, metrics.n);
        save_checkpoint(&ctx.out_dir.join("network"), &cfg, &trained).map_err(fail)?;
        super::write_json(&ctx.out_dir.join("log.json"), &log_without_timings(&epochs_log))?;
        super::write_json(&ctx.out_dir.join("metrics.json"), &json!(metrics))?;
        let info = self.info(&half, &split, base_info.as_ref(), transferred.as_ref());
        super::write_json(&ctx.out_dir.join("info.json"), &json!(info))
    }
}

/// Each epoch's line in the stage's log, and its progress message.
fn epoch_logger<'a>(
    log: &std::fs::File,
    epochs: usize,
    progress: &'a (dyn Fn(String) + Sync),
) -> Result<crate::nn::OnEpoch<'a>, StageFailure> {
    let mut log = log.try_clone().map_err(|e| StageFailure::caused("cannot open the stage log", e))?;
    Ok(Box::new(move |e| {
        let line = format!(
            "epoch {}/{epochs}: loss {:.4}, train {:.1}%, test {}, lr {:.4}, {:.0} images/s",
            e.epoch,
            e.loss,
            e.train_acc * 100.0,
            e.val_acc.map_or("-".to_string(), |a| format!("{:.1}%", a * 100.0)),
            e.lr,
            e.images_per_sec
        );
        let _ = writeln!(log, "{line}");
        progress(format!("epoch {}/{epochs} loss {:.3}", e.epoch, e.loss));
    }))
}

/// The training log as `log.json` holds it: timings stay in the stage's log, since
/// outputs must be the same bytes on every run.
fn log_without_timings(epochs: &[crate::nn::EpochLog]) -> serde_json::Value {
    let mut v = json!(epochs);
    for e in v.as_array_mut().into_iter().flatten() {
        if let Some(o) = e.as_object_mut() {
            o.remove("seconds");
            o.remove("images_per_sec");
        }
    }
    v
}

/// A trained network's `info.json`: what it is in the paper's vocabulary, what it was
/// trained on and, for a transfer, what was copied. The report reads it back as this
/// type. Written as a JSON object with sorted keys (the bytes are part of every
/// dependent's key, so the layout never changes without a kind version).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetInfo {
    pub role: Role,
    pub treatment: Treatment,
    /// The cut; `None` for a base network.
    pub n: Option<usize>,
    pub fine_tune: bool,
    /// The half the base was trained on; `None` for a base and the random baseline.
    pub base_half: Option<String>,
    pub target_half: String,
    /// How the halves were split (`random`, `by_group`, `classes`) and with which seed.
    pub split: String,
    pub split_seed: u64,
    pub seed: u64,
    pub copied: Option<Vec<String>>,
    pub reinitialised: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Base,
    Transfer,
}

/// The part of a half's `split.json` a network's info repeats.
#[derive(Debug, serde::Deserialize)]
struct SplitInfo {
    split: String,
    seed: u64,
}

impl NetTask {
    /// What this network is, in the paper's vocabulary.
    fn info(
        &self,
        half: &Half,
        split: &SplitInfo,
        base: Option<&NetInfo>,
        report: Option<&crate::nn::TransferReport>,
    ) -> NetInfo {
        let target = half.name.clone();
        let fine_tuned = self.fine_tune();
        let (treatment, base_half) = match (self.is_transfer(), base) {
            (false, _) => (Treatment::Base { half: target.clone() }, None),
            (true, None) => (Treatment::Random, None),
            (true, Some(b)) => {
                let from = b.target_half.clone();
                let t = match b.role {
                    Role::Base => Treatment::Transfer { from: from.clone(), to: target.clone(), fine_tuned },
                    Role::Transfer => Treatment::Continued { first: Box::new(b.treatment.clone()), fine_tuned },
                };
                (t, Some(from))
            }
        };
        NetInfo {
            role: if self.is_transfer() { Role::Transfer } else { Role::Base },
            treatment,
            n: self.is_transfer().then_some(self.n()),
            fine_tune: self.fine_tune(),
            base_half,
            target_half: target,
            split: split.split.clone(),
            split_seed: split.seed,
            seed: self.params.seed,
            copied: report.map(|r| r.copied.clone()),
            reinitialised: report.map(|r| r.reinitialised.clone()),
        }
    }
}

/// The most bytes a batch's activations may take (forward values and their gradients),
/// checked before training allocates them: a failed allocation would abort the run.
const MAX_BATCH_BYTES: usize = 16 << 30;

fn check_memory(cfg: &NetConfig, batch: usize) -> Result<(), StageFailure> {
    let per_image: usize = cfg.shapes().iter().map(|s| s.iter().product::<usize>()).sum();
    let bytes = per_image.saturating_mul(batch).saturating_mul(2 * std::mem::size_of::<f32>());
    if bytes > MAX_BATCH_BYTES {
        return Err(StageFailure::new(format!(
            "a batch of {batch} needs about {} GiB for its activations (at most {} GiB): use a smaller batch or network",
            bytes >> 30,
            MAX_BATCH_BYTES >> 30
        )));
    }
    Ok(())
}

/// A base must match the new network in layers 1..n (and the classifier when kept).
fn check_compatible(base: &NetConfig, new: &NetConfig, n: usize, keep_classifier: bool) -> Result<(), StageFailure> {
    if base.input != new.input {
        return Err(StageFailure::new(format!(
            "the base network takes {:?} images, the target data has {:?}",
            base.input, new.input
        )));
    }
    for i in 0..n {
        if base.layers.get(i) != new.layers.get(i) {
            return Err(StageFailure::new(format!(
                "layer {} differs: base `{}`, this network `{}`",
                i + 1,
                base.layers.get(i).map_or("(none)".into(), |l| l.to_text()),
                new.layers[i].to_text()
            )));
        }
    }
    if keep_classifier && (base.classes != new.classes || base.layers != new.layers) {
        return Err(StageFailure::new(
            "`classifier: keep` needs a base with the same layers and the same classes as the target",
        ));
    }
    Ok(())
}
