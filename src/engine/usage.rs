//! What a cluster job used: measured by the job itself with `getrusage` (CPU time and
//! peak resident memory, of its own process and of the commands it waited for) and a
//! clock, so it is known where Slurm keeps no accounting. After a run, the requests
//! that were far above what their jobs used are named, one line per stage group and
//! request.

use std::collections::BTreeMap;

use crate::engine::executor::ClusterJob;
use crate::store::{Asked, JobRun, Manifest, Used};

/// A request this many times what its jobs used at most is named after the run.
const WASTE: f64 = 4.0;

/// This process as the job that computed a stage, now.
pub fn measure(cluster: &ClusterJob) -> JobRun {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (own_cpu, own_rss) = rusage(libc::RUSAGE_SELF);
    let (child_cpu, child_rss) = rusage(libc::RUSAGE_CHILDREN);
    JobRun {
        executor: "slurm".into(),
        // An array task as Slurm names it (`42_3`), not by its own job number.
        id: match (env("SLURM_ARRAY_JOB_ID"), env("SLURM_ARRAY_TASK_ID")) {
            (Some(job), Some(task)) => Some(format!("{job}_{task}")),
            _ => env("SLURM_JOB_ID"),
        },
        node: env("SLURMD_NODENAME"),
        asked: cluster.asked.clone(),
        used: Used {
            cpu_seconds: (own_cpu + child_cpu - cluster.cpu_before).max(0.0),
            max_rss_bytes: own_rss.max(child_rss),
            wall_seconds: cluster.started.elapsed().as_secs_f64(),
        },
    }
}

/// The CPU seconds this process (and the commands it waited for) used so far.
pub fn cpu_so_far() -> f64 {
    rusage(libc::RUSAGE_SELF).0 + rusage(libc::RUSAGE_CHILDREN).0
}

/// CPU seconds (user and system) and peak RSS in bytes of `who`.
fn rusage(who: libc::c_int) -> (f64, u64) {
    // SAFETY: getrusage only writes the struct it is given, which is plain data.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return (0.0, 0);
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    // Linux gives ru_maxrss in kilobytes.
    (secs(ru.ru_utime) + secs(ru.ru_stime), (ru.ru_maxrss.max(0) as u64) * 1024)
}

/// A Slurm memory amount (`16G`, `500M`, `500`: megabytes without a unit) in bytes.
pub fn mem_bytes(s: &str) -> Option<u64> {
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => s.split_at(at),
        None => (s, "M"),
    };
    let n: u64 = digits.parse().ok()?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

/// Bytes as Slurm writes memory, to two or three digits: `310M`, `1.5G`.
pub fn human(bytes: u64) -> String {
    let units = [("T", 40), ("G", 30), ("M", 20), ("K", 10)];
    for (unit, shift) in units {
        let v = bytes as f64 / (1u64 << shift) as f64;
        if v >= 1.0 {
            return if v < 10.0 { format!("{v:.1}{unit}") } else { format!("{v:.0}{unit}") };
        }
    }
    format!("{bytes}B")
}

/// What a job asked for, in words: `4 CPUs / 16G / 1:00:00`.
pub fn asked_text(a: &Asked) -> String {
    let mut s = format!("{} CPU{}", a.cpus, if a.cpus == 1 { "" } else { "s" });
    for part in [&a.mem, &a.time].into_iter().flatten() {
        s.push_str(" / ");
        s.push_str(part);
    }
    s
}

/// What a job used, in words: `1.0 CPUs / 310M / 12.3 s`.
pub fn used_text(u: &Used) -> String {
    format!("{:.1} CPUs / {} / {:.1} s", u.cpus(), human(u.max_rss_bytes), u.wall_seconds)
}

/// What Slurm's accounting says a job used (`sacct`'s TotalCPU, and MaxRSS of its
/// largest step), where the cluster keeps accounting.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Accounted {
    pub cpu_seconds: f64,
    pub max_rss_bytes: u64,
}

/// `sacct --parsable2 --noheader --format=JobID,TotalCPU,MaxRSS` output by job id, its
/// steps (`42_3.batch`) folded into their job.
pub fn parse_accounting(text: &str) -> BTreeMap<String, Accounted> {
    let mut out: BTreeMap<String, Accounted> = BTreeMap::new();
    for line in text.lines() {
        let mut fields = line.trim().split('|');
        let (Some(id), Some(cpu), Some(rss)) = (fields.next(), fields.next(), fields.next()) else { continue };
        let (job, step) = match id.split_once('.') {
            Some((job, _)) => (job, true),
            None => (id, false),
        };
        if job.is_empty() {
            continue;
        }
        let e = out.entry(job.to_string()).or_default();
        if let Some(secs) = slurm_duration(cpu) {
            // The job's own line sums its steps; a step alone counts until it is seen.
            e.cpu_seconds = if step { e.cpu_seconds.max(secs) } else { secs.max(e.cpu_seconds) };
        }
        if let Some(bytes) = (!rss.is_empty()).then(|| mem_bytes_k(rss)).flatten() {
            e.max_rss_bytes = e.max_rss_bytes.max(bytes);
        }
    }
    out
}

/// A Slurm duration: `[D-][HH:]MM:SS[.mmm]`, in seconds.
fn slurm_duration(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (d.parse::<f64>().ok()?, r),
        None => (0.0, s),
    };
    let parts: Vec<f64> = rest.split(':').map(|p| p.parse::<f64>().ok()).collect::<Option<_>>()?;
    let secs = match parts.as_slice() {
        [m, s] => m * 60.0 + s,
        [h, m, s] => h * 3600.0 + m * 60.0 + s,
        _ => return None,
    };
    Some(days * 86_400.0 + secs)
}

/// `sacct`'s memory: `1234K`, `12M`, `1.5G`, or bytes without a unit.
fn mem_bytes_k(s: &str) -> Option<u64> {
    let s = s.trim();
    let (number, shift) = match s.chars().last()? {
        'K' => (&s[..s.len() - 1], 10),
        'M' => (&s[..s.len() - 1], 20),
        'G' => (&s[..s.len() - 1], 30),
        'T' => (&s[..s.len() - 1], 40),
        _ => (s, 0),
    };
    let n: f64 = number.parse().ok()?;
    Some((n * (1u64 << shift) as f64) as u64)
}

/// One line per stage group and request whose jobs used at most a quarter of the CPUs
/// or of the memory asked for: `base: asked 4 CPUs / 16G, used 1.0 / 310M at most`,
/// with what Slurm's accounting says where it keeps any (`acct`, by job id).
/// `ran`: the stage group and manifest of each stage computed by this run.
pub fn oversized<'m>(
    ran: impl IntoIterator<Item = (&'m str, &'m Manifest)>,
    acct: &BTreeMap<String, Accounted>,
) -> Vec<String> {
    /// What one group's jobs of one request used at most, and as accounted.
    struct Class<'a> {
        asked: &'a Asked,
        cpus: f64,
        rss: u64,
        accounted: Option<(f64, u64)>,
    }
    let mut classes: BTreeMap<(&str, String), Class<'_>> = BTreeMap::new();
    for (group, m) in ran {
        let Some(job) = &m.job else { continue };
        let key = (group, asked_text(&job.asked));
        let e = classes.entry(key).or_insert(Class { asked: &job.asked, cpus: 0.0, rss: 0, accounted: None });
        e.cpus = e.cpus.max(job.used.cpus());
        e.rss = e.rss.max(job.used.max_rss_bytes);
        if let Some(a) = job.id.as_ref().and_then(|id| acct.get(id)) {
            let cpus = if job.used.wall_seconds > 0.0 { a.cpu_seconds / job.used.wall_seconds } else { 0.0 };
            let (c, r) = e.accounted.get_or_insert((0.0, 0));
            *c = c.max(cpus);
            *r = (*r).max(a.max_rss_bytes);
        }
    }
    let mut lines = Vec::new();
    for ((group, _), Class { asked, cpus, rss, accounted }) in classes {
        let mem = asked.mem.as_deref().and_then(mem_bytes);
        let idle_cpus = f64::from(asked.cpus) > WASTE * cpus.max(0.01);
        let idle_mem = mem.is_some_and(|m| m as f64 > WASTE * rss.max(1) as f64);
        if !idle_cpus && !idle_mem {
            continue;
        }
        let plural = if asked.cpus == 1 { "" } else { "s" };
        let line = match &asked.mem {
            Some(m) => {
                format!("{group}: asked {} CPU{plural} / {m}, used {cpus:.1} / {} at most", asked.cpus, human(rss))
            }
            None => format!(
                "{group}: asked {} CPU{plural}, used {cpus:.1} (and {} of memory) at most",
                asked.cpus,
                human(rss)
            ),
        };
        let line = match accounted {
            Some((c, r)) => format!("{line} (Slurm's accounting: {c:.1} / {} at most)", human(r)),
            None => line,
        };
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounting_as_sacct_prints_it() {
        let text = "42_3|00:01.500||\n42_3.batch|00:01.400|310M|\n42_3.extern|00:00:00|1024K|\n\
                    43|1-00:00:10|2G\n";
        let a = parse_accounting(text);
        assert_eq!(a["42_3"], Accounted { cpu_seconds: 1.5, max_rss_bytes: 310 << 20 });
        assert_eq!(a["43"], Accounted { cpu_seconds: 86_410.0, max_rss_bytes: 2 << 30 });
        assert_eq!(slurm_duration("01:02:03"), Some(3723.0));
        assert_eq!(slurm_duration("INVALID"), None);
    }

    #[test]
    fn memory_amounts_as_slurm_writes_them() {
        assert_eq!(mem_bytes("16G"), Some(16 << 30));
        assert_eq!(mem_bytes("500"), Some(500 << 20));
        assert_eq!(mem_bytes("2t"), Some(2 << 40));
        assert_eq!(mem_bytes("lots"), None);
        assert_eq!(human(310 << 20), "310M");
        assert_eq!(human(3 << 29), "1.5G");
        assert_eq!(human(12), "12B");
    }

    #[test]
    fn a_request_far_above_use_is_named_once_per_group() {
        let job = |cpus: u32, mem: Option<&str>, cpu_seconds: f64, rss: u64| JobRun {
            executor: "slurm".into(),
            id: Some("42".into()),
            node: Some("n1".into()),
            asked: Asked { cpus, mem: mem.map(String::from), time: None },
            used: Used { cpu_seconds, max_rss_bytes: rss, wall_seconds: 10.0 },
        };
        let key = crate::key::StageKey::new("cmd", 1, serde_json::json!({}), crate::name_map::NameMap::new());
        let manifest = |j: JobRun| Manifest {
            format: crate::store::MANIFEST_FORMAT,
            key: key.digest(),
            key_struct: key.clone(),
            stage: "s".into(),
            outputs: crate::name_map::NameMap::new(),
            log: None,
            seconds: 1.0,
            created_unix: 0,
            inputs_verified: None,
            job: Some(j),
        };
        let ms = [
            ("base", manifest(job(4, Some("16G"), 8.0, 200 << 20))),
            ("base", manifest(job(4, Some("16G"), 10.0, 310 << 20))),
            // Uses what it asked for.
            ("transfer", manifest(job(2, Some("1G"), 18.0, 600 << 20))),
            // Memory well used, CPUs not.
            ("eval", manifest(job(8, None, 10.0, 1 << 30))),
        ];
        let lines = oversized(ms.iter().map(|(g, m)| (*g, m)), &BTreeMap::new());
        assert_eq!(
            lines,
            [
                "base: asked 4 CPUs / 16G, used 1.0 / 310M at most",
                "eval: asked 8 CPUs, used 1.0 (and 1.0G of memory) at most"
            ]
        );
        // Where Slurm keeps accounting, what it says is shown beside (every job here
        // is job 42: 12 CPU seconds in 10 s of wall time).
        let acct = parse_accounting("42|00:12.000|\n42.batch|00:11.9|400M\n");
        let lines = oversized(ms[..2].iter().map(|(g, m)| (*g, m)), &acct);
        assert_eq!(
            lines,
            ["base: asked 4 CPUs / 16G, used 1.0 / 310M at most (Slurm's accounting: 1.2 / 400M at most)"]
        );
        let m = measure(&ClusterJob {
            cpu_before: 0.0,
            asked: Asked { cpus: 1, mem: None, time: None },
            started: std::time::Instant::now(),
        });
        assert!(m.used.max_rss_bytes > 1 << 20 && m.used.cpu_seconds > 0.0, "{m:?}");
    }
}
