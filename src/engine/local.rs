//! The local executor: each job on its own worker thread, within the scope of one run.

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
}

impl<'scope, 'env> Local<'scope, 'env> {
    pub fn new(scope: &'scope Scope<'scope, 'env>, p: &'env Pipeline, store: &'env Store) -> Self {
        panics::install_hook();
        let (tx, rx) = channel();
        Local { scope, p, store, tx, rx }
    }
}

impl Executor for Local<'_, '_> {
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
        self.rx.recv().expect("the executor holds a sender, so the channel stays open")
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
            });
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        self.send(Err(StageFailure::new("the stage's worker thread ended without a result (it could not start)")));
    }
}
