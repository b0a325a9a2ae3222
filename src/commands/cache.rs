//! `pipe cache ls | du | verify | gc`.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use crate::cli::CacheCommand;
use crate::config::load;
use crate::digest::walk;
use crate::engine::status::{State, status};
use crate::error::{Error, emit};
use crate::store::{Manifest, Store, StoreError};

pub fn cache(root: &Path, c: CacheCommand) -> Result<(), Error> {
    let store = Store::open(root)?;
    match c {
        CacheCommand::Ls { json } => ls(&store, json),
        CacheCommand::Du { json } => du(&store, json),
        CacheCommand::Verify { json } => verify(&store, json),
        CacheCommand::Gc { files, sets, dry_run } => gc(&store, &files, &sets, dry_run),
    }
}

fn entries(store: &Store) -> Result<Vec<Manifest>, Error> {
    let mut v: Vec<Manifest> = store.manifests()?.into_iter().filter_map(|(_, m)| m).collect();
    v.sort_by(|a, b| (a.created_unix, &a.stage).cmp(&(b.created_unix, &b.stage)));
    Ok(v)
}

fn size_of(m: &Manifest) -> u64 {
    m.outputs.values().map(|o| o.content.size).sum()
}

fn ls(store: &Store, json: bool) -> Result<(), Error> {
    let list = entries(store)?;
    if json {
        let v: Vec<_> = list
            .iter()
            .map(|m| {
                serde_json::json!({"key": m.key, "stage": m.stage, "kind": m.key_struct.kind,
                    "bytes": size_of(m), "seconds": m.seconds, "created_unix": m.created_unix,
                    "outputs": m.outputs.keys().collect::<Vec<_>>()})
            })
            .collect();
        return emit(&format!("{}\n", serde_json::to_string_pretty(&v).expect("plain data")));
    }
    let mut out = String::new();
    for m in &list {
        let _ = writeln!(
            out,
            "{}  {:<8} {:>10}  {:>8.2}s  {}",
            &m.key[..12],
            m.key_struct.kind,
            human(size_of(m)),
            m.seconds,
            m.stage
        );
    }
    let _ = writeln!(out, "{} entries in {}", list.len(), store.root().display());
    emit(&out)
}

fn du(store: &Store, json: bool) -> Result<(), Error> {
    let objects = store.sub("objects");
    let mut bytes = 0u64;
    let mut count = 0usize;
    for rel in walk(&objects).map_err(|source| StoreError::Io { path: objects.clone(), source })? {
        if let Ok(m) = std::fs::metadata(objects.join(&rel)) {
            bytes += m.len();
            count += 1;
        }
    }
    let list = entries(store)?;
    let logical: u64 = list.iter().map(size_of).sum();
    let downloads = tree_bytes(&store.sub("downloads"));
    if json {
        let v = serde_json::json!({
            "entries": list.len(), "objects": count, "bytes": bytes, "logical_bytes": logical,
            "download_bytes": downloads,
        });
        return emit(&format!("{v}\n"));
    }
    let downloads = if downloads > 0 { format!(", plus {} of downloads", human(downloads)) } else { String::new() };
    emit(&format!(
        "{} entries, {} objects, {} on disk ({} before deduplication){downloads} in {}\n",
        list.len(),
        count,
        human(bytes),
        human(logical),
        store.root().display()
    ))
}

/// Bytes of the files under `dir` (0 when it does not exist).
fn tree_bytes(dir: &std::path::Path) -> u64 {
    walk(dir).unwrap_or_default().iter().filter_map(|rel| std::fs::metadata(dir.join(rel)).ok()).map(|m| m.len()).sum()
}

fn verify(store: &Store, json: bool) -> Result<(), Error> {
    let r = store.verify()?;
    if json {
        let v =
            serde_json::json!({"entries": r.entries, "objects": r.objects, "bytes": r.bytes, "problems": r.problems});
        emit(&format!("{v}\n"))?;
    } else {
        let mut out = String::new();
        for p in &r.problems {
            let _ = writeln!(out, "damaged: {p}");
        }
        let _ = writeln!(
            out,
            "{} entries, {} objects ({}) checked: {}",
            r.entries,
            r.objects,
            human(r.bytes),
            if r.problems.is_empty() { "all good".to_string() } else { format!("{} problems", r.problems.len()) }
        );
        emit(&out)?;
    }
    if r.problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Failed(format!("the cache has {} damaged entries or objects", r.problems.len())))
    }
}

/// Keep what the named pipelines reach now (their fresh stages' entries and the
/// objects those name); remove every other entry, object and resume folder.
fn gc(store: &Store, files: &[std::path::PathBuf], sets: &[String], dry_run: bool) -> Result<(), Error> {
    let mut keep_keys = BTreeSet::new();
    let mut keep_resume = BTreeSet::new();
    let mut keep_downloads = BTreeSet::new();
    for f in files {
        let p = load(f, sets)?;
        keep_downloads.extend(p.stages.iter().flat_map(|s| s.task.downloads()));
        for s in status(&p, store, &[])? {
            if let Some(k) = s.key {
                if s.state == State::Fresh {
                    keep_keys.insert(k);
                } else {
                    keep_resume.insert(k);
                }
            }
        }
    }
    let mut keep_objects = HashSet::new();
    let mut removed_entries = 0usize;
    for (path, m) in store.manifests()? {
        match m {
            Some(m) if keep_keys.contains(&m.key) => {
                for f in m.outputs.values().flat_map(|o| &o.content.files).chain(m.log.iter().flat_map(|l| &l.files)) {
                    keep_objects.insert(f.digest.clone());
                }
            }
            _ => {
                removed_entries += 1;
                if !dry_run {
                    std::fs::remove_file(&path).map_err(|source| StoreError::Io { path: path.clone(), source })?;
                }
            }
        }
    }
    let objects = store.sub("objects");
    let (mut removed_objects, mut freed) = (0usize, 0u64);
    for rel in walk(&objects).map_err(|source| StoreError::Io { path: objects.clone(), source })? {
        let digest = rel.replace('/', "");
        if keep_objects.contains(&digest) {
            continue;
        }
        let path = objects.join(&rel);
        freed += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        removed_objects += 1;
        if !dry_run {
            std::fs::remove_file(&path).map_err(|source| StoreError::Io { path: path.clone(), source })?;
        }
    }
    if let Ok(dirs) = std::fs::read_dir(store.sub("resume")) {
        for d in dirs.flatten() {
            let name = d.file_name().to_string_lossy().into_owned();
            if !keep_resume.contains(&name) && !dry_run {
                let _ = std::fs::remove_dir_all(d.path());
            }
        }
    }
    // Downloads the named pipelines still name stay (a changed dataset stage would
    // otherwise fetch them again); others go, as do unfinished `.part-*` folders.
    let mut removed_downloads = 0usize;
    if let Ok(dirs) = std::fs::read_dir(store.sub("downloads")) {
        for d in dirs.flatten() {
            let name = d.file_name().to_string_lossy().into_owned();
            if name.ends_with(".lock") || keep_downloads.contains(&name) {
                continue;
            }
            freed += tree_bytes(&d.path());
            removed_downloads += 1;
            if !dry_run {
                let _ = std::fs::remove_dir_all(d.path());
            }
        }
    }
    let downloads = if removed_downloads > 0 { format!(" and {removed_downloads} downloads") } else { String::new() };
    emit(&format!(
        "{} {removed_entries} entries, {removed_objects} objects{downloads} ({}); kept {} entries\n",
        if dry_run { "would remove" } else { "removed" },
        human(freed),
        keep_keys.len()
    ))
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{bytes} B") } else { format!("{v:.1} {}", UNITS[u]) }
}
