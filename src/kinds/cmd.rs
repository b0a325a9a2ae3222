//! `cmd`: a shell command with declared inputs and outputs, hashed like any stage.
//!
//! ```yaml
//! stages:
//!   prepare:
//!     cmd: {run: "python prepare.py --seed 3", deps: [prepare.py, raw/], outs: [data.csv]}
//! ```
//!
//! The command runs in the pipeline file's folder with `sh -c`. Its key holds the
//! command line, its environment settings, the declared output paths and the content
//! of every dependency. Declared outputs are removed before it runs (so a stale file
//! cannot pass for a fresh one), must all exist afterwards, are stored in the cache, and
//! are put back from the cache when the stage is a hit.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::config::diagnostic::Diagnostics;
use crate::config::node::{KeyPath, Node, Value};
use crate::config::reader::MapReader;
use crate::kind::{Input, Kind, RunContext, StageFailure, Task, log_tail};
use crate::paths::normalize_rel;

pub struct Cmd;

impl Kind for Cmd {
    fn name(&self) -> &'static str {
        "cmd"
    }

    fn version(&self) -> u32 {
        1
    }

    fn sections(&self) -> &'static [&'static str] {
        &["env"]
    }

    fn check(&self, params: &Node, path: &KeyPath, diags: &mut Diagnostics) -> Option<Box<dyn Task>> {
        let mut m = MapReader::new(params, path.clone(), diags)?;
        let run = m.required_string("run", diags);
        let deps = rel_paths(&mut m, "deps", diags);
        let outs = rel_paths(&mut m, "outs", diags);
        let env = m.get("env").and_then(|n| env_map(n, &path.key("env"), diags));
        m.finish(diags);
        for (i, out) in outs.iter().enumerate() {
            if outs[..i].contains(out) {
                diags.error(params.mark, &path.key("outs"), format!("output `{out}` is declared twice"));
            }
            if deps.contains(out) {
                diags.error(params.mark, &path.key("outs"), format!("`{out}` is both a dependency and an output"));
            }
        }
        Some(Box::new(CmdTask { params: CmdParams { run: run?, outs, env: env.unwrap_or_default() }, deps }))
    }
}

fn rel_paths(m: &mut MapReader<'_>, key: &'static str, diags: &mut Diagnostics) -> Vec<String> {
    let list = m.string_list(key, diags);
    let mut out = Vec::with_capacity(list.len());
    for (i, p) in list.into_iter().enumerate() {
        // Most paths are written in normal form already: kept as they are.
        if crate::paths::is_normal_rel(&p) {
            out.push(p);
            continue;
        }
        match normalize_rel(&p) {
            Ok(p) => out.push(p),
            Err(why) => {
                let mark = m.node().get(key).map_or(m.node().mark, |n| match &n.value {
                    Value::Seq(items) => items.get(i).map_or(n.mark, |x| x.mark),
                    _ => n.mark,
                });
                diags.error(mark, &m.path(key).index(i), format!("path `{p}` {why}"));
            }
        }
    }
    out
}

fn env_map(node: &Node, path: &KeyPath, diags: &mut Diagnostics) -> Option<BTreeMap<String, String>> {
    let Value::Map(entries) = &node.value else {
        diags.error(
            node.mark,
            path,
            format!("expected a mapping of variable names to values, found {}", node.type_name()),
        );
        return None;
    };
    let mut env = BTreeMap::new();
    for (k, v) in entries {
        match v.scalar_text() {
            Some(text) if !matches!(v.value, Value::Null) => {
                env.insert(k.name.clone(), text);
            }
            _ => diags.error(v.mark, &path.key(&k.name), format!("expected a plain value, found {}", v.type_name())),
        }
    }
    Some(env)
}

/// What a command's output depends on besides its inputs' content: the command, what
/// it writes and its environment. The paths of `deps` are not here: their content is
/// in the key as inputs.
#[derive(Debug, serde::Serialize)]
struct CmdParams {
    run: String,
    outs: Vec<String>,
    env: BTreeMap<String, String>,
}

#[derive(Debug)]
struct CmdTask {
    params: CmdParams,
    deps: Vec<String>,
}

impl Task for CmdTask {
    fn params(&self) -> crate::key::Params {
        crate::kind::params_json(&self.params)
    }

    fn inputs(&self) -> Vec<Input> {
        self.deps.iter().cloned().map(Input::Path).collect()
    }

    fn workspace_outputs(&self) -> Vec<String> {
        self.params.outs.clone()
    }

    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageFailure> {
        for out in &self.params.outs {
            let p = ctx.workspace.join(out);
            crate::durable::remove_path(&p)
                .map_err(|e| StageFailure::caused(format!("cannot remove old output `{out}`"), e))?;
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent)
                    .map_err(|e| StageFailure::caused(format!("cannot create folder for `{out}`"), e))?;
            }
        }
        let log = fs::File::create(ctx.log_path).map_err(|e| StageFailure::caused("cannot create the stage log", e))?;
        let log2 = log.try_clone().map_err(|e| StageFailure::caused("cannot create the stage log", e))?;
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(&self.params.run)
            .current_dir(ctx.workspace)
            .envs(&self.params.env)
            .env("PIPE_STAGE", ctx.stage)
            .env("PIPE_THREADS", ctx.threads.to_string())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            // Its own process group, so Ctrl-C reaches it only through us and we can stop
            // everything it started.
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; it makes the command die with us, so a
        // killed `pipe` leaves no command writing into the workspace.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|e| StageFailure::caused("cannot start `sh`", e))?;
        let pid = child.id() as i32;
        let mut nap = Duration::from_micros(200);
        let mut cancelled_at: Option<Instant> = None;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => return Err(StageFailure::caused("cannot wait for the command", e)),
            }
            if ctx.cancel.load(Ordering::Relaxed) {
                match cancelled_at {
                    None => {
                        // SAFETY: signalling our own child's process group.
                        unsafe { libc::kill(-pid, libc::SIGTERM) };
                        cancelled_at = Some(Instant::now());
                    }
                    Some(t) if t.elapsed() > Duration::from_secs(3) => unsafe {
                        libc::kill(-pid, libc::SIGKILL);
                    },
                    Some(_) => {}
                }
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(20));
        };
        if cancelled_at.is_some() {
            return Err(StageFailure::interrupted());
        }
        if !status.success() {
            let why = match status.code() {
                Some(c) => format!("command exited with status {c}"),
                None => "command was killed by a signal".to_string(),
            };
            return Err(StageFailure::with_tail(why, log_tail(ctx.log_path, 20)));
        }
        for out in &self.params.outs {
            if fs::symlink_metadata(ctx.workspace.join(out)).is_err() {
                return Err(StageFailure::with_tail(
                    format!("the command succeeded but did not write its declared output `{out}`"),
                    log_tail(ctx.log_path, 20),
                ));
            }
        }
        Ok(())
    }
}
