//! Training: seeded mini-batch SGD over a [`NetConfig`] network, with frozen layers,
//! per-epoch resume state, cancellation and progress callbacks.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{Device, Tensor, Var};

use super::config::NetConfig;
use super::data::Images;
use super::error::NnError;
use super::evaluate::{evaluate_features, evaluate_tensors};
use super::features::{CACHE_LIMIT, CachePlan, Features};
use super::forward::{Mode, above, forward_frozen};
use super::ops;
use super::optim::{Momentum, Sgd};
use super::params::{Params, check_params};
use super::resume::{self, Streams};
use super::schedule::Schedule;
use super::step::{EpochLog, TrainConfig, argmax};

/// The caller's handles on a running `train`. Everything is optional; `Default` is a
/// plain run.
#[derive(Default)]
pub struct TrainHooks<'a> {
    /// Folder for the resume state: written after every epoch, read at start.
    pub state_dir: Option<PathBuf>,
    /// Checked before every batch; when set, `train` returns [`NnError::Cancelled`]
    /// and the state folder holds the last finished epoch.
    pub cancel: Option<&'a AtomicBool>,
    /// (batches done, batches in the whole run), after every batch.
    pub on_batch: Option<OnBatch<'a>>,
    /// After every epoch, once its state is saved. The state is left in place when
    /// training ends, so calling `train` again with it returns at once.
    pub on_epoch: Option<OnEpoch<'a>>,
}

/// Progress callback: (batches done, batches in the whole run).
pub type OnBatch<'a> = Box<dyn FnMut(usize, usize) + Send + 'a>;
/// Called with each finished epoch's log line.
pub type OnEpoch<'a> = Box<dyn FnMut(&EpochLog) + Send + 'a>;

/// Bump when a change alters the bytes a run produces, so old states are not resumed.
///
/// 3: frozen fully connected layers compute each image independently of its batch
/// (`Rows::Independent`), so that their outputs can be cached; this changes the last
/// bits of runs whose frozen fc layers met a batch small enough for gemm to switch
/// algorithm (see `matmul::independent_rows`), and no other run.
const TRAIN_VERSION: u32 = 3;

/// Trains `params` (layers 1..=tc.frozen held fixed) on `train`, evaluating on `val`
/// after every epoch, and returns the final parameters and the per-epoch log.
///
/// The result is a pure function of the arguments: batch order, dropout masks and
/// augmentation come from streams derived from `tc.seed`, and a run resumed from its
/// state folder ends with the same bytes as one that never stopped. Run it inside the
/// caller's rayon pool (see the module docs on threads).
///
/// With layers frozen and no augmentation nor dropout below the first trained layer,
/// the frozen layers run once per image for the whole run rather than once per epoch
/// (see `features.rs`, which also bounds the memory that takes); the bytes are the same.
pub fn train(
    cfg: &NetConfig,
    params: Params,
    train: &Images,
    val: Option<&Images>,
    tc: &TrainConfig,
    hooks: &mut TrainHooks,
) -> Result<(Params, Vec<EpochLog>), NnError> {
    train_with_cache(cfg, params, train, val, tc, hooks, CACHE_LIMIT)
}

/// `train` with at most `cache_limit` bytes of cached frozen-layer outputs; 0 forces
/// the per-batch path (tests compare the two).
pub(crate) fn train_with_cache(
    cfg: &NetConfig,
    params: Params,
    train: &Images,
    val: Option<&Images>,
    tc: &TrainConfig,
    hooks: &mut TrainHooks,
    cache_limit: usize,
) -> Result<(Params, Vec<EpochLog>), NnError> {
    check_inputs(cfg, &params, train, val, tc)?;
    let device = tc.device.device()?;
    let key = state_key(cfg, tc, &params, train, val)?;
    let resumed = match &hooks.state_dir {
        Some(dir) => resume::load(dir, &key)?,
        None => None,
    };
    let slots = Slots::new(cfg, tc, params, resumed.as_ref(), hooks.state_dir.as_deref(), &device)?;
    let (mut epoch, mut streams, mut logs) = match resumed {
        Some(state) => (state.epoch, state.streams, state.logs),
        None => (0, Streams::new(tc.seed), Vec::new()),
    };
    let mut run = Run { cfg, tc, train, device, slots, train_features: None, val_features: None };
    // The frozen tensors are constants: their outputs are fixed for the whole run.
    let plan = CachePlan::new(cfg, tc, train.len(), val.map_or(0, |v| v.len()), cache_limit);
    if epoch < tc.epochs {
        if plan.train {
            run.train_features = Some(Features::for_training(cfg, &run.slots.tensors, tc.frozen, train)?);
        }
        if let (true, Some(val)) = (plan.val, val) {
            run.val_features = Some(Features::for_evaluation(cfg, &run.slots.tensors, tc.frozen, val)?);
        }
    }
    while epoch < tc.epochs {
        let started = Instant::now();
        let lr = tc.schedule.lr_at(tc.lr, epoch, tc.epochs);
        let (loss_sum, correct) = run.epoch(epoch, lr, &mut streams, hooks)?;
        let train_seconds = started.elapsed().as_secs_f64();
        let (val_loss, val_acc) = match val {
            Some(val) => {
                let m = run.validate(val)?;
                (Some(m.loss), Some(m.top1))
            }
            None => (None, None),
        };
        epoch += 1;
        let n = train.len() as f64;
        let log = EpochLog {
            epoch,
            loss: loss_sum / n,
            train_acc: correct as f64 / n,
            val_loss,
            val_acc,
            lr,
            seconds: started.elapsed().as_secs_f64(),
            images_per_sec: n / train_seconds.max(1e-9),
        };
        logs.push(log.clone());
        if let Some(dir) = &hooks.state_dir {
            run.slots.save(dir, &key, epoch, &streams, &logs)?;
        }
        if let Some(f) = hooks.on_epoch.as_mut() {
            f(&log);
        }
    }
    Ok((run.slots.into_params()?, logs))
}

/// The network, the training settings, the images and the run's constants together
/// with the trainable state, so that an epoch reads as one call.
struct Run<'a> {
    cfg: &'a NetConfig,
    tc: &'a TrainConfig,
    train: &'a Images<'a>,
    device: Device,
    slots: Slots,
    /// The frozen layers' outputs, computed once, when they fit (see `features.rs`).
    train_features: Option<Features>,
    val_features: Option<Features>,
}

impl Run<'_> {
    /// One epoch of mini-batch SGD: the summed loss and the top-1 hits.
    fn epoch(
        &mut self,
        epoch: usize,
        lr: f64,
        streams: &mut Streams,
        hooks: &mut TrainHooks,
    ) -> Result<(f64, usize), NnError> {
        let (cfg, tc, train) = (self.cfg, self.tc, self.train);
        let sgd = Sgd { momentum: tc.momentum, weight_decay: tc.weight_decay };
        let n = train.len();
        let per_epoch = n.div_ceil(tc.batch);
        let total = per_epoch * tc.epochs;
        let order = streams.shuffle.permutation(n);
        let (mut loss_sum, mut correct) = (0f64, 0usize);
        for (b, indices) in order.chunks(tc.batch).enumerate() {
            if hooks.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(NnError::Cancelled);
            }
            let tensors = &self.slots.tensors;
            let mut mode = Mode::Train { dropout: &mut streams.dropout };
            let (logits, y) = match &self.train_features {
                Some(features) => {
                    let h = features.gather(indices)?;
                    (above(cfg, tensors, tc.frozen, h, &mut mode)?, train.labels_of(indices)?.to_device(&self.device)?)
                }
                None => {
                    let (x, y) = train.batch(indices, &tc.augment, &mut streams.augment)?;
                    (forward_frozen(cfg, tensors, tc.frozen, &x, &mut mode)?, y.to_device(&self.device)?)
                }
            };
            let loss = ops::cross_entropy(&logits, &y)?;
            let grads = loss.backward()?;
            for (var, buf) in self.slots.vars.iter().zip(self.slots.momentum.iter_mut()) {
                if let Some(var) = var {
                    let grad = grads
                        .get(var.as_tensor())
                        .ok_or_else(|| candle_core::Error::Msg("a trainable parameter got no gradient".into()))?;
                    sgd.step(var, grad, buf, lr)?;
                }
            }
            drop(grads);
            loss_sum += loss.to_scalar::<f32>()? as f64 * indices.len() as f64;
            correct += count_correct(&logits.detach(), indices.iter().map(|&i| train.labels[i]))?;
            if let Some(f) = hooks.on_batch.as_mut() {
                f(epoch * per_epoch + b + 1, total);
            }
        }
        Ok((loss_sum, correct))
    }

    /// The network as it stands, on the validation images.
    fn validate(&self, val: &Images) -> Result<super::evaluate::Metrics, NnError> {
        let detached: Vec<Tensor> = self.slots.tensors.iter().map(Tensor::detach).collect();
        match &self.val_features {
            Some(features) => evaluate_features(self.cfg, &detached, self.tc.frozen, features, val.labels),
            None => evaluate_tensors(self.cfg, &detached, val),
        }
    }
}

/// Every parameter in network order: the trainable ones as variables (copies, so the
/// caller's tensors are never written) with their momentum, the frozen ones as
/// constants.
struct Slots {
    names: Vec<(String, Vec<usize>)>,
    tensors: Vec<Tensor>,
    vars: Vec<Option<Var>>,
    momentum: Vec<Momentum>,
}

impl Slots {
    fn new(
        cfg: &NetConfig,
        tc: &TrainConfig,
        params: Params,
        resumed: Option<&resume::TrainState>,
        state_dir: Option<&std::path::Path>,
        device: &Device,
    ) -> Result<Slots, NnError> {
        let names = cfg.param_shapes();
        let bad_state = |problem: String| NnError::State {
            path: resume::state_path(state_dir.expect("a resumed run has a state folder")),
            problem,
        };
        let mut slots = Slots {
            tensors: Vec::with_capacity(names.len()),
            vars: Vec::with_capacity(names.len()),
            momentum: Vec::with_capacity(names.len()),
            names: Vec::new(),
        };
        for (name, shape) in &names {
            let trainable = layer_index(name).is_none_or(|layer| layer > tc.frozen);
            if !trainable {
                slots.tensors.push(params[name].to_device(device)?);
                slots.vars.push(None);
                slots.momentum.push(Momentum::Host(Vec::new()));
                continue;
            }
            let start = match resumed {
                Some(state) => state.params.get(name).ok_or_else(|| bad_state(format!("no parameter `{name}`")))?,
                None => &params[name],
            };
            let var = Var::from_tensor(&start.to_device(device)?)?;
            slots.tensors.push(var.as_tensor().clone());
            slots.vars.push(Some(var));
            let len = shape.iter().product();
            let buf = match resumed {
                Some(state) => state.momentum.get(name).cloned().unwrap_or_default(),
                None => vec![0.0; len],
            };
            if buf.len() != len {
                return Err(bad_state(format!("momentum of `{name}` has {} values, expected {len}", buf.len())));
            }
            slots.momentum.push(Momentum::new(buf, shape, device)?);
        }
        slots.names = names;
        Ok(slots)
    }

    /// The resume state after `epoch`: trainable parameters and momentum, on the host
    /// (a no-op for the CPU, one copy per epoch from a GPU).
    fn save(
        &self,
        dir: &std::path::Path,
        key: &str,
        epoch: usize,
        streams: &Streams,
        logs: &[EpochLog],
    ) -> Result<(), NnError> {
        let mut host = Vec::new();
        for (((name, _), t), (var, buf)) in
            self.names.iter().zip(&self.tensors).zip(self.vars.iter().zip(&self.momentum))
        {
            if var.is_some() {
                host.push((name.as_str(), t.to_device(&Device::Cpu)?, buf.to_vec()?));
            }
        }
        let p: Vec<(&str, &Tensor)> = host.iter().map(|(n, t, _)| (*n, t)).collect();
        let m: Vec<(&str, &[f32])> = host.iter().map(|(n, _, b)| (*n, b.as_slice())).collect();
        resume::save(dir, key, epoch, streams, logs, &p, &m)
    }

    /// The trained parameters, on the CPU.
    fn into_params(self) -> Result<Params, NnError> {
        let mut out = Params::new();
        for ((name, _), t) in self.names.into_iter().zip(self.tensors) {
            out.insert(name, t.detach().to_device(&Device::Cpu)?);
        }
        Ok(out)
    }
}

/// Everything `train` checks before it touches a tensor.
fn check_inputs(
    cfg: &NetConfig,
    params: &Params,
    train: &Images,
    val: Option<&Images>,
    tc: &TrainConfig,
) -> Result<(), NnError> {
    cfg.validate().map_err(NnError::Config)?;
    check_params(cfg, params)?;
    check_train_config(cfg, tc)?;
    train.check(cfg.input, cfg.classes)?;
    if train.is_empty() {
        return Err(NnError::Data("no training images".into()));
    }
    if let Some(val) = val {
        val.check(cfg.input, cfg.classes)?;
    }
    Ok(())
}

fn layer_index(name: &str) -> Option<usize> {
    name.strip_prefix("layers.")?.split('.').next()?.parse().ok()
}

fn check_train_config(cfg: &NetConfig, tc: &TrainConfig) -> Result<(), NnError> {
    let mut problems = Vec::new();
    if tc.batch == 0 {
        problems.push("batch is 0".to_string());
    }
    if !(tc.lr.is_finite() && tc.lr >= 0.0) {
        problems.push(format!("lr {} is not a non-negative number", tc.lr));
    }
    if !(0.0..1.0).contains(&tc.momentum) {
        problems.push(format!("momentum {} is outside [0, 1)", tc.momentum));
    }
    if !(tc.weight_decay.is_finite() && tc.weight_decay >= 0.0) {
        problems.push(format!("weight_decay {} is not a non-negative number", tc.weight_decay));
    }
    if let Schedule::Step { every: 0, .. } = tc.schedule {
        problems.push("step schedule with every = 0".to_string());
    }
    if tc.frozen > cfg.transferable() {
        problems.push(format!(
            "frozen = {} is above the network's {} transferable layers",
            tc.frozen,
            cfg.transferable()
        ));
    }
    if problems.is_empty() { Ok(()) } else { Err(NnError::Train(problems.join("; "))) }
}

/// Top-1 hits of a batch: the first maximum wins ties, deterministically.
pub(crate) fn count_correct(logits: &Tensor, labels: impl Iterator<Item = u16>) -> Result<usize, NnError> {
    let rows = logits.to_vec2::<f32>()?;
    Ok(rows.iter().zip(labels).filter(|(row, label)| argmax(row) == *label as usize).count())
}

/// What a resume state must match: the network, the training config, the starting
/// parameters' bytes and the images. Hashing the data costs a fraction of one epoch;
/// resuming onto other data would silently mix two runs. Deliberately not hashed:
/// whether the frozen layers' outputs are cached (same bytes either way, so a state
/// written by one path resumes on the other) and the thread count.
fn state_key(
    cfg: &NetConfig,
    tc: &TrainConfig,
    params: &Params,
    train: &Images,
    val: Option<&Images>,
) -> Result<String, NnError> {
    let mut h = blake3::Hasher::new();
    h.update(&TRAIN_VERSION.to_le_bytes());
    h.update(&serde_json::to_vec(cfg).expect("config serialises"));
    h.update(&serde_json::to_vec(tc).expect("train config serialises"));
    for (name, t) in params {
        h.update(name.as_bytes());
        h.update(&super::params::tensor_bytes(t)?);
    }
    for images in std::iter::once(Some(train)).chain(std::iter::once(val)) {
        match images {
            Some(im) => {
                h.update(&(im.shape.map(|d| d as u64)).map(u64::to_le_bytes).concat());
                h.update(im.pixels);
                let labels: Vec<u8> = im.labels.iter().flat_map(|l| l.to_le_bytes()).collect();
                h.update(&labels);
            }
            None => {
                h.update(b"none");
            }
        }
    }
    Ok(h.finalize().to_hex().to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::nn::Augment;
    use crate::nn::params::tensor_bytes;
    use crate::nn::synthetic::{quadrants, tiny_net, train_config};
    use crate::nn::{evaluate, init, save_checkpoint};

    fn same_bytes(a: &Tensor, b: &Tensor) -> bool {
        tensor_bytes(a).unwrap() == tensor_bytes(b).unwrap()
    }

    fn checkpoint_bytes(cfg: &NetConfig, params: &Params) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        save_checkpoint(dir.path(), cfg, params).unwrap();
        std::fs::read(dir.path().join("model.safetensors")).unwrap()
    }

    #[test]
    fn learns_a_separable_problem() {
        let cfg = tiny_net();
        let data = quadrants(48, 1);
        let val = quadrants(16, 2);
        // No flips: they would swap the left and right quadrants, i.e. the classes.
        let tc = TrainConfig {
            augment: Augment { crop_pad: 1, flip: false },
            schedule: Schedule::Constant,
            lr: 0.02,
            ..train_config(8, 0)
        };
        let (params, logs) =
            train(&cfg, init(&cfg, 3), &data.images(), Some(&val.images()), &tc, &mut TrainHooks::default()).unwrap();
        assert_eq!(logs.len(), 8);
        let m = evaluate(&cfg, &params, &val.images()).unwrap();
        eprintln!("top1 {} logs {logs:?}", m.top1);
        assert!(m.top1 > 0.9, "top1 {} logs {logs:?}", m.top1);
        assert_eq!(Some(m.top1), logs[7].val_acc);
        assert_eq!(m.n, 64);
        assert_eq!(m.per_class_n, vec![16; 4]);
        assert!(logs[7].loss < logs[0].loss, "{logs:?}");
    }

    #[test]
    fn frozen_layers_keep_their_bytes() {
        let cfg = tiny_net();
        let data = quadrants(8, 1);
        let start = init(&cfg, 3);
        let tc = train_config(1, 2);
        let (params, _) = train(&cfg, start.clone(), &data.images(), None, &tc, &mut TrainHooks::default()).unwrap();
        for (name, t) in &params {
            let frozen = matches!(layer_index(name), Some(l) if l <= 2);
            let biases_start_at_zero = name.ends_with("bias");
            if frozen {
                assert!(same_bytes(t, &start[name]), "{name} changed");
            } else if !biases_start_at_zero || name.starts_with("classifier") {
                assert!(!same_bytes(t, &start[name]), "{name} did not change");
            }
        }
        // And the start tensors themselves were not written through.
        assert!(same_bytes(&start["layers.3.weight"], &init(&cfg, 3)["layers.3.weight"]));
    }

    #[test]
    fn same_seed_same_bytes_for_any_thread_count() {
        // A wide fc layer so that gemm's own threading kicks in (above 48*48*256 MACs).
        let mut cfg = tiny_net();
        cfg.layers[2] = crate::nn::LayerSpec::parse("fc 512 dropout").unwrap();
        let data = quadrants(16, 1);
        let tc = TrainConfig { batch: 64, ..train_config(2, 1) };
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let (p, _) = train(&cfg, init(&cfg, 3), &data.images(), None, &tc, &mut TrainHooks::default()).unwrap();
                checkpoint_bytes(&cfg, &p)
            })
        };
        let one = run(1);
        assert_eq!(one, run(1));
        assert_eq!(one, run(2));
        let other_seed = {
            let tc = TrainConfig { seed: 8, ..tc.clone() };
            let (p, _) = train(&cfg, init(&cfg, 3), &data.images(), None, &tc, &mut TrainHooks::default()).unwrap();
            checkpoint_bytes(&cfg, &p)
        };
        assert_ne!(one, other_seed);
    }

    #[test]
    fn resumed_run_ends_with_the_same_bytes() {
        let cfg = tiny_net();
        let data = quadrants(8, 1);
        let val = quadrants(2, 2);
        let tc = train_config(3, 1);
        let (straight, straight_logs) =
            train(&cfg, init(&cfg, 3), &data.images(), Some(&val.images()), &tc, &mut TrainHooks::default()).unwrap();

        let state = tempfile::tempdir().unwrap();
        let cancel = AtomicBool::new(false);
        let mut epochs_seen = Vec::new();
        let err = {
            let mut hooks = TrainHooks {
                state_dir: Some(state.path().to_path_buf()),
                cancel: Some(&cancel),
                on_batch: None,
                on_epoch: Some(Box::new(|log: &EpochLog| {
                    epochs_seen.push(log.epoch);
                    cancel.store(true, Ordering::Relaxed);
                })),
            };
            train(&cfg, init(&cfg, 3), &data.images(), Some(&val.images()), &tc, &mut hooks).unwrap_err()
        };
        assert!(matches!(err, NnError::Cancelled), "{err:?}");
        assert_eq!(epochs_seen, vec![1]);

        cancel.store(false, Ordering::Relaxed);
        let mut batches = Vec::new();
        let (resumed, logs) = {
            let mut hooks = TrainHooks {
                state_dir: Some(state.path().to_path_buf()),
                cancel: Some(&cancel),
                on_batch: Some(Box::new(|done, total| batches.push((done, total)))),
                on_epoch: None,
            };
            train(&cfg, init(&cfg, 3), &data.images(), Some(&val.images()), &tc, &mut hooks).unwrap()
        };
        // Only epochs 2 and 3 ran: 32 images in batches of 16.
        assert_eq!(batches.first(), Some(&(3, 6)));
        assert_eq!(batches.last(), Some(&(6, 6)));
        assert_eq!(logs.len(), 3);
        for (a, b) in logs.iter().zip(&straight_logs) {
            assert_eq!((a.loss, a.train_acc, a.val_loss, a.lr), (b.loss, b.train_acc, b.val_loss, b.lr));
        }
        assert_eq!(checkpoint_bytes(&cfg, &resumed), checkpoint_bytes(&cfg, &straight));

        // A state written for another config is not resumed.
        let other = TrainConfig { lr: 0.01, ..tc.clone() };
        let mut hooks = TrainHooks { state_dir: Some(state.path().to_path_buf()), ..TrainHooks::default() };
        let (_, logs) = train(&cfg, init(&cfg, 3), &data.images(), None, &other, &mut hooks).unwrap();
        assert_eq!(logs.len(), 3);
        assert_eq!(logs[0].lr, 0.01);
    }

    /// A net whose frozen prefix can end at a conv layer (1), a pooled conv layer (2)
    /// or an fc layer (3), with dropout only above; 36 images in batches of 16, 16 and
    /// 4, small enough for gemm to pick other algorithms for small batches.
    fn cacheable() -> (NetConfig, TrainConfig) {
        let cfg = NetConfig {
            input: [1, 8, 8],
            layers: ["conv 4 3", "conv 6 3 pool", "fc 16", "fc 12 dropout=0.25"]
                .iter()
                .map(|l| crate::nn::LayerSpec::parse(l).unwrap())
                .collect(),
            classes: 4,
        };
        (cfg, TrainConfig { augment: Augment::NONE, ..train_config(3, 0) })
    }

    fn without_timings(logs: &[EpochLog]) -> Vec<EpochLog> {
        logs.iter().map(|l| EpochLog { seconds: 0.0, images_per_sec: 0.0, ..l.clone() }).collect()
    }

    #[test]
    fn cached_frozen_layers_give_the_same_bytes_as_the_per_batch_path() {
        let (cfg, tc) = cacheable();
        let (data, val) = (quadrants(9, 1), quadrants(5, 2));
        let (data, val) = (data.images(), val.images());
        for frozen in 1..=3 {
            let tc = TrainConfig { frozen, ..tc.clone() };
            assert_eq!(
                CachePlan::new(&cfg, &tc, data.len(), val.len(), CACHE_LIMIT),
                CachePlan { train: true, val: true }
            );
            let run = |threads: usize, limit: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| {
                    let hooks = &mut TrainHooks::default();
                    let (p, logs) =
                        train_with_cache(&cfg, init(&cfg, 3), &data, Some(&val), &tc, hooks, limit).unwrap();
                    // A digest, so that a failure prints two lines rather than the file.
                    (blake3::hash(&checkpoint_bytes(&cfg, &p)).to_hex().to_string(), without_timings(&logs))
                })
            };
            let direct = run(1, 0);
            assert_eq!(direct, run(1, CACHE_LIMIT), "frozen {frozen}");
            assert_eq!(direct, run(2, CACHE_LIMIT), "frozen {frozen}, 2 threads");
            assert_eq!(direct, run(2, 0), "frozen {frozen}, per batch, 2 threads");
        }
    }

    #[test]
    fn a_cached_run_resumes_onto_the_same_bytes() {
        let (cfg, tc) = cacheable();
        let tc = TrainConfig { frozen: 3, ..tc };
        let (data, val) = (quadrants(9, 1), quadrants(5, 2));
        let (data, val) = (data.images(), val.images());
        let hooks = &mut TrainHooks::default();
        let (straight, _) = train_with_cache(&cfg, init(&cfg, 3), &data, Some(&val), &tc, hooks, 0).unwrap();

        // Interrupted on the per-batch path, finished on the cached one.
        let state = tempfile::tempdir().unwrap();
        let cancel = AtomicBool::new(false);
        let mut hooks = TrainHooks {
            state_dir: Some(state.path().to_path_buf()),
            cancel: Some(&cancel),
            on_epoch: Some(Box::new(|_: &EpochLog| cancel.store(true, Ordering::Relaxed))),
            ..TrainHooks::default()
        };
        let err = train_with_cache(&cfg, init(&cfg, 3), &data, Some(&val), &tc, &mut hooks, 0).unwrap_err();
        assert!(matches!(err, NnError::Cancelled), "{err:?}");
        drop(hooks);
        cancel.store(false, Ordering::Relaxed);
        let mut hooks = TrainHooks { state_dir: Some(state.path().to_path_buf()), ..TrainHooks::default() };
        let (resumed, logs) = train(&cfg, init(&cfg, 3), &data, Some(&val), &tc, &mut hooks).unwrap();
        assert_eq!(logs.len(), 3);
        assert!(checkpoint_bytes(&cfg, &resumed) == checkpoint_bytes(&cfg, &straight));
    }

    #[test]
    fn caches_only_what_is_deterministic_and_fits() {
        let (cfg, tc) = cacheable();
        let plan = |tc: &TrainConfig, limit: usize| CachePlan::new(&cfg, tc, 36, 20, limit);
        let (both, val_only, none) = (
            CachePlan { train: true, val: true },
            CachePlan { train: false, val: true },
            CachePlan { train: false, val: false },
        );
        let frozen = |n: usize| TrainConfig { frozen: n, ..tc.clone() };
        assert_eq!(plan(&frozen(0), CACHE_LIMIT), none);
        assert_eq!(plan(&frozen(3), CACHE_LIMIT), both);
        // Dropout in a frozen layer, augmentation: random below the trained layers.
        assert_eq!(plan(&frozen(4), CACHE_LIMIT), val_only);
        let augmented = TrainConfig { augment: Augment { crop_pad: 1, flip: false }, ..frozen(3) };
        assert_eq!(plan(&augmented, CACHE_LIMIT), val_only);
        // 16 floats per image after layer 3: 36 * 64 bytes for training, 20 * 64 for
        // validation.
        assert_eq!(plan(&frozen(3), 56 * 64), both);
        assert_eq!(plan(&frozen(3), 56 * 64 - 1), CachePlan { train: true, val: false });
        assert_eq!(plan(&frozen(3), 36 * 64 - 1), val_only);
        assert_eq!(plan(&frozen(3), 20 * 64 - 1), none);
        assert_eq!(plan(&frozen(3), 0), none);
    }

    /// The caller moves hooks and data into a `ThreadPool::install` closure.
    #[test]
    fn hooks_and_images_can_cross_into_a_pool() {
        fn send<T: Send>() {}
        send::<TrainHooks>();
        send::<Images>();
        send::<Params>();
    }

    #[test]
    fn rejects_bad_training_configs() {
        let cfg = tiny_net();
        let data = quadrants(2, 1);
        let tc = TrainConfig { batch: 0, frozen: 4, ..train_config(1, 0) };
        let err = train(&cfg, init(&cfg, 3), &data.images(), None, &tc, &mut TrainHooks::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid training config: batch is 0; frozen = 4 is above the network's 3 transferable layers"
        );
    }
}
