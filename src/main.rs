//! The `pipe` binary: parse arguments, run, turn the result into an exit code.

#[global_allocator]
static GLOBAL: pipe::alloc::MiMalloc = pipe::alloc::MiMalloc;

fn main() {
    pipe::alloc::keep_freed_memory();
    std::process::exit(pipe::cli::main());
}
