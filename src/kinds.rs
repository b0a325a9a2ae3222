//! The stage kinds this build knows; each implements [`crate::kind::Kind`]. Also the
//! small pieces of IO they share.

pub mod cmd;
pub mod dataset;
pub mod evaluate;
pub mod network;
pub mod report;
pub mod split;
pub mod train;

use std::path::{Path, PathBuf};

use crate::kind::{Kind, RunContext, StageFailure};

/// Every stage kind this build knows: what `config::load` is given to read a file.
pub fn registry() -> &'static [&'static dyn Kind] {
    &[
        &cmd::Cmd,
        &dataset::DatasetKind,
        &split::SplitKind,
        &train::TrainKind,
        &train::TransferKind,
        &evaluate::EvaluateKind,
        &report::ReportKind,
    ]
}

/// A rayon pool of the stage's thread count: candle's convolutions and matrix products
/// run on the pool they are called from, so a stage uses the cores it was given.
pub(crate) fn pool(threads: usize) -> Result<rayon::ThreadPool, StageFailure> {
    // Named after the stage's thread, so a panic in the pool is known as the stage's.
    let parent = std::thread::current().name().unwrap_or("pipe").to_string();
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(move |j| format!("{parent}-pool-{j}"))
        .build()
        .map_err(|e| StageFailure::caused(format!("cannot start {threads} threads"), e))
}

/// The folder of input `role`; when it holds a folder `sub` (a whole stage given where
/// one of its outputs was meant), that folder.
pub(crate) fn input_dir(ctx: &RunContext<'_>, role: &str, sub: &str) -> Result<PathBuf, StageFailure> {
    let dir = ctx.inputs.get(role).ok_or_else(|| StageFailure::new(format!("input `{role}` is missing")))?;
    let inner = dir.join(sub);
    Ok(if !sub.is_empty() && inner.is_dir() { inner } else { dir.clone() })
}

/// A JSON file read as `T`; a file that does not fit the type is an error naming it.
pub(crate) fn read_typed<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StageFailure> {
    let bytes = std::fs::read(path).map_err(|e| StageFailure::caused(format!("cannot read {}", path.display()), e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        StageFailure::caused(format!("{} does not hold what this version of pipe writes there", path.display()), e)
    })
}

/// Pretty JSON with a final newline; the same value gives the same bytes.
pub(crate) fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), StageFailure> {
    let mut text = serde_json::to_string_pretty(value).expect("JSON values serialize");
    text.push('\n');
    std::fs::write(path, text).map_err(|e| StageFailure::caused(format!("cannot write {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The parameters every shipped pipeline's stages put into their keys, hashed. A
    /// change here means users' cache entries stop matching: only together with a kind's
    /// version. (Last changed by `report` version 3, and by nothing else.)
    #[test]
    fn keys_of_the_shipped_pipelines_do_not_change() {
        let files = [
            ("transfer.yaml", include_str!("../pipelines/transfer.yaml")),
            ("transfer-dissimilar.yaml", include_str!("../pipelines/transfer-dissimilar.yaml")),
            ("quick.yaml", include_str!("../pipelines/quick.yaml")),
            ("mnist.yaml", include_str!("../pipelines/mnist.yaml")),
            ("cifar10.yaml", include_str!("../pipelines/cifar10.yaml")),
            ("cifar100.yaml", include_str!("../pipelines/cifar100.yaml")),
            (
                "cmd.yaml",
                "env: {A: '1'}\nstages:\n  a:\n    cmd: {run: 'echo 1 > a', outs: [a], env: {B: x}}\n  \
                 b:\n    cmd: {run: 'cat a', deps: [a]}\n  \
                 e:\n    evaluate: {network: 'c', data: 's.A', part: train}\n  \
                 c:\n    transfer: {base: null, target: s.B, n: 1, classifier: keep,\n      \
                 network: {layers: [conv 4 3 stride=2 pad=0 pool=3/2 lrn, fc 8 dropout=0.25]},\n      \
                 training: {schedule: step, step_every: 2, gamma: 0.5, augment: {crop_pad: 2, flip: true}, device: cuda}}\n  \
                 s:\n    split: {data: d, method: classes, a: [x, y], b: [z, w], per_class: 5, holdout: 0.25}\n  \
                 d:\n    dataset: {source: folder, path: imgs, channels: 3, class_names: [x, y, z, w], groups: {g: [x, y], h: [z, w]}}\n  \
                 d2:\n    dataset: {source: cifar10, download: {url: 'https://example.org/c.tar.gz', md5: c32a1d4ab5d03f1284b67883e8d87530}}\n",
            ),
        ];
        let mut h = blake3::Hasher::new();
        for (name, text) in files {
            let sets = match text.contains("${env:") {
                true => vec!["stages.data.dataset.path=data".to_string()],
                false => Vec::new(),
            };
            let p = crate::config::parse(Path::new(name), text.as_bytes(), &sets, super::registry()).unwrap();
            for s in &p.stages {
                let key =
                    crate::key::StageKey::new(s.kind.name(), s.kind.version(), s.task.params(), Default::default());
                h.update(format!("{name} {} {}\n", s.name, key.digest()).as_bytes());
            }
        }
        assert_eq!(
            h.finalize().to_hex().to_string(),
            "f6ca71443de53ffef83b71f591a628c442ba020e68451d82d59bc75ab2b45ab8"
        );
    }
}
