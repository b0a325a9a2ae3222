//! A panic inside a stage is that stage's failure, never a hung or crashed run.
//!
//! Stage threads (and the thread pools they start) are named `pipe-stage-N...`. The
//! panic hook records such a thread's message and location instead of printing them;
//! the stage's `catch_unwind` then turns them into a [`StageFailure`] for stage N.
//! Panics anywhere else are printed by the default hook as before.

use std::collections::BTreeMap;
use std::sync::{Mutex, Once};

use crate::kind::StageFailure;

const PREFIX: &str = "pipe-stage-";

/// Per stage thread name: the first panic's message and location.
static RECORDED: Mutex<BTreeMap<String, (String, Option<String>)>> = Mutex::new(BTreeMap::new());

/// The thread name of stage `i`'s worker; its pools append `-pool-J`.
pub fn thread_name(i: usize) -> String {
    format!("{PREFIX}{i}")
}

/// Install the hook (once per process).
pub fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            match thread.name().filter(|n| n.starts_with(PREFIX)) {
                Some(name) => {
                    let owner = name.split("-pool-").next().unwrap_or(name).to_string();
                    let location = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
                    let message = payload_text(info.payload());
                    let mut map = RECORDED.lock().unwrap_or_else(|e| e.into_inner());
                    // The first panic of a stage is the cause; later ones are echoes
                    // of it in other threads.
                    map.entry(owner).or_insert((message, location));
                }
                None => default(info),
            }
        }));
    });
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Forget what an earlier job of stage `i` left recorded (a panic its task caught).
pub fn forget(i: usize) {
    RECORDED.lock().unwrap_or_else(|e| e.into_inner()).remove(&thread_name(i));
}

/// The failure for a panic caught in stage `i`'s worker thread.
pub fn failure(i: usize, payload: &(dyn std::any::Any + Send)) -> StageFailure {
    let recorded = RECORDED.lock().unwrap_or_else(|e| e.into_inner()).remove(&thread_name(i));
    match recorded {
        Some((message, location)) => StageFailure::panicked(&message, location.as_deref()),
        None => StageFailure::panicked(&payload_text(payload), None),
    }
}
