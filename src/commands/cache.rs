//! `pipe cache ls | du | verify | gc`.

use std::fmt::Write as _;
use std::path::Path;

use crate::cli::CacheCommand;
use crate::config::load;
use crate::digest::walk;
use crate::engine::plan::{Selection, StageState, plan_pipeline};
use crate::error::{Error, emit};
use crate::store::{Keep, Manifest, Store, StoreError, tree_bytes};

pub fn cache(root: &Path, c: CacheCommand) -> Result<(), Error> {
    let store = Store::open(root)?;
    match c {
        CacheCommand::Ls { json } => ls(&store, json),
        CacheCommand::Du { json } => du(&store, json),
        CacheCommand::Verify { json } => verify(&store, json),
        CacheCommand::Gc { files, sets, dry_run, remote } => {
            // The remote's part first: what the pipelines reach is resolved against
            // the local cache as it is now.
            if let Some(url) = remote {
                gc_remote(&store, &files, &sets, &url, dry_run)?;
            }
            gc(&store, &files, &sets, dry_run)
        }
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
        Err(Error::failed(format!("error: the cache has {} damaged entries or objects", r.problems.len())))
    }
}

/// Keep what the named pipelines reach now (their fresh stages' entries and the
/// objects those name, the resume state of stages still to run, their downloads); the
/// store removes everything else and what killed processes left behind.
fn gc(store: &Store, files: &[std::path::PathBuf], sets: &[String], dry_run: bool) -> Result<(), Error> {
    let mut keep = Keep::default();
    for f in files {
        let p = load(f, sets)?;
        keep.downloads.extend(p.stages.iter().flat_map(|s| s.task.downloads()));
        let plan = plan_pipeline(&p, store, &Selection::new(&p, &[], &[])?)?;
        for (_, s) in plan.selected() {
            let Some(key) = s.digest().map(str::to_string) else { continue };
            match s.state {
                StageState::Fresh { .. } => keep.entries.insert(key),
                _ => keep.resume.insert(key),
            };
        }
    }
    let r = store.gc(&keep, dry_run)?;
    let downloads = if r.downloads > 0 { format!(" and {} downloads", r.downloads) } else { String::new() };
    let leftovers = match r.leftovers {
        0 => String::new(),
        n => format!(", plus {n} leftovers of killed or finished runs"),
    };
    emit(&format!(
        "{} {} entries, {} objects{downloads}{leftovers} ({}); kept {} entries\n",
        if dry_run { "would remove" } else { "removed" },
        r.entries,
        r.objects,
        human(r.bytes),
        r.kept
    ))
}

/// Remove from the remote every entry none of the pipelines reaches (here or there),
/// and the objects only those named.
fn gc_remote(
    store: &Store,
    files: &[std::path::PathBuf],
    sets: &[String],
    url: &str,
    dry_run: bool,
) -> Result<(), Error> {
    let remote = crate::remote::Remote::open(url, false)?;
    let mut keep = std::collections::BTreeSet::new();
    for f in files {
        let p = load(f, sets)?;
        let resolved = crate::remote::resolve(&p, store, &remote, &Selection::new(&p, &[], &[])?)?;
        // A stage whose inputs are in neither cache has a key nobody can know here, and
        // so may the remote entries of everything after it: remove nothing.
        let unknown: Vec<&str> = resolved
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r, Some(crate::remote::Resolved::Missing { key: None })))
            .map(|(i, _)| p.stages[i].name.as_str())
            .collect();
        if let Some(first) = unknown.first() {
            return Err(Error::failed(format!(
                "error: remote {url}: nothing was removed: the keys of {} stage(s) of {} (`{first}` first) \
                 cannot be known, because what they read is in neither cache; run or pull the pipeline first",
                unknown.len(),
                f.display()
            )));
        }
        keep.extend(resolved.iter().flatten().filter_map(|r| r.manifest()).map(|m| m.key.clone()));
    }
    let r = remote.gc(&keep, dry_run)?;
    emit(&format!(
        "remote {url}: {} {} entries, {} objects ({}); kept {} entries\n",
        if dry_run { "would remove" } else { "removed" },
        r.entries,
        r.objects,
        human(r.bytes),
        r.entries_present
    ))
}

pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{bytes} B") } else { format!("{v:.1} {}", UNITS[u]) }
}
