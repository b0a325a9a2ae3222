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
}
