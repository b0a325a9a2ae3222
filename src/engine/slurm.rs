//! The Slurm executor: each stage that must run becomes one job, submitted with
//! `sbatch` when its inputs are ready; stages ready together that ask for the same
//! resources become the tasks of one job array. A job (or task) runs this same `pipe`
//! binary on its one stage against the same cache (`pipe exec-job`, see [`super::job`]), so its entry is
//! the one a local run would publish. Slurm is the engine: no daemon, no protocol of our
//! own; states come from `sacct` where accounting is on, else `squeue --states=all`
//! and `scontrol show job`; Ctrl-C cancels with `scancel`. A busy controller is waited
//! out ([`super::slurm_call`]): a submission is retried, a poll skipped.
//!
//! Light stages (reading a dataset, splitting it, a report) run in this process by
//! default: a job for them would spend longer in the queue than working.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::Pipeline;
use crate::config::pipeline::Stage;
use crate::config::resources::{Pack, Resources, slurm_seconds};
use crate::engine::cancel::{CANCEL, cancelled};
use crate::engine::executor::{ExecError, Executed, Executor, Finished, Job, Place};
use crate::engine::job::{JobReport, JobSpec};
use crate::engine::local::Local;
use crate::engine::run::{RunError, RunOptions, RunSummary, run_with};
use crate::engine::slurm_call::{CallError, call};
use crate::graph::Source;
use crate::key::StageKey;
use crate::kind::{FailureClass, StageFailure, log_tail};
use crate::store::{Lookup, Store};

/// How a Slurm run behaves beyond the pipeline's `resources`.
#[derive(Debug, Clone)]
pub struct SlurmSettings {
    /// Jobs queued or running at once.
    pub max_jobs: usize,
    /// Cores for the stages that run in this process.
    pub local_cores: usize,
    /// How often a job ended by NODE_FAIL, PREEMPTED or BOOT_FAIL is submitted again.
    pub retries: u32,
    /// How often Slurm is asked for the jobs' states (job reports on the shared
    /// filesystem are looked at more often).
    pub poll: Duration,
    /// The run's `--set` overrides, passed on to every job.
    pub sets: Vec<String>,
    /// How long a Slurm command that says the controller is busy is retried.
    pub busy_for: Duration,
}

/// Run the pipeline with its heavy stages as Slurm jobs.
pub fn run(
    p: &Pipeline,
    store: &Store,
    opts: &RunOptions,
    books: crate::engine::plan::Books,
    settings: SlurmSettings,
) -> Result<RunSummary, RunError> {
    std::thread::scope(|scope| {
        let local = Local::new(scope, p, store, settings.local_cores);
        let mut slurm = Slurm::new(local, p, store, settings)?;
        run_with(p, store, opts, books, &mut slurm)
    })
}

/// How often report files are looked for, and how long one tick of waiting is.
const TICK: Duration = Duration::from_millis(200);
/// How long a job Slurm calls COMPLETED may take to show its report (a shared
/// filesystem's attribute cache).
const REPORT_GRACE: Duration = Duration::from_secs(30);
/// How long cancelled jobs may take to be reported ended before the run stops
/// waiting for them.
const CANCEL_GRACE: Duration = Duration::from_secs(30);
/// How long a stage ready to be submitted waits for others to join it in one job
/// array. Stages that become ready together (every transfer of one base, the seeds of a
/// matrix) reach the executor in the same pass of the scheduler, so they would share an
/// array with no wait at all; one second more also catches the stages released by jobs
/// that end within that second (the other base of a pair), for a delay that is small
/// next to any queue's.
const ARRAY_WINDOW: Duration = Duration::from_secs(1);
/// Lines of a failed job's output shown with its error.
const TAIL: usize = 20;

pub struct Slurm<'scope, 'env> {
    local: Local<'scope, 'env>,
    local_running: usize,
    p: &'env Pipeline,
    store: &'env Store,
    settings: SlurmSettings,
    /// This binary, as the jobs run it.
    exe: PathBuf,
    /// The cache, absolute, as the jobs open it.
    cache: PathBuf,
    /// This run's job files: `<cache>/jobs/<run>/`.
    dir: PathBuf,
    submitted: usize,
    /// Jobs waiting [`ARRAY_WINDOW`] for others to be submitted with.
    pending: Vec<Pending>,
    /// The output files of jobs in which a stage failed: kept for the user to read.
    kept_out: BTreeSet<PathBuf>,
    /// The seconds each stage that runs as a job is expected to take, where known
    /// (see [`expected_seconds`]).
    expected: BTreeMap<usize, f64>,
    jobs: Vec<Submitted>,
    /// Jobs that ended (or could not be submitted), to hand to the scheduler.
    ended: VecDeque<Finished>,
    states: StateQuery,
    last_poll: Option<Instant>,
    /// Slurm was too busy to answer the last poll (said once per spell).
    poll_busy: bool,
    cancelling: Option<Instant>,
}

struct Pending {
    job: Job,
    since: Instant,
}

struct Submitted {
    id: String,
    stage: usize,
    threads: usize,
    key: StageKey,
    submitted: Instant,
    files: JobFiles,
    state: String,
    /// The node it runs on, once Slurm says.
    node: Option<String>,
    attempts: u32,
    /// Run one after another with other stages in one job (or array task).
    packed: bool,
    progress: Box<dyn Fn(String) + Send + Sync>,
    announce: Box<dyn Fn(String) + Send + Sync>,
    /// Since when the job has been waited for after it ended: its report, or the entry
    /// its report vouches for, not yet visible here.
    waiting_since: Option<Instant>,
}

/// The files of one job, side by side in the run's folder.
#[derive(Clone)]
struct JobFiles {
    spec: PathBuf,
    script: PathBuf,
    /// What Slurm captures of the job's stdout and stderr.
    out: PathBuf,
    /// The stage's own output.
    log: PathBuf,
    report: PathBuf,
}

impl JobFiles {
    fn all(&self) -> [&Path; 5] {
        [&self.spec, &self.script, &self.out, &self.log, &self.report]
    }
}

/// Which Slurm command tells job states here.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StateQuery {
    /// Not tried yet.
    Unknown,
    Sacct,
    /// Accounting is off: `squeue --states=all`, then `scontrol show job`.
    Squeue,
}

impl<'scope, 'env> Slurm<'scope, 'env> {
    pub fn new(
        local: Local<'scope, 'env>,
        p: &'env Pipeline,
        store: &'env Store,
        settings: SlurmSettings,
    ) -> Result<Self, RunError> {
        let exe = std::env::current_exe().map_err(|e| RunError::Executor(ExecError::NoBinary(e)))?;
        let cache = std::path::absolute(store.root()).unwrap_or_else(|_| store.root().to_path_buf());
        let run = format!(
            "{}-{}",
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            std::process::id()
        );
        let dir = cache.join("jobs").join(run);
        Ok(Slurm {
            local,
            local_running: 0,
            p,
            store,
            settings,
            exe,
            cache,
            dir,
            submitted: 0,
            pending: Vec::new(),
            expected: BTreeMap::new(),
            kept_out: BTreeSet::new(),
            jobs: Vec::new(),
            ended: VecDeque::new(),
            states: StateQuery::Unknown,
            last_poll: None,
            poll_busy: false,
            cancelling: None,
        })
    }

    /// Whether stage `i` runs in this process rather than as a job.
    fn runs_here(&self, i: usize) -> bool {
        let s = &self.p.stages[i];
        s.resources.local.unwrap_or_else(|| s.task.light())
    }

    /// Inputs only the remote cache has are fetched before the job is submitted: the
    /// job reads the cache the nodes share. `None` when that failed (the job has ended).
    fn fetch_inputs(&mut self, job: Job) -> Option<Job> {
        if let Some(remote) = &job.remote {
            let reads = self.p.stages[job.stage].task.reads();
            let wanted = |name: &str| reads.is_none_or(|r| r.contains(&name));
            let files: Vec<_> = job
                .upstream
                .values()
                .flat_map(|o| o.iter())
                .filter(|(name, _)| wanted(name))
                .flat_map(|(_, o)| &o.content.files)
                .collect();
            if let Err(e) = remote.fetch(self.store, &files, &crate::remote::Transfer::quiet()) {
                let failure = StageFailure::caused("cannot fetch an input from the remote cache", e);
                self.ended.push_back(Finished {
                    stage: job.stage,
                    threads: job.threads,
                    key: job.key,
                    seconds: 0.0,
                    result: Err(failure.with_class(FailureClass::Io)),
                    place: None,
                });
                return None;
            }
        }
        Some(job)
    }

    /// Submit the jobs that waited long enough for others to join them: those that
    /// ask for the same resources together, as one job array. Once the run is
    /// interrupted, none is submitted any more.
    fn flush(&mut self) {
        let Some(first) = self.pending.first() else { return };
        if cancelled() {
            for job in std::mem::take(&mut self.pending) {
                let failure = StageFailure::interrupted().prefixed("not submitted");
                self.ended.push_back(Finished {
                    stage: job.job.stage,
                    threads: job.job.threads,
                    key: job.job.key,
                    seconds: 0.0,
                    result: Err(failure),
                    place: None,
                });
            }
            return;
        }
        if first.since.elapsed() < ARRAY_WINDOW {
            return;
        }
        let mut groups: BTreeMap<Vec<String>, Vec<Job>> = BTreeMap::new();
        for p in std::mem::take(&mut self.pending) {
            let args = sbatch_args(&self.p.stages[p.job.stage], p.job.threads);
            groups.entry(args).or_default().push(p.job);
        }
        for (_, mut jobs) in groups {
            // Slurm starts an array's tasks in index order: the stages others wait for
            // first (the bases before the baselines that nothing reads).
            jobs.sort_by_key(|j| std::cmp::Reverse(self.p.dag.downstream[j.stage].len()));
            let packs = self.packs(jobs);
            self.submit(packs);
        }
    }

    /// Ready jobs of one request as packs, one per job (or array task). A stage's
    /// expected time is what was recorded, else its kind's estimate from the sizes of
    /// its inputs, else [`SHORT_GUESS`] for a kind that calls it short. A stage whose
    /// expected time is unknown, over half the pack length, or `pack: false` is alone; the
    /// others spread over as few packs as fit the pack length, each about as long as
    /// the others (longest first onto the least loaded).
    fn packs(&self, jobs: Vec<Job>) -> Vec<Vec<Job>> {
        let mut alone = Vec::new();
        let mut short = Vec::new();
        for job in jobs {
            let r = &self.p.stages[job.stage].resources;
            let Pack::Upto(secs) = r.pack() else {
                alone.push(vec![job]);
                continue;
            };
            // A pack stays well inside the job's time limit, whatever the pack length.
            let time = r.time.as_deref().and_then(slurm_seconds).map_or(f64::INFINITY, |t| 0.8 * t as f64);
            let limit = (secs as f64).min(time);
            let short_kind = || self.p.stages[job.stage].task.short().then_some(SHORT_GUESS);
            let expected = self.expected.get(&job.stage).copied().or_else(|| self.estimate(&job)).or_else(short_kind);
            match expected {
                Some(t) if t <= limit / 2.0 => short.push((t, limit, job)),
                _ => alone.push(vec![job]),
            }
        }
        if short.is_empty() {
            return alone;
        }
        let limit = short.iter().map(|(_, l, ..)| *l).fold(f64::INFINITY, f64::min);
        let times: Vec<f64> = short.iter().map(|(t, ..)| *t).collect();
        let mut jobs: Vec<Option<Job>> = short.into_iter().map(|(.., job)| Some(job)).collect();
        for mut members in spread(&times, limit) {
            // Within a job, the stages in the order they came: those others wait for first.
            members.sort_unstable();
            alone.push(members.into_iter().filter_map(|k| jobs[k].take()).collect());
        }
        alone
    }

    /// A stage's time from the work its kind expects, for the sizes of its inputs' files,
    /// at [`FLOPS_PER_CPU`] on each of its CPUs.
    fn estimate(&self, job: &Job) -> Option<f64> {
        let i = job.stage;
        let size = |role: &str, file: &str| -> Option<u64> {
            let input = self.p.dag.inputs[i].iter().find(|r| r.role == role)?;
            let (stage, output) = match &input.source {
                Source::Stage { stage, output } => (*stage, output.as_deref()),
                Source::Output(..) | Source::Workspace(_) => return None,
            };
            let produced = job.upstream.get(&stage)?;
            // One output of the stage, or the whole stage (`file` then names its output).
            let (content, path) = match output {
                Some(o) => (&produced.get(o)?.content, file.to_string()),
                None => {
                    let (o, rest) = file.split_once('/')?;
                    (&produced.get(o)?.content, rest.to_string())
                }
            };
            content.files.iter().find(|f| f.path == path).map(|f| f.size)
        };
        let flops = self.p.stages[i].task.expected_flops(&size)?;
        Some(flops / (FLOPS_PER_CPU * job.threads.max(1) as f64))
    }

    /// Write the jobs' files and submit them: one job, or a job array whose task `t`
    /// computes the stages of `packs[t]`, one after another.
    fn submit(&mut self, packs: Vec<Vec<Job>>) {
        self.submitted += 1;
        let n = self.submitted;
        let array = packs.len() > 1;
        let count: usize = packs.iter().map(Vec::len).sum();
        let files = self.job_files(n, &packs);
        let mut written = std::fs::create_dir_all(&self.dir);
        for (job, files) in packs.iter().flatten().zip(&files) {
            let spec = self.spec(job, files);
            written = written
                .and_then(|()| std::fs::write(&files.spec, serde_json::to_vec_pretty(&spec).expect("plain data")));
        }
        let first = &packs[0][0];
        let groups: BTreeSet<&str> = packs.iter().flatten().map(|j| self.p.stages[j.stage].group.as_str()).collect();
        let name = if count > 1 {
            groups.into_iter().collect::<Vec<_>>().join("+")
        } else {
            self.p.stages[first.stage].name.clone()
        };
        let script = self.dir.join(format!("{n:05}.sh"));
        let text = self.script(&name, &packs, &files);
        let out = if array { self.dir.join(format!("{n:05}_%a.out")) } else { files[0].out.clone() };
        let array_arg = array.then(|| format!("--array=0-{}%{}", packs.len() - 1, self.settings.max_jobs.max(1)));
        let written = written.and_then(|()| std::fs::write(&script, text));
        let submitted = match written {
            Ok(()) => {
                let (out, extra) = (out.display().to_string(), Vec::from_iter(array_arg));
                self.sbatch(first.stage, first.threads, &name, &script, &out, &extra, &*first.announce)
            }
            Err(e) => Err(StageFailure::caused(format!("cannot write the job files in {}", self.dir.display()), e)),
        };
        // Slurm keeps its own copy of the script once sbatch returns.
        let _ = std::fs::remove_file(&script);
        let mut files = files.into_iter();
        for (t, pack) in packs.into_iter().enumerate() {
            let packed = pack.len() > 1;
            for job in pack {
                let files = files.next().expect("one set of files per stage");
                match &submitted {
                    Ok(id) => {
                        let id = if array { format!("{id}_{t}") } else { id.clone() };
                        self.track(id, job, files, packed);
                    }
                    Err(failure) => {
                        remove_files(&files, false);
                        self.ended.push_back(Finished {
                            stage: job.stage,
                            threads: job.threads,
                            key: job.key,
                            seconds: 0.0,
                            result: Err(StageFailure::relayed(failure.chain(), failure.tail.clone(), failure.class)),
                            place: None,
                        });
                    }
                }
            }
        }
    }

    /// The files of submission `n`'s stages, in pack order. A stage's output file is
    /// its job's (an array task's), shared by the stages packed with it.
    fn job_files(&self, n: usize, packs: &[Vec<Job>]) -> Vec<JobFiles> {
        let single = packs.len() == 1 && packs[0].len() == 1;
        let mut files = Vec::new();
        for (t, pack) in packs.iter().enumerate() {
            let out = match packs.len() {
                1 => self.dir.join(format!("{n:05}.out")),
                _ => self.dir.join(format!("{n:05}_{t}.out")),
            };
            for _ in pack {
                let base = if single { format!("{n:05}") } else { format!("{n:05}_{}", files.len()) };
                let at = |ext: &str| self.dir.join(format!("{base}.{ext}"));
                let out = out.clone();
                files.push(JobFiles {
                    spec: at("json"),
                    script: at("sh"),
                    out,
                    log: at("log"),
                    report: at("report.json"),
                });
            }
        }
        files
    }

    /// The script of a submission: `exec-job` with the stages of the one job, or of
    /// the array task of its index.
    fn script(&self, name: &str, packs: &[Vec<Job>], files: &[JobFiles]) -> String {
        let exec = format!(
            "exec {} --cache {} exec-job",
            quote(&self.exe.to_string_lossy()),
            quote(&self.cache.to_string_lossy())
        );
        let mut specs = files.iter().map(|f| quote(&f.spec.to_string_lossy()));
        let mut lines: Vec<String> = packs
            .iter()
            .map(|pack| {
                let args: Vec<String> = specs.by_ref().take(pack.len()).collect();
                format!("{exec} {}", args.join(" "))
            })
            .collect();
        let count: usize = packs.iter().map(Vec::len).sum();
        let (name, file) = (comment(name), comment(&self.p.file.display().to_string()));
        let head = format!("#!/bin/sh\n# pipe: {name}: {count} stage(s) of {file}\n");
        if packs.len() == 1 {
            return format!("{head}{}\n", lines.remove(0));
        }
        let cases: String = lines.iter().enumerate().map(|(t, line)| format!("{t}) {line} ;;\n")).collect();
        format!(
            "{head}case \"$SLURM_ARRAY_TASK_ID\" in\n{cases}esac\necho \"no stage for array task $SLURM_ARRAY_TASK_ID\" >&2\nexit 1\n"
        )
    }

    /// A submitted job, followed from now on by the poll.
    fn track(&mut self, id: String, job: Job, files: JobFiles, packed: bool) {
        let name = &self.p.stages[job.stage].name;
        let how = if packed { "packed in slurm job" } else { "slurm job" };
        (job.announce)(format!("{:>7} {name} ({how} {id})", "queued"));
        (job.progress)(format!("{how} {id} PENDING"));
        self.jobs.push(Submitted {
            id,
            stage: job.stage,
            threads: job.threads,
            key: job.key,
            submitted: Instant::now(),
            files,
            state: "PENDING".into(),
            node: None,
            attempts: 1,
            packed,
            progress: job.progress,
            announce: job.announce,
            waiting_since: None,
        });
    }

    /// What the job computing `job` reads.
    fn spec(&self, job: &Job, files: &JobFiles) -> JobSpec {
        let upstream: BTreeMap<String, _> =
            job.upstream.iter().map(|(u, produced)| (self.p.stages[*u].name.clone(), produced.clone())).collect();
        let r = &self.p.stages[job.stage].resources;
        JobSpec {
            pipeline: self.p.file.clone(),
            sets: self.settings.sets.clone(),
            stage: self.p.stages[job.stage].name.clone(),
            key: job.key.clone(),
            upstream,
            threads: job.threads,
            force: job.force,
            log: files.log.clone(),
            report: files.report.clone(),
            asked: Some(crate::store::Asked { cpus: job.threads as u32, mem: r.mem.clone(), time: r.time.clone() }),
        }
    }

    /// The script of a job that computes one stage.
    fn single_script(&self, name: &str, files: &JobFiles) -> String {
        format!(
            "#!/bin/sh\n# pipe: stage {} of {}\nexec {} --cache {} exec-job {}\n",
            comment(name),
            comment(&self.p.file.display().to_string()),
            quote(&self.exe.to_string_lossy()),
            quote(&self.cache.to_string_lossy()),
            quote(&files.spec.to_string_lossy()),
        )
    }

    /// `sbatch --parsable`: the job id, or sbatch's own message.
    /// `extra`: `--array`, `--exclude`.
    #[allow(clippy::too_many_arguments)]
    fn sbatch(
        &self,
        stage: usize,
        threads: usize,
        name: &str,
        script: &Path,
        out: &str,
        extra: &[String],
        say: &dyn Fn(String),
    ) -> Result<String, StageFailure> {
        let mut args = vec!["--parsable".to_string()];
        args.extend(extra.iter().cloned());
        // A requeued job would run beside the one pipe submits again (--retries).
        args.push("--no-requeue".into());
        args.push(format!("--job-name=pipe:{name}"));
        args.push(format!("--output={out}"));
        args.push(format!("--chdir={}", self.p.workspace.display()));
        args.extend(sbatch_args(&self.p.stages[stage], threads));
        args.push(script.to_string_lossy().into_owned());
        let out = match call("sbatch", &args, self.settings.busy_for, say) {
            Ok(out) => out,
            Err(CallError::Spawn(e)) => return Err(StageFailure::caused("cannot run sbatch", e)),
            Err(CallError::Refused(why)) => return Err(StageFailure::new(format!("sbatch refused the job: {why}"))),
            Err(busy) => return Err(StageFailure::new(format!("sbatch could not submit the job: {busy}"))),
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let id = stdout.trim().split(';').next().unwrap_or_default().to_string();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
            return Err(StageFailure::new(format!("sbatch gave no job id: {}", stdout.trim())));
        }
        Ok(id)
    }

    /// Look at every job: its report on the shared filesystem, and (every `poll`)
    /// what Slurm says of it. Ended jobs move to `ended`.
    fn check(&mut self) {
        let ask_slurm = self.last_poll.is_none_or(|t| t.elapsed() >= self.poll_interval());
        let states = if ask_slurm && !self.jobs.is_empty() {
            self.last_poll = Some(Instant::now());
            self.poll()
        } else {
            BTreeMap::new()
        };
        let mut k = 0;
        while k < self.jobs.len() {
            let report = JobReport::read(&self.jobs[k].files.report);
            // An interrupted job's report waits for Slurm to say why (TIMEOUT, CANCELLED).
            let trusted = match &report {
                Some(JobReport::Ok { .. }) => true,
                Some(JobReport::Failed { class, .. }) => *class != FailureClass::Interrupted,
                None => false,
            };
            // A shared filesystem may show the report before the entry it vouches for.
            if trusted && matches!(report, Some(JobReport::Ok { .. })) && !self.entry_visible(k) {
                k += 1;
                continue;
            }
            if trusted {
                let job = self.jobs.remove(k);
                let finished = self.finish_from_report(job, report.expect("trusted"));
                self.ended.push_back(finished);
                continue;
            }
            if let Some(state) = states.get(&self.jobs[k].id).cloned()
                && let Some(finished) = self.on_state(k, state)
            {
                self.ended.push_back(finished);
                continue;
            }
            k += 1;
        }
    }

    /// Whether job `k`'s entry can be seen here, or it has been waited for long enough
    /// (then its report is taken as it is, and a missing entry said plainly).
    fn entry_visible(&mut self, k: usize) -> bool {
        let digest = self.jobs[k].key.digest();
        if matches!(self.store.lookup(&digest), Ok(Lookup::Hit(_))) {
            return true;
        }
        let since = *self.jobs[k].waiting_since.get_or_insert_with(Instant::now);
        since.elapsed() >= REPORT_GRACE
    }

    fn poll_interval(&self) -> Duration {
        if self.cancelling.is_some() { Duration::from_millis(500) } else { self.settings.poll }
    }

    /// Job `k` is in `state`: note a change, or end it. `None` while it goes on.
    fn on_state(&mut self, k: usize, seen: JobState) -> Option<Finished> {
        let state = seen.state.as_str();
        let job = &mut self.jobs[k];
        if seen.node.is_some() {
            job.node = seen.node.clone();
        }
        if !is_end(state) {
            if job.state != state {
                job.state = state.to_string();
                let how = if job.packed { "packed in slurm job" } else { "slurm job" };
                (job.progress)(format!("{how} {} {state}", job.id));
                if state == "RUNNING" {
                    let name = &self.p.stages[job.stage].name;
                    (job.announce)(format!("{:>7} {name} ({how} {})", "running", job.id));
                }
            }
            return None;
        }
        let retry = matches!(state, "NODE_FAIL" | "PREEMPTED" | "BOOT_FAIL");
        if retry && job.attempts <= self.settings.retries && self.cancelling.is_none() {
            let (stage, threads) = (job.stage, job.threads);
            let name = self.p.stages[stage].name.clone();
            // A job of its own from now on, with an output file of its own.
            if job.packed {
                job.packed = false;
                job.files.out = job.files.spec.with_extension("retry.out");
            }
            let files = job.files.clone();
            let failed_node = job.node.take();
            let _ = std::fs::remove_file(&files.report);
            // A job of its own (an array task's script runs the stage of its index).
            let out = files.out.display().to_string();
            let _ = std::fs::write(&files.script, self.single_script(&name, &files));
            // Away from the node that failed, unless that leaves the job nowhere to run
            // (a partition of one node): then wherever Slurm puts it.
            let say = &*self.jobs[k].announce;
            let submit = |extra: &[String]| self.sbatch(stage, threads, &name, &files.script, &out, extra, say);
            let resubmitted = match failed_node.as_deref() {
                Some(node) => submit(&[format!("--exclude={node}")]).or_else(|_| submit(&[])),
                None => submit(&[]),
            };
            match resubmitted {
                Ok(id) => {
                    let job = &mut self.jobs[k];
                    let on = failed_node.map(|n| format!(" on {n}")).unwrap_or_default();
                    (job.announce)(format!(
                        "{:>7} {name} (slurm job {} ended {state}{on}; now job {id})",
                        "retry", job.id
                    ));
                    job.id = id;
                    job.attempts += 1;
                    job.state = "PENDING".into();
                    job.waiting_since = None;
                    return None;
                }
                Err(failure) => {
                    let job = self.jobs.remove(k);
                    return Some(self.finish(job, Err(failure), None));
                }
            }
        }
        // Its report is on its way (a shared filesystem may show it late); a job of
        // packed stages says FAILED when one of them failed, each with its report.
        if state == "COMPLETED" || (state == "FAILED" && job.packed) {
            let first = *job.waiting_since.get_or_insert_with(Instant::now);
            if first.elapsed() < REPORT_GRACE {
                return None;
            }
        }
        let job = self.jobs.remove(k);
        let failure = self.ended_failure(&job, state);
        Some(self.finish(job, Err(failure), None))
    }

    /// Why a job that left no usable report ended, in words, with its last lines.
    fn ended_failure(&self, job: &Submitted, state: &str) -> StageFailure {
        let r = &self.p.stages[job.stage].resources;
        let id = &job.id;
        let what = match state {
            "CANCELLED" if self.cancelling.is_some() => {
                return StageFailure::interrupted().prefixed(&format!("slurm job {id} CANCELLED"));
            }
            "CANCELLED" => format!("slurm job {id} was CANCELLED (by scancel or the cluster)"),
            "TIMEOUT" => format!(
                "slurm job {id} hit its time limit (TIMEOUT; resources.time is {})",
                match r.time.as_deref() {
                    Some(t) if t.bytes().all(|b| b.is_ascii_digit()) => format!("{t} minute(s)"),
                    Some(t) => t.to_string(),
                    None => "the partition's default".into(),
                }
            ),
            "OUT_OF_MEMORY" => format!(
                "slurm job {id} ran out of memory (OUT_OF_MEMORY; resources.mem is {})",
                r.mem.as_deref().unwrap_or("the partition's default")
            ),
            "NODE_FAIL" | "PREEMPTED" | "BOOT_FAIL" => format!(
                "slurm job {id} ended {state}{} after {} attempt(s) ({})",
                job.node.as_deref().map(|n| format!(" on {n}")).unwrap_or_default(),
                job.attempts,
                match self.settings.retries {
                    0 => "`--retries N` submits such a job again".to_string(),
                    n => format!("--retries {n}"),
                }
            ),
            "DEADLINE" => format!("slurm job {id} missed its deadline (DEADLINE)"),
            GONE => format!("slurm job {id} is no longer known to Slurm, and left no report"),
            "COMPLETED" => format!(
                "slurm job {id} COMPLETED without a report at {} (is the cache on a filesystem the nodes share?)",
                job.files.report.display()
            ),
            other => format!("slurm job {id} ended {other}"),
        };
        let mut tail = log_tail(&job.files.log, TAIL);
        if tail.is_empty() {
            tail = log_tail(&job.files.out, TAIL);
        }
        StageFailure::with_tail(format!("{what}; its output: {}", job.files.out.display()), tail)
    }

    /// A job's own report: its entry, or its failure.
    fn finish_from_report(&mut self, job: Submitted, report: JobReport) -> Finished {
        match report {
            JobReport::Ok { ran, seconds } => {
                let digest = job.key.digest();
                let result = match self.store.lookup(&digest) {
                    Ok(Lookup::Hit(m)) if ran => Ok(Executed::Ran(*m)),
                    Ok(Lookup::Hit(m)) => Ok(Executed::Cached(*m)),
                    Ok(Lookup::Miss | Lookup::Damaged { .. }) => Err(StageFailure::new(format!(
                        "slurm job {} published entry {digest}, but this machine does not see it in {} \
                         (the cache must be on a filesystem the nodes share)",
                        job.id,
                        self.cache.display()
                    ))),
                    Err(e) => Err(StageFailure::from(e)),
                };
                if result.is_ok() {
                    // Kept while packed stages still run in the job, or one failed there.
                    let shared = self.jobs.iter().any(|j| j.id == job.id) || self.kept_out.contains(&job.files.out);
                    remove_files(&job.files, shared);
                }
                self.finish(job, result, Some(seconds))
            }
            JobReport::Failed { chain, tail, class, seconds } => {
                let id = job.id.clone();
                let failure = StageFailure::relayed(chain, tail, class).prefixed(&format!("slurm job {id} FAILED"));
                self.finish(job, Err(failure), Some(seconds))
            }
        }
    }

    fn finish(&mut self, job: Submitted, result: Result<Executed, StageFailure>, seconds: Option<f64>) -> Finished {
        if result.is_err() {
            self.kept_out.insert(job.files.out.clone());
        }
        // Where the job says it ran, else where Slurm last said it runs.
        let node = match &result {
            Ok(Executed::Ran(m)) => m.job.as_ref().and_then(|j| j.node.clone()),
            _ => None,
        };
        Finished {
            stage: job.stage,
            threads: job.threads,
            seconds: seconds.unwrap_or_else(|| job.submitted.elapsed().as_secs_f64()),
            key: job.key,
            result,
            place: Some(place(&job.id, node.or(job.node))),
        }
    }

    /// What Slurm says of the jobs now; nothing while it is too busy to answer (the
    /// next poll asks again: a busy controller never fails a run).
    fn poll(&mut self) -> BTreeMap<String, JobState> {
        match self.query_states() {
            Ok(states) => {
                self.poll_busy = false;
                states
            }
            Err(why) => {
                if !std::mem::replace(&mut self.poll_busy, true) {
                    let secs = self.poll_interval().as_secs_f64();
                    let secs = if secs.fract() == 0.0 { format!("{secs:.0}") } else { format!("{secs:.1}") };
                    (self.jobs[0].announce)(format!("slurm busy, retrying in {secs}s ({why})"));
                }
                BTreeMap::new()
            }
        }
    }

    /// The state of every job Slurm still knows, by job id; Slurm's message when it
    /// was too busy to say.
    fn query_states(&mut self) -> Result<BTreeMap<String, JobState>, String> {
        let ids: Vec<&str> = self.jobs.iter().map(|j| j.id.as_str()).collect();
        if self.states != StateQuery::Squeue {
            match sacct(&ids) {
                Ok(Some(states)) => {
                    self.states = StateQuery::Sacct;
                    return Ok(states);
                }
                Ok(None) => self.states = StateQuery::Squeue,
                Err(busy) => return Err(busy),
            }
        }
        let mut states = squeue(&ids)?;
        let missing: Vec<&str> = ids.iter().copied().filter(|id| !states.contains_key(*id)).collect();
        for id in missing {
            if let Some(state) = scontrol(id) {
                states.insert(id.to_string(), state);
            }
        }
        Ok(states)
    }

    /// Cancel every job of this run (once).
    fn cancel_jobs(&mut self) {
        if self.cancelling.is_some() {
            return;
        }
        self.cancelling = Some(Instant::now());
        self.last_poll = None;
        if !self.jobs.is_empty() {
            let ids: Vec<&str> = self.jobs.iter().map(|j| j.id.as_str()).collect();
            eprintln!("cancelling {} slurm job(s): {}", ids.len(), ids.join(" "));
            let args: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
            // Interrupted already, `call` tries once: a busy controller is not waited for.
            if let Err(e) = call("scancel", &args, self.settings.busy_for, &|line| eprintln!("{line}")) {
                eprintln!("warning: scancel: {e}; cancel them by hand");
            }
        }
    }
}

impl Executor for Slurm<'_, '_> {
    fn prepare(&mut self, will_run: &[usize]) -> Result<(), ExecError> {
        let jobs: Vec<usize> = will_run.iter().copied().filter(|i| !self.runs_here(*i)).collect();
        if jobs.is_empty() {
            return Ok(());
        }
        self.expected = expected_seconds(self.p, self.store, &jobs);
        let say = |line: String| eprintln!("{line}");
        for (what, path) in
            [("cache", &self.cache), ("pipeline's folder", &self.p.workspace), ("pipe binary", &self.exe)]
        {
            if node_local(path) {
                eprintln!(
                    "warning: the {what} {} is on a path compute nodes usually do not share; \
                     its jobs fail unless the nodes see it",
                    path.display()
                );
            }
        }
        // Each distinct request once, before anything is submitted: an unknown
        // partition or account is sbatch's own message, shown plainly.
        let mut seen = BTreeSet::new();
        for i in jobs {
            let args = sbatch_args(&self.p.stages[i], self.p.stages[i].resources.cpus() as usize);
            if !seen.insert(args.clone()) {
                continue;
            }
            let test: Vec<String> = ["--test-only".to_string()]
                .into_iter()
                .chain(args.iter().cloned())
                .chain(["--wrap".into(), "true".into()])
                .collect();
            match call("sbatch", &test, self.settings.busy_for, &say) {
                Ok(_) => {}
                Err(CallError::Spawn(e)) => return Err(ExecError::NoSbatch(e)),
                Err(source) => {
                    let stage = self.p.stages[i].name.clone();
                    return Err(ExecError::Refused { stage, args: args.join(" "), source });
                }
            }
        }
        Ok(())
    }

    fn admit(&mut self, stage: usize, waiting: usize) -> Option<usize> {
        if self.runs_here(stage) {
            return self.local.admit(stage, waiting);
        }
        let queued = self.jobs.len() + self.pending.len();
        (queued < self.settings.max_jobs.max(1)).then(|| self.p.stages[stage].resources.cpus() as usize)
    }

    fn start(&mut self, job: Job) {
        if self.runs_here(job.stage) {
            self.local_running += 1;
            self.local.start(job);
        } else if let Some(job) = self.fetch_inputs(job) {
            self.pending.push(Pending { job, since: Instant::now() });
        }
    }

    fn wait(&mut self) -> Finished {
        loop {
            if let Some(f) = self.ended.pop_front() {
                return f;
            }
            if cancelled() {
                self.cancel_jobs();
            }
            self.flush();
            if let Some(f) = self.ended.pop_front() {
                return f;
            }
            if self.local_running > 0 {
                if let Some(f) = self.local.wait_timeout(TICK) {
                    self.local_running -= 1;
                    return f;
                }
            } else {
                std::thread::sleep(TICK);
            }
            self.check();
            if let Some(t) = self.cancelling
                && t.elapsed() > CANCEL_GRACE
                && let Some(job) = self.jobs.pop()
            {
                let failure = StageFailure::interrupted().prefixed(&format!("slurm job {} (cancelled)", job.id));
                return self.finish(job, Err(failure), None);
            }
        }
    }

    fn cancel_all(&mut self) {
        CANCEL.store(true, std::sync::atomic::Ordering::SeqCst);
        self.cancel_jobs();
    }
}

/// A job (`42`) or an array task (`42_3`) as a place.
fn place(id: &str, node: Option<String>) -> Place {
    let (job, task) = match id.split_once('_') {
        Some((job, task)) => (job, task.parse().ok()),
        None => (id, None),
    };
    Place { executor: "slurm", job: job.to_string(), task, node }
}

/// The sbatch arguments for a stage's resources (cores, memory, time, place, GPUs).
fn sbatch_args(s: &Stage, threads: usize) -> Vec<String> {
    let r: &Resources = &s.resources;
    let mut args = vec![format!("--cpus-per-task={threads}")];
    let opt = |flag: &str, v: &Option<String>| v.as_ref().map(|v| format!("--{flag}={v}"));
    args.extend(opt("mem", &r.mem));
    args.extend(opt("time", &r.time));
    args.extend(opt("partition", &r.partition));
    args.extend(opt("account", &r.account));
    args.extend(opt("qos", &r.qos));
    let gpus = r.gpus.unwrap_or_else(|| s.task.gpus());
    if gpus > 0 {
        args.push(format!("--gres=gpu:{gpus}"));
    }
    args.extend(r.sbatch.iter().cloned());
    args
}

/// Whether Slurm is done with a job in this state.
fn is_end(state: &str) -> bool {
    matches!(
        state,
        "COMPLETED"
            | "FAILED"
            | "CANCELLED"
            | "TIMEOUT"
            | "OUT_OF_MEMORY"
            | "NODE_FAIL"
            | "PREEMPTED"
            | "BOOT_FAIL"
            | "DEADLINE"
            | "REVOKED"
            | "SPECIAL_EXIT"
            | GONE
    )
}

/// What Slurm says of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JobState {
    state: String,
    /// Where it runs or ran; `None` while it waits in the queue.
    node: Option<String>,
}

/// A poll asks once: a busy controller is asked again at the next poll.
const ONCE: Duration = Duration::ZERO;

/// `sacct`'s states; `None` when accounting is off here (or sacct cannot be run);
/// Slurm's message when it is busy.
fn sacct(ids: &[&str]) -> Result<Option<BTreeMap<String, JobState>>, String> {
    // JobID: `42_3` for an array task (JobIdRaw would be its own number).
    let args = ["-X", "--parsable2", "--noheader", "--format=JobID,State,NodeList", "-j", &ids.join(",")];
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    match call("sacct", &args, ONCE, &|_| {}) {
        Ok(out) => Ok(Some(parse_states(&String::from_utf8_lossy(&out.stdout)))),
        Err(CallError::Busy { message, .. }) => Err(message),
        Err(CallError::Spawn(_) | CallError::Refused(_)) => Ok(None),
    }
}

/// What Slurm's accounting says the jobs `ids` used; nothing where it keeps no
/// accounting (no slurmdbd) or cannot answer now.
pub fn accounting(ids: &[String]) -> BTreeMap<String, crate::engine::usage::Accounted> {
    if ids.is_empty() {
        return BTreeMap::new();
    }
    let args = ["--parsable2", "--noheader", "--format=JobID,TotalCPU,MaxRSS", "-j", &ids.join(",")];
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    match call("sacct", &args, ONCE, &|_| {}) {
        Ok(out) => crate::engine::usage::parse_accounting(&String::from_utf8_lossy(&out.stdout)),
        Err(_) => BTreeMap::new(),
    }
}

/// `squeue --states=all`: jobs still in the queue or ended within MinJobAge; Slurm's
/// message when it is busy. Jobs it does not list are asked of `scontrol` one by one.
fn squeue(ids: &[&str]) -> Result<BTreeMap<String, JobState>, String> {
    // -r: one line per array task, pending ones too.
    let args = ["-h", "-r", "--states=all", "-o", "%i|%T|%N", "-j", &ids.join(",")];
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    match call("squeue", &args, ONCE, &|_| {}) {
        Ok(out) => Ok(parse_states(&String::from_utf8_lossy(&out.stdout))),
        Err(CallError::Busy { message, .. }) => Err(message),
        // "Invalid job id" when every job is gone: scontrol says so for each.
        Err(CallError::Spawn(_) | CallError::Refused(_)) => Ok(BTreeMap::new()),
    }
}

/// The state of a job Slurm says it does not know.
const GONE: &str = "GONE";

/// `scontrol show job`: one job's state; [`GONE`] when Slurm says the job id is
/// invalid, `None` when Slurm could not be asked (try again later).
fn scontrol(id: &str) -> Option<JobState> {
    let out = Command::new("scontrol").args(["show", "job", id, "-o"]).output().ok()?;
    if !out.status.success() && crate::engine::slurm_call::transient(&String::from_utf8_lossy(&out.stderr)) {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| text.split_whitespace().find_map(|w| w.strip_prefix(name)).map(str::to_string);
    if let Some(state) = field("JobState=") {
        return Some(JobState { state, node: field("NodeList=").and_then(node_list) });
    }
    String::from_utf8_lossy(&out.stderr)
        .contains("Invalid job id")
        .then(|| JobState { state: GONE.to_string(), node: None })
}

/// `ID|STATE|NODES` lines; `CANCELLED by 1000` is `CANCELLED`.
/// Array tasks not started yet may be one line, `42_[3-5,7%2]`: one state per task.
fn parse_states(text: &str) -> BTreeMap<String, JobState> {
    let mut states = BTreeMap::new();
    for l in text.lines() {
        let mut fields = l.trim().split('|');
        let (Some(id), Some(state)) = (fields.next(), fields.next()) else { continue };
        let Some(state) = state.split_whitespace().next() else { continue };
        let seen = JobState {
            state: state.trim_end_matches('+').to_string(),
            node: fields.next().and_then(|n| node_list(n.to_string())),
        };
        for id in task_ids(id) {
            states.insert(id, seen.clone());
        }
    }
    states
}

/// `42_[3-5,7%2]` as `42_3 42_4 42_5 42_7`; any other id as it is.
fn task_ids(id: &str) -> Vec<String> {
    let Some((job, tasks)) = id.split_once("_[") else { return vec![id.to_string()] };
    let tasks = tasks.trim_end_matches(']');
    let tasks = tasks.split('%').next().unwrap_or_default();
    let mut ids = Vec::new();
    for part in tasks.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
            ids.extend((a..=b.min(a.saturating_add(100_000))).map(|t| format!("{job}_{t}")));
        }
    }
    ids
}

/// A job's node list as Slurm prints it; nothing while it has none.
fn node_list(nodes: String) -> Option<String> {
    let none = nodes.is_empty() || nodes == "(null)" || nodes.starts_with("None");
    (!none).then_some(nodes)
}

/// A path compute nodes usually cannot see: under this machine's own temporary folders.
fn node_local(path: &Path) -> bool {
    ["/tmp", "/var/tmp", "/dev/shm", "/run"].iter().any(|t| path.starts_with(t))
}

/// A finished stage's job files; its job's output stays while `shared` (stages
/// packed with it are still followed).
fn remove_files(files: &JobFiles, shared: bool) {
    for f in files.all() {
        if !(shared && f == files.out.as_path()) {
            let _ = std::fs::remove_file(f);
        }
    }
    if let Some(dir) = files.spec.parent() {
        let _ = std::fs::remove_dir(dir);
    }
}

/// A stage's time guessed before any run recorded it, for a stage its kind calls short.
const SHORT_GUESS: f64 = 60.0;

/// The floating-point operations a CPU is assumed to do per second of a stage's
/// expected work: a tenth to a twentieth of what training reaches on one core of the
/// machines measured (PERF-NOTES), so that an estimate errs long and a packed job
/// stays well within its length.
const FLOPS_PER_CPU: f64 = 2e9;

/// How long each of `stages` is expected to take, as recorded: the compute time its
/// last entry of this pipeline recorded (under whatever key it had), else the longest
/// recorded by another stage of its group. The others are estimated when they are
/// submitted (see `Slurm::packs`).
fn expected_seconds(p: &Pipeline, store: &Store, stages: &[usize]) -> BTreeMap<usize, f64> {
    let records = crate::store::Records::load(&store.sub("records"), &p.file);
    let recorded = |i: usize| {
        let record = records.get(&p.stages[i].name)?;
        store.entry(&record.key).ok().flatten().map(|m| m.seconds)
    };
    let mut by_group: BTreeMap<&str, f64> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for &i in stages {
        if let Some(t) = recorded(i) {
            out.insert(i, t);
            let g = by_group.entry(p.stages[i].group.as_str()).or_insert(0.0);
            *g = g.max(t);
        }
    }
    for &i in stages {
        if let (false, Some(&t)) = (out.contains_key(&i), by_group.get(p.stages[i].group.as_str())) {
            out.insert(i, t);
        }
    }
    out
}

/// Stages of expected times `times` spread over as few packs of at most `limit` seconds
/// as fit (one stage longer than `limit` is a pack alone), each about as long as the
/// others: longest first onto the least loaded. The packs hold indices into `times`.
fn spread(times: &[f64], limit: f64) -> Vec<Vec<usize>> {
    let total: f64 = times.iter().sum();
    let count = ((total / limit).ceil() as usize).clamp(1, times.len().max(1));
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by(|a, b| times[*b].total_cmp(&times[*a]));
    let mut packs: Vec<(f64, Vec<usize>)> = (0..count).map(|_| (0.0, Vec::new())).collect();
    for k in order {
        let least = packs.iter_mut().min_by(|a, b| a.0.total_cmp(&b.0)).expect("at least one pack");
        if least.0 > 0.0 && least.0 + times[k] > limit {
            // Full everywhere: one pack more rather than one past the limit.
            packs.push((times[k], vec![k]));
            continue;
        }
        least.0 += times[k];
        least.1.push(k);
    }
    packs.into_iter().map(|(_, members)| members).filter(|m| !m.is_empty()).collect()
}

/// Text for one comment line of a script: control characters (a matrix value's line
/// break) as spaces.
fn comment(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// `s` as one word for `sh`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_from_sacct_and_squeue_lines() {
        let s =
            parse_states("12|COMPLETED|n1\n13|CANCELLED by 1000|\n14|RUNNING|n[1-2]\n\n15_1|PENDING|None assigned\n");
        let state = |id: &str| (s[id].state.as_str(), s[id].node.as_deref());
        assert_eq!(state("12"), ("COMPLETED", Some("n1")));
        assert_eq!(state("13"), ("CANCELLED", None));
        assert_eq!(state("14"), ("RUNNING", Some("n[1-2]")));
        assert_eq!(state("15_1"), ("PENDING", None));
        assert_eq!(s.len(), 4);
        let s = parse_states("16_[2-4,7%2]|PENDING|\n16_0|RUNNING|n2\n");
        assert_eq!(s.keys().collect::<Vec<_>>(), ["16_0", "16_2", "16_3", "16_4", "16_7"]);
        assert_eq!(s["16_3"].state, "PENDING");
        assert_eq!(place("16_3", None).to_string(), "slurm job 16_3");
        assert_eq!(
            place("17", Some("n1".into())),
            Place { executor: "slurm", job: "17".into(), task: None, node: Some("n1".into()) }
        );
        for end in ["COMPLETED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "DEADLINE"] {
            assert!(is_end(end), "{end}");
        }
        for going in ["PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "REQUEUED", "SUSPENDED"] {
            assert!(!is_end(going), "{going}");
        }
    }

    #[test]
    fn each_resource_becomes_its_sbatch_argument_and_cuda_asks_for_a_gpu() {
        let text = "resources: {mem: 8G, time: '2:00:00', partition: gpu, account: lab, qos: high, \
                    sbatch: [--constraint=a100]}\nnetwork: {layers: [fc 8]}\n\
                    stages:\n  data:\n    dataset: {source: synthetic, classes: 4, image: [1, 8, 8]}\n  \
                    base:\n    train: {data: data, training: {device: cuda}}\n  \
                    cpu:\n    train: {data: data}\n    resources: {gpus: 2}\n";
        let p =
            crate::config::parse(Path::new("/work/p.yaml"), text.as_bytes(), &[], crate::kinds::registry()).unwrap();
        let args = |name: &str| sbatch_args(&p.stages[p.index_of(name).unwrap()], 3).join(" ");
        assert_eq!(
            args("base"),
            "--cpus-per-task=3 --mem=8G --time=2:00:00 --partition=gpu --account=lab --qos=high --gres=gpu:1 \
             --constraint=a100"
        );
        assert!(args("cpu").contains("--gres=gpu:2"), "{}", args("cpu"));
        assert!(!args("data").contains("--gres"), "{}", args("data"));
        assert!(p.stages[0].task.light() && !p.stages[1].task.light());
    }

    #[test]
    fn short_stages_spread_over_few_packs_within_the_limit() {
        let times = [280.0, 280.0, 280.0, 280.0, 70.0];
        let packs = spread(&times, 600.0);
        let lengths: Vec<f64> = packs.iter().map(|p| p.iter().map(|k| times[*k]).sum()).collect();
        assert!(lengths.iter().all(|l| *l <= 600.0), "{lengths:?}");
        assert_eq!(packs.iter().map(Vec::len).sum::<usize>(), 5);
        assert_eq!(packs.len(), 3, "{packs:?}");
        // Tiny stages: one pack; evenly spread when they need several.
        assert_eq!(spread(&[1.0; 10], 600.0).len(), 1);
        let even = spread(&[100.0; 12], 600.0);
        assert_eq!(even.iter().map(Vec::len).collect::<Vec<_>>(), [6, 6]);
        assert_eq!(comment("a\nb"), "a b");
    }

    #[test]
    fn scripts_quote_every_path() {
        assert_eq!(quote("/a b/it's"), r"'/a b/it'\''s'");
        assert!(node_local(Path::new("/tmp/cache")) && !node_local(Path::new("/home/me/cache")));
    }
}
