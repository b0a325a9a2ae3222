//! Engine overhead on a transfer-shaped pipeline of `cmd` stages that each write a small
//! file: the cold run, the no-op rerun, `status`, and the rerun after one transfer's
//! parameter changed. Run with `cargo bench --bench engine`.
//!
//! Shapes: 1 split -> 2 base -> 28 transfer (2 sources x 7 cuts x frozen/fine-tuned) ->
//! 1 evaluate = 32 stages; and 9 seeds of split, base and transfer feeding the one
//! evaluate = 280 stages. Times are wall-clock through the real binary, as a user sees
//! them, medians of several runs.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Split and base as matrices; each transfer written out as its own stage, so that one
/// transfer's parameter can be changed alone.
fn pipeline(seeds: usize) -> String {
    let list = (0..seeds).map(|s| s.to_string()).collect::<Vec<_>>().join(", ");
    let mut text = format!(
        r#"name: bench
stages:
  split:
    matrix: {{seed: [{list}]}}
    cmd: {{run: "echo split ${{seed}} > split_${{seed}}.txt", outs: ["split_${{seed}}.txt"]}}
  base:
    matrix: {{seed: [{list}], half: [A, B]}}
    cmd: {{run: "cat split_${{seed}}.txt > base_${{seed}}_${{half}}.txt; echo ${{half}} >> base_${{seed}}_${{half}}.txt",
          deps: ["split_${{seed}}.txt"], outs: ["base_${{seed}}_${{half}}.txt"]}}
"#
    );
    let mut outs = Vec::new();
    for s in 0..seeds {
        for from in ["A", "B"] {
            for n in 1..=7 {
                for ft in ["frozen", "tuned"] {
                    let out = format!("t_{s}_{from}_{n}_{ft}.txt");
                    text.push_str(&format!(
                        "  transfer_{s}_{from}_{n}_{ft}:\n    cmd: {{run: \"cat base_{s}_{from}.txt > {out}; echo lr=0.01 >> {out}\", \
                         deps: [base_{s}_{from}.txt], outs: [{out}]}}\n"
                    ));
                    outs.push(out);
                }
            }
        }
    }
    text.push_str(&format!(
        "  evaluate:\n    cmd: {{run: \"cat t_*.txt | wc -l > evaluate.txt\", deps: [{}], outs: [evaluate.txt]}}\n",
        outs.join(", ")
    ));
    text
}

fn pipe(dir: &Path, args: &[&str]) -> f64 {
    pipe_out(dir, args).0
}

/// Milliseconds, and the last line the command printed.
fn pipe_out(dir: &Path, args: &[&str]) -> (f64, String) {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args(args)
        .current_dir(dir)
        .env("PIPE_CACHE", dir.join("cache"))
        .output()
        .expect("pipe runs");
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (ms, String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().to_string())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects nothing here.
    for seeds in [1, 9] {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let text = pipeline(seeds);
        std::fs::write(dir.path().join("p.yaml"), &text).unwrap();
        let stages = 1 + seeds * (1 + 2 + 28);
        let cold = pipe(dir.path(), &["run", "p.yaml"]);
        let noop = median((0..7).map(|_| pipe(dir.path(), &["run", "p.yaml"])).collect());
        let status = median((0..7).map(|_| pipe(dir.path(), &["status", "p.yaml"])).collect());
        let one = "echo lr=0.01 >> t_0_A_3_frozen.txt";
        let changed = text.replace(one, "echo lr=0.02 >> t_0_A_3_frozen.txt");
        assert_ne!(changed, text);
        std::fs::write(dir.path().join("p.yaml"), &changed).unwrap();
        let (rerun, summary) = pipe_out(dir.path(), &["run", "p.yaml"]);
        assert!(summary.starts_with(&format!("{stages} stages: 2 ran")), "{summary}");
        println!(
            "engine/{stages} stages: cold {cold:.0} ms, no-op rerun {noop:.1} ms, status {status:.1} ms, \
             rerun after one change {rerun:.0} ms"
        );
    }
    scale();
}

/// The plan's cost as pipelines grow: it must stay linear in stages. `status` of the
/// paper's pipeline at 2,800 to 100,000 stages (reading, validating, planning and
/// printing it; an empty cache, so the data stage is stale and everything else waits);
/// then `status` and a no-op `run` of a fully cached pipeline of 1,000, 10,000 and
/// 100,000 stages (a key per stage; the manifests from the pipeline's memo).
fn scale() {
    let transfer = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/transfer.yaml");
    let transfer = transfer.to_str().unwrap();
    let dir = tempfile::tempdir().expect("a temporary folder");
    for seeds in [100, 1000, 3571] {
        let set = format!("seeds={seeds}");
        let (ms, line) = pipe_out(dir.path(), &["status", transfer, "--set", &set]);
        let ms = median(
            std::iter::once(ms).chain((0..2).map(|_| pipe(dir.path(), &["status", transfer, "--set", &set]))).collect(),
        );
        let stages: f64 = line.split(' ').next().unwrap().parse().unwrap();
        println!("plan/transfer.yaml {line}: status {ms:.0} ms ({:.1} ms per 1,000 stages)", ms / stages * 1000.0);
    }
    // The cold run of 100,000 `cmd` stages takes about a quarter of an hour on 2 cores
    // (a process per stage): opt in with PIPE_BENCH_100K=1.
    let largest = if std::env::var_os("PIPE_BENCH_100K").is_some() { 100_000 } else { 10_000 };
    for n in [1_000usize, 10_000, 100_000].into_iter().filter(|n| *n <= largest) {
        let dir = tempfile::tempdir().expect("a temporary folder");
        // Two stages per item: a producer and a consumer of its file, so half the keys
        // hash a workspace file and half read another stage's output digest. Items are
        // a two-axis matrix, as a sweep over seeds and settings would be.
        let axis = |k: usize| (0..k).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
        let (i, j) = (axis(n / 200), axis(100));
        let text = format!(
            "stages:\n  a:\n    matrix: {{i: [{i}], j: [{j}]}}\n    cmd: {{run: \"echo ${{i}} ${{j}} > a${{i}}_${{j}}\", outs: [\"a${{i}}_${{j}}\"]}}\n  \
             b:\n    matrix: {{i: [{i}], j: [{j}]}}\n    cmd: {{run: \"cat a${{i}}_${{j}} > b${{i}}_${{j}}\", deps: [\"a${{i}}_${{j}}\"], outs: [\"b${{i}}_${{j}}\"]}}\n"
        );
        std::fs::write(dir.path().join("p.yaml"), &text).unwrap();
        let cold = pipe(dir.path(), &["run", "p.yaml"]);
        // Cache folders changed within the last 2 s are not trusted by the memo (see
        // src/store/memo.rs); a rerun comes later than that in practice.
        std::thread::sleep(std::time::Duration::from_millis(2500));
        let first = pipe(dir.path(), &["run", "p.yaml"]);
        let noop = median((0..3).map(|_| pipe(dir.path(), &["run", "p.yaml"])).collect());
        let status = median((0..3).map(|_| pipe(dir.path(), &["status", "p.yaml"])).collect());
        println!(
            "plan/{n} cached stages: no-op run {noop:.0} ms ({:.1} ms per 1,000), status {status:.0} ms ({:.1} ms per 1,000); \
             first rerun (reads every manifest) {first:.0} ms; cold {:.0} s",
            noop / n as f64 * 1000.0,
            status / n as f64 * 1000.0,
            cold / 1000.0
        );
    }
}
