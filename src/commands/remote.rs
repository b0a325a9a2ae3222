//! `pipe push` and `pipe pull`: entries between the local cache and a remote one.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::commands::{PipelineArgs, load_pipeline};
use crate::config::load;
use crate::engine::plan::{Selection, StageState, plan_pipeline};
use crate::error::{Error, emit};
use crate::remote::{Moved, Remote, Transfer};
use crate::store::{Manifest, Store};

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Pipeline files whose current entries to push.
    #[arg(required_unless_present = "all")]
    pub files: Vec<PathBuf>,
    /// Push every entry of the local cache.
    #[arg(long, conflicts_with = "files")]
    pub all: bool,
    /// Overrides applied to every file.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// The remote cache: `s3://bucket/prefix[?endpoint=URL&region=R]`, `file:///path`
    /// or a folder.
    #[arg(long, env = "PIPE_REMOTE", value_name = "URL")]
    pub remote: String,
    /// Print what moved as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Only these stages (names or matrix groups) and what they need.
    pub stages: Vec<String>,
    /// The remote cache (see `pipe push --help`).
    #[arg(long, env = "PIPE_REMOTE", value_name = "URL")]
    pub remote: String,
    /// Print what moved as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `pipe push [FILE...] [--all]`: the entries the pipelines reach now (their fresh
/// stages), or every entry; objects first, manifests last.
pub fn push(cache: &Path, a: &PushArgs) -> Result<(), Error> {
    let store = Store::open(cache)?;
    let mut manifests: Vec<Manifest> = Vec::new();
    let mut not_cached = 0usize;
    if a.all {
        manifests.extend(store.manifests()?.into_iter().filter_map(|(_, m)| m));
    } else {
        for f in &a.files {
            let p = load(f, &a.sets, crate::kinds::registry())?;
            let plan = plan_pipeline(&p, &store, &Selection::new(&p, &[], &[])?, None)?;
            for (_, s) in plan.selected() {
                match &s.state {
                    StageState::Fresh { manifest } => manifests.push((**manifest).clone()),
                    _ => not_cached += 1,
                }
            }
        }
    }
    manifests.sort_by(|x, y| x.key.cmp(&y.key));
    manifests.dedup_by(|x, y| x.key == y.key);
    let remote = Remote::open(&a.remote, true)?;
    let t = Transfer::new("push", a.json);
    let moved = remote.push(&store, &manifests, &t);
    t.finish();
    let moved = moved?;
    // Who used what goes too: the roots `gc --remote` keeps.
    remote.push_uses(&store)?;
    report("push", &remote, &moved, not_cached, a.json)
}

/// `pipe pull FILE [STAGE...]`: every selected stage the local cache lacks and the
/// remote has, made complete here (its objects verified, then its manifest).
pub fn pull(cache: &Path, a: &PullArgs) -> Result<(), Error> {
    let p = load_pipeline(&a.pipeline)?;
    let store = Store::open(cache)?;
    let remote = Remote::open(&a.remote, false)?;
    let sel = Selection::new(&p, &a.stages, &[])?;
    let plan = plan_pipeline(&p, &store, &sel, Some(&remote))?;
    let mut wanted = Vec::new();
    let mut missing = Vec::new();
    let mut here = 0;
    for (i, s) in plan.selected() {
        match &s.state {
            StageState::Remote { manifest } => wanted.push((**manifest).clone()),
            StageState::Fresh { .. } => here += 1,
            _ => missing.push(p.stages[i].name.clone()),
        }
    }
    let t = Transfer::new("pull", a.json);
    let moved = remote.pull(&store, &wanted, &t);
    t.finish();
    let moved = Moved { entries_present: here, ..moved? };
    if !missing.is_empty() && !a.json {
        let shown: Vec<&str> = missing.iter().take(5).map(String::as_str).collect();
        let more = if missing.len() > 5 { format!(" and {} more", missing.len() - 5) } else { String::new() };
        eprintln!("not on the remote (pipe run computes them): {}{more}", shown.join(", "));
    }
    report("pull", &remote, &moved, missing.len(), a.json)
}

/// Make the entries of `stages` themselves (not what they read) complete here when the
/// remote has them and this cache does not. Their entries, by stage index, wherever
/// they were found: a stage whose inputs are only on the remote is not fresh in a plan
/// of this cache alone, though its own entry is here now.
pub fn pull_stages(
    p: &crate::config::Pipeline,
    store: &Store,
    url: &str,
    stages: &[String],
) -> Result<Vec<(usize, Manifest)>, Error> {
    let remote = Remote::open(url, false)?;
    let sel = Selection::new(p, stages, &[])?;
    let mut plan = plan_pipeline(p, store, &sel, Some(&remote))?;
    let mut named = Vec::new();
    let mut to_pull = Vec::new();
    for i in Selection::named(p, stages)? {
        match plan.stages[i].take().map(|s| s.state) {
            Some(StageState::Remote { manifest }) => {
                to_pull.push((*manifest).clone());
                named.push((i, *manifest));
            }
            Some(StageState::Fresh { manifest }) => named.push((i, *manifest)),
            _ => {}
        }
    }
    remote.pull(store, &to_pull, &Transfer::quiet())?;
    Ok(named)
}

fn report(verb: &str, remote: &Remote, moved: &Moved, not_there: usize, json: bool) -> Result<(), Error> {
    if json {
        let mut v = serde_json::to_value(moved).expect("plain data");
        v["remote"] = serde_json::json!(remote.url);
        v[if verb == "push" { "not_cached" } else { "missing" }] = serde_json::json!(not_there);
        return emit(&format!("{}\n", serde_json::to_string_pretty(&v).expect("plain data")));
    }
    let (to, there) = if verb == "push" { ("to", "on the remote") } else { ("from", "here") };
    let mut line = format!(
        "{verb}: {} entries, {} objects ({}) {to} {}; {} entries and {} objects were {there} already",
        moved.entries,
        moved.objects,
        super::cache::human(moved.bytes),
        remote.url,
        moved.entries_present,
        moved.objects_present,
    );
    if verb == "push" && not_there > 0 {
        line.push_str(&format!("; {not_there} stages are not computed yet (run them first)"));
    }
    emit(&format!("{line}\n"))
}
