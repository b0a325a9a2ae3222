//! The allocator of pipe's binaries: mimalloc, told to keep freed memory.
//!
//! Training allocates and frees the same large buffers (im2col columns, activations,
//! gradients) every batch. glibc's malloc hands them back to the kernel and faults them
//! in again, zeroed, on the next batch (~360k page faults for 2,800 images), and
//! mimalloc's default delayed purge does the same every 10 ms; kept, they cost nothing
//! after the first batch. Measured on the reference network (`cargo bench --bench
//! train`): +15-20 % training images/s with 1 thread and +25-40 % with 2 threads, for
//! ~30-100 MB more peak memory.
//!
//! A binary opts in with
//! `#[global_allocator] static GLOBAL: pipe::alloc::MiMalloc = pipe::alloc::MiMalloc;`
//! and calls [`keep_freed_memory`] first thing in `main`.

pub use mimalloc::MiMalloc;

unsafe extern "C" {
    // From libmimalloc-sys, which links mimalloc; its typed binding needs the crate's
    // `extended` feature, which brings nothing else we use.
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (the same in v2 and v3).
const PURGE_DELAY: std::ffi::c_int = 15;

/// Freed memory stays with the process instead of going back to the OS. Call before
/// starting threads.
pub fn keep_freed_memory() {
    // SAFETY: stores one integer option in mimalloc's option table; no memory of ours
    // is touched, and mimalloc reads options atomically.
    unsafe { mi_option_set(PURGE_DELAY, -1) };
}
