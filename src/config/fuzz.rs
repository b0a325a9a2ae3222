//! The pipeline reader under thousands of mutated and random files: it never panics,
//! never hangs, and every rejection points at a place in the file or a `--set`.

use std::path::Path;

use super::load::{ConfigError, parse};
use super::node::Origin;
use crate::rng::Rng;

/// The shipped pipelines and a few small ones: what mutations start from.
const SEEDS: [&str; 8] = [
    include_str!("../../pipelines/quick.yaml"),
    include_str!("../../pipelines/transfer.yaml"),
    include_str!("../../pipelines/transfer-dissimilar.yaml"),
    include_str!("../../pipelines/mnist.yaml"),
    include_str!("../../pipelines/cifar10.yaml"),
    include_str!("../../pipelines/cifar100.yaml"),
    "stages:\n  a:\n    cmd: {run: 'echo ${n} > o${n}', outs: ['o${n}']}\n    matrix: {n: [1, 2]}\n  b:\n    \
     cmd: {run: cat o1 o2, deps: [o1, o2]}\n",
    "x: &d {epochs: 2}\ntraining: *d\nseeds: 2\nstages:\n  s:\n    matrix: {seed: seeds}\n    \
     split: {data: d, seed: '${seed}'}\n  d:\n    dataset: {source: synthetic}\n",
];

/// Fragments that YAML and our reader treat specially.
const TOKENS: [&str; 40] = [
    ":",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "---\n",
    "...\n",
    "\n",
    "  ",
    "\t",
    "'",
    "\"",
    "#",
    "${n}",
    "${",
    "matrix: ",
    "seeds",
    "null",
    "~",
    "!!binary ",
    "? ",
    "|\n",
    ">\n",
    "0",
    "-1",
    "1e308",
    "4611686018427387904",
    "99999999999999999999",
    ".nan",
    "true",
    "conv 8 3 pool",
    "fc 1048577",
    "\u{feff}",
    "\u{0}",
    "é",
    "base[half=A]",
];

fn mutate(rng: &mut Rng, text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(bytes.len() as u64 + 1) as usize;
        match rng.below(6) {
            0 if !bytes.is_empty() => {
                let i = at.min(bytes.len() - 1);
                bytes[i] ^= 1 << rng.below(8);
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len() as u64) as usize];
                bytes.splice(at..at, t.bytes());
            }
            2 => {
                let end = (at + rng.below(40) as usize).min(bytes.len());
                bytes.drain(at..end);
            }
            3 => {
                // Repeat a stretch of the file somewhere else.
                let start = rng.below(bytes.len() as u64 + 1) as usize;
                let end = (start + rng.below(200) as usize).min(bytes.len());
                let piece = bytes[start..end].to_vec();
                bytes.splice(at..at, piece);
            }
            4 => bytes.insert(at, rng.below(256) as u8),
            _ => {
                let digits = (rng.next_u64() % 10_u64.pow(1 + rng.below(12) as u32)).to_string();
                bytes.splice(at..at, digits.bytes());
            }
        }
    }
    bytes
}

/// A file built from tokens alone.
fn random_file(rng: &mut Rng) -> Vec<u8> {
    let mut out = String::new();
    for _ in 0..rng.below(60) {
        out.push_str(TOKENS[rng.below(TOKENS.len() as u64) as usize]);
        if rng.bool(0.3) {
            out.push_str(["stages", "a", "cmd", "run", "deps", "training", "epochs"][rng.below(7) as usize]);
        }
    }
    out.into_bytes()
}

/// A valid pipeline with a value nested hundreds to thousands deep: block or flow
/// mappings and lists, mixed.
fn deep_file(rng: &mut Rng) -> Vec<u8> {
    let depth = 100 + rng.below(5_000) as usize;
    let mut out = String::from("stages:\n  a:\n    cmd: {run: 'true'}\nx:\n");
    let block = rng.bool(0.5);
    for i in 0..depth {
        let map = rng.bool(0.5);
        if block {
            out.push_str(&"  ".repeat(i + 1));
            out.push_str(if map { "k:\n" } else { "-\n" });
        } else {
            out.push_str(if map { "{k: " } else { "[" });
        }
    }
    out.push_str(if block { "1\n" } else { "1" });
    out.into_bytes()
}

#[test]
fn no_input_panics_and_every_error_has_a_location() {
    let mut rng = Rng::new(20261204);
    // Its own stream, so the other rounds stay the files they were.
    let mut deep = Rng::new(20261208);
    let file = Path::new("fuzz.yaml");
    let (mut accepted, mut rejected) = (0, 0);
    for round in 0..20_000 {
        let bytes = if round % 500 == 0 {
            deep_file(&mut deep)
        } else if round % 5 == 4 {
            random_file(&mut rng)
        } else {
            let seed = SEEDS[rng.below(SEEDS.len() as u64) as usize];
            mutate(&mut rng, seed)
        };
        let sets: Vec<String> = match rng.below(8) {
            0 => vec!["training.epochs=0".into()],
            1 => vec![format!("seeds={}", rng.below(20))],
            2 => vec!["stages.x.cmd.run=[".into(), "=".into()],
            _ => Vec::new(),
        };
        let result = std::panic::catch_unwind(|| parse(file, &bytes, &sets, crate::kinds::registry()));
        let shown = || String::from_utf8_lossy(&bytes).into_owned();
        match result {
            Err(_) => panic!("round {round}: the reader panicked on:\n{}\nwith {sets:?}", shown()),
            Ok(Ok(_)) => accepted += 1,
            Ok(Err(ConfigError::Invalid { diagnostics, text, .. })) => {
                rejected += 1;
                assert!(!diagnostics.is_empty(), "round {round}: rejected without a reason:\n{}", shown());
                let lines = text.lines().count().max(1);
                for d in &diagnostics {
                    match d.mark.origin {
                        Origin::File => assert!(
                            d.mark.line >= 1 && d.mark.line <= lines + 1 && d.mark.col >= 1,
                            "round {round}: `{}` at {}:{} is outside the file:\n{}",
                            d.message,
                            d.mark.line,
                            d.mark.col,
                            shown()
                        ),
                        Origin::Set(i) => assert!(i < sets.len()),
                    }
                }
                // The CLI maps this error to exit code 3.
                let e = crate::error::Error::Config(ConfigError::Invalid {
                    file: file.to_path_buf(),
                    text,
                    sets: sets.clone(),
                    diagnostics,
                });
                assert_eq!(e.exit_code(), 3);
                assert!(e.render().contains("fuzz.yaml"));
            }
            Ok(Err(other)) => panic!("round {round}: an error without a location: {other}"),
        }
    }
    // The mutations must exercise both sides, or the test proves little.
    assert!(accepted > 500 && rejected > 5000, "accepted {accepted}, rejected {rejected}");
}
