//! `pipe cache ls | du | verify | gc`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::config::load;
use crate::digest::walk;
use crate::engine::plan::{Selection, StageState, plan_pipeline};
use crate::error::{Error, Usage, emit};
use crate::store::{Decision, Keep, Manifest, Owner, Policy, Removed, Store, StoreError, Why, now_unix, tree_bytes};

#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// List the cache's entries.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// How much space entries and stored outputs take.
    Du {
        #[arg(long)]
        json: bool,
    },
    /// Re-hash every stored output and check every entry.
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Remove what no recorded run and no named pipeline reaches (see `--only`,
    /// `--older-than`, `--max-size` to go further).
    Gc(GcArgs),
}

/// `pipe cache gc`: by default every run recorded in the cache within the retention
/// window is a root, whoever made it; narrowing to the named files is explicit.
#[derive(Args, Debug)]
pub struct GcArgs {
    /// Pipeline files whose current results are kept (besides every recorded run's).
    pub files: Vec<PathBuf>,
    /// Overrides applied to every file.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Keep only what the named files reach: other pipelines' and users' entries go
    /// (listed first; asks on a terminal, needs --yes elsewhere).
    #[arg(long, requires = "files")]
    pub only: bool,
    /// Also remove entries unused for this long, roots included (e.g. 30d, 12h).
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    pub older_than: Option<u64>,
    /// Then evict least recently used entries until the stored objects fit (e.g. 50G).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_size: Option<u64>,
    /// How long a recorded run stays a root (its pipeline's last run stays one while
    /// the file exists).
    #[arg(long, value_name = "AGE", value_parser = parse_age, default_value = "90d", env = "PIPE_RETENTION")]
    pub retention: u64,
    /// Say what would be removed, by owner; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask before `--only` removes other pipelines' entries.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Apply the same rules to this remote cache too, with the roots pushed there.
    #[arg(long, value_name = "URL")]
    pub remote: Option<String>,
}

/// A duration as `90d`, `2w`, `12h`, `30m` or `45s` (a bare number is seconds), in seconds.
pub fn parse_age(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("`{s}` is not an age such as 30d, 12h or 90m"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("`{s}`: the unit must be s, m, h, d or w")),
    };
    Ok(n.saturating_mul(scale))
}

/// A size as `50G`, `500M`, `1.5T`, `100K` or bytes (binary units; a trailing `B` or
/// `iB` is allowed), in bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: f64 = n.parse().map_err(|_| format!("`{s}` is not a size such as 50G or 500M"))?;
    let unit = unit.trim_end_matches("iB").trim_end_matches('B');
    let scale: u64 = match unit.to_ascii_uppercase().as_str() {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("`{s}`: the unit must be K, M, G or T")),
    };
    Ok((n * scale as f64) as u64)
}

pub fn cache(root: &Path, c: CacheCommand) -> Result<(), Error> {
    let store = Store::open(root)?;
    match c {
        CacheCommand::Ls { json } => ls(&store, json),
        CacheCommand::Du { json } => du(&store, json),
        CacheCommand::Verify { json } => verify(&store, json),
        CacheCommand::Gc(a) => {
            // The remote's part first: what the pipelines reach is resolved against
            // the local cache as it is now.
            if let Some(url) = &a.remote {
                gc_remote(&store, &a, url)?;
            }
            gc(&store, &a)
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
    let owners = by_owner(store)?;
    if json {
        let v = serde_json::json!({
            "entries": list.len(), "objects": count, "bytes": bytes, "logical_bytes": logical,
            "download_bytes": downloads, "by_pipeline": owners.pipelines, "by_user": owners.users,
            "unrecorded": owners.unrecorded,
        });
        return emit(&format!("{v}\n"));
    }
    let downloads = if downloads > 0 { format!(", plus {} of downloads", human(downloads)) } else { String::new() };
    let mut out = format!(
        "{} entries, {} objects, {} on disk ({} before deduplication){downloads} in {}\n",
        list.len(),
        count,
        human(bytes),
        human(logical),
        store.root().display()
    );
    out.push_str(&owners.render());
    emit(&out)
}

/// What recorded runs (and status and show) used, by pipeline file and by user: the
/// entries still here and the bytes of their objects, each object counted once per
/// group.
#[derive(Debug, Default, serde::Serialize)]
struct Owners {
    pipelines: Vec<Group>,
    users: Vec<Group>,
    unrecorded: Group,
}

#[derive(Debug, Default, serde::Serialize)]
struct Group {
    name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    users: Vec<String>,
    entries: usize,
    bytes: u64,
    last_use: u64,
}

fn by_owner(store: &Store) -> Result<Owners, Error> {
    let (facts, _) = store.gc_facts()?;
    let by_key: BTreeMap<&str, &crate::store::EntryFacts> = facts.entries.iter().map(|e| (e.key.as_str(), e)).collect();
    // Keys by pipeline and by user, with users and last use.
    let mut pipelines: BTreeMap<&str, (BTreeSet<&str>, BTreeSet<&str>, u64)> = BTreeMap::new();
    let mut users: BTreeMap<&str, (BTreeSet<&str>, u64)> = BTreeMap::new();
    for line in facts.logs.values().flatten() {
        let keys =
            facts.sets.get(&line.set).into_iter().flatten().map(String::as_str).filter(|k| by_key.contains_key(k));
        let keys: Vec<&str> = keys.collect();
        let p = pipelines.entry(&line.pipeline).or_default();
        p.0.extend(&keys);
        p.1.insert(&line.user);
        p.2 = p.2.max(line.t);
        let u = users.entry(&line.user).or_default();
        u.0.extend(&keys);
        u.1 = u.1.max(line.t);
    }
    let group = |name: &str, keys: &BTreeSet<&str>, users: Vec<String>, last_use: u64| {
        let mut seen = std::collections::HashSet::new();
        let bytes =
            keys.iter().flat_map(|k| &by_key[k].files).filter(|(d, _)| seen.insert(d.as_str())).map(|(_, s)| s).sum();
        Group { name: name.to_string(), users, entries: keys.len(), bytes, last_use }
    };
    let recorded: BTreeSet<&str> = pipelines.values().flat_map(|p| p.0.iter().copied()).collect();
    let rest: BTreeSet<&str> = by_key.keys().copied().filter(|k| !recorded.contains(k)).collect();
    Ok(Owners {
        pipelines: pipelines
            .iter()
            .map(|(name, (keys, u, t))| group(name, keys, u.iter().map(|s| s.to_string()).collect(), *t))
            .collect(),
        users: users.iter().map(|(name, (keys, t))| group(name, keys, Vec::new(), *t)).collect(),
        unrecorded: group("", &rest, Vec::new(), 0),
    })
}

impl Owners {
    fn render(&self) -> String {
        let mut out = String::new();
        if self.pipelines.is_empty() {
            return out;
        }
        let now = now_unix();
        let _ = writeln!(out, "by pipeline (objects several pipelines share count in each):");
        for g in &self.pipelines {
            let _ = writeln!(
                out,
                "  {}  ({}): {} entries, {}, last used {}",
                g.name,
                g.users.join(", "),
                g.entries,
                human(g.bytes),
                ago(now, g.last_use)
            );
        }
        let _ = writeln!(out, "by user:");
        for g in &self.users {
            let _ = writeln!(
                out,
                "  {}: {} entries, {}, last used {}",
                g.name,
                g.entries,
                human(g.bytes),
                ago(now, g.last_use)
            );
        }
        if self.unrecorded.entries > 0 {
            let _ =
                writeln!(out, "no recorded use: {} entries, {}", self.unrecorded.entries, human(self.unrecorded.bytes));
        }
        out
    }
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
    if r.problems.is_empty() { Ok(()) } else { Err(Error::Damaged(r.problems.len())) }
}

/// What the named pipelines reach now: their fresh stages' entries (the objects those
/// name), the resume state of stages still to run, their downloads.
fn named_keep(store: &Store, files: &[PathBuf], sets: &[String]) -> Result<Keep, Error> {
    let mut keep = Keep::default();
    for f in files {
        let p = load(f, sets, crate::kinds::registry())?;
        keep.downloads.extend(p.stages.iter().flat_map(|s| s.task.downloads()));
        let plan = plan_pipeline(&p, store, &Selection::new(&p, &[], &[])?, None)?;
        for (_, s) in plan.selected() {
            let Some(key) = s.digest().map(str::to_string) else { continue };
            match s.state {
                StageState::Fresh { .. } => keep.entries.insert(key),
                _ => keep.resume.insert(key),
            };
        }
    }
    Ok(keep)
}

fn policy(a: &GcArgs) -> Policy {
    Policy {
        only: a.only,
        retention: a.retention,
        older_than: a.older_than,
        max_size: a.max_size,
        now: now_unix(),
        ..Policy::default()
    }
}

/// Keep every recorded run's entries and what the named files reach (with `--only`,
/// the latter alone), less what age and size evict; the store removes the rest and
/// what killed processes left behind.
fn gc(store: &Store, a: &GcArgs) -> Result<(), Error> {
    let keep = named_keep(store, &a.files, &a.sets)?;
    let preview = store.gc_preview(&keep, policy(a))?;
    let d = &preview.decision;
    list_and_confirm(d, a, "here")?;
    let r = store.gc(&keep, &preview, a.dry_run)?;
    let downloads = if r.downloads > 0 { format!(" and {} downloads", r.downloads) } else { String::new() };
    let leftovers = match r.leftovers {
        0 => String::new(),
        n => format!(", plus {n} leftovers of killed or finished runs"),
    };
    let mut out = format!(
        "{} {} entries, {} objects{downloads}{leftovers} ({}); kept {} entries\n",
        if a.dry_run { "would remove" } else { "removed" },
        r.entries,
        r.objects,
        human(r.bytes),
        r.kept
    );
    out.push_str(&rules_said(&r.removed, a));
    if r.records > 0 {
        let _ = writeln!(out, "dropped the use records of {} pipeline files that are gone", r.records);
    }
    emit(&out)
}

/// One line for each rule that took entries a recorded run reaches.
fn rules_said(removed: &[Removed], a: &GcArgs) -> String {
    let mut out = String::new();
    let rooted = |why: Why| removed.iter().filter(|r| r.rooted && r.why == why).count();
    if let Some(age) = a.older_than
        && rooted(Why::Unused) > 0
    {
        let _ = writeln!(out, "{} of them were roots unused for more than {}", rooted(Why::Unused), age_text(age));
    }
    if let Some(max) = a.max_size
        && rooted(Why::Evicted) > 0
    {
        let _ = writeln!(
            out,
            "{} of them were roots evicted, least recently used first, to fit {}",
            rooted(Why::Evicted),
            human(max)
        );
    }
    out
}

/// What would go, listed for a dry run and before `--only` removes anything; then
/// `--only` asks (see `confirm`).
fn list_and_confirm(d: &Decision, a: &GcArgs, place: &str) -> Result<(), Error> {
    if a.dry_run || (a.only && !d.removed.is_empty()) {
        emit(&listing(d, place))?;
    }
    if a.dry_run || !a.only || d.removed.is_empty() {
        return Ok(());
    }
    confirm(d, a.yes)
}

/// Off a terminal, `--only` needs `--yes`; on one, the user says yes.
fn confirm(d: &Decision, yes: bool) -> Result<(), Error> {
    if yes {
        return Ok(());
    }
    let others = d.removed.iter().filter(|r| !r.owners.is_empty()).count();
    if !std::io::stdin().is_terminal() {
        return Err(Usage::GcNeedsYes { others }.into());
    }
    eprint!("remove these {} entries? [y/N] ", d.removed.len());
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes") { Ok(()) } else { Err(Usage::GcDeclined.into()) }
}

/// What would go, by who used it: user, pipeline, entries, size and last use.
fn listing(d: &Decision, place: &str) -> String {
    let now = now_unix();
    let mut groups: BTreeMap<Option<&Owner>, (usize, u64, u64)> = BTreeMap::new();
    for r in &d.removed {
        let owners: Vec<Option<&Owner>> =
            if r.owners.is_empty() { vec![None] } else { r.owners.iter().map(Some).collect() };
        for o in owners {
            let g = groups.entry(o).or_default();
            g.0 += 1;
            g.1 += r.bytes;
            g.2 = g.2.max(r.last_use);
        }
    }
    let mut out = String::new();
    if groups.is_empty() {
        return out;
    }
    let _ = writeln!(out, "entries {place} that would go, by who used them last:");
    let width = groups.keys().flatten().map(|o| o.user.len()).max().unwrap_or(0).max(4);
    for (o, (n, bytes, last)) in &groups {
        let who = match o {
            Some(o) => format!("{:<width$}  {}", o.user, o.pipeline),
            None => format!("{:<width$}  (no recorded run)", "-"),
        };
        let _ = writeln!(out, "  {who}: {n} entries, {}, last used {}", human(*bytes), ago(now, *last));
    }
    if d.removed.iter().any(|r| r.owners.len() > 1) {
        let _ = writeln!(out, "  (an entry several pipelines used is counted under each)");
    }
    out
}

fn ago(now: u64, t: u64) -> String {
    match now.saturating_sub(t) {
        s if s < 120 => "just now".into(),
        s if s < 7200 => format!("{} minutes ago", s / 60),
        s if s < 2 * 86_400 => format!("{} hours ago", s / 3600),
        s => format!("{} days ago", s / 86_400),
    }
}

fn age_text(s: u64) -> String {
    match s {
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s % 3600 == 0 => format!("{} hours", s / 3600),
        s => format!("{s} seconds"),
    }
}

/// The same rules on the remote, with the roots pushed there. The named files' keys
/// must be known here: where one is not, nothing is removed.
fn gc_remote(store: &Store, a: &GcArgs, url: &str) -> Result<(), Error> {
    let remote = crate::remote::Remote::open(url, false)?;
    let mut named = BTreeSet::new();
    for f in &a.files {
        let p = load(f, &a.sets, crate::kinds::registry())?;
        let plan = plan_pipeline(&p, store, &Selection::new(&p, &[], &[])?, Some(&remote))?;
        // A stage whose inputs are in neither cache has a key nobody can know here, and
        // so may the remote entries of everything after it: remove nothing.
        let unknown: Vec<&str> =
            plan.selected().filter(|(_, s)| s.digest().is_none()).map(|(i, _)| p.stages[i].name.as_str()).collect();
        if let Some(first) = unknown.first() {
            return Err(Error::UnknownKeys {
                url: url.to_string(),
                count: unknown.len(),
                file: f.clone(),
                first: first.to_string(),
            });
        }
        named.extend(plan.selected().filter_map(|(_, s)| s.digest()).map(str::to_string));
    }
    let policy = Policy { named, young: REMOTE_YOUNG, ..policy(a) };
    let preview = remote.gc_preview(policy)?;
    let d = &preview.decision;
    list_and_confirm(d, a, &format!("on {url}"))?;
    let r = remote.gc(&preview, a.dry_run)?;
    let mut out = format!(
        "remote {url}: {} {} entries, {} objects ({}); kept {} entries\n",
        if a.dry_run { "would remove" } else { "removed" },
        r.moved.entries,
        r.moved.objects,
        human(r.moved.bytes),
        r.moved.entries_present
    );
    out.push_str(&rules_said(&r.removed, a));
    emit(&out)
}

/// On a remote, an entry pushed less than a day ago stays under the default rules: a
/// run elsewhere that pushes as it goes records its roots there when it ends.
const REMOTE_YOUNG: u64 = 86_400;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_sizes_read_as_people_write_them() {
        assert_eq!(parse_age("90d"), Ok(90 * 86_400));
        assert_eq!(parse_age("2w"), Ok(14 * 86_400));
        assert_eq!(parse_age("12h"), Ok(12 * 3600));
        assert_eq!(parse_age("0s"), Ok(0));
        assert_eq!(parse_age("45"), Ok(45));
        assert!(parse_age("3y").unwrap_err().contains("s, m, h, d or w"));
        assert!(parse_age("d").is_err());
        assert_eq!(parse_size("50G"), Ok(50 << 30));
        assert_eq!(parse_size("1.5T"), Ok(3 << 39));
        assert_eq!(parse_size("500MiB"), Ok(500 << 20));
        assert_eq!(parse_size("100k"), Ok(100 << 10));
        assert_eq!(parse_size("2100"), Ok(2100));
        assert!(parse_size("5X").unwrap_err().contains("K, M, G or T"));
    }
}
