//! The real `pipe` binary, driven in temporary folders: caching, reruns, concurrency,
//! crashes, and what users read when something is wrong.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox { dir: tempfile::tempdir().expect("a temporary folder") }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, name: &str, text: &str) {
        let p = self.path().join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.path().join(name)).unwrap_or_default()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pipe"));
        c.args(args).current_dir(self.path()).env("PIPE_CACHE", self.path().join("cache")).env_remove("RUST_LOG");
        c
    }

    fn pipe(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("pipe runs")
    }

    /// `pipe run --json`: each stage's outcome by name.
    fn run_json(&self, file: &str, extra: &[&str]) -> Vec<(String, String)> {
        let mut args = vec!["run", file, "--json"];
        args.extend_from_slice(extra);
        let out = self.pipe(&args);
        assert!(out.status.success(), "run failed: {}\n{}", stdout(&out), stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("run --json prints JSON");
        v["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["name"].as_str().unwrap().to_string(), s["outcome"].as_str().unwrap().to_string()))
            .collect()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ran(outcomes: &[(String, String)]) -> Vec<&str> {
    outcomes.iter().filter(|(_, o)| o == "ran").map(|(n, _)| n.as_str()).collect()
}

/// A transfer-shaped pipeline of shell commands; every command appends its stage name
/// to `runs.log`, so a test can count what really executed.
const TRANSFER: &str = r#"
name: transfer
env: {EPOCHS: "1"}
stages:
  split:
    cmd: {run: "echo split >> runs.log; echo classes > split.txt", outs: [split.txt]}
  base:
    matrix: {half: [A, B]}
    cmd:
      run: "echo base-$PIPE_STAGE >> runs.log; cat split.txt > base_${half}.txt; echo ${half} $EPOCHS >> base_${half}.txt"
      deps: [split.txt]
      outs: ["base_${half}.txt"]
  transfer:
    matrix: {from: [A, B], n: [1, 2]}
    cmd:
      run: "echo $PIPE_STAGE >> runs.log; cat base_${from}.txt > t_${from}_${n}.txt; echo n=${n} >> t_${from}_${n}.txt"
      deps: ["base_${from}.txt"]
      outs: ["t_${from}_${n}.txt"]
  report:
    cmd:
      run: "echo report >> runs.log; cat t_*.txt > report.txt"
      deps: [t_A_1.txt, t_A_2.txt, t_B_1.txt, t_B_2.txt]
      outs: [report.txt]
"#;

#[test]
fn second_run_executes_nothing() {
    let s = Sandbox::new();
    s.write("p.yaml", TRANSFER);
    let first = s.run_json("p.yaml", &[]);
    assert_eq!(ran(&first).len(), 8, "{first:?}");
    assert_eq!(s.read("runs.log").lines().count(), 8);
    let second = s.run_json("p.yaml", &[]);
    assert!(ran(&second).is_empty(), "{second:?}");
    assert!(second.iter().all(|(_, o)| o == "cached"));
    assert_eq!(s.read("runs.log").lines().count(), 8, "nothing executed the second time");
    let out = s.pipe(&["run", "p.yaml"]);
    assert!(stdout(&out).contains("8 stages: 0 ran, 8 cached, 0 failed"), "{}", stdout(&out));
    // A cached stage's workspace output edited or removed by hand is put back from the
    // cache, nothing executed; the other outputs are left as they are.
    let original = s.read("t_A_1.txt");
    s.write("t_A_1.txt", "edited\n");
    fs::remove_file(s.path().join("t_B_2.txt")).unwrap();
    let third = s.run_json("p.yaml", &[]);
    assert!(ran(&third).is_empty(), "{third:?}");
    assert_eq!(s.read("t_A_1.txt"), original);
    assert!(s.path().join("t_B_2.txt").exists());
    assert_eq!(s.read("runs.log").lines().count(), 8);
}

#[test]
fn a_changed_parameter_reruns_that_stage_and_its_dependents_only() {
    let s = Sandbox::new();
    s.write("p.yaml", TRANSFER);
    s.run_json("p.yaml", &[]);
    let changed = TRANSFER.replace("echo n=${n} >>", "echo layer=${n} >>");
    s.write("p.yaml", &changed);
    // Only the transfer commands changed: those four rerun, then the report (its inputs
    // changed); split and the bases come from the cache.
    let st = s.pipe(&["status", "p.yaml", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    let states: Vec<(&str, &str)> = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["name"].as_str().unwrap(), x["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            ("split", "fresh"),
            ("base[half=A]", "fresh"),
            ("base[half=B]", "fresh"),
            ("transfer[from=A,n=1]", "stale"),
            ("transfer[from=A,n=2]", "stale"),
            ("transfer[from=B,n=1]", "stale"),
            ("transfer[from=B,n=2]", "stale"),
            ("report", "waiting"),
        ]
    );
    let reasons = v["stages"][3]["reasons"].as_array().unwrap();
    assert!(reasons[0].as_str().unwrap().starts_with("params.run: "), "{reasons:?}");
    let second = s.run_json("p.yaml", &[]);
    let mut r = ran(&second);
    r.sort();
    assert_eq!(
        r,
        ["report", "transfer[from=A,n=1]", "transfer[from=A,n=2]", "transfer[from=B,n=1]", "transfer[from=B,n=2]"]
    );
    // Back to the original: every stage is in the cache, nothing executes.
    s.write("p.yaml", TRANSFER);
    let before = s.read("runs.log").lines().count();
    let third = s.run_json("p.yaml", &[]);
    assert!(ran(&third).is_empty(), "{third:?}");
    assert_eq!(s.read("runs.log").lines().count(), before);
    assert!(s.read("t_A_1.txt").contains("n=1"), "workspace outputs restored from the cache");
}

#[test]
fn set_overrides_change_keys_like_the_file_does() {
    let s = Sandbox::new();
    s.write("p.yaml", TRANSFER);
    s.run_json("p.yaml", &[]);
    // The pipeline-wide `env` is part of every command's key: all eight rerun.
    let out = s.run_json("p.yaml", &["--set", "env.EPOCHS=2"]);
    assert_eq!(ran(&out).len(), 8, "{out:?}");
    // A stage's own setting overrides the pipeline-wide one for that stage only.
    let out = s.run_json("p.yaml", &["--set", "stages.base.cmd.env.EPOCHS=3"]);
    let mut r = ran(&out);
    r.sort();
    assert_eq!(r.len(), 7, "{out:?}");
    assert!(!r.contains(&"split"));
    let st = s.pipe(&["status", "p.yaml", "--set", "stages.base.cmd.env.EPOCHS=4"]);
    assert!(
        stdout(&st).contains("stale    base[half=A]\n           params.env.EPOCHS: \"3\" -> \"4\""),
        "{}",
        stdout(&st)
    );
}

#[test]
fn early_cutoff_stops_at_identical_outputs() {
    let s = Sandbox::new();
    s.write("p.yaml", TRANSFER);
    s.run_json("p.yaml", &[]);
    // A different command that writes the same bytes: split reruns, nothing else does.
    s.write("p.yaml", &TRANSFER.replace("echo classes > split.txt", "printf 'classes\\n' > split.txt"));
    let out = s.run_json("p.yaml", &[]);
    assert_eq!(ran(&out), ["split"], "{out:?}");
}

#[test]
fn renamed_stage_and_other_pipelines_hit_the_same_entries() {
    let s = Sandbox::new();
    s.write("p.yaml", TRANSFER);
    s.run_json("p.yaml", &[]);
    s.write(
        "renamed.yaml",
        &TRANSFER.replace("  split:\n", "  make_split:\n").replace("name: transfer", "name: other"),
    );
    let out = s.run_json("renamed.yaml", &[]);
    assert!(ran(&out).is_empty(), "a renamed stage and a renamed pipeline are cache hits: {out:?}");
    assert_eq!(s.read("runs.log").lines().count(), 8);
    // A second pipeline in another folder that shares only `split` with the first.
    s.write(
        "other/q.yaml",
        "env: {EPOCHS: '1'}\nstages:\n  split:\n    cmd: {run: \"echo split >> runs.log; echo classes > split.txt\", outs: [split.txt]}\n  \
         count:\n    cmd: {run: \"wc -l < split.txt > n.txt\", deps: [split.txt], outs: [n.txt]}\n",
    );
    let out = s.run_json("other/q.yaml", &[]);
    assert_eq!(ran(&out), ["count"], "{out:?}");
    assert!(s.path().join("other/split.txt").exists(), "the cached output is put in place");
    assert!(!s.path().join("other/runs.log").exists(), "the shared stage did not execute");
}

#[test]
fn targets_run_only_what_they_need() {
    let s = Sandbox::new();
    s.write("p.yaml", TRANSFER);
    let out = s.run_json("p.yaml", &["transfer[from=A,n=2]"]);
    let mut r = ran(&out);
    r.sort();
    assert_eq!(r, ["base[half=A]", "split", "transfer[from=A,n=2]"]);
    let out = s.run_json("p.yaml", &["base"]);
    assert_eq!(ran(&out), ["base[half=B]"]);
    let bad = s.pipe(&["run", "p.yaml", "tranfser"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("did you mean `transfer`?"), "{}", stderr(&bad));
}

#[test]
fn force_recomputes_a_cached_stage() {
    let s = Sandbox::new();
    s.write("p.yaml", TRANSFER);
    s.run_json("p.yaml", &[]);
    let out = s.run_json("p.yaml", &["--force", "split"]);
    // The recomputed split is identical, so nothing downstream reruns.
    assert_eq!(ran(&out), ["split"]);
}

#[test]
fn a_failing_stage_stops_its_dependents_and_names_itself() {
    let s = Sandbox::new();
    s.write(
        "p.yaml",
        &TRANSFER
            .replace("echo n=${n} >>", "test ${from} = A || { echo 'no base B here' >&2; exit 3; }; echo n=${n} >>"),
    );
    let out = s.pipe(&["run", "p.yaml", "-j", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("error: stage `transfer[from=B,n=1]` failed: command exited with status 3"), "{err}");
    assert!(err.contains("| no base B here"), "{err}");
    assert!(stdout(&out).contains("8 stages: 5 ran, 0 cached, 2 failed, 1 skipped"), "{}", stdout(&out));
    // The stages that succeeded are kept: a rerun only retries the failed ones.
    let again = s.pipe(&["run", "p.yaml", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    let cached = v["stages"].as_array().unwrap().iter().filter(|x| x["outcome"] == "cached").count();
    assert_eq!(cached, 5);
}

#[test]
fn two_processes_compute_each_stage_once() {
    let s = Sandbox::new();
    s.write("p.yaml", &TRANSFER.replace("echo split >> runs.log;", "echo split >> runs.log; sleep 0.3;"));
    let spawn = || s.cmd(&["run", "p.yaml", "-j", "2"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success(), "{}\n{}", stderr(&a), stderr(&b));
    let mut lines: Vec<String> = s.read("runs.log").lines().map(str::to_string).collect();
    lines.sort();
    let before = lines.len();
    lines.dedup();
    assert_eq!(before, 8, "every stage computed exactly once: {lines:?}");
    assert_eq!(lines.len(), 8);
}

#[test]
fn a_killed_run_leaves_no_entry_and_the_next_run_completes() {
    let s = Sandbox::new();
    s.write(
        "p.yaml",
        "stages:\n  slow:\n    cmd: {run: \"echo started > started; echo partial > out.txt; sleep 30; echo done >> out.txt\", outs: [out.txt]}\n",
    );
    let mut child = s.cmd(&["run", "p.yaml"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let t0 = Instant::now();
    while !s.path().join("started").exists() {
        assert!(t0.elapsed() < Duration::from_secs(20), "the stage never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let st = s.pipe(&["status", "p.yaml"]);
    assert!(stdout(&st).contains("stale    slow"), "{}", stdout(&st));
    let verify = s.pipe(&["cache", "verify"]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    s.write("p.yaml", &s.read("p.yaml").replace("sleep 30", "sleep 0"));
    let out = s.run_json("p.yaml", &[]);
    assert_eq!(ran(&out), ["slow"]);
    assert_eq!(s.read("out.txt"), "partial\ndone\n");
    assert!(s.pipe(&["cache", "verify"]).status.success());
}

#[test]
fn status_and_dry_run_change_nothing() {
    let s = Sandbox::new();
    s.write("p.yaml", TRANSFER);
    let st = s.pipe(&["status", "p.yaml"]);
    assert!(stdout(&st).contains("stale    split\n           never run"), "{}", stdout(&st));
    assert!(stdout(&st).contains("waiting  report"), "{}", stdout(&st));
    let dry = s.pipe(&["run", "p.yaml", "--dry-run"]);
    assert!(stdout(&dry).contains("would run"), "{}", stdout(&dry));
    assert!(!s.path().join("runs.log").exists());
}

#[test]
fn dag_views() {
    let s = Sandbox::new();
    s.write("p.yaml", TRANSFER);
    let text = stdout(&s.pipe(&["dag", "p.yaml"]));
    assert!(text.contains("transfer[from=A,n=1] (cmd) <- base[half=A]"), "{text}");
    let dot = stdout(&s.pipe(&["dag", "p.yaml", "--dot"]));
    assert!(dot.starts_with("digraph \"transfer\" {") && dot.contains(" -> "), "{dot}");
    let mermaid = stdout(&s.pipe(&["dag", "p.yaml", "--mermaid"]));
    assert!(mermaid.starts_with("flowchart LR") && mermaid.contains(" --> "), "{mermaid}");
}

/// Every recorded run is a root, whatever `--set` it used; narrowing to the named
/// files is explicit, listed, and confirmed.
#[test]
fn gc_keeps_every_recorded_run_and_narrows_only_when_asked() {
    let s = Sandbox::new();
    s.write("p.yaml", TRANSFER);
    s.run_json("p.yaml", &["--set", "env.EPOCHS=2"]);
    s.run_json("p.yaml", &[]);
    for args in [&["cache", "gc", "p.yaml"][..], &["cache", "gc"]] {
        let out = s.pipe(args);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("removed 0 entries"), "{}", stdout(&out));
    }
    let entries = || walk(&s.path().join("cache/entries")).len();
    assert_eq!(entries(), 16);
    // No terminal and no --yes: refused, with what would go listed first.
    let out = s.pipe(&["cache", "gc", "--only", "p.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("pass --yes"), "{}", stderr(&out));
    let listed = stdout(&out);
    assert!(listed.contains("would go, by who used them last") && listed.contains("p.yaml: 8 entries"), "{listed}");
    assert_eq!(entries(), 16, "nothing was removed");
    let dry = s.pipe(&["cache", "gc", "--only", "p.yaml", "--dry-run"]);
    assert!(stdout(&dry).contains("would remove 8 entries"), "{}", stdout(&dry));
    let out = s.pipe(&["cache", "gc", "--only", "p.yaml", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("removed 8 entries"), "{}", stdout(&out));
    let again = s.run_json("p.yaml", &[]);
    assert!(ran(&again).is_empty());
    assert!(s.pipe(&["cache", "verify"]).status.success());
}

/// Two small pipelines whose second stages write the same bytes (one object, two
/// entries), for the age and size rules.
const AGED_A: &str = "stages:\n  a1: {cmd: {run: \"head -c 1000 /dev/zero | tr '\\\\0' a > a1.txt\", outs: [a1.txt]}}\n  \
                      same_a: {cmd: {run: \"echo same > sa.txt\", outs: [sa.txt]}}\n";
const AGED_B: &str = "stages:\n  b1: {cmd: {run: \"head -c 2000 /dev/zero | tr '\\\\0' b > b1.txt\", outs: [b1.txt]}}\n  \
                      same_b: {cmd: {run: \"echo same > sb.txt\", outs: [sb.txt]}}\n";

/// Runs a.yaml and b.yaml, then dates them: every entry created 60 days ago, a.yaml's
/// run 40 days ago and b.yaml's 10.
fn aged_cache() -> Sandbox {
    let s = Sandbox::new();
    s.write("a.yaml", AGED_A);
    s.write("b.yaml", AGED_B);
    s.run_json("a.yaml", &[]);
    s.run_json("b.yaml", &[]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let day = 86_400;
    for f in walk(&s.path().join("cache/entries")) {
        let mut m: serde_json::Value = serde_json::from_slice(&fs::read(&f).unwrap()).unwrap();
        m["created_unix"] = serde_json::json!(now - 60 * day);
        fs::write(&f, serde_json::to_vec(&m).unwrap()).unwrap();
    }
    for f in walk(&s.path().join("cache/uses")).into_iter().filter(|f| f.extension().is_some_and(|e| e == "log")) {
        let mut text = String::new();
        for line in fs::read_to_string(&f).unwrap().lines() {
            let mut l: serde_json::Value = serde_json::from_str(line).unwrap();
            let age = if l["pipeline"].as_str().unwrap().ends_with("a.yaml") { 40 } else { 10 };
            l["t"] = serde_json::json!(now - age * day);
            text.push_str(&format!("{l}\n"));
        }
        fs::write(&f, text).unwrap();
    }
    s
}

fn object_of(text: &str) -> String {
    let d = blake3::hash(text.as_bytes()).to_hex().to_string();
    format!("cache/objects/{}/{}", &d[..2], &d[2..])
}

#[test]
fn gc_older_than_removes_roots_unused_that_long_and_keeps_shared_objects() {
    let s = aged_cache();
    let out = s.pipe(&["cache", "gc", "--older-than", "30d"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("removed 2 entries"), "{}", stdout(&out));
    assert!(stdout(&out).contains("2 of them were roots unused for more than 30 days"), "{}", stdout(&out));
    // a.yaml's `same` output is b.yaml's too: that object stays.
    assert!(s.path().join(object_of("same\n")).exists());
    assert!(s.run_json("b.yaml", &[]).iter().all(|(_, o)| o == "cached"));
    let mut again = s.run_json("a.yaml", &[]);
    again.sort();
    assert_eq!(ran(&again), ["a1", "same_a"]);
    assert!(s.pipe(&["cache", "verify"]).status.success());
}

#[test]
fn gc_max_size_evicts_the_least_recently_used_first() {
    let s = aged_cache();
    // 3,005 bytes of objects (and empty logs); a.yaml's were used longest ago.
    let out = s.pipe(&["cache", "gc", "--max-size", "2100"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("were roots evicted, least recently used first"), "{}", stdout(&out));
    assert!(!s.path().join(object_of(&"a".repeat(1000))).exists());
    assert!(s.path().join(object_of("same\n")).exists());
    assert!(s.run_json("b.yaml", &[]).iter().all(|(_, o)| o == "cached"));
    assert!(ran(&s.run_json("a.yaml", &[])).contains(&"a1"));
    // Used just now, a.yaml's entries are the newest: b.yaml's go first.
    let out = s.pipe(&["cache", "gc", "--max-size", "1100"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(s.path().join(object_of(&"a".repeat(1000))).exists());
    assert!(!s.path().join(object_of(&"b".repeat(2000))).exists());
    assert!(s.pipe(&["cache", "verify"]).status.success());
}

/// `cache du` says what each pipeline and each user holds.
#[test]
fn du_by_pipeline_and_user() {
    let s = aged_cache();
    let out = s.pipe(&["cache", "du", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pipelines = v["by_pipeline"].as_array().unwrap();
    assert_eq!(pipelines.len(), 2, "{v}");
    let b = pipelines.iter().find(|p| p["name"].as_str().unwrap().ends_with("b.yaml")).unwrap();
    assert_eq!((b["entries"].as_u64(), b["bytes"].as_u64()), (Some(2), Some(2005)), "{v}");
    assert_eq!(v["by_user"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["by_user"][0]["entries"], 4, "{v}");
    let text = stdout(&s.pipe(&["cache", "du"]));
    assert!(text.contains("by pipeline") && text.contains("by user:"), "{text}");
}

/// What a live run holds stays, whatever the rule: here every rule at once.
#[test]
fn gc_never_removes_what_a_live_run_holds() {
    let s = Sandbox::new();
    s.write(
        "p.yaml",
        "stages:\n  first:\n    cmd: {run: \"echo one > one.txt\", outs: [one.txt]}\n  \
         slow:\n    cmd: {run: \"test -e started || { touch started; sleep 30; }; cat one.txt > two.txt\", \
         deps: [one.txt], outs: [two.txt]}\n",
    );
    s.write("other.yaml", "stages:\n  x:\n    cmd: {run: \"echo x > x.txt\", outs: [x.txt]}\n");
    s.run_json("other.yaml", &[]);
    let mut child = s.cmd(&["run", "p.yaml"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_for("the slow stage", || s.path().join("started").exists());
    let out = s.pipe(&["cache", "gc", "--only", "other.yaml", "--yes", "--max-size", "0", "--older-than", "0s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("removed 1 entries"), "{}", stdout(&out));
    child.kill().unwrap();
    child.wait().unwrap();
    let again = s.run_json("p.yaml", &[]);
    assert_eq!(ran(&again), ["slow"], "the first stage's entry stayed");
}

/// Acts as the second user of a group cache: nobody:nogroup (65534).
const OTHER_USER: &str = "--reuid=65534 --regid=65534 --clear-groups";

/// A sandbox whose cache folder belongs to nobody's group, setgid, as a lab's shared
/// cache would (umask 002). Needs root and setpriv; `None`, with the reason printed,
/// where they are missing.
struct GroupCache {
    s: Sandbox,
    setpriv: &'static str,
}

impl GroupCache {
    fn new() -> Option<GroupCache> {
        let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].into_iter().find(|p| Path::new(p).exists());
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { geteuid() } == 0;
        let Some(setpriv) = setpriv.filter(|_| root) else {
            eprintln!("skipped: acting as a second user needs root and setpriv (util-linux)");
            return None;
        };
        let s = Sandbox::new();
        fs::create_dir(s.path().join("cache")).unwrap();
        let st = Command::new("sh")
            .args(["-c", "chmod 0777 . && chgrp 65534 cache && chmod 2775 cache"])
            .current_dir(s.path())
            .status()
            .unwrap();
        assert!(st.success());
        Some(GroupCache { s, setpriv })
    }

    /// `pipe ARGS` as root (`None`) or as the user `setpriv` options name, no terminal.
    fn run_as(&self, user: Option<&str>, args: &str) -> Output {
        let prefix = user.map(|u| format!("{} {u} ", self.setpriv)).unwrap_or_default();
        let pipe = env!("CARGO_BIN_EXE_pipe");
        Command::new("sh")
            .args(["-c", &format!("umask 002; exec {prefix}'{pipe}' {args} </dev/null")])
            .current_dir(self.s.path())
            .env("PIPE_CACHE", self.s.path().join("cache"))
            .output()
            .unwrap()
    }
}

/// A second user's gc of their own pipeline keeps the first user's entries; `--only`
/// removes them. Needs root (to act as a second user).
#[test]
fn gc_by_one_user_keeps_another_users_work() {
    let Some(g) = GroupCache::new() else { return };
    g.s.write("a.yaml", AGED_A);
    g.s.write("b.yaml", AGED_B);
    let run_as = |user: Option<&str>, args: &str| g.run_as(user, args);
    let b = Some(OTHER_USER);
    for (user, args) in [(None, "run a.yaml"), (b, "run b.yaml")] {
        let out = run_as(user, args);
        assert!(out.status.success(), "{args}: {}", stderr(&out));
    }
    let out = run_as(b, "cache gc b.yaml");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("removed 0 entries"), "{}", stdout(&out));
    let du = stdout(&run_as(b, "cache du"));
    assert!(du.contains("root: 2 entries") && du.contains("nobody: 2 entries"), "{du}");
    let out = run_as(b, "cache gc --only b.yaml");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stdout(&out).contains("root") && stdout(&out).contains("a.yaml: 2 entries"), "{}", stdout(&out));
    let out = run_as(b, "cache gc --only b.yaml --yes");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("removed 2 entries"), "{}", stdout(&out));
    let verify = run_as(b, "cache verify");
    assert!(verify.status.success(), "{}{}", stdout(&verify), stderr(&verify));
}

/// gc while a run computes, again and again: the run never fails, and the cache stays
/// whole.
#[test]
fn gc_during_runs_never_fails_them() {
    let s = Sandbox::new();
    s.write("p.yaml", TRANSFER);
    for round in 0..4 {
        let epochs = format!("env.EPOCHS={round}");
        let mut child =
            s.cmd(&["run", "p.yaml", "--set", &epochs]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let mut collections = 0;
        while child.try_wait().unwrap().is_none() || collections == 0 {
            // Another version, never run: nothing here is reached but what the run holds.
            let out = s.pipe(&["cache", "gc", "--only", "p.yaml", "--set", "env.EPOCHS=x", "--yes"]);
            assert!(out.status.success(), "{}", stderr(&out));
            collections += 1;
        }
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "round {round}: {}", stderr(&out));
        let verify = s.pipe(&["cache", "verify"]);
        assert!(verify.status.success(), "{}", stdout(&verify));
    }
}

#[test]
fn damaged_objects_are_found_by_verify() {
    let s = Sandbox::new();
    s.write("p.yaml", TRANSFER);
    s.run_json("p.yaml", &[]);
    let objects: Vec<PathBuf> = walk(&s.path().join("cache/objects"));
    let victim = &objects[0];
    let mut perms = fs::metadata(victim).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    fs::set_permissions(victim, perms).unwrap();
    fs::write(victim, "tampered").unwrap();
    let out = s.pipe(&["cache", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("content does not match its digest"), "{}", stdout(&out));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out.sort();
    out
}

/// Broken pipeline files: every problem reported at once, with file, line, column, key
/// path and a suggestion; exit code 3.
#[test]
fn error_messages() {
    let cases: &[(&str, &str)] = &[
        ("typos", "nmae: x\nstages:\n  a:\n    cmd: {run: 'true', dpes: [x]}\n  b:\n    cdm: {run: 'true'}\n"),
        ("syntax", "stages:\n  a: {cmd: {run: 'true'}\n  b: 1\n"),
        (
            "cycle",
            "stages:\n  a:\n    cmd: {run: 'cat b > a', deps: [b], outs: [a]}\n  b:\n    cmd: {run: 'cat a > b', deps: [a], outs: [b]}\n",
        ),
        ("matrix", "stages:\n  t:\n    matrix: {n: [1, 2, 2], 'bad-name': [x]}\n    cmd: {run: 'echo ${m}'}\n"),
        ("types", "stages:\n  a:\n    cmd: {run: [1], outs: /abs/path, env: {X: [1]}}\n  b: []\n"),
        ("no_stages", "name: has spaces\n"),
        (
            "kind_params",
            "training: {schedule: cosin, lr: -1, momentum: 1.5, augment: {crop_pad: 100}, epoch: 3}\n\
             network: {layers: fc 10}\n\
             stages:\n  \
               data:\n    dataset: {source: foldr, path: y, channels: 2}\n  \
               split:\n    split: {data: data, method: randm, seed: -3, holdout: 1.5}\n  \
               base:\n    transfer: {target: split.A, n: 2}\n  \
               ev:\n    evaluate: {network: base, data: [split.A, split.B], part: val}\n",
        ),
    ];
    for (name, text) in cases {
        let s = Sandbox::new();
        s.write("p.yaml", text);
        let out = s.pipe(&["run", "p.yaml"]);
        assert_eq!(out.status.code(), Some(3), "{name}: {}", stderr(&out));
        assert!(!s.path().join("cache/entries").exists() || walk(&s.path().join("cache/entries")).is_empty());
        insta::assert_snapshot!(*name, stderr(&out));
    }
    let s = Sandbox::new();
    s.write("p.yaml", TRANSFER);
    let out = s.pipe(&["status", "p.yaml", "--set", "stages.split.cmd.ouTs=[x]", "--set", "oops"]);
    assert_eq!(out.status.code(), Some(3));
    insta::assert_snapshot!("set_overrides", stderr(&out));
}

/// A value nested thousands deep is refused with its place, not a crash.
#[test]
fn deeply_nested_files_are_refused_with_their_location() {
    let s = Sandbox::new();
    let deep: String = (0..5_000).map(|i| format!("{}k:\n", "  ".repeat(i + 1))).collect();
    s.write("p.yaml", &format!("stages:\n  a:\n    cmd: {{run: 'true'}}\nx:\n{deep}  1\n"));
    for command in ["status", "run"] {
        let out = s.pipe(&[command, "p.yaml"]);
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("nested more than 64 deep") && err.contains("p.yaml:68:"), "{err}");
    }
}

/// A manifest whose key structure was edited by hand no longer says what its entry
/// was computed from: its stage is damaged, and the run computes it again.
#[test]
fn a_hand_edited_key_structure_makes_its_stage_damaged() {
    let s = Sandbox::new();
    s.write("p.yaml", TRANSFER);
    s.run_json("p.yaml", &[]);
    let manifest = walk(&s.path().join("cache/entries"))
        .into_iter()
        .find(|f| fs::read_to_string(f).unwrap().contains("\"stage\": \"split\""))
        .unwrap();
    let text = fs::read_to_string(&manifest).unwrap().replace("echo split >>", "echo SPLIT >>");
    // As an editor saves: beside, then renamed over.
    let edited = manifest.with_extension("edited");
    fs::write(&edited, text).unwrap();
    fs::rename(&edited, &manifest).unwrap();
    let st = stdout(&s.pipe(&["status", "p.yaml"]));
    assert!(st.contains("damaged  split") && st.contains("does not hash to its key"), "{st}");
    let again = s.run_json("p.yaml", &[]);
    assert_eq!(ran(&again), ["split"], "early cutoff keeps the rest");
    assert!(s.pipe(&["cache", "verify"]).status.success());
}

/// The project's smoke-test pipeline, from the repository.
fn quick() -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/quick.yaml")).unwrap()
}

/// Every manifest of a cache, by key.
fn manifests(cache: &Path) -> std::collections::BTreeMap<String, serde_json::Value> {
    let files = walk(&cache.join("entries")).into_iter().filter(|f| f.extension().is_some_and(|e| e == "json"));
    files
        .map(|f| serde_json::from_slice::<serde_json::Value>(&fs::read(f).unwrap()).unwrap())
        .map(|m| (m["key"].as_str().unwrap().to_string(), m))
        .collect()
}

/// Every output file's digest, by stage, as the manifests record them.
fn output_digests(cache: &Path) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    // Manifests only: a process killed while writing one leaves a temporary file
    // beside them, which no lookup reads.
    for f in walk(&cache.join("entries")).into_iter().filter(|f| f.extension().is_some_and(|e| e == "json")) {
        let m: serde_json::Value = serde_json::from_slice(&fs::read(f).unwrap()).unwrap();
        for (name, o) in m["outputs"].as_object().unwrap() {
            out.push((
                m["stage"].as_str().unwrap().to_string(),
                name.clone(),
                o["digest"].as_str().unwrap().to_string(),
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn quick_pipeline_trains_once_and_gives_the_same_bytes_every_time() {
    let s = Sandbox::new();
    s.write("quick.yaml", &quick());
    let first = s.run_json("quick.yaml", &[]);
    assert_eq!(ran(&first).len(), first.len(), "{first:?}");
    assert!(first.len() >= 10);
    let second = s.run_json("quick.yaml", &[]);
    assert!(ran(&second).is_empty(), "the second run trains nothing: {second:?}");
    // Another cache, one thread: the same bytes for every output of every stage.
    let other = Sandbox::new();
    other.write("quick.yaml", &quick());
    let out = other.cmd(&["run", "quick.yaml", "-j", "1", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let a = output_digests(&s.path().join("cache"));
    let b = output_digests(&other.path().join("cache"));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "same pipeline, same seed, same bytes");
    }
    // A transfer's frozen layers are the base's bytes; see the unit tests of `nn` for
    // the tensor-level checks. Here: the info names what was copied.
    let info = a.iter().find(|(st, name, _)| st == "transfer[from=A,n=2,ft=false]" && name == "info.json").unwrap();
    let text = fs::read_to_string(s.path().join("cache/objects").join(&info.2[..2]).join(&info.2[2..])).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["treatment"], "AnB");
    assert_eq!(
        v["copied"],
        serde_json::json!(["layers.1.bias", "layers.1.weight", "layers.2.bias", "layers.2.weight"])
    );
    report_agrees_with_the_evaluations(&s);

    // The same pipeline on a GPU is another computation: its training stages have other
    // keys (the data stages do not), and a build without CUDA says how to get it.
    let status = s.pipe(&["status", "quick.yaml", "--set", "training.device=cuda", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status --json");
    let state = |name: &str| {
        v["stages"].as_array().unwrap().iter().find(|st| st["name"] == name).unwrap()["state"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(state("data"), "fresh");
    assert_ne!(state("base[half=A]"), "fresh");
    if !cfg!(feature = "cuda") {
        let out = s.pipe(&["run", "quick.yaml", "--set", "training.device=cuda"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("no CUDA support: build it with `cargo build --release --features cuda`"));
    }
}

/// `pipe show --export`: every report file is there, and the table holds exactly the
/// accuracies the stages measured.
fn report_agrees_with_the_evaluations(s: &Sandbox) {
    let out = s.pipe(&["show", "quick.yaml", "--export", "out"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("n  base  BnB   BnB+  AnB   AnB+  random"), "{text}");
    assert!(text.contains("co-adaptation dip"), "{text}");
    for f in [
        "table.csv",
        "table.parquet",
        "table.md",
        "figure.svg",
        "figure.png",
        "report.json",
        "report.html",
        "summary.txt",
    ] {
        let len = fs::metadata(s.path().join("out").join(f)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 100, "{f} is missing or empty");
    }
    assert!(fs::read(s.path().join("out/figure.png")).unwrap().starts_with(b"\x89PNG"));
    assert!(s.read("out/figure.svg").contains("<svg"));
    let csv = s.read("out/table.csv");
    let loc = s.pipe(&["show", "quick.yaml", "transfer[from=A,n=2,ft=true]", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&loc.stdout).unwrap();
    let metrics = v["files"].as_array().unwrap().iter().find(|f| f["name"] == "metrics.json").unwrap();
    let m: serde_json::Value = serde_json::from_slice(&fs::read(metrics["path"].as_str().unwrap()).unwrap()).unwrap();
    let top1 = m["top1"].as_f64().unwrap();
    let row = csv.lines().find(|l| l.starts_with("random,AnB+,2,")).unwrap_or_else(|| panic!("{csv}"));
    let mean: f64 = row.split(',').nth(3).unwrap().parse().unwrap();
    assert!((mean - top1).abs() < 1e-9, "table {mean} vs metrics {top1}");
    assert!(row.ends_with(",1"), "one run: {row}");
    // The report stage itself, printed at the end of a run.
    let run = s.pipe(&["run", "quick.yaml"]);
    assert!(stdout(&run).contains("random split (similar halves, target B)"), "{}", stdout(&run));
}

/// A small transfer pipeline of its own, so the error snapshots below do not change
/// when pipelines/quick.yaml does.
const SMALL: &str = r#"name: small
network:
  layers: [conv 8 3 pool, conv 16 3 pool, fc 32]
training: {epochs: 1, batch: 32, lr: 0.05}
stages:
  data:
    dataset: {source: synthetic, classes: 6, groups: 2, image: [1, 16, 16], per_class: 60, test_per_class: 20}
  split:
    split: {data: data, method: random, seed: 0}
  base:
    matrix: {half: [A, B]}
    train: {data: "split.${half}"}
  transfer:
    matrix: {from: [A, B], n: [1, 2, 3], ft: [false, true]}
    transfer: {base: "base[half=${from}]", n: "${n}", target: split.B, fine_tune: "${ft}"}
  random:
    matrix: {n: [1, 2, 3]}
    transfer: {base: null, n: "${n}", target: split.B}
  report:
    report: {of: [base, transfer, random]}
"#;

#[test]
fn ml_parameter_errors_point_at_the_file() {
    let s = Sandbox::new();
    let broken = SMALL
        .replace("n: [1, 2, 3], ft", "n: [1, 2, 9], ft")
        .replace("lr: 0.05", "lr: 0.05, epoch: 2")
        .replace("target: split.B", "target: split.C");
    s.write("quick.yaml", &broken);
    let out = s.pipe(&["status", "quick.yaml"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    insta::assert_snapshot!("ml_params", stderr(&out));
    s.write("quick.yaml", &SMALL.replace("conv 16 3 pool", "conv 16 x pool"));
    let out = s.pipe(&["status", "quick.yaml"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    insta::assert_snapshot!("ml_layers", stderr(&out));
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < Duration::from_secs(60), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn ctrl_c_stops_cleanly_and_the_next_run_picks_up() {
    let s = Sandbox::new();
    s.write(
        "p.yaml",
        "stages:\n  fast:\n    cmd: {run: 'echo 1 > a.txt', outs: [a.txt]}\n  \
         slow:\n    cmd: {run: 'touch started; sleep 30; echo 2 > b.txt', deps: [a.txt], outs: [b.txt]}\n",
    );
    let mut child = s.cmd(&["run", "p.yaml"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_for("the slow stage", || s.path().join("started").exists());
    // SAFETY: signalling the child we spawned.
    unsafe { libc_kill(child.id() as i32, 2) };
    let t0 = Instant::now();
    let status = child.wait().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(10), "the command was stopped, not waited for");
    assert_eq!(status.code(), Some(130));
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("interrupted"), "{err}");
    s.write("p.yaml", &s.read("p.yaml").replace("sleep 30", "sleep 0"));
    let out = s.run_json("p.yaml", &[]);
    assert_eq!(out, [("fast".to_string(), "cached".to_string()), ("slow".to_string(), "ran".to_string())]);
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn training_killed_mid_stage_resumes_to_the_same_bytes() {
    let args = [
        "run",
        "quick.yaml",
        "base[half=A]",
        "--set",
        "training.epochs=10",
        "--set",
        "stages.data.dataset.per_class=200",
    ];
    // Uninterrupted, for reference.
    let whole = Sandbox::new();
    whole.write("quick.yaml", &quick());
    assert!(whole.pipe(&args).status.success());
    // Killed once the first epoch's state is saved, then run again.
    let s = Sandbox::new();
    s.write("quick.yaml", &quick());
    let mut child = s.cmd(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let resume = s.path().join("cache/resume");
    let saved = || {
        fs::read_dir(&resume)
            .map(|d| d.flatten().any(|e| fs::read_dir(e.path()).is_ok_and(|mut f| f.next().is_some())))
            .unwrap_or(false)
    };
    wait_for("a saved epoch", saved);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed before the stage ended");
    assert!(s.pipe(&["cache", "verify"]).status.success());
    let out = s.pipe(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let stage =
        |o: &Vec<(String, String, String)>| o.iter().filter(|x| x.0 == "base[half=A]").cloned().collect::<Vec<_>>();
    let (a, b) = (stage(&output_digests(&whole.path().join("cache"))), stage(&output_digests(&s.path().join("cache"))));
    assert!(!a.is_empty());
    assert_eq!(a, b, "the resumed run ends with the same bytes");
    assert!(fs::read_dir(&resume).unwrap().next().is_none(), "the resume state is removed once the entry is published");
}

/// A CIFAR-10 binary archive as the dataset's site ships it (a gzipped tar holding
/// `cifar-10-batches-bin/`), with `per_class` 2x2 RGB training images per class.
fn cifar_archive(path: &Path, per_class: usize) {
    let record = |label: usize, i: usize| {
        let mut r = vec![label as u8];
        r.extend((0..3 * 32 * 32).map(|p| ((p * 7 + label * 31 + i * 13) % 251) as u8));
        r
    };
    let train: Vec<u8> = (0..10 * per_class).flat_map(|i| record(i % 10, i)).collect();
    let test: Vec<u8> = (0..10).flat_map(|i| record(i, 1000 + i)).collect();
    let gz = flate2::write::GzEncoder::new(fs::File::create(path).unwrap(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, data) in [("data_batch_1.bin", &train), ("test_batch.bin", &test)] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, format!("cifar-10-batches-bin/{name}"), data.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(fs::read(path).unwrap()).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn downloaded_datasets_are_fetched_once_and_checked() {
    let s = Sandbox::new();
    let archive = s.path().join("mirror/cifar-10-binary.tar.gz");
    fs::create_dir_all(archive.parent().unwrap()).unwrap();
    cifar_archive(&archive, 3);
    let sha = sha256_file(&archive);
    let pipeline = |sum: &str, groups: &str| {
        format!(
            "stages:\n  data:\n    dataset:\n      source: cifar10\n      download: {{url: \"file://{}\", sha256: {sum}}}\n{groups}",
            archive.display()
        )
    };
    s.write("p.yaml", &pipeline(&sha, ""));
    assert_eq!(ran(&s.run_json("p.yaml", &[])), ["data"]);
    let downloads = s.path().join("cache/downloads");
    let folders: Vec<PathBuf> =
        fs::read_dir(&downloads).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    assert_eq!(folders.len(), 1, "{folders:?}");
    assert!(folders[0].join("cifar-10-batches-bin/data_batch_1.bin").is_file());
    let shown = stdout(&s.pipe(&["show", "p.yaml", "data"]));
    assert!(shown.contains("dataset"), "{shown}");

    // The archive is gone from its mirror: a changed stage still finds the download.
    fs::remove_file(&archive).unwrap();
    s.write("p.yaml", &pipeline(&sha, "      groups: {vehicles: [airplane, automobile, ship, truck], animals: [bird, cat, deer, dog, frog, horse]}\n"));
    assert_eq!(ran(&s.run_json("p.yaml", &[])), ["data"]);

    // gc keeps a download its pipeline names, and another pipeline's gc keeps it too;
    // it goes when only a pipeline that does not name it counts.
    let gc = s.pipe(&["cache", "gc", "p.yaml"]);
    assert!(gc.status.success() && folders[0].is_dir(), "{}", stderr(&gc));
    s.write("other.yaml", "stages:\n  a:\n    cmd: {run: \"true\"}\n");
    let gc = s.pipe(&["cache", "gc", "other.yaml"]);
    assert!(gc.status.success() && folders[0].is_dir(), "{}", stderr(&gc));
    let gc = s.pipe(&["cache", "gc", "--only", "other.yaml", "--yes"]);
    assert!(stdout(&gc).contains("and 1 downloads"), "{}", stdout(&gc));
    assert!(!folders[0].exists());

    // A wrong checksum: the stage fails naming the URL, and nothing is kept.
    cifar_archive(&archive, 2);
    s.write("p.yaml", &pipeline(&sha, ""));
    let out = s.pipe(&["run", "p.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("cifar-10-binary.tar.gz: sha256 checksum is") && err.contains(&sha), "{err}");
    assert!(fs::read_dir(&downloads).unwrap().flatten().all(|e| !e.path().is_dir()));

    // Mistakes in the download entry are caught before anything runs.
    s.write(
        "p.yaml",
        "stages:\n  data:\n    dataset:\n      source: cifar10\n      download:\n        \
         - {url: \"https://example.org/a.tar.gz\", sha265: 12ab}\n        \
         - {url: \"https://example.org/b.tar.gz\", md5: 12ab}\n",
    );
    let out = s.pipe(&["status", "p.yaml"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    insta::assert_snapshot!("download", stderr(&out));
}

/// Flip one bit of the stored object behind `stage`'s output `output` (its largest
/// file, for a folder: the checkpoint, the dataset's pixels).
fn damage(cache: &Path, stage: &str, output: &str) -> PathBuf {
    let entry: serde_json::Value = walk(&cache.join("entries"))
        .iter()
        .map(|f| serde_json::from_slice::<serde_json::Value>(&fs::read(f).unwrap()).unwrap())
        .find(|m| m["stage"] == stage)
        .unwrap();
    let files = entry["outputs"][output]["files"].as_array().unwrap();
    let f = files.iter().max_by_key(|f| f["size"].as_u64().unwrap()).unwrap();
    let d = f["digest"].as_str().unwrap();
    let path = cache.join("objects").join(&d[..2]).join(&d[2..]);
    let mid = fs::metadata(&path).unwrap().len() as usize / 2;
    flip_bit(&path, mid, 0x10);
    path
}

/// Flip bits `mask` of byte `at` of a (possibly read-only) file.
fn flip_bit(path: &Path, at: usize, mask: u8) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= mask;
    let mut perms = fs::metadata(path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    fs::set_permissions(path, perms).unwrap();
    fs::write(path, bytes).unwrap();
}

/// Damaged cache bytes are found where they are read, never used: the stage that made
/// them is computed again (only it), and every result is the clean run's bytes.
#[test]
fn damaged_cache_bytes_are_recomputed_never_used() {
    let s = Sandbox::new();
    s.write("quick.yaml", &quick());
    s.run_json("quick.yaml", &[]);
    let clean = output_digests(&s.path().join("cache"));
    let cache = s.path().join("cache");
    // As if the cache had been left alone for a while: the next run trusts its memo
    // (a byte changed in place changes no folder), so the hits below come from it.
    age_cache(&cache);
    assert!(ran(&s.run_json("quick.yaml", &[])).is_empty());

    // A flipped bit in a base network: a transfer that reads it finds out.
    damage(&cache, "base[half=A]", "network");
    let out = s.run_json("quick.yaml", &["--force", "transfer[from=A,n=1,ft=false]"]);
    let mut r = ran(&out);
    r.sort();
    assert_eq!(r, ["base[half=A]", "transfer[from=A,n=1,ft=false]"], "{out:?}");
    assert_eq!(output_digests(&cache), clean, "nothing was computed from the damaged bytes");
    assert!(walk(&cache.join("quarantine")).len() == 1, "the damaged object is kept aside");

    // A flipped digit in a cached metrics.json: `show` leaves it out, `status` calls the
    // stage damaged, and `run` computes that stage alone.
    damage(&cache, "transfer[from=B,n=2,ft=true]", "metrics.json");
    let shown = s.pipe(&["show", "quick.yaml"]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert!(stdout(&shown).contains("failed verification"), "{}", stdout(&shown));
    let status = stdout(&s.pipe(&["status", "quick.yaml"]));
    assert!(status.contains("damaged  transfer[from=B,n=2,ft=true]"), "{status}");
    assert!(status.contains("failed verification and was quarantined"), "{status}");
    assert_eq!(ran(&s.run_json("quick.yaml", &[])), ["transfer[from=B,n=2,ft=true]"]);

    // A flipped pixel in the dataset: the split that reads it gets the data recomputed
    // first, and nothing past the split changes.
    damage(&cache, "data", "dataset");
    let out = s.run_json("quick.yaml", &["--force", "split"]);
    assert_eq!(ran(&out), ["data", "split"], "{out:?}");
    assert_eq!(output_digests(&cache), clean);
    let verify = s.pipe(&["cache", "verify"]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    // gc clears the quarantine once its objects are no longer needed for inspection.
    let gc = s.pipe(&["cache", "gc", "quick.yaml"]);
    assert!(gc.status.success(), "{}", stderr(&gc));
    assert!(walk(&cache.join("quarantine")).is_empty());
}

/// Sets the times of the cache's entry and object folders a minute back.
fn age_cache(cache: &Path) {
    for sub in ["entries", "objects"] {
        for dir in fs::read_dir(cache.join(sub)).unwrap() {
            let f = fs::File::open(dir.unwrap().path()).unwrap();
            f.set_modified(std::time::SystemTime::now() - Duration::from_secs(60)).unwrap();
        }
    }
}

/// The pipeline-file mistakes that once got past validation, crashed it or ran out of
/// memory: each refused before anything runs, with its place in the file (exit 3).
#[test]
fn absurd_or_malformed_pipeline_files_are_refused_with_a_location() {
    let laughs: String = {
        let mut t = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n".to_string();
        for (prev, name) in ["a", "b", "c", "d", "e", "f", "g"].iter().zip(["b", "c", "d", "e", "f", "g", "h"]) {
            t += &format!("{name}: &{name} [{}]\n", vec![format!("*{prev}"); 9].join(", "));
        }
        t + "stages: {}\n"
    };
    let with = |from: &str, to: &str| {
        assert!(SMALL.contains(from), "{from}");
        SMALL.replace(from, to)
    };
    let cases: Vec<(&str, String)> = vec![
        ("billion_laughs", laughs),
        ("one_class", with("classes: 6", "classes: 1")),
        ("second_document", format!("{SMALL}---\nname: other\n")),
        ("report_of_nothing", with("of: [base, transfer, random]", "of: []")),
        (
            "absurd_sizes",
            with("epochs: 1, batch: 32", "epochs: 100000000000, batch: 32").replace(
                "layers: [conv 8 3 pool, conv 16 3 pool, fc 32]",
                "layers: [conv 8 4611686018427387904, fc 36028797018963968, fc 1000000000]",
            ),
        ),
        ("huge_matrix", with("n: [1, 2, 3], ft: [false, true]", "n: [1, 2, 3], ft: [false, true], seed: seeds")),
    ];
    for (name, text) in &cases {
        let s = Sandbox::new();
        s.write("p.yaml", text);
        let mut args = vec!["run", "p.yaml"];
        if *name == "huge_matrix" {
            args.extend(["--set", "seeds=9000"]);
        }
        let out = s.pipe(&args);
        assert_eq!(out.status.code(), Some(3), "{name}: {}", stderr(&out));
        assert!(!s.path().join("cache/entries").exists(), "nothing ran");
        insta::assert_snapshot!(*name, stderr(&out));
    }
    // A binary file gets a place too, and a byte-order mark is not part of the first key.
    let s = Sandbox::new();
    fs::write(s.path().join("p.yaml"), b"stages:\n  a:\n    cmd: {run: \"true\"}\n  b\xff\xfe: x\n").unwrap();
    let out = s.pipe(&["status", "p.yaml"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("p.yaml:4:4"), "{}", stderr(&out));
    fs::write(s.path().join("p.yaml"), format!("\u{feff}{TRANSFER}")).unwrap();
    let out = s.pipe(&["status", "p.yaml"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A file error inside a stage (here the file-size limit, standing in for a full disk)
/// says what was written, why it failed, and exits 4; nothing is cached.
#[test]
fn a_failed_write_names_its_cause_and_exits_4() {
    let s = Sandbox::new();
    s.write("quick.yaml", &quick());
    let pipe = env!("CARGO_BIN_EXE_pipe");
    // 64 blocks of 512 bytes: the dataset (120 KB) does not fit. SIGXFSZ ignored, so the
    // write fails with EFBIG instead of killing the process.
    let out = Command::new("sh")
        .args(["-c", &format!("ulimit -f 64; trap '' XFSZ; exec '{pipe}' run quick.yaml data")])
        .current_dir(s.path())
        .env("PIPE_CACHE", s.path().join("cache"))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("error: stage `data` failed: cannot write"), "{err}");
    assert!(err.contains("caused by: File too large"), "{err}");
    assert!(walk(&s.path().join("cache/entries")).is_empty());
    let out = s.run_json("quick.yaml", &["data"]);
    assert_eq!(ran(&out), ["data"]);
}

/// `gc` removes what killed runs left in `tmp/` and `resume/`, never a live run's.
#[test]
fn gc_removes_what_killed_runs_left_behind() {
    let s = Sandbox::new();
    s.write("p.yaml", "stages:\n  slow:\n    cmd: {run: \"touch started; sleep 30\", outs: [started]}\n");
    let mut child = s.cmd(&["run", "p.yaml"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_for("the stage", || s.path().join("started").exists());
    let tmp = s.path().join("cache/tmp");
    // While the run lives, its scratch stays.
    let gc = s.pipe(&["cache", "gc", "p.yaml"]);
    assert!(gc.status.success(), "{}", stderr(&gc));
    assert!(fs::read_dir(&tmp).unwrap().count() > 0);
    child.kill().unwrap();
    child.wait().unwrap();
    fs::create_dir_all(s.path().join("cache/resume/0123abcd")).unwrap();
    let gc = s.pipe(&["cache", "gc", "p.yaml"]);
    assert!(stdout(&gc).contains("leftovers"), "{}", stdout(&gc));
    assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0, "{:?}", walk(&tmp));
    assert_eq!(fs::read_dir(s.path().join("cache/resume")).unwrap().count(), 0);
}

/// A cache folder shared by a group (setgid, umask 002): another member runs a pipeline
/// the first one cached and computes nothing. Needs root (to act as a second user).
#[test]
fn a_cache_shared_by_a_group_serves_another_user() {
    let Some(g) = GroupCache::new() else { return };
    g.s.write("p.yaml", TRANSFER);
    let run_as = |user: Option<&str>, args: &str| g.run_as(user, args);
    let first = run_as(None, "run p.yaml");
    assert!(first.status.success(), "{}", stderr(&first));
    let other = Some(OTHER_USER);
    let second = run_as(other, "run p.yaml --json");
    assert!(second.status.success(), "{}", stderr(&second));
    let v: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert!(v["stages"].as_array().unwrap().iter().all(|st| st["outcome"] == "cached"), "{v}");
    let verify = run_as(other, "cache verify");
    assert!(verify.status.success(), "{}{}", stdout(&verify), stderr(&verify));
    assert!(stdout(&verify).contains("all good"), "{}", stdout(&verify));
}

unsafe extern "C" {
    fn geteuid() -> u32;
}

/// Unmounts a test's filesystem when the test ends, however it ends.
struct Mounted(PathBuf);

impl Mounted {
    /// A tmpfs of `size` at `dir`, or `None` (with the reason printed) where this
    /// process may not mount.
    fn tmpfs(dir: &Path, size: &str) -> Option<Mounted> {
        fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir).output();
        match out {
            Ok(o) if o.status.success() => Some(Mounted(dir.to_path_buf())),
            Ok(o) => {
                eprintln!("skipped: cannot mount a small filesystem here: {}", stderr(&o).trim());
                None
            }
            Err(e) => {
                eprintln!("skipped: no `mount` command: {e}");
                None
            }
        }
    }

    fn remount(&self, opts: &str) {
        let st = Command::new("mount").args(["-o", &format!("remount,{opts}")]).arg(&self.0).status().unwrap();
        assert!(st.success());
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A cache on a full disk, then on a read-only one: the failing stage names the file
/// and the system's reason, exits 4, and leaves nothing that looks computed.
#[test]
fn a_full_or_read_only_disk_fails_with_its_cause_and_exit_4() {
    let s = Sandbox::new();
    s.write("quick.yaml", &quick());
    let Some(disk) = Mounted::tmpfs(&s.path().join("cache"), "96k") else { return };
    let out = s.pipe(&["run", "quick.yaml", "data"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("error: stage `data` failed: cannot write"), "{err}");
    assert!(err.contains("caused by: No space left on device"), "{err}");
    assert!(walk(&s.path().join("cache/entries")).is_empty());

    disk.remount("size=8m");
    assert_eq!(ran(&s.run_json("quick.yaml", &["data"])), ["data"]);
    disk.remount("ro");
    let out = s.pipe(&["run", "quick.yaml", "split"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("Read-only file system"), "{err}");
}

/// Bases that learned nothing (a learning rate of 0): the report judges no finding and
/// says why, instead of reading differences between untrained networks. (Bases that
/// learn are judged: see the report's unit tests and transfer.yaml.)
#[test]
fn findings_on_bases_at_chance_are_not_measurable() {
    let s = Sandbox::new();
    s.write("quick.yaml", &quick());
    let out = s.pipe(&["run", "quick.yaml", "--set", "training.lr=0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let verdicts: Vec<&str> =
        text.lines().filter(|l| l.starts_with(|c: char| c.is_ascii_digit()) && l.contains(". ")).collect();
    assert_eq!(verdicts.len(), 6, "{text}");
    for v in &verdicts {
        assert!(v.contains("not measurable") && v.contains("not clearly above chance level: 33.3% on 3"), "{v}");
    }
}

/// What a page holds, as an HTML parser reads it: the sections, the figure, one curve
/// chart entry per network (and one line per network in it), the findings, and no
/// reference to anything outside the file.
fn check_page(html: &str, networks: usize, with_time: bool) {
    use scraper::{Html, Selector};
    let doc = Html::parse_document(html);
    assert!(doc.errors.is_empty(), "{:?}", doc.errors);
    let all = |css: &str| doc.select(&Selector::parse(css).unwrap()).collect::<Vec<_>>();
    for id in ["findings", "figure", "table", "curves", "networks"] {
        assert_eq!(all(&format!("section#{id}")).len(), 1, "section {id}");
    }
    assert_eq!(all("section#time").len(), usize::from(with_time));
    assert_eq!(all("section#figure svg").len(), 1, "the figure");
    assert!(all("section#figure svg text").iter().any(|t| t.text().any(|s| s.contains("Top-1 accuracy (%)"))));
    assert_eq!(all("li.finding").len(), 6, "six findings");
    assert_eq!(all("tr.network").len(), networks, "one row per network");
    for metric in ["accuracy", "loss"] {
        let cells = all(&format!("figure.cell[data-metric={metric}]"));
        let counted: usize =
            cells.iter().map(|c| c.value().attr("data-networks").unwrap().parse::<usize>().unwrap()).sum();
        assert_eq!(counted, networks, "one {metric} curve per network");
        for c in cells {
            let k: usize = c.value().attr("data-networks").unwrap().parse().unwrap();
            // Each network's curve is a black line (its bases are grey ones behind it).
            let black = Selector::parse(r##"polyline[stroke="#141414"]"##).unwrap();
            assert_eq!(c.select(&black).count(), k, "{k} networks");
        }
    }
    for el in all("[src], [href], link, script, iframe, img, object, embed") {
        let v = el.value();
        assert!(!matches!(v.name(), "link" | "script" | "iframe" | "img" | "object" | "embed"), "{}", v.name());
        assert!(v.attr("src").is_none(), "src= in {}", v.name());
        assert!(v.attr("href").unwrap_or("#").starts_with('#'), "href {:?}", v.attr("href"));
    }
    assert!(!html.contains("url(") && !html.contains("@import"));
}

#[test]
fn the_report_page_shows_the_whole_experiment_in_one_file() {
    let s = Sandbox::new();
    s.write("quick.yaml", &quick());
    let out = s.pipe(&["run", "quick.yaml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("report page: quick.report.html"), "{}", stdout(&out));
    let networks = 2 + 12 + 3;
    check_page(&s.read("quick.report.html"), networks, true);
    // The stage's own page: the same but for stage times (outputs are the same bytes on
    // every run), copied by --export; and `show --html` from whatever is cached.
    let out = s.pipe(&["show", "quick.yaml", "report", "--export", "stage"]);
    assert!(out.status.success(), "{}", stderr(&out));
    check_page(&s.read("stage/report.html"), networks, false);
    let out = s.pipe(&["show", "quick.yaml", "--html", "shown.html"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = s.read("shown.html");
    check_page(&shown, networks, true);
    assert!(shown.contains("20 stages") && shown.contains("taken from the cache: 20."), "every stage is cached now");
    // A rerun marks what it took from the cache.
    let out = s.pipe(&["run", "quick.yaml", "--force", "base[half=A]"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = s.read("quick.report.html");
    assert!(page.contains("wrote this page: 1 ("), "only base A ran (early cutoff keeps the rest)");
    // `run --json` writes it too, and says where.
    fs::remove_file(s.path().join("quick.report.html")).unwrap();
    let out = s.pipe(&["run", "quick.yaml", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pages = v["report_pages"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(pages.len(), 1);
    assert!(pages[0].as_str().unwrap().ends_with("quick.report.html"));
    check_page(&s.read("quick.report.html"), networks, true);
    let page = s.read("quick.report.html");
    assert!(page.contains("wrote this page: 0 (0.00 s)") && !page.contains("-0.00"), "a no-op run computed nothing");

    browser_renders(&s, "quick.report.html", networks);
}

/// Chromium renders the page: a screenshot that is not blank, and the DOM it built has
/// the page's parts. Needs PIPE_CHROMIUM (the browser binary; `.ci/run` installs it).
fn browser_renders(s: &Sandbox, page: &str, networks: usize) {
    let Some(chromium) = std::env::var_os("PIPE_CHROMIUM") else {
        eprintln!("skipped the browser check: PIPE_CHROMIUM is not set (`.ci/run` installs Chromium and sets it)");
        return;
    };
    assert!(Path::new(&chromium).exists(), "PIPE_CHROMIUM is set but {chromium:?} does not exist");
    let url = format!("file://{}", s.path().join(page).display());
    let run = |extra: &[&str]| {
        let profile = tempfile::tempdir().unwrap();
        let mut c = Command::new(&chromium);
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(&url)
        .current_dir(s.path());
        let out = c.output().expect("chromium starts");
        assert!(out.status.success(), "chromium failed: {}", stderr(&out));
        out
    };
    let shot = s.path().join("shot.png");
    run(&["--window-size=1400,3000", &format!("--screenshot={}", shot.display())]);
    let img = image::open(&shot).expect("a PNG screenshot").to_rgb8();
    let dark = img.pixels().filter(|p| p.0.iter().all(|c| *c < 100)).count();
    let grey = img.pixels().filter(|p| p.0.iter().all(|c| (100..240).contains(c))).count();
    let total = img.pixels().count();
    assert!(
        dark * 200 > total && grey * 200 > total,
        "the screenshot looks blank: {dark} dark, {grey} grey of {total}"
    );
    let dom = stdout(&run(&["--dump-dom"]));
    assert!(dom.contains("<section id=\"findings\">") && dom.contains("<section id=\"curves\">"), "{dom:.300}");
    assert_eq!(dom.matches("<tr class=\"network\">").count(), networks);
    assert!(dom.matches("<svg").count() > networks, "the figure and the curves are drawn");
    eprintln!("browser check: {chromium:?} rendered {page}: {dark} dark and {grey} grey pixels of {total}");
}

/// The Slurm cluster `.ci/run` starts (`.ci/slurm.sh`), announced by `PIPE_SLURM`; once
/// it is set, a cluster that does not answer is a failure, never a skip.
fn slurm(test: &str) -> bool {
    if std::env::var_os("PIPE_SLURM").is_none() {
        eprintln!("skipped {test}: PIPE_SLURM is not set (`.ci/run` starts a two-node Slurm cluster and sets it)");
        return false;
    }
    let out = Command::new("sinfo").args(["-h", "-o", "%T"]).output().expect("PIPE_SLURM is set: sinfo must run");
    let states = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success() && !states.trim().is_empty(), "PIPE_SLURM is set but sinfo says: {states}");
    assert!(!states.contains("drain"), "the Slurm node is drained: {states}");
    true
}

/// The test cluster's two nodes, shared by the Slurm tests: most of them only need it
/// to answer (a read lock); a test that counts on both nodes being free, or takes one
/// away, has it alone (the write lock).
static CLUSTER: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn cluster_shared() -> std::sync::RwLockReadGuard<'static, ()> {
    CLUSTER.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn cluster_alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    CLUSTER.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Sandbox {
    /// `pipe run --executor slurm`, polling Slurm every half second.
    fn slurm_cmd(&self, args: &[&str]) -> Command {
        let mut c = self.cmd(&["run"]);
        c.args(args).args(["--executor", "slurm", "--set", "resources.cpus=1"]).env("PIPE_SLURM_POLL", "0.5");
        c
    }
}

/// A stage's job in `--json` as Slurm names it: `42`, or `42_3` for an array task.
fn slurm_id(job: &serde_json::Value) -> String {
    let id = job["job"].as_str().unwrap();
    match job["task"].as_u64() {
        Some(t) => format!("{id}_{t}"),
        None => id.to_string(),
    }
}

/// A PATH whose `sbatch` logs each call (one line of arguments) to the file returned,
/// then calls the real one.
fn counted_sbatch(dir: &Path) -> (String, PathBuf) {
    let calls = dir.join("calls");
    let path = wrapper(dir, "sbatch", &format!("echo \"$@\" >> {}\nexec {} \"$@\"", calls.display(), real("sbatch")));
    (path, calls)
}

/// Whether a run's progress (stdout or stderr) says `what`.
fn err_has(out: &Output, what: &str) -> bool {
    stderr(out).contains(what) || stdout(out).contains(what)
}

/// A Slurm job's state and name, from `scontrol show job`.
fn slurm_job(id: &str) -> (String, String) {
    (slurm_field(id, "JobState="), slurm_field(id, "JobName="))
}

/// One field of `scontrol show job` (`NodeList=`).
fn slurm_field(id: &str, name: &str) -> String {
    let out = Command::new("scontrol").args(["show", "job", id, "-o"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.split_whitespace().find_map(|w| w.strip_prefix(name)).unwrap_or_else(|| panic!("{name} in {text}")).to_string()
}

/// `scontrol update nodename=NODE state=STATE`.
fn set_node(node: &str, state: &str) -> Output {
    Command::new("scontrol")
        .args(["update", &format!("nodename={node}"), &format!("state={state}"), "reason=pipe-test"])
        .output()
        .unwrap()
}

/// Until every node of the test cluster is up again (a node set DOWN comes back by
/// itself when its slurmd registers: ReturnToService=2).
fn wait_for_nodes_up() {
    let t0 = Instant::now();
    loop {
        let out = Command::new("sinfo").args(["-h", "-N", "-o", "%N %T"]).output().unwrap();
        let text = stdout(&out);
        if !text.trim().is_empty() && text.lines().all(|l| !l.contains("down") && !l.contains("drain")) {
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "the nodes did not come back: {text}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn slurm_runs_each_training_stage_as_a_job_with_a_local_runs_bytes() {
    if !slurm("the Slurm executor test") {
        return;
    }
    // Both nodes free, so the jobs spread over them.
    let _cluster = cluster_alone();
    let local = Sandbox::new();
    local.write("quick.yaml", &quick());
    local.run_json("quick.yaml", &[]);
    let s = Sandbox::new();
    s.write("quick.yaml", &quick());
    // Every sbatch call counted by a wrapper first on PATH (the check of each distinct
    // request before the run, `--test-only`, among them).
    let bin = tempfile::tempdir().unwrap();
    let (path, calls) = counted_sbatch(bin.path());
    // 400M of memory asked for, far more than a tiny training uses: said after the run.
    // Jobs of at most a second: these stages are estimated at a fraction of one each,
    // and share jobs spread over both nodes (at the default of 10 minutes, one job
    // would take each wave whole).
    let args = ["quick.yaml", "--json", "--set", "resources.mem=400M", "--set", "resources.pack=1s"];
    let out = s.slurm_cmd(&args).env("PATH", &path).output().unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stages = v["stages"].as_array().unwrap();
    let manifests = manifests(&s.path().join("cache"));
    let mut ids = std::collections::BTreeMap::<String, Vec<String>>::new();
    let mut jobs = std::collections::BTreeSet::new();
    let mut nodes = std::collections::BTreeSet::new();
    for st in stages {
        let name = st["name"].as_str().unwrap();
        assert_eq!(st["outcome"], "ran", "{st}");
        let light = ["data", "split", "report"].contains(&name);
        let m = &manifests[st["key"].as_str().unwrap()];
        match st.get("job") {
            None => assert!(light && m.get("job").is_none(), "{name} ran as a job: {st}"),
            Some(job) => {
                assert!(!light, "{name} is light, yet ran as {job}");
                assert_eq!(job["executor"], "slurm");
                jobs.insert(job["job"].as_str().unwrap().to_string());
                let id = slurm_id(job);
                let (state, job_name) = slurm_job(&id);
                assert_eq!(state, "COMPLETED");
                assert!(job_name.starts_with("pipe:"), "{job_name}");
                ids.entry(id.clone()).or_default().push(name.to_string());
                let node = slurm_field(&id, "NodeList=");
                assert_eq!(job["node"], node.as_str(), "{st}");
                // The manifest says where the job ran, what it asked for and used.
                let ran = &m["job"];
                assert_eq!((ran["id"].as_str(), &ran["node"]), (Some(id.as_str()), &job["node"]), "{m}");
                assert_eq!(ran["asked"], serde_json::json!({"cpus": 1, "mem": "400M"}), "{m}");
                let used = &ran["used"];
                assert!(used["cpu_seconds"].as_f64().unwrap() > 0.0, "{m}");
                assert!(used["max_rss_bytes"].as_u64().unwrap() > 1 << 20, "{m}");
                assert!(used["wall_seconds"].as_f64().unwrap() >= m["seconds"].as_f64().unwrap(), "{m}");
                nodes.insert(node);
            }
        }
    }
    let on_cluster: usize = ids.values().map(Vec::len).sum();
    assert_eq!(on_cluster, stages.len() - 3, "every training stage ran as a job");
    // Stages ready together went as one job array: the first wave (both bases, the
    // random baselines), then the transfers of each base, several stages to a job.
    let sbatch = std::fs::read_to_string(&calls).unwrap();
    eprintln!("{on_cluster} stages as {} slurm jobs, {} sbatch calls: {ids:?}", ids.len(), sbatch.lines().count());
    assert!(sbatch.lines().count() <= 3, "{sbatch}");
    assert!(jobs.len() <= 3, "{jobs:?}");
    assert!(ids.len() < on_cluster, "short stages were packed into shared jobs: {ids:?}");
    assert!(err_has(&out, "packed in slurm job"), "{}", stderr(&out));
    assert_eq!(nodes, ["n1", "n2"].map(String::from).into(), "the jobs ran on both nodes");
    // One line per stage group whose request was far above use.
    let err = stderr(&out);
    for group in ["base", "transfer", "random"] {
        assert_eq!(err.matches(&format!("\n{group}: asked 1 CPU / 400M, used ")).count(), 1, "{group}: {err}");
    }
    // The report page shows every job, its node, request and use.
    let page = s.read("quick.report.html");
    assert_eq!(page.matches("<tr class=\"job\">").count(), on_cluster, "{page}");
    assert!(page.contains("<td>1 CPU / 400M</td>"), "{page}");
    assert_eq!(output_digests(&s.path().join("cache")), output_digests(&local.path().join("cache")));
    // The report's own files (report.html among them) are outputs: compared above.
    // Nothing left to submit.
    let again = s.slurm_cmd(&["quick.yaml", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    for st in v["stages"].as_array().unwrap() {
        assert_eq!(st["outcome"], "cached", "{st}");
        assert!(st.get("job").is_none(), "{st}");
    }
}

#[test]
fn a_failed_slurm_job_says_its_state_and_the_rerun_submits_only_it() {
    if !slurm("the Slurm failure test") {
        return;
    }
    let _cluster = cluster_shared();
    let s = Sandbox::new();
    // A job killed by its time limit (one minute: Slurm's smallest) runs meanwhile.
    s.write(
        "slow.yaml",
        "stages:\n  slow:\n    cmd: {run: 'echo started; sleep 600', outs: [slow.txt]}\n    resources: {time: 1}\n",
    );
    let slow = s
        .slurm_cmd(&["slow.yaml"])
        .env("PIPE_CACHE", s.path().join("slow-cache"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    s.write(
        "p.yaml",
        "stages:\n  good:\n    cmd: {run: 'echo good > good.txt', outs: [good.txt]}\n  \
         bad:\n    cmd: {run: 'echo about to fail; exit 3', outs: [bad.txt]}\n  \
         after:\n    cmd: {run: 'cat bad.txt > after.txt', deps: [bad.txt], outs: [after.txt]}\n",
    );
    // A partition the cluster does not have: refused before anything is submitted.
    let out = s.slurm_cmd(&["p.yaml", "--set", "resources.partition=nosuchpartition"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("invalid partition"), "{}", stderr(&out));
    assert!(!s.path().join("cache/jobs").exists(), "nothing was submitted");

    let out = s.slurm_cmd(&["p.yaml", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("stage `bad` failed: slurm job ") && err.contains(" FAILED: "), "{err}");
    assert!(err.contains("exited with status 3") && err.contains("| about to fail"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let outcome = |v: &serde_json::Value, n: &str| {
        v["stages"].as_array().unwrap().iter().find(|st| st["name"] == n).unwrap()["outcome"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        [outcome(&v, "good"), outcome(&v, "bad"), outcome(&v, "after")],
        ["ran", "failed", "skipped"].map(String::from)
    );
    // Fixed: only the failed stage (and the one waiting for it) is submitted.
    let fixed = s.read("p.yaml").replace("echo about to fail; exit 3", "echo fixed > bad.txt");
    s.write("p.yaml", &fixed);
    let out = s.slurm_cmd(&["p.yaml", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        [outcome(&v, "good"), outcome(&v, "bad"), outcome(&v, "after")],
        ["cached", "ran", "ran"].map(String::from)
    );
    assert_eq!(s.read("after.txt"), "fixed\n");

    let slow = slow.wait_with_output().unwrap();
    assert_eq!(slow.status.code(), Some(1), "{}", stderr(&slow));
    let err = stderr(&slow);
    assert!(err.contains("hit its time limit (TIMEOUT; resources.time is 1 minute(s))"), "{err}");
    assert!(err.contains("| started"), "{err}");
}

#[test]
fn a_transfer_shaped_pipeline_runs_on_both_nodes_in_few_submissions_with_a_local_runs_bytes() {
    if !slurm("the Slurm transfer test") {
        return;
    }
    let _cluster = cluster_alone();
    let transfer = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/transfer.yaml")).unwrap();
    // transfer.yaml with two seeds, at a size that trains in a fraction of a second.
    // Jobs of at most two seconds, so that the packs are several and spread.
    let tiny = [
        "seeds=2",
        "training.epochs=1",
        "stages.data.dataset.per_class=20",
        "stages.data.dataset.test_per_class=10",
        "resources.pack=2s",
    ];
    let sets: Vec<&str> = tiny.iter().flat_map(|t| ["--set", *t]).collect();
    let local = Sandbox::new();
    local.write("transfer.yaml", &transfer);
    assert!(local.cmd(&["run", "transfer.yaml"]).args(&sets).output().unwrap().status.success());
    let s = Sandbox::new();
    s.write("transfer.yaml", &transfer);
    let bin = tempfile::tempdir().unwrap();
    let (path, calls) = counted_sbatch(bin.path());
    let mut args = vec!["transfer.yaml", "--json"];
    args.extend(&sets);
    let out = s.slurm_cmd(&args).env("PATH", &path).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stages = v["stages"].as_array().unwrap();
    assert!(stages.iter().all(|st| st["outcome"] == "ran"), "{v}");
    let nodes: std::collections::BTreeSet<&str> = stages.iter().filter_map(|st| st["job"]["node"].as_str()).collect();
    assert_eq!(nodes, ["n1", "n2"].into(), "the jobs ran on both nodes");
    let sbatch = std::fs::read_to_string(&calls).unwrap();
    let jobs: std::collections::BTreeSet<String> =
        stages.iter().filter(|st| st.get("job").is_some()).map(|st| slurm_id(&st["job"])).collect();
    eprintln!("{} stages, {} jobs, {} sbatch calls", stages.len(), jobs.len(), sbatch.lines().count());
    assert!(jobs.len() * 2 < stages.len(), "short stages shared jobs: {jobs:?}");
    assert!(sbatch.lines().count() * 10 < stages.len(), "fewer sbatch calls than a tenth of the stages: {sbatch}");
    assert_eq!(output_digests(&s.path().join("cache")), output_digests(&local.path().join("cache")));
}

#[test]
fn a_packed_stage_that_fails_fails_alone_and_the_rerun_submits_only_it() {
    if !slurm("the Slurm packing test") {
        return;
    }
    let _cluster = cluster_shared();
    let s = Sandbox::new();
    let file = |a: &str, b: &str| {
        format!(
            "stages:\n  a:\n    cmd: {{run: 'echo {a} > a.txt', outs: [a.txt]}}\n  \
             b:\n    cmd: {{run: '{b}', outs: [b.txt]}}\n  \
             c:\n    cmd: {{run: 'echo {a} > c.txt', outs: [c.txt]}}\n  \
             d:\n    cmd: {{run: 'cat b.txt > d.txt', deps: [b.txt], outs: [d.txt]}}\n"
        )
    };
    // A first run records how long each stage takes: a fraction of a second.
    s.write("p.yaml", &file("1", "echo 1 > b.txt"));
    assert!(s.pipe(&["run", "p.yaml"]).status.success());
    // Changed, and b now fails: a, b and c are expected to be short, and share one job.
    s.write("p.yaml", &file("2", "echo about to fail; exit 3"));
    let out = s.slurm_cmd(&["p.yaml", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("stage `b` failed: slurm job ") && err.contains("exited with status 3"), "{err}");
    assert!(err.contains("| about to fail"), "b's own output: {err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stage = |v: &serde_json::Value, n: &str| {
        v["stages"].as_array().unwrap().iter().find(|st| st["name"] == n).unwrap().clone()
    };
    let outcomes =
        |v: &serde_json::Value| ["a", "b", "c", "d"].map(|n| stage(v, n)["outcome"].as_str().unwrap().to_string());
    assert_eq!(outcomes(&v), ["ran", "failed", "ran", "skipped"].map(String::from), "{v}");
    let job_of = |n: &str| slurm_id(&stage(&v, n)["job"]);
    assert_eq!(job_of("a"), job_of("c"), "{v}");
    assert!(err_has(&out, "packed in slurm job"), "{err}");
    assert_eq!((s.read("a.txt"), s.read("c.txt")), ("2\n".to_string(), "2\n".to_string()));
    // Only the failed stage is submitted again (and d, which needs it, waits for it).
    let out = s.slurm_cmd(&["p.yaml", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcomes(&v), ["cached", "failed", "cached", "skipped"].map(String::from), "{v}");
}

#[test]
fn ctrl_c_cancels_every_slurm_job_of_the_run() {
    if !slurm("the Slurm Ctrl-C test") {
        return;
    }
    let _cluster = cluster_shared();
    let s = Sandbox::new();
    s.write("p.yaml", "stages:\n  sleepy:\n    matrix: {i: [1, 2]}\n    cmd: {run: 'sleep 600; echo > s${i}.txt', outs: ['s${i}.txt']}\n");
    let mut child = s.slurm_cmd(&["p.yaml", "--json"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let jobs_dir = s.path().join("cache/jobs");
    wait_for("two submitted jobs", || {
        jobs_dir.exists() && walk(&jobs_dir).iter().filter(|p| p.extension().is_some_and(|e| e == "json")).count() == 2
    });
    std::thread::sleep(Duration::from_secs(1));
    // SAFETY: signalling the child we spawned.
    unsafe { libc_kill(child.id() as i32, 2) };
    let t0 = Instant::now();
    let status = child.wait().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(40), "the run stopped, it did not wait for the jobs");
    assert_eq!(status.code(), Some(130));
    let mut text = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut text).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for st in v["stages"].as_array().unwrap() {
        let id = slurm_id(&st["job"]);
        let id = id.as_str();
        let listed = Command::new("squeue").args(["-h", "-j", id, "-o", "%T"]).output().unwrap();
        assert!(stdout(&listed).trim().is_empty(), "job {id} is still queued or running: {}", stdout(&listed));
        // An array task cancelled before it started may be forgotten at once.
        let shown = Command::new("scontrol").args(["show", "job", id, "-o"]).output().unwrap();
        let text = format!("{}{}", stdout(&shown), stderr(&shown));
        assert!(text.contains("JobState=CANCELLED") || text.contains("not found"), "job {id}: {text}");
    }
}

#[test]
fn a_slurm_node_going_down_fails_its_job_and_a_retry_runs_it_on_the_other_node() {
    if !slurm("the Slurm node failure test") {
        return;
    }
    // It takes a node away: no other test's job may be on it.
    let _cluster = cluster_alone();
    wait_for_nodes_up();
    let s = Sandbox::new();
    // Two stages ready together: one job array, a task on each node.
    s.write(
        "p.yaml",
        "stages:\n  nodefail:\n    matrix: {i: [1, 2]}\n    \
         cmd: {run: 'sleep 8; echo $SLURMD_NODENAME > node${i}.txt', outs: ['node${i}.txt']}\n",
    );
    // Run (in a cache of its own), and set the node of one task DOWN while both run.
    let run_and_fail_node = |cache: &str, extra: &[&str]| -> (Output, String) {
        let mut args = vec!["p.yaml"];
        args.extend_from_slice(extra);
        let mut cmd = s.slurm_cmd(&args);
        cmd.env("PIPE_CACHE", s.path().join(cache)).stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = cmd.spawn().unwrap();
        let t0 = Instant::now();
        let node = loop {
            let out = Command::new("squeue").args(["-h", "-n", "pipe:nodefail", "-t", "RUNNING", "-o", "%N"]).output();
            let nodes = stdout(&out.unwrap());
            if nodes.lines().count() == 2 {
                break nodes.lines().next().unwrap().trim().to_string();
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "the jobs did not start: {nodes}");
            std::thread::sleep(Duration::from_millis(100));
        };
        let set = set_node(&node, "down");
        assert!(set.status.success(), "{}", stderr(&set));
        let out = child.wait_with_output().unwrap();
        // Back in service (it may be already: ReturnToService=2).
        let _ = set_node(&node, "resume");
        wait_for_nodes_up();
        (out, node)
    };
    let read_nodes = || ["node1.txt", "node2.txt"].map(|f| s.read(f).trim().to_string());
    // Without --retries: the task on that node fails its stage alone.
    let (out, node) = run_and_fail_node("cache", &[]);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("ended NODE_FAIL on {node} after 1 attempt(s)")), "{err}");
    assert!(stdout(&out).contains("2 stages: 1 ran, 0 cached, 1 failed"), "{}", stdout(&out));
    // The stage that ran wrote where it ran: the other node. (The failed task's own
    // process is not always killed on this one-machine cluster, which has no cgroups to
    // kill it by, so its file is no evidence either way.)
    let text = stdout(&out);
    let ran = text.lines().find_map(|l| l.trim().strip_prefix("ran nodefail[i=").and_then(|r| r.get(..1)));
    let ran = ran.unwrap_or_else(|| panic!("no stage ran: {text}"));
    let there = s.read(&format!("node{ran}.txt")).trim().to_string();
    assert!(!there.is_empty() && there != node, "nodefail[i={ran}] ran on `{there}` after {node} failed: {text}");

    // With --retries 1 (a cache of its own, so both run again): the failed task is
    // submitted again as a job of its own, away from the node that failed.
    let (out, node) = run_and_fail_node("cache2", &["--retries", "1"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(&format!("ended NODE_FAIL on {node}; now job ")), "{text}");
    let other = if node == "n1" { "n2" } else { "n1" };
    assert_eq!(read_nodes(), [other, other], "both ran on {other} after {node} failed");
}

/// A folder holding `NAME`, an executable shell script with `body`, to put first on PATH.
fn wrapper(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    let mut perms = fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    fs::set_permissions(&path, perms).unwrap();
    format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default())
}

/// The real Slurm command `name`, as PATH finds it now.
fn real(name: &str) -> String {
    let out = Command::new("sh").args(["-c", &format!("command -v {name}")]).output().unwrap();
    stdout(&out).trim().to_string()
}

#[test]
fn a_busy_slurm_is_waited_out_and_a_refusal_fails_at_once() {
    if !slurm("the busy Slurm test") {
        return;
    }
    let _cluster = cluster_shared();
    let s = Sandbox::new();
    s.write("p.yaml", "stages:\n  a:\n    cmd: {run: 'echo a > a.txt', outs: [a.txt]}\n");
    // sbatch times out twice, then works; squeue never answers: the jobs' own reports
    // end the stage.
    let bin = tempfile::tempdir().unwrap();
    let count = bin.path().join("count");
    let busy = "echo 'sbatch: error: Socket timed out on send/recv operation' >&2; exit 1";
    wrapper(
        bin.path(),
        "sbatch",
        &format!(
            "n=$(cat {c} 2>/dev/null || echo 0); echo $((n + 1)) > {c}\n[ \"$n\" -lt 2 ] && {{ {busy}; }}\nexec {} \"$@\"",
            real("sbatch"),
            c = count.display()
        ),
    );
    let path = wrapper(
        bin.path(),
        "squeue",
        "echo 'squeue: error: Unable to contact slurm controller (connect failure)' >&2; exit 1",
    );
    let out = s.slurm_cmd(&["p.yaml"]).env("PATH", &path).output().unwrap();
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "{all}");
    assert!(all.contains("slurm busy, retrying in 1s (sbatch: error: Socket timed out"), "{all}");
    assert!(all.contains("slurm busy, retrying in 2s"), "{all}");
    assert!(all.contains("slurm busy, retrying in 0.5s (squeue: error: Unable to contact"), "{all}");
    assert!(stdout(&out).contains("1 stages: 1 ran"), "{all}");
    assert_eq!(s.read("a.txt"), "a\n");

    // A definite refusal: at once, in sbatch's words, before anything is submitted.
    let bin = tempfile::tempdir().unwrap();
    let path = wrapper(
        bin.path(),
        "sbatch",
        &format!(
            "[ \"$1\" = --version ] && exec {} \"$@\"\necho 'sbatch: error: invalid partition specified: x' >&2; exit 1",
            real("sbatch")
        ),
    );
    s.write("p.yaml", "stages:\n  b:\n    cmd: {run: 'echo b > b.txt', outs: [b.txt]}\n");
    let t0 = Instant::now();
    let out = s.slurm_cmd(&["p.yaml"]).env("PATH", &path).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("sbatch: error: invalid partition specified: x"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("slurm busy"), "{}", stderr(&out));
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
}

#[test]
fn the_slurm_executor_needs_sbatch() {
    let s = Sandbox::new();
    s.write("p.yaml", "stages:\n  a:\n    cmd: {run: 'echo a > a.txt', outs: [a.txt]}\n");
    let empty = tempfile::tempdir().unwrap();
    let out = s.cmd(&["run", "p.yaml", "--executor", "slurm"]).env("PATH", empty.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("needs Slurm's `sbatch` on PATH"), "{}", stderr(&out));
    assert!(!s.path().join("a.txt").exists());
    // Cached stages need no cluster at all.
    s.run_json("p.yaml", &[]);
    let out = s.cmd(&["run", "p.yaml", "--executor", "slurm"]).env("PATH", empty.path()).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The remotes a test can use: a folder always; the S3 server `.ci/run` starts
/// (`.ci/moto.sh`, announced by `PIPE_S3`) when there is one, each test under its own
/// prefix.
fn remotes(test: &str, prefix: &Path) -> Vec<String> {
    let mut v = vec![format!("file://{}", prefix.join("remote").display())];
    match (std::env::var("PIPE_S3"), std::env::var("PIPE_S3_BUCKET")) {
        (Ok(endpoint), Ok(bucket)) => {
            let unique = prefix.file_name().unwrap().to_string_lossy().to_string();
            v.push(format!("s3://{bucket}/{unique}?endpoint={endpoint}"));
        }
        _ => eprintln!(
            "{test}: the S3 part is skipped: PIPE_S3 is not set (`.ci/run` starts a loopback S3 server and sets it)"
        ),
    }
    v
}

/// The objects in a cache, by digest.
fn objects(cache: &Path) -> std::collections::BTreeSet<String> {
    let dir = cache.join("objects");
    if !dir.exists() {
        return Default::default();
    }
    walk(&dir)
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(&dir).unwrap().to_string_lossy().to_string();
            rel.replace('/', "")
        })
        .collect()
}

/// Each network stage's checkpoint (`network/model.safetensors`) digest in a cache.
fn checkpoints_by_stage(cache: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for f in walk(&cache.join("entries")) {
        let m: serde_json::Value = serde_json::from_slice(&fs::read(f).unwrap()).unwrap();
        let Some(files) = m["outputs"]["network"]["files"].as_array() else { continue };
        for f in files.iter().filter(|f| f["path"] == "model.safetensors") {
            out.push((m["stage"].as_str().unwrap().to_string(), f["digest"].as_str().unwrap().to_string()));
        }
    }
    out
}

/// The digest of stage `stage`'s checkpoint in a cache.
fn checkpoint_of(cache: &Path, stage: &str) -> String {
    let found = checkpoints_by_stage(cache).into_iter().find(|(s, _)| s == stage);
    found.unwrap_or_else(|| panic!("no entry for {stage}")).1
}

/// The digests of the checkpoints in a cache's entries.
fn checkpoints(cache: &Path) -> Vec<String> {
    checkpoints_by_stage(cache).into_iter().map(|(_, d)| d).collect()
}

/// A sandbox where quick.yaml has run.
fn quick_ran() -> Sandbox {
    let a = Sandbox::new();
    a.write("quick.yaml", &quick());
    a.run_json("quick.yaml", &[]);
    a
}

#[test]
fn a_second_machine_pulls_what_the_first_pushed_and_trains_nothing() {
    let a = quick_ran();
    for url in remotes("the push/pull test", a.path()) {
        let out = a.pipe(&["push", "quick.yaml", "--remote", &url, "--json"]);
        assert!(out.status.success(), "{url}: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["entries"], 20, "{v}");
        // Pushing again sends nothing.
        let again: serde_json::Value =
            serde_json::from_slice(&a.pipe(&["push", "quick.yaml", "--remote", &url, "--json"]).stdout).unwrap();
        assert_eq!((again["entries"].as_u64(), again["objects"].as_u64()), (Some(0), Some(0)), "{again}");
        assert_eq!(again["entries_present"], 20);

        let b = Sandbox::new();
        b.write("quick.yaml", &quick());
        let out = b.pipe(&["pull", "quick.yaml", "--remote", &url, "--json"]);
        assert!(out.status.success(), "{url}: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["entries"], 20, "{v}");
        let runs = b.run_json("quick.yaml", &[]);
        assert!(runs.iter().all(|(_, o)| o == "cached"), "{url}: machine B computes nothing: {runs:?}");
        assert_eq!(output_digests(&b.path().join("cache")), output_digests(&a.path().join("cache")));
        for digest in checkpoints(&a.path().join("cache")) {
            let at =
                |s: &Sandbox| fs::read(s.path().join("cache/objects").join(&digest[..2]).join(&digest[2..])).unwrap();
            assert_eq!(at(&a), at(&b), "the checkpoint's bytes");
        }
        let out = b.pipe(&["cache", "verify"]);
        assert!(out.status.success(), "{}", stdout(&out));
        // A pull with everything here moves nothing.
        let v: serde_json::Value =
            serde_json::from_slice(&b.pipe(&["pull", "quick.yaml", "--remote", &url, "--json"]).stdout).unwrap();
        assert_eq!((v["entries"].as_u64(), v["objects"].as_u64()), (Some(0), Some(0)), "{v}");
    }
}

#[test]
fn a_run_with_a_remote_computes_nothing_and_fetches_only_what_it_reads() {
    let a = quick_ran();
    for url in remotes("the --remote run test", a.path()) {
        assert!(a.pipe(&["push", "quick.yaml", "--remote", &url]).status.success());
        let b = Sandbox::new();
        b.write("quick.yaml", &quick());
        let status = b.pipe(&["status", "quick.yaml", "--remote", &url]);
        assert!(stdout(&status).contains("20 stages: 0 fresh, 20 on the remote"), "{}", stdout(&status));
        let dry = b.pipe(&["run", "quick.yaml", "--dry-run", "--remote", &url]);
        assert_eq!(stdout(&dry).matches("would fetch from the remote").count(), 20, "{}", stdout(&dry));
        // One stage brought for `show`, though what it read is only on the remote (and
        // named with spaces, as the command line allows).
        let c = Sandbox::new();
        c.write("quick.yaml", &quick());
        let shown = c.pipe(&["show", "quick.yaml", "transfer[from=A, n=2, ft=true]", "--remote", &url]);
        assert!(shown.status.success(), "{}", stderr(&shown));
        assert!(stdout(&shown).contains("model.safetensors"), "{}", stdout(&shown));
        // A remote named by PIPE_REMOTE does not get in the way of showing the whole
        // pipeline.
        let whole = c.cmd(&["show", "quick.yaml"]).env("PIPE_REMOTE", &url).output().unwrap();
        assert!(whole.status.success(), "{}", stderr(&whole));
        let out = b.cmd(&["run", "quick.yaml", "--remote", &url, "--json"]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for st in v["stages"].as_array().unwrap() {
            assert_eq!(st["outcome"], "remote", "{st}");
        }
        assert_eq!(v["remote"]["objects_fetched"], 0, "a run that computes nothing fetches no bytes: {v}");
        assert!(b.path().join("quick.report.html").exists(), "the report's page is written all the same");
        // A report computed here reads the networks' metrics and logs, never their
        // checkpoints.
        let b = Sandbox::new();
        b.write("quick.yaml", &quick());
        let out =
            b.cmd(&["run", "quick.yaml", "report", "--force", "report", "--remote", &url, "--json"]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let report = v["stages"].as_array().unwrap().iter().find(|s| s["name"] == "report").unwrap().clone();
        assert_eq!(report["outcome"], "ran", "{v}");
        let fetched = v["remote"]["objects_fetched"].as_u64().unwrap();
        assert!(fetched >= 19, "the report's inputs were fetched: {v}");
        let here = objects(&b.path().join("cache"));
        for digest in checkpoints(&a.path().join("cache")) {
            assert!(!here.contains(&digest), "a checkpoint was fetched for a report-only run");
        }
        // A stage computed here fetches exactly its inputs.
        let out = b
            .cmd(&["run", "quick.yaml", "--remote", &url, "--force", "transfer[from=A,n=1,ft=false]", "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let here = objects(&b.path().join("cache"));
        let base = checkpoints(&a.path().join("cache"));
        assert_eq!(base.iter().filter(|d| here.contains(*d)).count(), 2, "base A's checkpoint and the new transfer's");
    }
}

#[test]
fn concurrent_and_interrupted_transfers_leave_the_remote_and_the_cache_consistent() {
    let a = quick_ran();
    for url in remotes("the concurrent transfer test", a.path()) {
        // A push killed midway, then two at once.
        let mut killed = a.cmd(&["push", "quick.yaml", "--remote", &url]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(60));
        let _ = killed.kill();
        let _ = killed.wait();
        let pushes: Vec<_> = (0..2)
            .map(|_| a.cmd(&["push", "quick.yaml", "--remote", &url]).stdout(Stdio::piped()).spawn().unwrap())
            .collect();
        for p in pushes {
            let out = p.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
        }
        // A pull killed midway, then repeated.
        let b = Sandbox::new();
        b.write("quick.yaml", &quick());
        let mut killed = b.cmd(&["pull", "quick.yaml", "--remote", &url]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(60));
        let _ = killed.kill();
        let _ = killed.wait();
        let out = b.pipe(&["cache", "verify"]);
        assert!(out.status.success(), "a killed pull leaves nothing that looks complete: {}", stdout(&out));
        assert!(b.pipe(&["pull", "quick.yaml", "--remote", &url]).status.success());
        let runs = b.run_json("quick.yaml", &[]);
        assert!(runs.iter().all(|(_, o)| o == "cached"), "{runs:?}");
        assert_eq!(output_digests(&b.path().join("cache")), output_digests(&a.path().join("cache")));
    }
}

#[test]
fn damaged_remote_bytes_and_unreachable_remotes_are_clear_errors_that_change_nothing() {
    let a = quick_ran();
    let url = format!("file://{}", a.path().join("remote").display());
    assert!(a.pipe(&["push", "quick.yaml", "--remote", &url]).status.success());
    // One flipped byte in the remote copy of a checkpoint.
    let digest = checkpoints(&a.path().join("cache"))[0].clone();
    let object = a.path().join("remote/objects").join(&digest[..2]).join(&digest[2..]);
    flip_bit(&object, 100, 1);
    let b = Sandbox::new();
    b.write("quick.yaml", &quick());
    let out = b.pipe(&["pull", "quick.yaml", "--remote", &url]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("remote {url}: object {digest} is damaged")), "{err}");
    assert!(!objects(&b.path().join("cache")).contains(&digest), "damaged bytes never enter the cache");
    assert!(walk(&b.path().join("cache/entries")).is_empty(), "no entry was published");

    // A run that reads a damaged remote checkpoint computes its stage here instead.
    let base = checkpoint_of(&a.path().join("cache"), "base[half=A]");
    let object = a.path().join("remote/objects").join(&base[..2]).join(&base[2..]);
    flip_bit(&object, 200, 1);
    let c = Sandbox::new();
    c.write("quick.yaml", &quick());
    let t = "transfer[from=A,n=1,ft=false]";
    let out = c.cmd(&["run", "quick.yaml", t, "--force", t, "--remote", &url, "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let outcome = |n: &str| v["stages"].as_array().unwrap().iter().find(|s| s["name"] == n).unwrap()["outcome"].clone();
    assert_eq!((outcome("base[half=A]"), outcome(t)), ("ran".into(), "ran".into()), "{v}");
    assert!(stderr(&out).contains("is damaged"), "{}", stderr(&out));
    assert_eq!(checkpoint_of(&c.path().join("cache"), "base[half=A]"), base, "the same bytes, computed here");

    // Nothing to reach: the error names the remote and the cause; the cache is as it was.
    let before = objects(&a.path().join("cache"));
    let mut cases = vec![("s3://pipe-ci/x?endpoint=http://127.0.0.1:9".to_string(), "cannot connect to the server")];
    if let (Ok(endpoint), Ok(bucket)) = (std::env::var("PIPE_S3"), std::env::var("PIPE_S3_BUCKET")) {
        cases.push((format!("s3://no-such-bucket-pipe/x?endpoint={endpoint}"), "the bucket does not exist"));
        cases.push((format!("s3://{bucket}/x?endpoint={endpoint}&wrong-key"), "the server refused the credentials"));
    }
    for (url, why) in cases {
        let (url, wrong) = match url.strip_suffix("&wrong-key") {
            Some(u) => (u.to_string(), true),
            None => (url, false),
        };
        let secret = if wrong {
            "wrong".to_string()
        } else {
            std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "none".into())
        };
        let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "none".into());
        let with_keys = |args: &[&str]| {
            let mut c = a.cmd(args);
            c.env("AWS_ACCESS_KEY_ID", &key).env("AWS_SECRET_ACCESS_KEY", &secret);
            c.output().unwrap()
        };
        let out = with_keys(&["push", "quick.yaml", "--remote", &url]);
        assert_eq!(out.status.code(), Some(4), "{url}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("error: remote {url}: cannot list the remote cache: {why}")),
            "{}",
            stderr(&out)
        );
        let out = with_keys(&["run", "quick.yaml", "--remote", &url]);
        assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    }
    assert_eq!(objects(&a.path().join("cache")), before);
    assert!(a.run_json("quick.yaml", &[]).iter().all(|(_, o)| o == "cached"));
}

#[test]
fn push_during_a_run_and_gc_of_the_remote() {
    let here = Sandbox::new();
    for url in remotes("the --push and remote gc test", here.path()) {
        let a = Sandbox::new();
        a.write("quick.yaml", &quick());
        let out = a.cmd(&["run", "quick.yaml", "--remote", &url, "--push", "--json"]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let ran = v["stages"].as_array().unwrap().iter().filter(|s| s["outcome"] == "ran").count() as u64;
        assert_eq!(
            v["remote"]["pushed"]["entries"].as_u64().unwrap()
                + v["remote"]["pushed"]["entries_present"].as_u64().unwrap(),
            ran,
            "{v}"
        );
        // Another version of the experiment: its entries join the remote; gc of the
        // remote for the first version removes them and keeps the first's.
        let other =
            a.cmd(&["run", "quick.yaml", "--set", "training.epochs=2", "--remote", &url, "--push"]).output().unwrap();
        assert!(other.status.success(), "{}", stderr(&other));
        // Where keys cannot be known (another dataset, in neither cache), gc of the
        // remote removes nothing.
        let c = Sandbox::new();
        c.write("quick.yaml", &quick());
        let out = c.pipe(&["cache", "gc", "quick.yaml", "--set", "stages.data.dataset.seed=5", "--remote", &url]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains("nothing was removed"), "{}", stderr(&out));
        // The runs' records went with their entries: by default, the other version is
        // a root there too.
        if let Some(folder) = url.strip_prefix("file://") {
            let logs = fs::read_dir(Path::new(folder).join("uses")).unwrap().flatten();
            assert!(logs.filter(|e| e.file_name().to_string_lossy().ends_with(".log")).count() > 0);
        }
        let out = a.pipe(&["cache", "gc", "--remote", &url]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains(&format!("remote {url}: removed 0 entries")), "{}", stdout(&out));
        let out = a.pipe(&["cache", "gc", "--remote", &url, "--only", "quick.yaml"]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stdout(&out).contains(&format!("entries on {url} that would go")), "{}", stdout(&out));
        let out = a.pipe(&["cache", "gc", "quick.yaml", "--remote", &url, "--only", "--yes"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("kept 20 entries"), "{}", stdout(&out));
        let b = Sandbox::new();
        b.write("quick.yaml", &quick());
        assert!(b.pipe(&["pull", "quick.yaml", "--remote", &url]).status.success());
        assert!(b.run_json("quick.yaml", &[]).iter().all(|(_, o)| o == "cached"));
        let status = b.pipe(&["status", "quick.yaml", "--set", "training.epochs=2", "--remote", &url]);
        assert!(!stdout(&status).contains(" on the remote"), "the other version is gone: {}", stdout(&status));
    }
}
