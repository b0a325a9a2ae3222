//! Which entries `gc` keeps: a pure decision over what a cache (local or remote) holds
//! and who used it, so the same rules serve both and need no disk to test.
//!
//! The rules, in order:
//! 1. Roots. Every run a use log records within the retention window, the last run of
//!    each log while its pipeline file still exists (or cannot be checked from here),
//!    each pipeline's record of its stages' last keys on the same terms, and whatever
//!    the files named on the command line reach now. With `only`, the named files'
//!    reach alone.
//! 2. Age. With `older_than`, a kept entry unused that long goes, root or not.
//! 3. Size. With `max_size`, kept entries go least recently used first until the
//!    objects the rest name fit.
//!
//! What a live run holds is kept whatever the rules say.
//!
//! An entry's last use is the newest run, status or show that named it; one that none
//! named counts as used when it was created.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::uses::{UseKind, UseLine};

/// One entry as gc sees it.
#[derive(Debug, Clone)]
pub struct EntryFacts {
    pub key: String,
    pub stage: String,
    pub kind: String,
    pub created: u64,
    /// Its objects: digest and size.
    pub files: Vec<(String, u64)>,
}

/// A pipeline's record of its stages' last keys (`records/<file>.json`).
#[derive(Debug, Clone)]
pub struct RecordRoot {
    pub pipeline: String,
    pub user: String,
    /// When it was last written.
    pub t: u64,
    pub keys: Vec<String>,
}

/// Everything the decision reads.
#[derive(Debug, Default)]
pub struct Facts {
    pub entries: Vec<EntryFacts>,
    /// Use lines by log name.
    pub logs: BTreeMap<String, Vec<UseLine>>,
    /// The keys of each key list the lines name.
    pub sets: HashMap<String, Vec<String>>,
    pub records: Vec<RecordRoot>,
    /// Keys live runs hold.
    pub live: HashSet<String>,
}

/// How gc chooses.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Keys the pipelines named on the command line reach now.
    pub named: BTreeSet<String>,
    /// Keep only what the named pipelines reach: recorded runs are not roots.
    pub only: bool,
    /// Seconds a recorded run stays a root.
    pub retention: u64,
    /// Remove entries unused for this many seconds, roots included.
    pub older_than: Option<u64>,
    /// Evict least recently used entries until the objects kept fit in this many bytes.
    pub max_size: Option<u64>,
    pub now: u64,
    /// Keep entries created less than this many seconds ago unless a rule above removes
    /// them explicitly (a remote: a run elsewhere records its roots when it ends).
    pub young: u64,
}

/// Why an entry goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// No root reaches it.
    Unreached,
    /// Unused for longer than `older_than`.
    Unused,
    /// Evicted to fit `max_size`.
    Evicted,
}

/// Who used an entry: a user and a pipeline file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Owner {
    pub user: String,
    pub pipeline: String,
}

#[derive(Debug, Clone)]
pub struct Removed {
    pub key: String,
    pub stage: String,
    pub kind: String,
    /// Bytes of its objects that no kept entry names.
    pub bytes: u64,
    pub last_use: u64,
    pub why: Why,
    /// Whether a root reached it (age or size took it anyway, or `only` ignored it).
    pub rooted: bool,
    pub owners: Vec<Owner>,
}

#[derive(Debug, Default)]
pub struct Decision {
    pub keep: HashSet<String>,
    /// Least recently used first.
    pub removed: Vec<Removed>,
}

impl Decision {
    pub fn removed_roots(&self) -> usize {
        self.removed.iter().filter(|r| r.rooted).count()
    }
}

/// What the use lines say of each key: its last use, who used it, and whether a root
/// reaches it (whatever `only` says: the listing tells the user).
#[derive(Default)]
struct Usage {
    last: HashMap<String, u64>,
    owners: HashMap<String, BTreeSet<Owner>>,
    roots: HashSet<String>,
}

/// Whether a log line is a root now. `newest_run` is the time of its log's latest run;
/// `exists` says whether a pipeline file is there (true where it cannot be checked).
pub fn line_is_root(line: &UseLine, newest_run: u64, p: &Policy, exists: &dyn Fn(&UseLine) -> bool) -> bool {
    line.what == UseKind::Run && (p.now.saturating_sub(line.t) <= p.retention || (line.t == newest_run && exists(line)))
}

fn usage(f: &Facts, p: &Policy, exists: &dyn Fn(&UseLine) -> bool, record_exists: &dyn Fn(&str) -> bool) -> Usage {
    let mut u = Usage::default();
    for lines in f.logs.values() {
        let newest_run = lines.iter().filter(|l| l.what == UseKind::Run).map(|l| l.t).max().unwrap_or(0);
        for line in lines {
            let root = line_is_root(line, newest_run, p, exists);
            let owner = Owner { user: line.user.clone(), pipeline: line.pipeline.clone() };
            for k in f.sets.get(&line.set).into_iter().flatten() {
                let last = u.last.entry(k.clone()).or_insert(0);
                *last = (*last).max(line.t);
                u.owners.entry(k.clone()).or_default().insert(owner.clone());
                if root {
                    u.roots.insert(k.clone());
                }
            }
        }
    }
    for r in &f.records {
        let root = p.now.saturating_sub(r.t) <= p.retention || record_exists(&r.pipeline);
        let owner = Owner { user: r.user.clone(), pipeline: r.pipeline.clone() };
        for k in &r.keys {
            u.owners.entry(k.clone()).or_default().insert(owner.clone());
            if root {
                u.roots.insert(k.clone());
            }
        }
    }
    u
}

/// Decide what stays. `exists` tells whether a log's pipeline file is still there,
/// `record_exists` the same for a record's.
pub fn decide(
    f: &Facts,
    p: &Policy,
    exists: &dyn Fn(&UseLine) -> bool,
    record_exists: &dyn Fn(&str) -> bool,
) -> Decision {
    let u = usage(f, p, exists, record_exists);
    let last_use = |e: &EntryFacts| u.last.get(&e.key).copied().unwrap_or(0).max(e.created);
    let rooted = |e: &EntryFacts| (!p.only && u.roots.contains(&e.key)) || p.named.contains(&e.key);
    let mut why: HashMap<&str, Why> = HashMap::new();
    for e in &f.entries {
        // Young entries wait for the run that made them to record them, unless only
        // the named files count.
        let waits = p.now.saturating_sub(e.created) < p.young && !p.only;
        if !rooted(e) && !waits {
            why.insert(&e.key, Why::Unreached);
        }
    }
    if let Some(age) = p.older_than {
        for e in &f.entries {
            if !why.contains_key(e.key.as_str()) && p.now.saturating_sub(last_use(e)) > age {
                why.insert(&e.key, Why::Unused);
            }
        }
    }
    // Live runs' entries stay whatever the rules say.
    why.retain(|k, _| !f.live.contains(*k));
    if let Some(max) = p.max_size {
        evict(f, max, &last_use, &mut why);
    }
    let keep: HashSet<String> =
        f.entries.iter().filter(|e| !why.contains_key(e.key.as_str())).map(|e| e.key.clone()).collect();
    let kept_objects: HashSet<&str> = f
        .entries
        .iter()
        .filter(|e| keep.contains(&e.key))
        .flat_map(|e| e.files.iter().map(|(d, _)| d.as_str()))
        .collect();
    let mut removed: Vec<Removed> = f
        .entries
        .iter()
        .filter_map(|e| {
            let why = *why.get(e.key.as_str())?;
            Some(Removed {
                key: e.key.clone(),
                stage: e.stage.clone(),
                kind: e.kind.clone(),
                bytes: distinct(&e.files).filter(|(d, _)| !kept_objects.contains(d)).map(|(_, s)| s).sum(),
                last_use: last_use(e),
                why,
                rooted: u.roots.contains(&e.key) || p.named.contains(&e.key),
                owners: u.owners.get(&e.key).map(|o| o.iter().cloned().collect()).unwrap_or_default(),
            })
        })
        .collect();
    removed.sort_by(|a, b| (a.last_use, &a.key).cmp(&(b.last_use, &b.key)));
    Decision { keep, removed }
}

/// Mark kept entries `Evicted`, least recently used first (never one a live run
/// holds), until the objects the others name fit in `max` bytes.
fn evict<'f>(f: &'f Facts, max: u64, last_use: &dyn Fn(&EntryFacts) -> u64, why: &mut HashMap<&'f str, Why>) {
    let mut refs: HashMap<&str, (usize, u64)> = HashMap::new();
    for e in f.entries.iter().filter(|e| !why.contains_key(e.key.as_str())) {
        for (d, size) in distinct(&e.files) {
            refs.entry(d).or_insert((0, size)).0 += 1;
        }
    }
    let mut total: u64 = refs.values().map(|(_, s)| s).sum();
    let mut order: Vec<&EntryFacts> =
        f.entries.iter().filter(|e| !why.contains_key(e.key.as_str()) && !f.live.contains(&e.key)).collect();
    order.sort_by(|a, b| (last_use(a), a.created, &a.key).cmp(&(last_use(b), b.created, &b.key)));
    for e in order {
        if total <= max {
            break;
        }
        why.insert(&e.key, Why::Evicted);
        for (d, _) in distinct(&e.files) {
            let r = refs.get_mut(d).expect("counted above");
            r.0 -= 1;
            if r.0 == 0 {
                total -= r.1;
            }
        }
    }
}

/// An entry's objects, each once.
fn distinct(files: &[(String, u64)]) -> impl Iterator<Item = (&str, u64)> {
    let mut seen = HashSet::new();
    files.iter().filter(move |(d, _)| seen.insert(d.as_str())).map(|(d, s)| (d.as_str(), *s))
}

/// The lines worth keeping in a log after gc: the newest line of each kind per key
/// list, and only while its list names an entry that is still there. Empty when the
/// log can go: nothing left, or its pipeline file is gone and its window has passed.
pub fn compact(lines: &[UseLine], alive: &dyn Fn(&str) -> bool, p: &Policy, exists: bool) -> Vec<UseLine> {
    let mut newest: HashMap<(&str, UseKind), &UseLine> = HashMap::new();
    for l in lines {
        let slot = newest.entry((l.set.as_str(), l.what)).or_insert(l);
        if l.t >= slot.t {
            *slot = l;
        }
    }
    let mut kept: Vec<UseLine> = newest.into_values().filter(|l| alive(&l.set)).cloned().collect();
    kept.sort_by(|a, b| (a.t, &a.set).cmp(&(b.t, &b.set)));
    if !exists && kept.iter().all(|l| p.now.saturating_sub(l.t) > p.retention) {
        kept.clear();
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;

    fn entry(key: &str, created: u64, files: &[(&str, u64)]) -> EntryFacts {
        EntryFacts {
            key: key.into(),
            stage: format!("stage-{key}"),
            kind: "train".into(),
            created,
            files: files.iter().map(|(d, s)| (d.to_string(), *s)).collect(),
        }
    }

    fn line(t: u64, what: UseKind, user: &str, pipeline: &str, set: &str) -> UseLine {
        UseLine {
            t,
            what,
            user: user.into(),
            uid: 1,
            host: "h".into(),
            pipeline: pipeline.into(),
            set: set.into(),
            entries: 1,
        }
    }

    fn policy(now: u64) -> Policy {
        Policy { retention: 90 * DAY, now, ..Policy::default() }
    }

    fn removed(d: &Decision) -> Vec<&str> {
        d.removed.iter().map(|r| r.key.as_str()).collect()
    }

    /// Two users' pipelines on one cache, and one entry nobody recorded.
    fn lab(now: u64) -> Facts {
        let mut f = Facts {
            entries: vec![
                entry("a1", now - 50 * DAY, &[("x", 10), ("shared", 5)]),
                entry("b1", now - 40 * DAY, &[("y", 20), ("shared", 5)]),
                entry("b2", now - 30 * DAY, &[("z", 30)]),
                entry("orphan", now - 20 * DAY, &[("w", 7)]),
            ],
            ..Facts::default()
        };
        f.sets.insert("sa".into(), vec!["a1".into()]);
        f.sets.insert("sb".into(), vec!["b1".into(), "b2".into()]);
        f.sets.insert("sb2".into(), vec!["b2".into()]);
        f.logs.insert("a.log".into(), vec![line(now - 10 * DAY, UseKind::Run, "alice", "/a.yaml", "sa")]);
        f.logs.insert(
            "b.log".into(),
            vec![
                line(now - 5 * DAY, UseKind::Run, "bob", "/b.yaml", "sb"),
                line(now - DAY, UseKind::Status, "bob", "/b.yaml", "sb2"),
            ],
        );
        f
    }

    #[test]
    fn every_recorded_run_is_a_root() {
        let now = 1000 * DAY;
        let f = lab(now);
        let p = Policy { named: ["b1".to_string()].into(), ..policy(now) };
        let d = decide(&f, &p, &|_| true, &|_| true);
        assert_eq!(removed(&d), ["orphan"]);
        assert_eq!(d.removed[0].why, Why::Unreached);
        assert_eq!(d.removed[0].bytes, 7);
        assert!(!d.removed[0].rooted);
    }

    #[test]
    fn only_keeps_what_the_named_files_reach() {
        let now = 1000 * DAY;
        let f = lab(now);
        let p = Policy { named: ["b1".to_string(), "b2".to_string()].into(), only: true, ..policy(now) };
        let d = decide(&f, &p, &|_| true, &|_| true);
        // Least recently used first: the orphan was created 20 days ago, a1 used 10.
        assert_eq!(removed(&d), ["orphan", "a1"]);
        let a1 = &d.removed[1];
        // "shared" stays with b1.
        assert_eq!(a1.bytes, 10);
        assert_eq!(a1.owners, [Owner { user: "alice".into(), pipeline: "/a.yaml".into() }]);
        assert!(a1.rooted);
    }

    #[test]
    fn a_run_outside_the_window_is_a_root_only_as_its_files_last_run() {
        let now = 1000 * DAY;
        let mut f = lab(now);
        f.logs.get_mut("a.log").unwrap().insert(0, line(now - 200 * DAY, UseKind::Run, "alice", "/a.yaml", "sold"));
        f.sets.insert("sold".into(), vec!["old".into()]);
        f.entries.push(entry("old", now - 200 * DAY, &[("o", 1)]));
        let d = decide(&f, &policy(now), &|_| true, &|_| true);
        assert_eq!(removed(&d), ["old", "orphan"]);
        // The file is gone: its last run stays a root only within the window.
        f.logs.get_mut("a.log").unwrap().retain(|l| l.set == "sold");
        let d = decide(&f, &policy(now), &|l| l.pipeline != "/a.yaml", &|_| true);
        assert_eq!(removed(&d), ["old", "a1", "orphan"]);
        let d = decide(&f, &policy(now), &|_| true, &|_| true);
        assert_eq!(removed(&d), ["a1", "orphan"]);
    }

    #[test]
    fn older_than_removes_roots_unused_that_long() {
        let now = 1000 * DAY;
        let f = lab(now);
        let p = Policy { older_than: Some(7 * DAY), ..policy(now) };
        let d = decide(&f, &p, &|_| true, &|_| true);
        // a1 was last used 10 days ago; b1 5 days ago, b2 yesterday.
        assert_eq!(removed(&d), ["orphan", "a1"]);
        assert_eq!(d.removed[1].why, Why::Unused);
        assert!(d.removed[1].rooted);
        assert_eq!(d.removed_roots(), 1);
    }

    #[test]
    fn max_size_evicts_least_recently_used_first_and_counts_shared_objects_once() {
        let now = 1000 * DAY;
        let f = lab(now);
        // Kept objects: x 10, shared 5, y 20, z 30 = 65 (orphan goes anyway).
        let p = Policy { max_size: Some(65), ..policy(now) };
        assert_eq!(removed(&decide(&f, &p, &|_| true, &|_| true)), ["orphan"]);
        // a1 is the least recently used; removing it frees only x (shared stays with b1).
        let p = Policy { max_size: Some(55), ..policy(now) };
        let d = decide(&f, &p, &|_| true, &|_| true);
        assert_eq!(removed(&d), ["orphan", "a1"]);
        assert_eq!(d.removed[1].why, Why::Evicted);
        assert_eq!(d.removed[1].bytes, 10);
        // Next b1 (5 days), then b2 (used yesterday).
        let p = Policy { max_size: Some(31), ..policy(now) };
        assert_eq!(removed(&decide(&f, &p, &|_| true, &|_| true)), ["orphan", "a1", "b1"]);
        let p = Policy { max_size: Some(0), ..policy(now) };
        assert_eq!(removed(&decide(&f, &p, &|_| true, &|_| true)), ["orphan", "a1", "b1", "b2"]);
    }

    #[test]
    fn live_runs_keep_what_they_hold() {
        let now = 1000 * DAY;
        let mut f = lab(now);
        f.live.insert("orphan".into());
        f.live.insert("a1".into());
        let p = Policy { only: true, max_size: Some(0), older_than: Some(0), ..policy(now) };
        let d = decide(&f, &p, &|_| true, &|_| true);
        assert_eq!(removed(&d), ["b1", "b2"]);
    }

    #[test]
    fn records_of_stage_keys_are_roots_while_their_file_exists() {
        let now = 1000 * DAY;
        let mut f = lab(now);
        f.records.push(RecordRoot {
            pipeline: "/c.yaml".into(),
            user: "carol".into(),
            t: now - 300 * DAY,
            keys: vec!["orphan".into()],
        });
        assert!(removed(&decide(&f, &policy(now), &|_| true, &|_| true)).is_empty());
        assert_eq!(removed(&decide(&f, &policy(now), &|_| true, &|p| p != "/c.yaml")), ["orphan"]);
    }

    #[test]
    fn young_entries_wait_for_their_run_to_record_them() {
        let now = 1000 * DAY;
        let mut f = lab(now);
        f.entries.push(entry("new", now - 60, &[("n", 1)]));
        let p = Policy { young: DAY, ..policy(now) };
        assert_eq!(removed(&decide(&f, &p, &|_| true, &|_| true)), ["orphan"]);
        let p = Policy { young: DAY, only: true, ..policy(now) };
        assert!(removed(&decide(&f, &p, &|_| true, &|_| true)).contains(&"new"));
    }

    #[test]
    fn compaction_keeps_the_newest_line_of_each_list_while_it_names_an_entry() {
        let now = 1000 * DAY;
        let p = policy(now);
        let lines = vec![
            line(now - 9 * DAY, UseKind::Run, "u", "/p", "s1"),
            line(now - 3 * DAY, UseKind::Run, "u", "/p", "s1"),
            line(now - 2 * DAY, UseKind::Status, "u", "/p", "s1"),
            line(now - DAY, UseKind::Run, "u", "/p", "gone"),
        ];
        let kept = compact(&lines, &|s| s != "gone", &p, true);
        assert_eq!(kept.iter().map(|l| l.t).collect::<Vec<_>>(), [now - 3 * DAY, now - 2 * DAY]);
        // Its file gone: the log stays while a line is within the window...
        assert_eq!(compact(&lines, &|s| s != "gone", &p, false).len(), 2);
        // ...and goes after.
        let later = Policy { now: now + 100 * DAY, ..p };
        assert!(compact(&lines, &|s| s != "gone", &later, false).is_empty());
    }
}
