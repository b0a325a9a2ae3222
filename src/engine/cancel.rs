//! Ctrl-C: the first one asks running stages to stop and nothing new to start; the
//! second one exits at once. Either way the cache stays consistent, because an entry
//! exists only once it is completely published.

use std::sync::atomic::{AtomicBool, Ordering};

pub static CANCEL: AtomicBool = AtomicBool::new(false);

pub fn install_handler() {
    let _ = ctrlc::set_handler(|| {
        if CANCEL.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping: waiting for running stages to end (Ctrl-C again to quit at once)");
    });
}

pub fn cancelled() -> bool {
    CANCEL.load(Ordering::Relaxed)
}
