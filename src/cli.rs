//! Command-line arguments, and the one place that turns a command's result into an
//! exit code and an error message.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands;
use crate::error::Error;

#[derive(Parser, Debug)]
#[command(name = "pipe", version, about = "Transfer-learning experiments as declarative, content-hashed pipelines")]
pub struct Cli {
    /// The cache folder (shared between pipelines and people).
    #[arg(long, global = true, env = "PIPE_CACHE", default_value = "cache", value_name = "DIR")]
    pub cache: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the stages whose results are not in the cache.
    Run(commands::run::RunArgs),
    /// Say per stage whether it is cached, must rerun (and why), or waits on another.
    Status(commands::status::StatusArgs),
    /// Show the stage graph.
    Dag(commands::dag::DagArgs),
    /// Print the results table and the paper's findings from the cache, or where one
    /// stage's outputs are.
    Show(commands::show::ShowArgs),
    /// Look after the cache: list, size, verify, garbage-collect.
    #[command(subcommand)]
    Cache(commands::cache::CacheCommand),
    /// Upload the entries the named pipelines reach (or every entry) to a remote cache.
    Push(commands::remote::PushArgs),
    /// Bring from a remote cache what a pipeline (or some of its stages) needs, so that
    /// `pipe run` computes nothing it has.
    Pull(commands::remote::PullArgs),
    /// Compute the stages job files describe, one after another (what a cluster job
    /// runs).
    #[command(hide = true)]
    ExecJob {
        /// The job files the submitting `pipe run` wrote, one per stage.
        #[arg(required = true)]
        specs: Vec<PathBuf>,
    },
}

/// Parse arguments, run the command, print any error; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match dispatch(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{}", e.render());
            e.exit_code()
        }
    }
}

fn dispatch(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Run(a) => commands::run::run(&cli.cache, &a),
        Command::Status(a) => commands::status::status(&cli.cache, &a),
        Command::Dag(a) => commands::dag::dag(&a),
        Command::Show(a) => commands::show::show(&cli.cache, &a),
        Command::Cache(c) => commands::cache::cache(&cli.cache, c),
        Command::Push(a) => commands::remote::push(&cli.cache, &a),
        Command::Pull(a) => commands::remote::pull(&cli.cache, &a),
        Command::ExecJob { specs } => commands::exec_job::exec_job(&cli.cache, &specs),
    }
}
