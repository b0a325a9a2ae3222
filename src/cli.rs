//! Command-line arguments, and the one place that turns a command's result into an
//! exit code and an error message.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    Run(RunArgs),
    /// Say per stage whether it is cached, must rerun (and why), or waits on another.
    Status(StatusArgs),
    /// Show the stage graph.
    Dag(DagArgs),
    /// Print the results table and the paper's findings from the cache, or where one
    /// stage's outputs are.
    Show(ShowArgs),
    /// Look after the cache: list, size, verify, garbage-collect.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Upload the entries the named pipelines reach (or every entry) to a remote cache.
    Push(PushArgs),
    /// Bring from a remote cache what a pipeline (or some of its stages) needs, so that
    /// `pipe run` computes nothing it has.
    Pull(PullArgs),
    /// Compute one stage described by a job file (what a cluster job runs).
    #[command(hide = true)]
    ExecJob {
        /// The job file the submitting `pipe run` wrote.
        spec: PathBuf,
    },
}

#[derive(Args, Debug, Clone)]
pub struct PipelineArgs {
    /// The pipeline file (YAML).
    pub file: PathBuf,
    /// Override a value of the file, e.g. `--set training.epochs=4`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Run only these stages (names or matrix groups) and what they need.
    pub stages: Vec<String>,
    /// Core budget: the threads of all running stages add up to at most this
    /// [default: the number of cores]. With `--executor slurm`: how many jobs may be
    /// queued or running at once [default: 100].
    #[arg(short, long)]
    pub jobs: Option<usize>,
    /// Where stages run: `local` (this machine's cores) or `slurm` (one cluster job
    /// per stage; see the README) [default: the file's `executor`, else local].
    #[arg(long, env = "PIPE_EXECUTOR", value_name = "NAME", value_parser = ["local", "slurm"])]
    pub executor: Option<String>,
    /// With `--executor slurm`: submit a job that ended NODE_FAIL, PREEMPTED or
    /// BOOT_FAIL again, up to this many times.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub retries: u32,
    /// Show what would run, run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Recompute this stage (or matrix group) even if cached; repeatable.
    #[arg(long, value_name = "STAGE")]
    pub force: Vec<String>,
    /// Print one JSON object with every stage's outcome.
    #[arg(long)]
    pub json: bool,
    /// A remote cache (`s3://bucket/prefix`, `file:///path` or a folder): a stage it
    /// has is not computed, and its bytes are fetched only when a stage here reads them.
    #[arg(long, env = "PIPE_REMOTE", value_name = "URL")]
    pub remote: Option<String>,
    /// Push each stage's entry to the remote as soon as it is computed.
    #[arg(long, requires = "remote")]
    pub push: bool,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Pipeline files whose current entries to push.
    #[arg(required_unless_present = "all")]
    pub files: Vec<PathBuf>,
    /// Push every entry of the local cache.
    #[arg(long, conflicts_with = "files")]
    pub all: bool,
    /// Overrides applied to every file.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// The remote cache: `s3://bucket/prefix[?endpoint=URL&region=R]`, `file:///path`
    /// or a folder.
    #[arg(long, env = "PIPE_REMOTE", value_name = "URL")]
    pub remote: String,
    /// Print what moved as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Only these stages (names or matrix groups) and what they need.
    pub stages: Vec<String>,
    /// The remote cache (see `pipe push --help`).
    #[arg(long, env = "PIPE_REMOTE", value_name = "URL")]
    pub remote: String,
    /// Print what moved as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Only these stages and what they need.
    pub stages: Vec<String>,
    #[arg(long)]
    pub json: bool,
    /// Also look in this remote cache: a stage it has is `remote`.
    #[arg(long, env = "PIPE_REMOTE", value_name = "URL")]
    pub remote: Option<String>,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// A stage whose outputs to locate (its checkpoint, config, log, metrics).
    pub stage: Option<String>,
    /// Copy the stage's outputs (or the report's files) into this folder.
    #[arg(long, value_name = "DIR")]
    pub export: Option<PathBuf>,
    /// Write the report page (figure, findings, learning curves, stage times) of every
    /// network in the cache to this file.
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,
    /// Bring the named stage's entry from this remote cache first, if it is there and
    /// not here (without a STAGE there is nothing to bring).
    #[arg(long, env = "PIPE_REMOTE", value_name = "URL")]
    pub remote: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DagArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Graphviz dot.
    #[arg(long, conflicts_with = "mermaid")]
    pub dot: bool,
    /// Mermaid flowchart.
    #[arg(long)]
    pub mermaid: bool,
}

#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// List the cache's entries.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// How much space entries and stored outputs take.
    Du {
        #[arg(long)]
        json: bool,
    },
    /// Re-hash every stored output and check every entry.
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Remove what no recorded run and no named pipeline reaches (see `--only`,
    /// `--older-than`, `--max-size` to go further).
    Gc(GcArgs),
}

/// `pipe cache gc`: by default every run recorded in the cache within the retention
/// window is a root, whoever made it; narrowing to the named files is explicit.
#[derive(Args, Debug)]
pub struct GcArgs {
    /// Pipeline files whose current results are kept (besides every recorded run's).
    pub files: Vec<PathBuf>,
    /// Overrides applied to every file.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Keep only what the named files reach: other pipelines' and users' entries go
    /// (listed first; asks on a terminal, needs --yes elsewhere).
    #[arg(long, requires = "files")]
    pub only: bool,
    /// Also remove entries unused for this long, roots included (e.g. 30d, 12h).
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    pub older_than: Option<u64>,
    /// Then evict least recently used entries until the stored objects fit (e.g. 50G).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_size: Option<u64>,
    /// How long a recorded run stays a root (its pipeline's last run stays one while
    /// the file exists).
    #[arg(long, value_name = "AGE", value_parser = parse_age, default_value = "90d", env = "PIPE_RETENTION")]
    pub retention: u64,
    /// Say what would be removed, by owner; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask before `--only` removes other pipelines' entries.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Apply the same rules to this remote cache too, with the roots pushed there.
    #[arg(long, value_name = "URL")]
    pub remote: Option<String>,
}

/// A duration as `90d`, `2w`, `12h`, `30m` or `45s` (a bare number is seconds), in seconds.
pub fn parse_age(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("`{s}` is not an age such as 30d, 12h or 90m"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("`{s}`: the unit must be s, m, h, d or w")),
    };
    Ok(n.saturating_mul(scale))
}

/// A size as `50G`, `500M`, `1.5T`, `100K` or bytes (binary units; a trailing `B` or
/// `iB` is allowed), in bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: f64 = n.parse().map_err(|_| format!("`{s}` is not a size such as 50G or 500M"))?;
    let unit = unit.trim_end_matches("iB").trim_end_matches('B');
    let scale: u64 = match unit.to_ascii_uppercase().as_str() {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("`{s}`: the unit must be K, M, G or T")),
    };
    Ok((n * scale as f64) as u64)
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
        Command::ExecJob { spec } => match crate::engine::job::exec(&cli.cache, &spec) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::failed("the stage failed (see the job's report)")),
            Err(e) => Err(Error::failed(format!("error: {e}"))),
        },
    }
}
