//! The local executor: each job on its own worker thread, within the scope of one run,
//! and the threads of all running jobs within a budget of cores.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::Scope;
use std::time::Instant;

use crate::config::Pipeline;
use crate::engine::cancel::CANCEL;
use crate::engine::execute::execute;
use crate::engine::executor::{Executor, Finished, Job};
use crate::engine::panics;
use crate::kind::StageFailure;
use crate::store::Store;

pub struct Local<'scope, 'env> {
    scope: &'scope Scope<'scope, 'env>,
    p: &'env Pipeline,
    store: &'env Store,
    tx: Sender<Finished>,
    rx: Receiver<Finished>,
    /// Cores not given to a running job.
    free: usize,
}

impl<'scope, 'env> Local<'scope, 'env> {
    /// Runs stages on `cores` cores in all.
    pub fn new(scope: &'scope Scope<'scope, 'env>, p: &'env Pipeline, store: &'env Store, cores: usize) -> Self {
        panics::install_hook();
        let (tx, rx) = channel();
        Local { scope, p, store, tx, rx, free: cores.max(1) }
    }

    /// The next job to finish, if one does within `timeout`.
    pub fn wait_timeout(&mut self, timeout: std::time::Duration) -> Option<Finished> {
        let f = self.rx.recv_timeout(timeout).ok()?;
        self.free += f.threads;
        Some(f)
    }
}

impl Executor for Local<'_, '_> {
    /// A fair share of the free cores (at least one, at most what the task can use).
    fn admit(&mut self, stage: usize, waiting: usize) -> Option<usize> {
        if self.free == 0 {
            return None;
        }
        let want = self.p.stages[stage].task.max_threads().max(1);
        let threads = want.min(self.free.div_ceil(waiting.max(1)).max(1)).min(self.free);
        self.free -= threads;
        Some(threads)
    }

    fn start(&mut self, job: Job) {
        let (p, store) = (self.p, self.store);
        let (stage, threads, key) = (job.stage, job.threads, job.key.clone());
        panics::forget(stage);
        let reply = Reply { tx: Some(self.tx.clone()), stage, threads, key: key.clone(), started: Instant::now() };
        let spawned =
            std::thread::Builder::new().name(panics::thread_name(stage)).spawn_scoped(self.scope, move || {
                let mut reply = reply;
                let result = catch_unwind(AssertUnwindSafe(|| execute(store, p, &job)))
                    .unwrap_or_else(|payload| Err(panics::failure(stage, payload.as_ref())));
                reply.send(result);
            });
        // A thread that cannot start drops its closure, and with it the reply, which
        // then reports the failure.
        drop(spawned);
    }

    fn wait(&mut self) -> Finished {
        let f = self.rx.recv().expect("the executor holds a sender, so the channel stays open");
        self.free += f.threads;
        f
    }

    fn cancel_all(&mut self) {
        CANCEL.store(true, Ordering::SeqCst);
    }
}

/// Sends a job's result exactly once: a worker that ends without sending (its thread
/// could not start, or it unwound past the catch) still reports a failure.
struct Reply {
    tx: Option<Sender<Finished>>,
    stage: usize,
    threads: usize,
    key: crate::key::StageKey,
    started: Instant,
}

impl Reply {
    fn send(&mut self, result: Result<crate::engine::executor::Executed, StageFailure>) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Finished {
                stage: self.stage,
                threads: self.threads,
                key: self.key.clone(),
                seconds: self.started.elapsed().as_secs_f64(),
                result,
                place: None,
            });
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        self.send(Err(StageFailure::new("the stage's worker thread ended without a result (it could not start)")));
    }
}
