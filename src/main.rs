//! The `pipe` binary: parse arguments, run, turn the result into an exit code.

fn main() {
    std::process::exit(pipe::cli::main());
}
