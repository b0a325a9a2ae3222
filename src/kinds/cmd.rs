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

use serde::{Deserialize, Serialize};

use crate::config::params::{Params, PlainText};
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

    fn check(&self, p: &mut Params<'_>) -> Option<Box<dyn Task>> {
        let params: CmdParams = p.read()?;
        for (i, out) in params.outs.iter().enumerate() {
            if params.outs[..i].contains(out) {
                p.problem(&format!("outs[{i}]"), format!("output `{}` is declared twice", out.0));
            }
            if params.deps.contains(out) {
                p.problem(&format!("outs[{i}]"), format!("`{}` is both a dependency and an output", out.0));
            }
        }
        Some(Box::new(CmdTask { params }))
    }
}

/// A `cmd` stage. Its key holds what a command's output depends on besides its inputs'
/// content: the command, what it writes and its environment. The paths of `deps` are
/// not in it: their content is in the key as inputs.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct CmdParams {
    run: String,
    /// Files and folders it reads, relative to the pipeline file's folder.
    #[serde(default, skip_serializing)]
    deps: Vec<RelPath>,
    /// Files and folders it writes.
    #[serde(default)]
    outs: Vec<RelPath>,
    /// Environment variables it runs with, over the pipeline-wide `env`.
    #[serde(default)]
    env: BTreeMap<String, PlainText>,
}

/// A path relative to the pipeline file's folder, in normal form (`a/./b/` is `a/b`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
struct RelPath(String);

impl TryFrom<String> for RelPath {
    type Error = String;

    fn try_from(p: String) -> Result<RelPath, String> {
        // Most paths are written in normal form already: kept as they are.
        if crate::paths::is_normal_rel(&p) {
            return Ok(RelPath(p));
        }
        normalize_rel(&p).map(RelPath).map_err(|why| format!("path `{p}` {why}"))
    }
}

impl From<RelPath> for String {
    fn from(p: RelPath) -> String {
        p.0
    }
}

#[derive(Debug)]
struct CmdTask {
    params: CmdParams,
}

impl Task for CmdTask {
    fn params(&self) -> crate::key::Params {
        crate::kind::params_json(&self.params)
    }

    fn inputs(&self) -> Vec<Input> {
        self.params.deps.iter().map(|d| Input::Path(d.0.clone())).collect()
    }

    fn workspace_outputs(&self) -> Vec<String> {
        self.params.outs.iter().map(|o| o.0.clone()).collect()
    }

    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageFailure> {
        for RelPath(out) in &self.params.outs {
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
            .envs(self.params.env.iter().map(|(k, v)| (k, &v.0)))
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
        for RelPath(out) in &self.params.outs {
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
