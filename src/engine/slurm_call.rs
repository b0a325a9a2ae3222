//! Calling Slurm's commands (`sbatch`, `sacct`, `squeue`, `scontrol`, `scancel`) when
//! the controller may be busy. A loaded slurmctld answers "Socket timed out" or
//! "Resource temporarily unavailable" for a few seconds and then works again; such an
//! answer is waited out with exponential backoff, up to a limit. Any other failure is a
//! definite answer (an invalid partition, a limit, bad arguments) and is returned at
//! once, in Slurm's own words.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::engine::cancel::cancelled;

/// How long a busy Slurm is waited for, in all, before a call gives up.
pub const DEFAULT_BUSY_FOR: Duration = Duration::from_secs(300);
/// The first wait after a busy answer; each next one is twice as long, up to
/// [`LONGEST_WAIT`].
const FIRST_WAIT: Duration = Duration::from_secs(1);
const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// Why a Slurm command gave no answer to use.
#[derive(Debug)]
pub enum CallError {
    /// The command could not be started (not on PATH).
    Spawn(std::io::Error),
    /// Slurm said no: its message.
    Refused(String),
    /// Slurm was still busy when the time to wait for it was up (or the run was
    /// interrupted meanwhile): its last message.
    Busy { message: String, waited: Duration },
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Spawn(e) => write!(f, "cannot run it: {e}"),
            CallError::Refused(message) => f.write_str(message),
            CallError::Busy { message, waited } => {
                write!(f, "{message} (Slurm was still busy after {}s of retries)", waited.as_secs())
            }
        }
    }
}

impl std::error::Error for CallError {}

/// Whether a Slurm command's message says that the controller is busy or out of reach
/// for now, rather than that the request is wrong.
pub fn transient(message: &str) -> bool {
    const BUSY: [&str; 13] = [
        "socket timed out",
        "resource temporarily unavailable",
        "unable to contact slurm controller",
        "connection refused",
        "connection timed out",
        "connection reset",
        "zero bytes were transmitted or received",
        "communication connection failure",
        "backup controller in standby mode",
        "transport endpoint is not connected",
        "temporarily unable to accept job",
        "not responding",
        "try again later",
    ];
    let m = message.to_lowercase();
    BUSY.iter().any(|b| m.contains(b))
}

/// Run `program` with `args`; a busy answer is retried after 1, 2, 4 ... seconds (at
/// most 30 between tries) for up to `busy_for` in all, saying so through `say`. The
/// command's output when it succeeded.
pub fn call(program: &str, args: &[String], busy_for: Duration, say: &dyn Fn(String)) -> Result<Output, CallError> {
    let started = Instant::now();
    let mut wait = FIRST_WAIT;
    loop {
        let out = Command::new(program).args(args).output().map_err(CallError::Spawn)?;
        if out.status.success() {
            return Ok(out);
        }
        let message = message(program, &out);
        if !transient(&message) {
            return Err(CallError::Refused(message));
        }
        let waited = started.elapsed();
        if waited + wait > busy_for || cancelled() {
            return Err(CallError::Busy { message, waited });
        }
        say(format!("slurm busy, retrying in {}s ({message})", wait.as_secs_f64().round() as u64));
        sleep_unless_cancelled(wait);
        wait = (wait * 2).min(LONGEST_WAIT);
    }
}

/// What a failed command said: its stderr, else its stdout, else its exit status.
fn message(program: &str, out: &Output) -> String {
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    let (err, std) = (text(&out.stderr), text(&out.stdout));
    if !err.is_empty() {
        err
    } else if !std.is_empty() {
        std
    } else {
        format!("{program} failed ({})", out.status)
    }
}

fn sleep_unless_cancelled(d: Duration) {
    let until = Instant::now() + d;
    while !cancelled() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_controller_is_told_from_a_refusal() {
        for busy in [
            "sbatch: error: Socket timed out on send/recv operation",
            "sbatch: error: Batch job submission failed: Resource temporarily unavailable",
            "squeue: error: Unable to contact slurm controller (connect failure)",
            "sacct: error: slurm_persist_conn_open_without_init: failed to open persistent connection to \
             host:localhost:6819: Connection refused",
            "sbatch: error: Batch job submission failed: Slurm temporarily unable to accept job, sleeping and \
             retrying",
        ] {
            assert!(transient(busy), "{busy}");
        }
        for refused in [
            "sbatch: error: invalid partition specified: x",
            "sbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job submit limit, \
             user's size and/or time limits)",
            "sbatch: error: Invalid --time specification",
            "sbatch: unrecognized option '--bogus'",
            "sacct: error: Slurm accounting storage is disabled",
        ] {
            assert!(!transient(refused), "{refused}");
        }
    }

    #[test]
    fn a_busy_answer_is_retried_and_a_refusal_returned_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("count");
        // Busy twice, then fine.
        let script = format!(
            "n=$(cat {c} 2>/dev/null || echo 0); echo $((n+1)) > {c}; \
             if [ $n -lt 2 ]; then echo 'sbatch: error: Socket timed out on send/recv operation' >&2; exit 1; fi; \
             echo 42",
            c = count.display()
        );
        let said = std::sync::Mutex::new(Vec::new());
        let say = |s: String| said.lock().unwrap().push(s);
        let args = vec!["-c".to_string(), script];
        let t0 = Instant::now();
        let out = call("sh", &args, Duration::from_secs(10), &say).unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
        assert!(t0.elapsed() >= Duration::from_secs(3), "waited 1s, then 2s");
        let said = said.into_inner().unwrap();
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[0].starts_with("slurm busy, retrying in 1s (sbatch: error: Socket timed out"), "{said:?}");
        assert!(said[1].starts_with("slurm busy, retrying in 2s"), "{said:?}");
        // Busy for longer than it may wait: the last message, and how long it waited.
        std::fs::write(&count, "-100").unwrap();
        match call("sh", &args, Duration::from_millis(1500), &|_| {}) {
            Err(CallError::Busy { message, waited }) => {
                assert!(message.contains("Socket timed out") && waited >= Duration::from_secs(1), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // A refusal: at once.
        let refuse = vec!["-c".into(), "echo 'sbatch: error: invalid partition specified: x' >&2; exit 1".into()];
        let t0 = Instant::now();
        match call("sh", &refuse, Duration::from_secs(10), &|_| panic!("not retried")) {
            Err(CallError::Refused(m)) => assert_eq!(m, "sbatch: error: invalid partition specified: x"),
            other => panic!("{other:?}"),
        }
        assert!(t0.elapsed() < Duration::from_secs(1));
    }
}
