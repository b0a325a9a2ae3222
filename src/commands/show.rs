//! `pipe show FILE [STAGE]`: results from the cache, without running anything.

use std::fmt::Write as _;
use std::path::Path;

use crate::cli::ShowArgs;
use crate::commands::load_pipeline;
use crate::config::Pipeline;
use crate::engine::status::{State, status};
use crate::error::{Error, emit};
use crate::kinds::report::{describe, record, summary, write_all};
use crate::report::build;
use crate::store::{Manifest, Store};

pub fn show(cache: &Path, a: &ShowArgs) -> Result<(), Error> {
    let p = load_pipeline(&a.pipeline)?;
    let store = Store::open(cache)?;
    match &a.stage {
        Some(stage) => locate(&p, &store, stage, a),
        None => results(&p, &store, a),
    }
}

/// The table and findings from every network of the pipeline that is in the cache.
fn results(p: &Pipeline, store: &Store, a: &ShowArgs) -> Result<(), Error> {
    let st = status(p, store, &[])?;
    let mut records = Vec::new();
    let mut missing = Vec::new();
    for s in &st {
        let i = p.index_of(&s.name).expect("status names pipeline stages");
        if !matches!(p.stages[i].kind.name(), "train" | "transfer") {
            continue;
        }
        match (&s.state, &s.key) {
            (State::Fresh, Some(key)) => {
                let m = store.entry(key)?.expect("a fresh stage has an entry");
                let dir =
                    tempfile::tempdir().map_err(|source| Error::Io { context: "a temporary folder".into(), source })?;
                for name in ["info.json", "metrics.json"] {
                    if let Some(o) = m.outputs.get(name) {
                        store.link(&o.content, &dir.path().join(name))?;
                    }
                }
                records.push(record(&s.name, dir.path()).map_err(|f| Error::Failed(f.message))?);
            }
            _ => missing.push(s.name.clone()),
        }
    }
    let report = build(&records);
    if let Some(dir) = &a.export {
        std::fs::create_dir_all(dir)
            .map_err(|source| Error::Io { context: format!("cannot create {}", dir.display()), source })?;
        write_all(&report, dir).map_err(|e| Error::Failed(format!("error: {}", describe(&e))))?;
    }
    if a.json {
        let v = serde_json::json!({"pipeline": p.file.display().to_string(), "report": report, "missing": missing});
        return emit(&format!("{}\n", serde_json::to_string_pretty(&v).expect("plain data")));
    }
    let mut out = String::new();
    if records.is_empty() {
        let _ = writeln!(out, "no trained networks of {} are in the cache yet", p.file.display());
    } else {
        out.push_str(&summary(&report));
    }
    if !missing.is_empty() {
        let _ = writeln!(
            out,
            "\n{} of {} networks are not in the cache yet (`pipe run {}` computes them): {}",
            missing.len(),
            missing.len() + records.len(),
            p.file.display(),
            missing.join(", ")
        );
    }
    if let Some(dir) = &a.export {
        let _ = writeln!(out, "report files written to {}", dir.display());
    }
    emit(&out)
}

/// Where one stage's outputs are: a path per file, inside the cache.
fn locate(p: &Pipeline, store: &Store, stage: &str, a: &ShowArgs) -> Result<(), Error> {
    let st = status(p, store, std::slice::from_ref(&stage.to_string()))?;
    let Some(s) = st.iter().find(|s| s.name == stage) else {
        return Err(Error::Usage(format!(
            "`{stage}` is a group of stages; name one of them, e.g. `{}`",
            st[st.len() - 1].name
        )));
    };
    let m: Manifest = match (&s.state, &s.key) {
        (State::Fresh, Some(key)) => store.entry(key)?.expect("a fresh stage has an entry"),
        _ => {
            return Err(Error::Failed(format!(
                "stage `{stage}` is not in the cache with its current inputs ({}); run `pipe run {} \"{stage}\"`",
                s.reasons.join("; "),
                p.file.display()
            )));
        }
    };
    if let Some(dir) = &a.export {
        for (name, o) in &m.outputs {
            store.restore(&o.content, &dir.join(name))?;
        }
    }
    if a.json {
        let files: Vec<_> = files(store, &m)
            .into_iter()
            .map(|(name, path, size)| serde_json::json!({"name": name, "path": path, "bytes": size}))
            .collect();
        let v = serde_json::json!({"stage": stage, "key": m.key, "seconds": m.seconds, "files": files});
        return emit(&format!("{}\n", serde_json::to_string_pretty(&v).expect("plain data")));
    }
    let mut out = format!("{stage} (key {}, computed in {:.1}s)\n", &m.key[..16], m.seconds);
    for (name, path, size) in files(store, &m) {
        let _ = writeln!(out, "  {name:<28} {size:>10} B  {path}");
    }
    if let Some(dir) = &a.export {
        let _ = writeln!(out, "copied to {}", dir.display());
    }
    emit(&out)
}

/// (name inside the stage's outputs, object path, size) for every file, log included.
fn files(store: &Store, m: &Manifest) -> Vec<(String, String, u64)> {
    let mut out = Vec::new();
    let mut push = |name: String, digest: &str, size: u64| {
        out.push((name, store.object_path(digest).display().to_string(), size));
    };
    for (name, o) in &m.outputs {
        for f in &o.content.files {
            let shown = if f.path.is_empty() { name.clone() } else { format!("{name}/{}", f.path) };
            push(shown, &f.digest, f.size);
        }
    }
    if let Some(log) = &m.log {
        push("(stage log)".into(), &log.files[0].digest, log.files[0].size);
    }
    out
}
