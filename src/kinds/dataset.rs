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

use crate::config::diagnostic::Diagnostics;
use crate::config::node::{KeyPath, Node, Value};
use crate::config::reader::MapReader;
use crate::data::download::{Checksum, Remote, download_id, fetch};
use crate::data::{Dataset, Format, LoadOptions, SyntheticParams, load, synthetic};
use crate::kind::{Input, Kind, RunContext, StageFailure, Task};

pub struct DatasetKind;

const SOURCES: [&str; 8] = ["synthetic", "auto", "idx", "cifar10", "cifar100", "folder", "parquet", "stored"];

impl Kind for DatasetKind {
    fn name(&self) -> &'static str {
        "dataset"
    }

    /// 2: the synthetic generator draws a class as a pair of its group's motifs.
    fn version(&self) -> u32 {
        2
    }

    fn check(&self, params: &Node, path: &KeyPath, diags: &mut Diagnostics) -> Option<Box<dyn Task>> {
        let mut m = MapReader::new(params, path.clone(), diags)?;
        let source = m.choice("source", &SOURCES, "synthetic", diags);
        let task = if source == "synthetic" {
            let d = SyntheticParams::default();
            let image = m.get("image").map(|n| shape(n, &path.key("image"), diags)).unwrap_or(d.image);
            let p = SyntheticParams {
                classes: m.uint("classes", d.classes as u64, diags) as usize,
                groups: m.uint("groups", d.groups as u64, diags) as usize,
                image,
                per_class: m.uint("per_class", d.per_class as u64, diags) as usize,
                test_per_class: m.uint("test_per_class", d.test_per_class as u64, diags) as usize,
                noise: m.float("noise", d.noise as f64, diags) as f32,
                jitter: m.float("jitter", d.jitter as f64, diags) as f32,
                seed: m.uint("seed", d.seed, diags),
            };
            if let Err(e) = p.check() {
                let field = match &e {
                    crate::data::DataError::BadParam { field, .. } => Some(*field),
                    _ => None,
                };
                let at = field.and_then(|f| params.get(f)).map_or(params.mark, |n| n.mark);
                let at_path = field.map_or_else(|| path.clone(), |f| path.key(f));
                diags.error(at, &at_path, e.to_string());
            }
            DatasetTask::Synthetic(p)
        } else {
            let download = m.get("download").map(|n| remotes(n, &path.key("download"), diags));
            let folder = if download.is_some() { m.string("path", diags) } else { m.required_string("path", diags) };
            let channels = match m.uint("channels", 0, diags) {
                0 => None,
                c @ (1 | 3) => Some(c as usize),
                c => {
                    diags.error(params.mark, &path.key("channels"), format!("channels must be 1 or 3, not {c}"));
                    None
                }
            };
            let class_names = m.get("class_names").is_some().then(|| m.string_list("class_names", diags));
            let groups = m.get("groups").and_then(|n| groups(n, &path.key("groups"), diags));
            let format = match source {
                "idx" => Some(Format::Idx),
                "cifar10" => Some(Format::Cifar10),
                "cifar100" => Some(Format::Cifar100),
                "folder" => Some(Format::Folder),
                "parquet" => Some(Format::Parquet),
                "stored" => Some(Format::Stored),
                _ => None,
            };
            let opts = LoadOptions { format, channels, class_names, groups };
            match download {
                Some(remotes) => DatasetTask::Download { remotes, within: folder.unwrap_or_default(), opts },
                None => {
                    let folder = folder?;
                    if folder.trim().is_empty() {
                        diags.error(params.mark, &path.key("path"), "the dataset path is empty");
                    }
                    DatasetTask::Files { path: folder, opts }
                }
            }
        };
        m.finish(diags);
        Some(Box::new(task))
    }
}

/// `[C, H, W]`.
fn shape(node: &Node, path: &KeyPath, diags: &mut Diagnostics) -> [usize; 3] {
    match &node.value {
        Value::Seq(items) if items.len() == 3 && items.iter().all(|i| matches!(i.value, Value::Int(v) if v > 0)) => {
            let v: Vec<usize> =
                items.iter().map(|i| if let Value::Int(v) = i.value { v as usize } else { 0 }).collect();
            [v[0], v[1], v[2]]
        }
        _ => {
            diags.error(node.mark, path, "expected [channels, height, width], e.g. [1, 28, 28]");
            SyntheticParams::default().image
        }
    }
}

fn groups(node: &Node, path: &KeyPath, diags: &mut Diagnostics) -> Option<BTreeMap<String, Vec<String>>> {
    let Value::Map(entries) = &node.value else {
        diags.error(
            node.mark,
            path,
            format!("expected a mapping of group names to class lists, found {}", node.type_name()),
        );
        return None;
    };
    let mut out = BTreeMap::new();
    for (k, v) in entries {
        let Value::Seq(items) = &v.value else {
            diags.error(v.mark, &path.key(&k.name), format!("expected a list of class names, found {}", v.type_name()));
            continue;
        };
        out.insert(k.name.clone(), items.iter().filter_map(|i| i.scalar_text()).collect());
    }
    Some(out)
}

/// `download:` as one `{url, sha256 | md5}` mapping or a list of them.
fn remotes(node: &Node, path: &KeyPath, diags: &mut Diagnostics) -> Vec<Remote> {
    let items: Vec<(&Node, KeyPath)> = match &node.value {
        Value::Seq(items) => items.iter().enumerate().map(|(i, n)| (n, path.index(i))).collect(),
        _ => vec![(node, path.clone())],
    };
    if items.is_empty() {
        diags.error(node.mark, path, "expected at least one {url, sha256} to download");
    }
    let mut out = Vec::new();
    for (item, at) in items {
        let Some(mut m) = MapReader::new(item, at.clone(), diags) else { continue };
        let url = m.required_string("url", diags);
        let given: Vec<(&str, &Node)> = ["sha256", "md5"].into_iter().filter_map(|a| Some((a, m.get(a)?))).collect();
        m.finish(diags);
        let checksum = match given[..] {
            [(algo, n)] => Checksum::parse(algo, &n.scalar_text().unwrap_or_default())
                .map_err(|e| diags.error(n.mark, &at.key(algo), e))
                .ok(),
            [] => {
                let help = "a download needs the file's published checksum: add `sha256: <64 hex digits>` (or `md5:`)";
                diags.error(item.mark, &at, help);
                None
            }
            _ => {
                diags.error(item.mark, &at, "give one checksum per file: sha256 or md5, not both");
                None
            }
        };
        if let (Some(url), Some(checksum)) = (url, checksum) {
            out.push(Remote { url, checksum });
        }
    }
    out
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
