//! `dataset`: images and labels from a source, decoded once into the cache.
//!
//! ```yaml
//! stages:
//!   data:
//!     dataset: {source: synthetic, classes: 20, groups: 4, image: [1, 28, 28], per_class: 500}
//!   cifar:
//!     dataset: {source: folder, path: "${env:PIPE_CIFAR10}", groups: {man_made: [airplane, ...]}}
//!   cifar_online:
//!     dataset:
//!       source: cifar10
//!       download: {url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", md5: c32a1d4ab5d03f1284b67883e8d87530}
//! ```
//!
//! With `download`, the files are fetched once into the cache (see
//! [`crate::data::download`]) and `path`, if given, names a folder inside them.
//!
//! The output `dataset/` is the decoded form of [`crate::data::Dataset`]: later stages
//! and later runs read raw pixels at disk speed and never decode an image again. A file
//! source's folder is an input of the stage, so its content is part of the key.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::params::{Params, PlainText};
use crate::data::download::{Checksum, Remote, download_id, fetch};
use crate::data::{Dataset, Format, LoadOptions, SyntheticParams, load, synthetic};
use crate::kind::{Input, Kind, RunContext, StageFailure, Task};

pub struct DatasetKind;

/// Where the images come from: generated, or files in one of these formats (`auto`
/// detects it from the folder).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Source {
    #[default]
    Synthetic,
    Auto,
    Idx,
    Cifar10,
    Cifar100,
    Folder,
    Parquet,
    Stored,
}

impl Source {
    fn format(self) -> Option<Format> {
        match self {
            Source::Synthetic | Source::Auto => None,
            Source::Idx => Some(Format::Idx),
            Source::Cifar10 => Some(Format::Cifar10),
            Source::Cifar100 => Some(Format::Cifar100),
            Source::Folder => Some(Format::Folder),
            Source::Parquet => Some(Format::Parquet),
            Source::Stored => Some(Format::Stored),
        }
    }
}

/// A dataset read from files, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilesInput {
    /// The folder, relative to the pipeline file's; with `download`, a folder inside it.
    path: Option<String>,
    /// One `{url, sha256 | md5}` or a list of them, fetched once into the cache.
    download: Option<Vec<RemoteEntry>>,
    /// 1 or 3; absent (or 0) keeps the source's.
    #[serde(default, deserialize_with = "channels")]
    channels: Option<usize>,
    class_names: Option<Vec<String>>,
    /// `{group: [classes]}`, for the by-group split.
    groups: Option<BTreeMap<String, Vec<PlainText>>>,
}

/// One file to download, with its one published checksum.
#[derive(Debug, Deserialize)]
#[serde(try_from = "RemoteInput")]
struct RemoteEntry(Remote);

impl TryFrom<RemoteInput> for RemoteEntry {
    type Error = &'static str;

    fn try_from(RemoteInput { url, sha256, md5 }: RemoteInput) -> Result<RemoteEntry, &'static str> {
        match (sha256, md5) {
            (Some(checksum), None) | (None, Some(checksum)) => Ok(RemoteEntry(Remote { url, checksum })),
            (None, None) => {
                Err("a download needs the file's published checksum: add `sha256: <64 hex digits>` (or `md5:`)")
            }
            (Some(_), Some(_)) => Err("give one checksum per file: sha256 or md5, not both"),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoteInput {
    url: String,
    #[serde(default, deserialize_with = "sha256")]
    sha256: Option<Checksum>,
    #[serde(default, deserialize_with = "md5")]
    md5: Option<Checksum>,
}

fn channels<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    match usize::deserialize(d)? {
        0 => Ok(None),
        c @ (1 | 3) => Ok(Some(c)),
        c => Err(serde::de::Error::custom(format!("channels must be 1 or 3, not {c}"))),
    }
}

fn sha256<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Checksum>, D::Error> {
    checksum(d, "sha256")
}

fn md5<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Checksum>, D::Error> {
    checksum(d, "md5")
}

fn checksum<'de, D: serde::Deserializer<'de>>(d: D, algo: &str) -> Result<Option<Checksum>, D::Error> {
    let PlainText(hex) = PlainText::deserialize(d)?;
    Checksum::parse(algo, &hex).map(Some).map_err(serde::de::Error::custom)
}

impl Kind for DatasetKind {
    fn name(&self) -> &'static str {
        "dataset"
    }

    /// 2: the synthetic generator draws a class as a pair of its group's motifs.
    fn version(&self) -> u32 {
        2
    }

    fn check(&self, p: &mut Params<'_>) -> Option<Box<dyn Task>> {
        let source = if p.has("source") { p.field::<Source>("source")? } else { Source::Synthetic };
        if source == Source::Synthetic {
            let params: SyntheticParams = p.read_besides(&["source"])?;
            if let Err(e) = params.check() {
                let field = match &e {
                    crate::data::DataError::BadParam { field, .. } => field,
                    _ => "",
                };
                p.problem(field, e.to_string());
            }
            return Some(Box::new(DatasetTask::Synthetic(params)));
        }
        let FilesInput { path, download, channels, class_names, groups } = p.read_besides(&["source"])?;
        let groups = groups
            .map(|g| g.into_iter().map(|(name, classes)| (name, classes.into_iter().map(|c| c.0).collect())).collect());
        let opts = LoadOptions { format: source.format(), channels, class_names, groups };
        let task = match (download, path) {
            (Some(remotes), within) => {
                if remotes.is_empty() {
                    p.problem("download", "expected at least one {url, sha256} to download");
                }
                let remotes = remotes.into_iter().map(|r| r.0).collect();
                DatasetTask::Download { remotes, within: within.unwrap_or_default(), opts }
            }
            (None, Some(path)) => {
                if path.trim().is_empty() {
                    p.problem("path", "the dataset path is empty");
                }
                DatasetTask::Files { path, opts }
            }
            (None, None) => {
                p.problem("", "missing required key `path`");
                return None;
            }
        };
        Some(Box::new(task))
    }
}

#[derive(Debug)]
enum DatasetTask {
    Synthetic(SyntheticParams),
    Files {
        path: String,
        opts: LoadOptions,
    },
    /// Files fetched into the cache's `downloads/` folder; `within` is a folder inside
    /// the download ("" for its top).
    Download {
        remotes: Vec<Remote>,
        within: String,
        opts: LoadOptions,
    },
}

/// What a dataset's bytes depend on besides the content of the files it reads.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum DatasetParams<'a> {
    Synthetic {
        source: &'static str,
        synthetic: &'a SyntheticParams,
    },
    /// The folder's content is an input; its path is not part of the key, so the same
    /// data found elsewhere is the same dataset.
    Files {
        source: Option<Format>,
        channels: Option<usize>,
        class_names: &'a Option<Vec<String>>,
        groups: &'a Option<BTreeMap<String, Vec<String>>>,
    },
    /// The checksums define the content; URLs are only where to find it.
    Download {
        source: Option<Format>,
        channels: Option<usize>,
        class_names: &'a Option<Vec<String>>,
        groups: &'a Option<BTreeMap<String, Vec<String>>>,
        download: Vec<DownloadParams<'a>>,
        within: &'a str,
    },
}

#[derive(serde::Serialize)]
struct DownloadParams<'a> {
    file: String,
    checksum: &'a Checksum,
}

impl DatasetTask {
    fn key_params(&self) -> DatasetParams<'_> {
        match self {
            DatasetTask::Synthetic(p) => DatasetParams::Synthetic { source: "synthetic", synthetic: p },
            DatasetTask::Files { opts, .. } => DatasetParams::Files {
                source: opts.format,
                channels: opts.channels,
                class_names: &opts.class_names,
                groups: &opts.groups,
            },
            DatasetTask::Download { remotes, within, opts } => DatasetParams::Download {
                source: opts.format,
                channels: opts.channels,
                class_names: &opts.class_names,
                groups: &opts.groups,
                download: remotes
                    .iter()
                    .map(|r| DownloadParams { file: r.file_name(), checksum: &r.checksum })
                    .collect(),
                within,
            },
        }
    }
}

impl Task for DatasetTask {
    fn params(&self) -> crate::key::Params {
        crate::kind::params_json(&self.key_params())
    }

    fn inputs(&self) -> Vec<Input> {
        match self {
            DatasetTask::Synthetic(_) | DatasetTask::Download { .. } => Vec::new(),
            DatasetTask::Files { path, .. } => vec![Input::Path(path.clone())],
        }
    }

    fn downloads(&self) -> Vec<String> {
        match self {
            DatasetTask::Download { remotes, .. } => vec![download_id(remotes)],
            _ => Vec::new(),
        }
    }

    fn outputs(&self) -> Vec<String> {
        vec!["dataset".to_string()]
    }

    /// A download needs the internet, which compute nodes often lack; decoding runs
    /// once per dataset.
    fn light(&self) -> bool {
        true
    }

    fn max_threads(&self) -> usize {
        64
    }

    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageFailure> {
        let pool = super::pool(ctx.threads)?;
        let ds: Dataset = pool.install(|| match self {
            DatasetTask::Synthetic(p) => synthetic(p).map_err(StageFailure::from),
            DatasetTask::Files { path, opts } => {
                let abs = ctx.inputs.get(path).cloned().unwrap_or_else(|| ctx.workspace.join(path));
                load(&abs, opts).map_err(StageFailure::from)
            }
            DatasetTask::Download { remotes, within, opts } => {
                let dir = fetch(remotes, ctx.downloads, ctx.progress, ctx.cancel)?;
                load(&dir.join(within), opts).map_err(StageFailure::from)
            }
        })?;
        ds.check()?;
        ds.write(&ctx.out_dir.join("dataset"))?;
        let test = ds.test.as_ref().map_or(0, |t| t.labels.len());
        (ctx.progress)(format!("{} + {} images", ds.train.labels.len(), test));
        Ok(())
    }
}
